"""Sound drives the picture: per-frame audio features, the attack/release envelope, the drive schedule, and a
film dream whose strength follows it."""

from __future__ import annotations

import numpy as np
import pytest

from mmdream.schedules.drive import AVParams, drive_schedule, envelope, frame_features
from mmdream.errors import ParameterError

RATE, FPS = 22050, 25.0


def pulses(levels: list[float], seconds_each: float = 0.4) -> np.ndarray:
    """A 440 Hz tone whose amplitude steps through ``levels``."""
    n = int(RATE * seconds_each)
    t = np.arange(n * len(levels)) / RATE
    amplitude = np.repeat(np.asarray(levels, dtype=np.float64), n)
    return (amplitude * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def test_envelope_rises_fast_and_falls_slowly() -> None:
    step = np.r_[np.zeros(5), np.ones(20), np.zeros(40)]
    env = envelope(step, FPS, attack_s=0.0, release_s=0.4)
    assert env[4] == 0 and env[5] == 1  # no attack time: at once
    assert env[25] == pytest.approx(np.exp(-1 / (FPS * 0.4)))  # one frame of release
    assert 0.3 < env[34] < 0.45 and env[-1] < 0.05  # ~ e^-1 after 0.4 s, gone after 1.6 s
    slow = envelope(step, FPS, attack_s=0.2, release_s=0.0)
    assert slow[5] == pytest.approx(1 - np.exp(-1 / (FPS * 0.2))) and slow[25] == 0


def test_features_follow_the_sound() -> None:
    wave = pulses([0.05, 0.8, 0.05, 0.4])
    frames = int(1.6 * FPS)
    f = frame_features(wave, RATE, FPS, frames)
    assert f["rms"].shape == (frames,) and f["chroma"].shape == (12, frames)
    quarter = frames // 4
    means = [f["rms"][i * quarter + 2:(i + 1) * quarter - 2].mean() for i in range(4)]
    assert means[1] > 10 * means[0] and means[1] > 1.5 * means[3] > 1.5 * means[2]
    assert int(np.argmax(f["chroma"][:, 15])) == 9  # A (C=0)
    assert 300 < np.median(f["centroid"][5:-5]) < 700
    # Frames past the end of the sound hear silence.
    assert frame_features(wave, RATE, FPS, frames + 10)["rms"][-1] == 0


def test_drive_schedule_maps_loudness_to_strength() -> None:
    wave = pulses([0.05, 0.8, 0.05, 0.4, 0.1, 0.6])
    frames = int(2.4 * FPS)
    rms = frame_features(wave, RATE, FPS, frames)["rms"]
    drive = drive_schedule(wave, RATE, FPS, frames, AVParams(drive="rms", drive_low=0.2, drive_high=1.0,
                                                             max_change=10.0))
    assert drive.shape == (frames,) and drive.mean() == pytest.approx(1.0)
    assert np.corrcoef(rms, drive)[0, 1] > 0.9
    assert drive.max() / drive.min() == pytest.approx(5.0, rel=0.05)  # low..high, scaled together
    assert np.array_equal(drive_schedule(wave, RATE, FPS, frames, AVParams(drive="none")), np.ones(frames))
    silence = np.zeros(RATE, dtype=np.float32)
    assert np.array_equal(drive_schedule(silence, RATE, FPS, 25, AVParams(drive="rms")), np.ones(25))


def step_up(at: float, seconds: float = 2.5) -> np.ndarray:
    """A 440 Hz tone at 0.05 that jumps to 0.8 at ``at`` seconds."""
    t = np.arange(int(RATE * seconds)) / RATE
    return (np.where(t < at, 0.05, 0.8) * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


@pytest.mark.parametrize("fps", [10.0, 24.0, 30.0])
@pytest.mark.parametrize("attack", [0.0, 0.1])
def test_drive_reaches_90_percent_within_its_attack_time_at_any_frame_rate(fps: float, attack: float) -> None:
    at = 1.013  # between frames at every rate
    frames = int(2.5 * fps)
    drive = drive_schedule(step_up(at), RATE, fps, frames, AVParams(drive="rms", attack_s=attack, max_change=10.0))
    before, after = drive[: int(0.8 * fps)].mean(), drive[-3:].mean()
    assert after > 2 * before
    first = int(np.argmax(drive >= before + 0.9 * (after - before)))
    # Not before the step's frame; at most the attack's 90 % time (2.3 time constants) and one frame after it.
    assert at - 1 / fps <= first / fps <= at + 2.31 * attack + 1 / fps
    assert np.all(drive[: int((at - 1 / fps) * fps)] < before + 0.1 * (after - before))


def drums(seconds: float, period: float, rate: int = RATE, offset: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Noise bursts (20 ms decay) every ``period`` seconds from ``offset``: the signal and the hit times."""
    g = np.random.default_rng(0)
    n = int(rate * seconds)
    y = np.zeros(n)
    hits = np.arange(offset, seconds - 0.05, period)
    burst = g.standard_normal(int(0.15 * rate)) * np.exp(-np.arange(int(0.15 * rate)) / (0.02 * rate))
    for h in hits:
        i = int(h * rate)
        y[i:i + burst.size] += burst[: n - i]
    return y, hits


def chords(seconds: float, changes: list[tuple[int, ...]], rate: int = RATE) -> np.ndarray:
    """Triads (pitch classes, C = 0, around C4) held for equal parts of ``seconds``, 30 ms fades."""
    n = int(rate * seconds)
    part = n // len(changes)
    t = np.arange(part) / rate
    fade = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.03)
    out = np.zeros(n)
    for k, chord in enumerate(changes):
        tone = sum(np.sin(2 * np.pi * 261.63 * 2 ** (pc / 12) * t) for pc in chord)
        out[k * part:(k + 1) * part] = fade * tone / len(chord)
    return out


def test_flicker_budget_limits_the_change_per_frame_and_keeps_the_shape() -> None:
    fps = 10.0
    y, _ = drums(4.0, 0.25)
    frames = int(4.0 * fps)
    free = drive_schedule(y.astype(np.float32), RATE, fps, frames, AVParams(drive="rms", max_change=10.0))
    budget = drive_schedule(y.astype(np.float32), RATE, fps, frames, AVParams(drive="rms", max_change=0.08))
    assert np.abs(np.diff(free)).mean() > 0.2  # the drums move the free curve far more than the budget allows
    assert np.abs(np.diff(budget)).mean() == pytest.approx(0.08, rel=1e-6)
    assert budget.mean() == pytest.approx(1.0) and np.corrcoef(free, budget)[0, 1] == pytest.approx(1.0)


def test_percussive_and_harmonic_drives_separate_drums_from_chords() -> None:
    fps, seconds = 24.0, 4.0
    frames = int(seconds * fps)
    kit, hits = drums(seconds, 0.5, offset=6.2 / fps)  # early in their frames: an onset envelope peaks ~20 ms late
    tones = chords(seconds, [(0, 4, 7), (5, 9, 0), (7, 11, 2), (9, 0, 4)])
    tones[int(1.0 * RATE):int(2.0 * RATE)] *= 0.2  # the second chord is soft
    mix = (0.5 * kit + 0.5 * tones).astype(np.float32)
    hit_frames = np.zeros(frames)
    hit_frames[np.floor(hits * fps).astype(int)] = 1.0
    percussive = drive_schedule(mix, RATE, fps, frames, AVParams(drive="percussive", max_change=10.0))
    harmonic = drive_schedule(mix, RATE, fps, frames, AVParams(drive="harmonic", max_change=10.0))
    assert np.corrcoef(percussive, hit_frames)[0, 1] > 0.8  # drums pulse the percussive drive...
    assert abs(np.corrcoef(harmonic, hit_frames)[0, 1]) < 0.3  # ...and not the harmonic one,
    second = slice(int(1.1 * fps), int(1.9 * fps))  # which follows the chords' loudness
    assert harmonic[second].mean() < 0.6 * np.delete(harmonic, np.r_[second]).mean()


def test_chroma_groups_follow_the_chords_under_the_drums() -> None:
    from mmdream.schedules.drive import chroma_schedule

    fps, seconds = 24.0, 4.0
    frames = int(seconds * fps)
    progression = [(0, 4, 7), (5, 9, 0), (7, 11, 2), (9, 0, 4)]  # C, F, G, A minor: a chord a second
    kit, _ = drums(seconds, 0.25)
    mix = (0.6 * kit + 0.4 * chords(seconds, progression)).astype(np.float32)
    weights = chroma_schedule(mix, RATE, fps, frames, AVParams())
    for k, chord in enumerate(progression):
        inside = weights[int((k + 0.2) * fps):int((k + 0.8) * fps)]
        top = {int(i) for i in np.argsort(inside.mean(axis=0))[-3:]}
        assert top == set(chord), (k, top)
        assert inside[:, list(chord)].sum(axis=1).min() > 0.6  # most of the weight on the chord, every frame


@pytest.mark.parametrize("bad,name", [({"drive": "loudness"}, "drive"), ({"drive_low": -1}, "drive_low"),
                                      ({"drive_low": 2.0, "drive_high": 1.0}, "drive_high"),
                                      ({"release_s": -0.1}, "release_s"), ({"max_change": 0}, "max_change")])
def test_bad_params_name_the_option(bad: dict, name: str) -> None:
    with pytest.raises(ParameterError, match=f"^{name}="):
        AVParams(**bad).validate()



def test_motion_energy_follows_the_speed_of_the_picture() -> None:
    import torch

    from mmdream.schedules.drive import motion_energy

    g = torch.Generator().manual_seed(0)
    background = torch.nn.functional.interpolate(torch.rand(1, 3, 12, 16, generator=g), size=(96, 128),
                                                 mode="bicubic", align_corners=False)[0].clamp(0, 1)
    speeds = [0, 0, 1, 1, 4, 4, 0, 0]
    frames, x = [], 0
    for v in speeds:
        x += v
        frames.append(torch.roll(background, shifts=x, dims=-1))
    energy = motion_energy(frames)
    assert energy.shape == (8,) and energy[0] == energy[1]
    assert energy[6] < 0.2 < energy[2] < energy[4] and 2.5 < energy[4] / energy[2] < 6  # px at a width of 160


def test_the_sound_dream_follows_a_gain_curve() -> None:
    import torch

    from mmdream.dream.audio import AudioDreamParams
    from mmdream.pipelines.audio import SegmentPlan
    from mmdream.pipelines.soundtrack import join_soundtrack

    rate, n = 16000, 32000
    t = torch.arange(n, dtype=torch.float64) / rate
    source = (0.1 * torch.sin(2 * torch.pi * 220 * t)).float()[None]
    plan = SegmentPlan(rate, ((0, n),), 0, 0.01)
    change = [(0.01 * torch.sin(2 * torch.pi * 1000 * t)).float()]
    params = AudioDreamParams()
    even = join_soundtrack(source, rate, plan, change, params) - source
    curve = np.r_[np.full(25, 0.5), np.full(25, 1.5)]  # 2 s at 25 fps: soft, then loud
    shaped = join_soundtrack(source, rate, plan, change, params, (curve, 25.0)) - source
    rms = [float(x.square().mean().sqrt()) for x in (shaped[0, 2000:14000], shaped[0, 18000:30000],
                                                      even[0, 2000:14000])]
    assert rms[1] / rms[0] == pytest.approx(3.0, rel=0.1) and rms[0] / rms[2] == pytest.approx(0.5, rel=0.1)


def test_chroma_weights_follow_the_pitch_class() -> None:
    from mmdream.schedules.drive import chroma_schedule

    n = int(RATE * 0.8)
    t = np.arange(n) / RATE
    wave = np.r_[np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 261.63 * t)].astype(np.float32)  # A, then C
    weights = chroma_schedule(wave, RATE, FPS, 40, AVParams(attack_s=0.0, release_s=0.0))
    assert weights.shape == (40, 12) and np.allclose(weights.sum(axis=1), 1.0)
    assert int(np.argmax(weights[8])) == 9 and int(np.argmax(weights[32])) == 0 and weights[8, 9] > 0.5


def test_chroma_objectives_weight_channel_groups(vgg16) -> None:  # type: ignore[no-untyped-def]
    import torch

    from mmdream.schedules.drive import ChromaObjectives
    from mmdream.dream.image import DreamParams, dream_image
    from mmdream.objectives.terms import ChannelGroupsTerm, LayerTerm, build_objective

    acts = {"x": torch.randn(1, 24, 5, 5)}
    uniform = ChannelGroupsTerm("x", (1 / 12,) * 12).value(acts)
    assert float(uniform) == pytest.approx(float(LayerTerm("x").value(acts)), rel=1e-6)
    one_hot = [[1.0 if k == 0 else 0.0 for k in range(12)], [1.0 if k == 6 else 0.0 for k in range(12)]]
    frames = ChromaObjectives(build_objective(vgg16, layers="relu4_3"), one_hot)
    (term,) = frames.at(1).terms
    assert isinstance(term, ChannelGroupsTerm) and term.weights[6] == 1.0 and frames.layers == ("relu4_3",)
    with pytest.raises(ParameterError, match="has none"):
        ChromaObjectives(build_objective(vgg16, class_=None, channels=[3], layers="relu4_3"), one_hot)
    # Dreaming with group 0 lit raises group 0's channels more than group 6's, and the other way round.
    image = torch.rand(1, 3, 96, 96, generator=torch.Generator().manual_seed(0))
    params = DreamParams(steps=6, octaves=1)
    groups = torch.arange(512) * 12 // 512

    def gain(index: int, group: int) -> float:
        dream = dream_image(image, vgg16, frames.at(index), params)
        before, after = (vgg16.taps(x, ["relu4_3"])["relu4_3"].square().mean(dim=(0, 2, 3)) for x in (image, dream))
        return float(after[groups == group].mean() / before[groups == group].mean())

    assert gain(0, 0) > gain(0, 6) and gain(1, 6) > gain(1, 0)
