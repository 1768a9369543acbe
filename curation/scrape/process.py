"""Turning downloaded bytes into one normalised JPEG, or a reason why not.

Decoded fully (a truncated file fails here, not later in training); EXIF rotation applied; RGB
with transparency on white (`curation.image_io.to_rgb`); fitted to the target size; re-encoded as
JPEG. Images too small, of an odd shape or blank are rejected.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from curation.image_io import to_rgb
from curation.image_probe import pixel_hash
from curation.scrape.config import ImageRules


class Rejected(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


@dataclass
class ProcessedImage:
    jpeg: bytes
    image: Image.Image  # the normalised RGB image, as written
    source_rgb: Image.Image  # the downloaded picture, rotated and RGB, before resizing
    source_pixel_hash: str  # of the decoded source pixels, comparable with the sample table's pixel_hash
    source_format: str
    source_size: tuple[int, int]


def process_image(data: bytes, rules: ImageRules, size: tuple[int, int]) -> ProcessedImage:
    """Decode, check and normalise one downloaded image; raises Rejected with a reason code."""
    source = _decode(data, rules)
    width, height = source.size
    if min(width, height) < rules.min_side:
        raise Rejected("too_small", f"{width}x{height}, the smallest side must be at least {rules.min_side}")
    ratio = max(width, height) / min(width, height)
    if ratio > rules.max_aspect_ratio:
        raise Rejected("odd_shape", f"{width}x{height} (aspect ratio {ratio:.1f} > {rules.max_aspect_ratio:g})")
    rgb = to_rgb(source)
    if float(np.asarray(rgb.convert("L"), dtype=np.float32).std()) < rules.min_std:
        raise Rejected("blank", "the image is (nearly) one flat colour")
    fitted = fit(rgb, size, rules.resize_mode)
    buffer = io.BytesIO()
    fitted.save(buffer, "JPEG", quality=rules.jpeg_quality, optimize=True)
    return ProcessedImage(buffer.getvalue(), fitted, rgb, pixel_hash(source), source.format or "", (width, height))


def _decode(data: bytes, rules: ImageRules) -> Image.Image:
    if not data:
        raise Rejected("not_an_image", "empty body")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image = Image.open(io.BytesIO(data))
            if image.width * image.height > rules.max_pixels:
                raise Rejected("too_large", f"{image.width}x{image.height} exceeds {rules.max_pixels} pixels")
            image.load()
            return image
    except Rejected:
        raise
    except Image.DecompressionBombError as exc:
        raise Rejected("too_large", str(exc)) from exc
    except UnidentifiedImageError as exc:
        head = data[:64].lstrip().lower()
        kind = "an HTML page" if head.startswith((b"<!doctype html", b"<html")) else "no image format Pillow knows"
        raise Rejected("not_an_image", f"the content is {kind}") from exc
    except Exception as exc:  # truncated, corrupt, unsupported mode: any decoder failure
        raise Rejected("corrupt", f"{type(exc).__name__}: {str(exc)[:200]}") from exc


def fit(image: Image.Image, size: tuple[int, int], mode: str) -> Image.Image:
    """Resize to exactly `size`: pad on white keeping the aspect ratio, crop the centre, or stretch."""
    if image.size == size:
        return image
    if mode == "stretch":
        return image.resize(size, Image.Resampling.LANCZOS)
    if mode == "crop":
        return ImageOps.fit(image, size, Image.Resampling.LANCZOS)
    return ImageOps.pad(image, size, Image.Resampling.LANCZOS, color=(255, 255, 255))
