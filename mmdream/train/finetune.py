"""Training classifiers on small datasets: an ImageNet backbone's top fine-tuned, or an own CNN from scratch.

Bases (``base``): ``vgg16`` / ``vgg19`` (Caffe conv weights; a new linear head on globally pooled pool5
features), ``efficientnet_lite0`` (a new classifier in place of ImageNet's), ``small`` (:class:`SmallCNN` from
scratch) and, for sounds, ``mel-small`` (:class:`MelCNN` from scratch, waveform in). The result is a module of a
named architecture (:mod:`mmdream.backbones.nets.trained`) and the sidecar record that makes it a backbone
(:func:`save_trained` -> ``ckpt:PATH``).

Fine-tuning freezes the base up to ``freeze_to`` (a tap name, inclusive; by default everything below the new head),
trains the head with class balancing (a weighted loss or a balanced sampler) and stops early on a stratified
held-out split. When everything below the head is frozen, the head's inputs are computed once for every item
(``views`` augmented views each) and the head trains on those cached features: an epoch is one pass over all cached
views, seconds on a CPU. Otherwise (``freeze_to`` lower, ``unfreeze_after`` > 0, own CNNs) an epoch is one pass
over the training items, each freshly augmented. Pretrained BatchNorm layers keep their ImageNet statistics.
Everything is seeded: same data, same params, same weights.

>>> ds = ImageDataset.from_folder("animals/images")
>>> result = train_image(ds, "efficientnet_lite0", TrainParams(epochs=30))
>>> save_trained(result, "animals.safetensors")          # then: mmdream classify x.png -b ckpt:animals.safetensors
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mmdream.backbones.nets import trained
from mmdream.backbones.checkpoint import DatasetNormalised, preprocess_of, save_checkpoint
from mmdream.errors import ParameterError
from mmdream.options import Options, option, seed_option
from mmdream.progress import ProgressFn, Tracker
from mmdream.train.data import (AudioAugment, AudioDataset, ImageAugment, ImageDataset, augment_clip, augment_image,
                                class_counts, prepare_clip, prepare_image, stratified_folds, stratified_split)

__all__ = ["TrainParams", "Trained", "CrossValidation", "IMAGE_BASES", "AUDIO_BASES", "BALANCING", "NORMALISATION",
           "train_image", "dataset_stats",
           "train_audio", "cross_validate_image", "cross_validate_audio", "save_trained", "frozen_parameters",
           "check_training"]

BALANCING = ("loss", "sampler", "none")
NORMALISATION = ("base", "dataset")


@dataclass(frozen=True)
class _Base:
    pretrained: str | None  # registry name of the backbone whose weights start the training (None: from scratch)
    architecture: str
    preprocess: str
    input_size: int


IMAGE_BASES: dict[str, _Base] = {
    "vgg16": _Base("vgg16", "vgg16_pooled", "caffe_bgr", 224),
    "vgg19": _Base("vgg19", "vgg19_pooled", "caffe_bgr", 224),
    "efficientnet_lite0": _Base("efficientnet_lite0", "efficientnet_lite0", "efficientnet", 224),
    "googlenet": _Base("googlenet", "googlenet", "inception", 224),
    "inception_v3": _Base("inception_v3", "inception_v3", "inception", 299),
    "small": _Base(None, "small_cnn", "centred", 64),
}
AUDIO_BASES: dict[str, _Base] = {"mel-small": _Base(None, "mel_cnn", "waveform", trained.MEL_CNN_SAMPLE_RATE)}


@dataclass(frozen=True)
class TrainParams(Options):
    """Every option of a training run (images and sounds); defaults suit a few dozen items per class."""

    epochs: int = option(40, "most epochs (early stopping may end sooner)", ge=1, le=10_000)
    batch_size: int = option(16, "items per optimisation step", ge=1, le=4096)
    lr: float = option(0.001, "learning rate (Adam)", gt=0.0, le=1.0)
    weight_decay: float = option(0.0001, "weight decay (AdamW)", ge=0.0, le=1.0)
    freeze_to: str = option("", "freeze the base up to this layer, inclusive (see `mmdream layers NAME`; default: "
                                "all below the new head for pretrained bases, nothing for own CNNs)")
    unfreeze_after: int = option(0, "after this many epochs, unfreeze the layers above --unfreeze-to (0: never)",
                                 ge=0)
    unfreeze_to: str = option("", "layer that stays frozen, inclusive, once unfreezing starts (default: nothing "
                                  "stays frozen)")
    unfreeze_lr: float = option(0.1, "learning rate of unfrozen layers, as a fraction of --lr", gt=0.0, le=1.0)
    holdout: float = option(0.2, "share of each class held out for early stopping (stratified; 0: none, train all "
                                 "epochs)", ge=0.0, lt=0.9)
    patience: int = option(10, "stop after this many epochs without a lower held-out loss (0: never stop early)",
                           ge=0, le=10_000)
    balance: str = option("loss", "class balancing: weighted loss, balanced sampler or none", choices=BALANCING)
    size: int = option(0, "images: side of the square input in pixels (0: the base's, 224; inception_v3: 299; "
                          "small: 64)", ge=16, le=1024, off=0, unit="pixels")
    normalise: str = option("base", "images: the base's normalisation, or the dataset's: standardise with the "
                                    "per-channel mean and std of the dataset's images, mapped onto the statistics "
                                    "the base expects (ImageNet's for pretrained bases); recorded in the checkpoint",
                            choices=NORMALISATION)
    views: int = option(8, "augmented views per item when the head trains on cached features", ge=1, le=256)
    width: int = option(0, "own CNNs: channels of the first block (0: 32 for small, 16 for mel-small)", ge=0,
                        le=512)
    seed: int = seed_option("random seed: splits, augmentation, initial weights")

    def cross_checks(self) -> Iterable[tuple[bool, str, str]]:
        return [(self.unfreeze_after == 0 or self.unfreeze_after < self.epochs, "unfreeze_after",
                 "0 (never) or fewer than epochs")]


@dataclass
class Trained:
    """A trained module of ``meta["architecture"]``, ready for :func:`save_trained`; ``history``: per-epoch
    metrics (``epoch``, ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc``, ``seconds``)."""

    module: nn.Module
    meta: dict[str, Any]
    history: list[dict[str, float]]


@dataclass(frozen=True)
class CrossValidation:
    """Held-out predictions of a k-fold cross-validation: each item predicted by the fold that did not train on it."""

    folds: int
    seed: int
    predictions: tuple[int, ...]
    labels: tuple[int, ...]
    fold_accuracy: tuple[float, ...]

    @property
    def accuracy(self) -> float:
        return sum(p == t for p, t in zip(self.predictions, self.labels)) / len(self.labels)

    def record(self) -> dict[str, Any]:
        return {"folds": self.folds, "seed": self.seed, "accuracy": round(self.accuracy, 4),
                "fold_accuracy": [round(a, 4) for a in self.fold_accuracy], "items": len(self.labels)}


class _Net(nn.Module):
    """A module behind its preprocessing: what the Backbone will run (``preprocess`` then ``module``)."""

    def __init__(self, module: nn.Module, preprocess: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.module = module
        self.preprocess = preprocess

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(self.preprocess(x))


def _module_order(module: nn.Module, tap_module: str) -> int:
    """Index in ``named_modules`` order of the last module inside ``tap_module`` (pre-order: descendants follow)."""
    names = [n for n, _ in module.named_modules()]
    last = names.index(tap_module)
    while last + 1 < len(names) and names[last + 1].startswith(tap_module + "."):
        last += 1
    return last


def frozen_parameters(module: nn.Module, architecture: str, layer: str) -> set[str]:
    """Names of the parameters of ``module`` up to tap ``layer`` inclusive (modules are registered in forward
    order in every trained architecture); ParameterError naming the taps for an unknown layer."""
    taps = {t.name: t.module for t in trained.layers(architecture)}
    if layer not in taps:
        raise ParameterError(f"unknown layer '{layer}' to freeze for {architecture}; available: {', '.join(taps)}")
    limit = _module_order(module, taps[layer])
    index = {n: i for i, (n, _) in enumerate(module.named_modules())}
    return {name for name, _ in module.named_parameters() if index[name.rpartition(".")[0]] <= limit}


@functools.lru_cache(maxsize=2)
def _pretrained_state(name: str, weights_dir: Any) -> dict[str, torch.Tensor]:
    """The weights of registered backbone ``name`` (kept for the folds of a cross-validation; never modified)."""
    from mmdream.backbones import load_backbone

    return load_backbone(name, weights_dir=weights_dir).module.state_dict()


def check_training(base: str, params: TrainParams, modality: str = "image") -> None:
    """Refuse an unknown base, bad options or unknown ``freeze_to`` / ``unfreeze_to`` layers before any data is
    read (ParameterError naming the taps)."""
    bases = AUDIO_BASES if modality == "audio" else IMAGE_BASES
    if base not in bases:
        raise ParameterError(f"unknown {modality} base '{base}'; available: {', '.join(bases)}")
    params.validate()
    if modality == "audio" and params.normalise != "base":
        raise ParameterError("normalise: dataset is for images; sound nets standardise their log-mel input with a "
                             "BatchNorm layer (tap `norm`) learned from the dataset")
    b = bases[base]
    taps = [t.name for t in trained.layers(b.architecture)]
    for name in ("freeze_to", "unfreeze_to"):
        layer = getattr(params, name)
        if layer and layer not in taps:
            raise ParameterError(f"unknown layer '{layer}' for {name} of {base}; available: {', '.join(taps)}")
    frozen_to = params.freeze_to or (trained.ARCHITECTURES[b.architecture][1] if b.pretrained else "")
    if params.unfreeze_to and (not frozen_to or taps.index(params.unfreeze_to) >= taps.index(frozen_to)):
        raise ParameterError(f"unfreeze_to '{params.unfreeze_to}' must come before the frozen part's top "
                             f"'{frozen_to or 'nothing frozen'}': unfreezing can only free layers")


def _load_pretrained(module: nn.Module, base: _Base, head: str, weights_dir: Any) -> None:
    """Copy the base backbone's weights into ``module``: everything but the new head must fit."""
    assert base.pretrained is not None
    source = _pretrained_state(base.pretrained, None if weights_dir is None else str(weights_dir))
    own = module.state_dict()
    taken = {k: v for k, v in source.items() if k in own and not k.startswith(head + ".")}
    missing = [k for k in own if k not in taken and not k.startswith(head + ".") and "num_batches_tracked" not in k]
    if missing:
        raise AssertionError(f"{base.pretrained} weights lack {missing[:3]} for {base.architecture}")
    module.load_state_dict(taken, strict=False)


