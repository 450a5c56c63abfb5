"""Golden outputs: fingerprints of what the user-facing commands make, to prove a refactor changed no output.

    python bench/golden.py --record bench/figures/golden_COMMIT.json    # before the change
    python bench/golden.py --check bench/figures/golden_COMMIT.json     # after it: a table, exit 1 if any differ

It runs only ``python -m mmdream.cli ...`` in subprocesses (nothing of mmdream is imported, so module moves cannot
touch it), at tiny sizes with fixed seeds and ``OMP_NUM_THREADS=1``, on the shared media ($MMDREAM_MEDIA) and
weights ($MMDREAM_WEIGHTS), 80 s on an idle 2-core machine (6.5 minutes at load average 13):

- ``still``: ``mmdream image`` (VGG16, its default layers) of chelsea.png at 96 px, 2 octaves of 3 steps;
- ``film``: ``mmdream video`` of the first 6 frames of bbb_320x180.mp4 at 64 px, keeping its sound;
- ``sound``: ``mmdream audio`` of dog_bark.wav toward YAMNet's Bark, 4 steps, 2 warps;
- ``style``: ``mmdream style`` of chelsea.png in starry night's style at 64 px, 1 scale of 8 steps;
- ``render``: ``mmdream render`` (Ray, one actor) of a job spec: the first 8 frames of bbb_320x180.mp4 at 64 px in
  2 shards (2 warm-up frames, 1 crossfaded), keeping its sound;
- ``walk``: ``mmdream gan walk`` of dcgan_faces64 to dog_bark.wav at 64 px, 10 fps;
- ``analysis``: ``mmdream analyze`` of EfficientNet-Lite0 block9 channels 0-1 at 48 px, 16 steps (the atlas and
  each channel's picture).

What is measured: the sha256 of each output's *decoded* content (pixels of a picture or of each film frame as
uint8 RGB, a sound's samples as PyAV decodes them, AAC tracks included), with its dtype and shape; not the file
bytes, which carry provenance records (time, commit) and container metadata. The JSON maps names (``film/frame003``,
``film/audio``, ...) to those hashes. Two runs of the same code give the same hashes (checked by running twice).
Decoding uses PyAV and Pillow, which mmdream itself depends on.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
from PIL import Image

Case = tuple[str, list[str], str]  # name, the CLI's arguments after ``mmdream``, the output to fingerprint


JOB = """input: {input}
output: {output}
backbone: {{name: vgg16}}
dream: {{steps: 3, octaves: 2, seed: 0}}
film: {{size: 64, stop: 8}}
sharding: {{frames_per_shard: 4, warmup: 2, crossfade: 1}}
resources: {{actors: 1, cpus_per_actor: 1}}
"""


def cases(media: Path, out: Path) -> list[Case]:
    """The commands, each writing one output into ``out`` (and the render's job spec, ``out/job.yaml``)."""
    img, aud, vid = media / "images", media / "audio", media / "video"
    job = out / "job.yaml"
    job.write_text(JOB.format(input=json.dumps(str(vid / "bbb_320x180.mp4")),
                              output=json.dumps(str(out / "render.mp4"))))
    quiet = ["--progress", "none"]
    return [
        ("still", ["image", str(img / "chelsea.png"), str(out / "still.png"), "--size", "96", "--octaves", "2",
                   "--steps", "3", "--seed", "0", *quiet], "still.png"),
        ("film", ["video", str(vid / "bbb_320x180.mp4"), str(out / "film.mp4"), "--size", "64", "--frames", "0:6",
                  "--octaves", "2", "--steps", "3", "--seed", "0", *quiet], "film.mp4"),
        ("sound", ["audio", str(aud / "dog_bark.wav"), str(out / "sound.wav"), "--class", "Bark", "--steps", "4",
                   "--warps", "2", "--seed", "0", *quiet], "sound.wav"),
        ("style", ["style", str(img / "chelsea.png"), str(img / "style_starry_night.jpg"), str(out / "style.png"),
                   "--size", "64", "--scales", "1", "--steps", "8", "--seed", "0", *quiet], "style.png"),
        ("render", ["render", str(job), *quiet], "render.mp4"),
        ("walk", ["gan", "walk", "dcgan_faces64", str(out / "walk.mp4"), "--audio", str(aud / "dog_bark.wav"),
                  "--size", "64", "--fps", "10", "--seed", "0", *quiet], "walk.mp4"),
        ("analysis", ["analyze", "efficientnet_lite0", str(out / "analysis"), "--layer", "block9", "--channels",
                      "0-1", "--size", "48", "--steps", "16", "--seed", "0", *quiet], "analysis"),
    ]


def digest(array: np.ndarray) -> str:
    """sha256 of an array's dtype, shape and raw bytes."""
    a = np.ascontiguousarray(array)
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.tobytes())
    return h.hexdigest()


