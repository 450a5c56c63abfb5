"""Dream-step time on a GPU (or the CPU) in fp32, bf16 autocast and channels-last, against a bare forward+backward
of the same precision and layout, with peak GPU memory; and the video loop's frames per second.

    python bench/gpu.py --device cuda                      # 1080p (1920x1080), VGG16 relu4_3 and EfficientNet-Lite0
    python bench/gpu.py --device cpu --size 64 --repeats 1 # the CI smoke run

Weights are seeded random ones of the real shapes (no weight file travels: a VGG16 file is 59 MB), which times the
same arithmetic. The bare pass is the backbone's forward to the dream layers and the backward of the objective to
the pixels, nothing else; the dream step adds the random roll, Laplacian gradient normalisation and the clamped
update (``--tile 0``: the whole frame at once, as a GPU holds it). Both run interleaved in one process on the same
input; medians are compared. The video loop decodes a synthetic clip with OpenCV to numpy frames, dreams them with
temporal coherence (optical flow, warm start) and encodes them with OpenCV again; its frames per second count the
warm-started frames after each clip's first (a still, timed apart).

Needs only torch, numpy and OpenCV besides mmdream's image modules (no PyAV, Ray, librosa, soundfile, pydantic or
tqdm). Prints one JSON object per row, then a table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable

import cv2
import numpy as np
import torch

from mmdream.backbones import build_backbone
from mmdream.backbones.base import Backbone
from mmdream.backbones.compute import ComputeParams, place
from mmdream.dream.image import DreamParams, dream_step
from mmdream.dream.temporal import VideoParams, dream_frames
from mmdream.media.images import from_uint8, to_uint8
from mmdream.objectives.terms import Objective, build_objective

BACKBONES = {"vgg16": "relu4_3", "efficientnet_lite0": None}  # dream layers (None: the backbone's defaults)
MODES = {"fp32": ComputeParams(), "bf16": ComputeParams(precision="bf16"),
         "channels_last": ComputeParams(channels_last=True),
         "bf16+channels_last": ComputeParams(precision="bf16", channels_last=True)}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn: Callable[[], object], device: torch.device) -> tuple[float, int | None]:
    """Seconds of one call of ``fn`` and, on CUDA, its peak memory in bytes."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    _sync(device)
    t0 = time.perf_counter()
    fn()
    _sync(device)
    seconds = time.perf_counter() - t0
    return seconds, (torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None)


def bare_pass(backbone: Backbone, objective: Objective, x: torch.Tensor) -> torch.Tensor:
    """Forward to the objective's layers and backward to the pixels ``x`` ``(N, 3, H, W)``: the floor of a step."""
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(objective(backbone.taps(x, objective.layers)), x)
    return grad


def step_row(backbone: Backbone, objective: Objective, x: torch.Tensor, params: DreamParams, repeats: int
             ) -> dict[str, object]:
    """Median seconds of the bare pass and of a dream step on ``x``, interleaved, their ratio and peak memory."""
    device = x.device
    gen = torch.Generator().manual_seed(0)
    bare_pass(backbone, objective, x), dream_step(x, backbone, objective, params, gen)  # warm-up (cuDNN picks)
    bare, step, bare_mem, step_mem = [], [], 0, 0
    for _ in range(repeats):
        s, m = _timed(lambda: bare_pass(backbone, objective, x), device)
        bare.append(s)
        bare_mem = max(bare_mem, m or 0)
        s, m = _timed(lambda: dream_step(x, backbone, objective, params, gen), device)
        step.append(s)
        step_mem = max(step_mem, m or 0)
    b, s = statistics.median(bare), statistics.median(step)
    mib = (lambda v: round(v / 2**20, 1) if device.type == "cuda" else None)
    return {"bare_s": round(b, 5), "step_s": round(s, 5), "ratio": round(s / b, 3),
            "bare_peak_mib": mib(bare_mem), "step_peak_mib": mib(step_mem)}


