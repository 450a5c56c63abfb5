"""The sound drives the picture: does the realised dream strength follow it, on clips nobody tuned for?

    python bench/av_drive.py [--split held_out] [--clips a,b] [--drives rms,percussive] [--steps 4] [--octaves 2]

For every clip of :mod:`bench.evalset` (H.264 + AAC, 160x90 or so) and every drive, renders the film in process
through the same path as ``mmdream video`` / a job (``jobs/music.yaml``'s backbone, objective and settings, with
cheaper first-frame settings: ``--steps``, ``--octaves``): :func:`mmdream.schedules.drive.film_drive` -> :func:`mmdream.pipelines.film.
dream_film` (written as H.264), then decodes the film and measures, independently of mmdream's own features:

- ``cv``: coefficient of variation of the per-frame RMS (the samples shown with each frame, [t/fps, (t+1)/fps));
  the r goal applies where cv >= 0.2;
- ``r``: Pearson r(per-frame RMS, realised strength mean |D - S|); ``r_c``, ``r_p``: the same with other toolkits'
  conventions for a frame's RMS: a window of one frame centred on the frame's start, or 2048 samples centred on it;
- ``r_on``: r(percussive onset envelope per frame, strength) (librosa HPSS, onset strength, the frame's maximum);
- ``flick``: flicker ratio (warped-frame difference over the source's), ``excess``: what the dream adds (0-255);
- ``str``: mean strength (0-255).
Rows of the tuning part are marked ``*``.

``--chords``: no render; on the clips with composed chords, how the chroma-chosen channel groups
(``channels_follow: chroma``, :func:`mmdream.schedules.drive.film_chroma`) follow them: on the frames inside each chord (its
middle 60 %), the share whose three most weighted groups are exactly the chord's pitch classes (``top3``), the mean
weight on them (``on``; 0.25 by chance), and the same for the constant-Q chroma of the whole mix without the
separation (sampled at the frames' middles).

``--curves``: no render; the drive curve itself against the sound (r, r_on as above, with the curve for the
strength), its depth (std) and mean change per frame. Seconds, not minutes: for sweeping the drive's settings.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evalset import CACHE, Clip, build, chords_of, clips  # noqa: E402

from mmdream.eval import metrics  # noqa: E402
from mmdream.schedules.drive import AVParams, film_chroma, film_drive  # noqa: E402
from mmdream.backbones import load_backbone  # noqa: E402
from mmdream.schedules.drive import ChromaObjectives  # noqa: E402
from mmdream.pipelines.film import FilmParams, dream_film, plan_film, source_frames  # noqa: E402
from mmdream.jobspec.build import build_job_objective  # noqa: E402
from mmdream.jobspec.plan import compile_plan  # noqa: E402
from mmdream.jobspec.schema import load_job  # noqa: E402
from mmdream.media.images import from_uint8  # noqa: E402
from mmdream.media.video import read_audio, read_frames  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def frame_rms(y: np.ndarray, rate: int, fps: float, frames: int, how: str = "start") -> np.ndarray:
    """RMS of the samples of each frame ``(frames,)``: [t/fps, (t+1)/fps) ("start"), one frame centred on t/fps
    ("centred") or 2048 samples centred on it ("point")."""
    out = np.zeros(frames)
    for t in range(frames):
        a = t / fps - {"start": 0.0, "centred": 0.5 / fps, "point": 1024 / rate}[how]
        length = 2048 / rate if how == "point" else 1 / fps
        lo, hi = max(0, int(round(a * rate))), int(round((a + length) * rate))
        seg = y[lo:hi]
        out[t] = np.sqrt(np.mean(seg.astype(np.float64) ** 2)) if seg.size else 0.0
    return out


def frame_onsets(y: np.ndarray, rate: int, fps: float, frames: int) -> np.ndarray:
    """The percussive part's onset strength (librosa HPSS of the STFT, hop 256), its maximum over each frame."""
    import librosa

    hop = 256
    stft = librosa.stft(y, n_fft=2048, hop_length=hop)
    _, perc = librosa.decompose.hpss(stft)
    env = librosa.onset.onset_strength(S=librosa.amplitude_to_db(np.abs(perc), ref=np.max), sr=rate, hop_length=hop)
    times = librosa.frames_to_time(np.arange(env.size), sr=rate, hop_length=hop)
    return np.array([env[(times >= t / fps) & (times < (t + 1) / fps)].max(initial=0.0) for t in range(frames)])


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else float("nan")


