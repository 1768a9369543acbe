"""Thumbnails of rejected duplicates, so the report can show what was refused next to what it copies.

A rejected candidate is never written to the output split (a dataset folder must hold only kept
images), so its normalised picture is kept as a small JPEG in the ContentCache, keyed by the sha256
of the downloaded bytes (the manifest's `sha256`). A report drawn after the cache was cleared shows
a placeholder instead.
"""

from __future__ import annotations

import base64
import io

from PIL import Image

from curation.cache import ContentCache

THUMBNAIL_KIND = "scrape_rejected_thumbnail"
THUMBNAIL_PARAMS = {"size": 160, "quality": 85, "version": 1}


def store_thumbnail(cache: ContentCache, sha256: str, image: Image.Image) -> None:
    small = image.convert("RGB")
    small.thumbnail((THUMBNAIL_PARAMS["size"], THUMBNAIL_PARAMS["size"]))
    buffer = io.BytesIO()
    small.save(buffer, "JPEG", quality=THUMBNAIL_PARAMS["quality"])
    cache.put_many(THUMBNAIL_KIND, THUMBNAIL_PARAMS, {sha256: buffer.getvalue()}, fmt="bytes")


def thumbnail_uris(cache: ContentCache, sha256s: list[str]) -> dict[str, str]:
    """Data URIs of the stored thumbnails for those downloads that have one."""
    found = cache.get_many(THUMBNAIL_KIND, THUMBNAIL_PARAMS, [s for s in sha256s if s])
    return {sha: "data:image/jpeg;base64," + base64.b64encode(blob).decode() for sha, blob in found.items()}
