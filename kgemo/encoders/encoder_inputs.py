"""What an encoder reads for each utterance: plain text, or ``"speaker: text"`` with the turns before it.

A fine-tuned encoder must be fed at extraction time exactly what it was trained on, so the formatting lives in
one place, used by both the fine-tuning stage and :class:`~kgemo.encoders.FinetunedEncoder`:

* :class:`ContextFormat` — speaker prefix on/off, how many past turns;
* :func:`conversation_inputs` — one model input per utterance: a string, or a ``(target, context)`` pair fed to
  the tokenizer as a text pair (the target first, so truncation never reaches it);
* :class:`InputTokenizer` — token ids for those inputs within ``max_length``: the context is cut from its start
  (the oldest turn), the target only when it alone is longer than the limit;
* :func:`inputs_sha256` — the checksum the feature cache keys them by (equal to
  :func:`~kgemo.encoders.texts_sha256` for plain strings, so caches of plain encoders stay valid).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence, Union

from ..checksums import texts_sha256
from ..errors import DataFormatError

__all__ = ["ContextFormat", "EncoderInput", "conversation_inputs", "format_turn", "check_inputs", "inputs_sha256",
           "InputTokenizer"]

#: One model input: a plain text, or ``(target, context)`` encoded as a tokenizer text pair.
EncoderInput = Union[str, tuple[str, str]]


@dataclass(frozen=True)
class ContextFormat:
    """How an utterance and its context become one model input.

    Args:
        speaker_prefix: write each turn as ``"speaker: text"`` (the target and the context turns).
        past_turns: how many preceding turns go into the second segment (0 = the target alone, a plain string).
            Only the past is used: an encoder fed future turns could not label a conversation as it unfolds.
    """

    speaker_prefix: bool = True
    past_turns: int = 2

    def __post_init__(self):
        if not isinstance(self.past_turns, int) or self.past_turns < 0:
            raise ValueError(f"past_turns must be an integer >= 0, got {self.past_turns!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def name(self) -> str:
        """Short form for result tables: ``past2`` (``past0`` = no context), ``-nospk`` without speakers."""
        return f"past{self.past_turns}" + ("" if self.speaker_prefix else "-nospk")


def format_turn(utterance: Any, speaker_prefix: bool = True) -> str:
    """``"speaker: text"`` (or the bare text)."""
    return f"{utterance.speaker}: {utterance.text}" if speaker_prefix else utterance.text


def conversation_inputs(conversation: Any, fmt: ContextFormat = ContextFormat()) -> list[EncoderInput]:
    """One model input per utterance of ``conversation``, in order.

    The context turns are joined oldest first, so that cutting from the start of the context drops the oldest
    words first. The first utterance (no past) and ``past_turns=0`` give a plain string.

    Example:
        >>> conv = as_conversation([("Ann", "Hi!"), ("Bob", "Hello."), ("Ann", "How are you?")])
        >>> conversation_inputs(conv, ContextFormat(past_turns=1))
        ['Ann: Hi!', ('Bob: Hello.', 'Ann: Hi!'), ('Ann: How are you?', 'Bob: Hello.')]
    """
    turns = [format_turn(u, fmt.speaker_prefix) for u in conversation]
    out: list[EncoderInput] = []
    for i, target in enumerate(turns):
        past = turns[max(0, i - fmt.past_turns):i]
        out.append((target, " ".join(past)) if past else target)
    return out


def check_inputs(inputs: Any, what: str = "inputs") -> list[EncoderInput]:
    """A list of strings and ``(str, str)`` pairs, or a :class:`DataFormatError` naming the first bad item."""
    if isinstance(inputs, (str, bytes)):
        raise DataFormatError(f"expected a list of {what}, got a single {type(inputs).__name__}; wrap it in a list")
    try:
        inputs = list(inputs)
    except TypeError:
        raise DataFormatError(f"expected a list of {what}, got {type(inputs).__name__}") from None
    for i, x in enumerate(inputs):
        if isinstance(x, str):
            continue
        if isinstance(x, (tuple, list)) and len(x) == 2 and all(isinstance(s, str) for s in x):
            inputs[i] = (x[0], x[1])
            continue
        raise DataFormatError(f"{what}[{i}] is neither a str nor a (str, str) pair: {x!r:.80}")
    return inputs


#: The feature cache's key of a list of inputs (plain strings hash as they always have).
inputs_sha256 = texts_sha256


class InputTokenizer:
    """Token ids for strings and text pairs within ``max_length`` tokens, special tokens included.

    A pair ``(target, context)`` keeps the whole target and as much of the context as fits, cut from the
    context's start (its oldest turn). A target too long to leave room for any context is encoded alone and, when
    longer than ``max_length`` itself, cut at its end (counted in :attr:`targets_cut` for a warning).

    Args:
        tokenizer: a Hugging Face *fast* tokenizer (it has a ``backend_tokenizer``).
        max_length: the most tokens per input.

    Example:
        >>> tok = InputTokenizer(AutoTokenizer.from_pretrained(path), max_length=128)
        >>> enc = tok(["Ann: Hi!", ("Bob: Hello.", "Ann: Hi!")])
        >>> batch = tok.pad(enc)            # input_ids, attention_mask (+ token_type_ids): (2, longest)
    """

    def __init__(self, tokenizer: Any, max_length: int):
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if backend is None:
            raise DataFormatError(f"{type(tokenizer).__name__} is not a fast tokenizer (no tokenizer.json); "
                                  "contextual inputs need one")
        self._setup(backend.to_str(), max_length, tokenizer.pad_token_id,
                    "token_type_ids" in getattr(tokenizer, "model_input_names", ()))

    @classmethod
    def from_file(cls, path: Any, max_length: int, use_type_ids: bool = True,
                  pad_token: str = "[PAD]") -> "InputTokenizer":
        """From a ``tokenizer.json`` alone (no transformers import): BERT-style with segment ids by default;
        RoBERTa-like families pass ``use_type_ids=False`` and their ``pad_token`` (``<pad>``)."""
        from pathlib import Path

        self = cls.__new__(cls)
        text = Path(path).read_text(encoding="utf-8")
        from tokenizers import Tokenizer

        self._setup(text, max_length, Tokenizer.from_str(text).token_to_id(pad_token), use_type_ids)
        return self

    def _setup(self, tokenizer_json: str, max_length: int, pad_id: int | None, use_type_ids: bool) -> None:
        from tokenizers import Tokenizer

        self.max_length = int(max_length)
        self.pad_id = pad_id if pad_id is not None else 0
        self.use_type_ids = bool(use_type_ids)
        # Copies: truncation and padding are settings of a backend tokenizer, and the caller's must not change.
        self._plain = Tokenizer.from_str(tokenizer_json)
        self._plain.no_truncation()
        self._plain.no_padding()
        self._single = Tokenizer.from_str(self._plain.to_str())
        self._single.enable_truncation(self.max_length, strategy="longest_first", direction="right")
        self._pair = Tokenizer.from_str(self._plain.to_str())
        self._pair.enable_truncation(self.max_length, strategy="only_second", direction="left")
        post = self._plain.post_processor
        self.special_single = post.num_special_tokens_to_add(False) if post is not None else 0
        self.special_pair = post.num_special_tokens_to_add(True) if post is not None else 0
        self.targets_cut = 0

    def target_too_long(self, targets: Sequence[str]) -> list[bool]:
        """Whether each utterance alone exceeds ``max_length`` (with its special tokens): only then is the utterance
        itself cut; a long context is cut first and never the target."""
        return [len(e.ids) + self.special_single > self.max_length
                for e in self._plain.encode_batch(list(targets), add_special_tokens=False)]

    def lengths(self, inputs: Sequence[EncoderInput]) -> list[int]:
        """Token counts after truncation (what a batch pads to), without building the ids."""
        return [len(ids) for ids, _ in self(inputs)]

    def __call__(self, inputs: Sequence[EncoderInput]) -> list[tuple[list[int], list[int]]]:
        """``(input_ids, token_type_ids)`` per input, truncated as described above."""
        targets = [x if isinstance(x, str) else x[0] for x in inputs]
        target_len = [len(e.ids) for e in self._plain.encode_batch(targets, add_special_tokens=False)]
        out: list[tuple[list[int], list[int]] | None] = [None] * len(inputs)
        pair_idx, single_idx = [], []
        for i, (x, n) in enumerate(zip(inputs, target_len)):
            has_room = n + self.special_pair < self.max_length
            (pair_idx if not isinstance(x, str) and x[1] and has_room else single_idx).append(i)
            if n + self.special_single > self.max_length:
                self.targets_cut += 1
        if pair_idx:
            for i, e in zip(pair_idx, self._pair.encode_batch([tuple(inputs[i]) for i in pair_idx])):
                out[i] = (e.ids, e.type_ids)
        if single_idx:
            for i, e in zip(single_idx, self._single.encode_batch([targets[i] for i in single_idx])):
                out[i] = (e.ids, e.type_ids)
        return out  # type: ignore[return-value]

    def pad(self, encoded: Sequence[tuple[list[int], list[int]]]) -> dict[str, Any]:
        """A batch of tensors padded to its longest member: ``input_ids``, ``attention_mask`` (B, T), and
        ``token_type_ids`` when the model takes them."""
        import torch

        longest = max(len(ids) for ids, _ in encoded)
        ids = torch.full((len(encoded), longest), self.pad_id, dtype=torch.long)
        types = torch.zeros((len(encoded), longest), dtype=torch.long)
        mask = torch.zeros((len(encoded), longest), dtype=torch.long)
        for row, (i, t) in enumerate(encoded):
            ids[row, :len(i)] = torch.as_tensor(i, dtype=torch.long)
            types[row, :len(t)] = torch.as_tensor(t, dtype=torch.long)
            mask[row, :len(i)] = 1
        batch = {"input_ids": ids, "attention_mask": mask}
        if self.use_type_ids:
            batch["token_type_ids"] = types
        return batch
