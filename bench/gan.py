"""GAN dreams acceptance: a DCGAN's variety, a class dream through dcgan_faces64, a latent walk to a drum loop.

    python bench/gan.py [--work DIR] [--only variety|dream|walk] [--epochs 50] [--images 3000]

1. variety: a dataset of ``--images`` random square crops (side 30–100 % of the shorter side, random flips) of the
   six shared photos and of the frames of bigbuckbunny.mp4 (half each) at 64², written as PNGs to
   ``DIR/crops``; a DCGAN trained on it with the defaults (``mmdream gan train DIR/crops --out DIR/crops.safetensors
   --epochs N``, resumed when DIR holds a shorter run; 50 epochs: about 13 min on one core). Variety: mean pairwise
   L2 distance of EfficientNet-Lite0 ``pool`` features (images resized to 224) of 64 samples over that of 64
   fresh real crops (goal: >= 0.5).
2. dream: ``gan dream dcgan_faces64 --backbone efficientnet_lite0 --class CLASS`` with the defaults: the class's
   probability (dream at 224) over the best of 64 random samples (goal: >= 10x); the reconstruction check (the
   dream's re-projection error over the median of 8 random samples'; a photo's for contrast).
3. walk: the latents of ``gan walk`` on music_loop_amen_full.wav at 25 fps: Pearson r between the per-frame onset
   strength and the per-frame latent step |z_t - z_{t-1}| (goal: >= 0.8); the film rendered at 256² and probed
   for its audio stream.
Needs MMDREAM_WEIGHTS and MMDREAM_MEDIA; runs on one thread.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mmdream.backbones import load_backbone
from mmdream.media.images import load_image, save_image

PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "dog.jpg", "style_starry_night.jpg", "style_the_scream.jpg")


def media() -> Path:
    return Path(os.environ["MMDREAM_MEDIA"])


def _sources() -> list[torch.Tensor]:
    """The six photos and every frame of bigbuckbunny.mp4 (at 480 px wide), RGB (3, H, W) in [0, 1]."""
    from mmdream.media.video import read_frames

    photos = [load_image(media() / "images" / n)[0] for n in PHOTOS]
    frames = [torch.from_numpy(f).permute(2, 0, 1).float() / 255
              for f in read_frames(media() / "video" / "bigbuckbunny.mp4", size=(480, 270))]
    return photos + frames


def random_crops(sources: list[torch.Tensor], count: int, seed: int, size: int = 64) -> torch.Tensor:
    """``count`` crops ``(count, 3, size, size)``: half from the photos (first six sources), half from the frames."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(count):
        pool = range(6) if i % 2 == 0 else range(6, len(sources))
        src = sources[pool[int(torch.randint(len(pool), (), generator=g))]]
        h, w = src.shape[-2:]
        side = int(min(h, w) * (0.3 + 0.7 * float(torch.rand((), generator=g))))
        top = int(torch.randint(h - side + 1, (), generator=g))
        left = int(torch.randint(w - side + 1, (), generator=g))
        crop = F.interpolate(src[None, :, top:top + side, left:left + side], size=(size, size), mode="bilinear",
                             antialias=True, align_corners=False)[0]
        out.append(crop.flip(-1) if float(torch.rand((), generator=g)) < 0.5 else crop)
    return torch.stack(out).clamp(0, 1)


def mean_pairwise_feature_distance(effnet, images: torch.Tensor) -> float:  # type: ignore[no-untyped-def]
    """Mean L2 distance between the EfficientNet-Lite0 pooled features (N, 1280) of every pair of images."""
    with torch.no_grad():
        feats = torch.cat([effnet.taps(F.interpolate(images[i:i + 16], size=(224, 224), mode="bilinear",
                                                     align_corners=False), ["pool"])["pool"].flatten(1)
                           for i in range(0, len(images), 16)])
    d = torch.cdist(feats, feats)
    n = len(images)
    return float(d.sum() / (n * (n - 1)))


