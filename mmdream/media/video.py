"""Reading and writing video with PyAV: RGB ``uint8`` frames ``(H, W, 3)``, float audio ``(channels, samples)``.

Frames are read as a constant-rate sequence (tick ``i`` at ``i / fps`` seconds after the first frame shows the last
frame presented by then, like ``ffmpeg -vsync cfr``), so variable-frame-rate input still gives a regular sequence.
Audio times count from the first video frame (from the first sample in an audio-only file), so audio time ``t``
lines up with frame ``t * fps``. Everything streams: no function holds more than a frame or a packet of video.
"""

from __future__ import annotations

import functools
import heapq
import math
import numbers
import os
import re
from array import array
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import av
import cv2
import numpy as np
from av.video.reformatter import VideoReformatter

from mmdream.errors import MediaError, ParameterError
from mmdream.media.files import atomic_path, check_output, scratch_file
from mmdream.media.provenance import COMMENT_TAG
from mmdream.options import Options, option

PathLike = str | os.PathLike[str]

_CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
_LAYOUTS = {1: "mono", 2: "stereo", 3: "3.0", 4: "4.0", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}
_SEEK_MARGINS_S = (1, 10, None)  # seek this far before the wanted time; None: decode from the beginning
_TRUNCATION_S = 0.5  # a stream that decodes this much shorter than its header says is reported as truncated
_BT709 = 1  # AVCOL_SPC/PRI/TRC_BT709; AVCOL_RANGE_MPEG is also 1


@dataclass(frozen=True)
class AudioInfo:
    """The first audio stream of a file."""

    rate: int
    channels: int
    codec: str
    duration_s: float | None


@dataclass(frozen=True)
class VideoInfo:
    """The first video stream of a file; ``width`` x ``height`` is the display size (rotation applied)."""

    width: int
    height: int
    fps: float  # average frame rate
    frame_count: int  # frames of the constant-rate sequence read_frames yields at ``fps``
    duration_s: float
    rotation: int  # clockwise degrees to turn the coded picture for display: 0, 90, 180 or 270
    codec: str
    variable_fps: bool
    audio: AudioInfo | None


@dataclass(frozen=True)
class _Timing:
    """Exact timing of a video stream, in seconds on the stream's clock."""

    start: Fraction  # presentation time of the first frame
    duration: Fraction
    fps: Fraction
    variable: bool

    def ticks(self, fps: Fraction) -> int:
        """Frames of the constant-rate sequence at ``fps`` over the duration (rounded to nearest)."""
        return math.floor(self.duration * fps + Fraction(1, 2))


@dataclass(frozen=True)
class _AudioSource:
    """Where audio time 0 is and how long the stream is, for reading it in parts."""

    path: Path
    index: int
    rate: int
    layout: str
    channels: int
    codec: str
    origin: Fraction  # stream-clock seconds of audio time 0 (the first video frame, else the first sample)
    start: Fraction  # audio time of the first sample
    end: Fraction | None  # audio time at which the stream ends, if the container says


# ---------------------------------------------------------------------------------------------------- inputs


@contextmanager
def _open_input(path: Path) -> Iterator[Any]:
    """An open PyAV input container; PyAV's errors, raised while it is used, become MediaErrors naming ``path``."""
    if not path.is_file():
        raise MediaError(f"input video {path} does not exist")
    try:
        container = av.open(str(path), "r")
    except (av.FFmpegError, UnicodeDecodeError) as exc:
        raise MediaError(f"cannot read {path} as a video ({exc}); give an MP4, MOV, MKV or WebM file") from exc
    try:
        yield container
    except av.FFmpegError as exc:
        raise MediaError(f"{path} is corrupt or truncated ({exc}); re-download or re-export it") from exc
    finally:
        container.close()


def _video_stream(container: Any, path: Path) -> Any:
    """The first video stream that is not cover art."""
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    raise MediaError(f"{path} has no video stream; give a video file")


def _seconds(value: int | None, time_base: Fraction | None) -> Fraction | None:
    return None if value is None or time_base is None else value * time_base


def _tag(stream: Any, name: str) -> str | None:
    """A stream metadata value, whatever the case of its key (Matroska tags are upper case)."""
    return next((v for k, v in stream.metadata.items() if k.lower() == name), None)


def _stream_duration(stream: Any) -> Fraction | None:
    """Duration from the stream header, or from Matroska's ``DURATION`` tag (``HH:MM:SS.nnnnnnnnn``)."""
    if stream.duration is not None and stream.duration > 0:
        return _seconds(stream.duration, stream.time_base)
    tag = _tag(stream, "duration")
    if tag:
        try:
            h, m, s = tag.split(":")
            return int(h) * 3600 + int(m) * 60 + Fraction(s)
        except ValueError:
            return None
    return None