def picture(path: Path) -> np.ndarray:
    """A picture's pixels as uint8 RGB, (H, W, 3)."""
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def decoded(path: Path) -> dict[str, np.ndarray]:
    """A film's or a sound's decoded streams: ``frameNNN`` (H, W, 3) uint8 RGB and ``audio`` (channels, samples)."""
    out: dict[str, np.ndarray] = {}
    with av.open(str(path)) as container:
        if container.streams.video:
            for i, frame in enumerate(container.decode(video=0)):
                out[f"frame{i:03d}"] = frame.to_ndarray(format="rgb24")
    with av.open(str(path)) as container:
        if container.streams.audio:
            chunks = []
            for frame in container.decode(audio=0):
                a = frame.to_ndarray()
                chunks.append(a if frame.format.is_planar else a.reshape(-1, len(frame.layout.channels)).T)
            out["audio"] = np.concatenate(chunks, axis=1)
    return out


def fingerprints(name: str, path: Path) -> dict[str, str]:
    """``name/part -> sha256`` of one output's decoded content (a picture is its one part, ``name``)."""
    if path.is_dir():  # an analysis report: its pictures
        return {f"{name}/{p.relative_to(path).as_posix()}": digest(picture(p)) for p in sorted(path.rglob("*.png"))}
    if path.suffix.lower() in (".png", ".jpg", ".tif", ".webp"):
        return {name: digest(picture(path))}
    return {f"{name}/{part}": digest(a) for part, a in decoded(path).items()}


def run_all(media: Path, out: Path) -> dict[str, str]:
    """Run every command into ``out`` and fingerprint its output; stderr of a failed command is printed."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    result: dict[str, str] = {}
    for name, args, output in cases(media, out):
        target = out / output
        if target.is_dir():  # a finished report would be resumed, not made again
            shutil.rmtree(target)
        target.unlink(missing_ok=True)
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "mmdream.cli", *args], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"golden: {name} failed (exit {done.returncode}): mmdream {' '.join(args)}\n{done.stderr}")
        prints = fingerprints(name, target)
        print(f"golden: {name}: {len(prints)} part(s) in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        result.update(prints)
    return result


def compare(stored: dict[str, str], now: dict[str, str]) -> bool:
    """Print a table of each part, same / differs / missing / new; True when all are the same."""
    print("output | status")
    print("--- | ---")
    ok = True
    for key in sorted(set(stored) | set(now)):
        status = ("same" if stored[key] == now[key] else "differs") if key in stored and key in now \
            else ("missing" if key in stored else "new")
        ok &= status == "same"
        print(f"{key} | {status}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--record", metavar="FILE", help="write the fingerprints to this JSON file")
    mode.add_argument("--check", metavar="FILE", help="compare with this JSON file; exit 1 if any output differs")
    parser.add_argument("--keep", metavar="DIR", help="write the outputs here (default: a temporary folder)")
    parser.add_argument("--media", default=os.environ.get("MMDREAM_MEDIA", "../shared/media"))
    args = parser.parse_args()
    if args.keep:
        Path(args.keep).mkdir(parents=True, exist_ok=True)
        now = run_all(Path(args.media), Path(args.keep))
    else:
        with tempfile.TemporaryDirectory(prefix="golden-") as d:
            now = run_all(Path(args.media), Path(d))
    if args.record:
        Path(args.record).write_text(json.dumps(now, indent=1, sort_keys=True) + "\n")
        print(f"golden: {len(now)} fingerprints written to {args.record}", file=sys.stderr)
        return 0
    return 0 if compare(json.loads(Path(args.check).read_text()), now) else 1


if __name__ == "__main__":
    sys.exit(main())
