"""A proxy for "photos from elsewhere": evaluation images under realistic shifts, made here.

The web is out of reach, so the model's robustness is measured on the evaluation split's own
images, changed the way photos from other sources differ from product shots:
- background: the shoe cut out of its plain studio background and pasted on a real photo
  (skimage's bundled brick, grass, gravel, coffee-table and outdoor photos);
- crop: a random crop keeping 45-70 % of the area and the shoe's centre, as a close-up frames it;
- blur: a Gaussian blur of 1.5-2.5 px (at 240 px), as a phone's motion or focus gives;
- jpeg: re-encoded at quality 12-25, as shop thumbnails are;
- lighting: brightness, contrast and colour temperature changed together (0.55-1.45);
- rotate: turned 8-15 degrees either way, the corners filled with the border colour;
- elsewhere: background, lighting, a small turn and a crop at once.

Every shifted image is a function of (the image's bytes, the shift, the seed): a rerun makes the
same files. An image whose background is not plain has no "background" shift (it keeps its own
and is counted as unchanged), so the figure says how many images each shift really changed.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

BORDER_TOLERANCE = 24  # per-channel distance from the border colour: the border is plain when most are within
# A pixel this close to the border colour is background. Tight, because a white shoe's own whites sit
# within 24 levels of a white studio background (at 24 its sole and toe were cut away, seen on the shoes set).
CUTOUT_TOLERANCE = 8
PLAIN_BORDER_SHARE = 0.85  # share of border pixels near the border colour for a plain background
MIN_FOREGROUND_SHARE = 0.03  # an object smaller than this is not cut out
BACKDROPS = ("brick", "grass", "gravel", "coffee", "rocket")
SHIFT_VERSION = 2  # raise when a shift changes: saved shifted images are kept per version and seed


@dataclass(frozen=True)
class Shifted:
    image: Image.Image
    changed: bool  # False: this shift did not apply to this image (kept as it was)


def _rng(data: bytes, shift: str, seed: int) -> np.random.Generator:
    digest = hashlib.sha256(data + shift.encode() + seed.to_bytes(8, "little")).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def border_colour(rgb: np.ndarray) -> tuple[np.ndarray, float]:
    """The median colour of the 2-px frame and the share of frame pixels close to it."""
    frame = np.concatenate([rgb[:2].reshape(-1, 3), rgb[-2:].reshape(-1, 3),
                            rgb[:, :2].reshape(-1, 3), rgb[:, -2:].reshape(-1, 3)]).astype("int16")
    colour = np.median(frame, axis=0)
    near = (np.abs(frame - colour).max(axis=1) <= BORDER_TOLERANCE).mean()
    return colour, float(near)


def foreground_mask(image: Image.Image) -> np.ndarray | None:
    """The object's pixels (float 0-1, edges feathered) when the background is plain, else None."""
    from scipy import ndimage

    rgb = np.asarray(image.convert("RGB"))
    colour, plain = border_colour(rgb)
    if plain < PLAIN_BORDER_SHARE:
        return None
    mask = np.abs(rgb.astype("int16") - colour).max(axis=2) > CUTOUT_TOLERANCE
    mask = ndimage.binary_closing(mask, iterations=2)
    mask = ndimage.binary_fill_holes(mask)
    if mask.mean() < MIN_FOREGROUND_SHARE:
        return None
    soft = Image.fromarray((mask * 255).astype("uint8")).filter(ImageFilter.GaussianBlur(1.0))
    return np.asarray(soft, dtype="float32") / 255.0


