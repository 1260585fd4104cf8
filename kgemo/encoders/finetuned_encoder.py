"""A fine-tuned utterance encoder saved as a self-describing folder, loaded by ``SentenceEncoder(PATH)``.

Folder layout (written by :func:`save_encoder_folder`, atomically: built beside the target, then renamed)::

    minilm-lora-meld/
      encoder.json            format kgemo-encoder/1: base (as given + weights sha256), architecture (family,
                              class, sizes), mode, LoRA settings (the target modules as resolved), input format,
                              pooling, dim, tasks, head scores, training config, data checksums
      adapter/                mode lora: peft's adapter_model.safetensors + adapter_config.json
      model/                  mode full: the whole transformer (config.json + model.safetensors)
      tokenizer/              the tokenizer files
      heads.safetensors       one linear head per task (<task>.weight, <task>.bias), on the pooled vector
      labels.json             task → label space
      metrics.json            the run's dev/test scores (what the results tables read)
      README.md               a model card

Loading merges the LoRA adapter into the base weights, so a fine-tuned encoder costs what its base costs.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ..errors import DataFormatError, DataNotFoundError, KgemoError
from ..storage import atomic_write, replace_dir, write_json
from .lazy_model import check_texts, configure_threads, warn_truncated
from .model_source import ModelSource, resolve_alias, resolve_model, weights_sha256
from ..checksums import file_sha256, sha256_file
from .encoder_inputs import ContextFormat, EncoderInput, check_inputs, conversation_inputs
from .sentence_encoder import FOLDER_KINDS, SentenceEncoder

__all__ = ["FinetunedEncoder", "save_encoder_folder", "is_encoder_folder", "FORMAT"]

log = logging.getLogger(__name__)

FORMAT = "kgemo-encoder/1"
MODES = ("lora", "full")
#: Where each mode keeps its trained weights, relative to the folder.
WEIGHTS_FILE = {"lora": "adapter/adapter_model.safetensors", "full": "model/model.safetensors"}
#: What the heads read (``encoder.head_input`` of the fine-tuning config), as recorded in encoder.json.
_HEAD_INPUTS = {"pooled": "the mean-pooled vector before normalisation",
                "normalized": "the extracted feature (mean-pooled, L2-normalised) times sqrt(dim)"}


def is_encoder_folder(model: Any) -> bool:
    """Whether ``model`` names a folder written by :func:`save_encoder_folder` (cheap: one ``stat``)."""
    if not isinstance(model, (str, os.PathLike)) or model == "default":
        return False
    return (Path(model).expanduser() / "encoder.json").is_file()


class FinetunedEncoder(SentenceEncoder):
    r"""A fine-tuned encoder folder (see the module docstring), used like any :class:`SentenceEncoder`.

    ``SentenceEncoder(PATH)`` returns one when ``PATH`` holds an ``encoder.json``, so every experiment config can
    use it as ``data: {encoder: PATH}``. It reads each utterance the way it was trained: ``"speaker: text"`` plus
    the preceding turns (:meth:`conversation_inputs`); :meth:`encode` of plain strings reads them without context
    (for knowledge-base texts, say).

    Args:
        model: the folder.
        device, batch_size, fp16: as for :class:`SentenceEncoder`.
        max_length: tokens per input; default the length it was trained with (a different value changes the
            inputs, and is logged).

    Attributes:
        id: ``sentence:NAME@ADAPTER12:maxL:pastN`` — ``ADAPTER12`` starts the sha256 of the trained weights file
            (adapter, or the full weights), so features cached for an older adapter are never reused.
        dim: the pooled vector size (no model load).
        meta: the parsed ``encoder.json``.

    Example:
        >>> enc = SentenceEncoder("runs/encoders/minilm-lora-meld")      # a FinetunedEncoder
        >>> feats = enc.encode_conversations(load_dataset("meld", "test"))
        >>> feats[0].shape
        (12, 384)
    """

    def __init__(self, model: str | os.PathLike, device: str | None = None, batch_size: int = 64,
                 max_length: int | None = None, fp16: bool | None = None):
        model = resolve_alias(model)
        self.folder = Path(model).expanduser().resolve()
        self.meta = _read_meta(self.folder)
        trained = int(self.meta["input"]["max_length"])
        if max_length is not None and int(max_length) != trained:
            log.info("%s: max_length=%s differs from the %s it was trained with", self.folder, max_length, trained)
        super().__init__(model, device, batch_size, trained if max_length is None else max_length, fp16)
        self.context = ContextFormat(**self.meta["input"]["context"])
        self.normalize = bool(self.meta["pooling"].get("normalize", True))
        self._tokenizer = None

    # -- identity (cheap: no model load) ----------------------------------------------------------------------
    @property
    def source(self) -> ModelSource:
        return ModelSource(self.folder.name, self.folder)

    @property
    def weights_file(self) -> Path:
        return self.folder / WEIGHTS_FILE[self.meta["mode"]]

    @property
    def id(self) -> str:
        if self._id is None:
            if not self.weights_file.is_file():
                raise DataNotFoundError(f"{self.weights_file}: missing; the encoder folder {self.folder} is "
                                        "incomplete")
            sha = file_sha256(self.weights_file)
            norm = "" if self.normalize else ":raw"
            self._id = f"{self.kind}:{self.folder.name}@{sha[:12]}:max{self.max_length}:{self.context.name}{norm}"
        return self._id

    @property
    def dim(self) -> int:
        return int(self.meta["dim"])

    @property
    def architecture(self) -> dict[str, Any]:
        """The transformer's architecture: ``model_type`` (``bert``, ``roberta``, ``mpnet``, ``deberta-v2``, ...),
        ``model_class``, sizes, and whether it runs in plain torch (``plain_torch``). Recorded in ``encoder.json``;
        read from the transformer's ``config.json`` for folders written before it was (no model load)."""
        recorded = self.meta.get("architecture")
        if recorded:
            return dict(recorded)
        from .architectures import describe
        from .model_source import transformer_folder
        from .pooled_transformer import read_json_file

        if self.meta["mode"] == "full":
            return describe(read_json_file(self.folder / "model" / "config.json"))
        base = resolve_model(_base_name(self.meta["base"])).path
        return describe(read_json_file(transformer_folder(base) / "config.json"))

    # -- the model ---------------------------------------------------------------------------------------------
    def _load(self):
        from .encoder_inputs import InputTokenizer
        from .pooled_transformer import PooledTransformer, load_base, load_tokenizer, load_transformer

        configure_threads()
        meta_file = self.folder / "encoder.json"
        sha, recorded = file_sha256(self.weights_file), self.meta["weights"]["sha256"]
        if sha != recorded:
            raise KgemoError(f"{self.weights_file}: sha256 {sha[:12]}… differs from the {recorded[:12]}… recorded in "
                             f"{meta_file}; the folder was changed after training")
        base_path = None
        if self.meta["mode"] == "lora":
            base_path = resolve_model(_base_name(self.meta["base"])).path  # finding it loads nothing
            recorded, installed = self.meta["base"]["weights_sha256"], weights_sha256(base_path)
            if recorded != installed:
                raise KgemoError(
                    f"{meta_file}: the adapter was trained on base {self.meta['base']['model']!r} with weights "
                    f"sha256 {recorded[:12]}…, but the installed base ({base_path}) has {installed[:12]}…; "
                    "install the base it was trained on, or fine-tune again")
        light = _plain_torch_bert(self.folder, self.meta, base_path)
        if light is not None:  # a BERT-math model with a plain LoRA (or full weights): no transformers / peft import
            bert, family, pad = light
            self._tokenizer = InputTokenizer.from_file(self.folder / "tokenizer" / "tokenizer.json", self.max_length,
                                                       use_type_ids=family.segment_ids, pad_token=pad)
            net = _PooledBert(bert).to(self.device).eval()
            return net.half() if self.fp16 else net
        if self.meta["mode"] == "full":
            transformer = load_transformer(self.folder / "model")
        else:
            base = load_base(_base_name(self.meta["base"]))
            transformer = _merged(load_transformer(base.transformer_dir), self.folder / "adapter")
        self._tokenizer = InputTokenizer(load_tokenizer(self.folder / "tokenizer"), self.max_length)
        net = PooledTransformer(transformer).to(self.device).eval()
        if self.fp16:
            net.half()
        return net

    @property
    def tokenizer(self):
        """The :class:`~kgemo.encoders.encoder_inputs.InputTokenizer` (loads the model)."""
        _ = self.model
        return self._tokenizer

    # -- encoding ---------------------------------------------------------------------------------------------
    def conversation_inputs(self, conversation: Any) -> list[EncoderInput]:
        """The model input of every utterance, as in training (``"speaker: text"`` + past turns)."""
        return conversation_inputs(conversation, self.context)

    def encode(self, texts: Iterable[str], batch_size: int | None = None, show_progress: bool | None = None, *,
               sort: bool = True) -> np.ndarray:
        """Embed plain texts (no speaker, no context): float32 ``(len(texts), dim)``."""
        return self.encode_inputs(check_texts(texts), batch_size, show_progress)

    def encode_inputs(self, inputs: Sequence[EncoderInput], batch_size: int | None = None,
                      show_progress: bool | None = None) -> np.ndarray:
        """Embed strings and ``(target, context)`` pairs: float32 ``(len(inputs), dim)``, in input order."""
        from .pooled_transformer import embed_inputs

        inputs = check_inputs(inputs)
        if not inputs:
            return np.zeros((0, self.dim), dtype=np.float32)
        net, tok = self.model, self.tokenizer
        tok.targets_cut = 0
        out = embed_inputs(net, tok, inputs, self.batch_size if batch_size is None else int(batch_size),
                           self.device, self.normalize, show_progress)
        warn_truncated(tok.targets_cut, len(inputs), self.max_length, " (the utterance itself, not only context)")
        return out

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(model={os.fspath(self.model_name)!r}, mode={self.meta['mode']!r}, "
                f"base={self.meta['base']['model']!r}, context={self.context.name!r}, max_length={self.max_length})")


