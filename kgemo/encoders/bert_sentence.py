"""A BERT sentence encoder in plain torch: what sentence-transformers computes for the packaged MiniLM, without
importing sentence-transformers or transformers (about two seconds of a cold start on a small CPU).

It reads a sentence-transformers folder whose modules are a BERT-math ``Transformer``, mean ``Pooling`` and
optionally ``Normalize`` (``all-MiniLM-L6-v2`` and most of its siblings), with a fast-tokenizer ``tokenizer.json``
and ``model.safetensors``. BERT-math: the families :func:`~kgemo.encoders.architectures.fast_path` names (BERT;
RoBERTa, XLM-R and CamemBERT, whose positions start after the padding index; ELECTRA without an embedding
projection). :func:`can_load` says whether a folder is one; :class:`~kgemo.encoders.SentenceEncoder` uses this path
for such folders and sentence-transformers for every other model (MPNet, DeBERTa, ...). The numbers match
sentence-transformers to float rounding (tested per family).

The model, bottom up (nanoGPT order), for token ids :math:`w`, positions :math:`p` and a padding mask:

.. math::
    \\mathbf{h}^{(0)} = \\mathrm{LN}(\\mathbf{E}_w + \\mathbf{P}_p + \\mathbf{T}_0), \\quad
    \\mathbf{a} = \\mathrm{LN}(\\mathbf{h} + \\mathbf{W}_o\\,\\mathrm{MHA}(\\mathbf{h})), \\quad
    \\mathbf{h}' = \\mathrm{LN}(\\mathbf{a} + \\mathbf{W}_2\\,\\mathrm{GELU}(\\mathbf{W}_1 \\mathbf{a})), \\quad
    \\mathbf{s} = \\frac{\\sum_i m_i \\mathbf{h}^{(L)}_i}{\\sum_i m_i}, \\quad \\hat{\\mathbf{s}} = \\mathbf{s} / \\lVert\\mathbf{s}\\rVert
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .architectures import fast_path

__all__ = ["BertSentenceModel", "can_load"]


def _read(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def pad_token(folder: Path) -> str:
    """The padding token a saved tokenizer names (``tokenizer_config.json``, else ``special_tokens_map.json``);
    ``[PAD]`` when neither says."""
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        try:
            token = _read(folder / name).get("pad_token")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(token, dict):
            token = token.get("content")
        if isinstance(token, str) and token:
            return token
    return "[PAD]"


def can_load(folder: str | Path) -> bool:
    """Whether ``folder`` is a sentence-transformers model of a BERT-math family with mean pooling that this module
    reproduces."""
    folder = Path(folder)
    try:
        modules = _read(folder / "modules.json")
        config = _read(folder / "config.json")
        kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
        if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
            return False
        if modules[0].get("path", "") != "" or fast_path(config) is None:
            return False
        pooling = _read(folder / modules[1]["path"] / "config.json")
        modes = {k for k, v in pooling.items() if k.startswith("pooling_mode") and v}
        return modes == {"pooling_mode_mean_tokens"} and all(
            (folder / f).is_file() for f in ("tokenizer.json", "model.safetensors"))
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return False


class _Tokenizer:
    """The fast tokenizer of ``tokenizer.json`` with the call signature the encoders use from a Hugging Face
    tokenizer (``tok(texts, add_special_tokens=True, truncation=False, ...)["input_ids"]``)."""

    def __init__(self, path: Path, pad: str = "[PAD]"):
        from tokenizers import Tokenizer

        self.tok = Tokenizer.from_file(str(path))
        self.tok.no_padding()
        self.tok.no_truncation()
        self.pad_id = int(self.tok.token_to_id(pad) or 0)

    def __call__(self, texts: str | Sequence[str], add_special_tokens: bool = True, truncation: bool = False,
                 max_length: int | None = None, **_: Any) -> dict[str, Any]:
        single = isinstance(texts, str)
        ids = [e.ids for e in self.tok.encode_batch([texts] if single else list(texts),
                                                     add_special_tokens=add_special_tokens)]
        if truncation and max_length is not None:
            ids = [self._cut(x, max_length) if add_special_tokens else x[:max_length] for x in ids]
        return {"input_ids": ids[0] if single else ids}

    def decode(self, ids: Sequence[int]) -> str:
        return self.tok.decode(list(ids))

    @staticmethod
    def _cut(ids: list[int], max_length: int) -> list[int]:
        """``[CLS] t1 .. tn [SEP]`` (``<s> .. </s>``) cut to ``max_length`` tokens, keeping its final [SEP]."""
        return ids if len(ids) <= max_length else ids[: max_length - 1] + ids[-1:]

    def batch(self, texts: Sequence[str], max_length: int) -> tuple[Tensor, Tensor]:
        """Padded ids and attention mask ``[B, T]``, each text cut to ``max_length`` tokens (its [SEP] kept)."""
        ids = [self._cut(e.ids, max_length) for e in self.tok.encode_batch(list(texts))]
        width = max(len(x) for x in ids)
        out = torch.full((len(ids), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        for i, x in enumerate(ids):
            out[i, : len(x)] = torch.tensor(x, dtype=torch.long)
            mask[i, : len(x)] = 1
        return out, mask


class _Layer(nn.Module):
    def __init__(self, d: int, heads: int, ff: int, eps: float):
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.attn_out, self.attn_norm = nn.Linear(d, d), nn.LayerNorm(d, eps=eps)
        self.ff_in, self.ff_out, self.ff_norm = nn.Linear(d, ff), nn.Linear(ff, d), nn.LayerNorm(d, eps=eps)

    def forward(self, h: Tensor, mask: Tensor) -> Tensor:
        B, T, D = h.shape
        split = lambda x: x.view(B, T, self.heads, D // self.heads).transpose(1, 2)  # noqa: E731  [B, H, T, d]
        ctx = F.scaled_dot_product_attention(split(self.query(h)), split(self.key(h)), split(self.value(h)),
                                             attn_mask=mask)                                       # [B, H, T, d]
        a = self.attn_norm(h + self.attn_out(ctx.transpose(1, 2).reshape(B, T, D)))               # [B, T, D]
        return self.ff_norm(a + self.ff_out(F.gelu(self.ff_in(a))))


class BertSentenceModel(nn.Module):
    """A BERT-math encoder with mean pooling, as a torch module with ``encode`` (see the module docstring).

    Build it from a sentence-transformers folder (``BertSentenceModel(folder)``) or from its parts (a
    ``config.json`` of a family :func:`~kgemo.encoders.architectures.fast_path` covers, weights, optionally a LoRA
    adapter folded into them — what a fine-tuned encoder folder holds). It offers what
    :class:`~kgemo.encoders.SentenceEncoder` uses of a ``SentenceTransformer``: ``tokenizer``, ``max_seq_length``,
    ``encode(texts, batch_size=..., convert_to_numpy=True)``, ``get_sentence_embedding_dimension()``; :meth:`pool`
    takes token ids, mask and segment ids (text pairs).
    """

    def __init__(self, folder: str | Path | None = None, device: str = "cpu", *, config: dict | None = None,
                 weights: Path | None = None, tokenizer: Path | None = None, normalize: bool = True,
                 max_seq_length: int | None = None, lora: Path | None = None):
        super().__init__()
        pad = "[PAD]"
        if folder is not None:  # a sentence-transformers folder: every part from there
            folder = Path(folder)
            modules = _read(folder / "modules.json")
            config, weights, tokenizer = _read(folder / "config.json"), folder / "model.safetensors", \
                folder / "tokenizer.json"
            normalize = any(m["type"].endswith("Normalize") for m in modules)
            st = folder / "sentence_bert_config.json"
            max_seq_length = (_read(st).get("max_seq_length") if st.is_file() else None) or max_seq_length
            pad = pad_token(folder)
        if config is None or weights is None:
            raise ValueError("BertSentenceModel needs a sentence-transformers folder, or config and weights")
        c = config
        family = fast_path(c)
        if family is None:
            raise ValueError(f"model type {c.get('model_type')!r} is not computed by the plain-torch BERT; load it "
                             "with transformers")
        # RoBERTa-like models number positions from padding_idx + 1 (0 for BERT).
        self.position_offset = family.position_offset
        self.normalize = bool(normalize)
        self.dim, self.n_heads = int(c["hidden_size"]), int(c["num_attention_heads"])
        eps = float(c.get("layer_norm_eps", 1e-12))
        self.word = nn.Embedding(c["vocab_size"], self.dim)
        self.position = nn.Embedding(c["max_position_embeddings"], self.dim)
        self.token_type = nn.Embedding(c.get("type_vocab_size", 2), self.dim)
        self.emb_norm = nn.LayerNorm(self.dim, eps=eps)
        self.layers = nn.ModuleList(_Layer(self.dim, self.n_heads, c["intermediate_size"], eps)
                                    for _ in range(c["num_hidden_layers"]))
        self._load_weights(Path(weights), None if lora is None else Path(lora))
        self.tokenizer = _Tokenizer(Path(tokenizer), pad) if tokenizer is not None else None
        self.max_seq_length = int(max_seq_length or self.max_positions)
        self.to(device).eval()

    @property
    def max_positions(self) -> int:
        """The longest input the position embeddings allow."""
        return self.position.num_embeddings - self.position_offset

    @staticmethod
    def _names(n_layers: int) -> dict[str, str]:
        """Hugging Face BertModel (RobertaModel, ElectraModel, ...) parameter name → this module's."""
        names = {"embeddings.word_embeddings.weight": "word.weight",
                 "embeddings.position_embeddings.weight": "position.weight",
                 "embeddings.token_type_embeddings.weight": "token_type.weight",
                 "embeddings.LayerNorm.weight": "emb_norm.weight", "embeddings.LayerNorm.bias": "emb_norm.bias"}
        parts = {"attention.self.query": "query", "attention.self.key": "key", "attention.self.value": "value",
                 "attention.output.dense": "attn_out", "attention.output.LayerNorm": "attn_norm",
                 "intermediate.dense": "ff_in", "output.dense": "ff_out", "output.LayerNorm": "ff_norm"}
        for i in range(n_layers):
            for hf, ours in parts.items():
                for p in ("weight", "bias"):
                    names[f"encoder.layer.{i}.{hf}.{p}"] = f"layers.{i}.{ours}.{p}"
        return names

    def _load_weights(self, path: Path, lora: Path | None) -> None:
        from safetensors import safe_open

        names = self._names(len(self.layers))
        state = {}
        with safe_open(str(path), framework="pt") as f:
            keys = set(f.keys())
            # A task model's checkpoint prefixes the encoder's names (bert., roberta., electra., ...).
            word = "embeddings.word_embeddings.weight"
            prefix = "" if word in keys else min((k[: -len(word)] for k in keys if k.endswith("." + word)),
                                                 key=len, default="")
            for hf, ours in names.items():
                state[ours] = f.get_tensor(prefix + hf)
        if lora is not None:
            _fold_lora(state, names, lora)
        self.load_state_dict(state, strict=True)

    def get_sentence_embedding_dimension(self) -> int:
        return self.dim

    def pool(self, ids: Tensor, mask: Tensor, types: Tensor | None = None) -> Tensor:
        """Token ids, attention mask and segment ids ``[B, T]`` → mean-pooled token states ``[B, D]``."""
        B, T = ids.shape
        pos = torch.arange(T, device=ids.device)
        if self.position_offset:  # RoBERTa-like: the first token sits at padding_idx + 1 (right padding)
            pos = pos + self.position_offset
        seg = self.token_type.weight[0] if types is None else self.token_type(types)
        h = self.emb_norm(self.word(ids) + self.position(pos)[None] + seg)                         # [B, T, D]
        # Additive attention bias: 0 where a key is a real token, the dtype's minimum at padding (as BERT does).
        bias = (1.0 - mask[:, None, None, :].to(h.dtype)) * torch.finfo(h.dtype).min                # [B, 1, 1, T]
        for layer in self.layers:
            h = layer(h, bias)
        m = mask.unsqueeze(-1).to(h.dtype)
        return (h * m).sum(1) / m.sum(1).clamp_min(1e-9)                                            # [B, D]

    @torch.inference_mode()
    def forward(self, ids: Tensor, mask: Tensor, types: Tensor | None = None) -> Tensor:
        """Sentence vectors ``[B, D]`` (unit length when the model normalises)."""
        s = self.pool(ids, mask, types)
        return F.normalize(s, p=2, dim=1) if self.normalize else s

    def encode(self, texts: Sequence[str], batch_size: int = 32, show_progress_bar: bool = False,
               convert_to_numpy: bool = True) -> np.ndarray:
        device = next(self.parameters()).device
        out = []
        for a in range(0, len(texts), batch_size):
            ids, mask = self.tokenizer.batch(texts[a:a + batch_size], self.max_seq_length)
            out.append(self(ids.to(device), mask.to(device)).float().cpu())
        return torch.cat(out).numpy() if convert_to_numpy else torch.cat(out)

    def __repr__(self) -> str:
        offset = f", position_offset={self.position_offset}" if self.position_offset else ""
        return (f"BertSentenceModel(layers={len(self.layers)}, dim={self.dim}, heads={self.n_heads}, "
                f"max_seq_length={self.max_seq_length}, normalize={self.normalize}{offset})")


