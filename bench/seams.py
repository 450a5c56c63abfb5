"""Seams of a sharded render: flicker at the seams vs inside shards, and distance to the 1-shard film by warm-up.

    python bench/seams.py [--job jobs/demo.yaml] [--input PATH] [--shards 3] [--warmups 0,6,12,24]

Renders the job once with one shard (the reference), then with ``--shards`` shards for each warm-up length W
(crossfade W x ``--fade-ratio``), on a local Ray, and prints one JSON line per run: flicker of the transitions at the seams
(crossfade zone and first owned frame) over the flicker of the transitions inside shards (target <= 1.2), the
mean |frame - reference frame| (0-255) over the whole film and over the later shards' frames, and the dream
strength relative to the reference.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import ray
import torch

from cluster.driver import render_job
from cluster.planner import plan_shards
from mmdream import metrics
from mmdream.jobspec import load_job
from mmdream.media.images import from_uint8
from mmdream.media.samples import resolve
from mmdream.media.video import probe, read_frames


def frames_of(path: Path, size: tuple[int, int] | None = None) -> list[torch.Tensor]:
    return [from_uint8(f)[0] for f in read_frames(path, size=size)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--job", default="jobs/demo.yaml")
    parser.add_argument("--input", default=None, help="override the job's input")
    parser.add_argument("--shards", type=int, default=3)
    parser.add_argument("--warmups", default="0,6,12,24")
    parser.add_argument("--fade-ratio", type=float, default=0.5, help="crossfade = warm-up x this")
    args = parser.parse_args()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    with tempfile.TemporaryDirectory() as d:
        base = load_job(args.job).with_overrides(input=resolve(args.input or load_job(args.job).input))
        ref_path = render_job(base.with_overrides(output=f"{d}/ref.mp4", work=f"{d}/ref"), shards=1)
        info = probe(ref_path)
        ref = frames_of(ref_path)
        source = frames_of(Path(base.input), (info.width, info.height))[:len(ref)]
        ref_strength = statistics.mean(metrics.strengths(ref, source))
        for w in [int(x) for x in args.warmups.split(",")]:
            fade = round(w * args.fade_ratio)
            job = base.with_overrides(**{"output": f"{d}/w{w}.mp4", "work": f"{d}/w{w}",
                                         "sharding.warmup": w, "sharding.crossfade": fade})
            out = frames_of(render_job(job, shards=args.shards))
            shards = plan_shards(0, len(out), job.sharding.frames_per_shard, w, fade, args.shards)
            seam_steps = {t for s in shards[1:] for t in range(s.start - s.fade, s.start + 1)}
            diffs = metrics.warped_differences(out, source)  # diffs[t - 1]: transition t-1 -> t
            seam = [diffs[t - 1] for t in sorted(seam_steps)]
            inside = [diffs[t - 1] for t in range(1, len(out)) if t not in seam_steps]
            later = range(shards[1].start - shards[1].fade, len(out))
            print(json.dumps({
                "warmup": w, "crossfade": fade, "shards": args.shards,
                "seam_over_inside_flicker": round(statistics.mean(seam) / statistics.mean(inside), 3),
                "mean_abs_delta_255": round(255 * float(torch.stack([(a - b).abs().mean() for a, b in
                                                                      zip(out, ref)]).mean()), 3),
                "mean_abs_delta_later_shards_255": round(255 * float(torch.stack([(out[t] - ref[t]).abs().mean()
                                                                                   for t in later]).mean()), 3),
                "strength_vs_1_shard": round(statistics.mean(metrics.strengths(out, source)) / ref_strength, 3),
            }), flush=True)
    ray.shutdown()


if __name__ == "__main__":
    main()