def _irregular(timestamps: Iterable[int]) -> bool:
    """True if the steps between sorted timestamps vary by more than rounding (2 % or one tick)."""
    steps = np.diff(np.sort(np.fromiter(timestamps, dtype=np.int64)))
    if steps.size < 2:
        return False
    median = float(np.median(steps))
    return bool(np.any(np.abs(steps - median) > max(1.0, 0.02 * median)))


def _timing(container: Any, stream: Any, path: Path) -> _Timing:
    """Start, duration, average rate and regularity, from the index where it is complete, else by demuxing."""
    tb = stream.time_base
    duration = _stream_duration(stream)
    entries = [e for e in stream.index_entries if not e.is_discard]
    if duration and stream.frames > 0 and len(entries) >= stream.frames:  # MP4/MOV: every sample is indexed
        if container.size > 0 and max(e.pos + e.size for e in entries) > container.size:
            raise MediaError(f"{path} is truncated: its index points past the end of the file; "
                             "re-download or re-export it")
        start = _seconds(stream.start_time, tb) or Fraction(0)
        variable = _irregular(e.timestamp for e in entries)
        frames = stream.frames
    else:  # Matroska, WebM, raw streams: scan packet timestamps (no decoding)
        pts, end = array("q"), None  # end: the latest pts + duration
        for packet in container.demux(stream):
            t = packet.pts if packet.pts is not None else packet.dts
            if packet.size == 0 or t is None:
                continue
            pts.append(t)
            if packet.duration:
                end = t + packet.duration if end is None else max(end, t + packet.duration)
        container.seek(0)
        if not pts:
            raise MediaError(f"{path} has a video stream without frames; give a video file")
        frames, last = len(pts), max(pts)
        if end is None or end <= last:  # no packet durations: the last frame lasts a typical step
            end = last + (int(np.median(np.diff(np.sort(np.asarray(pts))))) if frames > 1 else 0)
        start = min(pts) * tb
        variable = _irregular(pts)
        duration = end * tb - start
    if not duration or duration <= 0:
        raise MediaError(f"{path} has a video stream of unknown or zero duration; re-export it")
    fps = stream.average_rate or stream.guessed_rate or Fraction(frames) / duration
    return _Timing(start=start, duration=duration, fps=Fraction(fps), variable=variable)


def _rotation(container: Any, stream: Any) -> int:
    """Clockwise display rotation (0/90/180/270) from the first frame's display matrix, else the ``rotate`` tag."""
    frame = next(iter(container.decode(stream)), None)
    container.seek(0)
    degrees = -frame.rotation if frame is not None and frame.rotation else 0  # PyAV: counter-clockwise
    if not degrees:
        try:
            degrees = int(float(_tag(stream, "rotate") or 0))
        except ValueError:
            degrees = 0
    return (round(degrees / 90) * 90) % 360


def _audio_source(path: Path, container: Any) -> _AudioSource | None:
    streams = container.streams.audio
    if not streams:
        return None
    stream = streams[0]
    ctx = stream.codec_context
    videos = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
    if videos and videos[0].start_time is not None:
        origin = videos[0].start_time * videos[0].time_base
    else:
        origin = _seconds(stream.start_time, stream.time_base) or Fraction(0)
    duration = _stream_duration(stream)
    start = (_seconds(stream.start_time, stream.time_base) or Fraction(0)) - origin
    # an unordered layout ("2 channels", as WAV files have) is taken as the standard one of its channel count
    layout = _LAYOUTS.get(ctx.layout.nb_channels, ctx.layout.name) if ctx.layout.name.endswith("channels") \
        else ctx.layout.name
    return _AudioSource(path=path, index=stream.index, rate=ctx.sample_rate, layout=layout,
                        channels=ctx.layout.nb_channels, codec=ctx.name, origin=origin, start=start,
                        end=None if duration is None else start + duration)


def _require_audio(path: PathLike) -> _AudioSource:
    p = Path(path)
    with _open_input(p) as container:
        source = _audio_source(p, container)
    if source is None:
        raise MediaError(f"{p} has no audio stream; give a file with sound or leave the audio out")
    return source


def probe_audio(path: PathLike) -> AudioInfo:
    """Rate, channels, codec and length of the first audio stream of ``path`` (a sound or a film)."""
    source = _require_audio(path)
    return AudioInfo(rate=source.rate, channels=source.channels, codec=source.codec,
                     duration_s=None if source.end is None else float(source.end - source.start))


