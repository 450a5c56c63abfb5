#!/usr/bin/env bash
# Peak RSS of a 4096x4096 dream with --tile 512 (target: under 4 GB), measured by /usr/bin/time -v.
#   bash bench/tile_memory.sh [STEPS]      (run from the repository root with the venv set up)
# The input is a 4096x4096 upscale of chelsea.png (a real photo); default octaves, STEPS steps each (default 1): memory is
# bounded by the tile, so more steps take longer but need no more memory.
set -euo pipefail
cd "$(dirname "$0")/.."
py="${MMDREAM_VENV:-.venv}/bin/python"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
"$py" - "$work/in.png" <<'PY'
import sys
from PIL import Image
from mmdream.media.samples import sample_path
Image.open(sample_path("chelsea.png")).convert("RGB").resize((4096, 4096), Image.Resampling.BICUBIC).save(sys.argv[1])
PY
/usr/bin/time -v "${MMDREAM_VENV:-.venv}/bin/mmdream" image "$work/in.png" "$work/out.png" --tile 512 \
    --steps "${1:-1}" --progress none 2> "$work/time.txt"
rss_kb=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$work/time.txt")
wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$work/time.txt")
echo "{\"size\": 4096, \"tile\": 512, \"peak_rss_mb\": $((rss_kb / 1024)), \"wall\": \"$wall\", \"target_mb\": 4096}"
