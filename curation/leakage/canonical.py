"""One canonical view of a picture for hashing and keypoints: uniform borders trimmed.

Letterbox bars, padding and plain studio background around a product carry no content, yet they
move a perceptual hash and shrink the content in a keypoint detector's fixed-size input. Trimming
them on both sides makes a letterboxed or padded copy, and a crop that only cut background, hash
like the original.
"""

from __future__ import annotations

from PIL import Image, ImageChops

TOLERANCE = 24  # per-channel difference from the border colour still counted as border (JPEG noise)
MIN_KEPT = 0.05  # never trim to less than this fraction of either side (a blank image stays whole)
PASSES = 3  # black bars around a white studio background take two passes


def trim_borders(image: Image.Image) -> Image.Image:
    """The image cropped to the box that differs from its corner colour, repeated while it changes."""
    for _ in range(PASSES):
        box = _content_box(image)
        if box is None or box == (0, 0, image.width, image.height):
            break
        image = image.crop(box)
    return image


def _content_box(image: Image.Image) -> tuple[int, int, int, int] | None:
    rgb = image.convert("RGB")
    background = Image.new("RGB", rgb.size, rgb.getpixel((0, 0)))
    mask = ImageChops.difference(rgb, background).convert("L").point(lambda v: 255 if v > TOLERANCE else 0)
    box = mask.getbbox()
    if box is None:
        return None
    width, height = box[2] - box[0], box[3] - box[1]
    if width < MIN_KEPT * image.width or height < MIN_KEPT * image.height:
        return None
    return box
