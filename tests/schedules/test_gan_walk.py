"""Latent walks: determinism, speed following the onsets, shards that agree, the film with its sound."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from mmdream.schedules.drive import frame_features
from mmdream.cli import main as cli
from mmdream.errors import MediaError, ParameterError
from mmdream.media.audio import load_audio
from mmdream.media.video import probe, read_frames
from mmdream.schedules.walk import WalkParams, latent_walk, slerp
from mmdream.pipelines.walk import WalkFilmParams, render_walk, walk_frames

pytestmark = pytest.mark.usefixtures("one_thread")  # small ops on a shared, busy machine stall with more threads


@pytest.fixture(scope="module")
def amen(media_dir: Path) -> tuple[np.ndarray, int]:
    samples, rate = load_audio(media_dir / "audio" / "music_loop_amen_full.wav", mono=True)
    return samples[0].numpy(), rate


def test_slerp_ends_and_norm() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((1, 50)), rng.standard_normal((1, 50))
    b *= np.linalg.norm(a) / np.linalg.norm(b)
    out = slerp(np.repeat(a, 3, 0), np.repeat(b, 3, 0), np.array([0.0, 0.5, 1.0]))
    np.testing.assert_allclose(out[0], a[0], atol=1e-12)
    np.testing.assert_allclose(out[2], b[0], atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), np.linalg.norm(a), rtol=1e-9)  # stays on the sphere


def test_walk_speed_follows_onsets_and_is_deterministic(amen: tuple[np.ndarray, int]) -> None:
    audio, rate = amen
    walk = latent_walk(audio, rate, 25.0, WalkParams(), seed=0, latent_dim=100)
    assert walk.latents.shape == (172, 100) and walk.classes is None  # ceil(6.86 s * 25)
    onset = frame_features(audio, rate, 25.0, len(walk))["onset"]
    step = np.linalg.norm(np.diff(walk.latents, axis=0), axis=1)
    assert np.corrcoef(onset[1:], step)[0, 1] >= 0.85  # measured 0.909
    norms = np.linalg.norm(walk.latents, axis=1)
    assert 8.0 < norms.min() and norms.max() < 12.0  # typical |z| ~ sqrt(100)
    np.testing.assert_allclose(walk.speed.mean(), 1.0, rtol=1e-9)
    again = latent_walk(audio, rate, 25.0, WalkParams(), seed=0, latent_dim=100)
    assert np.array_equal(walk.latents, again.latents)
    other = latent_walk(audio, rate, 25.0, WalkParams(), seed=1, latent_dim=100)
    assert not np.allclose(walk.latents, other.latents)
    # A shorter sound starts at the same key (its later positions differ: the speed is normalised per sound).
    short = latent_walk(audio[: rate * 2], rate, 25.0, WalkParams(chroma=0.0), seed=0, latent_dim=100)
    full = latent_walk(audio, rate, 25.0, WalkParams(chroma=0.0), seed=0, latent_dim=100)
    assert np.array_equal(short.latents[0], full.latents[0])


def test_chroma_steers_the_drift(amen: tuple[np.ndarray, int]) -> None:
    audio, rate = amen
    bare = latent_walk(audio, rate, 25.0, WalkParams(chroma=0.0), seed=0)
    steered = latent_walk(audio, rate, 25.0, WalkParams(chroma=1.0), seed=0)
    assert np.array_equal(bare.position, steered.position)
    assert np.linalg.norm(bare.latents[-1] - steered.latents[-1]) > 1.0


def test_conditional_walk_classes(amen: tuple[np.ndarray, int]) -> None:
    audio, rate = amen
    mixed = latent_walk(audio, rate, 10.0, WalkParams(speed=2.0), seed=0, num_classes=8)
    assert mixed.classes is not None and mixed.classes.shape == (69, 8)
    np.testing.assert_allclose(mixed.classes.sum(axis=1), 1.0, rtol=1e-6)
    fixed = latent_walk(audio, rate, 10.0, WalkParams(), seed=0, num_classes=8, class_index=3)
    assert fixed.classes is not None and (fixed.classes.argmax(axis=1) == 3).all()
    with pytest.raises(ParameterError, match="out of range"):
        latent_walk(audio, rate, 10.0, WalkParams(), seed=0, num_classes=8, class_index=8)


def test_silence_is_refused() -> None:
    with pytest.raises(MediaError, match="no sound"):
        latent_walk(np.zeros(44100), 44100, 25.0)


def test_shards_render_the_same_frames(faces, amen: tuple[np.ndarray, int]) -> None:  # type: ignore[no-untyped-def]
    audio, rate = amen
    walk = latent_walk(audio[: rate], rate, 25.0, seed=0)
    whole = np.stack(list(walk_frames(faces, walk, size=64, batch=8)))
    parts = np.concatenate([np.stack(list(walk_frames(faces, walk, size=64, start=a, stop=b, batch=5)))
                            for a, b in ((0, 9), (9, 25))])
    assert whole.shape == (25, 64, 64, 3) and np.array_equal(whole, parts)
    with pytest.raises(ParameterError, match="outside"):
        next(walk_frames(faces, walk, start=20, stop=30))


def test_render_walk_has_sound(faces, amen: tuple[np.ndarray, int],  # type: ignore[no-untyped-def]
                               tmp_path: Path) -> None:
    audio, rate = amen
    wav = tmp_path / "loop.wav"
    soundfile.write(wav, audio[: rate], rate)
    walk = latent_walk(audio[: rate], rate, 12.0, seed=0)
    out = tmp_path / "walk.mp4"
    render_walk(faces, walk, out, wav, WalkFilmParams(fps=12.0, size=96))
    info = probe(out)
    assert (info.width, info.height, info.frame_count) == (96, 96, 12) and info.audio is not None
    first = next(read_frames(out))
    expected = next(walk_frames(faces, walk, size=96))
    assert np.abs(first.astype(int) - expected).mean() < 6  # H.264 at CRF 18


def test_cli_walk(media_dir: Path, tmp_path: Path) -> None:
    audio, rate = load_audio(media_dir / "audio" / "music_loop_amen_full.wav", mono=True)
    wav = tmp_path / "short.wav"
    soundfile.write(wav, audio[0, : rate // 2].numpy(), rate)
    out = tmp_path / "w.mp4"
    assert cli(["gan", "walk", "dcgan_faces64", str(out), "--audio", str(wav), "--fps", "10", "--size", "64",
                "--progress", "none"]) == 0
    info = probe(out)
    assert info.frame_count == 5 and info.audio is not None
