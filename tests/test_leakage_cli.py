"""`python -m curation.leakage` (and its earlier name `curation.audit`): exit codes for CI, options, and the files it writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from curation.leakage.__main__ import main
from curation.cli import run_cli
from curation.leakage.planting import plant_copy
from tests.shoes_data import PROJECT_ROOT


@pytest.fixture
def leaky(small_shoes):
    source = sorted((small_shoes / "train" / "adidas").iterdir())[0]
    plant_copy(source, small_shoes / "test" / "adidas", "jpeg_q30")
    return small_shoes


@pytest.fixture
def cache_dir(tmp_path_factory):
    """The session's leakage cache: the same shoes images are embedded once for all tests."""
    return tmp_path_factory.getbasetemp() / "leakage-cache"


def _args(data, tmp_path, cache_dir, *extra):
    return [str(data), "--reports-dir", str(tmp_path / "reports"), "--cache-dir", str(cache_dir), *extra]


def test_fail_on_leak_exits_1_on_a_leaky_dataset_and_0_without_the_flag(leaky, tmp_path, cache_dir, capsys):
    assert run_cli(main, _args(leaky, tmp_path, cache_dir)) == 0
    assert run_cli(main, _args(leaky, tmp_path, cache_dir, "--fail-on-leak")) == 1
    summary = json.loads((tmp_path / "reports" / "small_shoes" / "leakage" / "summary.json").read_text())
    assert summary["schema_version"] == 1 and summary["leaks"]["pairs"] == 1
    assert summary["params"]["cosine_near"] == 0.90
    assert "leak pairs: 1" in capsys.readouterr().out


def test_fail_on_leak_exits_0_on_a_clean_dataset(small_shoes, tmp_path, cache_dir):
    assert run_cli(main, _args(small_shoes, tmp_path, cache_dir, "--fail-on-leak")) == 0
    summary = json.loads((tmp_path / "reports" / "small_shoes" / "leakage" / "summary.json").read_text())
    assert summary["leaks"]["pairs"] == 0 and summary["pairs"]["exact"] == 0


def test_bad_input_exits_2_with_a_message(tmp_path, cache_dir, capsys):
    assert run_cli(main, _args(tmp_path / "nowhere", tmp_path, cache_dir)) == 2
    assert "error:" in capsys.readouterr().err
    assert run_cli(main, _args(tmp_path, tmp_path, cache_dir, "--cosine-near", "1.5")) == 2
    assert "cosine_near" in capsys.readouterr().err


def test_the_module_runs_as_a_process_and_its_exit_code_gates_ci(leaky, tmp_path, cache_dir):
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "CURATION_PROGRESS": "0", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "curation.leakage", *_args(leaky, tmp_path, cache_dir, "--fail-on-leak", "--no-embeddings")],
                          capture_output=True, text=True, env=env, cwd=PROJECT_ROOT, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "report:" in done.stdout
    # the earlier name still runs the same command, for CI jobs written against it
    help_text = subprocess.run([sys.executable, "-m", "curation.audit", "--help"], capture_output=True, text=True,
                               env=env, cwd=PROJECT_ROOT, timeout=60).stdout
    assert "--fail-on-leak" in help_text and "Exit codes" in help_text and "python -m curation.leakage" in help_text


def test_a_heavy_crop_is_caught_by_keypoints_and_the_keypoint_and_fade_options_reach_the_audit(small_shoes, tmp_path, cache_dir):
    source = sorted((small_shoes / "train" / "nike").iterdir())[0]
    plant_copy(source, small_shoes / "test" / "nike", "crop_25")
    leaks_file = tmp_path / "reports" / "small_shoes" / "leakage" / "pairs.csv"
    summary_file = leaks_file.with_name("summary.json")

    def leaks(*extra):
        assert run_cli(main, _args(small_shoes, tmp_path, cache_dir, *extra)) == 0
        import pandas as pd

        pairs = pd.read_csv(leaks_file)
        return pairs[pairs["leak"]], json.loads(summary_file.read_text())["params"]

    found, params = leaks()
    assert len(found) == 1 and found.iloc[0]["signal"] == "keypoints+aligned"
    assert params["inliers_near"] == 16 and params["verify"] is True
    for extra in (("--no-verify",), ("--inliers-near", "999", "--inliers-support", "999", "--align-min-inliers", "999")):
        missed, params = leaks(*extra)
        assert missed.empty, extra
    assert params["inliers_near"] == 999
    found, params = leaks("--no-faded", "--faded-near", "0.5")  # the fade step's settings reach the report
    assert params["faded"] is False and params["faded_near"] == 0.5 and "fade_score" in found.columns
