"""A 3-node Ray cluster on this machine (``ray.cluster_utils.Cluster``, a head without CPUs and three 1-CPU
nodes): actors spread over the nodes, a node removed without grace at each point of a render (before the first
frame, mid-shard, during the sound segments, just before the reducer) costs nothing but time: the film equals a
one-node render frame for frame and sample for sample; a node added mid-render takes work."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import ray
import yaml

from mmdream_cluster.driver import render_job
from mmdream.jobspec.plan import compile_plan
from mmdream.jobspec.schema import parse_job
from mmdream.media.video import read_audio, read_frames


def film_spec(media_dir: Path, weights_dir: Path, out: Path, work: Path) -> dict:
    """9 frames of 64 px in 3 shards (2 warm-up frames, 1 dissolved) and a dreamed soundtrack (one segment)."""
    return {"input": str(media_dir / "video" / "bbb_320x180.mp4"), "output": str(out), "work": str(work),
            "weights": str(weights_dir), "shared_filesystem": True,
            "dream": {"steps": 2, "octaves": 2}, "video": {"frame_steps": 1}, "objective": {"layers": "relu4_3"},
            "film": {"size": 64, "stop": 9}, "sharding": {"frames_per_shard": 3, "warmup": 2, "crossfade": 1},
            "audio": {"objective": {"class": "Bark"}, "dream": {"steps": 1, "warps": 1}},
            "resources": {"actors": 3}, "preview": False}


def start_cluster():  # type: ignore[no-untyped-def]
    """A head without CPUs and three 1-CPU nodes; this process joins it as the driver."""
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    for _ in range(3):
        c.add_node(num_cpus=1)
    c.wait_for_nodes()
    ray.init(address=c.address, log_to_driver=False)
    return c


def render_one_node(media_dir: Path, weights_dir: Path, folder: Path) -> Path:
    """The reference: the job rendered by `mmdream render` on a local one-node Ray."""
    spec = film_spec(media_dir, weights_dir, folder / "film.mp4", folder / "work") | {"shared_filesystem": False}
    (folder / "job.yaml").write_text(yaml.safe_dump(spec))
    run = subprocess.run([sys.executable, "-m", "mmdream.cli", "render", str(folder / "job.yaml")],
                         capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stderr[-2000:]
    return folder / "film.mp4"


def same_film(a: Path, b: Path) -> bool:
    """Frame for frame and sample for sample."""
    fa, fb = list(read_frames(a)), list(read_frames(b))
    return len(fa) == len(fb) and all(np.array_equal(x, y) for x, y in zip(fa, fb)) \
        and np.array_equal(read_audio(a)[0], read_audio(b)[0])


@pytest.fixture(scope="module")
def cluster() -> Iterator:  # type: ignore[type-arg]
    c = start_cluster()
    yield c
    ray.shutdown()
    c.shutdown()


@pytest.fixture(scope="module")
def one_node_film(media_dir: Path, weights_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render_one_node(media_dir, weights_dir, tmp_path_factory.mktemp("one-node"))


class Remove:
    """A scheduler watch removing, without grace, the node that runs the first task matching ``pick`` at
    ``point`` (``pick`` gets the running tasks' names -> node ids and returns a node id or None)."""

    def __init__(self, cluster, point: str, pick: Callable[[dict[str, str]], str | None],  # type: ignore[no-untyped-def]
                 work: Path) -> None:
        self.cluster, self.point, self.pick, self.work = cluster, point, pick, work
        self.removed: str | None = None
        self.nodes: set[str] = set()  # every node seen running a task
        self.kept: dict[Path, int] = {}  # the frames checkpointed when the node went, and their times
        self.task: str | None = None  # the task picked, running on the node removed
        self.relaunched = False  # that task was launched again after its node was gone

    def __call__(self, point: str, running: dict[str, str]) -> None:
        self.nodes |= set(running.values())
        if self.removed:  # the scheduler calls "launched" for every task it launches, a re-queued one too
            self.relaunched |= point == "launched" and running.get(self.task or "", self.removed) != self.removed
            return
        if point != self.point:
            return
        node_id = self.pick(running)
        if node_id is not None:
            node = next(n for n in self.cluster.worker_nodes if n.node_id == node_id)
            self.kept = {p: p.stat().st_mtime_ns for p in self.work.glob("frames-*/*.png")}
            self.task = next(name for name, nid in running.items() if nid == node_id) if node_id in \
                running.values() else None
            self.cluster.remove_node(node, allow_graceful=False)
            self.removed = node_id

    def redone(self) -> list[Path]:
        """Frames checkpointed before the loss and written again since (none: a retry resumes)."""
        return [p for p, t in self.kept.items() if p.stat().st_mtime_ns != t]


def running_kind(prefix: str) -> Callable[[dict[str, str]], str | None]:
    return lambda running: next((nid for name, nid in running.items() if name.startswith(prefix)), None)


def mid_shard(work: Path) -> Callable[[dict[str, str]], str | None]:
    """The node of a frame shard in flight that has checkpointed a frame (and not all of them)."""
    def pick(running: dict[str, str]) -> str | None:
        for name, nid in running.items():
            done = len(list((work / name).glob("*.png"))) if name.startswith("frames") else 0
            if 0 < done < 5:
                return nid
        return None
    return pick


def any_worker(cluster) -> Callable[[dict[str, str]], str | None]:  # type: ignore[no-untyped-def]
    return lambda running: next(iter(cluster.worker_nodes)).node_id if cluster.worker_nodes else None


POINTS = {"before-first-frame": ("launched", lambda c, w: running_kind("frames")),
          "mid-shard": ("tick", lambda c, w: mid_shard(w)),
          "during-sound": ("launched", lambda c, w: running_kind("sound")),
          "before-reducer": ("reduce", lambda c, w: any_worker(c))}


def render_losing_a_node(cluster, where: str, spec: dict, work: Path) -> tuple[Remove, list]:  # type: ignore[no-untyped-def]
    """Render ``spec`` removing a node at ``where``; put a fresh node back afterwards."""
    point, pick = POINTS[where]
    remove, events = Remove(cluster, point, pick(cluster, work), work), []
    try:
        render_job(compile_plan(parse_job(spec)), watch=remove, progress=events.append)
    finally:
        while len(cluster.worker_nodes) < 3:
            cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
    return remove, events


@pytest.mark.parametrize("where", list(POINTS))
def test_a_node_lost_without_grace_changes_nothing(cluster, one_node_film: Path, where: str, media_dir: Path,  # type: ignore[no-untyped-def]
                                                  weights_dir: Path, tmp_path: Path) -> None:
    spec = film_spec(media_dir, weights_dir, tmp_path / "film.mp4", tmp_path / "work")
    remove, events = render_losing_a_node(cluster, where, spec, tmp_path / "work")
    assert remove.removed is not None and len(remove.nodes) >= 2  # the actors ran on several nodes
    assert not remove.redone()  # the retried task resumed from its checkpoints
    if where == "mid-shard":
        assert remove.kept
    notes = [e.note for e in events if e.note]
    assert all("\n" not in n for n in notes)
    # The task on the node removed is re-queued, noted in one line naming the node, exactly when it was lost. Its
    # worker may outlive its raylet for a second or more and finish the task (64 px frames take a fraction of a
    # second): then nothing is lost, and what must hold is the above (checkpoints kept, nothing redone) and the film.
    if where in ("before-first-frame", "during-sound"):
        assert remove.task is not None
    requeued = [n for n in notes if remove.task is not None and f"lost {remove.task} " in n]
    assert remove.relaunched == bool(requeued), (remove.relaunched, notes)
    assert all("re-queued" in n and remove.removed[:8] in n for n in requeued), notes
    assert len(list(read_frames(one_node_film))) == 9 and same_film(tmp_path / "film.mp4", one_node_film)


def test_actors_spread_over_the_nodes_and_a_node_added_mid_render_takes_work(  # type: ignore[no-untyped-def]
        cluster, one_node_film: Path, media_dir: Path, weights_dir: Path, tmp_path: Path) -> None:
    for node in list(cluster.worker_nodes)[1:]:  # one 1-CPU node left: one actor runs, the others wait
        cluster.remove_node(node)
    seen: dict[str, set[str]] = {}
    added: list[str] = []

    def watch(point: str, running: dict[str, str]) -> None:
        for name, nid in running.items():
            seen.setdefault(nid, set()).add(name)
        if point == "launched" and not added:  # the first task runs: a node joins, and the loop waits (only
            added.append(cluster.add_node(num_cpus=1).node_id)  # here, in the test) until a waiting actor has
            deadline = time.monotonic() + 180  # started on it, so that it is ready while tasks remain
            while not any(a["State"] == "ALIVE" and a["Address"]["NodeID"] == added[0]
                          for a in ray._private.state.actors().values()) and time.monotonic() < deadline:
                time.sleep(0.2)

    spec = film_spec(media_dir, weights_dir, tmp_path / "film.mp4", tmp_path / "work")
    try:
        render_job(compile_plan(parse_job(spec)), watch=watch)
    finally:
        while len(cluster.worker_nodes) < 3:
            cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
    assert added and seen.get(added[0]), seen  # the new node dreamed at least one task
    assert len(seen) >= 2
    assert len(list(read_frames(one_node_film))) == 9 and same_film(tmp_path / "film.mp4", one_node_film)
