"""An evaluation set of short films composed by code (seeded), split into a tuning part and a held-out part.

    python bench/evalset.py [--cache DIR] [--split tune|held_out] [--list]

Each :class:`Clip` is a picture (Big Buck Bunny at any rate, a pan across a shared photo, a fast pan, a static
camera, scene cuts between photos) with a soundtrack (composed: sparse and dense plucked notes, a drum loop, chords
changing every bar, drums with chords, speech with pauses, music with silence gaps, a steady tone; or a shared
recording), at 10, 24, 25 or 30 fps. :func:`build` writes it as H.264 + AAC into a cache folder (named by the
clip's spec, so a changed spec is rebuilt) and returns the path; building is deterministic.

The picture side (:data:`PICTURE_CLIPS`, 640x360, 2-3 s, for ``bench/quality.py``) adds content the dream must
hold on: flat cartoon colours, a drifting noise texture, a dark and a bright scene, next to Big Buck Bunny (from the
720p original), a locked-off camera, a fast pan and scene cuts; :data:`STILLS` are photos (and frames of the made
clips) with the class a class dream aims at.

Importable: ``from bench.evalset import CLIPS, build, clips, chords_of`` (or with ``bench/`` on ``sys.path``).
Defaults were tuned only on the clips whose ``split`` is ``"tune"``; reports quote the ``"held_out"`` ones.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mmdream.media.images import from_uint8, load_image, save_image, to_uint8
from mmdream.media.audio import load_audio
from mmdream.ops.resample import resample
from mmdream.media.video import VideoWriter, read_frames
from mmdream.ops.transforms import affine

MEDIA = Path(os.environ.get("MMDREAM_MEDIA", Path(__file__).resolve().parents[2] / "shared" / "media"))
CACHE = Path(os.environ.get("MMDREAM_EVALSET", Path.home() / ".cache" / "mmdream" / "evalset"))
RATE = 44100
PICTURES = ("bbb", "pan", "fast", "static", "cuts", "cartoon", "texture", "dark", "bright")
SOUNDS = ("sparse", "dense", "drums", "chords", "drums_chords", "speech", "gaps", "tone", "amen", "guitar")


@dataclass(frozen=True)
class Clip:
    """One film of the set: ``picture`` (one of PICTURES; ``photo`` for pan/fast/static), ``sound`` (one of SOUNDS),
    rate, length, frame size ``(width, height)``, seed, and the part of the set it belongs to."""

    name: str
    picture: str
    sound: str
    fps: float
    seconds: float
    split: str
    seed: int = 0
    photo: str = "coffee.png"
    size: tuple[int, int] = (160, 90)

    @property
    def frames(self) -> int:
        return round(self.seconds * self.fps)

    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:10]


CLIPS: tuple[Clip, ...] = (
    # tuning part
    Clip("amen_bbb_25", "bbb", "amen", 25, 4.0, "tune"),
    Clip("sparse_pan_24", "pan", "sparse", 24, 4.0, "tune", seed=1, photo="coffee.png"),
    Clip("drumschords_bbb_10", "bbb", "drums_chords", 10, 4.0, "tune", seed=2),
    Clip("speech_static_30", "static", "speech", 30, 3.0, "tune", seed=3, photo="chelsea.png"),
    # held-out part
    Clip("drums_bbb_10", "bbb", "drums", 10, 4.0, "held_out", seed=11),
    Clip("drums_cuts_10_long", "cuts", "drums", 10, 8.0, "held_out", seed=12),
    Clip("dense_pan_30", "pan", "dense", 30, 3.0, "held_out", seed=13, photo="astronaut.png"),
    Clip("drumschords_fast_24", "fast", "drums_chords", 24, 4.0, "held_out", seed=14, photo="dog.jpg"),
    Clip("gaps_cuts_24", "cuts", "gaps", 24, 4.0, "held_out", seed=15),
    Clip("speech_bbb_30", "bbb", "speech", 30, 3.0, "held_out", seed=16),
    Clip("chords_pan_10", "pan", "chords", 10, 6.0, "held_out", seed=17, photo="chelsea.png"),
    Clip("guitar_static_24", "static", "guitar", 24, 4.0, "held_out", seed=18, photo="coffee.png"),
    Clip("tone_bbb_24", "bbb", "tone", 24, 3.0, "held_out", seed=19),
)


PICTURE_CLIPS: tuple[Clip, ...] = (
    # tuning part (the clip the defaults were first chosen on, and two the picture side was tuned on)
    Clip("pic_bbb_25", "bbb", "amen", 25, 2.64, "tune", seed=21, size=(640, 360)),
    Clip("pic_cartoon_24", "cartoon", "drums", 24, 2.5, "tune", seed=22, size=(640, 360)),
    Clip("pic_dark_24", "dark", "guitar", 24, 2.0, "tune", seed=23, photo="astronaut.png", size=(640, 360)),
    # held-out part
    Clip("pic_static_10", "static", "amen", 10, 3.0, "held_out", seed=31, photo="chelsea.png", size=(640, 360)),
    Clip("pic_fast_24", "fast", "chords", 24, 2.5, "held_out", seed=32, photo="dog.jpg", size=(640, 360)),
    Clip("pic_cuts_30", "cuts", "drums_chords", 30, 3.0, "held_out", seed=33, size=(640, 360)),
    Clip("pic_texture_25", "texture", "speech", 25, 2.0, "held_out", seed=34, size=(640, 360)),
    Clip("pic_bright_30", "bright", "gaps", 30, 2.0, "held_out", seed=35, photo="coffee.png", size=(640, 360)),
)


@dataclass(frozen=True)
class Still:
    """A picture for class dreams: a shared photo, or frame ``frame`` of a picture clip; the class aimed at."""

    name: str
    class_: str
    split: str
    photo: str | None = None
    clip: str | None = None
    frame: int = 12


STILLS: tuple[Still, ...] = (
    Still("coffee", "goldfish", "tune", photo="coffee.png"),
    Still("chelsea", "pizza", "tune", photo="chelsea.png"),
    Still("astronaut", "goldfish", "held_out", photo="astronaut.png"),
    Still("dog", "pizza", "held_out", photo="dog.jpg"),
    Still("cartoon", "volcano", "held_out", clip="pic_cartoon_24"),
    Still("dark", "daisy", "held_out", clip="pic_dark_24"),
)


def clips(split: str | None = None) -> list[Clip]:
    """The clips of one part (``"tune"`` or ``"held_out"``), or all."""
    return [c for c in CLIPS if split is None or c.split == split]


# ---------------------------------------------------------------------------------------------------------- sound

def _note(freq: float, seconds: float, decay: float, rng: np.random.Generator) -> np.ndarray:
    """A plucked note: a few harmonics under an exponential decay ``(n,)``."""
    t = np.arange(int(seconds * RATE)) / RATE
    tone = sum(np.sin(2 * np.pi * freq * k * t + rng.uniform(0, 6.28)) / k ** 1.5 for k in range(1, 5))
    return (tone * np.exp(-t / decay) * np.minimum(1.0, t / 0.005)).astype(np.float64)


def _place(out: np.ndarray, sound: np.ndarray, at: float, gain: float = 1.0) -> None:
    i = int(at * RATE)
    n = min(len(sound), len(out) - i)
    if n > 0:
        out[i:i + n] += gain * sound[:n]


def _notes(seconds: float, rng: np.random.Generator, gaps: tuple[float, float], decay: float) -> np.ndarray:
    """Plucked notes of a pentatonic scale at random intervals in ``gaps`` seconds, random velocities."""
    out = np.zeros(int(seconds * RATE))
    scale = 220.0 * 2 ** (np.array([0, 2, 4, 7, 9, 12, 14, 16]) / 12)
    at = rng.uniform(0, gaps[0])
    while at < seconds:
        _place(out, _note(float(rng.choice(scale)), 1.5, decay, rng), at, rng.uniform(0.3, 1.0))
        at += rng.uniform(*gaps)
    return out


def _kick(rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(0.35 * RATE)) / RATE
    freq = 50 + 90 * np.exp(-t / 0.04)
    return np.sin(2 * np.pi * np.cumsum(freq) / RATE) * np.exp(-t / 0.12)


def _snare(rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(0.25 * RATE)) / RATE
    noise = rng.standard_normal(len(t))
    return (0.7 * noise * np.exp(-t / 0.06) + 0.5 * np.sin(2 * np.pi * 190 * t) * np.exp(-t / 0.05))


def _hat(rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(0.06 * RATE)) / RATE
    noise = np.diff(rng.standard_normal(len(t) + 1))  # high-passed
    return 0.25 * noise * np.exp(-t / 0.015)


def _drums(seconds: float, rng: np.random.Generator, bpm: float) -> np.ndarray:
    """A 16-step drum loop (kick, snare, hats) with per-hit velocities and a fill every fourth bar."""
    out = np.zeros(int(seconds * RATE))
    step = 60.0 / bpm / 4
    kick = [0, 6, 8, 11] if rng.random() < 0.5 else [0, 3, 8, 10]
    snare, hats = [4, 12], list(range(0, 16, 2))
    for i in range(int(seconds / step) + 1):
        pos, bar = i % 16, i // 16
        at = i * step
        if pos in kick:
            _place(out, _kick(rng), at, rng.uniform(0.7, 1.0))
        if pos in snare or (bar % 4 == 3 and pos >= 12):
            _place(out, _snare(rng), at, rng.uniform(0.5, 0.9))
        if pos in hats:
            _place(out, _hat(rng), at, rng.uniform(0.4, 1.0))
    return out


def _chords(seconds: float, rng: np.random.Generator, bar_s: float,
            timeline: list[tuple[float, float, frozenset[int]]] | None = None) -> np.ndarray:
    """Triads changing every bar (a I-vi-IV-V-like progression in a random key), each swelling in and out; each
    bar's (start, end, pitch classes with C = 0) appended to ``timeline``."""
    out = np.zeros(int(seconds * RATE))
    key = int(rng.integers(0, 12))
    root = 110.0 * 2 ** (key / 12)  # A2 and up: pitch class (9 + key) % 12
    progression = [(0, 4, 7), (9, 12, 16), (5, 9, 12), (7, 11, 14), (2, 5, 9), (4, 7, 11)]
    order = rng.permutation(len(progression))
    t = np.arange(int(bar_s * RATE)) / RATE
    shape = np.minimum(1.0, t / 0.08) * np.minimum(1.0, (bar_s - t) / 0.1) * (0.7 + 0.3 * np.exp(-t / 0.5))
    for b in range(int(math.ceil(seconds / bar_s))):
        chord = progression[order[b % len(order)]]
        tone = sum(np.sin(2 * np.pi * root * 2 ** (s / 12) * k * t) / k ** 2 for s in chord for k in (1, 2, 3))
        _place(out, tone * shape / 3, b * bar_s)
        if timeline is not None and b * bar_s < seconds:
            timeline.append((b * bar_s, min(seconds, (b + 1) * bar_s), frozenset((9 + key + s) % 12 for s in chord)))
    return out