@dataclass
class _Task:
    """One training setup: the module, its head, the inputs the items make and what is frozen."""

    module: nn.Module
    architecture: str
    preprocess: Callable[[torch.Tensor], torch.Tensor]
    head: str  # module name of the head
    head_input: str  # tap whose output the head reads
    pretrained: bool
    train_input: Callable[[int, torch.Generator], torch.Tensor]  # item -> augmented input
    eval_inputs: torch.Tensor  # (items, ...) deterministic inputs
    labels: tuple[int, ...]
    n_classes: int
    frozen: set[str] = field(default_factory=set)

    @property
    def net(self) -> _Net:
        return _Net(self.module, self.preprocess)

    @property
    def head_module(self) -> nn.Module:
        return dict(self.module.named_modules())[self.head]

    @property
    def body_frozen(self) -> bool:
        head_params = {n for n, _ in self.module.named_parameters() if n.startswith(self.head + ".")}
        return {n for n, _ in self.module.named_parameters()} - head_params <= self.frozen


def _new_task(base: _Base, architecture_config: dict[str, Any], params: TrainParams, labels: Sequence[int],
              n_classes: int, train_input: Callable[[int, torch.Generator], torch.Tensor], eval_inputs: torch.Tensor,
              weights_dir: Any, stats: dict[str, list[float]] | None = None) -> _Task:
    with torch.random.fork_rng(devices=[]):  # seeded initial weights, the caller's random state left alone
        torch.manual_seed(params.seed)
        module = trained.build(base.architecture, n_classes, architecture_config)
    head = trained.layers(base.architecture)[-1].module
    head_input = trained.ARCHITECTURES[base.architecture][1]
    if base.pretrained is not None:
        _load_pretrained(module, base, head, weights_dir)
    freeze_to = params.freeze_to or (head_input if base.pretrained is not None else "")
    frozen = frozen_parameters(module, base.architecture, freeze_to) if freeze_to else set()
    preprocess = preprocess_of({"preprocess": base.preprocess, "dataset_stats": stats})
    return _Task(module, base.architecture, preprocess, head, head_input, base.pretrained is not None,
                 train_input, eval_inputs, tuple(labels), n_classes, frozen)