FOLDER_KINDS.append((is_encoder_folder, FinetunedEncoder))


def _base_name(base: Mapping[str, Any]) -> str:
    """The base as given at training; a relative path given then is found through its recorded absolute path."""
    given = base["model"]
    resolved = base.get("path")
    if given != "default" and resolved and not Path(given).expanduser().is_dir() and Path(resolved).is_dir():
        return resolved
    return given


class _PooledBert:
    """:class:`~kgemo.encoders.bert_sentence.BertSentenceModel` with the call signature of
    :class:`~kgemo.encoders.pooled_transformer.PooledTransformer` (``net(batch) -> [B, D]`` mean-pooled states)."""

    def __init__(self, bert):
        self.bert, self.dim, self.training = bert, bert.dim, False

    def __call__(self, batch):
        return self.bert.pool(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))

    def to(self, device):
        self.bert.to(device)
        return self

    def eval(self):
        self.bert.eval()
        return self

    def train(self, mode: bool = True):
        return self

    def half(self):
        self.bert.half()
        return self


def _plain_torch_bert(folder: Path, meta: Mapping[str, Any], base: Path | None):
    """The encoder in plain torch, ``(model, fast path, pad token)``, when its architecture is one the plain-torch
    BERT computes exactly (:func:`~kgemo.encoders.architectures.fast_path`: full weights, or a base with a plain
    LoRA adapter) and its tokenizer is the family's own; ``None`` otherwise (then transformers and peft load it)."""
    from .architectures import fast_path
    from .bert_sentence import BertSentenceModel, pad_token
    from .model_source import transformer_folder

    tok = folder / "tokenizer" / "tokenizer.json"
    if not tok.is_file() or meta.get("pooling", {}).get("mode", "mean") != "mean":
        return None
    try:
        if meta["mode"] == "full":
            config_dir, lora = folder / "model", None
        elif base is not None:
            config_dir, lora = transformer_folder(base), folder / "adapter"
        else:
            return None
        config = json.loads((config_dir / "config.json").read_text(encoding="utf-8"))
        family = fast_path(config)
        if family is None or not (config_dir / "model.safetensors").is_file():
            return None
        # Only the family's own tokenizer class is known to read text pairs as its tokenizer.json says (segment
        # ids or none, the padding token): anything else loads through transformers, which knows.
        tok_config = json.loads((folder / "tokenizer" / "tokenizer_config.json").read_text(encoding="utf-8"))
        if not str(tok_config.get("tokenizer_class", "")).startswith(family.tokenizer_classes):
            return None
        model = BertSentenceModel(config=config, weights=config_dir / "model.safetensors", normalize=False,
                                  lora=lora)
        return model, family, pad_token(folder / "tokenizer")
    except (ValueError, KeyError, OSError) as exc:
        log.debug("%s: plain-torch load not possible (%s); using transformers", folder, exc)
        return None


