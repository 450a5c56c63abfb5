"""Frames per second of 1, 2 and 3 actors on a 3-node local Ray cluster (1 CPU per node) as parallel efficiency,
and where the actors' time goes: load, decode, dream, encode, waiting.

    python bench/ray_scaling.py [--frames 48] [--shards 6] [--size 96] [--actors 1,2,3]

Each run dreams the same job (bench/film_job.yaml at ``--size``, the same shards) into a fresh work folder with n
actors of one CPU each, on different nodes (a node has one CPU). The clock runs from the actors' creation to the last
shard returned, as in a render; the film is not assembled (the reducer's encode is the same for every n).
Frames per second count every frame dreamed, warm-up frames included; parallel efficiency is fps(n) / (n × fps(1)).
Time shares are of the n × wall actor-seconds: start (a worker process spawned and its modules imported), load
(backbone and objective, once per actor), decode, dream and encode (PNG checkpoints written) as each actor reports
them, and waiting, the rest (an actor idle at the end for want of shards, Ray's calls). The nodes share the
machine's cores: on 2 cores, 3 actors cannot scale past 2.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from typing import Any

import ray
from ray.cluster_utils import Cluster

from mmdream_cluster.actors import DreamActor
from mmdream_cluster.planner import Shard, plan_shards
from mmdream.pipelines.film import plan_film
from mmdream.jobspec.plan import RenderPlan, compile_plan
from mmdream.jobspec.schema import load_job
from mmdream.media.samples import resolve

PHASES = ("start", "load", "decode", "dream", "encode")


def run(job: RenderPlan, shards: list[Shard], n: int) -> dict[str, Any]:
    """Dream ``shards`` with ``n`` actors, handing a shard to each actor as it frees up; wall time and phases."""
    start = time.perf_counter()
    actors = [DreamActor.options(num_cpus=1).remote(job, 1) for _ in range(n)]
    asked = {a.info.remote(): a for a in actors}
    infos, ready = [], []  # each actor's info, and when it came back
    while asked:
        (ref,), _ = ray.wait(list(asked), num_returns=1)
        asked.pop(ref)
        infos.append(ray.get(ref))
        ready.append(time.perf_counter() - start)
    queue, pending, results = list(shards), {}, []
    for actor in actors:
        if queue:
            pending[actor.dream_shard.remote(queue.pop(0))] = actor
    while pending:
        (ref,), _ = ray.wait(list(pending), num_returns=1)
        actor = pending.pop(ref)
        results.append(ray.get(ref))
        if queue:
            pending[actor.dream_shard.remote(queue.pop(0))] = actor
    wall = time.perf_counter() - start
    for actor in actors:
        ray.kill(actor)
    # start: a worker process spawned and its modules imported, until its setup began.
    seconds = {"start": sum(r - i["load_s"] for r, i in zip(ready, infos)), "load": sum(i["load_s"] for i in infos)}
    for phase in PHASES[2:]:
        seconds[phase] = sum(r["times"].get(phase, 0.0) for r in results)
    seconds["waiting"] = n * wall - sum(seconds.values())
    frames = sum(s.stop - s.first for s in shards)
    return {"actors": n, "nodes_used": len({i["node"] for i in infos}), "frames": frames, "wall_s": round(wall, 2),
            "fps": round(frames / wall, 3), "seconds": {k: round(v, 2) for k, v in seconds.items()},
            "share": {k: round(v / (n * wall), 3) for k, v in seconds.items()}}


def table(rows: list[dict[str, Any]]) -> str:
    head = ("actors", "wall s", "frames/s", "efficiency", *(f"{p} %" for p in (*PHASES, "waiting")))
    lines = [" | ".join(head), " | ".join("---" for _ in head)]
    for r in rows:
        shares = [f"{100 * r['share'][p]:.0f}" for p in (*PHASES, "waiting")]
        lines.append(" | ".join(str(v) for v in (r["actors"], r["wall_s"], r["fps"], r["efficiency"], *shares)))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--job", default="bench/film_job.yaml")
    parser.add_argument("--input", default=None, help="override the job's input")
    parser.add_argument("--frames", type=int, default=48, help="frames of the film (default: 48)")
    parser.add_argument("--shards", type=int, default=6, help="shards, the same for every run (default: 6)")
    parser.add_argument("--warmup", type=int, default=4, help="warm-up frames per shard (default: 4)")
    parser.add_argument("--size", type=int, default=96, help="longer side of the frames (default: 96)")
    parser.add_argument("--actors", default="1,2,3", help="actor counts to run (default: 1,2,3)")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    base = load_job(args.job)
    input_path = resolve(args.input or base.input)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    for _ in range(2):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    rows = []
    try:
        print(json.dumps({"machine": f"{platform.machine()}, {os.cpu_count()} CPUs visible",
                          "nodes": len(ray.nodes()), "frames": args.frames, "shards": args.shards,
                          "size": args.size}), flush=True)
        with tempfile.TemporaryDirectory() as d:
            for n in (int(a) for a in args.actors.split(",")):
                job = compile_plan(base.with_overrides(**{
                    "input": str(input_path), "output": f"{d}/a{n}.mp4", "work": f"{d}/w{n}", "film.size": args.size,
                    "film.stop": args.frames, "sharding.warmup": args.warmup, "sharding.crossfade": args.warmup,
                    "resources.actors": n}))
                plan = plan_film(input_path, job.picture.film)
                shards = plan_shards(plan.start, plan.stop, job.sharding.frames_per_shard, job.sharding.warmup,
                                     job.sharding.crossfade, args.shards)
                row = run(job, shards, n)
                row["efficiency"] = round(row["fps"] / (n * rows[0]["fps"] / rows[0]["actors"]), 3) if rows \
                    else 1.0
                print(json.dumps(row), flush=True)
                rows.append(row)
    finally:
        ray.shutdown()
        cluster.shutdown()
    print(table(rows))


if __name__ == "__main__":
    main()
