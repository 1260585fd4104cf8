"""Load a file under scripts/ as a module, the way ``scripts/benchmark.py`` loads its benchmarks (scripts/ is not a
package)."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def load_script(rel: str) -> ModuleType:
    """``rel`` (e.g. ``"scripts/evaluate.py"``, relative to the repository root) as a fresh module."""
    spec = importlib.util.spec_from_file_location(Path(rel).stem + "_under_test", ROOT / rel)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