def _set_modes(task: _Task) -> None:
    """Train mode, but frozen parts (and every BatchNorm of a pretrained base) in eval mode."""
    task.module.train()
    params_of = {n: [p for p, _ in m.named_parameters()] for n, m in task.module.named_modules()}
    for name, m in task.module.named_modules():
        own = [f"{name}.{p}" if name else p for p in params_of[name]]
        if (own and all(p in task.frozen for p in own)) or (task.pretrained and isinstance(m, nn.BatchNorm2d)):
            m.eval()


def _head_features(task: _Task, inputs: torch.Tensor, chunk: int = 16) -> torch.Tensor:
    """The head's inputs ``(N, D)`` for inputs ``(N, ...)``, without gradients."""
    captured: list[torch.Tensor] = []
    hook = task.head_module.register_forward_pre_hook(lambda _m, args: captured.append(args[0].detach()))
    net = task.net.eval()
    try:
        with torch.no_grad():
            for i in range(0, inputs.shape[0], chunk):
                net(inputs[i:i + chunk])
    finally:
        hook.remove()
    return torch.cat(captured)


def _feature_cache(task: _Task, params: TrainParams, progress: ProgressFn | None) -> dict[str, torch.Tensor]:
    """Head inputs of every item: ``eval`` ``(N, D)`` and ``views`` ``(N, V, D)`` (V augmented views each)."""
    n = len(task.labels)
    g = torch.Generator().manual_seed(params.seed + 1)
    tracker = Tracker(n * (params.views + 1), progress, stage="features")
    eval_feats = []
    for i in range(n):
        eval_feats.append(_head_features(task, task.eval_inputs[i:i + 1]))
        tracker.advance()
    views = []
    for i in range(n):
        batch = torch.stack([task.train_input(i, g) for _ in range(params.views)])
        views.append(_head_features(task, batch))
        for _ in range(params.views):
            tracker.advance()
    return {"eval": torch.cat(eval_feats), "views": torch.stack(views)}