def probe(path: PathLike) -> VideoInfo:
    """Size, rate, length, rotation and codecs of the first video (and audio) stream of ``path``."""
    p = Path(path)
    with _open_input(p) as container:
        stream = _video_stream(container, p)
        timing = _timing(container, stream, p)
        rotation = _rotation(container, stream)
        source = _audio_source(p, container)
        width, height = stream.codec_context.width, stream.codec_context.height
    if not width or not height:
        raise MediaError(f"cannot read {p} as a video (its picture has no size); give an MP4, MOV, MKV or WebM file")
    if rotation in (90, 270):
        width, height = height, width
    audio = None
    if source is not None:
        audio = AudioInfo(rate=source.rate, channels=source.channels, codec=source.codec,
                          duration_s=None if source.end is None else float(source.end - source.start))
    return VideoInfo(width=width, height=height, fps=float(timing.fps), frame_count=timing.ticks(timing.fps),
                     duration_s=float(timing.duration), rotation=rotation, codec=stream.codec_context.name,
                     variable_fps=timing.variable, audio=audio)


# ---------------------------------------------------------------------------------------------------- frames


def _as_rate(fps: float | Fraction) -> Fraction:
    if isinstance(fps, bool) or not isinstance(fps, numbers.Real) or not 0 < fps < 1000:
        raise ParameterError(f"fps must be a number of frames per second in (0, 1000); got {fps!r}")
    return Fraction(fps).limit_denominator(1001)


def read_frames(path: PathLike, *, size: tuple[int, int] | None = None, start: int = 0, stop: int | None = None,
                fps: float | None = None) -> Iterator[np.ndarray]:
    """RGB frames ``(H, W, 3)`` uint8 of the constant-rate sequence at ``fps`` (default: the file's average rate).

    Yields frames ``[start, stop)`` of that sequence, rotation applied, resized (Lanczos) to ``size = (width,
    height)`` if given. Tick ``i`` shows the last frame presented by ``i / fps`` (rounded to the nearest tick), so
    frames are repeated or dropped to fill a regular grid. Seeks near ``start``. The file is checked when this is
    called; frames are decoded as the iterator is consumed.
    """
    p = Path(path)
    if size is not None and (len(size) != 2 or not all(isinstance(v, int) and v > 0 for v in size)):
        raise ParameterError(f"size must be (width, height) in pixels; got {size!r}")
    if not isinstance(start, int) or start < 0 or (stop is not None and (not isinstance(stop, int) or stop < 0)):
        raise ParameterError(f"start and stop must be frame indices >= 0; got start={start!r}, stop={stop!r}")
    with _open_input(p) as container:
        stream = _video_stream(container, p)
        timing = _timing(container, stream, p)
        rotation = _rotation(container, stream)
    rate = timing.fps if fps is None else _as_rate(fps)
    stop = timing.ticks(rate) if stop is None else min(stop, timing.ticks(rate))
    coded = None if size is None else (size[::-1] if rotation in (90, 270) else size)
    return _frames(p, timing, rate, start, stop, coded, rotation)


class _SeekMissed(Exception):
    """The first frame after a seek is already past the wanted tick; seek further back."""


def _frames(path: Path, timing: _Timing, fps: Fraction, start: int, stop: int,
            coded: tuple[int, int] | None, rotation: int) -> Iterator[np.ndarray]:
    if start >= stop:
        return
    for margin in _SEEK_MARGINS_S if start > 0 else (None,):
        with _open_input(path) as container:
            try:
                yield from _ticks(container, path, timing, fps, start, stop, coded, rotation, margin)
                return
            except _SeekMissed:
                continue


def _ticks(container: Any, path: Path, timing: _Timing, fps: Fraction, start: int, stop: int,
           coded: tuple[int, int] | None, rotation: int, margin: int | None) -> Iterator[np.ndarray]:
    stream = _video_stream(container, path)
    stream.thread_type = "AUTO"
    tb = stream.time_base
    step = 1 / timing.fps
    seeked = False
    if margin is not None:
        target = timing.start + start / fps - margin
        if target > timing.start:
            container.seek(math.floor(target / tb), stream=stream, backward=True)
            seeked = True
    reformatter = VideoReformatter()
    tick, pending, t = start, None, None  # every yield converts afresh: callers own (and may edit) each array
    for frame in container.decode(stream):
        t = frame.pts * tb if frame.pts is not None else (timing.start if t is None else t + step)
        slot = math.floor((t - timing.start) * fps + Fraction(1, 2))
        if pending is None and seeked and slot > tick:
            raise _SeekMissed
        while slot > tick:  # `frame` starts after this tick: show what was presented before it
            if pending is None:
                pending = frame  # ticks before the first frame show the first frame
            yield _to_rgb(pending, reformatter, coded, rotation)
            tick += 1
            if tick >= stop:
                return
        pending = frame
    if pending is None:
        raise MediaError(f"{path} has no decodable video frames; re-export it")
    shown_until = t + (pending.duration * tb if pending.duration else step)
    expected = timing.start + min(timing.duration, stop / fps)
    if shown_until < expected - max(Fraction(_TRUNCATION_S), 3 * step):
        raise MediaError(f"{path} ends at {float(t):.2f} s but says it lasts {float(timing.duration):.2f} s; "
                         "the file is truncated: re-download or re-export it")
    for _ in range(tick, stop):
        yield _to_rgb(pending, reformatter, coded, rotation)


