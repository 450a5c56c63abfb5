#!/usr/bin/env bash
# Create .venv (or $MMDREAM_VENV) and install mmdream with its cluster and test extras. Safe to re-run.
# torch is pinned to 2.13.0, a CPU wheel here; the check below refuses an install that pulled CUDA packages.
# Output: one line per step saying what is installed and why; pip's own output only when it fails.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${MMDREAM_VENV:-.venv}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
pip_quietly() {  # pip with its output kept for a failure only
    if ! "$venv/bin/python" -m pip --disable-pip-version-check "$@" >"$log" 2>&1; then
        cat "$log" >&2
        echo "setup: pip $* failed (output above)" >&2
        exit 1
    fi
}
if [ ! -x "$venv/bin/python" ]; then
    echo "setup: creating the virtual environment $venv" >&2
    python3 -m venv "$venv"
    echo "setup: upgrading pip in $venv (the one venv ships may not read this project's pyproject.toml)" >&2
    pip_quietly install -q --upgrade pip
fi
echo "setup: installing mmdream and its dependencies into $venv (torch CPU, Ray for render, pytest for tests;" \
     "from the package registry, several minutes the first time)" >&2
pip_quietly install -q -e ".[cluster,test]"
"$venv/bin/python" - <<'PY'
import importlib.metadata as md, sys
import torch
cuda = sorted(d.metadata["Name"] for d in md.distributions() if d.metadata["Name"].lower().startswith("nvidia"))
if cuda and not torch.cuda.is_available():
    sys.exit(f"setup: CUDA packages were installed on a CPU machine: {cuda}")
print(f"setup: mmdream installed with torch {torch.__version__}", file=sys.stderr)
PY
