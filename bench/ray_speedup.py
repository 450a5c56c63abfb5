"""Speed-up of 2 actors over 1 on a local Ray (one torch thread per actor), and actor load time vs dream time.

    python bench/ray_speedup.py [--input PATH] [--frames 48] [--shards 4] [--size 160]

Both runs render the same job (demo settings, the same shards) into fresh work folders; the ratio of their wall
times is the speed-up (goal >= 1.7 on 2 cores). The load time is one actor's construction (weights loaded and
frozen) measured on its own.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import ray

from mmdream_cluster.actors import DreamActor
from mmdream_cluster.driver import render_job
from mmdream.jobspec.plan import compile_plan
from mmdream.jobspec.schema import load_job
from mmdream.media.samples import resolve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--job", default="bench/film_job.yaml")
    parser.add_argument("--input", default=None)
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--size", type=int, default=160)
    args = parser.parse_args()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    base = load_job(args.job)
    base = base.with_overrides(**{"input": resolve(args.input or base.input), "film.size": args.size,
                                  "film.stop": args.frames})
    t0 = time.perf_counter()
    actor = DreamActor.remote(compile_plan(base))
    ray.get(actor.info.remote())
    load_s = time.perf_counter() - t0
    ray.kill(actor)
    walls = {}
    with tempfile.TemporaryDirectory() as d:
        for actors in (1, 2):
            job = base.with_overrides(**{"output": f"{d}/a{actors}.mp4", "work": f"{d}/w{actors}",
                                         "resources.actors": actors})
            t0 = time.perf_counter()
            render_job(compile_plan(job), shards=args.shards)
            walls[actors] = time.perf_counter() - t0
    ray.shutdown()
    print(json.dumps({"frames": args.frames, "shards": args.shards, "size": args.size,
                      "wall_1_actor_s": round(walls[1], 2), "wall_2_actors_s": round(walls[2], 2),
                      "speedup": round(walls[1] / walls[2], 3), "actor_load_s": round(load_s, 2),
                      "load_share_of_2_actor_run": round(load_s / walls[2], 3)}))


if __name__ == "__main__":
    main()
