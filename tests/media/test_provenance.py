"""Record texts embedded by every writer (images, sounds, films) and read back; deterministic bytes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mmdream.errors import MediaError
from mmdream.media.audio import save_audio
from mmdream.media.images import save_image
from mmdream.media.provenance import read_text
from mmdream.media.video import VideoWriter, mux
from mmdream.provenance import dumps, loads, make_record, network_record, read_record

TEXT = dumps({"mmdream": "test", "command": "image", "options": {"steps": 3, "note": "é" * 2000}})


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".tif"])
def test_images_carry_the_record_and_stay_byte_identical(tmp_path: Path, suffix: str) -> None:
    image = torch.rand(1, 3, 24, 32, generator=torch.Generator().manual_seed(0))
    a, b, bare = (tmp_path / f"{n}{suffix}" for n in ("a", "b", "bare"))
    save_image(image, a, provenance=TEXT)
    save_image(image, b, provenance=TEXT)
    save_image(image, bare)
    assert read_text(a) == TEXT and loads(read_text(a)) == loads(TEXT)
    assert a.read_bytes() == b.read_bytes()
    assert read_text(bare) is None and read_record(bare) is None


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".ogg"])
def test_sounds_carry_the_record(tmp_path: Path, suffix: str) -> None:
    samples = torch.sin(torch.linspace(0, 400, 8000))[None] * 0.5
    a, b = tmp_path / f"a{suffix}", tmp_path / f"b{suffix}"
    save_audio(a, samples, 16000, provenance=TEXT)
    save_audio(b, samples, 16000)
    assert read_text(a) == TEXT
    assert read_text(b) is None


@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".mkv"])
def test_films_carry_the_record_with_and_without_sound(tmp_path: Path, suffix: str) -> None:
    frames = [np.full((16, 16, 3), 40 * i, np.uint8) for i in range(4)]
    silent, sound = tmp_path / f"silent{suffix}", tmp_path / f"sound{suffix}"
    with VideoWriter(silent, fps=10, provenance=TEXT) as writer:
        for f in frames:
            writer.write(f)
    with VideoWriter(sound, fps=10, audio=(np.zeros((1, 16000), np.float32), 16000), provenance=TEXT) as writer:
        for f in frames:
            writer.write(f)
    assert read_text(silent) == TEXT and read_text(sound) == TEXT
    again = tmp_path / f"again{suffix}"
    with VideoWriter(again, fps=10, audio=(np.zeros((1, 16000), np.float32), 16000), provenance=TEXT) as writer:
        for f in frames:
            writer.write(f)
    assert again.read_bytes() == sound.read_bytes()  # no random ids or time stamps: equal films, equal bytes
    remuxed = tmp_path / f"remuxed{suffix}"
    mux(silent, remuxed, audio=(np.zeros((1, 8000), np.float32), 16000))
    assert read_text(remuxed) is None  # a remux says nothing unless told


def test_records_hold_weights_digests_and_seed(tmp_path: Path) -> None:
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Params:
        steps: int = 3
        seed: int = 7

    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"abc")

    class Net:
        name, variant, weights_path = "net", "v1", weights

    record = make_record("image", params=[Params()], networks=[("backbone", Net())], inputs={"input": "x.png"},
                         options={"channel": ((1, 2.0),)})
    assert record["seed"] == 7 and record["params"] == {"Params": {"steps": 3, "seed": 7}}
    assert record["networks"][0]["weights"]["sha256"] == \
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"  # sha256("abc")
    assert record["options"] == {"channel": [[1, 2.0]]} and "time" not in dumps(record)
    assert network_record("g", type("G", (), {"name": "g", "weights_path": None})())["weights"] is None


def test_unreadable_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="does not exist"):
        read_text(tmp_path / "missing.png")
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(MediaError, match="cannot read"):
        read_text(junk)
    assert loads('{"comment": "a camera"}') is None and loads("not json") is None
