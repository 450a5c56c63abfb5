"""Training a DCGAN (optionally class-conditional) on an image folder, on a CPU in minutes, resumably.

The generator is :class:`mmdream.backbones.generators.Generator` (the shared generators' layout); the
discriminator mirrors it with stride-2 convolutions and LeakyReLU, every weight under spectral normalisation (the
stabiliser: no BatchNorm in D), and for a conditional GAN a projection term (Miyato & Koyama 2018): the class
vector's embedding dotted with D's features. Hinge losses, Adam. Everything random is drawn from generators seeded
by ``(seed, epoch)``, so a run resumed after epoch k continues exactly as the uninterrupted run would.

:func:`train_gan` writes, as it trains (each file atomically, after every epoch):

- ``OUT.safetensors`` + ``OUT.json``: the generator (keys ``main.*``) and its sidecar — what ``load_generator``,
  ``gan sample``, ``gan dream`` and ``gan walk`` read;
- ``OUT.resume.safetensors``: generator, discriminator and both optimisers' states, with the epoch and the history
  in its header (no pickle): ``resume=True`` continues from it;
- ``OUT.samples-eNNN.png``: a grid of the same fixed latents after every epoch; ``OUT.curves.png``: losses and
  D's mean outputs per epoch; ``OUT.history.jsonl``: one JSON object per epoch.

>>> data = load_gan_images("crops/", size=64)
>>> train_gan(data, GANParams(epochs=10), "runs/crops.safetensors")
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from mmdream.backbones.checkpoint import sidecar_path
from mmdream.backbones.generators import GAN_FORMAT, Generator, GeneratorConfig, config_record, sample_latents
from mmdream.ops.grid import image_grid
from mmdream.errors import MediaError, ParameterError, WeightsError
from mmdream.options import Options, option, seed_option
from mmdream.media.files import atomic_path
from mmdream.media.images import save_image
from mmdream.progress import ProgressFn, Tracker
from mmdream.train.curves import Panel, save_learning_curves
from mmdream.train.data import IMAGE_SUFFIXES, _check_classes, _class_folders, read_rgb

__all__ = ["GANParams", "GanImages", "Discriminator", "load_gan_images", "train_gan", "output_paths",
           "resume_state"]

GRID = 64  # fixed latents in each sample grid (8 × 8)


@dataclass(frozen=True)
class GANParams(Options):
    """Every option of a GAN training run; the defaults train a few thousand 64² images in minutes on a CPU."""

    epochs: int = option(20, "epochs to train (a resumed run continues up to this many)", ge=1, le=100_000)
    batch_size: int = option(32, "images per optimisation step", ge=2, le=4096)
    size: int = option(64, "side of the generated images in pixels", choices=(32, 64, 128))
    latent_dim: int = option(100, "size of the latent vector z", ge=1, le=1024)
    ngf: int = option(32, "generator width: channels of its last hidden block", ge=4, le=512)
    ndf: int = option(32, "discriminator width: channels of its first block", ge=4, le=512)
    lr: float = option(0.0002, "learning rate of the generator (Adam)", gt=0.0, le=0.1)
    lr_d: float = option(0.0002, "learning rate of the discriminator (Adam)", gt=0.0, le=0.1)
    beta1: float = option(0.5, "Adam's first-moment decay", ge=0.0, lt=1.0)
    beta2: float = option(0.999, "Adam's second-moment decay", ge=0.0, lt=1.0)
    conditional: bool = option(False, "class-conditional GAN: the dataset holds a folder per class")
    flip: bool = option(True, "random horizontal flips of the training images")
    # below 2^40: the per-epoch seeds seed * 1_000_003 + epoch stay 64-bit seeds
    seed: int = seed_option("random seed: initial weights, batches, noise, sample grids", lt=2**40)


_SHAPE_FIELDS = ("size", "latent_dim", "ngf", "ndf", "conditional")  # a resumed run must keep these


@dataclass(frozen=True)
class GanImages:
    """Training images ``(N, 3, size, size)`` uint8, labels ``(N,)`` (all 0 when unconditional), class names."""

    images: torch.Tensor = field(repr=False)
    labels: torch.Tensor = field(repr=False)
    classes: tuple[str, ...]
    root: str

    def __len__(self) -> int:
        return int(self.images.shape[0])


def _square_resize(image: torch.Tensor, size: int) -> torch.Tensor:
    """``(3, H, W)`` in [0, 1] -> centre square crop resized to ``(3, size, size)`` uint8."""
    h, w = image.shape[-2:]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    x = F.interpolate(image[None, :, top:top + s, left:left + s], size=(size, size), mode="bilinear",
                      antialias=True, align_corners=False)[0]
    return x.clamp(0, 1).mul(255).round().to(torch.uint8)


def load_gan_images(root: str | os.PathLike[str], size: int = 64, conditional: bool = False) -> GanImages:
    """Every image under ``root`` (unconditional: all of them, in any sub-folder), centre-cropped to a square and
    resized to ``size``; ``conditional``: ``root`` holds one sub-folder per class (at least two). Checked before
    any training: MediaError for a missing or empty folder or an unreadable image."""
    folder = Path(root)
    if not folder.is_dir():
        raise MediaError(f"dataset {folder} is not a folder; give a folder of images (or, --conditional, a "
                         "sub-folder of images per class)")
    if conditional:
        items = _class_folders(folder, IMAGE_SUFFIXES, "image")
        classes = _check_classes([c for _, c in items], folder)
        paths, labels = [p for p, _ in items], [classes.index(c) for _, c in items]
    else:
        paths = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                       and not any(part.startswith(".") for part in p.relative_to(folder).parts))
        classes, labels = (), [0] * len(paths)
    if len(paths) < 2:
        raise MediaError(f"dataset {folder} holds {len(paths)} image(s) ({', '.join(IMAGE_SUFFIXES)}); a GAN needs "
                         "at least two, better thousands")
    images = torch.stack([_square_resize(read_rgb(p), size) for p in paths])
    return GanImages(images, torch.tensor(labels), tuple(classes), str(folder))


class Discriminator(nn.Module):
    """DCGAN discriminator with spectral norm: ``(N, 3, size, size)`` in [-1, 1] (and class vectors ``(N,
    num_classes)``) -> scores ``(N,)``; stride-2 convolutions down to 4×4, a 4×4 convolution to one score, plus the
    projection ``<embed(y), features>`` when conditional."""

    def __init__(self, size: int, ndf: int, num_classes: int = 0) -> None:
        super().__init__()
        downs = int(math.log2(size // 4))
        widths = [ndf * 2**i for i in range(downs)]
        layers: list[nn.Module] = []
        for cin, cout in zip([3, *widths], widths):
            layers += [spectral_norm(nn.Conv2d(cin, cout, 4, 2, 1)), nn.LeakyReLU(0.2, inplace=True)]
        self.features = nn.Sequential(*layers)
        self.score = spectral_norm(nn.Conv2d(widths[-1], 1, 4, 1, 0))
        self.embed = spectral_norm(nn.Linear(num_classes, widths[-1] * 16, bias=False)) if num_classes else None

    def forward(self, x: torch.Tensor, onehot: torch.Tensor | None = None) -> torch.Tensor:
        h = self.features(x)
        out = self.score(h).flatten()
        if self.embed is not None and onehot is not None:
            out = out + (self.embed(onehot) * h.flatten(1)).sum(dim=1)
        return out


def output_paths(out: str | os.PathLike[str]) -> dict[str, Path]:
    """The files a run writes beside ``out`` (``.safetensors``): checkpoint, sidecar, resume state, curves,
    history; sample grids are ``OUT.samples-eNNN.png``."""
    p = Path(out)
    stem = p.with_suffix("")
    return {"checkpoint": p, "sidecar": sidecar_path(p), "resume": Path(f"{stem}.resume.safetensors"),
            "curves": Path(f"{stem}.curves.png"), "history": Path(f"{stem}.history.jsonl")}


def resume_state(out: str | os.PathLike[str]) -> Path:
    """The resume file of a run writing ``out``; ParameterError when there is none."""
    path = output_paths(out)["resume"]
    if not path.is_file():
        raise ParameterError(f"nothing to resume: {path} does not exist; leave out --resume to start")
    return path


def _grid_path(out: Path, epoch: int) -> Path:
    return Path(f"{out.with_suffix('')}.samples-e{epoch:03d}.png")


def _epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


class _Run:
    """Networks, optimisers and history of one training run."""

    def __init__(self, params: GANParams, classes: tuple[str, ...]) -> None:
        self.params = params
        self.classes = classes
        n_classes = len(classes) if params.conditional else 0
        self.config = GeneratorConfig(params.latent_dim, n_classes, params.ngf, params.size)
        with torch.random.fork_rng(devices=[]):  # seeded initial weights, the caller's random state left alone
            torch.manual_seed(params.seed)
            self.g = Generator(self.config, classes if n_classes else ())
            self.d = Discriminator(params.size, params.ndf, n_classes)
            for m in [*self.g.modules(), *self.d.modules()]:
                if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                    nn.init.normal_(m.weight if not hasattr(m, "parametrizations") else
                                    m.parametrizations.weight.original, 0.0, 0.02)
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.normal_(m.weight, 1.0, 0.02)
                    nn.init.zeros_(m.bias)
        betas = (params.beta1, params.beta2)
        self.opt_g = torch.optim.Adam(self.g.parameters(), lr=params.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.d.parameters(), lr=params.lr_d, betas=betas)
        self.epoch = 0
        self.history: list[dict[str, float]] = []

    def train_epoch(self, data: GanImages, tracker: Tracker) -> dict[str, float]:
        p = self.params
        gen = _epoch_generator(p.seed, self.epoch + 1)
        order = torch.randperm(len(data), generator=gen)
        batch = min(p.batch_size, len(data))
        sums = {"d_loss": 0.0, "g_loss": 0.0, "d_real": 0.0, "d_fake": 0.0}
        steps = len(data) // batch
        start = time.perf_counter()
        self.g.train()
        self.d.train()
        for b in range(steps):
            idx = order[b * batch:(b + 1) * batch]
            real = data.images[idx].float().div_(127.5).sub_(1.0)
            if p.flip:
                flips = torch.rand(batch, generator=gen) < 0.5
                real[flips] = real[flips].flip(-1)
            y = F.one_hot(data.labels[idx], len(self.classes)).float() if self.config.num_classes else None
            z = torch.randn(batch, p.latent_dim, generator=gen)
            fake = self.g(z, y)
            d_real, d_fake = self.d(real, y), self.d(fake.detach(), y)
            d_loss = F.relu(1.0 - d_real).mean() + F.relu(1.0 + d_fake).mean()
            self.opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            self.opt_d.step()
            g_loss = -self.d(fake, y).mean()
            self.opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            self.opt_g.step()
            for k, v in (("d_loss", d_loss), ("g_loss", g_loss), ("d_real", d_real.mean()),
                         ("d_fake", d_fake.mean())):
                sums[k] += float(v.detach())
            tracker.advance(float(g_loss.detach()), stage=f"epoch {self.epoch + 1}/{p.epochs}")
        self.epoch += 1
        record = {"epoch": self.epoch, **{k: round(v / max(steps, 1), 5) for k, v in sums.items()},
                  "seconds": round(time.perf_counter() - start, 2)}
        self.history.append(record)
        return record

    def grid(self) -> torch.Tensor:
        """The fixed latents' samples (generator in eval mode) as one grid image ``(1, 3, H, W)``."""
        self.g.eval()
        z, y = sample_latents(self.g, GRID, self.params.seed)
        with torch.no_grad():
            return image_grid(self.g.generate(z, y), 8)

    # --- checkpoints -------------------------------------------------------------------------------------------

    def meta(self, data: GanImages) -> dict[str, Any]:
        return {"format": GAN_FORMAT, "version": 1, "generator": config_record(self.config),
                "classes": list(self.classes) if self.config.num_classes else [],
                "train": dataclasses.asdict(self.params), "epoch": self.epoch,
                "dataset": {"root": data.root, "items": len(data), "classes": list(data.classes)},
                "history": self.history}

    def save(self, out: Path, data: GanImages) -> None:
        from safetensors.torch import save_file

        paths = output_paths(out)
        meta = self.meta(data)
        tensors = {f"g.{k}": v for k, v in self.g.state_dict().items()}
        tensors |= {f"d.{k}": v for k, v in self.d.state_dict().items()}
        groups = {}
        for name, opt in (("opt_g", self.opt_g), ("opt_d", self.opt_d)):
            state = opt.state_dict()
            for i, s in state["state"].items():
                tensors |= {f"{name}.{i}.{k}": v for k, v in s.items()}
            groups[name] = state["param_groups"]
        header = {"format": GAN_FORMAT + "-resume", "meta": json.dumps(meta), "param_groups": json.dumps(groups)}
        with atomic_path(paths["resume"]) as tmp:
            save_file({k: v.detach().contiguous() for k, v in tensors.items()}, str(tmp), metadata=header)
        with atomic_path(paths["checkpoint"]) as tmp:
            save_file({k: v.detach().contiguous() for k, v in self.g.state_dict().items()
                       if not k.endswith("num_batches_tracked")}, str(tmp), metadata={"format": GAN_FORMAT})
        with atomic_path(paths["sidecar"]) as tmp:
            tmp.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")

    def restore(self, path: Path, data: GanImages) -> None:
        """Continue from a resume file written by :meth:`save` for the same options' shape and dataset."""
        from safetensors import safe_open

        try:
            with safe_open(str(path), "pt") as f:
                header = f.metadata() or {}
                tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (a safe_open handle, no dict)
            meta, groups = json.loads(header["meta"]), json.loads(header["param_groups"])
        except (OSError, KeyError, ValueError, json.JSONDecodeError) as exc:
            raise WeightsError(f"cannot read the resume state {path} ({exc}); start again without --resume") from exc
        before = meta["train"]
        changed = [k for k in _SHAPE_FIELDS if before.get(k) != getattr(self.params, k)]
        if changed:
            raise ParameterError(f"cannot resume {path}: it was trained with "
                                 + ", ".join(f"{k}={before.get(k)!r}" for k in changed)
                                 + "; give the same options or another --out")
        if meta["dataset"]["items"] != len(data) or meta["dataset"]["classes"] != list(data.classes):
            raise ParameterError(f"cannot resume {path}: it was trained on {meta['dataset']['items']} images of "
                                 f"{meta['dataset']['root']}, this dataset has {len(data)}; give the same dataset")
        self.g.load_state_dict({k[2:]: v for k, v in tensors.items() if k.startswith("g.")})
        self.d.load_state_dict({k[2:]: v for k, v in tensors.items() if k.startswith("d.")})
        for name, opt in (("opt_g", self.opt_g), ("opt_d", self.opt_d)):
            state: dict[int, dict[str, torch.Tensor]] = {}
            for k, v in tensors.items():
                if k.startswith(name + "."):
                    _, i, key = k.split(".", 2)
                    state.setdefault(int(i), {})[key] = v
            opt.load_state_dict({"state": state, "param_groups": groups[name]})
            for group in opt.param_groups:  # the learning rates and betas of this run's options
                group["lr"] = self.params.lr if name == "opt_g" else self.params.lr_d
                group["betas"] = (self.params.beta1, self.params.beta2)
        self.epoch, self.history = int(meta["epoch"]), list(meta["history"])


