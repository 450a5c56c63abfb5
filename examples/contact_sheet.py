"""Contact sheet of an image dream: input, the result at each octave, output — and the objective's rise.

    python examples/contact_sheet.py chelsea.png sheet.png --backbone vgg16 --size 512

Prints the objective before and after (the acceptance figure: VGG16 on chelsea at 512 px rises ≥ 5×).
"""

from __future__ import annotations

import argparse
import json

from PIL import Image, ImageDraw

from mmdream.backbones import load_backbone
from mmdream.dream.image import DreamParams, dream_octaves
from mmdream.media.files import atomic_path
from mmdream.media.images import load_image, to_pil
from mmdream.objectives.terms import build_objective


def sheet(images: list[Image.Image], labels: list[str], height: int = 256) -> Image.Image:
    """Images side by side at a common height, each with a label underneath."""
    scaled = [im.resize((round(im.width * height / im.height), height), Image.Resampling.LANCZOS) for im in images]
    out = Image.new("RGB", (sum(s.width for s in scaled) + 8 * (len(scaled) + 1), height + 36), "white")
    draw = ImageDraw.Draw(out)
    x = 8
    for im, label in zip(scaled, labels):
        out.paste(im, (x, 8))
        draw.text((x, height + 14), label, fill="black")
        x += im.width + 8
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--backbone", default="vgg16")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--weights", default=None)
    args = parser.parse_args()

    backbone = load_backbone(args.backbone, weights_dir=args.weights)
    image = load_image(args.input, args.size)
    objective = build_objective(backbone)
    params = DreamParams()
    octaves = list(dream_octaves(image, backbone, objective, params))
    before, after = objective.evaluate(backbone, image), objective.evaluate(backbone, octaves[-1])
    labels = ["input"] + [f"octave {i + 1} ({o.shape[-1]}x{o.shape[-2]})" for i, o in enumerate(octaves[:-1])]
    labels.append(f"output: objective x{after / before:.1f}")
    with atomic_path(args.output) as tmp:
        sheet([to_pil(image)] + [to_pil(o) for o in octaves], labels).save(tmp)
    print(json.dumps({"backbone": args.backbone, "layers": objective.layers, "size": list(image.shape[-2:]),
                      "objective_before": before, "objective_after": after, "ratio": after / before}))


if __name__ == "__main__":
    main()
