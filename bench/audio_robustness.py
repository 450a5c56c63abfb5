"""Does an audio class dream survive what happens to sound in the wild? Scores before, after, and after damage.

    python bench/audio_robustness.py [--input PATH ...] [--domain mel,wave] [--seconds 4] [--class Bark] [--plain]
                                     [--steps 24 ...]

Dreams each clip (default: the shared speech clip and the amen music loop, cut to ``--seconds``) toward the class
in each domain of ``--domain`` with :func:`mmdream.pipelines.audio.dream_audio` (every other ``AudioDreamParams`` field
is an option), writes the dream with ``save_audio`` (24-bit WAV) and reads it back, and prints one JSON line per
run with the class's YAMNet clip score (mean sigmoid over patches) of the source, of the written dream, and of the
written dream after: an AAC 96 kb/s round trip (PyAV, .m4a), a +0.5 semitone pitch shift
(librosa.effects.pitch_shift), a 7 ms delay, and white noise 35 dB below the dream's RMS; plus the loudness change
(dB), the level of the change (written dream - source) relative to the source (dB), the spectral flatness of the
change in 300-4000 Hz (1: white noise, near 0: tones), the peak, and the seconds (wall and CPU) the dream took
per 10 s of audio.
``--plain`` adds a run with the same options but no jitter (time_jitter_ms=0, pitch_jitter=0), the fragile
baseline. Weights and media come from MMDREAM_WEIGHTS / MMDREAM_MEDIA.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

from mmdream.pipelines.audio_classify import clip_scores
from mmdream.backbones import load_backbone
from mmdream.backbones.base import Backbone
from mmdream.dream.audio import DOMAINS, AudioDreamParams
from mmdream.media.audio import load_audio, save_audio
from mmdream.ops.audio import band_flatness
from mmdream.ops.loudness import rms_db
from mmdream.ops.resample import resample
from mmdream.pipelines.audio import dream_audio

NOISE_DB = -35.0
DELAY_MS = 7.0
SEMITONES = 0.5
AAC_BIT_RATE = 96_000
FLATNESS_BAND = (300.0, 4000.0)


def scores(samples: torch.Tensor, rate: int, backbone: Backbone) -> torch.Tensor:
    """YAMNet clip scores ``(521,)`` of ``samples`` ``(C, n)`` at ``rate`` (mixed to mono, resampled with soxr_hq)."""
    assert backbone.sample_rate is not None
    mono = resample(samples.mean(dim=0).numpy(), rate, backbone.sample_rate)
    return clip_scores(torch.from_numpy(np.ascontiguousarray(mono)), backbone)


def score(samples: torch.Tensor, rate: int, backbone: Backbone, index: int) -> float:
    """YAMNet clip score of class ``index`` for ``samples`` ``(C, n)`` at ``rate``."""
    return float(scores(samples, rate, backbone)[index])


def aac_round_trip(samples: torch.Tensor, rate: int, folder: Path) -> torch.Tensor:
    """``(C, n)`` through AAC at 96 kb/s in an .m4a and back, cut or padded to ``n`` samples."""
    path = folder / "round_trip.m4a"
    channels, n = samples.shape
    layout = "mono" if channels == 1 else "stereo"
    data = samples.numpy().astype(np.float32)
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=rate, layout=layout)
        stream.bit_rate = AAC_BIT_RATE
        for start in range(0, n, 1024):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data[:, start:start + 1024]), format="fltp",
                                               layout=layout)
            frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    decoded, decoded_rate = load_audio(path, rate=rate)
    out = torch.zeros(channels, n)
    m = min(n, decoded.shape[-1])
    out[:, :m] = decoded[:channels, :m] if decoded.shape[0] >= channels else decoded[:1, :m]
    return out


def pitch_shift(samples: torch.Tensor, rate: int, semitones: float) -> torch.Tensor:
    import librosa

    return torch.from_numpy(np.stack([librosa.effects.pitch_shift(c, sr=rate, n_steps=semitones)
                                      for c in samples.numpy()]).astype(np.float32))


def delay(samples: torch.Tensor, rate: int, ms: float) -> torch.Tensor:
    """Delayed by ``ms`` (zeros first), same length."""
    k = round(ms * rate / 1000)
    return torch.cat([torch.zeros(samples.shape[0], k), samples[:, :samples.shape[-1] - k]], dim=-1)


def add_noise(samples: torch.Tensor, db: float, seed: int = 0) -> torch.Tensor:
    """White Gaussian noise ``db`` below the RMS of ``samples``."""
    level = float(samples.square().mean().sqrt()) * 10 ** (db / 20)
    return samples + level * torch.randn(samples.shape, generator=torch.Generator().manual_seed(seed))


def run(name: str, source: torch.Tensor, rate: int, backbone: Backbone, index: int, params: AudioDreamParams,
        folder: Path) -> dict[str, object]:
    t, cpu = time.perf_counter(), time.process_time()
    dream = dream_audio(source, rate, backbone, index, params)
    seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
    dream = load_audio(save_audio(folder / "dream.wav", dream, rate))[0]  # what a listener gets: the written file
    s = lambda x: round(score(x, rate, backbone, index), 4)  # noqa: E731
    dreamed = s(dream)
    damaged = {
        "aac96k": s(aac_round_trip(dream, rate, folder)),
        "pitch+0.5st": s(pitch_shift(dream, rate, SEMITONES)),
        "delay7ms": s(delay(dream, rate, DELAY_MS)),
        "noise-35dB": s(add_noise(dream, NOISE_DB)),
    }
    change = dream - source
    return {
        "run": name, "domain": params.domain, "params": dataclasses.asdict(params),
        "seconds_per_10s": round(seconds / (source.shape[-1] / rate) * 10, 1),
        "cpu_seconds_per_10s": round(cpu / (source.shape[-1] / rate) * 10, 1),  # all threads; robust to a busy machine
        "source_score": s(source), "dreamed_score": dreamed, "after": damaged,
        "kept": {k: round(v / max(dreamed, 1e-9), 3) for k, v in damaged.items()},
        "loudness_change_db": round(rms_db(dream) - rms_db(source), 3),
        "change_level_db": round(rms_db(change) - rms_db(source), 2),
        "change_flatness_300_4000": round(band_flatness(change, rate, *FLATNESS_BAND), 4),
        "peak": round(float(dream.abs().max()), 4),
        "top3": [(backbone.classes[int(i)], round(float(v), 3))  # type: ignore[index]
                 for v, i in zip(*scores(dream, rate, backbone).topk(3))],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    media = Path(os.environ.get("MMDREAM_MEDIA", "../shared/media"))
    parser.add_argument("--input", nargs="+", default=[str(media / "audio" / name) for name in
                                                      ("speech_front_center.wav", "music_loop_amen_full.wav")])
    parser.add_argument("--seconds", type=float, default=None, help="cut each clip to its first SECONDS")
    parser.add_argument("--domain", default=",".join(DOMAINS), help="comma-separated domains to run (default: all)")
    parser.add_argument("--class", dest="class_", default="Bark", help="YAMNet class (name or index)")
    parser.add_argument("--plain", action="store_true", help="also run without jitter (the fragile baseline)")
    parser.add_argument("--threads", type=int, default=2)
    for f in dataclasses.fields(AudioDreamParams):
        if f.name == "domain":
            continue
        parser.add_argument(f"--{f.name.replace('_', '-')}", type=type(f.default), default=f.default,
                            help=f.metadata.get("help"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    backbone = load_backbone("yamnet")
    index = backbone.resolve_class(args.class_)
    base = {f.name: getattr(args, f.name) for f in dataclasses.fields(AudioDreamParams) if f.name != "domain"}
    runs: list[tuple[str, AudioDreamParams]] = []
    for domain in args.domain.split(","):
        params = AudioDreamParams(domain=domain, **base).validate()
        runs.append(("jittered", params))
        if args.plain:
            runs.append(("plain", dataclasses.replace(params, time_jitter_ms=0.0, pitch_jitter=0.0)))
    for path in args.input:
        source, rate = load_audio(path)
        if args.seconds is not None:
            source = source[:, :round(args.seconds * rate)]
        with tempfile.TemporaryDirectory() as d:
            for name, p in runs:
                result = run(name, source, rate, backbone, index, p, Path(d))
                print(json.dumps({"input": Path(path).name, "class": backbone.classes[index],  # type: ignore[index]
                                  **result}), flush=True)


if __name__ == "__main__":
    main()
