#!/usr/bin/env bash
# Run the whole test suite (unit, doctests, slow known-answer and end-to-end tests), setting up .venv if needed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ -x .venv/bin/python ] || bash scripts/setup.sh
# One thread for OpenMP runtimes we do not set explicitly; the library sets FAISS/torch threads itself.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
exec .venv/bin/python -m pytest -q -p no:cacheprovider --durations=12 "$@"