def _class_weights(labels: Sequence[int], n_classes: int) -> torch.Tensor:
    counts = class_counts(labels, n_classes)
    present = counts > 0
    w = torch.zeros(n_classes)
    w[present] = counts.sum() / (present.sum() * counts[present])
    return w


def _fit(task: _Task, params: TrainParams, train_idx: list[int], val_idx: list[int], *,
         cache: dict[str, torch.Tensor] | None, progress: ProgressFn | None,
         on_epoch: Callable[[dict[str, float]], None] | None) -> list[dict[str, float]]:
    """Train ``task`` on ``train_idx`` with early stopping on ``val_idx``; the best state is left in the module."""
    g = torch.Generator().manual_seed(params.seed + 2)
    labels = torch.tensor(task.labels)
    train_labels = [task.labels[i] for i in train_idx]
    weight = _class_weights(train_labels, task.n_classes) if params.balance == "loss" else None
    use_cache = cache is not None
    if use_cache:
        assert cache is not None
        views = cache["views"].shape[1]
        # samples: (item, view) pairs; an epoch is one pass over all of them
        samples = [(i, v) for i in train_idx for v in range(views)]
        model: nn.Module = task.head_module
    else:
        samples = [(i, -1) for i in train_idx]
        model = task.net
    for name, p in task.module.named_parameters():
        p.requires_grad_(name not in task.frozen)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=params.lr, weight_decay=params.weight_decay)

    def inputs(batch: list[tuple[int, int]]) -> torch.Tensor:
        if use_cache:
            assert cache is not None
            return torch.stack([cache["views"][i, v] for i, v in batch])
        return torch.stack([task.train_input(i, g) for i, _ in batch])

    def evaluate(idx: list[int]) -> tuple[float, float]:
        model.eval()
        with torch.no_grad():
            logits = model(cache["eval"][idx]) if use_cache else task.net(task.eval_inputs[idx])  # type: ignore
        loss = float(F.cross_entropy(logits, labels[idx], weight=weight))
        return loss, float((logits.argmax(-1) == labels[idx]).float().mean())

    trained_part = task.head_module if use_cache else task.module  # what the best state is kept of
    history: list[dict[str, float]] = []
    tracker = Tracker(params.epochs, progress, stage="epoch")
    best_loss, best_state, since_best = float("inf"), None, 0
    for epoch in range(1, params.epochs + 1):
        if params.unfreeze_after and epoch == params.unfreeze_after + 1:
            keep = frozen_parameters(task.module, task.architecture, params.unfreeze_to) if params.unfreeze_to \
                else set()
            newly = [p for n, p in task.module.named_parameters() if n in task.frozen and n not in keep]
            task.frozen = keep
            for p in newly:
                p.requires_grad_(True)
            if newly:
                optimizer.add_param_group({"params": newly, "lr": params.lr * params.unfreeze_lr})
        start = time.perf_counter()
        if use_cache:
            model.train()
        else:
            _set_modes(task)
        if params.balance == "sampler":
            w = 1.0 / class_counts(train_labels, task.n_classes)[[task.labels[i] for i, _ in samples]]
            order = torch.multinomial(w, len(samples), replacement=True, generator=g).tolist()
        else:
            order = torch.randperm(len(samples), generator=g).tolist()
        total_loss = correct = 0.0
        for b in range(0, len(order), params.batch_size):
            batch = [samples[j] for j in order[b:b + params.batch_size]]
            target = labels[[i for i, _ in batch]]
            logits = model(inputs(batch))
            loss = F.cross_entropy(logits, target, weight=weight)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total_loss += float(loss.detach()) * len(batch)
            correct += float((logits.argmax(-1) == target).sum())
        record = {"epoch": epoch, "train_loss": round(total_loss / len(order), 5),
                  "train_acc": round(correct / len(order), 4)}
        if val_idx:
            val_loss, val_acc = evaluate(val_idx)
            record |= {"val_loss": round(val_loss, 5), "val_acc": round(val_acc, 4)}
        record["seconds"] = round(time.perf_counter() - start, 3)
        history.append(record)
        if on_epoch is not None:
            on_epoch(record)
        tracker.advance(record.get("val_acc", record["train_acc"]))
        if val_idx:
            if record["val_loss"] < best_loss - 1e-6:
                best_loss, since_best = record["val_loss"], 0
                best_state = {k: v.detach().clone() for k, v in trained_part.state_dict().items()}
            else:
                since_best += 1
                if params.patience and since_best >= params.patience:
                    break
    if best_state is not None:
        trained_part.load_state_dict(best_state)
    task.module.eval()
    for p in task.module.parameters():
        p.requires_grad_(False)
    return history