def variety(work: Path, epochs: int, images: int) -> dict:  # type: ignore[type-arg]
    from mmdream.backbones.generators import load_generator, sample_latents
    from mmdream.cli import main as cli

    crops = work / "crops"
    sources = _sources()
    if not crops.is_dir():
        crops.mkdir(parents=True)
        for i, c in enumerate(random_crops(sources, images, seed=0)):
            save_image(c, crops / f"{i:05d}.png")
    ckpt = work / "crops.safetensors"
    argv = ["gan", "train", str(crops), "--out", str(ckpt), "--epochs", str(epochs), "--progress", "none"]
    if (work / "crops.resume.safetensors").is_file():
        argv.append("--resume")
    assert cli(argv) == 0
    history = json.loads(ckpt.with_suffix(".json").read_text())["history"]
    train_s = sum(r["seconds"] for r in history)  # over every (resumed) run
    effnet = load_backbone("efficientnet_lite0")
    g = load_generator(ckpt)
    z, _ = sample_latents(g, 64, seed=123)
    with torch.no_grad():
        fake = g.generate(z)
    real = random_crops(sources, 64, seed=1)
    d_fake, d_real = mean_pairwise_feature_distance(effnet, fake), mean_pairwise_feature_distance(effnet, real)
    return {"images": images, "epochs": epochs, "train_s": round(train_s, 1), "fake_distance": round(d_fake, 3),
            "real_distance": round(d_real, 3), "ratio": round(d_fake / d_real, 3),
            "command": " ".join(["mmdream", *argv])}


def dream(work: Path, class_name: str) -> dict:  # type: ignore[type-arg]
    from mmdream.backbones.generators import load_generator, sample_latents
    from mmdream.dream.gan import GanDreamParams, class_probability, dream_latent, range_check
    from mmdream.objectives.terms import build_objective

    effnet = load_backbone("efficientnet_lite0")
    g = load_generator("dcgan_faces64")
    index = effnet.resolve_class(class_name)
    z, _ = sample_latents(g, 64, seed=7)
    with torch.no_grad():
        random_p = class_probability(effnet, g.generate(z), index)
    params = GanDreamParams()
    t0 = time.perf_counter()
    result = dream_latent(g, effnet, build_objective(effnet, class_=index), params)
    dream_s = time.perf_counter() - t0
    p = float(class_probability(effnet, result.image, index)[0])
    save_image(F.interpolate(result.image, size=(256, 256), mode="bicubic", align_corners=False).clamp(0, 1),
               work / f"dream_{index}.png")
    check = range_check(g, result.image, params)
    photo = load_image(media() / "images" / "astronaut.png", 64)
    photo_check = range_check(g, photo, params)
    return {"class": effnet.classes[index], "index": index, "dream_p": round(p, 4),
            "best_random_p": round(float(random_p.max()), 5), "gain": round(p / float(random_p.max()), 1),
            "dream_s": round(dream_s, 1), "restart_values": [round(v, 3) for v in result.values],
            "range_check": check.record(), "photo_range_check": photo_check.record()}


def walk(work: Path) -> dict:  # type: ignore[type-arg]
    from mmdream.schedules.drive import frame_features
    from mmdream.cli import main as cli
    from mmdream.media.audio import load_audio
    from mmdream.media.video import probe
    from mmdream.schedules.walk import WalkParams, latent_walk

    audio = media() / "audio" / "music_loop_amen_full.wav"
    samples, rate = load_audio(audio, mono=True)
    fps = 25.0
    w = latent_walk(samples[0].numpy(), rate, fps, WalkParams(), seed=0, latent_dim=100)
    onset = frame_features(samples[0].numpy(), rate, fps, len(w.latents))["onset"]
    step = np.linalg.norm(np.diff(w.latents, axis=0), axis=1)
    r = float(np.corrcoef(onset[1:], step)[0, 1])
    out = work / "walk.mp4"
    argv = ["gan", "walk", "dcgan_faces64", str(out), "--audio", str(audio), "--progress", "none"]
    t0 = time.perf_counter()
    assert cli(argv) == 0
    info = probe(out)
    return {"frames": len(w.latents), "pearson_r_onset_step": round(r, 3),
            "render_s": round(time.perf_counter() - t0, 1),
            "video": f"{info.width}x{info.height} {info.fps:g} fps {info.frame_count} frames",
            "audio": None if info.audio is None else f"{info.audio.codec} {info.audio.rate} Hz",
            "command": " ".join(["mmdream", *argv])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default="gan_bench", help="folder for the dataset, checkpoint and outputs")
    parser.add_argument("--only", choices=("variety", "dream", "walk"), default=None, help="run one part only")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--class", dest="class_", default="sunglasses", help="EfficientNet-Lite0 class to dream")
    args = parser.parse_args()
    torch.set_num_threads(1)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    parts = {"variety": lambda: variety(work, args.epochs, args.images), "dream": lambda: dream(work, args.class_),
             "walk": lambda: walk(work)}
    for name, run in parts.items():
        if args.only in (None, name):
            print(json.dumps({name: run()}, indent=1), flush=True)


if __name__ == "__main__":
    main()
