"""What kgemo knows about each Hugging Face encoder family, keyed by ``config.model_type``.

* :func:`lora_target_modules` — the linear layers LoRA adapts: the attention's query and value projections (the
  LoRA paper's choice), named as each family names them (:data:`LORA_TARGETS`), found by name pattern for a
  family not in the table, or given in the fine-tuning config (``lora.target_modules``).
* :func:`fast_path` — whether the plain-torch BERT of :mod:`kgemo.encoders.bert_sentence` computes exactly what
  the family's Hugging Face model computes (BERT; RoBERTa, XLM-R and CamemBERT, whose positions start after the
  padding index; ELECTRA without its embedding projection), and with which offsets and inputs. Every other family
  (MPNet's relative position bias, DeBERTa's disentangled attention, ...) runs through transformers.
* :func:`describe` — the architecture as a fine-tuned encoder folder records it (``encoder.json``).

Imports nothing heavy: tables and config dictionaries only (a model object is passed in where one is needed).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from ..errors import KgemoError

__all__ = ["LORA_TARGETS", "lora_target_modules", "linear_layer_names", "FastPath", "fast_path", "describe"]

#: ``config.model_type`` → the attention's query and value projections, as the family names its modules.
LORA_TARGETS: dict[str, tuple[str, ...]] = {
    "bert": ("query", "value"),
    "roberta": ("query", "value"),
    "xlm-roberta": ("query", "value"),
    "xlm-roberta-xl": ("query", "value"),
    "camembert": ("query", "value"),
    "electra": ("query", "value"),
    "albert": ("query", "value"),
    "ernie": ("query", "value"),
    "mpnet": ("q", "v"),
    "deberta-v2": ("query_proj", "value_proj"),
    "deberta": ("in_proj",),            # DeBERTa v1: one fused query/key/value projection
    "distilbert": ("q_lin", "v_lin"),
    "modernbert": ("Wqkv",),           # fused query/key/value
}

# Fallback for families not in the table: query and value projections by their usual names, else a fused one.
_QUERY = re.compile(r"^(q|query|q_proj|query_proj|q_lin|wq|to_q)$", re.IGNORECASE)
_VALUE = re.compile(r"^(v|value|v_proj|value_proj|v_lin|wv|to_v)$", re.IGNORECASE)
_FUSED = re.compile(r"^(qkv|wqkv|in_proj|qkv_proj|query_key_value|c_attn)$", re.IGNORECASE)


def linear_layer_names(model: Any) -> list[str]:
    """The distinct last name components of ``model``'s ``torch.nn.Linear`` modules (what LoRA can target)."""
    import torch

    return sorted({name.rsplit(".", 1)[-1] for name, module in model.named_modules()
                   if isinstance(module, torch.nn.Linear)})


def lora_target_modules(model: Any, override: list[str] | tuple[str, ...] | None = None) -> list[str]:
    """The module names LoRA adapts in ``model`` (a Hugging Face ``AutoModel``).

    Args:
        model: the transformer, before peft wraps it.
        override: names given by the user (``lora.target_modules``); checked to be linear layers of ``model``.

    Returns:
        the override; else the family's entry in :data:`LORA_TARGETS` when ``model`` has those layers; else the
        linear layers whose names look like query and value projections (``q``/``query``/``q_proj``/``query_proj``
        ... and their ``v`` counterparts), else a fused query/key/value projection (``qkv``, ``in_proj``, ...).

    Raises:
        KgemoError: an override names no linear layer of the model, or no attention projection can be found (the
            message lists the model's linear layers, for ``lora.target_modules``).
    """
    names = linear_layer_names(model)
    kind = getattr(getattr(model, "config", None), "model_type", None)
    if override:
        missing = [m for m in override if m not in names]
        if missing:
            raise KgemoError(f"lora.target_modules {list(missing)} are not modules of the base model ({kind}); its "
                             f"linear layers are named {names}")
        return list(override)
    table = LORA_TARGETS.get(str(kind))
    if table and all(t in names for t in table):
        return list(table)
    query = [n for n in names if _QUERY.match(n)]
    value = [n for n in names if _VALUE.match(n)]
    if query and value:
        return query + value
    fused = [n for n in names if _FUSED.match(n)]
    if fused:
        return fused
    raise KgemoError(f"model type {kind!r}: no attention projection found for LoRA; set lora.target_modules to "
                     f"some of its linear layers: {names}")


@dataclass(frozen=True)
class FastPath:
    """How the plain-torch BERT computes a family exactly.

    Attributes:
        model_type: the family.
        position_offset: the index of the first token's position embedding (0 for BERT; RoBERTa-like models count
            positions from ``padding_idx + 1``).
        segment_ids: whether the family's tokenizer feeds segment (token type) ids for text pairs.
        tokenizer_classes: the tokenizer classes whose saved ``tokenizer.json`` the fast path may read alone (a
            fine-tuned folder with another tokenizer class loads through transformers).
    """

    model_type: str
    position_offset: int
    segment_ids: bool
    tokenizer_classes: tuple[str, ...]

    @property
    def roberta_like(self) -> bool:
        return self.position_offset > 0


# model_type → (positions after the padding index, segment ids, tokenizer classes)
_FAST: dict[str, tuple[bool, bool, tuple[str, ...]]] = {
    "bert": (False, True, ("BertTokenizer",)),
    "electra": (False, True, ("ElectraTokenizer", "BertTokenizer")),
    "roberta": (True, False, ("RobertaTokenizer",)),
    "xlm-roberta": (True, False, ("XLMRobertaTokenizer",)),
    "camembert": (True, False, ("CamembertTokenizer",)),
}


def fast_path(config: Mapping[str, Any]) -> FastPath | None:
    """The :class:`FastPath` of a model's ``config.json`` (a dict), or ``None`` when transformers must run it.

    Covered: BERT, RoBERTa, XLM-R, CamemBERT and ELECTRA with absolute positions and exact GELU; ELECTRA only when
    its embeddings are as wide as its hidden states (no embedding projection).
    """
    kind = config.get("model_type")
    if kind not in _FAST:
        return None
    if config.get("position_embedding_type", "absolute") != "absolute" or config.get("hidden_act") != "gelu":
        return None
    if kind == "electra" and int(config.get("embedding_size", config.get("hidden_size"))) != \
            int(config.get("hidden_size")):
        return None
    roberta_like, segment_ids, classes = _FAST[kind]
    offset = int(config.get("pad_token_id", 1)) + 1 if roberta_like else 0
    return FastPath(kind, offset, segment_ids, classes)


def describe(config: Any, model_class: str | None = None) -> dict[str, Any]:
    """The architecture of a transformer config (a ``PretrainedConfig`` or its dict), as ``encoder.json`` records
    it: family, class, sizes, and whether the plain-torch fast path computes it."""
    c = config if isinstance(config, Mapping) else config.to_dict()
    keys = ("model_type", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
            "vocab_size", "max_position_embeddings")
    out = {k: c.get(k) for k in keys}
    out["architectures"] = c.get("architectures")
    if model_class:
        out["model_class"] = model_class
    out["plain_torch"] = fast_path(c) is not None
    return out
