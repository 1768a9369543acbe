"""Reading what one image file really is, without ever raising.

`probe_image` returns the facts the sample table stores (real format from the content, size, mode,
frames, EXIF orientation, a hash of the decoded pixels) or a `load_error` saying why the file
cannot be used. Images whose header announces more pixels than `max_pixels` are refused before
any decoding, so a decompression bomb costs microseconds, not the machine's memory.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

# Bump when the probe's output changes, so cached probes are recomputed.
PROBE_VERSION = 1
DEFAULT_MAX_PIXELS = 80_000_000  # below Pillow's own bomb warning (about 89 Mpixels)
EXIF_ORIENTATION_TAG = 0x0112
_CHUNK = 1 << 20


def file_sha256(path: Path) -> tuple[str, int]:
    """sha256 hex digest and size in bytes of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def pixel_hash(image: Image.Image) -> str:
    """sha256 of the decoded RGB pixels and size: equal for a copy re-saved losslessly or with other metadata."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    digest = hashlib.sha256(f"{rgb.width}x{rgb.height}:".encode())
    digest.update(rgb.tobytes())
    return digest.hexdigest()


def _empty_probe() -> dict[str, Any]:
    return {
        "format": None,
        "width": None,
        "height": None,
        "mode": None,
        "n_frames": None,
        "exif_orientation": None,
        "pixel_hash": None,
        "load_error": "",
    }


def _exif_orientation(image: Image.Image) -> int | None:
    try:
        value = image.getexif().get(EXIF_ORIENTATION_TAG)
    except Exception:  # a broken EXIF block is not a broken image
        return None
    return int(value) if isinstance(value, int) else None


def probe_image(path: Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> dict[str, Any]:
    """Facts about one image file; never raises. `load_error` is "" when the image decodes fully."""
    result = _empty_probe()
    try:
        if path.stat().st_size == 0:
            result["load_error"] = "empty file (0 bytes)"
            return result
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's bomb and EXIF warnings become our own findings
            with Image.open(path) as image:
                _read_header(image, result)
                pixels = image.width * image.height
                if pixels > max_pixels:
                    result["load_error"] = (
                        f"too large: {image.width}x{image.height} ({pixels / 1e6:.0f} Mpixels) exceeds "
                        f"the limit of {max_pixels / 1e6:.0f} Mpixels; refused without decoding"
                    )
                    return result
                image.load()
                result["pixel_hash"] = pixel_hash(image)
    except Image.DecompressionBombError as exc:
        result["load_error"] = f"too large: {exc}; refused without decoding"
    except UnidentifiedImageError:
        result["load_error"] = "not an image: the content is no image format Pillow knows"
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        result["load_error"] = f"truncated or corrupt: {exc}"
    except Exception as exc:  # a probe must never crash a scan; the message keeps the cause
        result["load_error"] = f"unreadable: {type(exc).__name__}: {exc}"
    return result


def _read_header(image: Image.Image, result: dict[str, Any]) -> None:
    result.update(
        format=image.format,
        width=image.width,
        height=image.height,
        mode=image.mode,
        n_frames=int(getattr(image, "n_frames", 1)),
        exif_orientation=_exif_orientation(image),
    )