def _to_rgb(frame: Any, reformatter: VideoReformatter, coded: tuple[int, int] | None, rotation: int) -> np.ndarray:
    """Decoded frame -> ``(H, W, 3)`` uint8 RGB, resized to ``coded`` (before rotation) and rotated for display."""
    options: dict[str, Any] = {"format": "rgb24", "src_color_range": frame.color_range or None}
    if coded is not None and coded != (frame.width, frame.height):
        options.update(width=coded[0], height=coded[1], interpolation="LANCZOS")
    rgb = reformatter.reformat(frame, **options).to_ndarray()
    if rotation == 90:
        rgb = np.rot90(rgb, k=-1)
    elif rotation == 180:
        rgb = rgb[::-1, ::-1]
    elif rotation == 270:
        rgb = np.rot90(rgb, k=1)
    return np.ascontiguousarray(rgb)


# ---------------------------------------------------------------------------------------------------- audio


def _audio_to_float(frame: Any, channels: int) -> np.ndarray:
    """Decoded audio frame -> float32 ``(channels, samples)``."""
    data = frame.to_ndarray()
    if not frame.format.is_planar:
        data = data.reshape(-1, channels).T
    kind = frame.format.name.rstrip("p")
    if kind == "u8":
        return (data.astype(np.float32) - 128.0) / 128.0
    if kind in ("s16", "s32", "s64"):
        return (data / float(2 ** (int(kind[1:]) - 1))).astype(np.float32)
    return data.astype(np.float32, copy=False)


def _check_span(start_s: float, duration_s: float | None) -> None:
    if not isinstance(start_s, numbers.Real) or not math.isfinite(start_s) or start_s < 0:
        raise ParameterError(f"audio start must be a number of seconds >= 0; got {start_s!r}")
    if duration_s is not None and (not isinstance(duration_s, numbers.Real) or not duration_s >= 0):
        raise ParameterError(f"audio duration must be a number of seconds >= 0; got {duration_s!r}")


def _decode_audio(source: _AudioSource, start_s: float, duration_s: float | Fraction | None) -> Iterator[np.ndarray]:
    """Float32 chunks ``(channels, n)`` of audio time ``[start_s, start_s + duration_s)``, ending with the stream."""
    first = round(Fraction(start_s) * source.rate)
    last = None if duration_s is None else first + round(Fraction(duration_s) * source.rate)
    if source.end is not None:
        end = round(source.end * source.rate)
        last = end if last is None else min(last, end)
    if last is not None and last <= first:
        return
    for margin in _SEEK_MARGINS_S if first > source.rate else (None,):
        with _open_input(source.path) as container:
            try:
                yield from _audio_chunks(container, source, first, last, margin)
                return
            except _SeekMissed:
                continue


def _audio_chunks(container: Any, source: _AudioSource, first: int, last: int | None,
                  margin: int | None) -> Iterator[np.ndarray]:
    stream = container.streams[source.index]
    tb = stream.time_base
    seeked = False
    if margin is not None:
        target = source.origin + Fraction(first, source.rate) - margin
        if target > source.origin + source.start:
            container.seek(math.floor(target / tb), stream=stream, backward=True)
            seeked = True
    position = None  # sample index (audio time * rate) of the next decoded sample
    for frame in container.decode(stream):
        if position is None:  # samples are counted on from the first frame, like ffmpeg without -async
            at = None if frame.pts is None else round((frame.pts * tb - source.origin) * source.rate)
            if seeked and (at is None or at > first):
                raise _SeekMissed
            if seeked and tb > Fraction(1, source.rate) and frame.samples:  # e.g. Matroska's milliseconds:
                start = round(source.start * source.rate)  # snap to the grid of fixed-size frames (AAC: 1024)
                at = start + round(Fraction(at - start, frame.samples)) * frame.samples
            # Without a seek, start at the stream's start: Matroska labels AAC frames a frame late after the priming.
            position = at if seeked else round(source.start * source.rate)
        data = _audio_to_float(frame, source.channels)
        n = data.shape[1]
        lo, hi = max(first - position, 0), n if last is None else min(n, last - position)
        if hi > lo:
            yield np.clip(data[:, lo:hi], -1.0, 1.0)
        position += n
        if last is not None and position >= last:
            return
    if last is not None and source.end is not None and (position or 0) < last - _TRUNCATION_S * source.rate:
        raise MediaError(f"{source.path} has {(position or 0) / source.rate:.2f} s of audio but says it lasts "
                         f"{float(source.end):.2f} s; the file is truncated: re-download or re-export it")