def _predict(task: _Task, idx: list[int], cache: dict[str, torch.Tensor] | None) -> list[int]:
    with torch.no_grad():
        logits = task.head_module(cache["eval"][idx]) if cache is not None else task.net.eval()(task.eval_inputs[idx])
    return logits.argmax(-1).tolist()


def _image_task(dataset: ImageDataset, base_name: str, params: TrainParams, aug: ImageAugment,
                weights_dir: Any) -> tuple[_Task, _Base, dict[str, Any], int]:
    check_training(base_name, params, "image")
    aug.validate()
    base = IMAGE_BASES[base_name]
    size = params.size or base.input_size
    config = {"width": params.width or 32} if base.architecture == "small_cnn" else {}
    eval_inputs = torch.stack([prepare_image(im, size) for im in dataset.images])
    stats = dataset_stats(eval_inputs) if params.normalise == "dataset" else None
    task = _new_task(base, config, params, dataset.labels, len(dataset.classes),
                     lambda i, g: augment_image(dataset.images[i], size, aug, g), eval_inputs, weights_dir, stats)
    return task, base, config, size


def dataset_stats(images: torch.Tensor) -> dict[str, list[float]]:
    """Per-channel ``mean`` and ``std`` of RGB images ``(N, 3, H, W)`` in [0, 1] (over all items and pixels)."""
    flat = images.transpose(0, 1).flatten(1)  # (3, N*H*W)
    return {"mean": [round(float(v), 6) for v in flat.mean(1)],
            "std": [round(max(float(v), 1e-3), 6) for v in flat.std(1)]}


