"""Lost nodes cost nothing but time: each removal point of tests/cluster/test_node_loss.py, N times, on one 3-node
local cluster (``ray.cluster_utils.Cluster``: a head without CPUs, three 1-CPU nodes); prints, per point, the runs
that completed and those whose film equals a one-node render frame for frame and sample for sample.

    MMDREAM_WEIGHTS=... MMDREAM_MEDIA=... OMP_NUM_THREADS=1 python bench/node_loss.py --runs 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests" / "cluster"), str(ROOT / "tests")]

from sharedpaths import shared_folder  # noqa: E402
from test_node_loss import (  # noqa: E402
    POINTS,
    film_spec,
    render_losing_a_node,
    render_one_node,
    same_film,
    start_cluster,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="renders per removal point (default: 5)")
    parser.add_argument("--points", nargs="*", default=list(POINTS), choices=list(POINTS))
    args = parser.parse_args()
    import ray

    weights, media = shared_folder("MMDREAM_WEIGHTS"), shared_folder("MMDREAM_MEDIA")
    with tempfile.TemporaryDirectory(prefix="mmdream-node-loss-") as tmp:
        reference = render_one_node(media, weights, Path(tmp))
        cluster = start_cluster()
        try:
            for where in args.points:
                completed = equal = 0
                seconds = []
                for run in range(args.runs):
                    folder = Path(tmp) / f"{where}-{run}"
                    start = time.monotonic()
                    try:
                        _, events = render_losing_a_node(cluster, where, film_spec(
                            media, weights, folder / "film.mp4", folder / "work"), folder / "work")
                    except Exception as exc:  # a failed run is what this counts
                        print(f"  {where} run {run}: FAILED: {type(exc).__name__}: {str(exc)[:300]}", flush=True)
                        continue
                    seconds.append(time.monotonic() - start)
                    completed += 1
                    equal += same_film(folder / "film.mp4", reference)
                    notes = [e.note for e in events if e.note]
                    print(f"  {where} run {run}: {seconds[-1]:.0f} s; {notes[0] if notes else 'no task lost'}",
                          flush=True)
                median = f"{statistics.median(seconds):.0f} s" if seconds else "-"
                print(f"{where}: completed {completed}/{args.runs}, equal {equal}/{args.runs}, median {median}",
                      flush=True)
        finally:
            ray.shutdown()
            cluster.shutdown()


if __name__ == "__main__":
    main()
