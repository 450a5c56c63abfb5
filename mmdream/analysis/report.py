"""A static, offline HTML report of what a layer's channels respond to (``mmdream analyze``).

``OUT_DIR/index.html`` links, by relative paths only, to files beside it (no scripts, fonts or network resources):

- ``atlas.png``: every reported channel's visualisation in a grid (audio: their log-mel spectrograms);
- ``vis/cNNNN.png`` per channel: its visualisation (audio: ``cNNNN.wav``, the sound, and ``cNNNN.png``, its
  labelled log-mel spectrogram, :func:`mmdream.media.spectrogram.save_spectrogram_preview`); ``vis/cNNNN.json``:
  the channel's mean activation on it and the seconds its batch took;
- with a dataset, ``examples/cNNNN_K.png`` (audio: ``.wav`` + ``.png``): the channel's strongest examples,
  ``examples/examples.json`` their record.

The folder is a :class:`~mmdream.pipelines.store.Store`: every file is written to a temporary name and renamed;
``settings.json`` (written first) records what the report is of. Rerunning the same command in the same folder resumes: batches whose files exist are not rendered again
(each batch has its own seed, so the result is the same), and ``index.html`` is written last, whole, only when
everything it links to exists. A folder holding another report or other files is refused.
"""

from __future__ import annotations

import html
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmdream.analysis.atlas import atlas_batches, atlas_image, chunks
from mmdream.analysis.examples import dataset_examples, dataset_files
from mmdream.objectives.visualization import check_channels
from mmdream.analysis.param import DEFAULT_COLOR_CORRELATION, measure_color_correlation
from mmdream.analysis.visualize import VisParams, channel_means
from mmdream.backbones.base import Backbone
from mmdream.errors import MediaError, ParameterError
from mmdream.options import Options, option
from mmdream.media.audio import load_audio, save_audio
from mmdream.media.images import load_image, save_image
from mmdream.media.spectrogram import save_spectrogram_preview
from mmdream.pipelines.store import SETTINGS_FILE, SettingsMismatch, Store
from mmdream.progress import ProgressFn, Tracker

DEFAULT_CHANNELS = 8  # channels 0..7 unless told: about 3 minutes for VGG16 relu4_3 on one CPU core
THUMB_HEIGHT = 96  # rows of a spectrogram thumbnail (mel bands stretched)


@dataclass(frozen=True)
class ReportParams(Options):
    """How much a report shows: channels rendered per batch, dataset examples per channel."""

    batch: int = option(4, "channels visualised together in one batch (images; sounds go one at a time)", ge=1,
                        le=256)
    examples: int = option(4, "dataset examples shown per channel (with --dataset)", ge=1, le=64)


def _name(c: int) -> str:
    return f"c{c:04d}"


def spectrogram_thumb(wave: torch.Tensor, rate: int, height: int = THUMB_HEIGHT) -> torch.Tensor:
    """A clip's log-mel spectrogram (:func:`mmdream.media.spectrogram.spectrogram_panel`) as a picture
    ``(3, height, columns)`` in [0, 1], low frequencies at the bottom, magma colours (80 dB range)."""
    from matplotlib import colormaps

    from mmdream.media.spectrogram import RANGE_DB, spectrogram_panel

    db = spectrogram_panel("", wave, rate, max_columns=256).db[::-1]  # (mels, columns), top row = highest band
    rgb = colormaps["magma"]((db + RANGE_DB) / RANGE_DB)[..., :3]  # (mels, columns, 3)
    pic = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32)).permute(2, 0, 1)[None]
    return torch.nn.functional.interpolate(pic, size=(height, pic.shape[-1] * 2), mode="nearest")[0]


def prepare_folder(out_dir: Path, settings: dict[str, Any]) -> Store:
    """The report's store in ``out_dir`` (its parent must exist): a new one recording ``settings``, or the report
    it already holds with the same settings (resuming); refuse a folder with another report or other files."""
    if not out_dir.parent.is_dir():
        raise MediaError(f"folder {out_dir.parent} does not exist; create it first or choose another OUT_DIR")
    if out_dir.exists() and not out_dir.is_dir():
        raise MediaError(f"OUT_DIR {out_dir} is a file; give a folder")
    if not Store.is_bound(out_dir) and out_dir.is_dir() and any(out_dir.iterdir()):
        raise MediaError(f"OUT_DIR {out_dir} is not empty and holds no report; give a new or empty folder")
    try:
        store = Store(out_dir, settings, "a report")
    except SettingsMismatch:
        raise ParameterError(f"{out_dir} holds a report made with other settings ({out_dir / SETTINGS_FILE}); give "
                             "another OUT_DIR, or remove that one") from None
    (out_dir / "vis").mkdir(exist_ok=True)
    return store