def make_clip(path: str, width: int, height: int, frames: int) -> None:
    """A synthetic clip: a textured background panning under a moving bright square (OpenCV, mp4v)."""
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {path} (mp4v)")
    rng = np.random.default_rng(0)
    texture = cv2.resize(rng.integers(0, 256, (height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8),
                         (2 * width, height), interpolation=cv2.INTER_CUBIC)
    side = max(4, height // 5)
    for i in range(frames):
        frame = np.ascontiguousarray(texture[:, 2 * i:2 * i + width])
        x0, y0 = (3 * i) % max(1, width - side), height // 3
        frame[y0:y0 + side, x0:x0 + side] = (240, 220, 60)
        writer.write(frame)
    writer.release()


def decoded_frames(path: str) -> list[np.ndarray]:
    """Every frame of ``path`` as RGB ``(H, W, 3)`` uint8 (OpenCV)."""
    capture = cv2.VideoCapture(path)
    frames = []
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    capture.release()
    return frames


def loop_row(backbone: Backbone, objective: Objective, clip: str, still: DreamParams, out_path: str
             ) -> dict[str, object]:
    """The video loop over ``clip``: decode (OpenCV) -> dream with temporal coherence -> encode (OpenCV)."""
    device = backbone.device
    capture = cv2.VideoCapture(clip)
    width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    writer = cv2.VideoWriter(out_path, cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (width, height))
    stamps: list[float] = []

    def frames():  # type: ignore[no-untyped-def]
        while True:
            ok, bgr = capture.read()
            if not ok:
                return
            yield from_uint8(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))[0].to(device)

    _sync(device)
    stamps.append(time.perf_counter())
    for dream, _ in dream_frames(frames(), backbone, objective, still, VideoParams()):
        writer.write(cv2.cvtColor(to_uint8(dream), cv2.COLOR_RGB2BGR))
        stamps.append(time.perf_counter())  # to_uint8 copied the frame to the host: the device is done with it
    capture.release()
    writer.release()
    warm = len(stamps) - 2
    return {"frames": len(stamps) - 1, "first_frame_s": round(stamps[1] - stamps[0], 4),
            "fps": round(warm / (stamps[-1] - stamps[1]), 3) if warm > 0 else None}


def run(size: int, device: torch.device, repeats: int, frames: int, tile: int, backbones: list[str],
        modes: list[str]) -> list[dict[str, object]]:
    """Every row: per backbone and mode, the step against the bare pass and the video loop."""
    height, width = size, 2 * round(size * 16 / 9 / 2)
    params = DreamParams(tile=tile)
    still = dataclasses.replace(params, steps=2, octaves=2)  # a clip's first frame: a short still, timed apart
    rows = []
    with tempfile.TemporaryDirectory() as d:
        clip = os.path.join(d, "clip.mp4")
        make_clip(clip, width, height, frames)
        for name in backbones:
            for mode in modes:
                torch.manual_seed(0)
                backbone = place(build_backbone(name), device, MODES[mode])
                objective = build_objective(backbone, layers=BACKBONES[name])
                x = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(0)).to(device)
                row: dict[str, object] = {"backbone": name, "layers": list(objective.layers), "mode": mode,
                                          "size": f"{width}x{height}", "device": str(device)}
                row.update(step_row(backbone, objective, x, params, repeats))
                row["loop"] = loop_row(backbone, objective, clip, still, os.path.join(d, "out.mp4"))
                print(json.dumps(row), flush=True)
                rows.append(row)
                del backbone, objective, x
                if device.type == "cuda":
                    torch.cuda.empty_cache()
    return rows


def table(rows: list[dict[str, object]]) -> str:
    """A Markdown table; ``fp32 / step``: the fp32 step's time over this mode's (above 1: faster)."""
    head = ("backbone", "mode", "bare s", "step s", "step / bare", "fp32 / step", "peak MiB", "loop fps",
            "1st frame s")
    fp32 = {r["backbone"]: r["step_s"] for r in rows if r["mode"] == "fp32"}
    lines = [" | ".join(head), " | ".join("---" for _ in head)]
    for r in rows:
        loop = r["loop"]
        assert isinstance(loop, dict)
        base = fp32.get(r["backbone"])
        gain = round(float(base) / float(r["step_s"]), 2) if base is not None else "-"  # type: ignore[arg-type]
        lines.append(" | ".join(str(v) for v in (r["backbone"], r["mode"], r["bare_s"], r["step_s"], r["ratio"],
                                                  gain, r["step_peak_mib"] or "-", loop["fps"],
                                                  loop["first_frame_s"])))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="cuda, cuda:N or cpu (default: cuda when available)")
    parser.add_argument("--size", type=int, default=1080, help="frame height; width 16:9 (default: 1080)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per pass (medians; default: 5)")
    parser.add_argument("--frames", type=int, default=6, help="frames of the video loop's clip (default: 6)")
    parser.add_argument("--tile", type=int, default=0, help="dream step tile (0: whole frame; default: 0)")
    parser.add_argument("--backbones", default=",".join(BACKBONES), help="comma list (default: all)")
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma list of {', '.join(MODES)}")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device here (use --device cpu)")
    unknown = [m for m in args.modes.split(",") if m not in MODES] + \
        [b for b in args.backbones.split(",") if b not in BACKBONES]
    if unknown:
        parser.error(f"unknown mode or backbone {unknown}; modes: {', '.join(MODES)}; backbones: "
                     f"{', '.join(BACKBONES)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{platform.processor() or 'CPU'}, " \
        f"{torch.get_num_threads()} threads"
    print(json.dumps({"machine": where, "torch": torch.__version__, "opencv": cv2.__version__,
                      "python": platform.python_version()}), flush=True)
    rows = run(args.size, device, args.repeats, args.frames, args.tile, args.backbones.split(","),
               args.modes.split(","))
    print(table(rows))


if __name__ == "__main__":
    main()
