"""A text record carried inside an output file's own metadata, and read back.

Where it goes (every place deterministic, so equal settings still give byte-identical files):

- PNG: an ``iTXt`` chunk keyed ``mmdream`` (zlib-compressed);
- JPEG: a comment (``COM``) segment; WebP and TIFF: the EXIF / TIFF ``ImageDescription`` tag;
- MP4, MOV, MKV: the container's ``comment`` tag; WAV: the ``LIST/INFO ICMT`` chunk; FLAC and OGG: a ``COMMENT``
  Vorbis comment (the writers in :mod:`mmdream.media.video` and :mod:`mmdream.media.audio` put it there).

This module only moves text; what the text says is :mod:`mmdream.provenance`'s business.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path
from typing import Any

from PIL import Image, PngImagePlugin, UnidentifiedImageError

from mmdream.errors import MediaError

PNG_KEY = "mmdream"  # the iTXt keyword of a PNG's record
COMMENT_TAG = "comment"  # films and sounds: the container's / stream's comment tag
_DESCRIPTION = 0x010E  # EXIF / TIFF ImageDescription
_JPEG_COMMENT_MAX = 65533  # one COM segment


def image_save_options(suffix: str, text: str | None) -> dict[str, Any]:
    """Keyword arguments for ``PIL.Image.save`` that embed ``text`` in an image of format ``suffix`` (``.png``...)."""
    if text is None:
        return {}
    suffix = suffix.lower()
    if suffix == ".png":
        info = PngImagePlugin.PngInfo()
        info.add_itxt(PNG_KEY, text, zip=True)
        return {"pnginfo": info}
    if suffix in (".jpg", ".jpeg"):
        data = text.encode("utf-8")
        if len(data) > _JPEG_COMMENT_MAX:
            raise MediaError(f"a record of {len(data)} bytes does not fit a JPEG comment; write a PNG instead")
        return {"comment": data}
    exif = Image.Exif()
    exif[_DESCRIPTION] = text
    return {"exif": exif.tobytes()}


def png_with_text(data: bytes, text: str | None) -> bytes:
    """PNG bytes with ``text`` added as the record's ``iTXt`` chunk before the image data (for PNGs not written by
    PIL, e.g. 16-bit frames); ``None``: unchanged."""
    if text is None:
        return data
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise MediaError("cannot add a record to these bytes: they are not a PNG")
    at = 8
    while at + 8 <= len(data) and data[at + 4:at + 8] != b"IDAT":
        at += 12 + struct.unpack(">I", data[at:at + 4])[0]
    if at + 8 > len(data):
        raise MediaError("cannot add a record to this PNG: it has no image data")
    body = PNG_KEY.encode("latin-1") + b"\x00\x01\x00\x00\x00" + zlib.compress(text.encode("utf-8"))
    chunk = struct.pack(">I", len(body)) + b"iTXt" + body + struct.pack(">I", zlib.crc32(b"iTXt" + body))
    return data[:at] + chunk + data[at:]


def _image_text(path: Path) -> str | None:
    """The record text of an image file, ``None`` if it has none; raises UnidentifiedImageError for non-images."""
    with Image.open(path) as im:
        if PNG_KEY in im.info:
            return str(im.info[PNG_KEY])
        comment = im.info.get("comment")
        if isinstance(comment, bytes):
            return comment.decode("utf-8", "replace")
        if comment:
            return str(comment)
        description = im.getexif().get(_DESCRIPTION)
        return str(description) if description else None


def _media_text(path: Path) -> str | None:
    """The comment tag of a film or sound (container first, then its streams), ``None`` if it has none."""
    import av  # here, not above: images (and bench/gpu.py on a machine without PyAV) need no film library

    try:
        with av.open(str(path)) as container:
            for metadata in (container.metadata, *(s.metadata for s in container.streams)):
                for key, value in metadata.items():
                    if key.lower() == COMMENT_TAG and value:
                        return str(value)
    except (av.FFmpegError, UnicodeDecodeError) as exc:
        raise MediaError(f"cannot read {path} as an image, a film or a sound ({exc})") from exc
    return None


def read_text(path: str | os.PathLike[str]) -> str | None:
    """The record text embedded in the image, film or sound at ``path`` (local), or ``None`` if it carries none.

    A missing or unreadable file raises MediaError."""
    p = Path(path)
    if not p.is_file():
        raise MediaError(f"{p} does not exist; give an image, film or sound file")
    try:
        return _image_text(p)
    except (UnidentifiedImageError, Image.DecompressionBombError):
        return _media_text(p)
    except OSError as exc:
        raise MediaError(f"cannot read {p} ({exc})") from exc
