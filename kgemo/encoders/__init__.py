"""Encoders and the feature cache: texts → vectors, computed once and kept on disk.

* :class:`SentenceEncoder` — one vector per text (sentence-transformers; default the packaged MiniLM, 384-d).
* :class:`TokenEncoder` — hidden states per sub-word token, and per word (mean of its sub-words).
* :class:`FinetunedEncoder` — a folder written by ``kgemo finetune`` (``SentenceEncoder(PATH)`` returns one): the
  base with its LoRA adapter merged, reading each utterance with its speaker and past turns.
* :class:`FeatureCache` / :func:`dataset_features` — features keyed by encoder id, data checksums and texts,
  stored as safetensors, verified on load, rebuilt when corrupt or stale, resumable in chunks.

Importing this package is cheap; torch and the models load on first use.
"""
from __future__ import annotations

from ._common import TruncationWarning
from ..checksums import file_sha256, texts_sha256
from .encoder_inputs import ContextFormat, conversation_inputs
from .feature_cache import Encoder, FeatureCache, dataset_features
from .finetuned import FinetunedEncoder
from .sentence_encoder import SentenceEncoder
from .token_encoder import TokenEncoder, TokenStates

__all__ = ["SentenceEncoder", "FinetunedEncoder", "TokenEncoder", "TokenStates", "FeatureCache", "dataset_features",
           "Encoder", "ContextFormat", "conversation_inputs", "TruncationWarning", "file_sha256", "texts_sha256"]