def _merged(transformer, adapter_dir: Path):
    """The base with the LoRA adapter folded into its weights (W + BA·alpha/r): no extra cost per input."""
    try:
        from peft import PeftModel
    except ImportError as exc:  # pragma: no cover - peft is needed only for LoRA folders
        raise KgemoError(f"{adapter_dir}: loading a LoRA encoder needs the package peft (pip install peft)") \
            from exc
    try:
        return PeftModel.from_pretrained(transformer, str(adapter_dir), is_trainable=False).merge_and_unload()
    except Exception as exc:  # peft raises ValueError/KeyError/RuntimeError on a broken or foreign adapter
        raise KgemoError(f"{adapter_dir}: the adapter does not load onto its base "
                         f"({type(exc).__name__}: {str(exc)[:200]})") from None


def _read_meta(folder: Path) -> dict[str, Any]:
    from .pooled_transformer import read_json_file

    path = folder / "encoder.json"
    meta = read_json_file(path)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DataFormatError(f"format {meta.get('format') if isinstance(meta, dict) else None!r}, expected "
                              f"{FORMAT!r}", path=path)
    for key in ("base", "mode", "weights", "input", "pooling", "dim"):
        if key not in meta:
            raise DataFormatError(f"missing key {key!r}", path=path)
    if meta["mode"] not in MODES:
        raise DataFormatError(f"mode {meta['mode']!r}, expected one of {MODES}", path=path)
    return meta


