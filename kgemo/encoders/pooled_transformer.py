"""The network a fine-tuned encoder is: a Hugging Face transformer, mean pooling, and one linear head per task.

Imports torch: :class:`~kgemo.encoders.FinetunedEncoder` imports this module only when it loads a model.

Shared by the fine-tuning stage (:mod:`kgemo.training.finetune`, which trains it) and
:class:`~kgemo.encoders.FinetunedEncoder` (which loads it from a folder), so that both compute features the
same way:

* :func:`load_base` — the base model's folder, checked to be an encoder, with its tokenizer;
* :class:`PooledTransformer` — token states → one vector per input (mean over non-padding tokens, like the
  packaged sentence-transformer's pooling);
* :class:`TaskHeads` — dropout + a linear layer per task on the pooled vector;
* :func:`embed_inputs` — many inputs → float32 features, deduplicated and batched longest first.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import DataNotFoundError, KgemoError
from .lazy_model import length_order, show_bar
from .model_source import ModelSource, resolve_model, transformer_folder
from .encoder_inputs import EncoderInput, InputTokenizer

__all__ = ["BaseModel", "load_base", "PooledTransformer", "TaskHeads", "embed_inputs"]


@dataclass(frozen=True)
class BaseModel:
    """A base encoder found on disk: its name as given, its folder, and the transformer's sub-folder."""

    name: str                 # as the user gave it: "default", a path, or a hub name
    source: ModelSource       # the resolved folder (whose weights_sha256 the fine-tuned folder records)
    transformer_dir: Path     # where config.json and the weights sit (a sub-folder for some sentence-transformers)


def load_base(name: str | os.PathLike) -> BaseModel:
    """Find ``name`` (``"default"``, a local folder or a hub name) and check that it is an encoder.

    Only configs are read here (no weights), so a bad base fails fast, before anything is written.

    Raises:
        DataNotFoundError: the folder does not exist or has no ``config.json``.
        KgemoError: the config does not load, or describes a decoder-only or encoder-decoder model.
    """
    source = resolve_model(name)
    folder = transformer_folder(source.path)
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise DataNotFoundError(f"{source.path}: not a Hugging Face encoder folder (no config.json in {folder})")
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import (MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
                                                        MODEL_FOR_MASKED_LM_MAPPING_NAMES)

    try:
        config = AutoConfig.from_pretrained(str(folder), local_files_only=True)
    except Exception as exc:  # transformers raises ValueError/OSError/KeyError for unknown or broken configs
        raise KgemoError(f"{config_file}: not a config transformers can load as an encoder "
                         f"({type(exc).__name__}: {str(exc)[:160]})") from None
    kind = getattr(config, "model_type", None)
    decoder_only = kind in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and kind not in MODEL_FOR_MASKED_LM_MAPPING_NAMES
    if getattr(config, "is_encoder_decoder", False) or decoder_only:
        raise KgemoError(f"{config_file}: model type {kind!r} is not a bidirectional encoder (BERT, RoBERTa, "
                         "MiniLM, DeBERTa, ...); fine-tuning needs one")
    return BaseModel(os.fspath(name), source, folder)


def load_transformer(folder: Path):
    """``AutoModel`` from a local folder, offline, in eval mode."""
    from transformers import AutoModel

    try:
        return AutoModel.from_pretrained(str(folder), local_files_only=True).eval()
    except Exception as exc:  # missing or mismatched weight files surface as OSError / RuntimeError / ValueError
        raise KgemoError(f"{folder}: the encoder weights do not load ({type(exc).__name__}: {str(exc)[:200]})") \
            from None


def load_tokenizer(folder: Path):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except Exception as exc:
        raise KgemoError(f"{folder}: the tokenizer does not load ({type(exc).__name__}: {str(exc)[:200]})") \
            from None


class PooledTransformer(nn.Module):
    r"""A transformer whose token states are averaged into one vector per input.

    .. math::
        \mathbf{e} = \frac{\sum_t m_t \mathbf{h}_t}{\sum_t m_t}

    with :math:`m_t` the attention mask (special tokens count, padding does not), as in sentence-transformers'
    mean pooling.

    Args:
        transformer: a Hugging Face ``AutoModel`` (possibly wrapped by peft).

    Shapes:
        - input: ``input_ids``, ``attention_mask`` (and ``token_type_ids``) :math:`(B, T)`
        - output: :math:`(B, H)`
    """

    def __init__(self, transformer):
        super().__init__()
        self.transformer = transformer

    @property
    def dim(self) -> int:
        return int(self.transformer.config.hidden_size)

    def forward(self, batch: Mapping[str, Any]):
        states = self.transformer(**batch).last_hidden_state          # (B, T, H)
        mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)  # (B, T, 1)
        return (states * mask).sum(1) / mask.sum(1).clamp(min=torch.finfo(states.dtype).tiny)  # (B, H)


class TaskHeads(nn.Module):
    """One linear classifier per task on the pooled vector, with dropout before it.

    Args:
        dim: pooled vector size.
        n_classes: task → number of classes (the order of the label space).
        dropout: dropout probability before each head.

    Shapes:
        - input: :math:`(B, H)`
        - output: task → :math:`(B, C_{task})` logits
    """

    def __init__(self, dim: int, n_classes: Mapping[str, int], dropout: float = 0.1):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.heads = nn.ModuleDict({task: nn.Linear(dim, n) for task, n in n_classes.items()})

    def forward(self, pooled):
        x = self.dropout(pooled)
        return {task: head(x) for task, head in self.heads.items()}


def embed_inputs(net, tokenizer: InputTokenizer, inputs: Sequence[EncoderInput], batch_size: int,
                 device: str, normalize: bool = True, show_progress: bool | None = None,
                 desc: str = "encoding") -> np.ndarray:
    """Features of ``inputs`` (strings or ``(target, context)`` pairs): float32 ``(len(inputs), dim)``.

    Identical inputs are encoded once; batches are formed longest first (less padding), so the vector of an input
    does not depend on the others (up to float rounding). ``normalize`` scales every row to unit length, as the
    packaged sentence-transformer does.
    """
    first: dict[EncoderInput, int] = {}
    inverse = np.fromiter((first.setdefault(x, len(first)) for x in inputs), dtype=np.int64, count=len(inputs))
    unique = list(first)
    encoded = tokenizer(unique)
    order = length_order([len(ids) for ids, _ in encoded])
    out = np.empty((len(unique), net.dim), dtype=np.float32)
    from tqdm.auto import tqdm

    was_training = net.training
    net.eval()
    with torch.inference_mode(), tqdm(total=len(unique), desc=desc, unit="input", leave=False,
                                      disable=show_bar(show_progress, len(inputs))) as bar:
        for start in range(0, len(unique), batch_size):
            idx = order[start:start + batch_size]
            batch = {k: v.to(device) for k, v in tokenizer.pad([encoded[i] for i in idx]).items()}
            emb = net(batch).float()                                     # (b, H)
            if normalize:
                emb = torch.nn.functional.normalize(emb, dim=-1)
            out[idx] = emb.cpu().numpy()
            bar.update(len(idx))
    net.train(was_training)
    return out if len(unique) == len(inputs) else out[inverse]


def read_json_file(path: Path) -> Any:
    """JSON from ``path``; a missing or unparsable file is an error naming it."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataNotFoundError(f"{path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise KgemoError(f"{path}: not valid JSON ({exc})") from None
