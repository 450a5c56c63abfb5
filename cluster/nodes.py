"""Where work runs on Ray: a node's identity, the base of the actors (setup errors kept as objects), and errors
from a node as one line that names it."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

import ray

from mmdream.errors import MmdreamError


@dataclass(frozen=True)
class Node:
    """A Ray node as the user knows it: host name, IP address and Ray node id."""

    node_id: str
    ip: str
    hostname: str

    @property
    def label(self) -> str:
        return f"{self.hostname} ({self.ip}, node {self.node_id[:8]})"


def this_node() -> Node:
    """The node this Ray worker runs on."""
    return Node(ray.get_runtime_context().get_node_id(), ray.util.get_node_ip_address(), socket.gethostname())


def on_node(exc: MmdreamError, node: Node | None) -> MmdreamError:
    """``exc`` (raised on ``node``) as an error of the same class whose one-line message names the node."""
    message = f"on node {node.label}: {exc}" if node is not None else f"on a Ray node: {exc}"
    try:
        return type(exc)(message)
    except TypeError:  # an error class with another constructor
        return MmdreamError(message)


class NodeActor:
    """Base of the actors: ``__init__`` runs ``setup`` once (load and freeze the backbones). An MmdreamError from it
    (weights, input, settings) is kept and raised by :meth:`ready` as the error object, since Ray keeps only the
    text of an exception raised in ``__init__``; the scheduler sends tasks only to actors that are ready."""

    def __init__(self, *args: Any) -> None:
        self._failure: MmdreamError | None = None
        try:
            self.setup(*args)
        except MmdreamError as exc:
            self._failure = exc

    def setup(self, *args: Any) -> None:
        raise NotImplementedError

    def ready(self) -> Node:
        """Where this actor runs; raises the error its setup met, if any, naming this node."""
        if self._failure is not None:
            raise on_node(self._failure, this_node())
        return this_node()