# -- writing -------------------------------------------------------------------------------------------------
def save_encoder_folder(path: str | os.PathLike, *, transformer: Any, tokenizer: Any, heads: Any, mode: str,
                        meta: Mapping[str, Any], label_spaces: Mapping[str, Any],
                        metrics: Mapping[str, Any] | None = None, card: str | None = None) -> Path:
    """Write a fine-tuned encoder folder at ``path`` (replacing one there) in one rename.

    Args:
        path: the folder to create.
        transformer: the trained transformer: a peft model (``mode="lora"``) or a plain ``AutoModel``.
        tokenizer: its Hugging Face tokenizer.
        heads: a :class:`~kgemo.encoders.pooled_transformer.TaskHeads`.
        mode: ``"lora"`` or ``"full"``.
        meta: the rest of ``encoder.json`` (base, lora, input, pooling, dim, tasks, scores, training, data, run);
            ``format``, ``mode``, ``weights`` and ``heads`` are filled in here.
        label_spaces: task → :class:`~kgemo.data.LabelSpace`, saved as ``labels.json``.
        metrics: written as ``metrics.json`` when given.
        card: the README.md text.

    Returns:
        the folder.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        sub = tmp / WEIGHTS_FILE[mode].split("/")[0]
        transformer.save_pretrained(str(sub))
        (sub / "README.md").unlink(missing_ok=True)  # peft's generic card; ours is at the top
        tokenizer.save_pretrained(str(tmp / "tokenizer"))
        tensors = {k: v.detach().cpu().contiguous() for k, v in heads.heads.state_dict().items()}
        save_file(tensors, str(tmp / "heads.safetensors"), metadata={"format": "kgemo-heads/1"})
        write_json(tmp / "labels.json", {t: s.to_dict() for t, s in label_spaces.items()})
        full = {"format": FORMAT, **meta, "mode": mode,
                "weights": {"file": WEIGHTS_FILE[mode], "sha256": sha256_file(tmp / WEIGHTS_FILE[mode])},
                "heads": {"file": "heads.safetensors", "sha256": sha256_file(tmp / "heads.safetensors"),
                          "input": _HEAD_INPUTS[meta.get("head_input", "pooled")], "dropout": heads.dropout.p}}
        write_json(tmp / "encoder.json", full)
        if metrics is not None:
            write_json(tmp / "metrics.json", metrics)
        if card:
            with atomic_write(tmp / "README.md", "w", encoding="utf-8") as fh:
                fh.write(card)
        replace_dir(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def model_card(meta: Mapping[str, Any]) -> str:
    """A short README.md for the folder, from its ``encoder.json``."""
    inp, scores = meta["input"], meta.get("scores", {})
    lines = [f"# {meta.get('name', 'kgemo encoder')}", "",
             f"An utterance encoder fine-tuned by `kgemo finetune` ({meta['mode']} on base `{meta['base']['model']}`"
             f"{_family(meta)}, {meta['dim']}-d) for {', '.join(meta.get('tasks', {}))} on "
             f"{', '.join(meta['data']['datasets'])}.",
             "", "## Use", "", "```python", "from kgemo.encoders import SentenceEncoder", "",
             "enc = SentenceEncoder(\"PATH/TO/THIS/FOLDER\")      # base + adapter, merged",
             "feats = enc.encode_conversations(conversations)   # one (len(conv), dim) array per conversation",
             "```", "", "or in an experiment config: `data: {encoder: PATH/TO/THIS/FOLDER}`.", "",
             "## Input", "",
             "Each utterance is read as `\"speaker: text\"`" if inp["context"]["speaker_prefix"] else
             "Each utterance is read as its text",
             f"with the {inp['context']['past_turns']} preceding turns as a second segment (oldest first; cut from "
             f"its start beyond {inp['max_length']} tokens, the utterance itself is kept whole).", "",
             f"Pooling: mean over tokens{', L2-normalised' if meta['pooling'].get('normalize', True) else ''}.", ""]
    if scores:
        lines += ["## Scores of the linear head", "", "| split | " + " | ".join(meta.get("tasks", {})) + " |",
                  "|---|" + "---|" * len(meta.get("tasks", {}))]
        for split in ("dev", "test"):
            if split in scores:
                lines.append(f"| {split} | " + " | ".join(f"{scores[split].get(t, float('nan')):.2f}"
                                                          for t in meta.get("tasks", {})) + " |")
        lines.append("")
        lines.append("Metrics: " + ", ".join(f"{t}: {v['metric']}" for t, v in meta.get("tasks", {}).items()) + ".")
    return "\n".join(lines) + "\n"


def _family(meta: Mapping[str, Any]) -> str:
    arch = meta.get("architecture") or {}
    return f", a {arch['model_type']} model" if arch.get("model_type") else ""
