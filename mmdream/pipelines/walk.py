"""Walk films: a latent walk (:mod:`mmdream.schedules.walk`) through a generator, rendered as an H.264 film with
its music, whole or in shards by time (``start``/``stop``: shards agree exactly, the walk being a pure function).

>>> render_walk(generator, walk, "walk.mp4", "music.wav", WalkFilmParams(fps=25.0, size=256))
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from mmdream.backbones.generators import Generator
from mmdream.errors import ParameterError
from mmdream.media.video import EncodeParams, VideoWriter
from mmdream.options import Options, option, option_of, seed_option
from mmdream.progress import ProgressFn, Tracker
from mmdream.schedules.walk import Walk

__all__ = ["WalkFilmParams", "walk_frames", "render_walk"]


@dataclass(frozen=True)
class WalkFilmParams(Options):
    """The walk film's rate, frame size and encoding, and the seed of its key latents."""

    fps: float = option(25.0, "frame rate", ge=1.0, le=120.0)
    size: int = option(256, "frame side in pixels, smoothly upscaled", ge=16, le=2048)
    crf: int = option_of(EncodeParams, "crf")
    seed: int = seed_option("random seed of the key latents: same seed and music, same walk")


def walk_frames(generator: Generator, walk: Walk, size: int = 256, start: int = 0, stop: int | None = None,
                batch: int = 16) -> Iterator[np.ndarray]:
    """Frames ``start``..``stop - 1`` of the walk as uint8 RGB ``(size, size, 3)``: G(latent), smoothly (bicubic)
    resized."""
    stop = len(walk) if stop is None else stop
    if not 0 <= start < stop <= len(walk):
        raise ParameterError(f"frames {start}:{stop} are outside the walk's 0:{len(walk)}")
    if walk.latents.shape[1] != generator.latent_dim or (walk.classes is None) != (generator.num_classes == 0):
        raise ParameterError("the walk was planned for another generator (latent size or classes differ)")
    device = next(generator.parameters()).device  # latents go where the generator lives
    for a in range(start, stop, batch):
        b = min(a + batch, stop)
        z = torch.from_numpy(walk.latents[a:b]).to(device)
        y = None if walk.classes is None else torch.from_numpy(walk.classes[a:b]).to(device)
        with torch.no_grad():
            x = generator.generate(z, y)
            if size != generator.size:
                x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False)
            pixels = x.clamp(0, 1).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        yield from pixels


def render_walk(generator: Generator, walk: Walk, output_path: str | os.PathLike[str],
                audio_path: str | os.PathLike[str] | None, film: WalkFilmParams = WalkFilmParams(), *, start: int = 0,
                stop: int | None = None, progress: ProgressFn | None = None, provenance: str | None = None) -> None:
    """Write frames ``start``..``stop - 1`` of the walk as an H.264 film at ``film.fps`` (``film.size`` square,
    ``film.crf``) with the sound of ``audio_path`` from the first frame's time on (cut to the frames), atomically;
    ``provenance``: the record text the film carries."""
    film.validate()
    stop = len(walk) if stop is None else stop
    tracker = Tracker(stop - start, progress, stage="frames")
    with VideoWriter(output_path, fps=film.fps, crf=film.crf, audio_from=audio_path, audio_start_s=start / film.fps,
                     provenance=provenance) as writer:
        for frame in walk_frames(generator, walk, film.size, start, stop):
            writer.write(frame)
            tracker.advance()
