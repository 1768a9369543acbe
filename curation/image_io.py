"""Loading an image the one way every stage agrees on: EXIF rotation applied, RGB, transparency on white."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageOps


def to_rgb(image: Image.Image, background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """RGB copy of an image; transparent areas are composited on `background` (white), not black."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, background)
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16/32-bit: scale to 8 bits by the image's own range rather than clipping at 255.
        import numpy as np

        array = np.asarray(image, dtype=np.float64)
        low, high = float(array.min()), float(array.max())
        scaled = (array - low) / (high - low or 1.0) * 255.0
        return Image.fromarray(scaled.astype("uint8")).convert("RGB")
    return image.convert("RGB")


def load_rgb(path: Path) -> Image.Image:
    """Decode a file to an RGB image (raises on unreadable files: callers skip rows with load_error)."""
    with Image.open(path) as image:
        image.load()
        return to_rgb(image)
