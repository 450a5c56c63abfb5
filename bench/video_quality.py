"""Film dream quality and speed with the default video settings, in one process.

    python bench/video_quality.py [--media DIR] [--independent 24] [--speed-frames 12] [--parts quality,speed]

Quality, on video/bbb_320x180.mp4 (all 132 frames at 320x180, VGG16 default layers):
  flicker  = mean_t |D_t - warp(D_{t-1})| on reliable pixels (flow from the source) / the same for the source
             (target <= 1.5), and against independent per-frame dreaming on the first N frames (target <= 1/3);
  strength = mean |D - S| on the 0-255 scale (target >= 8); tenths = last tenth's strength / first tenth's
             (target 0.6-2); drift = largest relative change of the dream/source mean-luminance ratio (<= 2%).
Speed, on video/bigbuckbunny.mp4 resized to 540x360: seconds per warm-started frame (median; goal <= 10 s on
2 cores) and the share of time outside the network's forward+backward (flow, warping, I/O, encoding).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import mmdream.dream.image as image_mod
from mmdream.eval import metrics
from mmdream.backbones import load_backbone
from mmdream.dream.temporal import VideoParams, dream_frames
from mmdream.pipelines.film import FilmParams, plan_film, source_frames
from mmdream.media.images import from_uint8, load_image, save_image, to_uint8
from mmdream.media.video import VideoWriter, read_frames
from mmdream.objectives.terms import build_objective


def quality(clip: Path, backbone, objective, independent: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    plan = plan_film(clip, FilmParams())
    source = list(source_frames(clip, plan, 0, plan.count))
    dreams = [d for d, _ in dream_frames(source, backbone, objective)]
    solo = [d for d, _ in dream_frames(source[:independent], backbone, objective, params=VideoParams(blend=0.0))]
    strengths = metrics.strengths(dreams, source)
    head = metrics.flicker(dreams[:independent], source[:independent])
    return {"frames": len(source), "flicker": metrics.flicker(dreams, source),
            "strength_255": 255 * statistics.mean(strengths), "tenths": metrics.tenths_ratio(strengths),
            "luminance_drift": metrics.luminance_drift(dreams, source),
            f"flicker_first_{independent}": head,
            f"flicker_independent_first_{independent}": metrics.flicker(solo, source[:independent]),
            "strength_independent_255": 255 * statistics.mean(metrics.strengths(solo, source[:independent]))}


def speed(clip: Path, backbone, objective, frames: int) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """The film pipeline's steps at 540x360, timed: decode, dream (network vs the rest), PNG save, H.264 encode."""
    network = [0.0]
    gradient = image_mod._gradient

    def timed(*args):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        try:
            return gradient(*args)
        finally:
            network[0] += time.perf_counter() - t0

    per_frame, per_frame_net, io = [], [], 0.0
    begin = time.perf_counter()
    image_mod._gradient = timed
    try:
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            source = [from_uint8(f)[0] for f in read_frames(clip, size=(540, 360), stop=frames)]
            io += time.perf_counter() - t0
            dreams = []
            mark, mark_net = time.perf_counter(), 0.0
            for i, (dream, _) in enumerate(dream_frames(source, backbone, objective)):
                t0 = time.perf_counter()
                save_image(dream[None], Path(d) / f"{i:06d}.png")
                dreams.append(dream)
                io += time.perf_counter() - t0
                now = time.perf_counter()
                per_frame.append(now - mark)
                per_frame_net.append(network[0] - mark_net)
                mark, mark_net = now, network[0]
            t0 = time.perf_counter()
            with VideoWriter(Path(d) / "out.mp4", fps=25) as writer:
                for i in range(len(dreams)):
                    writer.write(to_uint8(load_image(Path(d) / f"{i:06d}.png")))
            io += time.perf_counter() - t0
    finally:
        image_mod._gradient = gradient
    warm, warm_net = per_frame[1:], per_frame_net[1:]
    total = time.perf_counter() - begin
    return {"size": [540, 360], "frames": frames, "first_frame_s": per_frame[0],
            "s_per_warm_frame_median": statistics.median(warm),
            "share_outside_network_warm_frames": 1 - sum(warm_net) / sum(warm),
            "io_s_per_frame": io / frames, "total_s": total,
            "share_outside_network_total": 1 - network[0] / total}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--media", default=os.environ.get("MMDREAM_MEDIA", "../shared/media"))
    parser.add_argument("--independent", type=int, default=24, help="frames dreamed independently for comparison")
    parser.add_argument("--speed-frames", type=int, default=12)
    parser.add_argument("--parts", default="quality,speed",
                        help="which measures, comma list (speed alone: a few minutes on a shared 2-core machine)")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    if not parts <= {"quality", "speed"}:
        parser.error(f"--parts {args.parts}: give quality, speed or both (quality,speed)")
    backbone = load_backbone("vgg16")
    objective = build_objective(backbone)
    video = Path(args.media) / "video"
    if "quality" in parts:
        print(json.dumps({"quality": quality(video / "bbb_320x180.mp4", backbone, objective, args.independent)}),
              flush=True)
    if "speed" in parts:
        print(json.dumps({"speed": speed(video / "bigbuckbunny.mp4", backbone, objective, args.speed_frames)}),
              flush=True)


if __name__ == "__main__":
    main()
