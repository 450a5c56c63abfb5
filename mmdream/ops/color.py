"""Colour transfer between RGB images in [0, 1], shape ``(..., 3, H, W)``."""

from __future__ import annotations

import torch

_RGB_TO_YCBCR = torch.tensor([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])


def rgb_to_ycbcr(x: torch.Tensor) -> torch.Tensor:
    m = _RGB_TO_YCBCR.to(x)
    return torch.einsum("ij,...jhw->...ihw", m, x)


def ycbcr_to_rgb(x: torch.Tensor) -> torch.Tensor:
    m = torch.linalg.inv(_RGB_TO_YCBCR.double()).to(x)
    return torch.einsum("ij,...jhw->...ihw", m, x)


def transfer_luminance(result: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """The luminance of ``result`` with the chroma (Cb, Cr) of ``source``: the dream's forms, the source's colours."""
    y = rgb_to_ycbcr(result)[..., :1, :, :]
    cbcr = rgb_to_ycbcr(source)[..., 1:, :, :]
    return ycbcr_to_rgb(torch.cat([y, cbcr], dim=-3)).clamp(0, 1)


def match_histograms(x: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Per-channel exact histogram matching of ``x`` to ``reference`` (sizes may differ)."""
    out = torch.empty_like(x)
    xs = x.reshape(-1, x.shape[-2] * x.shape[-1])
    rs = reference.reshape(-1, reference.shape[-2] * reference.shape[-1])
    for c in range(xs.shape[0]):
        order = xs[c].argsort()
        ref_sorted = rs[c].sort().values
        q = torch.linspace(0, ref_sorted.numel() - 1, xs.shape[1], device=x.device)
        lo = q.floor().long()
        hi = q.ceil().long()
        values = torch.lerp(ref_sorted[lo], ref_sorted[hi], (q - lo).to(x.dtype))
        out.view(-1, xs.shape[1])[c, order] = values
    return out


def preserve_colors(result: torch.Tensor, source: torch.Tensor, method: str) -> torch.Tensor:
    """Apply colour preservation ``none``, ``luminance`` or ``histogram`` (shapes equal)."""
    if method == "none":
        return result
    if method == "luminance":
        return transfer_luminance(result, source)
    if method == "histogram":
        return match_histograms(result, source)
    raise ValueError(f"unknown colour preservation {method!r}")
