"""Audio dreams of long tracks in bounded memory: peak RSS and wall time of `mmdream audio` by track length, and
the spectral flux at the segment joins of the longest track.

    python bench/audio_long.py [--minutes 1,10] [--steps 1] [--warps 1] [--step-size 0.2] [--baseline]

Writes each track (44.1 kHz stereo 16-bit WAV: a triangle tone sweep per channel, 200-900 Hz over 13 s on the
left, 1500-5000 Hz over 17 s on the right (apart, so they never beat), each at 0.3 amplitude, plus white noise at
-40 dBFS: a steady spectral flux, so the measure hears the joins, not the content) to a temporary
folder and dreams it with ``python -m mmdream.cli audio`` (the streaming path, default layers and segments) in a
fresh process, whose peak RSS comes from ``os.wait4``. Prints one JSON line per run, then a summary line with the
RSS of the longest over the shortest track and, for the longest, on the dream mixed to mono at 16 kHz (where the
dream and its segments live):

- ``join_flux_ratio``: the highest spectral flux at the segment joins over its median elsewhere
  (:func:`mmdream.eval.metrics.join_flux_ratio`; the issue's bound is 1.2); ``source_join_flux_ratio``: the same of the
  source track (what the content alone gives); ``mid_segment_flux_ratio``: the same measure with its windows moved
  to the middles of the segments, far from any join (what the dream's own flux gives: a join is audible only if
  it stands out against this); ``join_mean_flux_ratio``: the highest mean flux over one join's window over the
  median elsewhere; ``join_p99_flux_ratio``: the 99th percentile of the flux at the joins over the 99th percentile
  elsewhere (like for like: the bound for content whose own flux varies, as a dream's does);
- the level of the change relative to the source and the loudness change, in dB, and the peak.

Memory does not depend on the step count (each step reuses one segment's buffers) and the warps only scale the
per-segment batch, so few steps and warps keep a 10-minute run to minutes on one core; ``--step-size`` makes
those few steps an audible change. ``--baseline`` also runs the in-memory path (``load_audio``, ``dream_audio``,
``save_audio``) with 0 steps: its memory is the clip's, a lower bound of what it needs with any steps.
MMDREAM_WEIGHTS names the weights folder.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile
import torch

RATE = 44_100
NET_RATE = 16_000
IN_MEMORY = """
import sys
from mmdream.backbones import load_backbone
from mmdream.dream.audio import AudioDreamParams
from mmdream.media.audio import load_audio, save_audio
from mmdream.pipelines.audio import dream_audio
inp, out, steps, warps, step_size = sys.argv[1:]
wave, rate = load_audio(inp)
params = AudioDreamParams(steps=int(steps), warps=int(warps), step_size=float(step_size))
save_audio(out, dream_audio(wave, rate, load_backbone("yamnet"), None, params), rate)
"""


def sweep_phase(t: np.ndarray, f0: float, f1: float, period: float) -> np.ndarray:
    """Phase (radians) at times ``t`` of a tone whose frequency goes linearly f0 -> f1 -> f0 over ``period`` s."""
    half = period / 2
    cycles, u = np.divmod(t, period)
    rise = np.minimum(u, half)  # time spent rising in this period
    fall = np.maximum(u - half, 0.0)
    slope = (f1 - f0) / half
    per_period = (f0 + f1) * half  # integral of f over one period
    integral = cycles * per_period + f0 * rise + slope * rise**2 / 2 + f1 * fall - slope * fall**2 / 2
    return 2 * math.pi * integral


def write_track(path: Path, minutes: float, seed: int = 0) -> None:
    """The generated track, written 10 s at a time."""
    rng = np.random.default_rng(seed)
    n = round(minutes * 60 * RATE)
    noise = 10 ** (-40 / 20)
    with soundfile.SoundFile(str(path), "w", RATE, 2, "PCM_16", format="WAV") as f:
        for a in range(0, n, 10 * RATE):
            t = np.arange(a, min(n, a + 10 * RATE), dtype=np.float64) / RATE
            left = 0.3 * np.sin(sweep_phase(t, 200.0, 900.0, 13.0))
            right = 0.3 * np.sin(sweep_phase(t, 1500.0, 5000.0, 17.0))
            f.write(np.stack([left, right], axis=1) + noise * rng.standard_normal((t.size, 2)))


def run_child(command: list[str], log: Path) -> tuple[float, float]:
    """Run ``command`` to completion in a fresh process: (peak RSS in MB, wall seconds). Fails on a non-zero exit."""
    start = time.perf_counter()
    with open(log, "w") as err:
        proc = subprocess.Popen(command, stdout=err, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"{' '.join(command)} failed ({proc.returncode}):\n{log.read_text()[-3000:]}")
    return usage.ru_maxrss / 1024, wall  # Linux: kilobytes


def at_net_rate(path: Path) -> torch.Tensor:
    from mmdream.media.audio import load_audio

    return load_audio(path, rate=NET_RATE, mono=True)[0][0].double()


def seams(source: Path, dream: Path, segment_s: float = 10.0, overlap_s: float = 1.0) -> dict[str, float]:
    from mmdream.ops.loudness import rms_db
    from mmdream.eval.metrics import FLUX_FFT, FLUX_HOP, join_flux_ratio, spectral_flux
    from mmdream.ops.segments import plan_segments

    x, y = at_net_rate(source), at_net_rate(dream)
    overlap = round(overlap_s * NET_RATE)
    plan = plan_segments(y.shape[-1], round(segment_s * NET_RATE), overlap)
    if len(plan) < 2:
        raise SystemExit(f"the longest track is one segment of {segment_s:g} s: no joins to measure")
    middles = [((a + b - overlap) // 2, b) for a, b in plan]  # windows of the same size, centred in the segments
    flux = spectral_flux(y)
    centres = torch.arange(flux.shape[0]) * FLUX_HOP + FLUX_HOP // 2
    windows = [(centres >= a - FLUX_FFT) & (centres < a + overlap + FLUX_FFT) for a, _ in plan[1:]]
    near = torch.stack(windows).any(0)
    join_mean = max(float(flux[w].mean()) for w in windows) / float(flux[~near].median())
    return {"segments": len(plan), "join_flux_ratio": round(join_flux_ratio(y, plan, overlap), 3),
            "source_join_flux_ratio": round(join_flux_ratio(x, plan, overlap), 3),
            "mid_segment_flux_ratio": round(join_flux_ratio(y, middles, overlap), 3),
            "join_mean_flux_ratio": round(join_mean, 3),
            "join_p99_flux_ratio": round(join_flux_ratio(y, plan, overlap, q=0.99), 3),
            "source_join_p99_flux_ratio": round(join_flux_ratio(x, plan, overlap, q=0.99), 3),
            "change_db": round(rms_db(y - x) - rms_db(x), 2), "loudness_change_db": round(rms_db(y) - rms_db(x), 3),
            "peak": round(float(y.abs().max()), 5)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", default="1,10", help="track lengths, minutes (default: 1,10)")
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--warps", type=int, default=1)
    parser.add_argument("--step-size", type=float, default=0.2)
    parser.add_argument("--domain", default=None, help="mel or wave (default: the CLI's)")
    parser.add_argument("--baseline", action="store_true", help="also run the in-memory path with 0 steps")
    args = parser.parse_args()
    lengths = sorted(float(m) for m in args.minutes.split(","))
    options = ["--steps", str(args.steps), "--warps", str(args.warps), "--step-size", str(args.step_size),
               *(["--domain", args.domain] if args.domain else [])]
    results: dict[float, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="audio-long-") as tmp:
        folder = Path(tmp)
        for minutes in lengths:
            track, out = folder / f"track-{minutes:g}min.wav", folder / f"dream-{minutes:g}min.wav"
            write_track(track, minutes)
            rss, wall = run_child([sys.executable, "-m", "mmdream.cli", "audio", str(track), str(out),
                                   "--progress", "none", *options], folder / "log.txt")
            results[minutes] = {"minutes": minutes, "path": "streaming", "peak_rss_mb": round(rss, 1),
                                "wall_s": round(wall, 1)}
            print(json.dumps(results[minutes]), flush=True)
            if args.baseline:
                rss, wall = run_child([sys.executable, "-c", IN_MEMORY, str(track), str(folder / "memory.wav"), "0",
                                       str(args.warps), str(args.step_size)], folder / "log.txt")
                print(json.dumps({"minutes": minutes, "path": "in-memory, 0 steps", "peak_rss_mb": round(rss, 1),
                                  "wall_s": round(wall, 1)}), flush=True)
            if minutes == lengths[-1]:
                results[minutes].update(seams(track, out))
            else:
                out.unlink()
            track.unlink()
    first, last = results[lengths[0]], results[lengths[-1]]
    print(json.dumps({"summary": f"{lengths[0]:g} vs {lengths[-1]:g} min", "options": " ".join(options),
                      "rss_ratio": round(last["peak_rss_mb"] / first["peak_rss_mb"], 3),
                      **{k: v for k, v in last.items() if k not in ("minutes", "path")}}), flush=True)


if __name__ == "__main__":
    main()
