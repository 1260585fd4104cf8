"""Import PyG without the Hugging Face stack it pulls in for an optional feature.

PyG 2.8 imports its whole package eagerly, and ``torch_geometric.llm`` (reached through ``torch_geometric.datasets``)
imports ``transformers`` only to name a type (``BatchEncoding``), falling back to ``dict`` when transformers is
absent. Importing transformers costs about a second of a cold start that kgemo's default path never needs, so while
PyG is first imported, transformers is reported absent; it imports normally afterwards. Every kgemo package that
uses PyG imports this module first.
"""
from __future__ import annotations

import sys

if "torch_geometric" not in sys.modules and "transformers" not in sys.modules:
    sys.modules["transformers"] = None  # type: ignore[assignment]  # makes `import transformers` raise ImportError
    try:
        import torch_geometric  # noqa: F401
    finally:
        del sys.modules["transformers"]
