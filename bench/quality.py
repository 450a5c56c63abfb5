"""Every picture-side quality measure over the evaluation set (bench/evalset.py), as one table (issue 18).

    python bench/quality.py [--jobs demo,video,class,ray] [--sizes 320] [--class-sizes 224,512] [--clips NAME,...]
                            [--stills NAME,...] [--frames N] [--json OUT] [--sheet JPG]

The set is bench/evalset.py's picture side (``PICTURE_CLIPS``, ``STILLS``), built into its cache on first use.

Rows (``*`` after the item: tuned on, the rest held out):

- ``demo``: the picture of ``jobs/demo.yaml`` (EfficientNet-Lite0, theme dog, the soundtrack's RMS drives the
  strength) dreamed in process with the job's settings at ``--sizes``;
- ``video``: ``mmdream video`` defaults (VGG16, its default layers, the default image and film options);
- ``class``: ``mmdream image --class C --size S`` with the default options, on the set's stills;
- ``ray``: the demo job on a local Ray in 2 shards against the in-process dream of the same settings.

Columns: ``flicker`` = mean_t |D_t - warp(D_{t-1})| on reliable pixels (flow from the source) over the same of the
source (goal <= 1.5, :func:`mmdream.eval.metrics.flicker`); ``excess`` = the same two quantities' difference on 0-255
(goal <= 1.0 where the ratio misses: a locked-off camera has almost no source difference to divide by);
``strength`` = mean |D - S| on 0-255 (goal >= 8 for films, >= 6 for class dreams); ``drift`` = the luminance drift
(:func:`mmdream.eval.metrics.luminance_drift`); ``r`` = Pearson r of the soundtrack's per-frame RMS and the per-frame
strength (driven jobs); ``p_own`` / ``p_ind`` = the class's probability (the dog breeds' summed probability for the
demo, mean over frames) under mmdream's classify crop and under an independent evaluation crop (shorter side to
256 bilinear, centre 224: :func:`independent_crop`); ``ray`` rows: mean and largest per-frame |Ray - in process| on
0-255 and the strength ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent))

from evalset import PICTURE_CLIPS, STILLS, Clip, Still, build, still  # noqa: E402

from mmdream.eval import metrics  # noqa: E402
from mmdream.schedules.drive import film_drive, frame_features  # noqa: E402
from mmdream.backbones import load_backbone  # noqa: E402
from mmdream.backbones.base import Backbone  # noqa: E402
from mmdream.dream.image import DreamParams, dream_image  # noqa: E402
from mmdream.dream.temporal import VideoParams, dream_frames  # noqa: E402
from mmdream.pipelines.film import FilmParams, plan_film, source_frames  # noqa: E402
from mmdream.jobspec.build import build_job_objective  # noqa: E402
from mmdream.jobspec.plan import RenderPlan, compile_plan  # noqa: E402
from mmdream.jobspec.schema import JobSpec, load_job  # noqa: E402
from mmdream.media.images import load_for_classification, load_image, save_image  # noqa: E402
from mmdream.media.video import read_audio  # noqa: E402
from mmdream.objectives.terms import Objective, build_objective  # noqa: E402
from mmdream.objectives.themes import THEMES  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "jobs" / "demo.yaml"


@dataclass
class Row:
    """One line of the table; ``picture`` = (source, dream) frames ``(3, H, W)`` for the contact sheet."""

    job: str
    item: str
    tuned: bool
    size: int
    values: dict[str, float]
    picture: tuple[torch.Tensor, torch.Tensor] | None = None

    def record(self) -> dict[str, Any]:
        return {"job": self.job, "item": self.item, "tuned": self.tuned, "size": self.size,
                **{k: round(v, 4) for k, v in self.values.items()}}


# --- the independent evaluation crop ------------------------------------------------------------------------------


def independent_crop(image: torch.Tensor) -> torch.Tensor:
    """The standard ImageNet evaluation view ``(1, 3, 224, 224)`` of ``image`` ``(1, 3, H, W)`` in [0, 1]: shorter
    side to 256 (PIL bilinear, as torchvision's ``Resize(256)``), centre 224 x 224 (``CenterCrop(224)``). Written
    apart from mmdream's own classify preprocessing (shorter side to 224, bicubic)."""
    arr = (image[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8)
    im = Image.fromarray(arr)
    w, h = im.size
    s = 256 / min(w, h)
    im = im.resize((max(256, round(w * s)), max(256, round(h * s))), Image.Resampling.BILINEAR)
    left, top = round((im.width - 224) / 2), round((im.height - 224) / 2)
    crop = np.asarray(im.crop((left, top, left + 224, top + 224)), dtype=np.float32) / 255
    return torch.from_numpy(crop).permute(2, 0, 1)[None]


def probability(net: Backbone, x: torch.Tensor, classes: list[int]) -> float:
    """Summed softmax probability of ``classes`` for the crop ``x`` ``(1, 3, 224, 224)``."""
    with torch.no_grad():
        return float(torch.softmax(net.logits(x), dim=-1)[0, classes].sum())


def own_crop(image: torch.Tensor, size: int) -> torch.Tensor:
    """mmdream classify's view of ``image``: the PNG it would read, through its own loader."""
    with tempfile.TemporaryDirectory() as d:
        save_image(image, Path(d) / "x.png")
        return load_for_classification(Path(d) / "x.png", size)


# --- films --------------------------------------------------------------------------------------------------------


def film_measures(dreams: list[torch.Tensor], source: list[torch.Tensor]) -> dict[str, float]:
    d, s = metrics.warped_difference(dreams, source), metrics.warped_difference(source, source)
    return {"flicker": d / s, "excess": 255 * (d - s),
            "strength": 255 * statistics.mean(metrics.strengths(dreams, source)),
            "drift": metrics.luminance_drift(dreams, source)}


def rms_r(path: Path, fps: float, dreams: list[torch.Tensor], source: list[torch.Tensor]) -> float:
    """Pearson r of the soundtrack's per-frame RMS and the per-frame dream strength."""
    samples, rate = read_audio(path)
    rms = frame_features(samples, rate, fps, len(dreams))["rms"]
    strength = np.array(metrics.strengths(dreams, source))
    return float(np.corrcoef(rms, strength)[0, 1])


def demo_job(path: Path, size: int, frames: int | None) -> JobSpec:
    return load_job(DEMO).with_overrides(**{"input": str(path), "film.size": size, "film.stop": frames})


def dream_clip(job: RenderPlan, backbone: Backbone, objective: Objective
               ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[float] | None]:
    """The film job's picture dreamed in process: (source frames, dreams, drive)."""
    path = job.uris.input
    plan = plan_film(path, job.picture.film)
    drive = film_drive(path, plan, job.av)
    source = list(source_frames(path, plan, plan.start, plan.stop))
    dreams = [d for d, _ in dream_frames(source, backbone, objective, job.picture.dream, job.picture.video,
                                         drive=drive)]
    return source, dreams, drive


def clip_named(name: str) -> tuple[Clip, Path]:
    clip = next(c for c in PICTURE_CLIPS if c.name == name)
    return clip, build(clip)


def demo_rows(clips: list[str], sizes: list[int], frames: int | None, weights: str | None) -> list[Row]:
    net = load_backbone("efficientnet_lite0", weights_dir=weights)
    dogs = list(THEMES["dog"].image)
    rows = []
    for size in sizes:
        for name in clips:
            clip, path = clip_named(name)
            job = compile_plan(demo_job(path, size, frames))
            objective = build_job_objective(job.picture.objective, net, size, job.theme)
            t0 = time.perf_counter()
            source, dreams, _ = dream_clip(job, net, objective)
            values = film_measures(dreams, source)
            values["r"] = rms_r(path, clip.fps, dreams, source)
            values["p_ind"] = statistics.mean(probability(net, independent_crop(d[None]), dogs) for d in dreams)
            values["p_ind_source"] = statistics.mean(probability(net, independent_crop(s[None]), dogs)
                                                     for s in source)
            values["seconds"] = time.perf_counter() - t0
            mid = len(dreams) // 2
            rows.append(Row("demo", name, clip.split == "tune", size, values, (source[mid], dreams[mid])))
            print(json.dumps(rows[-1].record()), flush=True)
    return rows


def video_rows(clips: list[str], sizes: list[int], frames: int | None, weights: str | None) -> list[Row]:
    vgg = load_backbone("vgg16", weights_dir=weights)
    objective = build_objective(vgg)
    rows = []
    for size in sizes:
        for name in clips:
            clip, path = clip_named(name)
            t0 = time.perf_counter()
            plan = plan_film(path, FilmParams(size=size, stop=frames))
            source = list(source_frames(path, plan, plan.start, plan.stop))
            dreams = [d for d, _ in dream_frames(source, vgg, objective, DreamParams(), VideoParams())]
            values = film_measures(dreams, source)
            values["seconds"] = time.perf_counter() - t0
            mid = len(dreams) // 2
            rows.append(Row("video", name, clip.split == "tune", size, values, (source[mid], dreams[mid])))
            print(json.dumps(rows[-1].record()), flush=True)
    return rows


def class_rows(stills: list[str], sizes: list[int], weights: str | None) -> list[Row]:
    net = load_backbone("efficientnet_lite0", weights_dir=weights)
    rows = []
    for size in sizes:
        for name in stills:
            item: Still = next(s for s in STILLS if s.name == name)
            image = load_image(still(item), size)
            index = net.resolve_class(item.class_)
            t0 = time.perf_counter()
            dream = dream_image(image, net, build_objective(net, class_=item.class_), DreamParams())
            values = {"strength": 255 * float((dream - image).abs().mean()),
                      "p_own": probability(net, own_crop(dream, net.input_size), [index]),
                      "p_ind": probability(net, independent_crop(dream), [index]),
                      "p_ind_source": probability(net, independent_crop(image), [index]),
                      "seconds": time.perf_counter() - t0}
            rows.append(Row("class", f"{name}/{item.class_}", item.split == "tune", size, values,
                            (image[0], dream[0])))
            print(json.dumps(rows[-1].record()), flush=True)
    return rows


def ray_rows(clips: list[str], size: int, frames: int, weights: str | None) -> list[Row]:
    """The demo job's picture on a local Ray in 2 shards against the same settings in process."""
    import ray

    from seams import dreamed  # the sharded film as assembled from the job's checkpoints

    from mmdream_cluster.driver import render_job

    net = load_backbone("efficientnet_lite0", weights_dir=weights)
    rows = []
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        for name in clips:
            clip, path = clip_named(name)
            with tempfile.TemporaryDirectory() as d:
                job = compile_plan(demo_job(path, size, frames).with_overrides(**{
                    "output": f"{d}/out.mp4", "work": f"{d}/work", "preview": False,
                    "sharding.frames_per_shard": (frames + 1) // 2, "sharding.warmup": min(24, frames // 4),
                    "sharding.crossfade": min(24, frames // 4) // 2}))
                render_job(job, shards=2)
                sharded = dreamed(job, 2, job.sharding.warmup, job.sharding.crossfade)
                objective = build_job_objective(job.picture.objective, net, size, job.theme)
                source, local, _ = dream_clip(job, net, objective)
            deltas = [255 * float((a - b).abs().mean()) for a, b in zip(sharded, local)]
            values = {"delta_mean": statistics.mean(deltas), "delta_max": max(deltas),
                      "strength_ratio": statistics.mean(metrics.strengths(sharded, source))
                      / statistics.mean(metrics.strengths(local, source)),
                      "flicker_ray": metrics.flicker(sharded, source), "flicker_local": metrics.flicker(local, source)}
            rows.append(Row("ray", name, clip.split == "tune", size, values))
            print(json.dumps(rows[-1].record()), flush=True)
    finally:
        ray.shutdown()
    return rows


# --- output -------------------------------------------------------------------------------------------------------

COLUMNS = ("flicker", "excess", "strength", "drift", "r", "p_own", "p_ind", "p_ind_source", "delta_mean",
           "delta_max", "strength_ratio", "flicker_ray", "flicker_local", "seconds")


def table(rows: list[Row]) -> str:
    """A Markdown table of the rows; tuned-on items carry a ``*``."""
    cols = [c for c in COLUMNS if any(c in r.values for r in rows)]
    lines = ["| job | item | px | " + " | ".join(cols) + " |", "|---" * (3 + len(cols)) + "|"]
    for r in rows:
        cells = [f"{r.values[c]:.2f}" if c in r.values else "" for c in cols]
        lines.append(f"| {r.job} | {r.item}{' *' if r.tuned else ''} | {r.size} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def contact_sheet(rows: list[Row], path: Path, tile: int = 150) -> None:
    """Source and dream side by side for each row with a picture, captioned; saved as JPEG."""
    pictured = [r for r in rows if r.picture is not None]
    cols = 3
    pair_w = 2 * tile + 6
    h = round(tile * 9 / 16) + 2
    cells = []
    for r in pictured:
        pair = Image.new("RGB", (pair_w, h + 14), "white")
        for i, t in enumerate(r.picture):  # type: ignore[union-attr]
            im = Image.fromarray((t.permute(1, 2, 0).clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8))
            im.thumbnail((tile, h))
            pair.paste(im, (i * (tile + 6), 14))
        s = r.values.get("strength", 0.0)
        extra = f" p={r.values['p_ind']:.2f}" if "p_ind" in r.values and r.job == "class" else \
            f" fl={r.values.get('flicker', 0):.2f}"
        ImageDraw.Draw(pair).text((2, 1), f"{r.job} {r.item}{'*' if r.tuned else ''} {r.size}px |D-S|={s:.1f}{extra}",
                                  fill="black")
        cells.append(pair)
    rows_n = (len(cells) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * (pair_w + 8), max(1, rows_n) * (h + 20)), "white")
    for i, c in enumerate(cells):
        sheet.paste(c, ((i % cols) * (pair_w + 8), (i // cols) * (h + 20)))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part.jpg")
    sheet.save(tmp, quality=80)
    tmp.replace(path)


def _names(text: str | None, every: list[str]) -> list[str]:
    return every if not text else [n for n in text.split(",") if n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default=os.environ.get("MMDREAM_WEIGHTS"))
    parser.add_argument("--jobs", default="demo,video,class,ray")
    parser.add_argument("--sizes", default="320", help="film sizes (longer side), comma list")
    parser.add_argument("--class-sizes", default="224,512", help="class dream sizes, comma list")
    parser.add_argument("--clips", default=None, help="clip names (default: all)")
    parser.add_argument("--stills", default=None, help="still names (default: all)")
    parser.add_argument("--frames", type=int, default=None, help="only the first N frames of each clip")
    parser.add_argument("--ray-clips", default="pic_cartoon_24,pic_static_10")
    parser.add_argument("--ray-size", type=int, default=96)
    parser.add_argument("--ray-frames", type=int, default=16)
    parser.add_argument("--json", default=None, help="also write the rows as JSON lines here")
    parser.add_argument("--sheet", default=None, help="contact sheet JPEG (e.g. bench/figures/quality_sheet.jpg)")
    args = parser.parse_args()
    clips = _names(args.clips, [c.name for c in PICTURE_CLIPS])
    stills = _names(args.stills, [s.name for s in STILLS])
    sizes = [int(s) for s in args.sizes.split(",")]
    jobs = args.jobs.split(",")
    rows: list[Row] = []
    if "demo" in jobs:
        rows += demo_rows(clips, sizes, args.frames, args.weights)
    if "video" in jobs:
        rows += video_rows(clips, sizes, args.frames, args.weights)
    if "class" in jobs:
        rows += class_rows(stills, [int(s) for s in args.class_sizes.split(",")], args.weights)
    if "ray" in jobs:
        rows += ray_rows(_names(args.ray_clips, []), args.ray_size, args.ray_frames, args.weights)
    print(table(rows))
    if args.json:
        Path(args.json).write_text("".join(json.dumps(r.record()) + "\n" for r in rows))
    if args.sheet:
        contact_sheet(rows, Path(args.sheet))


if __name__ == "__main__":
    main()
