"""Broken and odd image files made by the tests, each with the integrity findings it must raise."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def _picture(size=(64, 48), seed=0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header announces width x height but carries almost no data: a decompression bomb stand-in."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _rotated_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6
    return _encode(_picture(seed=5), "JPEG", exif=exif)


def _animated_gif() -> bytes:
    frames = [_picture(seed=s).convert("P") for s in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    return buffer.getvalue()


def odd_files() -> dict[str, tuple[bytes, set[str]]]:
    """file name -> (content, the set of integrity finding codes it must raise)."""
    good_jpeg = _encode(_picture(seed=1), "JPEG")
    return {
        "good.jpg": (good_jpeg, set()),
        "empty.jpg": (b"", {"empty_file"}),
        "truncated.jpg": (good_jpeg[: len(good_jpeg) // 2], {"truncated"}),
        "not_an_image.jpg": (b"this is a text file, not a picture\n" * 20, {"not_an_image"}),
        "notes.txt": (b"left here by accident\n", {"not_an_image"}),
        "png_named.jpg": (_encode(_picture(seed=2), "PNG"), {"extension_mismatch"}),
        "rgba.png": (_encode(_picture(seed=3).convert("RGBA"), "PNG"), {"alpha_channel"}),
        "palette.png": (_encode(_picture(seed=4).convert("P"), "PNG"), {"palette"}),
        "cmyk.jpg": (_encode(_picture(seed=6).convert("CMYK"), "JPEG"), {"cmyk"}),
        "sixteen_bit.png": (_encode(Image.fromarray(np.full((40, 40), 40000, dtype=np.uint16)), "PNG"), {"high_bit_depth"}),
        "gray.jpg": (_encode(_picture(seed=7).convert("L"), "JPEG"), {"grayscale"}),
        "rotated.jpg": (_rotated_jpeg(), {"exif_rotation"}),
        "animated.gif": (_animated_gif(), {"animated", "palette"}),
        "tiny.png": (_encode(_picture((16, 16), seed=8), "PNG"), {"too_small"}),
        "wide.png": (_encode(_picture((400, 50), seed=9), "PNG"), {"extreme_aspect_ratio"}),
        "huge.png": (_png_header_only(10_000, 10_000), {"too_large"}),
        "bomb.png": (_png_header_only(100_000, 100_000), {"too_large"}),
    }


def write_odd_dataset(root: Path) -> dict[str, set[str]]:
    """root/train/shoe/<odd files> plus one clean test image; returns relative path -> expected codes."""
    expected = {}
    for name, (content, codes) in odd_files().items():
        path = root / "train" / "shoe" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        expected[path.relative_to(root).as_posix()] = codes
    (root / "train" / "shoe" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")  # not a sample: never listed
    clean = root / "test" / "shoe" / "clean.jpg"
    clean.parent.mkdir(parents=True)
    clean.write_bytes(_encode(_picture(seed=10), "JPEG"))
    expected["test/shoe/clean.jpg"] = set()
    return expected
