#!/usr/bin/env bash
# Run the whole test suite (unit, doctests, slow known-answer and end-to-end tests), setting up .venv if needed.
#
# The whole suite runs on two pytest-xdist workers (REPGAP_TEST_WORKERS=N to change, 0 for one process), each
# module's tests in one worker (--dist loadscope: a module-scoped fixture such as the diffusion example's run is
# built once), one OpenMP thread per worker so that the two workers do not oversubscribe two cores. On a 2-core AMD
# EPYC without AVX-512 the suite took 17.7 min in one process with two threads (loaded) and 7.8 min this way.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ -x .venv/bin/python ] || bash scripts/setup.sh
# The whole suite goes to two workers; given arguments (one file, --pdb, -k ...) run in one process unless
# REPGAP_TEST_WORKERS says otherwise.
if [ $# -eq 0 ]; then default_workers=2; else default_workers=0; fi
workers="${REPGAP_TEST_WORKERS:-$default_workers}"
parallel=()
if [ "$workers" != "0" ]; then
  if .venv/bin/python -c "import xdist" >/dev/null 2>&1; then
    parallel=(-n "$workers" --dist loadscope)
    # One thread per worker for OpenMP runtimes we do not set explicitly; the library sets FAISS/torch threads itself.
    export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
  else
    echo "[test] pytest-xdist is missing from .venv (an older setup): one process; 'bash scripts/setup.sh' adds it" >&2
  fi
fi
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
exec .venv/bin/python -m pytest -q -p no:cacheprovider --durations=12 ${parallel[@]+"${parallel[@]}"} "$@"
