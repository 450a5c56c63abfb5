"""The scheduler on a local Ray with toy actors: a task whose actor dies is re-queued on a fresh actor (noted, up to
the bound), an MmdreamError raised on a node ends the run at once as one line naming the node (no retries), as
does one raised while an actor loads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import ray

from mmdream_cluster.nodes import NodeActor
from mmdream_cluster.scheduler import Task, run_tasks
from mmdream.errors import MediaError, MmdreamError, WeightsError


@ray.remote
class Toy(NodeActor):
    def setup(self, folder: str, broken: bool = False) -> None:  # type: ignore[override]
        if broken:
            raise WeightsError("cannot read weights file /w/vgg16.safetensors: truncated")
        self.folder = Path(folder)

    def run(self, name: str, deaths: int) -> str:
        """Die (the whole worker process) on the first ``deaths`` attempts at ``name``, then finish it."""
        tries = self.folder / f"{name}.tries"
        n = int(tries.read_text()) if tries.exists() else 0
        tries.write_text(str(n + 1))
        if n < deaths:
            os._exit(1)
        (self.folder / f"{name}.done").write_text("")
        return name

    def fail(self, name: str) -> None:
        (self.folder / f"{name}.tries").write_text("1")
        raise MediaError("cannot look up s3://b/in.mp4: no S3 credentials; set AWS_ACCESS_KEY_ID")


NEEDS = {"CPU": 1.0}


def toy(folder: Path, broken: bool = False):  # type: ignore[no-untyped-def]
    return lambda: Toy.options(num_cpus=1, max_restarts=0, max_task_retries=0).remote(str(folder), broken)


def on(pool_size: int, folder: Path, broken: bool = False) -> dict:
    return {"toy": (toy(folder, broken), pool_size)}


def test_a_task_whose_actor_dies_is_requeued_on_a_fresh_actor(local_ray, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    notes: list[str] = []
    tasks = [Task(f"t{i}", "toy", "run", (f"t{i}", 2 if i == 1 else 0)) for i in range(4)]
    run_tasks(on(2, tmp_path), tasks, retries=2, needs=NEEDS, tick=lambda r, d, note: notes.extend([note] * bool(note)))
    assert sorted(p.stem for p in tmp_path.glob("*.done")) == ["t0", "t1", "t2", "t3"]
    assert (tmp_path / "t1.tries").read_text() == "3"
    assert len(notes) == 2 and all("lost t1 with its actor on" in n and "re-queued" in n for n in notes), notes


def test_a_task_lost_more_often_than_the_bound_ends_the_run(local_ray, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(MmdreamError, match=r"t0 was lost with its actor 2 times .* rerun the same command"):
        run_tasks(on(1, tmp_path), [Task("t0", "toy", "run", ("t0", 5))], retries=1, needs=NEEDS)
    assert (tmp_path / "t0.tries").read_text() == "2"


def test_an_error_on_a_node_is_one_line_naming_it_without_retries(local_ray, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    node = ray.get_runtime_context().get_node_id()[:8]
    with pytest.raises(MediaError) as caught:
        run_tasks(on(2, tmp_path), [Task("bad", "toy", "fail", ("bad",))], retries=3, needs=NEEDS)
    message = str(caught.value)
    assert message.startswith("on node ") and f"node {node})" in message and "no S3 credentials" in message
    assert "\n" not in message and (tmp_path / "bad.tries").read_text() == "1"
    with pytest.raises(WeightsError, match=rf"^on node .*node {node}\): cannot read weights file /w/vgg16"):
        run_tasks(on(2, tmp_path, broken=True), [Task("t0", "toy", "run", ("t0", 0))], retries=3, needs=NEEDS)
    assert not (tmp_path / "t0.tries").exists()


def test_tasks_no_live_node_can_take_end_the_run_with_one_line(local_ray, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import mmdream_cluster.scheduler

    monkeypatch.setattr(mmdream_cluster.scheduler, "STARVED_S", 1.0)
    big = lambda: Toy.options(num_cpus=64, max_restarts=0).remote(str(tmp_path))  # noqa: E731
    with pytest.raises(MmdreamError, match=r"^no live Ray node can hold an actor \(64 CPU\) after 1 s: .* rerun"):
        run_tasks({"toy": (big, 1)}, [Task("t0", "toy", "run", ("t0", 0))], retries=3, needs={"CPU": 64})
