"""Segmenting long signals ``(..., time)`` and joining processed segments with raised-cosine crossfades.

>>> plan = plan_segments(n, segment=160_000, overlap=16_000)          # [(start, stop), ...], consecutive ones
>>> pieces = [process(x[..., a:b]) for a, b in plan]                  # share exactly `overlap` samples
>>> y = overlap_add(pieces, n, 16_000)                                # == x exactly when process is the identity
>>> for part in overlap_add_stream(iter(pieces), n, 16_000): ...     # the same y, stretch by stretch

The join is a chain of crossfades: over each shared stretch the earlier piece fades out and the later one fades in
with complementary raised-cosine (``sin²``/``cos²``) weights, so the weights of all pieces sum to one at every
sample. It is computed as ``y = a + w (b - a)``, so identical pieces come back bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence

import torch

from mmdream.errors import ParameterError

__all__ = ["plan_segments", "overlap_add", "overlap_add_stream", "segment_weights", "fade_in"]

Segment = tuple[int, int]


def _check_sizes(n_samples: int, segment: int, overlap: int) -> None:
    for name, value in (("n_samples", n_samples), ("segment", segment), ("overlap", overlap)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise ParameterError(f"{name} must be an integer number of samples; got {value!r}")
    if n_samples < 0:
        raise ParameterError(f"n_samples must be >= 0; got {n_samples}")
    if segment <= 0:
        raise ParameterError(f"segment must be a positive number of samples; got {segment}")
    if not 0 <= overlap < segment:
        raise ParameterError(f"overlap must be at least 0 and shorter than the segment ({segment}); got {overlap}")


def plan_segments(n_samples: int, segment: int, overlap: int) -> list[Segment]:
    """Segments ``[(start, stop)]`` of at most ``segment`` samples covering ``[0, n_samples)``.

    A clip no longer than ``segment`` is one segment. Otherwise the fewest segments are used; each one after the
    first starts exactly ``overlap`` samples before the previous one stops, and the starts are spread evenly, so
    the segments have (nearly) equal lengths and the last stops at ``n_samples``.
    """
    _check_sizes(n_samples, segment, overlap)
    if n_samples <= segment:
        return [(0, n_samples)]
    span = n_samples - overlap  # the owned parts (segment minus its trailing overlap) tile [0, span)
    count = math.ceil(span / (segment - overlap))
    bounds = [round(i * span / count) for i in range(count + 1)]
    return [(a, b + overlap) for a, b in zip(bounds, bounds[1:])]


def fade_in(length: int, like: torch.Tensor | None = None) -> torch.Tensor:
    """Raised-cosine fade-in of ``length`` samples, ``sin²(π/2 · (t + ½) / length)``: never 0 or 1, and
    ``fade_in(n) + fade_in(n).flip(0) == 1`` (complementary crossfade weights)."""
    dtype = like.dtype if like is not None and like.is_floating_point() else torch.float32
    device = like.device if like is not None else None
    t = (torch.arange(length, dtype=torch.float64) + 0.5) / max(length, 1)
    return torch.sin(t * (math.pi / 2)).square().to(device=device, dtype=dtype)


def _starts(lengths: Sequence[int], n_samples: int, overlap: int) -> list[int]:
    if not lengths:
        raise ParameterError("overlap_add needs at least one piece")
    if overlap < 0:
        raise ParameterError(f"overlap must be >= 0; got {overlap}")
    starts = [0]
    for length in lengths[:-1]:
        if length <= overlap:
            raise ParameterError(f"a piece of {length} samples cannot overlap the next by {overlap}")
        starts.append(starts[-1] + length - overlap)
    if starts[-1] + lengths[-1] != n_samples:
        raise _coverage_error(lengths, overlap, starts[-1] + lengths[-1], n_samples)
    return starts


def _coverage_error(lengths: Sequence[int], overlap: int, covered: int, n_samples: int) -> ParameterError:
    return ParameterError(
        f"pieces of lengths {list(lengths)} overlapping by {overlap} cover {covered} samples, not {n_samples}; "
        f"pass the pieces of plan_segments({n_samples}, segment, {overlap}) in order"
    )


def overlap_add(pieces: Sequence[torch.Tensor], n_samples: int, overlap: int) -> torch.Tensor:
    """Join ``pieces`` ``(..., length_i)``, in the order and lengths of :func:`plan_segments`, into
    ``(..., n_samples)``.

    Over the ``overlap`` samples two neighbours share, the result crossfades from the earlier piece to the later
    one with raised-cosine weights (see :func:`fade_in`); elsewhere it is the piece that covers the sample. The
    leading dims of all pieces must agree; the result takes the first piece's device and dtype.
    """
    starts = _starts([p.shape[-1] for p in pieces], n_samples, overlap)
    first = pieces[0]
    out = first.new_empty((*first.shape[:-1], n_samples))
    ramp = fade_in(overlap, first)
    done = 0  # out[..., :done] holds the join of the pieces so far
    for start, piece in zip(starts, pieces):
        if piece.shape[:-1] != first.shape[:-1]:
            raise ParameterError(f"pieces differ in their leading dims: {tuple(first.shape)} vs {tuple(piece.shape)}")
        piece = piece.to(out)
        shared = done - start  # == overlap except for the first piece
        if shared > 0:
            a = out[..., start:done]
            out[..., start:done] = a + ramp * (piece[..., :shared] - a)
        out[..., max(done, start):start + piece.shape[-1]] = piece[..., max(shared, 0):]
        done = start + piece.shape[-1]
    return out


def overlap_add_stream(pieces: Iterable[torch.Tensor], n_samples: int, overlap: int) -> Iterator[torch.Tensor]:
    """:func:`overlap_add` of ``pieces`` taken one at a time: yields consecutive finished stretches ``(..., k)``
    whose concatenation equals ``overlap_add(list(pieces), n_samples, overlap)`` bit for bit.

    A stretch is yielded as soon as no later piece can reach it (before the next piece's start), so at most one
    piece is held: memory is bounded by the segment, not the clip. Bad lengths raise as they show up.
    """
    if overlap < 0:
        raise ParameterError(f"overlap must be >= 0; got {overlap}")
    held: torch.Tensor | None = None  # the join over [start of the last piece, done): the next piece may blend in
    ramp = torch.empty(0)
    lengths: list[int] = []
    done = 0
    for piece in pieces:
        length = piece.shape[-1]
        if held is None:
            held, ramp, done = piece, fade_in(overlap, piece), length
        else:
            if piece.shape[:-1] != held.shape[:-1]:
                raise ParameterError(
                    f"pieces differ in their leading dims: {tuple(held.shape)} vs {tuple(piece.shape)}")
            if lengths[-1] <= overlap:
                raise ParameterError(f"a piece of {lengths[-1]} samples cannot overlap the next by {overlap}")
            if length < overlap:
                raise _coverage_error([*lengths, length], overlap, done - overlap + length, n_samples)
            piece = piece.to(held)
            cut = held.shape[-1] - overlap
            yield held[..., :cut]
            a = held[..., cut:]
            held = torch.cat([a + ramp * (piece[..., :overlap] - a), piece[..., overlap:]], dim=-1)
            done += length - overlap
        lengths.append(length)
        if done > n_samples:
            raise _coverage_error(lengths, overlap, done, n_samples)
    if held is None:
        raise ParameterError("overlap_add needs at least one piece")
    if done != n_samples:
        raise _coverage_error(lengths, overlap, done, n_samples)
    yield held


def segment_weights(segments: Sequence[Segment], n_samples: int, overlap: int,
                    dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Weight ``(len(segments), n_samples)`` each segment gets in :func:`overlap_add`; the rows sum to one."""
    lengths = [b - a for a, b in segments]
    eye = [[torch.full((length,), float(i == j), dtype=dtype) for i, length in enumerate(lengths)]
           for j in range(len(segments))]
    return torch.stack([overlap_add(row, n_samples, overlap) for row in eye])