def render(clip_path: Path, job, backbone, objective,  # type: ignore[no-untyped-def]
           out: Path) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Dream the clip as ``job`` (a render plan) says (in process, the CLI's path) and decode dream and source
    frames."""
    film, av = job.picture.film, job.av
    plan = plan_film(clip_path, film)
    drive = film_drive(clip_path, plan, av)
    chroma = film_chroma(clip_path, plan, av)
    frame_objective = objective if chroma is None else ChromaObjectives(objective, chroma)
    dream_film(clip_path, out, backbone, frame_objective, job.picture.dream, job.picture.video, film,
               objective_spec={"bench": str(out)}, drive=drive)
    dreams = [from_uint8(f)[0] for f in read_frames(out, size=(plan.width, plan.height))]
    source = list(source_frames(clip_path, plan, 0, plan.count))[:len(dreams)]
    return dreams, source


def measure(clip: Clip, clip_path: Path, dreams: list[torch.Tensor], source: list[torch.Tensor]) -> dict[str, float]:
    samples, rate = read_audio(clip_path)
    y = samples.mean(axis=0)
    n = len(dreams)
    rms = frame_rms(y, rate, clip.fps, n)
    strength = np.array(metrics.strengths(dreams, source))
    return {"cv": float(rms.std() / max(rms.mean(), 1e-12)), "r": pearson(rms, strength),
            "r_c": pearson(frame_rms(y, rate, clip.fps, n, "centred"), strength),
            "r_p": pearson(frame_rms(y, rate, clip.fps, n, "point"), strength),
            "r_on": pearson(frame_onsets(y, rate, clip.fps, n), strength),
            "flick": metrics.flicker(dreams, source), "excess": metrics.flicker_excess(dreams, source),
            "str": 255 * float(strength.mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", choices=("tune", "held_out"), default=None)
    parser.add_argument("--clips", default=None, help="comma-separated clip names (default: the split's)")
    parser.add_argument("--job", type=Path, default=ROOT / "jobs" / "demo.yaml",
                        help="the job whose backbone, objective and settings render the clips (default: the demo "
                             "job's EfficientNet-Lite0, cheap on a CPU; jobs/music.yaml dreams VGG16 layers)")
    parser.add_argument("--drives", default="rms", help="comma-separated av.drive values")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="job override, e.g. av.release_s=0.2 (repeatable)")
    parser.add_argument("--steps", type=int, default=None, help="dream.steps of each shot's first frame "
                                                                 "(default: the job's)")
    parser.add_argument("--octaves", type=int, default=None, help="dream.octaves (default: the job's)")
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--max-frames", type=int, default=None, help="only each clip's first N frames")
    parser.add_argument("--curves", action="store_true", help="measure the drive curves only (no render)")
    parser.add_argument("--chords", action="store_true", help="measure the chroma-chosen channel groups against "
                                                               "the composed chords (no render)")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    chosen = clips(args.split)
    if args.clips:
        names = args.clips.split(",")
        chosen = [c for c in clips() if c.name in names]
    base = load_job(args.job)
    overrides = {"dream.steps": args.steps, "dream.octaves": args.octaves, "film.stop": args.max_frames}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = yaml.safe_load(value)
    if args.curves:
        return curves(chosen, base, overrides, args)
    if args.chords:
        return chord_groups(chosen, args)
    backbone = load_backbone(base.backbone.name, weights_dir=base.weights)
    print(f"{'clip':24s} {'fps':>4s} {'drive':>10s} {'cv':>5s} {'r':>6s} {'r_c':>6s} {'r_p':>6s} {'r_on':>6s} "
          f"{'flick':>6s} {'excess':>6s} {'str':>5s} {'s':>5s}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for clip in chosen:
            path = build(clip, args.cache)
            for drive in args.drives.split(","):
                job = compile_plan(base.with_overrides(**{**overrides, "input": str(path), "output": f"{tmp}/o.mp4",
                                                          "av.drive": drive}))
                objective = build_job_objective(job.picture.objective, backbone, max(clip.size), job.theme)
                t0 = time.perf_counter()
                out = Path(tmp) / f"{clip.name}-{drive}.mp4"
                m = measure(clip, path, *render(path, job, backbone, objective, out))
                mark = "*" if clip.split == "tune" else " "
                print(f"{mark}{clip.name:23s} {clip.fps:4g} {drive:>10s} {m['cv']:5.2f} {m['r']:6.3f} "
                      f"{m['r_c']:6.3f} {m['r_p']:6.3f} {m['r_on']:6.3f} {m['flick']:6.2f} {m['excess']:6.2f} "
                      f"{m['str']:5.1f} "
                      f"{time.perf_counter() - t0:5.0f}", flush=True)


def curves(chosen: list[Clip], base, overrides: dict, args: argparse.Namespace) -> None:  # type: ignore[no-untyped-def]
    """The drive curves of every clip and drive against the sound, no render."""
    print(f"{'clip':24s} {'fps':>4s} {'drive':>10s} {'cv':>5s} {'r':>6s} {'r_c':>6s} {'r_p':>6s} {'r_on':>6s} "
          f"{'depth':>6s} {'change':>6s}", flush=True)
    for clip in chosen:
        path = build(clip, args.cache)
        samples, rate = read_audio(path)
        y = samples.mean(axis=0)
        for drive in args.drives.split(","):
            job = compile_plan(base.with_overrides(**{**overrides, "input": str(path), "av.drive": drive}))
            plan = plan_film(path, job.picture.film)
            curve = np.array(film_drive(path, plan, job.av) or np.ones(plan.count))
            n = len(curve)
            rms = frame_rms(y, rate, clip.fps, n)
            mark = "*" if clip.split == "tune" else " "
            print(f"{mark}{clip.name:23s} {clip.fps:4g} {drive:>10s} {rms.std() / max(rms.mean(), 1e-12):5.2f} "
                  f"{pearson(rms, curve):6.3f} {pearson(frame_rms(y, rate, clip.fps, n, 'centred'), curve):6.3f} "
                  f"{pearson(frame_rms(y, rate, clip.fps, n, 'point'), curve):6.3f} "
                  f"{pearson(frame_onsets(y, rate, clip.fps, n), curve):6.3f} {curve.std():6.3f} "
                  f"{np.abs(np.diff(curve)).mean():6.3f}", flush=True)


def chord_groups(chosen: list[Clip], args: argparse.Namespace) -> None:
    """How the chroma weights of the channel groups follow the composed chords, against the mix's chroma."""
    import librosa

    print(f"{'clip':24s} {'fps':>4s} {'chords':>6s} {'top3':>6s} {'on':>6s} {'top3_mix':>8s} {'on_mix':>6s}")
    for clip in chosen:
        timeline = chords_of(clip)
        if not timeline:
            continue
        path = build(clip, args.cache)
        plan = plan_film(path, FilmParams())
        weights = np.array(film_chroma(path, plan, AVParams(channels_follow="chroma")))  # (frames, 12)
        samples, rate = read_audio(path)
        y = samples.mean(axis=0)
        mix = librosa.feature.chroma_cqt(y=y, sr=rate, hop_length=512, tuning=0.0)
        times = librosa.frames_to_time(np.arange(mix.shape[1]), sr=rate, hop_length=512)
        mix = np.stack([np.interp((np.arange(len(weights)) + 0.5) / clip.fps, times, row) for row in mix]).T ** 2
        mix = mix[: len(weights)] / np.maximum(mix[: len(weights)].sum(axis=1, keepdims=True), 1e-12)
        scores = {"ours": [], "mix": []}  # type: dict[str, list[tuple[bool, float]]]
        for start, end, pitches in timeline:
            a, b = start + 0.2 * (end - start), end - 0.2 * (end - start)
            for t in range(int(np.ceil(a * clip.fps)), min(int(b * clip.fps), len(weights))):
                for name, w in (("ours", weights[t]), ("mix", mix[t])):
                    scores[name].append((set(np.argsort(w)[-3:].tolist()) == pitches, float(w[list(pitches)].sum())))
        row = {k: (np.mean([h for h, _ in v]), np.mean([o for _, o in v])) for k, v in scores.items()}
        mark = "*" if clip.split == "tune" else " "
        print(f"{mark}{clip.name:23s} {clip.fps:4g} {len(timeline):6d} {row['ours'][0]:6.2f} {row['ours'][1]:6.2f} "
              f"{row['mix'][0]:8.2f} {row['mix'][1]:6.2f}", flush=True)


if __name__ == "__main__":
    main()
