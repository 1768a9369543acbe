"""Real photos of things that are not shoes (scikit-image ships them), and a made 'image not available' graphic."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SKIMAGE_PHOTOS = ("astronaut", "coffee", "rocket", "chelsea", "page")


def _as_rgb(array: np.ndarray):
    from PIL import Image

    if array.dtype != np.uint8:
        array = array.astype("float64")
        array = (255 * (array - array.min()) / (np.ptp(array) or 1)).astype(np.uint8)
    return Image.fromarray(array).convert("RGB")


def not_available_graphic(size: int = 400):
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (size, size), (235, 235, 235))
    draw = ImageDraw.Draw(image)
    draw.rectangle([size * 0.15, size * 0.3, size * 0.85, size * 0.7], outline=(150, 150, 150), width=6)
    draw.text((size * 0.21, size * 0.45), "Image not\navailable", fill=(120, 120, 120),
              font=ImageFont.load_default(size=size // 14))
    return image


def write_foreign_images(folder: Path, names=SKIMAGE_PHOTOS, *, graphic: bool = True) -> list[Path]:
    """Write the named skimage photos (and the graphic) into `folder`; returns their paths."""
    import skimage.data

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in names:
        path = folder / f"foreign_{name}.jpg"
        _as_rgb(getattr(skimage.data, name)()).save(path, quality=90)
        written.append(path)
    if graphic:
        written.append(folder / "foreign_not_available.png")
        not_available_graphic().save(written[-1])
    return written
