"""Seams of a sharded render: flicker at the seams vs inside shards, and distance to the 1-shard film by warm-up.

    python bench/seams.py [--job bench/film_job.yaml] [--input PATH] [--shards 3] [--warmups 0,12,24,48]
                          [--fades 0.5,1]

Renders the job once with one shard (the reference), then with ``--shards`` shards for each warm-up length W on a
local Ray, and assembles each sharded film for every crossfade length F = W x ``--fades`` from the shards'
checkpointed frames (the frames do not depend on F; the films are compared as dreamed, before H.264). One JSON
line per (W, F):

- ``seam_over_inside_flicker``: the flicker (the video issue's measure: the dream's flow-compensated frame
  difference over the source's, on the same transitions) of the transitions at the seams (crossfade zone and first
  owned frame) over the flicker of the transitions inside shards (target <= 1.2); ``reference_seam_over_inside``
  is the same ratio of the 1-shard film on the same transitions (what the content alone gives);
- ``mean_abs_delta_255``: mean |frame - reference frame| (0-255) over the whole film, and over the later shards'
  frames only;
- ``strength_vs_1_shard``: the dream strength relative to the reference's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile

import ray
import torch

from mmdream_cluster.driver import render_job
from mmdream_cluster.planner import plan_shards
from mmdream_cluster.reducer import assembled_frames
from mmdream.eval import metrics
from mmdream.schedules.drive import film_chroma, film_drive
from mmdream.pipelines.film import plan_film, source_frames
from mmdream.jobspec.build import film_job_settings
from mmdream.jobspec.plan import RenderPlan, compile_plan
from mmdream.jobspec.schema import load_job
from mmdream.media.samples import resolve


def seam_ratio(diffs: list[float], source_diffs: list[float], seam: set[int], inside: set[int]) -> float:
    """Flicker over the transitions ``seam`` over flicker over ``inside`` (transition t: frame t-1 -> t)."""
    def flicker(steps: set[int]) -> float:
        return sum(diffs[t - 1] for t in steps) / sum(source_diffs[t - 1] for t in steps)
    return flicker(seam) / flicker(inside)


def dreamed(plan: RenderPlan, shards: int, warmup: int, fade: int) -> list[torch.Tensor]:
    """The film's frames ``(3, H, W)`` as assembled from the job's checkpoints for this warm-up and crossfade."""
    source = plan.uris.input
    film = plan_film(source, plan.picture.film)
    schedules = {"drive": film_drive(source, film, plan.av), "chroma": film_chroma(source, film, plan.av)}
    settings = film_job_settings(plan, source, film, schedules)
    parts = plan_shards(film.start, film.stop, plan.sharding.frames_per_shard, warmup, fade, shards)
    return list(assembled_frames(plan, film, parts, settings))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--job", default="bench/film_job.yaml")
    parser.add_argument("--input", default=None, help="override the job's input")
    parser.add_argument("--shards", type=int, default=3)
    parser.add_argument("--warmups", default="0,12,24,48")
    parser.add_argument("--fades", default="0.5,1", help="crossfade lengths as fractions of the warm-up")
    args = parser.parse_args()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    with tempfile.TemporaryDirectory() as d:
        base = load_job(args.job)
        base = base.with_overrides(input=resolve(args.input or base.input))
        ref_job = compile_plan(base.with_overrides(output=f"{d}/ref.mp4", work=f"{d}/ref"))
        render_job(ref_job, shards=1)
        ref = dreamed(ref_job, 1, 0, 0)
        plan = plan_film(base.input, ref_job.picture.film)
        source = list(source_frames(base.input, plan, plan.start, plan.stop))
        ref_strength = statistics.mean(metrics.strengths(ref, source))
        source_diffs = metrics.warped_differences(source, source)  # [t - 1]: transition t-1 -> t
        ref_diffs = metrics.warped_differences(ref, source)
        for w in [int(x) for x in args.warmups.split(",")]:
            job = compile_plan(base.with_overrides(**{"output": f"{d}/w{w}.mp4", "work": f"{d}/w{w}",
                                                      "sharding.warmup": w, "sharding.crossfade": 0}))
            render_job(job, shards=args.shards)
            for fade in sorted({round(w * float(r)) for r in args.fades.split(",")}):
                out = dreamed(job, args.shards, w, fade)
                shards = plan_shards(0, len(out), job.sharding.frames_per_shard, w, fade, args.shards)
                seam_steps = {t for s in shards[1:] for t in range(s.start - s.fade, s.start + 1)}
                inside_steps = set(range(1, len(out))) - seam_steps
                later = range(shards[1].start - shards[1].fade, len(out))
                print(json.dumps({
                    "warmup": w, "crossfade": fade, "shards": args.shards,
                    "seam_over_inside_flicker": round(seam_ratio(metrics.warped_differences(out, source),
                                                                 source_diffs, seam_steps, inside_steps), 3),
                    "reference_seam_over_inside": round(seam_ratio(ref_diffs, source_diffs, seam_steps,
                                                                   inside_steps), 3),
                    "mean_abs_delta_255": round(255 * statistics.mean(float((a - b).abs().mean())
                                                                      for a, b in zip(out, ref)), 3),
                    "mean_abs_delta_later_shards_255": round(255 * statistics.mean(
                        float((out[t] - ref[t]).abs().mean()) for t in later), 3),
                    "strength_vs_1_shard": round(statistics.mean(metrics.strengths(out, source)) / ref_strength, 3),
                }), flush=True)
    ray.shutdown()


if __name__ == "__main__":
    main()
