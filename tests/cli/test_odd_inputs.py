"""Every image command on odd but real inputs: it works (a valid output of the right size) or it fails cleanly
(exit status 2, one line, nothing written, the input untouched)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cli_calls import assert_refused, call_cli


def _ramp(h: int, w: int) -> np.ndarray:
    """An 8-bit RGB ``(h, w, 3)`` image: red rises to the right, green downward."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), np.full_like(x, 128)], -1).astype(np.uint8)


def _write_odd_inputs(folder: Path) -> dict[str, tuple[int, int] | None]:
    """Write the odd inputs; return each one's displayed (width, height), None for the unreadable one."""
    Image.fromarray(_ramp(1, 1)).save(folder / "one.png")
    Image.fromarray(_ramp(8, 8)).save(folder / "eight.png")
    Image.fromarray(_ramp(2000, 3)).save(folder / "strip.png")
    Image.fromarray(_ramp(3, 2000)).save(folder / "wide.png")
    Image.fromarray((np.mgrid[0:48, 0:64][1] * 1000).astype(np.uint16)).save(folder / "grey16.png")
    Image.fromarray(_ramp(48, 64)).convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(folder / "palette.png")
    Image.fromarray(_ramp(48, 64)).convert("CMYK").save(folder / "cmyk.jpg")
    rotated = Image.fromarray(_ramp(40, 64))
    exif = rotated.getexif()
    exif[0x0112] = 6  # orientation: turn 90 degrees clockwise to display
    rotated.save(folder / "rotated.jpg", exif=exif)
    frames = [Image.fromarray(np.ascontiguousarray(_ramp(48, 64)[:, :, [i, (i + 1) % 3, 2]])) for i in range(3)]
    frames[0].save(folder / "animated.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    Image.fromarray(_ramp(48, 64)).save(folder / "png_named.jpg", format="PNG")
    (folder / "text.png").write_text("this is not a picture")
    sizes: dict[str, tuple[int, int] | None] = {
        "one.png": (1, 1), "eight.png": (8, 8), "strip.png": (3, 2000), "wide.png": (2000, 3),
        "grey16.png": (64, 48), "palette.png": (64, 48), "cmyk.jpg": (64, 48), "rotated.jpg": (40, 64),
        "animated.gif": (64, 48), "png_named.jpg": (64, 48), "text.png": None}
    return sizes


INPUTS = ["one.png", "eight.png", "strip.png", "wide.png", "grey16.png", "palette.png", "cmyk.jpg", "rotated.jpg",
          "animated.gif", "png_named.jpg", "text.png"]
COMMANDS = {
    "image": ["image", "{input}", "{out}", "--steps", "1", "--octaves", "2", "--progress", "none"],
    "style": ["style", "{input}", "{style}", "{out}", "--steps", "1", "--scales", "1", "--size", "64",
              "--progress", "none"],
    "style image": ["style", "{style}", "{input}", "{out}", "--steps", "1", "--scales", "1", "--size", "64",
                    "--progress", "none"],
    "classify": ["classify", "{input}", "-b", "efficientnet_lite0", "--top", "1"],
    "gan photo": ["gan", "dream", "dcgan_faces64", "{out}", "--photo", "{input}", "-b", "efficientnet_lite0",
                  "--steps", "1", "--restarts", "1", "--project-steps", "1", "--size", "64", "--progress", "none"],
}


@pytest.fixture(scope="module")
def odd(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, tuple[int, int] | None]]:
    folder = tmp_path_factory.mktemp("odd")
    return folder, _write_odd_inputs(folder)


def test_odd_inputs_are_what_they_claim(odd: tuple[Path, dict[str, tuple[int, int] | None]]) -> None:
    """The fixtures really are odd: 16-bit grey, a palette, CMYK, an EXIF turn, three frames, a PNG called .jpg."""
    folder, _ = odd
    modes = {name: Image.open(folder / name).mode for name in ("grey16.png", "palette.png", "cmyk.jpg")}
    assert modes == {"grey16.png": "I;16", "palette.png": "P", "cmyk.jpg": "CMYK"}
    with Image.open(folder / "rotated.jpg") as im:
        assert im.size == (64, 40) and im.getexif()[0x0112] == 6
    with Image.open(folder / "animated.gif") as im:
        assert im.n_frames == 3
    with Image.open(folder / "png_named.jpg") as im:
        assert im.format == "PNG"


def test_sixteen_bit_grey_is_scaled_not_clipped(odd: tuple[Path, dict[str, tuple[int, int] | None]]) -> None:
    from mmdream.media.images import load_image

    x = load_image(odd[0] / "grey16.png")
    row = x[0, 0, 0] * 255  # grey 0, 1000, 2000, ... 63000 of 65535
    assert abs(float(row[0])) < 0.5 and abs(float(row[-1]) - 63000 / 257) < 1 and bool((row.diff() > 0).all())


@pytest.mark.parametrize("name", INPUTS)
@pytest.mark.parametrize("command", list(COMMANDS))
def test_odd_input(command: str, name: str, odd: tuple[Path, dict[str, tuple[int, int] | None]], tmp_path: Path,
                   media_dir: Path, weights_dir: Path, capsys: pytest.CaptureFixture[str],
                   monkeypatch: pytest.MonkeyPatch, one_thread: None) -> None:
    monkeypatch.setenv("MMDREAM_WEIGHTS", str(weights_dir))
    folder, sizes = odd
    source = tmp_path / name
    shutil.copy(folder / name, source)
    data = source.read_bytes()
    out = tmp_path / "out.png"
    style = media_dir / "images" / "style_starry_night.jpg"
    argv = [a.format(input=source, out=out, style=style) for a in COMMANDS[command]]
    before = {p.name for p in tmp_path.iterdir()}
    code, stdout, err = call_cli(argv, capsys)
    assert source.read_bytes() == data
    if sizes[name] is None:
        assert_refused(code, err, tmp_path, before)
        assert "cannot read" in err and name in err
        return
    assert code == 0, err
    if command == "classify":
        top = json.loads(stdout)["top"]
        assert len(top) == 1 and 0.0 < top[0]["prob"] <= 1.0
        return
    with Image.open(out) as im:
        im.load()
        size = im.size
    w, h = sizes[name]  # type: ignore[misc]
    if command == "image":
        assert size == (w, h)  # the dream keeps the input's size (and its displayed orientation)
    elif command == "style":
        scale = 64 / max(w, h)
        assert size == (max(1, round(w * scale)), max(1, round(h * scale)))
    else:
        assert max(size) == 64