def _backdrop(size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    import skimage.data

    name = BACKDROPS[int(rng.integers(len(BACKDROPS)))]
    photo = np.asarray(getattr(skimage.data, name)())
    if photo.ndim == 2:  # the texture photos are grey: give them a plausible tint
        tint = rng.uniform(0.75, 1.15, size=3)
        photo = np.clip(photo[..., None] * tint, 0, 255).astype("uint8")
    h, w = photo.shape[:2]
    side = int(min(h, w) * rng.uniform(0.5, 1.0))
    y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    patch = Image.fromarray(photo[y:y + side, x:x + side]).resize(size, Image.BILINEAR)
    return np.asarray(patch, dtype="float32")


def put_on(image: Image.Image, mask: np.ndarray, backdrop: np.ndarray) -> Image.Image:
    """The image's object (foreground_mask) over a backdrop of the same size (float RGB)."""
    rgb = np.asarray(image.convert("RGB"), dtype="float32")
    mixed = rgb * mask[..., None] + backdrop * (1 - mask[..., None])
    return Image.fromarray(np.clip(mixed, 0, 255).astype("uint8"))


def background(image: Image.Image, rng: np.random.Generator) -> Shifted:
    mask = foreground_mask(image)
    if mask is None:
        return Shifted(image, False)
    return Shifted(put_on(image, mask, _backdrop(image.size, rng)), True)


def _focus(image: Image.Image) -> tuple[float, float]:
    """The point a crop must keep: the centre of the object's box on a plain background, else the image's."""
    mask = foreground_mask(image)
    if mask is None:
        return image.width / 2, image.height / 2
    ys, xs = np.nonzero(mask > 0.5)
    return (xs.min() + xs.max()) / 2, (ys.min() + ys.max()) / 2


def _window_start(length: int, window: int, focus: float, rng: np.random.Generator) -> int:
    """A window start that keeps `focus` in the window's middle half (a crop that loses the shoe is
    no photo of it)."""
    low = max(0, int(np.ceil(focus - 0.75 * window)))
    high = min(length - window, int(focus - 0.25 * window))
    return int(rng.integers(low, high + 1)) if high >= low else int(np.clip(focus - window / 2, 0, length - window))


def crop(image: Image.Image, rng: np.random.Generator, focus: tuple[float, float] | None = None) -> Shifted:
    area = rng.uniform(0.45, 0.70)
    aspect = np.exp(rng.uniform(np.log(0.8), np.log(1.25)))
    w = min(image.width, int(round(image.width * np.sqrt(area * aspect))))
    h = min(image.height, int(round(image.height * np.sqrt(area / aspect))))
    fx, fy = focus if focus is not None else _focus(image)
    x, y = _window_start(image.width, w, fx, rng), _window_start(image.height, h, fy, rng)
    return Shifted(image.crop((x, y, x + w, y + h)).resize(image.size, Image.BICUBIC), True)


def blur(image: Image.Image, rng: np.random.Generator) -> Shifted:
    radius = rng.uniform(1.5, 2.5) * max(image.size) / 240
    return Shifted(image.filter(ImageFilter.GaussianBlur(radius)), True)


def jpeg(image: Image.Image, rng: np.random.Generator) -> Shifted:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=int(rng.integers(12, 26)))
    buffer.seek(0)
    return Shifted(Image.open(buffer).convert("RGB"), True)


def lighting(image: Image.Image, rng: np.random.Generator) -> Shifted:
    shifted = ImageEnhance.Brightness(image).enhance(rng.uniform(0.55, 1.45))
    shifted = ImageEnhance.Contrast(shifted).enhance(rng.uniform(0.6, 1.3))
    warm = rng.uniform(-0.15, 0.15)  # colour temperature: red up and blue down, or the reverse
    gains = np.array([1 + warm, 1.0, 1 - warm], dtype="float32")
    rgb = np.asarray(shifted.convert("RGB"), dtype="float32") * gains
    return Shifted(Image.fromarray(np.clip(rgb, 0, 255).astype("uint8")), True)


def rotate(image: Image.Image, rng: np.random.Generator) -> Shifted:
    angle = rng.uniform(8, 15) * rng.choice([-1, 1])
    colour, _ = border_colour(np.asarray(image.convert("RGB")))
    fill = tuple(int(c) for c in colour)
    return Shifted(image.rotate(angle, resample=Image.BICUBIC, fillcolor=fill), True)


def elsewhere(image: Image.Image, rng: np.random.Generator) -> Shifted:
    """A product photo as another source would show it: other background and light, a turn, a crop
    that keeps the shoe."""
    focus = _focus(image)
    placed = background(image, rng)
    shifted = lighting(placed.image, rng).image
    angle = rng.uniform(-8, 8)
    fill = tuple(int(c) for c in border_colour(np.asarray(shifted))[0])
    turned = shifted.rotate(angle, resample=Image.BICUBIC, center=focus, fillcolor=fill)
    return Shifted(crop(turned, rng, focus=focus).image, True)


SHIFTS: dict[str, Callable[[Image.Image, np.random.Generator], Shifted]] = {
    "background": background, "crop": crop, "blur": blur, "jpeg": jpeg, "lighting": lighting,
    "rotate": rotate, "elsewhere": elsewhere,
}


def shifted_path(shift: str, label: str, path: str) -> str:
    """Where the shifted copy of the dataset file `path` is kept, relative to the shifted images' folder."""
    stem = Path(path).with_suffix("").as_posix().replace("/", "__")
    return f"{shift}/{label}/{stem}.png"


def shift_image(data: bytes, shift: str, seed: int = 0) -> Shifted:
    """`shift` applied to the image file's bytes (EXIF rotation applied first), deterministically."""
    from curation.image_io import load_rgb

    if shift not in SHIFTS:
        raise ValueError(f"shift must be one of {', '.join(SHIFTS)}, not {shift!r}")
    image = load_rgb(io.BytesIO(data))
    return SHIFTS[shift](image, _rng(data, shift, seed))
