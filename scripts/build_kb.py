#!/usr/bin/env python
"""Build knowledge caches: ``python scripts/build_kb.py conceptnet|atomic|comet|default|all [options]``.

The same entry point as ``kgemo kb build`` (see ``--help`` and docs/knowledge.md). Builds are resumable and
verified: re-running skips every finished part whose inputs and outputs still match their sha256.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kgemo.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["kb", "build", *sys.argv[1:]]))
