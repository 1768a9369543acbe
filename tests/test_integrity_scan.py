import hashlib
import json
import subprocess
import sys

import pandas as pd
import pytest

from curation.checks import CHECKS, get_check
from curation.checks.base import FINDING_COLUMNS
from curation.checks.integrity import IntegrityParams
from curation.scan import scan_dataset
from tests.odd_images import write_odd_dataset


def tree_digest(root):
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*")):
        digest.update(path.relative_to(root).as_posix().encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture
def odd_dataset(tmp_path):
    root = tmp_path / "odd"
    return root, write_odd_dataset(root)


def test_every_odd_file_is_a_row_with_exactly_its_findings(odd_dataset, cache, reports_dir):
    root, expected = odd_dataset
    scanned = scan_dataset(root, reports_dir=reports_dir, cache=cache)
    assert sorted(scanned.table["path"]) == sorted(expected)  # nothing dropped, .DS_Store not a sample
    result = get_check("integrity")(scanned.table, IntegrityParams())
    found = result.findings.groupby("path")["code"].apply(set).to_dict()
    assert {path: found.get(path, set()) for path in expected} == expected
    assert list(result.findings.columns) == FINDING_COLUMNS
    errors = set(result.findings.loc[result.findings["severity"] == "error", "code"])
    assert errors == {"empty_file", "truncated", "not_an_image", "too_large"}


def test_huge_images_are_refused_from_the_header_without_decoding(odd_dataset, cache, reports_dir):
    root, _ = odd_dataset
    table = scan_dataset(root, reports_dir=reports_dir, cache=cache).table.set_index("path")
    huge = table.loc["train/shoe/huge.png"]
    assert (huge["width"], huge["height"]) == (10_000, 10_000)  # read from the header
    assert huge["load_error"].startswith("too large") and pd.isna(huge["pixel_hash"])
    assert table.loc["train/shoe/bomb.png", "load_error"].startswith("too large")


def test_real_format_mode_and_pixels_come_from_the_content(odd_dataset, cache, reports_dir):
    root, _ = odd_dataset
    table = scan_dataset(root, reports_dir=reports_dir, cache=cache).table.set_index("path")
    assert table.loc["train/shoe/png_named.jpg", "format"] == "PNG"
    assert table.loc["train/shoe/cmyk.jpg", "mode"] == "CMYK"
    assert table.loc["train/shoe/animated.gif", "n_frames"] == 3
    assert table.loc["train/shoe/rotated.jpg", "exif_orientation"] == 6
    assert table.loc["train/shoe/good.jpg", "load_error"] == ""


def test_scan_cli_writes_reports_and_never_modifies_the_dataset(odd_dataset, tmp_path, reports_dir):
    root, expected = odd_dataset
    before = tree_digest(root)
    done = subprocess.run(
        [sys.executable, "-m", "curation.scan", str(root), "--reports-dir", str(reports_dir),
         "--cache-dir", str(tmp_path / "cli-cache"), "--fail-on", "error"],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 1, done.stderr  # errors exist and --fail-on error was asked
    assert tree_digest(root) == before
    out = reports_dir / "odd"
    assert len(pd.read_parquet(out / "samples.parquet")) == len(expected)
    summary = json.loads((out / "integrity" / "summary.json").read_text())
    assert summary["counts_by_severity"]["error"] == 6  # empty, truncated, 2 not images, 2 too large
    assert summary["by_code"]["too_large"] == 2
    findings = pd.read_csv(out / "integrity" / "findings.csv")
    assert set(findings["path"]) == {p for p, codes in expected.items() if codes}
    assert "truncated" in done.stdout and "too_large" in done.stdout  # the printed summary table


def test_scan_cli_exit_codes(tmp_path, shoes_root, reports_dir):
    missing = subprocess.run([sys.executable, "-m", "curation.scan", "no-such-dataset"],
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2
    assert "CURATION_NO_SUCH_DATASET_DIR" in missing.stderr and "Traceback" not in missing.stderr


def test_the_registry_lists_integrity_with_its_contract():
    spec = CHECKS["integrity"]
    assert spec.default_params() == IntegrityParams()
    with pytest.raises(KeyError, match="known checks"):
        get_check("no-such-check")
