#!/usr/bin/env bash
# Build the sdist and the wheel, then install the wheel into a fresh virtual environment outside the repository
# and use it as a new user would: `repgap --help`, `repgap --version`, `repgap estimate` on two generated .npy
# files, and the quickstart. A packaging mistake (a data file left out, an import of repository-only code, an
# undeclared dependency) fails here even though every test run from the source tree passes.
#
#   bash scripts/check_wheel.sh          # called by .ci/run; needs .venv (scripts/setup.sh) with the dev extra
#
# The fresh environment gets torch==2.13.0 first (the local CPU wheel: a bare torch requirement would pull a
# multi-GB CUDA build), then the wheel with its declared dependencies and nothing else (no extras).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
repo_py="$here/.venv/bin/python"
work="$(mktemp -d "${TMPDIR:-/tmp}/repgap-wheel.XXXXXX")"
cleanup() { rm -rf "$work"; echo "[wheel] removed $work (${SECONDS}s)"; }
trap cleanup EXIT
case "$work/" in "$here"/*) echo "[wheel] FAIL: scratch directory $work is inside the repository" >&2; exit 1 ;; esac

step() { echo "[wheel] $* (${SECONDS}s)"; }
fail() { echo "[wheel] FAIL: $*" >&2; exit 1; }
pip_install() {  # as scripts/setup.sh: drop the notice about absent find-links folders, keep pip's exit code
  "$@" 2>&1 | sed -e '/is ignored: it is neither a file nor a directory/d'
}

# Build from a copy of the files git would put in a clean clone (tracked or new, not ignored): a stale
# *.egg-info/SOURCES.txt left in the working tree by earlier builds makes setuptools add every file it lists to
# the sdist, which hides package data missing from pyproject.toml.
step "copying the repository's files (as in a clean clone) to $work/src"
mkdir "$work/src"
git -C "$here" ls-files -z --cached --others --exclude-standard \
  | tar -C "$here" --null --files-from=- --ignore-failed-read -cf - | tar -C "$work/src" -xf -
step "building sdist and wheel (the wheel from the sdist) into $work/dist"
pip_install "$repo_py" -m build --outdir "$work/dist" "$work/src" >"$work/build.log" \
  || { cat "$work/build.log"; fail "python -m build"; }
"$repo_py" "$work/src/scripts/check_dist.py" "$work/dist"
wheel="$(ls "$work"/dist/*.whl)"
version="$(basename "$wheel" | cut -d- -f2)"

step "fresh virtual environment $work/venv"
"$PYTHON" -m venv "$work/venv"
venv_py="$work/venv/bin/python"
pip_install "$venv_py" -m pip install --quiet "torch==2.13.0"
pip_install "$venv_py" -m pip install --quiet "$wheel"

# Everything below runs from a directory outside the repository, without PYTHONPATH or user site-packages,
# so every import comes from the fresh environment.
mkdir "$work/run"
cd "$work/run"
export PYTHONNOUSERSITE=1 PYTHONWARNINGS=ignore OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
unset PYTHONPATH PYTHONHOME
site="$("$venv_py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"

step "imports and metadata come from $site"
"$venv_py" - "$site" "$version" <<'PY'
import importlib.metadata
import os
import sys

import torch

import lightning_repgap

site, version = sys.argv[1], sys.argv[2]
where = os.path.realpath(lightning_repgap.__file__)
assert where.startswith(os.path.realpath(site) + os.sep), f"lightning_repgap imported from {where}, not {site}"
assert lightning_repgap.__version__ == version, (lightning_repgap.__version__, version)
assert importlib.metadata.version("lightning_repgap") == version, importlib.metadata.version("lightning_repgap")
assert torch.__version__.startswith("2.13.0"), f"pip replaced torch: {torch.__version__}"
print(f"lightning_repgap {version} from {where}; torch {torch.__version__}")
PY

step "repgap --help / --version"
"$work/venv/bin/repgap" --help >help.txt || fail "repgap --help exited with $?"
grep -q "repgap estimate" help.txt || fail "repgap --help does not mention 'repgap estimate'"
[ "$("$work/venv/bin/repgap" --version)" = "repgap $version" ] || fail "repgap --version is not 'repgap $version'"

step "repgap estimate on a flat 2-torus in R^16"
"$venv_py" - <<'PY'
import numpy as np

rng = np.random.default_rng(0)
rotation, _ = np.linalg.qr(rng.standard_normal((16, 16)))
for name, n in (("train", 4000), ("test", 500)):
    angles = rng.uniform(0, 2 * np.pi, size=(n, 2))
    flat = np.concatenate([np.cos(angles), np.sin(angles), np.zeros((n, 12))], axis=1)
    np.save(f"{name}.npy", (flat @ rotation).astype(np.float32))
PY
"$work/venv/bin/repgap" estimate train.npy test.npy --n-bootstrap 50 --json estimate.json --quiet >estimate.txt \
  || fail "repgap estimate exited with $?"
"$venv_py" - <<'PY'
import json

values = json.load(open("estimate.json"))["values"]
assert values["gap"] is not None and values["gap"] > 0, values
assert 1.5 < values["dim"] < 2.5, f"gap dimension {values['dim']} of a flat 2-torus"
print(f"repgap estimate: gap {values['gap']:.4g}, dim {values['dim']:.2f} (a 2-torus)")
PY

step "quickstart (examples/quickstart.py copied outside the repository)"
cp "$here/examples/quickstart.py" .
"$venv_py" quickstart.py --epochs 2 --out logs >quickstart.txt || { cat quickstart.txt; fail "quickstart exited with $?"; }
cat quickstart.txt
rows="$(grep -cE '^ +[0-9]+ +0\.[0-9]+ ' quickstart.txt || true)"
[ "$rows" = 2 ] || fail "quickstart printed $rows epoch rows, expected 2"
[ -s logs/quickstart/version_0/metrics.csv ] || fail "quickstart wrote no metrics.csv"

step "OK: the wheel installs and runs outside the repository"
