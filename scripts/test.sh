#!/usr/bin/env bash
# Fresh machine → installed kgemo → the whole test suite. Usage: bash scripts/test.sh [pytest args]
# torch is installed first, pinned to the CPU build, so that no other requirement pulls a multi-GB CUDA torch.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d .venv ] || python3 -m venv .venv
. .venv/bin/activate
pip install -q torch==2.13.0
pip install -q -e '.[test]'
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
set +e
python -m pytest -q -ra "$@"
rc=$?
set -e
# Exit 5 = "no tests collected". A developer's filter that matches nothing (`-k typo`) is not a failure of the
# product, so it passes locally; under CI (CI set and not false/0) or with no arguments at all it is a broken
# suite (a collection that finds nothing, a wrong path) and fails.
if [ "$rc" -eq 5 ]; then
  case "${CI:-}" in
    "" | false | 0)
      if [ "$#" -gt 0 ]; then
        echo "pytest: no tests collected for: $* (not a failure outside CI)"
        rc=0
      else
        echo "pytest: no tests collected" >&2
      fi ;;
    *) echo "pytest: no tests collected (CI=$CI): failing" >&2 ;;
  esac
fi
exit "$rc"
