"""The resumable checkpoint store: items in a local folder or under an ``s3://`` prefix, bound to the settings that
made them.

A :class:`Store` records its settings (``settings.json``) on first use and refuses a location holding items of
other settings (:class:`SettingsMismatch`), so no stale item is ever mixed in. Every item is written atomically (a
temporary name renamed, or one S3 put), so an interrupted write leaves no partial item, and a rerun resumes from
what :meth:`Store.numbered` lists. Two kinds of numbered items have their own views:

- :class:`FrameStore`: frames ``NNNNNN.png`` (8-bit, 16-bit when the settings say ``bit_depth: 16``) and their
  records ``NNNNNN.json`` (written last: a record marks its frame finished) — films, zooms, walks, Ray shards;
- :class:`SegmentStore`: sound segment changes ``NNNNN.npy`` (float32) — soundtracks dreamed segment by segment.

Named items (a report's files) go through :meth:`Store.write_json`, :meth:`Store.output` and :meth:`Store.path`.

>>> work = FrameStore("out/.film.mp4.work", {"width": 64, ...})
>>> work.save(0, frame, FrameInfo(...));  work.finished()   # {0}
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmdream.errors import ParameterError
from mmdream.media import storage
from mmdream.media.sequence import decode_frame, encode_frame

__all__ = ["SETTINGS_FILE", "SettingsMismatch", "Store", "FrameStore", "SegmentStore"]

SETTINGS_FILE = "settings.json"


class SettingsMismatch(ParameterError):
    """A store's location holds items made with other settings; ``differ``: the keys whose values differ."""

    def __init__(self, uri: str, what: str, differ: list[str]) -> None:
        super().__init__(f"work location {uri} holds {what} made with other settings (differ in: "
                         f"{', '.join(differ)}); remove it to start afresh, or use another work location "
                         "(--work-dir)")
        self.uri, self.differ = uri, differ


class Store:
    """Items (files) under ``uri`` (a local folder or an ``s3://`` prefix) bound to ``settings`` (JSON-able): they
    are recorded there on first use; a location holding ``what`` made with other settings raises
    :class:`SettingsMismatch` naming the keys that differ. ``settings`` keeps them as stored (tuples as lists)."""

    def __init__(self, uri: str | os.PathLike[str], settings: dict[str, Any], what: str = "results") -> None:
        self.uri = str(uri)
        self.settings: dict[str, Any] = json.loads(json.dumps(settings))
        record = self.path(SETTINGS_FILE)
        if not storage.exists(record):
            storage.write_text(record, json.dumps(self.settings, indent=1, sort_keys=True))
            return
        try:
            stored = json.loads(storage.read_text(record))
        except ValueError:
            stored = None
        if stored != self.settings:
            old = stored if isinstance(stored, dict) else {}  # an unreadable record matches nothing
            differ = sorted(k for k in set(old) | set(self.settings) if old.get(k) != self.settings.get(k))
            raise SettingsMismatch(self.uri, what, differ)

    @staticmethod
    def is_bound(uri: str | os.PathLike[str]) -> bool:
        """Whether ``uri`` holds a store's settings record."""
        return storage.exists(storage.join(uri, SETTINGS_FILE))

    def path(self, name: str) -> str:
        """Where item ``name`` (a relative name, ``/``-separated) lives."""
        return storage.join(self.uri, name)

    def has(self, name: str) -> bool:
        return storage.exists(self.path(name))

    def numbered(self, *suffixes: str) -> set[int]:
        """Indices ``n`` whose items ``<digits of n><suffix>`` exist for every suffix (one listing)."""
        names = set(storage.listdir(self.uri))
        first, rest = suffixes[0], suffixes[1:]
        stems = (n[:-len(first)] for n in names if n.endswith(first))
        return {int(s) for s in stems if s.isdigit() and all(f"{s}{x}" in names for x in rest)}

    def write_bytes(self, name: str, data: bytes) -> None:
        storage.write_bytes(self.path(name), data)

    def read_bytes(self, name: str) -> bytes:
        return storage.read_bytes(self.path(name))

    def write_json(self, name: str, record: Any, indent: int | None = None) -> None:
        self.write_bytes(name, json.dumps(record, indent=indent).encode())

    def read_json(self, name: str) -> Any:
        return json.loads(storage.read_text(self.path(name)))

    @contextmanager
    def output(self, name: str) -> Iterator[Path]:
        """A local path to write item ``name`` through: it lands in the store only if the block succeeds."""
        with storage.local_output(self.path(name)) as tmp:
            yield tmp


class FrameStore(Store):
    """Finished frames ``NNNNNN.png`` + ``NNNNNN.json`` (the frame's record, a dataclass as JSON) bound to
    ``settings``. Frames are 8-bit PNGs, 16-bit when the settings say ``bit_depth: 16``."""

    def __init__(self, uri: str | os.PathLike[str], settings: dict[str, Any]) -> None:
        super().__init__(uri, settings, "frames")
        self.bit_depth: int = self.settings.get("bit_depth", 8)

    @property
    def levels(self) -> int:
        """The highest level a stored channel holds (255 or 65535): dreams are rounded to these."""
        return (1 << self.bit_depth) - 1

    def finished(self) -> set[int]:
        """Indices of the finished frames (one listing)."""
        return self.numbered(".json", ".png")

    def resume_point(self, start: int, stop: int) -> int:
        """The first index in ``[start, stop)`` not finished (all before it are), or ``stop``."""
        finished, index = self.finished(), start
        while index < stop and index in finished:
            index += 1
        return index

    def save(self, index: int, frame: torch.Tensor, record: Any) -> None:
        """Write frame ``index`` (``(..., 3, H, W)`` in [0, 1], the first of any leading dims), then its record
        (a dataclass instance; the record marks the frame finished)."""
        pixels = frame.reshape(-1, *frame.shape[-3:])[0].permute(1, 2, 0).cpu().numpy()
        self.write_bytes(f"{index:06d}.png", encode_frame(pixels, self.bit_depth))
        self.write_json(f"{index:06d}.json", dataclasses.asdict(record))

    def frame(self, index: int) -> torch.Tensor:
        """A finished frame ``(3, H, W)`` as saved."""
        name = f"{index:06d}.png"
        pixels = decode_frame(self.read_bytes(name), self.path(name))
        return torch.from_numpy(pixels).permute(2, 0, 1).contiguous()

    def record(self, index: int) -> dict[str, Any]:
        """A finished frame's record as a dict."""
        return self.read_json(f"{index:06d}.json")


class SegmentStore(Store):
    """Finished sound segment changes ``NNNNN.npy`` (float32) bound to ``settings``."""

    def __init__(self, uri: str | os.PathLike[str], settings: dict[str, Any]) -> None:
        super().__init__(uri, settings, "sound segments")

    def finished(self) -> set[int]:
        """Indices of the finished segments (one listing)."""
        return self.numbered(".npy")

    def save(self, index: int, change: torch.Tensor) -> None:
        """Write segment ``index``'s change ``(n,)``."""
        buffer = io.BytesIO()
        np.save(buffer, change.detach().cpu().numpy().astype(np.float32))
        self.write_bytes(f"{index:05d}.npy", buffer.getvalue())

    def load(self, index: int) -> torch.Tensor:
        """Segment ``index``'s change ``(n,)`` float32."""
        return torch.from_numpy(np.load(io.BytesIO(self.read_bytes(f"{index:05d}.npy"))))