GAN_PANELS: tuple[Panel, ...] = (("hinge loss", (("d_loss", "d_loss"), ("g_loss", "g_loss"))),
                                  ("D score", (("d_real", "d_real"), ("d_fake", "d_fake"))))


def train_gan(data: GanImages, params: GANParams, out: str | os.PathLike[str], *, resume: bool = False,
              progress: ProgressFn | None = None,
              on_epoch: Callable[[dict[str, float]], None] | None = None) -> dict[str, Any]:
    """Train on ``data`` up to ``params.epochs``, writing the files of the module docstring after every epoch;
    ``resume``: continue from ``OUT.resume.safetensors``. Returns the sidecar record."""
    params.validate()
    out = Path(out)
    if out.suffix != ".safetensors":
        raise ParameterError(f"--out {out} must end in .safetensors (its sidecar .json, resume state, sample grids "
                             "and curves go beside it)")
    if params.conditional and len(data.classes) < 2:
        raise ParameterError("a conditional GAN needs a dataset with a folder per class (at least two)")
    if not params.conditional and data.classes:
        raise ParameterError("this dataset has classes: train with --conditional, or load it unconditionally")
    if len(data) < 2:
        raise ParameterError(f"the dataset has {len(data)} image(s); a GAN needs at least two")
    run = _Run(params, data.classes)
    paths = output_paths(out)
    if resume:
        run.restore(resume_state(out), data)
    steps = len(data) // min(params.batch_size, len(data))
    tracker = Tracker(params.epochs * steps, progress, stage="training", done=run.epoch * steps)
    while run.epoch < params.epochs:
        record = run.train_epoch(data, tracker)
        run.save(out, data)
        save_image(run.grid(), _grid_path(out, run.epoch))
        save_learning_curves(paths["curves"], run.history, f"GAN on {data.root} ({len(data)} images)", GAN_PANELS)
        with atomic_path(paths["history"]) as tmp:
            tmp.write_text("".join(json.dumps(r) + "\n" for r in run.history), encoding="utf-8")
        if on_epoch is not None:
            on_epoch(record)
    return run.meta(data)
