"""`python -m curation run` end to end on a small real subset: every stage, one report, a cached re-run."""

import json
import shutil

import pytest

from curation.__main__ import main as curation_main
from curation.browser import dump_dom
from curation.pipeline.config import STAGES
from curation.pipeline.report import SECTIONS
from tests.shoes_data import copy_subset


@pytest.fixture
def audited(tmp_path, shoes_root):
    data = copy_subset(shoes_root, tmp_path / "mini", {"train": 8, "test": 4})
    extra = tmp_path / "mini" / "test_extra"
    for label in ("adidas", "converse", "nike"):
        (extra / label).mkdir(parents=True)
        shutil.copyfile(shoes_root / "test" / label / "20.jpg", extra / label / "web_20.jpg")
    shutil.copyfile(shoes_root / "train" / "nike" / "38.jpg", data / "test" / "nike" / "leaked.jpg")  # a planted leak
    argv = ["run", str(data), "--reports-dir", str(tmp_path / "reports"), "--cache-dir", str(tmp_path / "cache"),
            "--image-size", "64", "--epochs", "1", "--frozen-epochs", "0", "--folds", "2", "--threads", "1"]
    return data, tmp_path / "reports" / "mini", argv


def test_a_run_goes_through_every_stage_and_a_rerun_reuses_them(audited, capsys):
    data, report_dir, argv = audited
    assert curation_main(argv) == 0
    first = capsys.readouterr().out
    assert f"ran: {', '.join(STAGES)}; reused: nothing" in first
    state = json.loads((report_dir / "run_state.json").read_text())["stages"]
    assert set(state) == set(STAGES)
    assert state["audit"]["summary"]["leak_pairs"] == 1 and state["labels"]["summary"]["source"] == "folds"
    assert state["review"]["summary"]["samples"] == 40 and state["review"]["summary"]["views"]["leaks"] == 2

    assert_review_matches_the_reports(report_dir)
    assert curation_main(argv + ["--fail-on-leak"]) == 1  # the leak exists; nothing is recomputed
    assert f"ran: nothing; reused: {', '.join(STAGES)}" in capsys.readouterr().out


def assert_review_matches_the_reports(report_dir):
    """The FiftyOne dataset holds what the stages wrote: predictions, folds, leaks, label issues."""
    import fiftyone as fo
    import pandas as pd
    from fiftyone import ViewField as F

    dataset = fo.load_dataset("mini")
    predictions = pd.read_parquet(report_dir / "training" / "predictions.parquet")
    wrong = int((predictions["predicted"] != predictions["label"]).sum())
    assert len(dataset.load_saved_view("still-wrong")) == wrong
    assert len(dataset.load_saved_view("extended-test-wrong")) == int(
        ((predictions["predicted"] != predictions["label"]) & (predictions["split"] == "test_extra")).sum())
    assert len(dataset.exists("predictions")) == len(predictions) == 16
    assert len(dataset.match_tags("train").exists("fold_predictions")) == 24
    assert len(dataset.exists("predictions.logits")) == 16 and len(dataset.exists("mistakenness")) == 16
    leaked = dataset.match(F("is_leak") == True).first()  # noqa: E712
    assert leaked.filepath.endswith("leaked.jpg") and leaked.leak_of_path == "train/nike/38.jpg"
    assert leaked.leak_kind == "exact"
    issues = pd.read_csv(report_dir / "label_issues" / "issues.csv")
    assert len(dataset.load_saved_view("label-issues")) == int(issues["is_issue"].sum())
    oof = pd.read_parquet(report_dir / "training" / "oof.parquet")
    assert len(dataset.load_saved_view("consensus-hard")) == int(oof["consensus_hard"].sum())


def test_the_report_opens_in_chromium_with_every_section(audited):
    data, report_dir, argv = audited
    assert curation_main(argv) == 0
    dom = dump_dom(report_dir / "index.html")
    for section in SECTIONS:
        assert f'id="{section}"' in dom, section
    assert "1</b> cross-split leak pairs" in dom
    assert "leak-free (1 leaked dropped)" in dom  # metrics on the full and the leak-free test split
    for split in ("test", "test_extra"):
        assert f'src="training/confusion_{split}.png"' in dom and (report_dir / "training" / f"confusion_{split}.png").is_file()
    assert "fiftyone app launch mini" in dom and "still-wrong" in dom
    assert "Not run yet" not in dom
    assert "Trained under a time budget of 15 minutes: the recipe's 1 epochs fit" in dom  # what it chose, and why
    config = json.loads((report_dir / "run_config.json").read_text())
    assert config["train"]["folds"] == 2 and config["train"]["image_size"] == 64


def test_a_subset_of_stages_runs_only_those(audited, capsys):
    data, report_dir, argv = audited
    assert curation_main(argv + ["--stages", "scan,audit"]) == 0
    assert "ran: scan, audit; reused: nothing" in capsys.readouterr().out
    dom = dump_dom(report_dir / "index.html")
    assert "Not run yet: run the <code>train</code> stage" in dom


def test_every_command_has_help(capsys):
    from curation.__main__ import COMMANDS

    for command in ["run", *(c for c in COMMANDS if c != "doctor")]:
        with pytest.raises(SystemExit) as exited:
            curation_main([command, "--help"])
        assert exited.value.code == 0
        assert "usage:" in capsys.readouterr().out, command


def test_the_run_passes_its_augmentations_to_training_and_refuses_a_bad_one(tmp_path):
    from curation.errors import CurationError
    from curation.pipeline.config import resolve_config
    from curation.pipeline.stages import train_config

    config_file = tmp_path / "run.toml"
    config_file.write_text("[train]\nbackdrop = 0.2\ndegrade = 0.1\n")
    augment = train_config(resolve_config(config_file, {}, {"crop_min_scale": 0.6}).train).augment
    assert (augment.backdrop, augment.degrade, augment.crop_min_scale) == (0.2, 0.1, 0.6)
    default = train_config(resolve_config(None, {}, {}).train).augment  # the shift proxy's pick
    assert (default.backdrop, default.degrade, default.crop_min_scale) == (0.4, 0.6, 0.5)
    assert train_config(resolve_config(None, {}, {}).train).low_res_size == 224  # early epochs smaller at 260 px
    assert train_config(resolve_config(None, {}, {"image_size": 224}).train).low_res_size == 0  # none smaller
    with pytest.raises(CurationError, match="backdrop must be in"):
        resolve_config(None, {}, {"backdrop": 1.5})  # refused before any stage runs


def test_the_runs_companion_flag_reaches_the_train_stage(tmp_path):
    from types import SimpleNamespace

    from curation.__main__ import build_run_parser
    from curation.pipeline.config import resolve_config
    from curation.pipeline.stages import STAGES_BY_NAME, RunContext
    from curation.pipeline.state import fingerprint

    train = STAGES_BY_NAME["train"]

    def context(argv):
        args = build_run_parser().parse_args(["shoes", *argv])
        config = resolve_config(None, {}, {"companion": args.companion})
        return RunContext(config, SimpleNamespace(report_dir=tmp_path), None, {"table": "t"})

    plain, with_companion = context([]), context(["--companion"])
    assert plain.config.train.companion is False and with_companion.config.train.companion is True
    # a warm run that adds --companion trains again, and a missing companion.pt counts as a missing output
    assert fingerprint("train", *train.inputs(plain)) != fingerprint("train", *train.inputs(with_companion))
    assert tmp_path / "training" / "companion.pt" in train.outputs(with_companion)
    assert tmp_path / "training" / "companion.pt" not in train.outputs(plain)
