"""Measurable attributes of every image, computed once (cached by file content), and the plain-word
predicates that name an error slice.

Attributes (one row per sample; NaN where the image could not be read or the value does not apply):
- bg_plain: share of the 2-px border within 24 levels of its median colour (1: a studio backdrop);
- bg_brightness: that border colour's luminance, 0-1;
- fill: share of the frame the object covers, when the background is plain enough to cut it out;
- centre_offset: distance of the object's centre from the frame's centre, in frame widths;
- object_value, object_saturation: mean HSV value and saturation of the object's pixels;
- object_colour, object_colour_share: the colour word most of the object's pixels have (white, black,
  grey or a hue's name) and that share; "" when the object cannot be cut out;
- colourfulness: Hasler and Suesstrunk's metric of the whole image (0: grey; above ~60: vivid);
- sharpness: variance of the Laplacian at 256 px, on 0-1 grey levels (low: blurred);
- min_side, aspect: from the sample table.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from curation.cache import ContentCache
from curation.engine import map_missing, per_image
from curation.image_io import load_rgb

ATTRIBUTE_KIND = "slice_attributes"
ATTRIBUTE_VERSION = 3
NUMERIC_ATTRIBUTES = ("bg_plain", "bg_brightness", "fill", "centre_offset", "object_value", "object_saturation",
                      "object_colour_share", "colourfulness", "sharpness")
SIDE = 256  # attributes are measured at this size, so that they mean the same at any resolution


def _object_mask(rgb: np.ndarray) -> np.ndarray | None:
    from training.shift import foreground_mask  # the shift proxy's cut-out: one definition of "the object"
    from PIL import Image

    mask = foreground_mask(Image.fromarray(rgb))
    return None if mask is None else mask > 0.5


def _border_stats(rgb: np.ndarray) -> tuple[float, float]:
    from training.shift import border_colour

    colour, plain = border_colour(rgb)
    luminance = float(colour @ np.array([0.299, 0.587, 0.114])) / 255.0
    return plain, luminance


def _colourfulness(rgb: np.ndarray) -> float:
    r, g, b = (rgb[..., i].astype("float64") for i in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def _sharpness(rgb: np.ndarray) -> float:
    from scipy import ndimage

    grey = rgb.astype("float64").mean(axis=2) / 255.0
    return float(ndimage.laplace(grey).var())


COLOUR_WORDS = ("white", "black", "grey", "red", "orange", "yellow", "green", "blue", "purple", "pink")
CHROMATIC_SHARE = 0.25
HUES = ((15, "red"), (45, "orange"), (70, "yellow"), (175, "green"), (255, "blue"), (290, "purple"),
        (345, "pink"), (360, "red"))


def _pixel_colour_words(hsv: np.ndarray) -> np.ndarray:
    """One colour word index (into COLOUR_WORDS) per pixel of an (n, 3) HSV array."""
    hue, saturation, value = hsv[:, 0] * 360, hsv[:, 1], hsv[:, 2]
    limits = np.array([limit for limit, _ in HUES])
    bins = np.searchsorted(limits, hue, side="right").clip(max=len(HUES) - 1)
    hue_word = np.array([COLOUR_WORDS.index(name) for _, name in HUES])[bins]
    words = np.where(saturation < 0.2, np.where(value >= 0.75, 0, 2), hue_word)
    return np.where(value < 0.25, 1, words)


def _object_colour(rgb: np.ndarray, mask: np.ndarray | None) -> tuple[float, float, str, float]:
    """Mean value and saturation of the object, its dominant colour word and that word's share of its
    pixels. Without a cut-out (a busy background) the colour is unknown (""): the frame's centre is
    as often jeans, a floor or a hand as the object, seen on the shoes set."""
    from skimage.color import rgb2hsv

    if mask is None or mask.sum() < 50:
        return float("nan"), float("nan"), "", float("nan")
    hsv = rgb2hsv(rgb)[mask]
    counts = np.bincount(_pixel_colour_words(hsv), minlength=len(COLOUR_WORDS))
    # a hue on a quarter of the object names it (a green Converse is mostly white sole, laces and lining)
    hue = 3 + int(counts[3:].argmax())
    word = hue if counts[hue] >= CHROMATIC_SHARE * counts.sum() else int(counts[:3].argmax())
    return float(hsv[:, 2].mean()), float(hsv[:, 1].mean()), COLOUR_WORDS[word], float(counts[word] / counts.sum())


def measure(path: Path) -> dict | None:
    """The image attributes of one file (see the module doc), or None when it cannot be decoded."""
    from PIL import Image

    try:
        image = load_rgb(path)
    except Exception:  # decoded once by the probe: a file changed since takes no part
        return None
    rgb = np.asarray(image.resize((SIDE, SIDE), Image.BILINEAR))
    plain, brightness = _border_stats(rgb)
    mask = _object_mask(rgb)
    fill, offset = float("nan"), float("nan")
    if mask is not None:
        ys, xs = np.nonzero(mask)
        fill = float(mask.mean())
        offset = float(np.hypot(xs.mean() / SIDE - 0.5, ys.mean() / SIDE - 0.5))
    value, saturation, colour, colour_share = _object_colour(rgb, mask)
    return {"bg_plain": plain, "bg_brightness": brightness, "fill": fill, "centre_offset": offset,
            "object_value": value, "object_saturation": saturation, "object_colour": colour,
            "object_colour_share": colour_share,
            "colourfulness": _colourfulness(rgb), "sharpness": _sharpness(rgb)}


def image_attributes(table: pd.DataFrame, root: Path, *, cache: ContentCache, workers: int = 2) -> pd.DataFrame:
    """One row per table row (same order): sample_id, split, the image attributes, min_side, aspect."""
    known, _ = map_missing(per_image(measure, desc="image attributes", fmt="json"), table[table["load_error"] == ""],
                           root, cache=cache, kind=ATTRIBUTE_KIND, params={"version": ATTRIBUTE_VERSION, "side": SIDE},
                           workers=workers)
    rows = [known.get(sha) or {} for sha in table["sha256"]]
    frame = pd.DataFrame(rows, columns=list(NUMERIC_ATTRIBUTES), index=table.index).astype("float64")
    frame["object_colour"] = [row.get("object_colour", "") for row in rows]
    width = pd.to_numeric(table["width"], errors="coerce")
    height = pd.to_numeric(table["height"], errors="coerce")
    frame["min_side"] = np.minimum(width, height)
    frame["aspect"] = width / height
    frame.insert(0, "split", table["split"].astype(str).to_numpy())
    frame.insert(0, "sample_id", table["sample_id"].astype(str).to_numpy())
    return frame.reset_index(drop=True)


# --- the words ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Predicate:
    name: str  # a phrase a person checks at a glance, "{noun}" replaced by the object's noun
    column: str  # the attribute it reads (documentation; the test is `holds`)


def predicates(attrs: pd.DataFrame, noun: str = "object") -> pd.DataFrame:
    """Boolean columns, one per plain-word predicate (named with `noun`), over the attribute table.
    Thresholds are fixed, not fitted, so that a name means the same on every dataset."""
    colour = attrs["object_colour"]
    columns = {
        "background plain": attrs["bg_plain"] >= 0.85,
        "background busy (a scene, not a backdrop)": attrs["bg_plain"] < 0.6,
        "background plain white": (attrs["bg_plain"] >= 0.85) & (attrs["bg_brightness"] >= 0.9),
        "background plain and dark": (attrs["bg_plain"] >= 0.85) & (attrs["bg_brightness"] < 0.35),
        f"{noun} fills most of the frame": attrs["fill"] >= 0.45,
        f"{noun} small in the frame": attrs["fill"] < 0.12,
        f"{noun} off centre": attrs["centre_offset"] >= 0.12,
        "grey-scale or nearly": attrs["colourfulness"] < 8,
        "vivid colours": attrs["colourfulness"] >= 60,
        "blurred": attrs["sharpness"] < 0.0015,
        "low resolution (under 128 px)": attrs["min_side"] < 128,
        "portrait (taller than wide)": attrs["aspect"] < 0.8,
        "landscape (wider than tall)": attrs["aspect"] > 1.25,
    }
    for name in COLOUR_WORDS:
        columns[f"{noun} colour {name}"] = colour == name
    for split in sorted(attrs["split"].unique()):
        columns[f"from split {split}"] = attrs["split"] == split
    return pd.DataFrame({name: values.fillna(False).astype(bool) for name, values in columns.items()})