def _audio_task(dataset: AudioDataset, base_name: str, params: TrainParams, aug: AudioAugment
                ) -> tuple[_Task, _Base, dict[str, Any], int]:
    check_training(base_name, params, "audio")
    aug.validate()
    base = AUDIO_BASES[base_name]
    if dataset.sample_rate != base.input_size:
        raise ParameterError(f"{base_name} trains at {base.input_size} Hz; open the dataset at that rate")
    samples = round(aug.clip_s * dataset.sample_rate)
    config = {"width": params.width or 16, "sample_rate": dataset.sample_rate}
    eval_inputs = torch.stack([prepare_clip(c, samples) for c in dataset.clips])
    task = _new_task(base, config, params, dataset.labels, len(dataset.classes),
                     lambda i, g: augment_clip(dataset.clips[i], samples, aug, g), eval_inputs, None)
    return task, base, config, samples


def _uses_cache(task: _Task, params: TrainParams) -> bool:
    return task.pretrained and task.body_frozen and params.unfreeze_after == 0


def _run(task: _Task, params: TrainParams, train_idx: list[int], *, cache: dict[str, torch.Tensor] | None,
         progress: ProgressFn | None, on_epoch: Callable[[dict[str, float]], None] | None
         ) -> tuple[list[dict[str, float]], list[int]]:
    """Split ``train_idx`` into training and held-out items (stratified, seeded) and fit."""
    sub_labels = [task.labels[i] for i in train_idx]
    fit_pos, val_pos = stratified_split(sub_labels, params.holdout, params.seed)
    fit_idx, val_idx = [train_idx[j] for j in fit_pos], [train_idx[j] for j in val_pos]
    return _fit(task, params, fit_idx, val_idx, cache=cache, progress=progress, on_epoch=on_epoch), val_idx


def _meta(task: _Task, base_name: str, base: _Base, config: dict[str, Any], classes: Sequence[str],
          params: TrainParams, augment: Any, history: list[dict[str, float]], val_idx: list[int],
          modality: str, input_size: int, extra: dict[str, Any]) -> dict[str, Any]:
    norm = task.preprocess
    stats = {"mean": list(norm.mean), "std": list(norm.std)} if isinstance(norm, DatasetNormalised) else None
    last = history[-1]
    best = min(history, key=lambda r: r["val_loss"]) if val_idx else last
    return {
        "architecture": base.architecture, "config": config, "classes": list(classes),
        "preprocess": base.preprocess, "dataset_stats": stats, "modality": modality,
        "input_size": input_size,
        "base": base_name, "pretrained": base.pretrained, "head_input": task.head_input,
        "train": dataclasses.asdict(params), "augment": dataclasses.asdict(augment),
        "metrics": {"best_epoch": best["epoch"], "epochs_run": last["epoch"], "held_out_items": len(val_idx),
                    **{k: v for k, v in best.items() if k not in ("epoch", "seconds")}},
        "history": history, **extra,
    }


