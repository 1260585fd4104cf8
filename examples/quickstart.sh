#!/usr/bin/env bash
# One command on a fresh machine: install kgemo (CPU build of torch) into .venv and annotate a conversation offline.
#   bash examples/quickstart.sh [FILE]        (default: examples/conversation.json)
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d .venv ] || python3 -m venv .venv
. .venv/bin/activate
pip install -q torch==2.13.0   # the CPU wheel first, so no dependency pulls a multi-GB CUDA build
pip install -q .
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
kgemo annotate "${1:-examples/conversation.json}"
