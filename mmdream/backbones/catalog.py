"""Every weight file the product names, where each one is now and whether it is the file it should be.

Names: a backbone's default weights by its name (``vgg16``), other variants as ``name:variant``
(``vgg16:torchvision``), the generators, and the class lists (``yamnet_classes``; ``imagenet_classes`` ships inside
the package). :data:`DEFAULT_FETCH` is what the default commands and ``jobs/demo.yaml`` need.

A file is verified when its sha256 is the reference digest (the shared folder's copy, ``MANIFEST.json``), or the
digest its provenance record wrote at conversion time while that record's source digest is the registered one, or,
for a file kept as published, its source's digest.
"""

from __future__ import annotations

import importlib.resources
import os
from dataclasses import dataclass
from pathlib import Path

from mmdream.backbones import BACKBONES, YAMNET_CLASSES
from mmdream.backbones.generators import GENERATORS
from mmdream.backbones.weights import WeightFile, read_record, search_places, sha256_of
from mmdream.errors import ParameterError
from mmdream.media import storage

DEFAULT_FETCH = ("vgg16", "efficientnet_lite0", "yamnet", "yamnet_classes")
IMAGENET_CLASSES = WeightFile(("imagenet_classes.txt",),
                              sha256="4eb3da435cf544e4a6f390f62c84cb9c9bb68cf8b14e97f8a063452382e5efd2")


def named_weights() -> dict[str, WeightFile]:
    """All named weights, in a stable order: backbones (variants after the default), class lists, generators."""
    out: dict[str, WeightFile] = {}
    for name, make in BACKBONES.items():
        spec = make()
        for key, variant in spec.variants.items():
            out[name if key == spec.default_variant else f"{name}:{key}"] = variant.weights
    out["yamnet_classes"] = YAMNET_CLASSES
    out["imagenet_classes"] = IMAGENET_CLASSES
    out.update({name: shared.weights for name, shared in GENERATORS.items()})
    return out


def select(names: list[str], default: tuple[str, ...] | None = None) -> dict[str, WeightFile]:
    """The named weights among ``names`` (``all``: every one; none given: ``default``, or every one)."""
    every = named_weights()
    if not names:
        return every if default is None else {n: every[n] for n in default}
    if names == ["all"]:
        return every
    unknown = [n for n in names if n not in every]
    if unknown:
        raise ParameterError(f"unknown weights {', '.join(unknown)}; named weights: {', '.join(every)} (or all)")
    return {n: every[n] for n in names}


def bundled(spec: WeightFile) -> Path | None:
    """The copy inside the installed package, for the files that ship with it."""
    if spec is not IMAGENET_CLASSES:
        return None
    return Path(str(importlib.resources.files("mmdream.data").joinpath(spec.files[0])))


@dataclass(frozen=True)
class Status:
    """Where a named weight is and what it is: ``location`` a local path or ``s3://`` URI (None: not present);
    ``sha256`` only for local files; ``source`` where it came from; ``verified`` True/False, None if not checked."""

    name: str
    location: str | None
    size_bytes: int | None
    sha256: str | None
    source: str
    verified: bool | None = None
    detail: str = ""


def locate(spec: WeightFile, weights_dir: str | os.PathLike[str] | None = None) -> str | None:
    """Where ``spec`` would be found now, without downloading: a local path or an ``s3://`` URI."""
    for place in search_places(weights_dir):
        for name in spec.files:
            where = storage.join(place, name)
            if storage.size(where) is not None:
                return where
    inside = bundled(spec)
    return str(inside) if inside is not None and inside.is_file() else None


def check(name: str, spec: WeightFile, path: Path) -> Status:
    """Status of the local file ``path`` holding ``spec``, with its digest checked."""
    digest = sha256_of(path)
    record = read_record(path)
    sources = {s.label: s for s in spec.sources}
    by_name = next((s for s in spec.sources if s.file_name == path.name and s.sha256), None)
    if spec.sha256 and digest == spec.sha256:
        verified, source, detail = True, "reference copy", "sha256 is the reference digest"
    elif record is not None:
        source = str(record.get("source"))
        known = sources.get(source)
        if known is None or not str(record.get("source_sha256", "")).startswith(str(known.sha256 or "")):
            verified, detail = False, "its record names a source or source digest this version does not know"
        elif record.get("sha256") != digest:
            verified, detail = False, f"sha256 {digest[:16]}… differs from the {str(record.get('sha256'))[:16]}… " \
                                      "recorded at conversion: the file changed"
        else:
            verified, detail = True, f"sha256 recorded at conversion; source sha256 {str(known.sha256)[:16]}… ok"
    elif by_name is not None:
        source = by_name.label
        verified = digest.startswith(str(by_name.sha256))
        detail = "sha256 of the published file" + (" ok" if verified else f" is not {by_name.sha256}…")
    else:
        verified, source = False, "unknown"
        detail = "no reference digest matches and no provenance record lies beside it"
    if bundled(spec) == path:
        source = "bundled with mmdream"
    return Status(name, str(path), path.stat().st_size, digest, source, verified, detail)


def status(name: str, spec: WeightFile, weights_dir: str | os.PathLike[str] | None = None,
           verify: bool = False) -> Status:
    """Where ``name`` is and (for local files) its digest and source; ``verify``: also say whether it checks out."""
    where = locate(spec, weights_dir)
    if where is None:
        return Status(name, None, None, None, "sources: " + ", ".join(s.label for s in spec.sources) if spec.sources
                      else "no download source")
    if storage.is_s3(where):
        return Status(name, where, storage.size(where), None, "weights directory (not downloaded)")
    st = check(name, spec, Path(where))
    return st if verify else Status(st.name, st.location, st.size_bytes, st.sha256, st.source)
