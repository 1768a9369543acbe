"""An uploaded file becomes an upright RGB photo, or a clear refusal with an HTTP status.

The checks are the integrity scan's (curation.image_probe.probe_image): a file the audit would list
as unreadable is refused here with the same words. Decoding is the shared one (curation.image_io:
EXIF rotation applied, transparency on white, 16-bit scaled, the first frame of an animation), the
one training saw.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_PIXELS = 40_000_000  # a phone photo is 12-50 Mpixels; a decompression bomb is refused before decoding


class BadInput(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Photo:
    image: Image.Image  # upright RGB
    data: bytes  # the bytes as uploaded
    sha256: str
    pixel_hash: str  # of the decoded pixels before rotation, as the sample table has it
    notes: list[str] = field(default_factory=list)  # what was done to read it


def _status_for(error: str) -> int:
    if error.startswith("too large"):
        return 413
    if error.startswith("not an image"):
        return 415
    return 400


def read_photo(data: bytes, *, max_bytes: int = MAX_UPLOAD_BYTES, max_pixels: int = MAX_PIXELS) -> Photo:
    """The decoded photo, or BadInput(status, message)."""
    from curation.image_io import load_rgb
    from curation.image_probe import probe_image

    if not data:
        raise BadInput(400, "empty file (0 bytes): nothing to classify")
    if len(data) > max_bytes:
        raise BadInput(413, f"file of {len(data) / 1e6:.1f} MB exceeds the upload limit of {max_bytes / 1e6:.0f} MB")
    with tempfile.TemporaryDirectory(prefix="curation-app-") as folder:
        path = Path(folder) / "upload"
        path.write_bytes(data)
        probe = probe_image(path, max_pixels=max_pixels)
        if probe["load_error"]:
            message = probe["load_error"]
            if message.startswith("not an image") and data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1"):
                message = "HEIC photo: this installation's Pillow cannot read HEIC; send a JPEG or PNG"
            raise BadInput(_status_for(probe["load_error"]), message)
        image = load_rgb(path)
    notes = []
    if probe.get("exif_orientation") not in (None, 1):
        notes.append(f"turned upright (EXIF orientation {probe['exif_orientation']})")
    if (probe.get("n_frames") or 1) > 1:
        notes.append(f"first frame of {probe['n_frames']}")
    if probe.get("mode") not in ("RGB", "L"):
        notes.append(f"converted from {probe.get('mode')} to RGB")
    return Photo(image, data, hashlib.sha256(data).hexdigest(), probe["pixel_hash"], notes)
