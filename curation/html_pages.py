"""Helpers for self-contained HTML reports: thumbnails inlined as data URIs, text always escaped.

Reports must read offline and survive being copied elsewhere, so images are embedded, and every
file name, label or message is escaped (a file may be named `<script>.jpg`).
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

PLACEHOLDER = (
    "data:image/svg+xml;base64,"
    + base64.b64encode(
        b'<svg xmlns="http://www.w3.org/2000/svg" width="96" height="96"><rect width="96" height="96" '
        b'fill="#eee"/><text x="48" y="52" font-size="12" text-anchor="middle" fill="#a00">unreadable</text></svg>'
    ).decode()
)


def escape(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def thumbnail_data_uri(path: Path, size: int = 160) -> str:
    """A JPEG thumbnail as a data URI, or a placeholder for a file that does not decode."""
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as image:
            if image.width * image.height > 80_000_000:
                return PLACEHOLDER
            image = ImageOps.exif_transpose(image)
            image.thumbnail((size, size))
            buffer = io.BytesIO()
            image.convert("RGB").save(buffer, format="JPEG", quality=85)
    except Exception:  # an unreadable image is shown as such, never a broken report
        return PLACEHOLDER
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


PAGE_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222}
table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}
th{background:#f4f4f4}.error{color:#a00;font-weight:600}.warning{color:#a60}.info{color:#555}
.card{display:inline-block;vertical-align:top;width:200px;margin:.4rem;padding:.4rem;border:1px solid #ddd;border-radius:6px;font-size:.8rem;word-break:break-all}
.card img{max-width:190px;max-height:190px;display:block;margin:auto}
"""


def page(title: str, body: str) -> str:
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(title)}</title>"
            f"<style>{PAGE_STYLE}</style></head><body><h1>{escape(title)}</h1>{body}</body></html>\n")


def table_html(rows: list[dict], columns: list[str]) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{escape(r.get(c, ''))}</td>" for c in columns) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
