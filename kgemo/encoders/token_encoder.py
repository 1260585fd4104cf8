"""Contextual sub-word and word states with a Hugging Face encoder, for word-level methods (KET, KI-Net)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np

from ..errors import DataFormatError
from .lazy_model import LazyModel, check_texts, configure_threads, length_order, show_bar, warn_truncated
from .model_source import DEFAULT_MODEL, model_max_length, transformer_folder

__all__ = ["TokenEncoder", "TokenStates"]


@dataclass(frozen=True)
class TokenStates:
    """The last hidden layer for one text.

    Attributes:
        tokens: sub-word tokens, special tokens (``[CLS]``, ``[SEP]``) included.
        states: float32 array, shape ``(len(tokens), dim)``.
        word_ids: for each token, the index of the word it belongs to (the tokenizer's pre-tokenisation), or
            ``None`` for special tokens.
        offsets: for each token, its ``(start, end)`` character span in the text (``(0, 0)`` for special tokens).
        truncated: the text was longer than ``max_length`` and its tail is missing.
    """

    tokens: list[str]
    states: np.ndarray
    word_ids: list[int | None]
    offsets: list[tuple[int, int]]
    truncated: bool = False

    def __len__(self) -> int:
        return len(self.tokens)


class TokenEncoder(LazyModel):
    r"""Hidden states per sub-word token and per word, from a Hugging Face encoder (``AutoModel``).

    Word states are the mean of the word's sub-word states:

    .. math::
        \mathbf{w}_j = \frac{1}{|T_j|} \sum_{t \in T_j} \mathbf{h}_t, \qquad
        T_j = \{t : \text{word\_id}(t) = j\}

    Inputs are batched longest first, run in half precision on CUDA (float32 results), and truncated at
    ``max_length`` tokens with a :class:`TruncationWarning` that says how many texts lost their tail.

    Args:
        model: ``"default"`` (the packaged all-MiniLM-L6-v2, 384-d), a local folder (a Hugging Face model, or a
            sentence-transformers folder whose transformer is used) or a hub name.
        device: default CUDA when available, else CPU.
        batch_size: texts per forward pass.
        max_length: tokens kept per text, special tokens included.

    Shapes:
        - :meth:`encode`: list of :class:`TokenStates`, ``states`` of shape ``(n_tokens, dim)``.
        - :meth:`encode_words`: list of arrays ``(n_words, dim)``.

    Example:
        >>> enc = TokenEncoder()
        >>> [s.states.shape for s in enc.encode(["I love it"])]
        [(5, 384)]
        >>> [w.shape for w in enc.encode_words([["I", "love", "it"]])]
        [(3, 384)]
    """

    kind = "token"

    def __init__(self, model: str | os.PathLike = DEFAULT_MODEL, device: str | None = None, batch_size: int = 32,
                 max_length: int = 128):
        super().__init__(model, device, batch_size, max_length)
        self._tokenizer: Any = None
        self._word_tokenizer: Any = None
        self._limit: int | None = None

    @property
    def model(self):
        """The Hugging Face model (loaded on first access)."""
        if self._model is None:
            self._load()
        return self._model

    @property
    def tokenizer(self):
        """The fast tokenizer (loaded on first access)."""
        if self._tokenizer is None:
            self._load()
        return self._tokenizer

    @property
    def word_tokenizer(self):
        """The tokenizer for word lists (:meth:`encode_words`): :attr:`tokenizer`, except for a byte-level BPE
        (RoBERTa) that does not add a space before the first word. Such a tokenizer reads each given word as
        running text reads a word after a space (``Ġlove``) only with ``add_prefix_space=True``; without it every
        word would be tokenized as if it were glued to the one before (and transformers 4 refuses word lists)."""
        if self._word_tokenizer is None:
            tokenizer = self.tokenizer
            if _byte_level_without_prefix_space(tokenizer):
                from transformers import AutoTokenizer

                tokenizer = AutoTokenizer.from_pretrained(str(transformer_folder(self.source.path)),
                                                          local_files_only=True, add_prefix_space=True)
            self._word_tokenizer = tokenizer
        return self._word_tokenizer

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    def _load(self) -> None:
        from transformers import AutoModel, AutoTokenizer

        configure_threads()
        folder = transformer_folder(self.source.path)
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        if not getattr(tokenizer, "is_fast", False):
            raise DataFormatError("TokenEncoder needs a fast tokenizer (tokenizer.json) for word ids",
                                  path=folder)
        model = AutoModel.from_pretrained(str(folder), local_files_only=True).to(self.device).eval()
        if self.fp16:
            model.half()
        limit = model_max_length(tokenizer, model.config)
        self._limit = self.max_length if limit is None else min(self.max_length, limit)
        self._tokenizer, self._model = tokenizer, model

    # -- encoding ---------------------------------------------------------------------------------------------
    def encode(self, texts: Iterable[str], batch_size: int | None = None,
               show_progress: bool | None = None) -> list[TokenStates]:
        """Sub-word tokens and their last-layer states for each text, in input order."""
        texts = check_texts(texts)
        if not texts:
            return []
        out: list[TokenStates | None] = [None] * len(texts)
        for idx, enc, hidden, truncated in self._batches(texts, False, batch_size, show_progress):
            mask = enc["attention_mask"].bool().numpy()
            for row, i in enumerate(idx):
                keep = mask[row]  # by mask, not by length: some tokenizers pad on the left
                ids = enc["input_ids"][row].numpy()[keep].tolist()
                out[i] = TokenStates(
                    tokens=self.tokenizer.convert_ids_to_tokens(ids),
                    states=hidden[row][keep],
                    word_ids=[w for w, k in zip(enc.word_ids(row), keep) if k],
                    offsets=[tuple(o) for o in enc["offset_mapping"][row].numpy()[keep].tolist()],
                    truncated=bool(truncated[row]),
                )
        return out  # type: ignore[return-value]

    def encode_words(self, words: Sequence[Sequence[str]], batch_size: int | None = None,
                     show_progress: bool | None = None) -> list[np.ndarray]:
        """One state per word: the mean of its sub-word states.

        Args:
            words: one list of words per text (e.g. ``[["I", "love", "it"], ...]``).

        Returns:
            one float32 array ``(len(words[k]), dim)`` per text. A word with no sub-word inside ``max_length``
            (cut by truncation, which is warned about, or an empty string) gets a zero vector.
        """
        if isinstance(words, (str, bytes)):
            raise DataFormatError("expected a list of word lists, got a single string")
        lists = [check_texts(ws, what=f"words of text {k}") for k, ws in enumerate(words)]
        if not lists:
            return []
        import torch

        out: list[np.ndarray | None] = [None] * len(lists)
        for idx, enc, hidden, _ in self._batches(lists, True, batch_size, show_progress):
            n_words = max(len(lists[i]) for i in idx)
            # Scatter-mean on the batch: token (row, t) adds into slot row * n_words + word_id.
            wid = torch.tensor([[-1 if w is None else w for w in enc.word_ids(r)] for r in range(len(idx))])
            keep = wid >= 0
            slot = (torch.arange(len(idx)).unsqueeze(1) * n_words + wid)[keep]
            states = torch.from_numpy(hidden)[keep]
            sums = torch.zeros(len(idx) * n_words, hidden.shape[-1]).index_add_(0, slot, states)
            counts = torch.bincount(slot, minlength=len(idx) * n_words).clamp_(min=1).unsqueeze(1)
            means = (sums / counts).view(len(idx), n_words, -1).numpy()
            for row, i in enumerate(idx):
                out[i] = means[row, :len(lists[i])].copy()
        return out  # type: ignore[return-value]

    def _batches(self, inputs: list, split_words: bool, batch_size: int | None, show_progress: bool | None):
        """Yield ``(input indices, BatchEncoding, float32 hidden states (B, T, D), truncated flags)``."""
        import torch
        from tqdm.auto import tqdm

        bs = self.batch_size if batch_size is None else int(batch_size)
        if bs < 1:
            raise ValueError(f"batch_size must be >= 1, got {bs}")
        tokenizer, model = (self.word_tokenizer if split_words else self.tokenizer), self.model
        limit = self._limit
        lengths = np.fromiter((len(x) for x in tokenizer(inputs, is_split_into_words=split_words,
                                                           truncation=False, verbose=False)["input_ids"]),
                              dtype=np.int64, count=len(inputs))
        truncated = lengths > limit
        extra = "; words past the limit get zero vectors" if split_words else ""
        warn_truncated(int(truncated.sum()), len(inputs), limit, extra)
        order = length_order(lengths)
        with tqdm(total=len(inputs), desc="encoding tokens", unit="text",
                  disable=show_bar(show_progress, len(inputs)), leave=False) as bar:
            for start in range(0, len(inputs), bs):
                idx = order[start:start + bs]
                enc = tokenizer([inputs[i] for i in idx], is_split_into_words=split_words, truncation=True,
                                max_length=limit, padding=True, return_offsets_mapping=True, return_tensors="pt")
                feed = {k: v.to(self.device) for k, v in enc.items() if k != "offset_mapping"}
                with torch.inference_mode():
                    hidden = model(**feed).last_hidden_state.float().cpu().numpy()
                yield idx, enc, hidden, truncated[idx]
                bar.update(len(idx))

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(model={os.fspath(self.model_name)!r}, device={self._device_arg!r}, "
                f"batch_size={self.batch_size}, max_length={self.max_length})")


def _byte_level_without_prefix_space(tokenizer: Any) -> bool:
    """Whether a fast tokenizer pre-tokenizes byte-level (GPT-2 / RoBERTa BPE) without adding a leading space."""
    import json

    def find(node: Any) -> bool:
        if isinstance(node, dict):
            if node.get("type") == "ByteLevel" and not node.get("add_prefix_space", False):
                return True
            return any(find(v) for v in node.get("pretokenizers", []) or [])
        return False

    try:
        return find(json.loads(tokenizer.backend_tokenizer.to_str()).get("pre_tokenizer"))
    except (AttributeError, ValueError):
        return False
