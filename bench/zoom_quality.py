"""Does a long zoom run away? Renders (or resumes) a zoom film and measures it second by second.

Per second of the film: the mean luminance's drift from the first second's (%), the mean saturation's drift (%),
the share of clipped pixels (any channel at 0 or 255; the worst frame of the second, %), and the change beyond the
zoom's own motion (255 × mean |F_t − move(F_{t−1})|, the transform that made frame t as the reference flow: the film
flicker measure of :mod:`mmdream.eval.metrics`, where the optical flow between source frames is the reference) beside
the same for the zoom's frames without the dream (only the resampling). With a sound: r(drive, realised zoom
speed), the speed measured from the frames (a least-squares fit of a zoom about the centre to the DIS optical flow
between consecutive frames), and r(drive, dream strength) (mean |dreamed − moved| per frame).

    python bench/zoom_quality.py --size 160 --seconds 60 --work /tmp/zoom60         # the no-runaway check
    python bench/zoom_quality.py --size 160 --seconds 20 --audio music.wav --drive onset --work /tmp/zoom20

The work folder makes a killed run resume. Bounds checked: drift ≤ 5 %, clipped ≤ 2 % in every second.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch

from mmdream.schedules.drive import AVParams
from mmdream.backbones import load_backbone
from mmdream.dream.image import DreamParams
from mmdream.dream.zoom import ZoomParams, ZoomStep, move
from mmdream.pipelines.store import FrameStore
from mmdream.media import storage
from mmdream.objectives.terms import build_objective
from mmdream.ops.flow import optical_flow
from mmdream.pipelines.zoom import ZoomFilmParams, plan_zoom, render_zoom

DRIFT_BOUND, CLIP_BOUND = 0.05, 0.02


def luma(frame: torch.Tensor) -> float:
    return float((frame * torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)).sum(0).mean())


def saturation(frame: torch.Tensor) -> float:
    """Mean HSV saturation (max − min) / max."""
    hi, lo = frame.max(0).values, frame.min(0).values
    return float(((hi - lo) / hi.clamp_min(1e-6)).mean())


def clipped(frame: torch.Tensor) -> float:
    """Share of pixels with a channel at 0 or 255 (8-bit)."""
    q = frame.mul(255).round()
    return float(((q <= 0) | (q >= 255)).any(0).float().mean())


def realised_scale(prev: torch.Tensor, cur: torch.Tensor) -> float:
    """The zoom about the centre that best explains the optical flow from ``cur`` back to ``prev``: cur(p) ≈
    prev(c + (p − c) / s), so the flow is (p − c)(1/s − 1); fitted by least squares on the inner 80 %."""
    flow = optical_flow(cur, prev)
    _, h, w = flow.shape
    ys, xs = torch.meshgrid(torch.arange(h) - (h - 1) / 2, torch.arange(w) - (w - 1) / 2, indexing="ij")
    inner = (xs.abs() < 0.4 * w) & (ys.abs() < 0.4 * h)
    k = float(((flow[0] * xs + flow[1] * ys)[inner]).sum() / ((xs ** 2 + ys ** 2)[inner]).sum())
    return 1.0 / (1.0 + k)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", default=os.path.join(os.environ.get("MMDREAM_MEDIA", "../shared/media"), "images",
                                                    "chelsea.png"))
    ap.add_argument("--size", type=int, default=160)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--fps", type=float, default=25.0)
    ap.add_argument("--backbone", default="efficientnet_lite0")
    ap.add_argument("--audio", default=None)
    ap.add_argument("--drive", default="none")
    ap.add_argument("--release-s", type=float, default=AVParams.release_s)
    ap.add_argument("--anchor", type=float, default=ZoomParams.anchor)
    ap.add_argument("--work", required=True, help="work folder (kept: rerun to resume)")
    ap.add_argument("--out", default=None, help="film to write (default: WORK/zoom.mp4)")
    args = ap.parse_args()
    torch.set_num_threads(1)

    film = ZoomFilmParams(seconds=args.seconds, fps=args.fps)
    plan = plan_zoom(args.input, film, args.size, args.audio)
    backbone = load_backbone(args.backbone)
    still, params = DreamParams(), ZoomParams(anchor=args.anchor)
    av = AVParams(drive=args.drive, release_s=args.release_s)
    out = args.out or str(Path(args.work) / "zoom.mp4")
    start = time.perf_counter()
    records = render_zoom(plan, out, backbone, build_objective(backbone), still, params, av, work_dir=args.work)
    seconds_taken = time.perf_counter() - start
    work = FrameStore(storage.join(args.work, "frames"), json.loads(storage.read_text(
        storage.join(args.work, "frames", "settings.json"))))

    fps = int(round(plan.fps))
    per_second: list[dict[str, float]] = []
    change, speeds = [], []
    prev = None
    rows: list[dict[str, list[float]]] = []
    for t in range(plan.frames):
        frame = work.frame(t)
        s = t // fps
        if s == len(rows):
            rows.append({"luma": [], "sat": [], "clip": [], "change": []})
        row = rows[s]
        row["luma"].append(luma(frame))
        row["sat"].append(saturation(frame))
        row["clip"].append(clipped(frame))
        if prev is not None:
            r = records[t]
            step = ZoomStep(r["scale"], r["angle"], (r["shift_x"], r["shift_y"]), r["drive"])
            moved = move(prev[None], step)[0]
            c = 255 * float((frame - moved).abs().mean())
            row["change"].append(c)
            change.append(c)
            if args.audio:
                speeds.append(math.log(realised_scale(prev, frame)))
        prev = frame
    base_luma, base_sat = np.mean(rows[0]["luma"]), np.mean(rows[0]["sat"])
    for s, row in enumerate(rows):
        entry = {"second": s, "luma_drift_pct": round(100 * (np.mean(row["luma"]) / base_luma - 1), 2),
                 "saturation_drift_pct": round(100 * (np.mean(row["sat"]) / base_sat - 1), 2),
                 "clipped_pct_max": round(100 * max(row["clip"]), 3),
                 "change_beyond_motion_255": round(float(np.mean(row["change"])) if row["change"] else 0.0, 2)}
        per_second.append(entry)
        print(json.dumps(entry))
    summary = {
        "frames": plan.frames, "fps": plan.fps, "size": f"{plan.width}x{plan.height}", "backbone": args.backbone,
        "render_s": round(seconds_taken, 1),
        "max_abs_luma_drift_pct": max(abs(e["luma_drift_pct"]) for e in per_second),
        "max_abs_saturation_drift_pct": max(abs(e["saturation_drift_pct"]) for e in per_second),
        "max_clipped_pct": max(e["clipped_pct_max"] for e in per_second),
        "median_change_beyond_motion_255": round(float(np.median(change)), 2),
        "drift_within_bound": all(abs(e["luma_drift_pct"]) <= 100 * DRIFT_BOUND for e in per_second),
        "clipped_within_bound": all(e["clipped_pct_max"] <= 100 * CLIP_BOUND for e in per_second),
    }
    if args.audio:
        drive = np.array([r["drive"] for r in records[1:]])
        summary["r_drive_zoom_speed"] = round(float(np.corrcoef(drive, speeds)[0, 1]), 3)
        summary["r_drive_strength"] = round(float(np.corrcoef(drive, [r["detail"] for r in records[1:]])[0, 1]), 3)
        summary["audio"] = args.audio
    print(json.dumps({"summary": summary}))


if __name__ == "__main__":
    main()