def build_report(out_dir: str | os.PathLike[str], backbone: Backbone, layer: str, channels: Sequence[int],
                 params: VisParams, report: ReportParams, *,
                 dataset: str | os.PathLike[str] | None = None, note: str = "",
                 progress: ProgressFn | None = None) -> Path:
    """Write the report of ``channels`` of ``layer`` to ``out_dir`` (see the module docstring); returns the path
    of ``index.html``. ``dataset``: a folder of pictures / sounds for the examples (pictures also give the colour
    correlation of the visualisations, :func:`~mmdream.analysis.param.measure_color_correlation`); ``note``: a
    line saying how the channels were chosen."""
    params.validate()
    report.validate()
    channels = [int(c) for c in channels]
    if not channels or len(set(channels)) != len(channels):
        raise ParameterError(f"give distinct channels to report; got {channels}")
    check_channels(backbone, layer, tuple(channels))
    out = Path(out_dir)
    audio = backbone.modality == "audio"
    files = dataset_files(dataset, backbone.modality) if dataset is not None else []
    correlation = (measure_color_correlation(files) if files and not audio else DEFAULT_COLOR_CORRELATION)
    settings = {"backbone": backbone.name, "variant": backbone.variant, "layer": layer, "channels": channels,
                "params": asdict(params), "report": asdict(report), "dataset": str(dataset) if dataset else None,
                "note": note}
    store = prepare_folder(out, settings)

    def vis(c: int, suffix: str) -> str:
        return store.path(f"vis/{_name(c)}{suffix}")

    def finished(chunk: tuple[int, ...]) -> bool:
        return all(store.has(f"vis/{_name(c)}.json") for c in chunk)

    todo = [chunk for chunk in chunks(channels, 1 if audio else report.batch) if not finished(chunk)]
    examples_record = "examples/examples.json"
    need_examples = bool(files) and not store.has(examples_record)
    steps = params.sound_steps if audio else params.steps
    tracker = Tracker(len(todo) * steps + (len(files) if need_examples else 0), progress, stage="visualise")
    started = time.perf_counter()
    for chunk, result in atlas_batches(backbone, layer, channels, params, batch=report.batch,
                                       correlation=correlation, skip=finished, advance=tracker.advance):
        means = channel_means(backbone, layer, result)
        seconds = round(time.perf_counter() - started, 2)
        for i, c in enumerate(chunk):
            if audio:
                rate = backbone.sample_rate or 16000
                save_audio(vis(c, ".wav"), result[i:i + 1], rate)
                save_spectrogram_preview(vis(c, ".png"), [(f"{layer} channel {c}", result[i], rate)])
            else:
                save_image(result[i], vis(c, ".png"))
            store.write_json(f"vis/{_name(c)}.json", {"channel": c, "mean_activation": float(means[i, c]),
                                                      "batch_seconds": seconds, "batch": list(chunk)}, indent=1)
        started = time.perf_counter()

    stats = {c: store.read_json(f"vis/{_name(c)}.json") for c in channels}
    if audio:
        pics = torch.stack([_fit_width(spectrogram_thumb(*load_audio(vis(c, ".wav"))), 192) for c in channels])
    else:
        pics = torch.stack([load_image(vis(c, ".png"))[0] for c in channels])
    with store.output("atlas.png") as tmp:
        atlas_image(pics, [str(c) for c in channels], columns=4 if audio else 8).save(tmp, format="PNG")

    if need_examples:
        tracker.stage = "dataset examples"
        found = dataset_examples(backbone, layer, channels, files, k=report.examples,
                                 advance=lambda: tracker.advance())
        (out / "examples").mkdir(exist_ok=True)
        record: dict[str, list[dict[str, object]]] = {}
        for c, items in found.items():
            record[str(c)] = []
            for k, ex in enumerate(items):
                stem = out / "examples" / f"{_name(c)}_{k}"
                if audio:
                    save_audio(stem.with_suffix(".wav"), ex.excerpt[None], backbone.sample_rate or 16000)
                    save_image(spectrogram_thumb(ex.excerpt, backbone.sample_rate or 16000), stem.with_suffix(".png"))
                else:
                    save_image(ex.excerpt, stem.with_suffix(".png"))
                record[str(c)].append({"score": ex.score, "source": str(ex.source), "where": list(ex.where),
                                       "file": stem.name})
        store.write_json(examples_record, record, indent=1)
    examples = store.read_json(examples_record) if files else None

    store.write_bytes("index.html", _html(backbone, layer, channels, params, stats, examples, correlation, note,
                                          dataset, audio).encode("utf-8"))
    return out / "index.html"


