"""Style transfer acceptance: loss ratios and a grid at 512 px, a styled film's flicker, and the cost of a step.

    python bench/style.py [--size 512] [--frames 48] [--grid style_grid.png]

1. ``chelsea.png`` in the style of ``style_starry_night.jpg`` and of ``style_the_scream.jpg`` with the defaults:
   the style loss of the result over the content's (goal: down >= 10x) and the content loss (relative feature
   distance at relu4_2; a random picture scores about 2.5); a grid image of content, styles and results.
2. The first ``--frames`` frames of the shared clip styled as a film (starry night, 320 px): flicker as the video
   issue defines it (goal <= 1.5x the source's).
3. Seconds per optimiser step at 512² against a bare forward+backward of VGG16 to the deepest layer used (relu5_1),
   interleaved, medians of 5.
Needs MMDREAM_WEIGHTS and MMDREAM_MEDIA.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

from mmdream.eval import metrics
from mmdream.backbones import load_backbone
from mmdream.dream.style import StyleParams, style_gradient, style_frames, style_image, style_losses, style_targets
from mmdream.pipelines.film import FilmParams, plan_film, source_frames
from mmdream.media.images import load_image, save_image
from mmdream.ops.pyramid import resize


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--grid", default="style_grid.png")
    parser.add_argument("--only", choices=("stills", "film", "speed"), default=None, help="run one part only")
    args = parser.parse_args()
    media = Path(os.environ["MMDREAM_MEDIA"])
    vgg = load_backbone("vgg16")
    content = load_image(media / "images" / "chelsea.png")
    params = StyleParams(size=args.size)
    row = [resize(content, (round(args.size * 300 / 451), args.size))]
    for name in ("style_starry_night.jpg", "style_the_scream.jpg") if args.only in (None, "stills") else ():
        style = load_image(media / "images" / name)
        start = time.perf_counter()
        result = style_image(content, [style], vgg, params)
        base = resize(content, tuple(result.shape[-2:]))
        targets = style_targets([style], vgg, params)
        with torch.no_grad():
            _, before = style_losses(base, base, targets, vgg, params)
            content_loss, after = style_losses(result, base, targets, vgg, params)
        print(json.dumps({"style": name, "size": list(result.shape[-2:]), "style_loss": [round(float(before), 4),
                          round(float(after), 4)], "style_loss_ratio": round(float(before / after), 1),
                          "content_loss": round(float(content_loss), 3),
                          "seconds": round(time.perf_counter() - start, 1)}), flush=True)
        row += [resize(style, tuple(result.shape[-2:])), result]
    if len(row) > 1:
        save_image(torch.cat(row, dim=-1), args.grid)

    starry = load_image(media / "images" / "style_starry_night.jpg")
    if args.only in (None, "film"):
        clip = media / "video" / "bbb_320x180.mp4"
        plan = plan_film(clip, FilmParams(stop=args.frames))
        source = list(source_frames(clip, plan, 0, plan.stop))
        start = time.perf_counter()
        styled = list(style_frames(source, [starry], vgg, StyleParams(size=320)))
        film = [f for f, _ in styled]
        print(json.dumps({"film_frames": len(film), "flicker": round(metrics.flicker(film, source), 3),
                          "style_loss_first_last": [round(styled[0][1].style_loss, 4),
                                                    round(styled[-1][1].style_loss, 4)],
                          "seconds_per_frame": round((time.perf_counter() - start) / len(film), 2)}), flush=True)
        if len(row) == 1:
            save_image(torch.cat([film[0], film[len(film) // 2], film[-1]], dim=-1)[None], "style_film_frames.png")
    if args.only not in (None, "speed"):
        return

    x = torch.rand(1, 3, 512, 512)
    style_t = style_targets([starry], vgg, params)
    step, bare = [], []
    with torch.no_grad():
        content_acts = vgg.taps(x, [params.content_layers])
    for _ in range(5):
        t = time.perf_counter()
        style_gradient(x, x, style_t, vgg, params, None, 0.0, content_acts)
        step.append(time.perf_counter() - t)
        t = time.perf_counter()
        y = x.clone().requires_grad_(True)
        vgg.taps(y, ["relu5_1"])["relu5_1"].square().mean().backward()
        bare.append(time.perf_counter() - t)
    print(json.dumps({"seconds_per_step_512": round(statistics.median(step), 3),
                      "bare_forward_backward": round(statistics.median(bare), 3),
                      "ratio": round(statistics.median(step) / statistics.median(bare), 3)}), flush=True)


if __name__ == "__main__":
    main()
