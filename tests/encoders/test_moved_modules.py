"""Renamed encoder modules keep their old import paths (with a DeprecationWarning)."""
from __future__ import annotations

import subprocess
import sys


def test_old_module_paths_still_import_the_renamed_modules():
    # A fresh interpreter: the old names must not be imported already by this test session.
    code = """
import warnings
warnings.simplefilter("error")
import kgemo.encoders as E
from kgemo.encoders import finetuned_encoder, lazy_model, model_source, pooled_transformer
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    import kgemo.encoders.finetuned as old
    from kgemo.encoders.finetuned_model import PooledTransformer
    from kgemo.encoders._common import resolve_model, weights_sha256, configure_threads, LazyModel
assert old is finetuned_encoder and E.finetuned is finetuned_encoder
assert finetuned_encoder.__spec__.name == "kgemo.encoders.finetuned_encoder"
assert PooledTransformer is pooled_transformer.PooledTransformer
assert resolve_model is model_source.resolve_model and configure_threads is lazy_model.configure_threads
assert LazyModel is lazy_model.LazyModel
messages = [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)]
assert len(messages) == 3 and "import from kgemo.encoders.finetuned_encoder" in messages[0], messages
try:
    import kgemo.encoders.no_such_module
except ModuleNotFoundError:
    pass
else:
    raise AssertionError("an unknown name imported")
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "ok"