def _recording(name: str, seconds: float) -> np.ndarray:
    """A shared recording, mono, at RATE, looped to ``seconds``."""
    samples, rate = load_audio(MEDIA / "audio" / name, mono=True)
    mono = resample(samples.numpy()[0], rate, RATE).astype(np.float64)
    return np.resize(mono, int(seconds * RATE))


def _speech(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """The shared spoken phrase, repeated after pauses of 0.2-0.7 s."""
    phrase = _recording("speech_front_center.wav", 1.43)
    out, at = np.zeros(int(seconds * RATE)), rng.uniform(0.0, 0.3)
    while at < seconds:
        _place(out, phrase, at, rng.uniform(0.6, 1.0))
        at += len(phrase) / RATE + rng.uniform(0.2, 0.7)
    return out


def sound(kind: str, seconds: float, seed: int,
          timeline: list[tuple[float, float, frozenset[int]]] | None = None) -> np.ndarray:
    """A composed or shared soundtrack ``(n,)`` at :data:`RATE`, peak-normalised to 0.8 (silence stays silent);
    composed chords are listed in ``timeline`` as (start s, end s, pitch classes)."""
    rng = np.random.default_rng(seed)
    if kind == "sparse":
        y = _notes(seconds, rng, (0.4, 1.2), 0.25)
    elif kind == "dense":
        y = _notes(seconds, rng, (0.08, 0.2), 0.12)
    elif kind == "drums":
        y = _drums(seconds, rng, rng.uniform(95, 130))
    elif kind == "chords":
        y = _chords(seconds, rng, rng.uniform(1.2, 2.0), timeline)
    elif kind == "drums_chords":
        bpm = rng.uniform(95, 125)
        y = _drums(seconds, rng, bpm) + 0.8 * _chords(seconds, rng, 4 * 60.0 / bpm, timeline)
    elif kind == "speech":
        y = _speech(seconds, rng)
    elif kind == "gaps":
        y = _notes(seconds, rng, (0.1, 0.3), 0.2)
        t = np.arange(len(y)) / RATE
        y *= (np.floor(t / 0.8) % 2 == 0) | (t % 0.8 < 0.01)  # 0.8 s on, 0.8 s of silence
    elif kind == "tone":
        t = np.arange(int(seconds * RATE)) / RATE
        y = np.sin(2 * np.pi * 220 * t) * (1 + 0.1 * np.sin(2 * np.pi * 0.7 * t))
    elif kind == "amen":
        y = _recording("music_loop_amen_full.wav", seconds)
    elif kind == "guitar":
        y = _recording("music_guitar_em9.wav", seconds)
    else:
        raise ValueError(f"unknown sound {kind!r}; one of {', '.join(SOUNDS)}")
    peak = float(np.abs(y).max())
    return (0.8 * y / peak if peak > 0 else y).astype(np.float32)


# -------------------------------------------------------------------------------------------------------- picture

def _photo(name: str, height: int) -> torch.Tensor:
    """A shared photo ``(3, h, w)`` scaled to ``height`` rows."""
    image = load_image(MEDIA / "images" / name)
    return F.interpolate(image, size=(height, round(image.shape[-1] * height / image.shape[-2])), mode="area")[0]


def _pan(photo: torch.Tensor, size: tuple[int, int], x: float, y: float) -> torch.Tensor:
    """The ``size`` window at fractional position ``(x, y)`` in [0, 1] of ``photo``, sub-pixel (bilinear)."""
    w, h = size
    H, W = photo.shape[-2:]
    left, top = x * (W - w - 1), y * (H - h - 1)
    ys = (torch.arange(h) + top) / (H - 1) * 2 - 1
    xs = (torch.arange(w) + left) / (W - 1) * 2 - 1
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)[None].float()
    return F.grid_sample(photo[None], grid, mode="bilinear", align_corners=True)[0]


