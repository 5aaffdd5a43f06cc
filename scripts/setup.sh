#!/usr/bin/env bash
# Create .venv and install lightning_repgap with its dev extras.
#
# Idempotent: a second run only re-installs the package in editable mode.
# torch is special: a bare "torch" requirement resolves to a multi-GB CUDA build,
# so we install the CPU wheel torch==2.13.0 only when no torch is importable yet,
# and otherwise keep whatever torch the environment already has.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"

PYTHON="${PYTHON:-python3}"
VENV="${REPGAP_VENV:-$here/.venv}"

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating virtual environment in $VENV"
  "$PYTHON" -m venv "$VENV"
fi
py="$VENV/bin/python"
# Some machines carry pip find-links that point at absent folders; drop pip's notice about each of them.
pip_install() {
  "$py" -m pip install --disable-pip-version-check --quiet "$@" 2>&1 | sed -e '/is ignored: it is neither a file nor a directory/d'
}

if ! "$py" -c "import torch" >/dev/null 2>&1; then
  echo "[setup] torch missing: installing the CPU build torch==2.13.0"
  pip_install "torch==2.13.0"
else
  echo "[setup] keeping installed torch $("$py" -c 'import torch; print(torch.__version__)')"
fi

extras="${REPGAP_EXTRAS:-dev,plot}"
echo "[setup] installing lightning_repgap[$extras]"
pip_install -e ".[${extras}]"
echo "[setup] done: $("$py" -c 'import torch, faiss, lightning, torchmetrics, numpy; print(f"torch {torch.__version__}, faiss {faiss.__version__}, lightning {lightning.__version__}, torchmetrics {torchmetrics.__version__}, numpy {numpy.__version__}")')"