def _fit_width(pic: torch.Tensor, width: int) -> torch.Tensor:
    """A picture ``(3, h, w)`` cropped or padded (white) to ``width`` columns, for a grid of equal cells."""
    if pic.shape[-1] >= width:
        return pic[..., :width]
    return torch.nn.functional.pad(pic, (0, width - pic.shape[-1]), value=1.0)


_STYLE = """body{font-family:sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1{font-size:1.4em}h2{font-size:1.1em;margin:0 0 .3em}.card{display:inline-block;vertical-align:top;margin:.4em;
padding:.6em;background:#fff;border:1px solid #ddd;border-radius:4px}.ex img{height:80px;margin:2px}
table{border-collapse:collapse;margin-bottom:1em}td{padding:0 .5em;font-family:monospace}
.meta{color:#555;font-size:.9em}audio{display:block;width:260px;margin-top:.3em}.vis{width:192px}.spec{width:480px}
.exa{display:inline-block;vertical-align:top}.exa audio{width:150px}"""


def _html(backbone: Backbone, layer: str, channels: list[int], params: VisParams, stats: dict[int, dict],
          examples: dict[str, list[dict]] | None, correlation: torch.Tensor, note: str,
          dataset: str | os.PathLike[str] | None, audio: bool) -> str:
    e = html.escape
    total = sum({tuple(s["batch"]): s["batch_seconds"] for s in stats.values()}.values())
    rows = "".join("<tr>" + "".join(f"<td>{v:+.4f}</td>" for v in r) + "</tr>" for r in correlation.tolist())
    what = "sound" if audio else "picture"
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(backbone.name)} {e(layer)}: channel report</title><style>{_STYLE}</style></head><body>",
        f"<h1>{e(backbone.name)} ({e(backbone.variant)}), layer {e(layer)}: {len(channels)} channels</h1>",
        f'<p class="meta">{e(note)} Each {what} is optimised from noise to raise one channel\'s mean activation '
        f"({params.sound_steps if audio else params.steps} steps, "
        + (f"{params.seconds:g} s of sound, mel-domain ascent" if audio else
           f"{params.size} px, Fourier parametrisation with decay {params.decay_power:g}, decorrelated colours, "
           f"pad {params.pad}, jitter {params.jitter}, scale ±{params.scale:g}, rotation ±{params.angle:g}°")
        + f", seed {params.seed}); rendering took {total:.0f} s."
        + (f" Dataset examples from {e(str(dataset))}." if dataset else "") + "</p>",
        "<h2>Atlas</h2>", f'<img src="atlas.png" alt="atlas of {len(channels)} channels">',
    ]
    if not audio:
        parts.append(f'<p class="meta">Colour correlation (√ covariance of RGB, from '
                     f'{e(str(dataset)) if dataset else "the built-in photos"}):</p><table>{rows}</table>')
    parts.append("<h2>Channels</h2>")
    for c in channels:
        card = [f'<div class="card"><h2>channel {c}</h2>',
                f'<img class="{"spec" if audio else "vis"}" src="vis/{_name(c)}.png" alt="channel {c}">']
        if audio:
            card.append(f'<audio controls preload="none" src="vis/{_name(c)}.wav"></audio>')
        card.append(f'<div class="meta">mean activation {stats[c]["mean_activation"]:.4g}</div>')
        if examples is not None:
            card.append('<div class="ex">')
            for ex in examples[str(c)]:
                title = e(f"{Path(ex['source']).name}: {ex['score']:.4g}")
                picture = f'<img src="examples/{ex["file"]}.png" title="{title}" alt="{title}">'
                if audio:
                    picture = (f'<span class="exa">{picture}<audio controls preload="none" '
                               f'src="examples/{ex["file"]}.wav"></audio></span>')
                card.append(picture)
            card.append("</div>")
        card.append("</div>")
        parts.append("".join(card))
    parts.append("</body></html>")
    return "\n".join(parts)