def read_audio(path: PathLike, *, start_s: float = 0.0, duration_s: float | None = None) -> tuple[np.ndarray, int]:
    """Float32 audio ``(channels, samples)`` in [-1, 1] and its sample rate, at the stream's own rate and channels.

    ``start_s`` counts from the first video frame (or the first sample of an audio-only file); ``duration_s``
    defaults to the rest of the stream.
    """
    rate, channels, parts = iter_audio(path, start_s=start_s, duration_s=duration_s)
    chunks = list(parts)
    if not chunks:
        return np.zeros((channels, 0), np.float32), rate
    return np.concatenate(chunks, axis=1), rate


def iter_audio(path: PathLike, *, start_s: float = 0.0,
               duration_s: float | None = None) -> tuple[int, int, Iterator[np.ndarray]]:
    """:func:`read_audio` as it decodes: the rate, the channel count and float32 chunks ``(channels, k)`` (one per
    decoded frame). A missing file or stream raises at once; corruption when it is met."""
    _check_span(start_s, duration_s)
    source = _require_audio(path)
    return source.rate, source.channels, _decode_audio(source, start_s, duration_s)


# ---------------------------------------------------------------------------------------------------- writing


def even_size(width: int, height: int) -> tuple[int, int]:
    """``(width, height)`` rounded down to even numbers, as H.264 in yuv420p needs."""
    return width - width % 2, height - height % 2


def check_video_suffix(path: PathLike) -> Path:
    """The path, if its suffix names a container we write (.mp4, .m4v, .mov, .mkv); else a MediaError."""
    _container_format(Path(path))
    return Path(path)


def _container_format(path: Path) -> str:
    try:
        return _CONTAINERS[path.suffix.lower()]
    except KeyError:
        raise MediaError(f"output {path} has no video suffix; use .mp4, .mkv or .mov") from None


def _check_pcm(audio: tuple[np.ndarray, int]) -> tuple[np.ndarray, int]:
    """Validate ``(samples (channels, n) float, rate)``; a 1-D array is mono."""
    try:
        samples, rate = audio
    except (TypeError, ValueError):
        raise ParameterError("audio must be a tuple (samples, rate) with samples of shape (channels, n)") from None
    samples = np.asarray(samples)
    if samples.ndim == 1:
        samples = samples[None]
    if samples.ndim != 2 or not 1 <= samples.shape[0] <= 8 or not np.issubdtype(samples.dtype, np.floating):
        raise ParameterError(f"audio samples must be float (channels, n) with 1 to 8 channels; got "
                             f"{samples.dtype} {samples.shape}")
    if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)) or not 1000 <= rate <= 384000:
        raise ParameterError(f"audio rate must be a whole number of samples per second; got {rate!r}")
    if not np.all(np.isfinite(samples)):
        raise ParameterError("audio samples contain NaN or infinity")
    return samples, int(rate)


def _check_audio_args(audio_from: PathLike | None, audio_start_s: float, audio: tuple[np.ndarray, int] | None
                      ) -> tuple[_AudioSource | None, tuple[np.ndarray, int] | None]:
    """The audio source (checked to have sound) and the validated samples; at most one of them."""
    _check_span(audio_start_s, None)
    if audio_from is not None and audio is not None:
        raise ParameterError("give either audio_from (a media file) or audio (samples, rate), not both")
    source = None if audio_from is None else _require_audio(audio_from)
    return source, None if audio is None else _check_pcm(audio)


def _muxer_options(fmt: str) -> dict[str, str]:
    """MP4/MOV: the index first (streams start at once); Matroska: no random segment ids (equal inputs, equal
    bytes)."""
    return {"movflags": "+faststart"} if fmt in ("mp4", "mov") else {"fflags": "+bitexact"}


@contextmanager
def _open_output(path: Path, target: Path, fmt: str, provenance: str | None = None) -> Iterator[Any]:
    """An output container writing ``path`` (``provenance``: text for its comment tag); PyAV's errors become
    MediaErrors naming ``target``."""
    try:
        with av.open(str(path), "w", format=fmt, options=_muxer_options(fmt)) as container:
            if provenance is not None:
                container.metadata[COMMENT_TAG] = provenance
            yield container
    except av.FFmpegError as exc:
        raise MediaError(f"cannot write {target} ({exc}); check the disk and the output name") from exc


