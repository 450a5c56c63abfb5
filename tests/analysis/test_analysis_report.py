"""``mmdream analyze``: the HTML report opens offline in headless Chromium with every image loaded; resuming (bad
inputs are in tests/test_failures.py). Tiny settings (32 px, 2 steps): these tests check the report,
test_analysis_visualize.py the pictures."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
import soundfile

from mmdream.cli import main

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TINY = ["--steps", "2", "--sound-steps", "2", "--size", "32", "--progress", "none"]

pytestmark = pytest.mark.usefixtures("one_thread")


def _linked(media_dir: Path, target: Path, names: list[str]) -> Path:
    """A small dataset: links to some files of the shared animals dataset, in class folders."""
    for name in names:
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        (target / name).symlink_to(media_dir / "datasets" / "animals" / name)
    return target


def open_offline(index: Path) -> dict[str, list]:  # type: ignore[type-arg]
    """Load ``index`` in headless Chromium (a fresh profile); the images' load state, the audio sources, every
    requested URL and every failed one."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (CI does) to check the report")
    from playwright.sync_api import sync_playwright

    requested: list[str] = []
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="mmdream-chromium-") as profile, sync_playwright() as p:
        context = p.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, headless=True,
                                                       args=CHROMIUM_ARGS)
        try:
            page = context.new_page()
            page.on("request", lambda r: requested.append(r.url))
            page.on("requestfailed", lambda r: failed.append(r.url))
            page.goto(index.as_uri(), wait_until="load")
            images = page.evaluate(
                "Array.from(document.images, i => ({src: i.src, complete: i.complete, width: i.naturalWidth}))")
            audio = page.evaluate("Array.from(document.querySelectorAll('audio'), a => a.src)")
        finally:
            context.close()
    return {"images": images, "audio": audio, "requested": requested, "failed": failed}


def _check_page(out: Path, expected_images: int) -> dict[str, list]:  # type: ignore[type-arg]
    page = open_offline(out / "index.html")
    assert page["failed"] == []
    assert len(page["images"]) == expected_images
    assert all(i["complete"] and i["width"] > 0 for i in page["images"]), page["images"]
    root = out.resolve().as_uri() + "/"
    assert all(url.startswith(root) for url in page["requested"]), page["requested"]  # nothing from outside
    return page


def test_vgg16_report_opens_offline_with_every_image(weights_dir: Path, media_dir: Path, tmp_path: Path) -> None:
    data = _linked(media_dir, tmp_path / "data", ["images/dog/dog.png", "images/frog/frog.png",
                                                  "images/duck/duck.png"])
    out = tmp_path / "report"
    rc = main(["analyze", "vgg16", "--layer", "relu4_3", "--channels", "0-2", "--batch", "2", "--dataset", str(data),
               "--examples", "2", "--weights", str(weights_dir), *TINY, str(out)])
    assert rc == 0
    _check_page(out, 1 + 3 + 3 * 2)  # atlas, 3 visualisations, 2 examples each
    settings = json.loads((out / "settings.json").read_text())
    assert settings["channels"] == [0, 1, 2] and settings["layer"] == "relu4_3"
    record = json.loads((out / "examples" / "examples.json").read_text())
    assert [len(record[str(c)]) for c in range(3)] == [2, 2, 2]
    assert all(r["score"] >= s["score"] for r, s in zip(record["0"], record["0"][1:]))
    assert not list(out.rglob(".*"))  # no temporary files left
    (out / "vis" / "c0001.png").unlink()  # the check sees a missing picture
    broken = open_offline(out / "index.html")
    assert broken["failed"] == [(out / "vis" / "c0001.png").resolve().as_uri()]
    assert [i["width"] for i in broken["images"]].count(0) == 1


def test_yamnet_report_has_spectrograms_and_sounds(weights_dir: Path, media_dir: Path, tmp_path: Path) -> None:
    data = _linked(media_dir, tmp_path / "data", ["sounds/dog/dog.wav", "sounds/frog/frog.wav"])
    out = tmp_path / "report"
    rc = main(["analyze", "yamnet", "--layer", "layer8", "--channels", "5", "--seconds", "0.5", "--dataset",
               str(data), "--examples", "2", "--weights", str(weights_dir), *TINY, str(out)])
    assert rc == 0
    page = _check_page(out, 1 + 1 + 2)
    assert len(page["audio"]) == 3
    for src in page["audio"]:
        info = soundfile.info(src.removeprefix("file://"))
        assert info.samplerate == 16000 and info.frames > 0


def test_report_resumes_with_the_same_result(weights_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    args = ["analyze", "vgg16", "--layer", "relu3_3", "--channels", "4,9,7", "--batch", "2",
            "--weights", str(weights_dir), *TINY, str(out)]
    assert main(args) == 0
    first = {p.relative_to(out): p.read_bytes() for p in out.rglob("*.png")}
    (out / "index.html").unlink()  # an interrupted run: the second batch and the index are missing
    (out / "vis" / "c0007.json").unlink()
    (out / "vis" / "c0007.png").unlink()
    assert main(args) == 0
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*.png")} == first
    assert (out / "index.html").is_file()


def test_class_top_k_channels(weights_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    rc = main(["analyze", "efficientnet_lite0", "--layer", "block6", "--class", "goldfish", "--top-k", "2",
               "--weights", str(weights_dir), *TINY, str(out)])
    assert rc == 0
    settings = json.loads((out / "settings.json").read_text())
    assert len(set(settings["channels"])) == 2 and "goldfish" in settings["note"]


def test_a_folder_with_other_content_is_refused(weights_dir: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    base = ["analyze", "vgg16", "--layer", "relu1_1", "--channels", "0", "--weights", str(weights_dir), *TINY]
    assert main([*base, str(out)]) == 2
    assert "not empty and holds no report" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
    other = tmp_path / "other"
    assert main([*base, str(other)]) == 0
    index = (other / "index.html").read_bytes()
    assert main([*base[:-2], "--steps", "3", "--size", "32", "--progress", "none", str(other)]) == 2
    assert "made with other settings" in capsys.readouterr().err
    assert (other / "index.html").read_bytes() == index
