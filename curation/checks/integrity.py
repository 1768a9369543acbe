"""The image integrity check: what in each file would trip a training or evaluation pipeline.

It reads only the sample table (the probe already decoded every image once), so it is instant
and its thresholds can change without touching an image.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

import pandas as pd

from curation.checks.base import CheckContext, CheckResult, finding, make_findings, params_dict
from curation.image_probe import DEFAULT_MAX_PIXELS

NAME = "integrity"

# Prefixes of the probe's load_error messages, in the order they are tried.
LOAD_ERROR_CODES = [
    ("empty file", "empty_file"),
    ("not an image", "not_an_image"),
    ("truncated or corrupt", "truncated"),
    ("too large", "too_large"),
]
MODE_FINDINGS = {
    "RGBA": ("alpha_channel", "has an alpha channel (RGBA): transparent areas turn black when converted naively"),
    "LA": ("alpha_channel", "grayscale with an alpha channel (LA)"),
    "PA": ("alpha_channel", "palette with an alpha channel (PA)"),
    "P": ("palette", "palette image (mode P): must be converted to RGB before training"),
    "CMYK": ("cmyk", "CMYK colour space: colours shift unless converted to RGB"),
    "YCbCr": ("odd_colour_space", "stored as YCbCr, not RGB"),
    "LAB": ("odd_colour_space", "stored as LAB, not RGB"),
    "HSV": ("odd_colour_space", "stored as HSV, not RGB"),
    "I;16": ("high_bit_depth", "16-bit image: 8-bit pipelines clip or rescale it"),
    "I;16B": ("high_bit_depth", "16-bit image: 8-bit pipelines clip or rescale it"),
    "I;16L": ("high_bit_depth", "16-bit image: 8-bit pipelines clip or rescale it"),
    "I": ("high_bit_depth", "32-bit integer image"),
    "F": ("high_bit_depth", "32-bit float image"),
    "L": ("grayscale", "grayscale (mode L): one channel where the model expects three"),
    "1": ("grayscale", "black and white (mode 1)"),
}
JPEG_FAMILY = {"JPEG", "MPO"}  # phone cameras write MPO: a JPEG with extra pictures, fine as .jpg


@dataclass
class IntegrityParams:
    min_side: int = 32  # pixels; smaller images carry too little to classify
    max_aspect_ratio: float = 4.0  # long side / short side
    max_pixels: int = DEFAULT_MAX_PIXELS  # the probe refuses larger images without decoding


def _extension_format(path: str) -> str | None:
    from PIL import Image

    return Image.registered_extensions().get(PurePosixPath(path).suffix.lower())


def _load_error_code(message: str) -> str:
    return next((code for prefix, code in LOAD_ERROR_CODES if message.startswith(prefix)), "unreadable")


def _extension_finding(sample) -> dict | None:
    real = sample["format"]
    claimed = _extension_format(sample["path"])
    if claimed == real or (claimed in JPEG_FAMILY and real in JPEG_FAMILY):
        return None
    suffix = PurePosixPath(sample["path"]).suffix or "(none)"
    return finding(sample, "extension_mismatch", "warning",
                   f"extension {suffix} but the content is {real}")


def _sample_findings(sample, params: IntegrityParams) -> list[dict]:
    if sample["load_error"]:
        return [finding(sample, _load_error_code(sample["load_error"]), "error", sample["load_error"])]
    rows = []
    if (row := _extension_finding(sample)) is not None:
        rows.append(row)
    if sample["mode"] in MODE_FINDINGS:
        code, message = MODE_FINDINGS[sample["mode"]]
        rows.append(finding(sample, code, "warning", message))
    orientation = sample["exif_orientation"]
    if pd.notna(orientation) and orientation not in (0, 1):
        rows.append(finding(sample, "exif_rotation", "warning",
                            f"EXIF orientation {orientation}: viewers rotate it, most loaders do not"))
    if pd.notna(sample["n_frames"]) and sample["n_frames"] > 1:
        rows.append(finding(sample, "animated", "warning",
                            f"animated, {sample['n_frames']} frames: only the first is used"))
    width, height = int(sample["width"]), int(sample["height"])
    if min(width, height) < params.min_side:
        rows.append(finding(sample, "too_small", "warning",
                            f"{width}x{height} is smaller than {params.min_side} px on a side"))
    ratio = max(width, height) / max(1, min(width, height))
    if ratio > params.max_aspect_ratio:
        rows.append(finding(sample, "extreme_aspect_ratio", "warning",
                            f"aspect ratio {ratio:.1f}:1 exceeds {params.max_aspect_ratio:g}:1", score=min(1.0, 1 / ratio)))
    return rows


def _dataset_findings(table: pd.DataFrame, context: CheckContext | None) -> list[dict]:
    descriptor = getattr(context, "descriptor", None)
    if descriptor is None or not descriptor.expected_counts:
        return []
    rows = []
    counts = table.groupby(["split", "label"]).size()
    for split, per_class in descriptor.expected_counts.items():
        for label, expected in per_class.items():
            found = int(counts.get((split, label), 0))
            if found != expected:
                rows.append(finding(None, "count_mismatch", "warning",
                                    f"{split}/{label}: {found} files, the descriptor expects {expected}",
                                    split=split, label=label))
    known = set(descriptor.classes)
    for label in sorted(set(table["label"]) - known) if known else []:
        rows.append(finding(None, "unknown_class", "warning",
                            f"class {label!r} is not among the descriptor's classes {sorted(known)}", label=label))
    return rows


def run(table: pd.DataFrame, params: IntegrityParams, context: CheckContext | None = None) -> CheckResult:
    """Findings for every sample with a problem, plus dataset-level count mismatches."""
    rows = [row for _, sample in table.iterrows() for row in _sample_findings(sample, params)]
    rows += _dataset_findings(table, context)
    findings = make_findings(rows, NAME)
    readable = int((table["load_error"] == "").sum())
    summary = {
        "samples": len(table),
        "readable": readable,
        "unreadable": len(table) - readable,
        "sizes": {f"{w}x{h}": int(n) for (w, h), n in table.groupby(["width", "height"]).size().items()},
    }
    result = CheckResult(NAME, params_dict(params), findings, summary)
    summary["by_code"] = result.counts_by_code()
    return result
