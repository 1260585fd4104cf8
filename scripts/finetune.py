#!/usr/bin/env python
"""Fine-tune the utterance encoder: ``python scripts/finetune.py configs/finetune_meld.yaml [key=value ...]``.

Same as ``kgemo finetune``; see ``kgemo finetune --help`` and docs/finetune.md.
"""
import sys

from kgemo.cli import main

if __name__ == "__main__":
    sys.exit(main(["finetune", *sys.argv[1:]]))
