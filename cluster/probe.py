"""What every node must see, checked before any dreaming: the locations rule (local paths only where every node
sees them) and a probe task on each node that can hold an actor (the input and style images readable, the weights
loadable, the work location writable). A failure is one line naming the node, exit 2."""

from __future__ import annotations

import uuid

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from mmdream_cluster.nodes import Node, on_node, this_node
from mmdream_cluster.scheduler import LOST
from mmdream.errors import MediaError, MmdreamError, ParameterError
from mmdream.jobspec.plan import RenderPlan
from mmdream.media import storage
from mmdream.media.sequence import is_sequence, open_sequence


def node_locations(plan: RenderPlan) -> dict[str, str]:
    """The locations the actors themselves read or write (the driver alone reads the walk's music and writes the
    output and preview): ``{what: uri}``."""
    found = {} if plan.kind == "walk" else {"input": plan.uris.input}
    if plan.zoom is not None and plan.zoom.audio is not None:
        found["zoom.audio"] = plan.zoom.audio
    if plan.picture.film.audio_file is not None:
        found["film.audio_file"] = plan.picture.film.audio_file
    if plan.picture.style is not None:
        found |= {f"style.images[{i}]": uri for i, uri in enumerate(plan.picture.style.images)}
    found["work" if plan.uris.keep_work else "work (by default beside the output)"] = plan.uris.work
    return found


def check_cluster(plan: RenderPlan, address: str | None, *, probe: bool = True) -> None:
    """Inside a Ray session, before anything is written: the locations rule, then (``probe``) a probe on every
    node. A local Ray this process started needs no probe: its workers see what the driver saw."""
    check_locations(plan, address)
    if probe:
        probe_nodes(plan)


def check_locations(plan: RenderPlan, address: str | None) -> None:
    """Refuse local paths the actors use when they may not be this machine's files: on a multi-node cluster or
    through Ray Client (``ray://``), unless the job declares ``shared_filesystem: true``."""
    if plan.uris.shared_filesystem:
        return
    nodes = sum(1 for n in ray.nodes() if n["Alive"])
    remote = bool(address) and str(address).startswith("ray://")
    if nodes <= 1 and not remote:
        return
    for what, uri in node_locations(plan).items():
        if not storage.is_s3(uri):
            where = "a remote Ray cluster" if remote else f"a Ray cluster of {nodes} nodes"
            raise ParameterError(
                f"{what} {uri} is a local path, but this job runs on {where} whose nodes may not see it; give an "
                "s3://BUCKET/KEY URI, or set `shared_filesystem: true` in the job spec if every node mounts that "
                "path with the same files")


def probe_nodes(plan: RenderPlan) -> list[Node]:
    """Run :func:`probe` on every live node with room for one actor (in parallel); return the nodes probed.

    An error there (MmdreamError) is raised as one line naming the node.
    """
    res = plan.resources
    nodes = [n for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU", 0.0) >= res.cpus_per_actor
             and n["Resources"].get("GPU", 0.0) >= res.gpus_per_actor]
    refs = {_probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
            .remote(plan): n for n in nodes}
    found = []
    for ref, n in refs.items():
        try:
            found.append(ray.get(ref))
        except ray.exceptions.RayTaskError as exc:
            if isinstance(exc.cause, MmdreamError):
                raise on_node(exc.cause, Node(n["NodeID"], n["NodeManagerAddress"],
                                              n.get("NodeManagerHostname", "?"))) from None
            raise
        except LOST:  # the node went away meanwhile: the scheduler copes with that
            continue
    return found


def probe(plan: RenderPlan) -> None:
    """On this node: read the first byte of each location the actors read, load the job's networks as the actors
    do, write and remove a small file in the work location. Raises the MmdreamError met."""
    for what, uri in node_locations(plan).items():
        if what.startswith("work"):
            continue
        if storage.is_s3(uri):
            if storage.size(uri) is None:
                raise MediaError(f"{what} {uri} does not exist; check the bucket and key")
            continue
        if is_sequence(uri):  # a frame sequence (local): its numbering and first frame
            open_sequence(uri)
            continue
        try:
            with open(uri, "rb") as f:
                f.read(1)
        except OSError as exc:
            raise MediaError(f"cannot read {what} {uri}: {exc.strerror or exc}") from None
    _load_networks(plan)
    mark = storage.join(plan.uris.work, f".probe-{uuid.uuid4().hex[:12]}")
    try:
        storage.write_text(mark, "written by the probe of a Ray node; safe to delete\n")
    except OSError as exc:
        raise MediaError(f"cannot write to the work location {plan.uris.work}: {exc.strerror or exc}") from None
    storage.remove_tree(mark)


def _load_networks(plan: RenderPlan) -> None:
    """Load (then drop) every backbone or generator the job's actors load."""
    from mmdream.backbones import load_backbone
    from mmdream.backbones.generators import load_generator

    weights = plan.uris.weights
    if plan.walk is not None:
        load_generator(plan.walk.generator, weights_dir=weights)
        return
    if plan.kind in ("film", "zoom"):
        load_backbone(plan.picture.backbone.name, variant=plan.picture.backbone.variant, weights_dir=weights)
    if plan.sound is not None:
        load_backbone(plan.sound.backbone.name, variant=plan.sound.backbone.variant, weights_dir=weights)


@ray.remote(num_cpus=0, max_retries=0)
def _probe(plan: RenderPlan) -> Node:
    probe(plan)
    return this_node()

