#!/usr/bin/env python
"""Train a model from a config: ``python scripts/train.py configs/ket_meld.yaml [key=value ...] [--seeds 0 1 2]``.

Same as ``kgemo train``; see ``kgemo train --help``.
"""
import sys

from kgemo.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