def _packet_time(packet: Any) -> Fraction:
    t = packet.dts if packet.dts is not None else packet.pts
    return t * packet.time_base


def _copy_packets(container: Any, stream: Any, out_stream: Any, shift: int = 0) -> Iterator[Any]:
    """Packets of ``stream`` retargeted to ``out_stream``, timestamps moved by ``shift`` (stream time base)."""
    for packet in container.demux(stream):
        if packet.size == 0 or (packet.dts is None and packet.pts is None):
            continue
        if shift:
            packet.pts = None if packet.pts is None else packet.pts + shift
            packet.dts = None if packet.dts is None else packet.dts + shift
        packet.stream = out_stream
        yield packet


def _add_aac(container: Any, rate: int, layout: str) -> Any:
    stream = container.add_stream("aac", rate=rate, layout=layout)
    stream.bit_rate = min(96_000 * av.AudioLayout(layout).nb_channels, 512_000)
    return stream


def _encode_pcm(stream: Any, chunks: Iterable[np.ndarray], rate: int, layout: str, start: int = 0) -> Iterator[Any]:
    """AAC packets of float chunks ``(channels, n)`` whose first sample is at ``start / rate`` s (1024 at a time)."""
    size, done = 1024, start
    pending = np.zeros((av.AudioLayout(layout).nb_channels, 0), np.float32)
    for chunk in [*chunks, None]:
        if chunk is not None:
            pending = np.concatenate([pending, chunk.astype(np.float32)], axis=1)
        while pending.shape[1] >= size or (chunk is None and pending.shape[1]):
            part, pending = pending[:, :size], pending[:, size:]
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(np.clip(part, -1, 1)), format="fltp",
                                               layout=layout)
            frame.sample_rate, frame.pts, frame.time_base = rate, done, Fraction(1, rate)
            done += part.shape[1]
            yield from stream.encode(frame)
    yield from stream.encode(None)


def _remux(video: Path, dst: Path, target: Path, source: _AudioSource | None, audio_start_s: float,
           pcm: tuple[np.ndarray, int] | None, provenance: str | None = None) -> None:
    """Copy the first video stream of ``video`` into ``dst`` with the audio of ``source`` or ``pcm``.

    The audio stream is copied untouched when it starts at 0 and ends within one frame of the video; otherwise
    it is cut to the video's length and encoded as AAC.
    """
    with ExitStack() as stack:
        vin = stack.enter_context(_open_input(video))
        vstream = _video_stream(vin, video)
        timing = _timing(vin, vstream, video)
        out = stack.enter_context(_open_output(dst, target, _container_format(target), provenance))
        vout = out.add_stream_from_template(vstream)
        streams = [_copy_packets(vin, vstream, vout)]
        if source is not None and source.end is not None and audio_start_s >= source.end:
            source = None  # the audio ends before the wanted start: video only
        if pcm is not None and round(audio_start_s * pcm[1]) >= pcm[0].shape[1]:
            pcm = None
        if source is not None:
            fits = source.end is not None and source.end <= timing.duration + 1 / timing.fps
            # MP4 lists PCM among its codecs but cannot write it (a WAV soundtrack): those are encoded as AAC
            copyable = source.codec in out.supported_codecs and not (
                _container_format(target) == "mp4" and source.codec.startswith("pcm_"))
            if audio_start_s == 0 and fits and copyable:
                ain = stack.enter_context(_open_input(source.path))
                astream = ain.streams[source.index]
                aout = out.add_stream_from_template(astream)
                shift = round((timing.start - source.origin) / astream.time_base)
                streams.append(_copy_packets(ain, astream, aout, shift))
            else:
                aout = _add_aac(out, source.rate, source.layout)
                chunks = _decode_audio(source, audio_start_s, timing.duration)
                streams.append(_encode_pcm(aout, chunks, source.rate, source.layout,
                                           round(timing.start * source.rate)))
        elif pcm is not None:
            samples, rate = pcm
            first = round(audio_start_s * rate)
            samples = samples[:, first:first + round(timing.duration * rate)]
            layout = _LAYOUTS[samples.shape[0]]
            aout = _add_aac(out, rate, layout)
            streams.append(_encode_pcm(aout, [samples], rate, layout, round(timing.start * rate)))
        for packet in heapq.merge(*streams, key=_packet_time):
            out.mux(packet)


