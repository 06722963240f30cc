#!/usr/bin/env bash
# Create .venv and install hardneg. torch 2.13.0 (CPU build, from the machine's local wheel
# cache or PyPI) goes in FIRST, so that nothing pulls a multi-GB CUDA build afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
# Set TORCH_INDEX_URL (e.g. PyTorch's CPU wheel index) to choose where torch comes from.
python -m pip install -q "torch==2.13.0" ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
# scripts/constraints.txt: the tested versions (HARDNEG_UNPINNED=1: the newest pyproject.toml allows)
if [ -n "${HARDNEG_UNPINNED:-}" ]; then
  python -m pip install -q -e ".[dev]"
else
  python -m pip install -q -e ".[dev]" -c scripts/constraints.txt
fi
echo "hardneg installed in .venv ($(python -c 'import hardneg; print(hardneg.__version__)'))"
