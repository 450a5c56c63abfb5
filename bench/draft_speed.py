"""How quick is a draft? The full render of a film and its draft (every Nth frame at a reduced size, the defaults of
:class:`mmdream.pipelines.draft.DraftParams`), side by side in one process, same backbone and options; prints both times and
their ratio (median of ``--repeats`` runs each, after a warm-up render), and the frames and sizes.

    python bench/draft_speed.py --size 160                 # the shared clip (Big Buck Bunny 320x180, 132 frames)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from mmdream.backbones import load_backbone
from mmdream.pipelines.draft import DraftParams, contact_sheet, draft_film
from mmdream.dream.image import DreamParams
from mmdream.dream.temporal import VideoParams
from mmdream.pipelines.film import FilmParams, dream_film, plan_film
from mmdream.objectives.terms import build_objective


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", default=os.path.join(os.environ.get("MMDREAM_MEDIA", "../shared/media"), "video",
                                                    "bbb_320x180.mp4"))
    ap.add_argument("--size", type=int, default=160)
    ap.add_argument("--backbone", default="efficientnet_lite0")
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(1)
    backbone = load_backbone(args.backbone)
    objective = build_objective(backbone)
    full = FilmParams(size=args.size)
    draft = draft_film(args.input, full, DraftParams())
    times: dict[str, list[float]] = {"full": [], "draft": []}
    with tempfile.TemporaryDirectory() as tmp:
        dream_film(args.input, Path(tmp) / "warm.mp4", backbone, objective, DreamParams(steps=1, octaves=1),
                   VideoParams(), FilmParams(size=32, stop=2))  # one-time costs (decoder, allocator) paid before
        for _ in range(args.repeats):
            for name, film in (("draft", draft), ("full", full)):
                start = time.perf_counter()
                dream_film(args.input, Path(tmp) / f"{name}.mp4", backbone, objective, DreamParams(), VideoParams(),
                           film)
                if name == "draft":
                    contact_sheet(Path(tmp) / "draft.mp4", Path(tmp) / "draft.png")
                times[name].append(time.perf_counter() - start)
    plans = {name: plan_film(args.input, film) for name, film in (("full", full), ("draft", draft))}
    result = {name: {"frames": p.count, "size": f"{p.width}x{p.height}", "fps": p.fps,
                     "seconds": round(statistics.median(times[name]), 1)} for name, p in plans.items()}
    result["draft_over_full"] = round(result["draft"]["seconds"] / result["full"]["seconds"], 3)
    result["backbone"] = args.backbone
    print(json.dumps(result))


if __name__ == "__main__":
    main()