def _fold_lora(state: dict[str, Tensor], names: dict[str, str], folder: Path) -> None:
    r"""Add a peft LoRA adapter (``adapter_config.json`` + ``adapter_model.safetensors``) into ``state``:
    :math:`\mathbf{W} \leftarrow \mathbf{W} + \frac{\alpha}{r}\mathbf{B}\mathbf{A}` for every adapted weight,
    which is what ``merge_and_unload`` computes — so a merged adapter costs nothing per input."""
    from safetensors import safe_open

    cfg = _read(folder / "adapter_config.json")
    if cfg.get("peft_type") != "LORA" or cfg.get("use_dora") or cfg.get("use_rslora") or cfg.get("rank_pattern") \
            or cfg.get("alpha_pattern") or cfg.get("bias", "none") != "none":
        raise ValueError(f"{folder}: only plain LoRA adapters fold here")
    scale = float(cfg["lora_alpha"]) / float(cfg["r"])
    with safe_open(str(folder / "adapter_model.safetensors"), framework="pt") as f:
        keys = set(f.keys())
        for key in keys:
            if not key.endswith(".lora_A.weight"):
                continue
            module = key[: -len(".lora_A.weight")].removeprefix("base_model.model.")
            if module.startswith("pooler."):  # BERT's [CLS] pooler: mean pooling never reads it
                continue
            target = names.get(f"{module}.weight")
            if target is None:
                raise ValueError(f"{folder}: adapter weight {key} has no parameter of the plain-torch BERT to "
                                 "fold into")
            a, b = f.get_tensor(key), f.get_tensor(key.replace(".lora_A.", ".lora_B."))
            state[target] = state[target] + scale * (b.float() @ a.float()).to(state[target].dtype)