def train_image(dataset: ImageDataset, base: str, params: TrainParams = TrainParams(),
                augment: ImageAugment = ImageAugment(), *, weights_dir: Any = None,
                progress: ProgressFn | None = None, on_epoch: Callable[[dict[str, float]], None] | None = None,
                ) -> Trained:
    """Fine-tune ``base`` (or train ``small`` from scratch) on ``dataset``; see the module docstring."""
    task, b, config, size = _image_task(dataset, base, params, augment, weights_dir)
    cache = _feature_cache(task, params, progress) if _uses_cache(task, params) else None
    history, val_idx = _run(task, params, list(range(len(dataset.labels))), cache=cache, progress=progress,
                            on_epoch=on_epoch)
    preprocessing = {"image": "RGB [0, 1], transparent pixels on grey 0.5, padded to a square, resized",
                     "size": size, "normalise": b.preprocess if params.normalise == "base"
                     else f"dataset statistics, then {b.preprocess}"}
    return Trained(task.module, _meta(task, base, b, config, dataset.classes, params, augment, history, val_idx,
                                      "image", size, {"preprocessing": preprocessing,
                                                      "cached_features": cache is not None}), history)


def train_audio(dataset: AudioDataset, base: str = "mel-small", params: TrainParams = TrainParams(),
                augment: AudioAugment = AudioAugment(), *, progress: ProgressFn | None = None,
                on_epoch: Callable[[dict[str, float]], None] | None = None) -> Trained:
    """Train an own mel CNN on ``dataset`` (clips at 16 kHz); see the module docstring."""
    task, b, config, samples = _audio_task(dataset, base, params, augment)
    history, val_idx = _run(task, params, list(range(len(dataset.labels))), cache=None, progress=progress,
                            on_epoch=on_epoch)
    extra = {"sample_rate": dataset.sample_rate,
             "preprocessing": {"audio": "mono, resampled (soxr_hq)", "sample_rate": dataset.sample_rate,
                               "clip_samples": samples, "front_end": "log-mel inside the module"}}
    return Trained(task.module, _meta(task, base, b, config, dataset.classes, params, augment, history, val_idx,
                                      "audio", samples, extra), history)


def _cross_validate(make_task: Callable[[], _Task], labels: Sequence[int], params: TrainParams, folds: int,
                    progress: ProgressFn | None) -> CrossValidation:
    splits = stratified_folds(labels, folds, params.seed)
    predictions = [-1] * len(labels)
    accuracies = []
    cache = None
    for train_idx, test_idx in splits:
        task = make_task()  # fresh weights; the frozen body's cached features serve every fold
        if _uses_cache(task, params) and cache is None:
            cache = _feature_cache(task, params, progress)
        _run(task, params, train_idx, cache=cache, progress=None, on_epoch=None)
        pred = _predict(task, test_idx, cache)
        for i, p in zip(test_idx, pred):
            predictions[i] = p
        accuracies.append(sum(p == labels[i] for i, p in zip(test_idx, pred)) / len(test_idx))
    return CrossValidation(folds, params.seed, tuple(predictions), tuple(labels), tuple(accuracies))


def cross_validate_image(dataset: ImageDataset, base: str, params: TrainParams = TrainParams(),
                         augment: ImageAugment = ImageAugment(), *, folds: int = 5, weights_dir: Any = None,
                         progress: ProgressFn | None = None) -> CrossValidation:
    """Stratified ``folds``-fold cross-validation of :func:`train_image` (seeded by ``params.seed``); cached head
    inputs are computed once for all folds."""
    return _cross_validate(lambda: _image_task(dataset, base, params, augment, weights_dir)[0], dataset.labels,
                           params, folds, progress)


def cross_validate_audio(dataset: AudioDataset, base: str = "mel-small", params: TrainParams = TrainParams(),
                         augment: AudioAugment = AudioAugment(), *, folds: int = 4,
                         progress: ProgressFn | None = None) -> CrossValidation:
    """Stratified ``folds``-fold cross-validation of :func:`train_audio` (seeded by ``params.seed``)."""
    return _cross_validate(lambda: _audio_task(dataset, base, params, augment)[0], dataset.labels, params, folds,
                           progress)


def save_trained(result: Trained, path: str, extra: dict[str, Any] | None = None) -> None:
    """Write the checkpoint (``.safetensors`` + ``.json`` sidecar); ``extra``: more records for the sidecar."""
    save_checkpoint(path, result.module, {**result.meta, **(extra or {})})
