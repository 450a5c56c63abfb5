"""The checkpoint store, on a local folder and on a real SeaweedFS bucket: it is bound to its settings (other
settings are refused, naming the keys), items round-trip exactly (8- and 16-bit frames, float32 segments, JSON),
and an interrupted write leaves no partial item and no temporary behind."""

from __future__ import annotations

import dataclasses
import json
import secrets
from pathlib import Path

import pytest
import torch

from mmdream.errors import ParameterError
from mmdream.media import storage
from mmdream.pipelines.store import SETTINGS_FILE, FrameStore, SegmentStore, SettingsMismatch, Store


@pytest.fixture(params=["local", "s3"])
def root(request, tmp_path: Path, monkeypatch) -> str:  # type: ignore[no-untyped-def]
    """A fresh store location: a local folder, or a prefix in the test bucket of the local S3 server."""
    if request.param == "local":
        return str(tmp_path / "work")
    server = request.getfixturevalue("s3_server")
    for name, value in server.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return f"s3://{server.bucket}/work/{secrets.token_hex(4)}"


@dataclasses.dataclass(frozen=True)
class Record:
    index: int
    strength: float


SETTINGS = {"width": 8, "height": 6, "still": {"steps": 2, "layers": ("a", "b")}}


def test_settings_are_recorded_then_required(root: str) -> None:
    assert not Store.is_bound(root)
    store = Store(root, SETTINGS)
    assert Store.is_bound(root) and store.settings == {"width": 8, "height": 6, "still": {"steps": 2,
                                                                                         "layers": ["a", "b"]}}
    assert storage.read_text(storage.join(root, SETTINGS_FILE)) == json.dumps(store.settings, indent=1,
                                                                              sort_keys=True)
    assert Store(root, dict(SETTINGS)).settings == store.settings  # the same settings (tuples as lists): resumed
    with pytest.raises(SettingsMismatch, match=r"holds frames made with other settings \(differ in: still, "
                                               r"width\); remove it") as caught:
        FrameStore(root, {**SETTINGS, "width": 16, "still": {"steps": 3}})
    assert isinstance(caught.value, ParameterError) and caught.value.differ == ["still", "width"]
    with pytest.raises(SettingsMismatch, match="differ in: fps"):
        SegmentStore(root, {**SETTINGS, "fps": 25})


def test_an_unreadable_settings_record_matches_nothing(tmp_path: Path) -> None:
    (tmp_path / SETTINGS_FILE).write_text('{"width": 8, "hei')
    with pytest.raises(SettingsMismatch, match="differ in: height, still, width"):
        Store(tmp_path, SETTINGS)


@pytest.mark.parametrize("bit_depth", [8, 16])
def test_frames_round_trip_at_their_bit_depth(root: str, bit_depth: int) -> None:
    work = FrameStore(root, {**SETTINGS, "bit_depth": bit_depth} if bit_depth == 16 else SETTINGS)
    assert work.levels == (1 << bit_depth) - 1 and work.finished() == set() and work.resume_point(0, 3) == 0
    frames = torch.rand(3, 1, 3, 6, 8, generator=torch.Generator().manual_seed(0))
    for t in (0, 1, 4):
        work.save(t, frames[t if t < 3 else 2], Record(t, 0.5 * t))
    assert work.finished() == {0, 1, 4} and work.resume_point(0, 3) == 2 and work.resume_point(4, 5) == 5
    levels = work.levels
    assert torch.equal(work.frame(1), (frames[1, 0] * levels + 0.5).floor() / levels)  # as rounded to the levels
    assert work.record(4) == {"index": 4, "strength": 2.0}
    assert storage.listdir(root) == sorted([SETTINGS_FILE] + [f"{t:06d}{s}" for t in (0, 1, 4)
                                                              for s in (".json", ".png")])


def test_segments_round_trip_as_float32(root: str) -> None:
    store = SegmentStore(root, SETTINGS)
    change = torch.randn(1000, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    store.save(3, change)
    store.save(0, change[:10])
    assert store.finished() == {0, 3} and "00003.npy" in storage.listdir(root)
    loaded = store.load(3)
    assert loaded.dtype == torch.float32 and torch.equal(loaded, change.float())


def test_named_items(root: str) -> None:
    store = Store(root, SETTINGS)
    store.write_json("vis/c0001.json", {"channel": 1}, indent=1)
    with store.output("atlas.png") as tmp:
        tmp.write_bytes(b"png bytes")
    assert store.has("vis/c0001.json") and not store.has("vis/c0002.json")
    assert store.read_json("vis/c0001.json") == {"channel": 1} and store.read_bytes("atlas.png") == b"png bytes"
    assert storage.read_text(store.path("vis/c0001.json")) == '{\n "channel": 1\n}'
    assert store.numbered(".json") == set()  # numbered items are directly under the store, named by digits


def test_a_failed_item_write_leaves_nothing(root: str) -> None:
    store = Store(root, SETTINGS)
    with pytest.raises(KeyboardInterrupt):
        with store.output("atlas.png") as tmp:
            tmp.write_bytes(b"half a pic")
            raise KeyboardInterrupt  # ctrl-c while the item is being written
    assert not store.has("atlas.png") and storage.listdir(root) == [SETTINGS_FILE]


def test_an_interrupted_frame_is_not_finished_and_leaves_no_partial_file(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    work = FrameStore(tmp_path, SETTINGS)
    work.save(0, torch.zeros(3, 6, 8), Record(0, 0.0))
    write_bytes = Path.write_bytes

    def interrupted(self: Path, data: bytes) -> int:  # ctrl-c half-way through a file
        write_bytes(self, data[:len(data) // 2])
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "write_bytes", interrupted)
    with pytest.raises(KeyboardInterrupt):
        work.save(1, torch.ones(3, 6, 8), Record(1, 1.0))  # the PNG's write is cut short
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["000000.json", "000000.png", SETTINGS_FILE]

    def no_record(self: FrameStore, name: str, record: object, indent: int | None = None) -> None:
        raise KeyboardInterrupt  # ctrl-c between the frame and its record

    monkeypatch.setattr(FrameStore, "write_json", no_record)
    with pytest.raises(KeyboardInterrupt):
        work.save(1, torch.ones(3, 6, 8), Record(1, 1.0))
    monkeypatch.undo()
    assert work.finished() == {0} and work.resume_point(0, 2) == 1  # a frame without its record is redone
    work.save(1, torch.ones(3, 6, 8), Record(1, 1.0))
    assert work.finished() == {0, 1} and torch.equal(work.frame(1), torch.ones(3, 6, 8))