def mux(video_path: PathLike, output: PathLike, *, audio_from: PathLike | None = None, audio_start_s: float = 0.0,
        audio: tuple[np.ndarray, int] | None = None, provenance: str | None = None) -> Path:
    """Write ``output``: the first video stream of ``video_path`` (copied, not re-encoded) with new audio.

    Audio as in :class:`VideoWriter`: the first audio stream of ``audio_from`` from ``audio_start_s`` on, or
    ``audio = (samples (channels, n), rate)`` encoded as AAC; none of either: video only. ``provenance``: text for
    the container's comment tag. Written atomically.
    """
    video = Path(video_path)
    inputs = [video] if audio_from is None else [video, Path(audio_from)]
    target = check_output(output, *inputs)
    _container_format(target)
    source, pcm = _check_audio_args(audio_from, audio_start_s, audio)
    with atomic_path(target) as tmp:
        _remux(video, tmp, target, source, audio_start_s, pcm, provenance)
    return target


@functools.cache
def _x264_cpu_options() -> dict[str, str]:
    """x264 options that keep its output a function of its input: on CPUs with AVX-512, x264's AVX-512 code
    (B-frames' macroblock-tree lookahead) reads memory it did not write, so equal frames encoded twice in one
    process gave different films; its AVX2 code is bit-exact with its C code. Any AVX-512 CPU has AVX2, FMA3 and
    BMI2, which x264's ``AVX2`` level names. Other CPUs keep x264's own detection."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: no flags to read
        return {}
    return {"x264-params": "asm=AVX2"} if re.search(r"^flags\s*:.*\bavx512f\b", cpuinfo, re.M) else {}


@dataclass(frozen=True)
class EncodeParams(Options):
    """How films are encoded (H.264): the one declaration of ``crf`` and ``chroma_blur`` that film, zoom and walk
    settings share."""

    crf: int = option(18, "H.264 quality: 0 lossless .. 51 worst", ge=0, le=51)
    chroma_blur: float = option(1.5, "blur (Gaussian sigma) of the colour planes before H.264's 4:2:0 subsampling, "
                                     "so that fine colour detail does not crawl in 2x2 blocks; 0: none", ge=0.0,
                                le=8.0, unit="pixels")


_LUMA_709 = (0.2126, 0.7152, 0.0722)  # BT.709, as the films are tagged


def soften_chroma(frame: np.ndarray, sigma: float) -> np.ndarray:
    """``frame`` ``(H, W, 3)`` uint8 RGB with its colour planes (BT.709 Cb, Cr) blurred by a Gaussian of ``sigma``
    pixels and its luma kept. Before 4:2:0 subsampling: a dream's pixel-scale colour detail otherwise shows as
    2x2 blocks that crawl from frame to frame on players (and toolkits) that repeat each colour sample, which
    doubled the measured flicker excess of films on scene-cut clips (bench/figures/quality_table.md). Deterministic
    on one machine (films are compared bit for bit)."""
    if sigma <= 0:
        return frame
    rgb = frame.astype(np.float32)
    luma = _LUMA_709[0] * rgb[..., 0] + _LUMA_709[1] * rgb[..., 1] + _LUMA_709[2] * rgb[..., 2]
    size = 2 * max(1, math.ceil(3 * sigma)) + 1
    cb, cr = (cv2.GaussianBlur(np.ascontiguousarray(diff), (size, size), sigma, borderType=cv2.BORDER_REPLICATE)
              for diff in (rgb[..., 2] - luma, rgb[..., 0] - luma))  # B - Y and R - Y: Cb and Cr up to scale
    r, b = luma + cr, luma + cb
    g = (luma - _LUMA_709[0] * r - _LUMA_709[2] * b) / _LUMA_709[1]
    return np.clip(np.rint(np.stack([r, g, b], axis=-1)), 0, 255).astype(np.uint8)


class VideoWriter:
    """Encode RGB frames as H.264 (libx264, yuv420p, CRF) into .mp4, .mkv or .mov, atomically; the colour planes
    are first blurred by ``chroma_blur`` pixels (:func:`soften_chroma`).

    Use as a context manager; the file appears at ``path`` only when the block ends without an error. Audio: the
    first audio stream of ``audio_from`` (stream copy when it fits the video, else cut from ``audio_start_s`` and
    encoded as AAC), or ``audio = (samples (channels, n), rate)`` encoded as AAC; either is cut to the video.
    ``provenance``: a record text for the container's comment tag (:mod:`mmdream.media.provenance`).
    """

    def __init__(self, path: PathLike, *, fps: float, crf: int = EncodeParams.crf, preset: str = "medium",
                 audio_from: PathLike | None = None, audio_start_s: float = 0.0,
                 audio: tuple[np.ndarray, int] | None = None, provenance: str | None = None,
                 chroma_blur: float = EncodeParams.chroma_blur) -> None:
        inputs = [] if audio_from is None else [audio_from]
        self.path = check_output(path, *inputs)
        self._format = _container_format(self.path)
        self._fps = _as_rate(fps)
        EncodeParams(crf, chroma_blur).validate()
        if preset not in _PRESETS:
            raise ParameterError(f"unknown x264 preset {preset!r}; available: {', '.join(_PRESETS)}")
        self._crf, self._preset, self._chroma_blur = crf, preset, chroma_blur
        self._source, self._pcm = _check_audio_args(audio_from, audio_start_s, audio)
        self._audio_start_s = audio_start_s
        self._provenance = provenance
        self._stack: ExitStack | None = None
        self._container: Any = None
        self._stream: Any = None
        self._shape: tuple[int, ...] | None = None
        self._count = 0

    def __enter__(self) -> VideoWriter:
        with ExitStack() as stack:
            self._final = stack.enter_context(atomic_path(self.path))
            has_audio = self._source is not None or self._pcm is not None
            self._video = stack.enter_context(scratch_file(self.path.suffix, beside=self.path)) if has_audio else self._final
            self._stack = stack.pop_all()
        return self

    def write(self, frame: np.ndarray) -> None:
        """Append one frame ``(H, W, 3)`` uint8 RGB; odd sizes lose their last row or column."""
        if self._stack is None:
            raise RuntimeError("use VideoWriter in a with block")
        if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ParameterError(f"a video frame must be uint8 (H, W, 3) RGB; got "
                                 f"{getattr(frame, 'dtype', type(frame).__name__)} {getattr(frame, 'shape', '')}")
        if self._shape is None:
            self._open(frame.shape)
        elif frame.shape != self._shape:
            raise MediaError(f"frame {self._count} of {self.path} is {frame.shape[1]}x{frame.shape[0]} but the first "
                             f"was {self._shape[1]}x{self._shape[0]}; resize every frame to one size")
        width, height = self._stream.width, self._stream.height
        frame = soften_chroma(frame[:height, :width], self._chroma_blur)
        image = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        yuv = image.reformat(format="yuv420p", dst_colorspace=_BT709, dst_color_range=_BT709)
        yuv.pts, yuv.time_base = self._count, 1 / self._fps
        try:
            self._container.mux(self._stream.encode(yuv))
        except av.FFmpegError as exc:
            raise MediaError(f"cannot encode frame {self._count} of {self.path} ({exc})") from exc
        self._count += 1

    def _open(self, shape: tuple[int, ...]) -> None:
        width, height = even_size(shape[1], shape[0])
        if width == 0 or height == 0:
            raise MediaError(f"frames of {shape[1]}x{shape[0]} pixels are too small for H.264; give at least 2x2")
        final = self._video is self._final  # else a video-only scratch file, remuxed with the audio at the end
        try:
            options = _muxer_options(self._format) if final else {}
            self._container = av.open(str(self._video), "w", format=self._format, options=options)
            if final and self._provenance is not None:
                self._container.metadata[COMMENT_TAG] = self._provenance
            stream = self._container.add_stream("libx264", rate=self._fps,
                                                options={"crf": str(self._crf), "preset": self._preset,
                                                         **_x264_cpu_options()})
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            ctx = stream.codec_context
            ctx.colorspace = ctx.color_primaries = ctx.color_trc = ctx.color_range = _BT709
        except av.FFmpegError as exc:
            raise MediaError(f"cannot start writing {self.path} ({exc})") from exc
        self._stream, self._shape = stream, shape

    def _finish(self) -> None:
        if self._count == 0:
            raise MediaError(f"no frames were written to {self.path}; nothing was saved")
        try:
            self._container.mux(self._stream.encode(None))
            self._container.close()
        except av.FFmpegError as exc:
            raise MediaError(f"cannot finish writing {self.path} ({exc})") from exc
        self._container = None
        if self._video is not self._final:
            _remux(self._video, self._final, self.path, self._source, self._audio_start_s, self._pcm,
                   self._provenance)

    def _abandon(self) -> None:
        if self._container is not None:
            try:
                self._container.close()
            except av.FFmpegError:
                pass
            self._container = None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        stack, self._stack = self._stack, None
        assert stack is not None
        if exc_type is None:
            try:
                self._finish()
            except BaseException as error:
                self._abandon()
                stack.__exit__(type(error), error, error.__traceback__)  # removes the temporary files
                raise
        else:
            self._abandon()
        stack.__exit__(exc_type, exc, tb)  # renames onto the target only when there was no error
