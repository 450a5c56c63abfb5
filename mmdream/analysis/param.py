"""Image parametrisation for feature visualisation: a Fourier spectrum with frequency decay, colours decorrelated.

A picture optimised pixel by pixel fills with high-frequency patterns the network reacts to but a person does not
see. Optimising instead the (scaled) Fourier coefficients of a decorrelated colour space, as lucid and lucent do,
gives every frequency and every colour direction an equal footing, so gradient steps favour broad, natural
structure:

    pixels = sigmoid(M · irfft2(scale ⊙ spectrum))       scale(f) = 1 / max(|f|, 1/max(H, W)) ** decay

``M`` is the square root of the RGB covariance of natural images (:func:`measure_color_correlation`), normalised so
its largest column has norm 1: the optimiser works in decorrelated colour coordinates, ``M`` maps them back.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from mmdream.errors import MediaError, ParameterError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff")

# U·sqrt(S) of the RGB covariance (pixels in [0, 1]) of the four photos in /work/shared/media/images
# (astronaut.png, chelsea.png, coffee.png, dog.jpg; the two painted style images left out), each shrunk to at most
# 256 px and weighted equally: measure_color_correlation(those four files). Columns: the principal colour axes,
# largest variance first (luminance, then a red-blue and a green-magenta axis); lucid's ImageNet matrix is close.
DEFAULT_COLOR_CORRELATION = torch.tensor([
    [0.2116, 0.0899, -0.0161],
    [0.2179, -0.0123, 0.0405],
    [0.2135, -0.0765, -0.0254],
])


def media_files(folder: str | os.PathLike[str], suffixes: tuple[str, ...], kind: str) -> list[Path]:
    """The files with ``suffixes`` under ``folder`` (recursively, sorted); MediaError naming ``kind`` ("images",
    "sounds") if the folder is missing or holds none."""
    root = Path(folder)
    if not root.is_dir():
        raise MediaError(f"dataset folder {root} does not exist; give a folder of {kind}")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
    if not files:
        raise MediaError(f"dataset folder {root} holds no {kind} ({', '.join(suffixes)}); give another folder")
    return files


def image_files(folder: str | os.PathLike[str]) -> list[Path]:
    """The images under ``folder`` (recursively, sorted); MediaError if it is missing or holds none."""
    return media_files(folder, IMAGE_SUFFIXES, "images")


def measure_color_correlation(files: list[Path] | str | os.PathLike[str], max_side: int = 256) -> torch.Tensor:
    """Colour correlation matrix ``(3, 3)`` of natural images: ``U sqrt(S)`` of the RGB covariance ``U S Uᵀ``.

    ``files``: image paths, or a folder (all its images, recursively). Each image is shrunk (never enlarged) to at most
    ``max_side`` pixels and counts equally (its own pixel covariance, around its own mean, averaged over the
    images); columns are sorted by variance and signed so that their largest entry in absolute value is positive.
    """
    from mmdream.media.images import load_image

    paths = image_files(files) if isinstance(files, (str, os.PathLike)) else list(files)
    if not paths:
        raise MediaError("no images to measure colour correlation from")
    cov = torch.zeros(3, 3, dtype=torch.float64)
    for p in paths:
        x = load_image(p)
        if max(x.shape[-2:]) > max_side:
            x = load_image(p, max_side)
        x = x[0].reshape(3, -1).double()
        x = x - x.mean(dim=1, keepdim=True)
        cov += x @ x.t() / x.shape[1]
    vals, vecs = torch.linalg.eigh(cov / len(paths))  # ascending
    vals, vecs = vals.flip(0).clamp_min(0), vecs.flip(1)
    signs = torch.sign(vecs.gather(0, vecs.abs().argmax(dim=0, keepdim=True)))
    return (vecs * signs * vals.sqrt()).float()


def decorrelate(t: torch.Tensor, correlation: torch.Tensor) -> torch.Tensor:
    """Decorrelated colour coordinates ``t`` ``(..., 3, H, W)`` -> RGB offsets, ``M / max column norm`` applied."""
    m = correlation.to(t) / correlation.norm(dim=0).max().to(t)
    return torch.einsum("ij,...jhw->...ihw", m, t)


def spectrum_scale(height: int, width: int, decay_power: float) -> torch.Tensor:
    """``1 / max(|f|, 1 / max(H, W)) ** decay`` for the ``(H, W // 2 + 1)`` frequencies of an ``rfft2``."""
    fy = torch.fft.fftfreq(height, dtype=torch.float64)[:, None]
    fx = torch.fft.rfftfreq(width, dtype=torch.float64)[None]
    f = (fx.square() + fy.square()).sqrt().clamp_min(1.0 / max(height, width))
    return (1.0 / f**decay_power).float()


class FourierImage(nn.Module):
    """A batch of images ``(N, 3, H, W)`` in [0, 1] parametrised by scaled Fourier coefficients in decorrelated
    colour space; calling the module renders them (differentiably in :attr:`spectrum`).

    ``sd``: standard deviation of the random initial coefficients (small: the start is near grey noise).
    """

    def __init__(self, batch: int, height: int, width: int, *, decay_power: float = 1.0,
                 correlation: torch.Tensor | None = None, sd: float = 0.01,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        if batch < 1 or height < 8 or width < 8:
            raise ParameterError(f"a visualisation needs a batch >= 1 and a size of at least 8x8; got "
                                 f"{batch}x{height}x{width}")
        if decay_power < 0:
            raise ParameterError(f"decay_power={decay_power!r} is invalid: it must be at least 0")
        self.height, self.width = height, width
        self.register_buffer("scale", spectrum_scale(height, width, decay_power))
        self.register_buffer("correlation", DEFAULT_COLOR_CORRELATION.clone() if correlation is None
                             else correlation.detach().float().clone())
        init = torch.randn(batch, 3, height, width // 2 + 1, 2, generator=generator) * sd
        self.spectrum = nn.Parameter(init)

    def forward(self) -> torch.Tensor:
        coeffs = torch.view_as_complex(self.spectrum) * self.scale
        t = torch.fft.irfft2(coeffs, s=(self.height, self.width), norm="ortho") / 4.0
        return torch.sigmoid(decorrelate(t, self.correlation))

