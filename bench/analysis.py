"""Feature visualisation acceptance on VGG16 (shared Caffe weights): channel activation and diversity.

    python bench/analysis.py [--layer relu4_3] [--channels 0,1,2,3] [--steps 128] [--size 128] [--out DIR]

1. Each channel of ``--channels`` of ``--layer`` visualised from noise (one batch, ``--steps`` Adam steps,
   ``--size`` px): its mean activation on the visualisation over the same channel's on ``chelsea.png`` (longer side
   224 px; goal >= 10x).
2. Diversity: ``--batch`` pictures of ``--diversity-channel`` with and without the diversity objective (weight
   ``--diversity`` at ``--diversity-layer``): mean pairwise texture distance (1 - cos of Gram matrices) at the
   diversity layer and at relu3_3 (not optimised), the mean pairwise RMS pixel difference, and the channel's mean
   activation (what diversity costs).
Writes the pictures (``DIR/channels.png``, ``DIR/diversity_off.png``, ``DIR/diversity_on.png``) and prints one JSON
object. Runs on one thread. Needs MMDREAM_WEIGHTS and MMDREAM_MEDIA.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from mmdream.objectives.visualization import channel_objective
from mmdream.analysis.visualize import VisParams, channel_means, texture_distance, visualize
from mmdream.backbones import load_backbone
from mmdream.media.images import load_image, save_image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layer", default="relu4_3")
    parser.add_argument("--channels", default="0,1,2,3")
    parser.add_argument("--steps", type=int, default=128)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--diversity", type=float, default=220.0)
    parser.add_argument("--diversity-layer", default="relu4_3")
    parser.add_argument("--diversity-channel", type=int, default=3)
    parser.add_argument("--out", default="analysis_bench")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(exist_ok=True)
    vgg = load_backbone("vgg16")
    photo = load_image(Path(os.environ["MMDREAM_MEDIA"]) / "images" / "chelsea.png", 224)
    on_photo = channel_means(vgg, args.layer, photo)[0]
    params = VisParams(size=args.size, steps=args.steps)
    channels = tuple(int(c) for c in args.channels.split(","))

    t = time.perf_counter()
    pics = visualize(vgg, channel_objective(vgg, args.layer, channels), params, batch=len(channels))
    seconds = time.perf_counter() - t
    on_vis = channel_means(vgg, args.layer, pics)
    save_image(torch.cat(list(pics), dim=-1), out / "channels.png")
    ratios = {c: round(float(on_vis[i, c] / on_photo[c].clamp_min(1e-6)), 1) for i, c in enumerate(channels)}
    result: dict[str, object] = {
        "layer": args.layer, "size": args.size, "steps": args.steps,
        "activation": {c: {"visualisation": round(float(on_vis[i, c]), 2), "chelsea": round(float(on_photo[c]), 3),
                           "ratio": ratios[c]} for i, c in enumerate(channels)},
        "min_ratio": min(ratios.values()),
        "channels_seconds": round(seconds, 1),
        "seconds_per_picture_step": round(seconds / len(channels) / args.steps, 3),
    }

    channel, check_layer = args.diversity_channel, "relu3_3"
    diversity: dict[str, object] = {"channel": channel, "chelsea": round(float(on_photo[channel]), 3),
                                    "weight": args.diversity, "layer": args.diversity_layer, "batch": args.batch}
    for name, weight in (("off", 0.0), ("on", args.diversity)):
        objective = channel_objective(vgg, args.layer, (channel,), diversity=weight,
                                      diversity_layer=args.diversity_layer)
        t = time.perf_counter()
        batch = visualize(vgg, objective, params, batch=args.batch)
        pixels = torch.cdist(batch.flatten(1), batch.flatten(1)) / batch[0].numel() ** 0.5  # RMS differences
        diversity[name] = {
            f"texture_distance_{args.diversity_layer}": round(texture_distance(vgg, args.diversity_layer, batch), 4),
            f"texture_distance_{check_layer}": round(texture_distance(vgg, check_layer, batch), 4),
            "pixel_rms_distance": round(float(pixels.sum() / (args.batch * (args.batch - 1))), 4),
            "mean_activation": round(float(channel_means(vgg, args.layer, batch)[:, channel].mean()), 2),
            "seconds": round(time.perf_counter() - t, 1),
        }
        save_image(torch.cat(list(batch), dim=-1), out / f"diversity_{name}.png")
    result["diversity"] = diversity
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
