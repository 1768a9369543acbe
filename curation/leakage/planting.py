"""Edits that turn a picture into a near-copy of itself, and planting such copies in a dataset.

The benchmark (bench/bench_leakage_quality.py) and the tests use them to measure and check that
the audit finds a copy whatever was done to it; a user can use them the same way to check the
audit's thresholds on their own images. Each edit is deterministic.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw, ImageEnhance, ImageFont, ImageOps

Edit = Callable[[Image.Image], Image.Image]


def jpeg(image: Image.Image, quality: int = 30) -> Image.Image:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def downscale(image: Image.Image, factor: float = 0.5) -> Image.Image:
    return image.resize((max(1, round(image.width * factor)), max(1, round(image.height * factor))), Image.BILINEAR)


def crop(image: Image.Image, fraction: float, corner: int = 0) -> Image.Image:
    """Cut `fraction` of each side's length away, from one of four corners."""
    dx, dy = round(image.width * fraction), round(image.height * fraction)
    left, top = [(0, 0), (dx, 0), (0, dy), (dx, dy)][corner % 4]
    return image.crop((left, top, left + image.width - dx, top + image.height - dy))


def rotate(image: Image.Image, degrees: float = 7) -> Image.Image:
    return image.rotate(degrees, resample=Image.BILINEAR, fillcolor=(255, 255, 255))


def brightness_contrast(image: Image.Image, brightness: float = 1.3, contrast: float = 0.75) -> Image.Image:
    return ImageEnhance.Contrast(ImageEnhance.Brightness(image).enhance(brightness)).enhance(contrast)


def hue_shift(image: Image.Image, shift: int = 40) -> Image.Image:
    hue, saturation, value = image.convert("HSV").split()
    hue = hue.point(lambda h: (h + shift) % 256)
    return Image.merge("HSV", (hue, saturation, value)).convert("RGB")


def grayscale(image: Image.Image) -> Image.Image:
    return ImageOps.grayscale(image).convert("RGB")


def watermark(image: Image.Image, text: str = "© SAMPLE") -> Image.Image:
    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    font = ImageFont.load_default(size=max(12, image.width // 7))
    draw.text((image.width * 0.08, image.height * 0.42), text, font=font, fill=(40, 40, 40, 150))
    return Image.alpha_composite(image.convert("RGBA"), layer).convert("RGB")


def letterbox(image: Image.Image, ratio: float = 4 / 3, colour=(0, 0, 0)) -> Image.Image:
    width = round(image.height * ratio)
    canvas = Image.new("RGB", (max(width, image.width), image.height), colour)
    canvas.paste(image, ((canvas.width - image.width) // 2, 0))
    return canvas


def compose(*edits: Edit) -> Edit:
    def edited(image: Image.Image) -> Image.Image:
        for edit in edits:
            image = edit(image)
        return image

    return edited


# name -> (edit, the kind the audit should report, file suffix)
EDITS: dict[str, tuple[Edit, str, str]] = {
    "png_resave": (lambda im: im, "exact", ".png"),
    "jpeg_q30": (jpeg, "near_duplicate", ".jpg"),
    "downscale_50": (downscale, "near_duplicate", ".jpg"),
    "crop_10": (lambda im: crop(im, 0.10, 1), "near_duplicate", ".jpg"),
    "crop_25": (lambda im: crop(im, 0.25, 2), "near_duplicate", ".jpg"),
    "hflip": (ImageOps.mirror, "near_duplicate", ".jpg"),
    "rotate_7": (rotate, "near_duplicate", ".jpg"),
    "brightness_contrast": (brightness_contrast, "near_duplicate", ".jpg"),
    "hue_shift": (hue_shift, "near_duplicate", ".jpg"),
    "grayscale": (grayscale, "near_duplicate", ".jpg"),
    "watermark": (watermark, "near_duplicate", ".jpg"),
    "letterbox": (letterbox, "near_duplicate", ".jpg"),
    "flip_crop_jpeg": (compose(ImageOps.mirror, lambda im: crop(im, 0.15, 3), lambda im: jpeg(im, 50)),
                       "near_duplicate", ".jpg"),
    "gray_downscale": (compose(grayscale, downscale), "near_duplicate", ".jpg"),
    "rotate_brightness": (compose(lambda im: rotate(im, -5), brightness_contrast), "near_duplicate", ".jpg"),
    "letterbox_watermark": (compose(watermark, lambda im: letterbox(im, colour=(255, 255, 255))),
                            "near_duplicate", ".jpg"),
}


def plant_copy(source: Path, target_dir: Path, edit_name: str, stem: str | None = None) -> Path:
    """Write `source` under edit `edit_name` into target_dir; a PNG re-save keeps the pixels exactly."""
    edit, _, suffix = EDITS[edit_name]
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / f"{stem or source.stem}_{edit_name}{suffix}"
    with Image.open(source) as image:
        edited = edit(image.convert("RGB"))
    edited.save(target, **({"quality": 92} if suffix == ".jpg" else {}))
    return target
