#!/usr/bin/env bash
# Create .venv (or $MMDREAM_VENV) and install mmdream with its test extras. Safe to re-run.
# torch is pinned to 2.13.0, a CPU wheel here; the check below refuses an install that pulled CUDA packages.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${MMDREAM_VENV:-.venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
"$venv/bin/python" -m pip install -q --disable-pip-version-check -e ".[cluster,test]" 2>&1 | grep -v "^WARNING: Location" || true
"$venv/bin/python" - <<'PY'
import importlib.metadata as md, sys
import torch
cuda = sorted(d.metadata["Name"] for d in md.distributions() if d.metadata["Name"].lower().startswith("nvidia"))
if cuda and not torch.cuda.is_available():
    sys.exit(f"setup: CUDA packages were installed on a CPU machine: {cuda}")
print(f"setup: mmdream installed with torch {torch.__version__}", file=sys.stderr)
PY
