"""ONE actor-pool loop for every task of a job (frame shards, sound segments, walk frames).

Tasks go to actors as they become ready or free. A task whose actor or node is lost (the actor died or is
unreachable, its node was removed, its worker was killed for memory) is re-queued at the front for a live actor,
up to ``retries`` times, with a one-line note; a lost actor is replaced (Ray places it on a live node, or on a node
that joins later). The checkpoints make a retried task cheap and its result the same. An error our code raised on
a node (an :class:`~mmdream.errors.MmdreamError`: credentials, weights, unreadable input, settings) is deterministic:
the job ends at once with that error as one line naming the node, without retries. On any exit (done, error,
Ctrl-C) every actor is stopped; the checkpoints stay.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.exceptions import (
    NodeDiedError,
    ObjectLostError,
    OutOfMemoryError,
    RayActorError,
    RayTaskError,
    WorkerCrashedError,
)

from mmdream_cluster.nodes import Node, on_node
from mmdream.errors import MmdreamError

LOST = (RayActorError, WorkerCrashedError, NodeDiedError, OutOfMemoryError, ObjectLostError)
STARVED_S = 60.0  # how long tasks may wait while no live node can hold an actor before the job gives up
POLL_S = 1.0  # the loop wakes at least this often to report progress


@dataclass(frozen=True)
class Task:
    """``actor.<method>(*args)`` on an actor of ``pool``; ``name`` identifies it in notes and progress (e.g. a
    shard's folder name)."""

    name: str
    pool: str
    method: str
    args: tuple[Any, ...] = ()


Tick = Callable[[list[Task], set[str], "str | None"], None]
"""Called on every pass of the loop with the running tasks, the names of the finished ones and a note (a task lost
and re-queued) or None."""

Watch = Callable[[str, dict[str, str]], None]
"""Observer of named points (``"launched"``, ``"tick"``; the driver adds ``"reduce"``) with the running tasks'
names -> node ids; tests use it to remove or add nodes at exact moments."""


@dataclass
class _Slot:
    actor: Any
    node: Node | None = None  # known once the actor is ready
    task: Task | None = None
    ref: Any = None


@dataclass
class _Pool:
    make_actor: Callable[[], Any]
    size: int
    pending: dict[Any, _Slot] = field(default_factory=dict)  # ref awaited -> its slot (starting, or running a task)
    idle: list[_Slot] = field(default_factory=list)  # ready actors without a task

    def busy(self) -> list[Task]:
        return [s.task for s in self.pending.values() if s.task is not None]

    def grow(self, wanted: int) -> None:
        """Start actors until there are ``min(size, wanted)``."""
        while len(self.pending) + len(self.idle) < min(self.size, wanted):
            actor = self.make_actor()
            slot = _Slot(actor, ref=actor.ready.remote())
            self.pending[slot.ref] = slot

    def launch(self, queue: deque[Task], running: Callable[[], dict[str, str]], watch: Watch | None) -> None:
        while queue and self.idle:
            slot = self.idle.pop()
            slot.task = queue.popleft()
            slot.ref = getattr(slot.actor, slot.task.method).remote(*slot.task.args)
            self.pending[slot.ref] = slot
            if watch is not None:
                watch("launched", running())

    def running(self) -> dict[str, str]:
        return {s.task.name: s.node.node_id for s in self.pending.values() if s.task and s.node}

    def stop(self) -> None:
        for slot in [*self.pending.values(), *self.idle]:
            ray.kill(slot.actor, no_restart=True)
        self.pending.clear()
        self.idle.clear()


def run_tasks(actors: Mapping[str, tuple[Callable[[], Any], int]], tasks: Sequence[Task], *, retries: int,
              needs: dict[str, float], tick: Tick | None = None, watch: Watch | None = None) -> None:
    """Run ``tasks``, each on an actor of its pool: ``actors`` maps a pool's name to (how to make one of its actors,
    at most how many). The actors' classes derive from :class:`~mmdream_cluster.nodes.NodeActor` and are created with
    ``max_restarts=0``: this loop replaces lost actors itself.

    ``needs`` are one actor's resources (``{"CPU": 1, "GPU": 0}``): when no live node can hold an actor for
    ``STARVED_S`` seconds the job ends with an error saying so.
    """
    queues = {name: deque(t for t in tasks if t.pool == name) for name in actors}
    pools = {name: _Pool(make, size) for name, (make, size) in actors.items()}
    done: set[str] = set()
    tries = {t.name: 0 for t in tasks}
    starved_since: float | None = None

    def running() -> dict[str, str]:
        return {k: v for pool in pools.values() for k, v in pool.running().items()}

    try:
        while any(queues.values()) or any(pool.busy() for pool in pools.values()):
            for name, pool in pools.items():
                pool.grow(len(queues[name]) + len(pool.busy()))
            owner = {ref: name for name, pool in pools.items() for ref in pool.pending}
            finished, _ = ray.wait(list(owner), num_returns=1, timeout=POLL_S)
            notes = []
            for ref in finished:
                pool = pools[owner[ref]]
                slot = pool.pending.pop(ref)
                try:
                    value = ray.get(ref)
                except LOST as exc:
                    notes.append(_lost(slot, exc, queues[owner[ref]], tries, retries))
                    ray.kill(slot.actor, no_restart=True)  # unreachable is treated as gone: a fresh one replaces it
                    continue
                except RayTaskError as exc:
                    if isinstance(exc.cause, MmdreamError):  # ready() names the node itself
                        raise (exc.cause if slot.task is None else on_node(exc.cause, slot.node)) from None
                    raise  # a bug in our code: its traceback
                if slot.task is None:
                    slot.node = value
                else:
                    done.add(slot.task.name)
                    slot.task = None
                pool.idle.append(slot)
            for name, pool in pools.items():
                pool.launch(queues[name], running, watch)
            starved_since = _check_starved(pools.values(), any(queues.values()), needs, starved_since)
            if tick is not None:
                tick([t for pool in pools.values() for t in pool.busy()], done, "; ".join(notes) or None)
            if watch is not None:
                watch("tick", running())
    finally:
        for pool in pools.values():
            pool.stop()


def _lost(slot: _Slot, exc: Exception, queue: deque[Task], tries: dict[str, int], retries: int) -> str:
    """Re-queue the task of a lost actor (if it had one) and return the note; raise when it may not be retried."""
    where = slot.node.label if slot.node is not None else "a Ray node"
    if isinstance(exc, RayActorError) and exc.actor_init_failed:  # not ours (ours are kept for ready()): a bug or
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]  # a node without mmdream
        raise MmdreamError(f"an actor could not start on {where}: {lines[-1] if lines else type(exc).__name__} "
                           "(the traceback is in that node's Ray logs)")
    if slot.task is None:
        return f"lost an actor starting on {where} ({type(exc).__name__}); starting another"
    task = slot.task
    tries[task.name] += 1
    if tries[task.name] > retries:
        raise MmdreamError(f"{task.name} was lost with its actor {tries[task.name]} times (last on {where}: "
                           f"{type(exc).__name__}); the checkpoints are kept: rerun the same command to resume")
    queue.appendleft(task)
    return f"lost {task.name} with its actor on {where} ({type(exc).__name__}); re-queued (retry " \
           f"{tries[task.name]}/{retries})"


def _check_starved(pools: Iterable[_Pool], queued: bool, needs: dict[str, float], since: float | None
                   ) -> float | None:
    """Fail when tasks wait, no actor is ready, and no live node could hold one for ``STARVED_S`` seconds."""
    if not queued or any(p.idle or any(s.node for s in p.pending.values()) for p in pools):
        return None
    total = ray.cluster_resources()
    if all(total.get(k, 0.0) >= v for k, v in needs.items() if v > 0):
        return None
    now = time.monotonic()
    if since is not None and now - since > STARVED_S:
        want = ", ".join(f"{v:g} {k}" for k, v in needs.items() if v > 0)
        raise MmdreamError(f"no live Ray node can hold an actor ({want}) after {STARVED_S:.0f} s: the cluster lost "
                           "its nodes; the checkpoints are kept: rerun the same command once nodes are back")
    return since if since is not None else now
