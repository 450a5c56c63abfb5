"""2in1 acceptance: the sound drives the picture, and a theme raises both tracks' classes.

    python bench/av_2in1.py [--input PATH] [--frames 132] [--size 320] [--shards 1]

1. Renders ``jobs/music.yaml`` (the soundtrack's loudness drives the dream's strength) and reports Pearson r between
   the audio RMS envelope per frame and the realised dream strength mean |dream - source| per frame (goal >= 0.8).
2. Renders ``jobs/dogs.yaml`` (``theme: dog``) and reports EfficientNet-Lite0's summed dog-class probability on
   the frames (mean over frames, centre crops) and YAMNet's Dog and Bark scores on the soundtrack, against the
   source's (goal: both >= 3x).
Frames are compared as decoded from the written films (H.264), the sound as decoded from them (AAC).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import ray
import torch
import torch.nn.functional as F

from mmdream_cluster.driver import render_job
from mmdream.pipelines.audio_classify import clip_scores
from mmdream.schedules.drive import frame_features
from mmdream.backbones import load_backbone
from mmdream.jobspec.plan import compile_plan
from mmdream.jobspec.schema import load_job
from mmdream.ops.resample import resample
from mmdream.media.images import from_uint8
from mmdream.media.samples import resolve
from mmdream.media.video import probe, read_audio, read_frames
from mmdream.objectives.themes import THEMES

ROOT = Path(__file__).resolve().parents[1]


def frames_of(path: str | Path, size: tuple[int, int]) -> list[torch.Tensor]:
    return [from_uint8(f)[0] for f in read_frames(path, size=size)]


def dog_probability(frames: list[torch.Tensor], net) -> float:  # type: ignore[no-untyped-def]
    """Mean over frames of the summed probability of the dog breeds (shorter side to the net's size, centre crop)."""
    dogs = list(THEMES["dog"].image)
    total = 0.0
    with torch.no_grad():
        for f in frames:
            scale = net.input_size / min(f.shape[-2:])
            x = F.interpolate(f[None], scale_factor=scale, mode="bicubic", align_corners=False).clamp(0, 1)
            top, left = (x.shape[-2] - net.input_size) // 2, (x.shape[-1] - net.input_size) // 2
            x = x[..., top:top + net.input_size, left:left + net.input_size]
            total += float(torch.softmax(net.logits(x), dim=-1)[0, dogs].sum())
    return total / len(frames)


def sound_scores(path: str | Path, yamnet, seconds: float) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """YAMNet's Dog and Bark scores (mean over patches) of the first ``seconds`` of a file's sound."""
    samples, rate = read_audio(path, duration_s=seconds)
    mono = resample(samples.mean(axis=0), rate, 16000)
    scores = clip_scores(torch.from_numpy(np.ascontiguousarray(mono)), yamnet)
    return {name: float(scores[yamnet.resolve_class(name)]) for name in ("Dog", "Bark")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", default=None, help="override the jobs' input")
    parser.add_argument("--frames", type=int, default=None, help="only the first N frames")
    parser.add_argument("--size", type=int, default=None, help="override film.size")
    parser.add_argument("--shards", type=int, default=1)
    args = parser.parse_args()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    with tempfile.TemporaryDirectory() as d:
        for name in ("music", "dogs"):
            job = load_job(ROOT / "jobs" / f"{name}.yaml")
            job = job.with_overrides(**{"input": resolve(args.input or job.input), "output": f"{d}/{name}.mp4",
                                        "film.stop": args.frames, "film.size": args.size})
            out = render_job(compile_plan(job), shards=args.shards)
            info = probe(out)
            dreams = frames_of(out, (info.width, info.height))
            source = frames_of(job.input, (info.width, info.height))[:len(dreams)]
            if name == "music":
                samples, rate = read_audio(job.input)
                rms = frame_features(samples, rate, info.fps, len(dreams))["rms"]
                strength = np.array([float((a - b).abs().mean()) for a, b in zip(dreams, source)])
                print(json.dumps({"job": name, "frames": len(dreams),
                                  "pearson_r_rms_strength": round(float(np.corrcoef(rms, strength)[0, 1]), 3),
                                  "strength_255_min_mean_max": [round(255 * v, 2) for v in
                                                                (strength.min(), strength.mean(), strength.max())]}),
                      flush=True)
            else:
                net = load_backbone("efficientnet_lite0", weights_dir=job.weights)
                yamnet = load_backbone("yamnet", weights_dir=job.weights)
                before, after = dog_probability(source, net), dog_probability(dreams, net)
                seconds = len(dreams) / info.fps
                heard, original = sound_scores(out, yamnet, seconds), sound_scores(job.input, yamnet, seconds)
                print(json.dumps({"job": name, "frames": len(dreams),
                                  "dog_probability": [round(before, 4), round(after, 4)],
                                  "dog_ratio": round(after / max(before, 1e-9), 1),
                                  "sound_source": {k: round(v, 4) for k, v in original.items()},
                                  "sound_dreamed": {k: round(v, 4) for k, v in heard.items()}}), flush=True)
    ray.shutdown()


if __name__ == "__main__":
    main()
