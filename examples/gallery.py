"""The README's gallery, made from the shared media with the ``mmdream`` commands themselves.

    MMDREAM_WEIGHTS=../shared/weights MMDREAM_MEDIA=../shared/media python examples/gallery.py docs/gallery

Writes six JPEGs (each well under 200 KB): ``image_dream.jpg`` (VGG16's classic layers on a photo, before | after),
``class_dream.jpg`` (a generator's face dreamed until EfficientNet-Lite0 sees sunglasses, beside a plain sample),
``style.jpg`` (content | style | result), ``film_strip.jpg`` (frames of a film over the same frames dreamed),
``sound.jpg`` (a sound's spectrogram before and after a dream toward Bark) and ``gan_walk.jpg`` (frames of a GAN's
latent walk to music). ``--only`` makes some of them. Modest sizes: a few minutes of CPU.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw

from mmdream.cli import main as mmdream
from mmdream.media.files import atomic_path
from mmdream.media.video import read_frames

HEIGHT = 240  # height of each picture in a panel, pixels
QUALITY = 85
QUIET = ("--progress", "none")


def run(*argv: str) -> None:
    """One ``mmdream`` command, in this process; stop on its failure."""
    print("mmdream", " ".join(argv), file=sys.stderr, flush=True)
    code = mmdream([*argv])
    if code != 0:
        sys.exit(f"gallery: mmdream {argv[0]} failed with exit status {code}")


def panel(images: list[Image.Image], labels: list[str], height: int = HEIGHT) -> Image.Image:
    """Pictures side by side at a common height, each labelled underneath."""
    scaled = [im.convert("RGB").resize((round(im.width * height / im.height), height), Image.Resampling.LANCZOS)
              for im in images]
    out = Image.new("RGB", (sum(s.width for s in scaled) + 6 * (len(scaled) + 1), height + 26), "white")
    draw = ImageDraw.Draw(out)
    x = 6
    for im, label in zip(scaled, labels):
        out.paste(im, (x, 6))
        draw.text((x, height + 10), label, fill="black")
        x += im.width + 6
    return out


def rows(top: Image.Image, bottom: Image.Image) -> Image.Image:
    out = Image.new("RGB", (max(top.width, bottom.width), top.height + bottom.height), "white")
    out.paste(top, (0, 0))
    out.paste(bottom, (0, top.height))
    return out


def save(image: Image.Image, path: Path) -> None:
    with atomic_path(path) as tmp:
        image.convert("RGB").save(tmp, format="JPEG", quality=QUALITY, optimize=True)
    print(f"gallery: {path} ({path.stat().st_size // 1024} KB)", file=sys.stderr)


def film_frames(path: Path, picks: list[int], size: tuple[int, int]) -> list[Image.Image]:
    wanted = set(picks)
    return [Image.fromarray(f) for i, f in enumerate(read_frames(path, size=size, stop=max(picks) + 1))
            if i in wanted]


def image_dream(images: Path, tmp: Path, out: Path) -> None:
    run("image", str(images / "chelsea.png"), str(tmp / "dream.png"), "--size", "360", *QUIET)
    save(panel([Image.open(images / "chelsea.png"), Image.open(tmp / "dream.png")],
               ["chelsea.png", "mmdream image (VGG16, relu4_3 + relu5_2)"]), out / "image_dream.jpg")


def class_dream(_images: Path, tmp: Path, out: Path) -> None:
    # A class dream through a generator: its latent is optimised until EfficientNet-Lite0 sees the class, so the
    # class appears as the generator draws it (a pixel-space class dream of this small net stays faint).
    run("gan", "sample", "dcgan_faces64", str(tmp / "sample.png"), "--count", "1", "--size", "192")
    run("gan", "dream", "dcgan_faces64", str(tmp / "class.png"), "-b", "efficientnet_lite0", "--class",
        "sunglasses", "--size", "192", "--restarts", "8", "--steps", "200", *QUIET)
    save(panel([Image.open(tmp / "sample.png"), Image.open(tmp / "class.png")],
               ["gan sample dcgan_faces64", "gan dream --class sunglasses"], 192), out / "class_dream.jpg")


def style(images: Path, tmp: Path, out: Path) -> None:
    painting = images / "style_starry_night.jpg"
    run("style", str(images / "chelsea.png"), str(painting), str(tmp / "style.png"), "--size", "256", "--steps",
        "60", *QUIET)
    save(panel([Image.open(images / "chelsea.png"), Image.open(painting), Image.open(tmp / "style.png")],
               ["content", "style", "mmdream style (VGG16, Gram)"]), out / "style.jpg")


def film_strip(media: Path, tmp: Path, out: Path) -> None:
    film = media / "video" / "bbb_320x180.mp4"
    run("video", str(film), str(tmp / "film.mp4"), "--frames", "0:48", "--size", "256", *QUIET)
    picks, size = [0, 15, 31, 47], (256, 144)
    save(rows(panel(film_frames(film, picks, size), [f"frame {i}" for i in picks], 144),
              panel(film_frames(tmp / "film.mp4", picks, size), [f"dreamed frame {i}" for i in picks], 144)),
         out / "film_strip.jpg")


def sound(media: Path, tmp: Path, out: Path) -> None:
    run("audio", str(media / "audio" / "speech_front_center.wav"), str(tmp / "bark.wav"), "--class", "Bark",
        "--preview", str(tmp / "sound.png"), *QUIET)
    save(Image.open(tmp / "sound.png"), out / "sound.jpg")


def gan_walk(media: Path, tmp: Path, out: Path) -> None:
    run("gan", "walk", "dcgan_faces64", str(tmp / "walk.mp4"), "--audio", str(media / "audio" / "music_guitar_em9.wav"),
        "--fps", "8", "--size", "128", *QUIET)
    frames = [Image.fromarray(f) for f in read_frames(tmp / "walk.mp4")]
    picks = [round(i * (len(frames) - 1) / 7) for i in range(8)]
    save(panel([frames[i] for i in picks], [f"{i / 8:.1f} s" for i in picks], 128), out / "gan_walk.jpg")


# name -> (maker, which media folder it reads: images or the whole media folder)
PANELS = {"image_dream": (image_dream, "images"), "class_dream": (class_dream, "images"), "style": (style, "images"),
          "film_strip": (film_strip, ""), "sound": (sound, ""), "gan_walk": (gan_walk, "")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="folder for the JPEGs (e.g. docs/gallery)")
    parser.add_argument("--only", default=",".join(PANELS), help="comma list of panels to make (default: all): "
                                                                 + ", ".join(PANELS))
    args = parser.parse_args()
    media = Path(os.environ.get("MMDREAM_MEDIA") or sys.exit("gallery: set MMDREAM_MEDIA to the shared media"))
    names = [n for n in args.only.split(",") if n]
    unknown = [n for n in names if n not in PANELS]
    if unknown:
        sys.exit(f"gallery: unknown panel(s) {', '.join(unknown)}; choose from {', '.join(PANELS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mmdream-gallery-") as d:
        for name in names:
            maker, folder = PANELS[name]
            maker(media / folder if folder else media, Path(d), args.out)


if __name__ == "__main__":
    main()
