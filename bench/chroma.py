"""Where a decoded film's flicker excess comes from, and what blurring its colour planes before 4:2:0 does.

    python bench/chroma.py [--clip drums_cuts_10_long] [--frames 60] [--sigmas 0.7,1.0,1.5,2.0]

Dreams the first ``--frames`` frames of an evaluation clip (:mod:`bench.evalset`) in process with the demo job's
picture settings and its loudness drive, then measures flicker excess (``mmdream.eval.metrics``, 0-255) of the same
frames as floats, through 8-bit yuv444p, through yuv420p as PyAV/swscale converts and decodes it (each colour sample
repeated over 2x2 pixels), through yuv420p decoded with bilinear colour upsampling (own conversion), and through
yuv420p after :func:`mmdream.media.video.soften_chroma` at each ``--sigmas`` value; "within" leaves out the
transitions whose source changes by more than 20 grey levels (scene cuts).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import av
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evalset import CACHE, build, clips  # noqa: E402

from mmdream.backbones import load_backbone  # noqa: E402
from mmdream.dream.temporal import dream_frames  # noqa: E402
from mmdream.eval import metrics  # noqa: E402
from mmdream.jobspec.build import build_job_objective  # noqa: E402
from mmdream.jobspec.plan import compile_plan  # noqa: E402
from mmdream.jobspec.schema import load_job  # noqa: E402
from mmdream.media.video import soften_chroma  # noqa: E402
from mmdream.pipelines.film import plan_film, source_frames  # noqa: E402
from mmdream.schedules.drive import film_drive  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def to8(frame: torch.Tensor) -> np.ndarray:
    return (frame.permute(1, 2, 0).clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8)


def to_float(pixels: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1).float() / 255


def via(pixels: np.ndarray, fmt: str) -> np.ndarray:
    """Through ``fmt`` and back to RGB by swscale, as PyAV decodes."""
    return av.VideoFrame.from_ndarray(pixels, format="rgb24").reformat(format=fmt).reformat(format="rgb24").to_ndarray()


def via_420_bilinear(pixels: np.ndarray) -> np.ndarray:
    """yuv420p by swscale, back to RGB with the colour planes upsampled bilinearly (BT.601 limited range)."""
    h, w = pixels.shape[:2]
    planes = av.VideoFrame.from_ndarray(pixels, format="rgb24").reformat(format="yuv420p").to_ndarray()
    y = planes[:h].astype(np.float32)
    uv = planes[h:].reshape(2, h // 2, w // 2).astype(np.float32)
    u, v = torch.nn.functional.interpolate(torch.from_numpy(uv)[None], size=(h, w), mode="bilinear",
                                           align_corners=False)[0].numpy()
    y, u, v = (y - 16) * 255 / 219, (u - 128) * 255 / 224, (v - 128) * 255 / 224
    rgb = np.stack([y + 1.402 * v, y - 0.344136 * u - 0.714136 * v, y + 1.772 * u], -1)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", default="drums_cuts_10_long")
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--sigmas", default="0.7,1.0,1.5,2.0")
    args = parser.parse_args()
    torch.set_num_threads(1)
    clip = next(c for c in clips() if c.name == args.clip)
    path = build(clip, CACHE)
    base = load_job(ROOT / "jobs" / "demo.yaml")
    plan = compile_plan(base.with_overrides(**{"input": str(path), "output": "/tmp/unused.mp4", "av.drive": "rms",
                                               "film.stop": args.frames}))
    net = load_backbone(plan.picture.backbone.name, weights_dir=plan.uris.weights)
    film = plan_film(path, plan.picture.film)
    source = list(source_frames(path, film, film.start, film.stop))
    objective = build_job_objective(plan.picture.objective, net, max(clip.size), plan.theme)
    dreams = [d for d, _ in dream_frames(source, net, objective, plan.picture.dream, plan.picture.video,
                                         drive=film_drive(path, film, plan.av))]
    base_diff = np.array(metrics.warped_differences(source, source))
    cuts = 255 * base_diff > 20

    def report(name: str, frames: list[torch.Tensor]) -> None:
        excess = 255 * (np.array(metrics.warped_differences(frames, source)) - base_diff)
        strength = 255 * float(np.mean(metrics.strengths(frames, source)))
        print(f"{name:34s} excess {excess.mean():5.2f}  within {excess[~cuts].mean():5.2f}  strength {strength:5.2f}",
              flush=True)

    pixels = [to8(d) for d in dreams]
    report("float frames", dreams)
    report("8-bit yuv444p", [to_float(via(p, "yuv444p")) for p in pixels])
    report("8-bit yuv420p (repeated colour)", [to_float(via(p, "yuv420p")) for p in pixels])
    report("8-bit yuv420p (bilinear colour)", [to_float(via_420_bilinear(p)) for p in pixels])
    for sigma in (float(s) for s in args.sigmas.split(",")):
        report(f"colour blur {sigma:g} + yuv420p (repeated)",
               [to_float(via(soften_chroma(p, sigma), "yuv420p")) for p in pixels])


if __name__ == "__main__":
    main()
