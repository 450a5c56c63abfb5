#!/usr/bin/env bash
# Set up and run the main job on its embedded default: `mmdream demo` dreams a bundled photo into dream_demo.png.
# Weights: $MMDREAM_WEIGHTS, else ../shared/weights if present, else the official download (cached).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -z "${MMDREAM_WEIGHTS:-}" ] && [ -d ../shared/weights ]; then export MMDREAM_WEIGHTS="$(cd ../shared/weights && pwd)"; fi
exec "${MMDREAM_VENV:-.venv}/bin/mmdream" demo "${@:-dream_demo.png}"
