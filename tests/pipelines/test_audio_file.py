"""Streaming audio dreams of files: the same result as the in-memory dream, block by block, in memory that does not
grow with the file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

import mmdream.pipelines.audio_file
from mmdream.pipelines.audio_file import dream_audio_file
from mmdream.backbones.base import Backbone
from mmdream.dream.audio import AudioDreamParams
from mmdream.media.audio import load_audio, save_audio
from mmdream.ops.loudness import PEAK
from mmdream.pipelines.audio import dream_audio

# Two segments of 1 s sharing 0.25 s on clips of 1.5-2 s; one cheap step of one warp is enough to compare paths.
TWO_SEGMENTS = AudioDreamParams(steps=1, warps=1, step_size=0.3, segment_s=1.0, overlap_s=0.25)
LSB = 2.0**-23  # one step of the 24-bit output


def chirp_16k(path: Path, media_dir: Path) -> None:
    """1.5 s of a sweep at the network's rate, mono float WAV: no resampling either way."""
    t = np.arange(24_000) / 16000
    soundfile.write(str(path), 0.4 * np.sin(2 * np.pi * (200 * t + 600 * t * t)), 16000, subtype="FLOAT")


def loud_stereo(path: Path, media_dir: Path) -> None:
    """1.5 s of the amen break (44.1 kHz stereo, peaks at full scale), as FLAC: the limiter has work to do."""
    wave, rate = load_audio(media_dir / "audio" / "music_loop_amen_full.wav")
    soundfile.write(str(path), wave[:, :rate * 3 // 2].t().numpy(), rate, subtype="PCM_24")


@pytest.mark.parametrize("make,name", [(chirp_16k, "chirp.wav"), (loud_stereo, "amen.flac")])
def test_streamed_file_dream_equals_the_in_memory_dream(make, name: str, yamnet: Backbone, tmp_path: Path,
                                                        media_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / name
    make(source, media_dir)
    before = source.read_bytes()
    wave, rate = load_audio(source)
    expected = tmp_path / "expected.wav"
    save_audio(expected, dream_audio(wave, rate, yamnet, "Bark", TWO_SEGMENTS), rate)

    monkeypatch.setattr(mmdream.pipelines.audio_file, "BLOCK", 5000)  # many blocks: the limiter's context crosses them
    out = tmp_path / "out.wav"
    assert dream_audio_file(source, out, yamnet, "Bark", TWO_SEGMENTS) == str(out)
    got, got_rate = load_audio(out)
    want, _ = load_audio(expected)
    assert got_rate == rate and got.shape == wave.shape
    # Measured: identical after 24-bit PCM (the float sums of the levels differ by ~1e-16 relative).
    assert float((got - want).abs().max()) <= LSB
    assert float((got - wave).square().mean().sqrt()) > 0.01 * float(wave.square().mean().sqrt())  # it dreamed
    if name == "amen.flac":
        assert float(got.abs().max()) > 0.99 and float(got.abs().max()) <= PEAK + LSB  # the limiter worked
    assert source.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, "expected.wav", "out.wav"])


def _peak_rss_mb(args: list[str], weights_dir: Path) -> float:
    """Peak RSS (MB) of ``mmdream`` run with ``args`` in a fresh process."""
    proc = subprocess.Popen([sys.executable, "-m", "mmdream.cli", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env={**os.environ, "MMDREAM_WEIGHTS": str(weights_dir)})
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, proc.stderr.read().decode() if proc.stderr else ""
    return usage.ru_maxrss / 1024


def test_memory_does_not_grow_with_the_length(tmp_path: Path, weights_dir: Path) -> None:
    """`mmdream audio` on 2 min of 44.1 kHz stereo takes no more memory than on 20 s. With 0 steps (of the wave
    domain: no work per segment): the dream's own memory is one segment's batch whatever the length
    (dream_segments); what could grow with the clip is the decoding, resampling, joining, levelling and writing
    around it, and that is what this measures."""
    rss = {}
    g = np.random.default_rng(0)
    for seconds in (20, 120):
        track = tmp_path / f"noise-{seconds}.wav"
        with soundfile.SoundFile(str(track), "w", 44100, 2, "PCM_16") as f:
            for _ in range(seconds // 10):
                f.write(0.05 * g.standard_normal((441_000, 2)))
        rss[seconds] = _peak_rss_mb(["audio", str(track), str(tmp_path / "out.wav"), "--steps", "0",
                                     "--domain", "wave", "--progress", "none"], weights_dir)
        assert soundfile.info(str(tmp_path / "out.wav")).frames == seconds * 44100
    # Measured: streaming 293 -> 295 MB (allocator noise is up to +-20 MB); the in-memory path (load_audio,
    # dream_audio, save_audio) 535 -> 855 MB: the clip, its 16 kHz copy and the float64 copies of the levelling.
    assert rss[120] - rss[20] < 60, rss