def _disc(frame: torch.Tensor, x: float, y: float, r: float, colour: tuple[float, float, float]) -> None:
    """Paint a flat anti-aliased disc (radius ``r`` px, centre (x, y)) into ``frame`` ``(3, H, W)`` in place."""
    yy, xx = torch.meshgrid(torch.arange(frame.shape[1]), torch.arange(frame.shape[2]), indexing="ij")
    alpha = (r + 0.5 - ((xx - x) ** 2 + (yy - y) ** 2).sqrt()).clamp(0, 1)
    frame.mul_(1 - alpha).add_(alpha * torch.tensor(colour).view(3, 1, 1))


def _cartoon(size: tuple[int, int], s: float) -> torch.Tensor:
    """Flat colours at time ``s`` in [0, 1]: sky over ground, a sun, two bouncing discs, a sliding bar."""
    w, h = size
    u = w / 640
    f = torch.empty(3, h, w)
    f[:, : h * 2 // 3] = torch.tensor([0.45, 0.75, 0.95]).view(3, 1, 1)
    f[:, h * 2 // 3:] = torch.tensor([0.35, 0.7, 0.25]).view(3, 1, 1)
    _disc(f, 540 * u, 70 * u, 40 * u, (1.0, 0.85, 0.1))
    _disc(f, (80 + 460 * s) * u, (230 - 140 * abs(math.sin(3 * math.pi * s))) * u, 34 * u, (0.9, 0.15, 0.15))
    _disc(f, (520 - 300 * s) * u, (260 - 90 * abs(math.sin(5 * math.pi * s))) * u, 22 * u, (0.2, 0.2, 0.8))
    x0 = int((40 + 200 * s) * u)
    f[:, int(290 * u):int(320 * u), x0:x0 + int(180 * u)] = torch.tensor([0.95, 0.55, 0.1]).view(3, 1, 1)
    return f


def _texture(seed: int, side: int) -> torch.Tensor:
    """A colour texture ``(1, 3, side, side)``: seeded noise summed over octaves (1/f), contrast-stretched."""
    g = torch.Generator().manual_seed(seed)
    out = torch.zeros(1, 3, side, side)
    for k in range(2, 8):
        layer = torch.rand(1, 3, 2**k, 2**k, generator=g)
        out += F.interpolate(layer, size=(side, side), mode="bicubic", align_corners=False) / (k - 1)
    return (0.5 + 0.22 * (out - out.mean()) / out.std()).clamp(0, 1)


def pictures(clip: Clip) -> Iterator[np.ndarray]:
    """The clip's frames ``(H, W, 3)`` uint8."""
    w, h = clip.size
    n = clip.frames
    rng = np.random.default_rng(clip.seed + 1000)
    if clip.picture == "cartoon":
        yield from (to_uint8(_cartoon((w, h), i / max(n - 1, 1))[None]) for i in range(n))
        return
    if clip.picture == "texture":  # drifting, turning, slowly zooming
        texture = _texture(clip.seed, int(1.2 * max(w, h)))
        for i in range(n):
            moved = affine(texture, torch.tensor([[4.0 * i, 1.5 * i]]) * w / 640, torch.tensor([1.0 + 0.004 * i]),
                           torch.tensor([0.4 * i]))
            yield to_uint8(_pan(moved[0], (w, h), 0.5, 0.5)[None])
        return
    if clip.picture in ("dark", "bright"):  # a slow pan over a photo at 15 % brightness / lifted toward white
        photo = _photo(clip.photo, int(h * 1.25))
        for i in range(n):
            frame = _pan(photo, (w, h), 0.3 + 0.4 * i / n, 0.5)
            yield to_uint8((0.15 * frame if clip.picture == "dark" else 1.0 - 0.3 * (1.0 - frame))[None])
        return
    if clip.picture == "bbb":
        original = "bigbuckbunny.mp4" if w > 320 else "bbb_320x180.mp4"  # no upscaling for the picture side
        src = list(read_frames(MEDIA / "video" / original, size=(w, h), fps=clip.fps))
        cycle = src + src[-2:0:-1]  # ping-pong past the end
        yield from (cycle[i % len(cycle)] for i in range(n))
        return
    if clip.picture in ("pan", "fast", "static"):
        photo = _photo(clip.photo, int(h * (1.6 if clip.picture == "fast" else 1.25)))
        speed = {"pan": 0.15, "fast": 0.9, "static": 0.0}[clip.picture]  # share of the photo's width per second
        grain = torch.Generator().manual_seed(clip.seed)
        for i in range(n):
            phase = speed * i / clip.fps
            x = phase % 2 if clip.picture != "static" else 0.5
            frame = _pan(photo, (w, h), x if x <= 1 else 2 - x, 0.5 + 0.3 * math.sin(phase * 2))
            if clip.picture == "static":  # a camera's sensor noise, so that nothing is bit-identical
                frame = frame + 0.004 * torch.randn(frame.shape, generator=grain)
            yield to_uint8(frame.clamp(0, 1)[None])
        return
    if clip.picture == "cuts":
        names = ["coffee.png", "chelsea.png", "astronaut.png", "dog.jpg"]
        photos = [_photo(p, int(h * 1.3)) for p in names]
        shot = max(1, round(clip.fps * rng.uniform(0.8, 1.4)))
        for i in range(n):
            k, j = divmod(i, shot)
            yield to_uint8(_pan(photos[k % len(photos)], (w, h), min(1.0, 0.1 + 0.3 * j / shot), 0.4)[None])
        return
    raise ValueError(f"unknown picture {clip.picture!r}; one of {', '.join(PICTURES)}")


def chords_of(clip: Clip) -> list[tuple[float, float, frozenset[int]]]:
    """The chords of a clip's composed sound: (start s, end s, pitch classes with C = 0); [] if it has none."""
    timeline: list[tuple[float, float, frozenset[int]]] = []
    sound(clip.sound, clip.seconds + 0.5, clip.seed, timeline)
    return [span for span in timeline if span[0] < clip.seconds]


def build(clip: Clip, cache: Path = CACHE) -> Path:
    """Write ``clip`` (H.264 + AAC) into ``cache`` unless there already; return its path."""
    path = Path(cache) / f"{clip.name}-{clip.key()}.mp4"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    y = sound(clip.sound, clip.seconds + 0.5, clip.seed)
    with VideoWriter(path, fps=clip.fps, crf=16, audio=(y[None], RATE), chroma_blur=0) as writer:  # sources as made
        for frame in pictures(clip):
            writer.write(frame)
    return path


def still(item: Still, cache: Path = CACHE) -> Path:
    """The picture of ``item``: the shared photo, or the clip's frame written (once) as a PNG into ``cache``."""
    if item.photo is not None:
        return MEDIA / "images" / item.photo
    clip = next(c for c in PICTURE_CLIPS if c.name == item.clip)
    path = Path(cache) / f"{item.name}-{clip.key()}-{item.frame}.png"
    if not path.exists():
        frame = next(f for i, f in enumerate(pictures(clip)) if i == item.frame)
        save_image(from_uint8(frame), path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--split", choices=("tune", "held_out"), default=None)
    parser.add_argument("--list", action="store_true", help="list the clips without building them")
    parser.add_argument("--pictures", action="store_true", help="the picture side's clips (PICTURE_CLIPS)")
    args = parser.parse_args()
    for clip in [c for c in PICTURE_CLIPS if args.split in (None, c.split)] if args.pictures else clips(args.split):
        where = "" if args.list else str(build(clip, args.cache))
        print(f"{clip.split:8s} {clip.name:22s} {clip.picture:6s} {clip.sound:12s} {clip.fps:4g} fps "
              f"{clip.seconds:g} s {where}")


if __name__ == "__main__":
    main()
