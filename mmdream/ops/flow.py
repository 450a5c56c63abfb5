"""Optical flow between frames, backward warping, forward-backward consistency (occlusion) masks, scene cuts.

Conventions: frames are RGB ``(3, H, W)`` in [0, 1]; a flow ``(2, H, W)`` holds (dx, dy) in pixels, and
``flow(a, b)`` satisfies ``a(p) ≈ b(p + flow(p))``. To carry frame t-1's content to frame t, take the flow from
t to t-1 (backward flow) and :func:`warp` frame t-1 with it. Flow is estimated with OpenCV (DIS or Farneback) on
8-bit grey images; everything else is plain PyTorch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from mmdream.errors import ParameterError

FLOW_METHODS = ("dis", "farneback", "none")
MIN_FLOW_SIDE = 16  # pixels: OpenCV's DIS needs at least this on each side


def _grey_u8(frame: torch.Tensor) -> np.ndarray:
    """``(3, H, W)`` RGB in [0, 1] -> ``(H, W)`` uint8 luma (BT.601) for OpenCV."""
    w = torch.tensor([0.299, 0.587, 0.114], dtype=frame.dtype, device=frame.device).view(3, 1, 1)
    grey = (frame * w).sum(0).clamp(0, 1).mul(255.0).add(0.5).to(torch.uint8)
    return np.ascontiguousarray(grey.cpu().numpy())


def check_flow_size(width: int, height: int, method: str) -> None:
    """Refuse frames too small for ``method`` (OpenCV's DIS crashes the process below 16 pixels a side)."""
    if method != "none" and min(width, height) < MIN_FLOW_SIDE:
        raise ParameterError(f"frames of {width}x{height} pixels are too small for optical flow (at least "
                             f"{MIN_FLOW_SIDE} on each side); give a larger --size, or --flow none")


def optical_flow(a: torch.Tensor, b: torch.Tensor, method: str = "dis") -> torch.Tensor:
    """Dense flow ``(2, H, W)`` from frame ``a`` to frame ``b`` (both ``(3, H, W)``): ``a(p) ≈ b(p + flow(p))``.

    ``dis``: OpenCV DIS at its medium preset (fast, robust to large motion); ``farneback``: OpenCV Farneback;
    ``none``: zero flow (every frame assumed aligned with the previous one).
    """
    if method == "none":
        return torch.zeros(2, *a.shape[-2:], dtype=a.dtype, device=a.device)
    check_flow_size(a.shape[-1], a.shape[-2], method)
    import cv2

    ga, gb = _grey_u8(a), _grey_u8(b)
    if method == "dis":
        flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM).calc(ga, gb, None)
    elif method == "farneback":
        flow = cv2.calcOpticalFlowFarneback(ga, gb, None, 0.5, 4, 15, 3, 5, 1.2, 0)
    else:
        raise ValueError(f"unknown flow method {method!r}; use one of {', '.join(FLOW_METHODS)}")
    return torch.from_numpy(flow).permute(2, 0, 1).to(dtype=a.dtype, device=a.device)


def _sample_grid(flow: torch.Tensor) -> torch.Tensor:
    """Sampling grid ``(1, H, W, 2)`` in grid_sample's [-1, 1] coordinates for positions ``p + flow(p)``."""
    _, h, w = flow.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=flow.dtype, device=flow.device),
                            torch.arange(w, dtype=flow.dtype, device=flow.device), indexing="ij")
    gx = (xs + flow[0]) * (2.0 / max(w - 1, 1)) - 1.0
    gy = (ys + flow[1]) * (2.0 / max(h - 1, 1)) - 1.0
    return torch.stack([gx, gy], dim=-1).unsqueeze(0)


def warp(x: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Backward warp: ``out(p) = x(p + flow(p))``, bilinear, borders replicated.

    ``x`` ``(C, H, W)`` or ``(N, C, H, W)``; ``flow`` ``(2, H, W)``. Returns the shape of ``x``.
    """
    batched = x.dim() == 4
    xb = x if batched else x.unsqueeze(0)
    grid = _sample_grid(flow).expand(xb.shape[0], -1, -1, -1)
    out = F.grid_sample(xb, grid, mode="bilinear", padding_mode="border", align_corners=True)
    return out if batched else out[0]


def consistency_mask(forward: torch.Tensor, backward: torch.Tensor) -> torch.Tensor:
    """Reliability ``(H, W)`` in {0, 1} of the backward flow ``(2, H, W)`` (frame t -> t-1), given the forward flow.

    A pixel p of frame t is reliable when following the backward flow to q = p + backward(p) and the forward flow
    back lands near p (|fw(q) + bw(p)|² ≤ 0.01 (|fw(q)|² + |bw(p)|²) + 0.5, Sundaram et al. / Ruder et al.), q
    lies inside the frame, and p is not on a motion boundary (|∇bw|² ≤ 0.01 |bw|² + 0.002). Unreliable pixels are
    disocclusions, motion boundaries and flow failures.
    """
    _, h, w = backward.shape
    fw_at_q = warp(forward, backward)
    err = (fw_at_q + backward).square().sum(0)
    ok = err <= 0.01 * (fw_at_q.square().sum(0) + backward.square().sum(0)) + 0.5
    dx = F.pad(backward[:, :, 1:] - backward[:, :, :-1], (0, 1))
    dy = F.pad(backward[:, 1:, :] - backward[:, :-1, :], (0, 0, 0, 1))
    ok &= dx.square().sum(0) + dy.square().sum(0) <= 0.01 * backward.square().sum(0) + 0.002
    ys, xs = torch.meshgrid(torch.arange(h, device=backward.device), torch.arange(w, device=backward.device),
                            indexing="ij")
    qx, qy = xs + backward[0], ys + backward[1]
    ok &= (qx >= 0) & (qx <= w - 1) & (qy >= 0) & (qy <= h - 1)
    return ok.to(backward.dtype)


@dataclass(frozen=True)
class Motion:
    """How frame t relates to frame t-1: backward flow ``(2, H, W)``, reliability ``(H, W)``, and a cut flag.

    ``error``: mean |frame t - warped frame t-1| over reliable pixels ([0, 1] units); ``reliable``: their share.
    """

    backward: torch.Tensor
    mask: torch.Tensor
    reliable: float
    error: float
    cut: bool


def motion(prev: torch.Tensor, cur: torch.Tensor, method: str = "dis", *, min_reliable: float = 0.35,
           max_error: float = 0.12) -> Motion:
    """Flow, occlusion mask and scene-cut decision between source frames ``prev`` and ``cur`` ``(3, H, W)``.

    A cut is declared when fewer than ``min_reliable`` of the pixels have a consistent flow, or when the
    flow-compensated difference of the reliable pixels exceeds ``max_error``: the new frame is then dreamed afresh.
    With ``method="none"`` every pixel is reliable and only the error test applies.
    """
    backward = optical_flow(cur, prev, method)
    if method == "none":
        mask = torch.ones(cur.shape[-2:], dtype=cur.dtype, device=cur.device)
    else:
        mask = consistency_mask(optical_flow(prev, cur, method), backward)
    reliable = float(mask.mean())
    residual = (cur - warp(prev, backward)).abs().mean(0)
    error = float((residual * mask).sum() / mask.sum().clamp_min(1.0))
    return Motion(backward, mask, reliable, error, reliable < min_reliable or error > max_error)
