"""Overhead of one dream step over a bare forward+backward of the same backbone to the same layers.

    python bench/step_overhead.py [--size 512] [--repeats 7] [--backbones vgg16,efficientnet_lite0]

The bare pass is the backbone's forward to the deepest dream layer and the backward of the objective to the
pixels, nothing else; the dream step adds the random roll, Laplacian gradient normalisation and the clamped update.
Both run interleaved in one process on the same input; medians are compared (target: ratio <= 1.2).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from mmdream.backbones import load_backbone
from mmdream.dream.image import DreamParams, dream_step
from mmdream.objectives.terms import build_objective


def bare_pass(backbone, objective, x: torch.Tensor) -> torch.Tensor:  # type: ignore[no-untyped-def]
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(objective(backbone.taps(x, objective.layers)), x)
    return grad


def measure(name: str, size: int, repeats: int, weights: str | None) -> dict[str, object]:
    backbone = load_backbone(name, weights_dir=weights)
    objective = build_objective(backbone)
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    params = DreamParams()
    gen = torch.Generator().manual_seed(0)
    bare_pass(backbone, objective, x), dream_step(x, backbone, objective, params, gen)  # warm-up
    bare, step = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        bare_pass(backbone, objective, x)
        t1 = time.perf_counter()
        dream_step(x, backbone, objective, params, gen)
        t2 = time.perf_counter()
        bare.append(t1 - t0)
        step.append(t2 - t1)
    b, s = statistics.median(bare), statistics.median(step)
    return {"backbone": name, "layers": list(objective.layers), "size": size, "repeats": repeats,
            "bare_s": round(b, 4), "step_s": round(s, 4), "ratio": round(s / b, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--backbones", default="vgg16,efficientnet_lite0")
    parser.add_argument("--weights", default=None, help="weights folder (default: $MMDREAM_WEIGHTS)")
    args = parser.parse_args()
    torch.manual_seed(0)
    for name in args.backbones.split(","):
        print(json.dumps(measure(name, args.size, args.repeats, args.weights)), flush=True)


if __name__ == "__main__":
    main()
