"""The label findings a person can trust, on real shoes images of two classes (adidas, nike):
- a picture filed under both labels is one `conflicting_copies` finding naming its mislabelled side;
- photos of other things and an 'image not available' graphic are `not_in_any_class`, never a shoe;
- the estimate is a probability: a noise channel recovers known noise rates, for 2 and 10 classes;
- the report shows each kind in its own section with the evidence (copies, nearest train images).
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.foreign_images import SKIMAGE_PHOTOS, write_foreign_images
from tests.shoes_data import copy_subset

CLASSES = ("adidas", "nike")
COPIED = {"train/adidas/45.jpg": "nike", "train/nike/65.jpg": "adidas"}  # source -> the wrong folder it is copied to


def _two_class_subset(shoes_root, target):
    copy_subset(shoes_root, target, {"train": 60, "test": 10})
    for split in ("train", "test"):
        for folder in (target / split).iterdir():
            if folder.name not in CLASSES:
                for file in folder.iterdir():
                    file.unlink()
                folder.rmdir()
    return target


def _plant_copy(root, source: str, wrong: str) -> str:
    """A re-encoded, slightly cropped and resized copy of a real image, filed under the wrong class."""
    from PIL import Image

    image = Image.open(root / source).convert("RGB")
    w, h = image.size
    copy = image.crop((int(0.04 * w), int(0.04 * h), int(0.97 * w), int(0.97 * h))).resize((int(0.8 * w), int(0.8 * h)))
    target = root / "train" / wrong / f"planted_copy_{source.split('/')[1]}_{source.split('/')[2]}"
    copy.save(target, quality=80)
    return target.relative_to(root).as_posix()


@pytest.fixture(scope="module")
def planted(tmp_path_factory, shoes_root):
    from curation.cache import ContentCache
    from curation.checks.label_issues import check_result
    from curation.scan import scan_dataset
    from curation.label_issues.audit import LabelIssueParams, audit_label_issues
    from curation.label_issues.finetune import FinetuneParams
    from curation.label_issues.report import write_label_issue_report

    base = tmp_path_factory.mktemp("label_trust")
    root = _two_class_subset(shoes_root, base / "two_brands")
    copies = {_plant_copy(root, source, wrong): source for source, wrong in COPIED.items()}
    written = write_foreign_images(root / "train" / "nike", SKIMAGE_PHOTOS[:3], graphic=False) + \
        write_foreign_images(root / "test" / "adidas", SKIMAGE_PHOTOS[3:])
    foreign = [p.relative_to(root).as_posix() for p in written]
    with ContentCache(base / "cache") as cache:
        scanned = scan_dataset(root, name="two_brands", reports_dir=base / "reports", cache=cache)
        # the fold models on cached activations, end to end through the audit; fewer steps and only the
        # last stage trained keep it fast on a small subset (the default depth is measured in bench/)
        # and two rounds of them (the second on other folds), on 3 folds to keep it short
        params = LabelIssueParams(source="finetune", n_folds=3,
                                  finetune=FinetuneParams(epochs=4, min_steps=40, frozen_blocks=6, rounds=2))
        audit = audit_label_issues(scanned.table, root, cache=cache, report_dir=scanned.report_dir, params=params)
    out = write_label_issue_report(audit, check_result(scanned.table, audit), root=root,
                                   out_dir=scanned.report_dir / "label_issues", dataset="two_brands")
    return {"audit": audit, "copies": copies, "foreign": foreign, "out": out, "root": root}


def test_a_picture_under_two_labels_is_one_conflicting_copies_finding(planted):
    issues = planted["audit"].issues.set_index("path")
    for copy, source in planted["copies"].items():
        true_label = source.split("/")[1]
        assert issues.loc[copy, "kind"] == "conflicting_copies" and issues.loc[source, "kind"] == "conflicting_copies"
        assert issues.loc[copy, "copy_group"] == issues.loc[source, "copy_group"]
        # the mislabelled side is the finding, with the label its copies' probabilities support
        assert issues.loc[copy, "is_issue"] and issues.loc[copy, "suggested_label"] == true_label
        assert not issues.loc[source, "is_issue"]
        assert source in issues.loc[copy, "copies"] and "filed as adidas, nike" in issues.loc[copy, "note"]
        assert f"support {true_label}" in issues.loc[copy, "note"]
    summary = planted["audit"].summary
    assert summary["conflicting_copy_groups"] == summary["by_kind"]["conflicting_copies"] == len(planted["copies"])


def test_copies_never_judge_each_other(planted):
    """Each copy is predicted by a model that saw neither member: a model that saw the twin would be
    confident in the twin's label (p ~ 1 for the wrong class); here both sides agree with each other."""
    audit = planted["audit"]
    issues = audit.issues.set_index("path")
    for copy, source in planted["copies"].items():
        true_label = source.split("/")[1]
        assert issues.loc[copy, f"p_{true_label}"] > 0.5 and issues.loc[source, f"p_{true_label}"] > 0.5
    # both sources were fitted and weighed against each other; the report says which was used
    chosen = audit.summary["probabilities_chosen"]
    scores = chosen["label_log_likelihood"]
    assert set(scores) == {"0.00", "0.25", "0.50", "0.75", "1.00"}  # the fold models' share in the mixture
    assert f"{chosen['fold_model_weight']:.2f}" == max(scores, key=scores.get)
    assert chosen["used"] == ("cv_logreg" if chosen["fold_model_weight"] == 0 else "finetune")
    # the fold models were used, so their second round ran, on other folds, and the report says so
    assert chosen["used"] == "finetune" and chosen["fold_model_rounds"] == 2
    assert "the mean of 2 rounds of fold models" in audit.summary["splits"]["train"]["probabilities"]
    assert "the mean of 2 rounds" in (planted["out"] / "index.html").read_text()


def test_images_of_no_class_are_their_own_kind_and_no_shoe_is(planted):
    issues = planted["audit"].issues
    foreign = issues[issues["path"].isin(planted["foreign"])]
    assert len(foreign) == len(planted["foreign"]) == 6
    assert (foreign["kind"] == "not_in_any_class").all(), foreign[["path", "kind", "affinity_deviations"]]
    assert (foreign["suggested_label"] == "").all() and foreign["is_issue"].all()
    shoes = issues[~issues["path"].str.contains("foreign_")]
    assert not (shoes["kind"] == "not_in_any_class").any(), shoes.nlargest(3, "affinity_deviations")[["path"]]
    assert planted["audit"].summary["by_kind"]["not_in_any_class"] == 6


def test_the_report_shows_each_kind_with_its_evidence(planted):
    from curation.browser import dump_dom

    dom = dump_dom(planted["out"] / "index.html")
    issues = planted["audit"].issues
    for section in ("not-in-any-class", "conflicting-copies", "label-error", "review", "injection"):
        assert f'id="{section}"' in dom
    for path in planted["foreign"]:
        sample = issues.loc[issues["path"] == path, "sample_id"].iloc[0]
        assert f'data-sample-id="{sample}" data-kind="not_in_any_class"' in dom
    for copy in planted["copies"]:
        sample = issues.loc[issues["path"] == copy, "sample_id"].iloc[0]
        assert f'data-sample-id="{sample}" data-kind="conflicting_copies"' in dom
    assert "copy: <b>" in dom and "nearest: <b>" in dom and "P(label wrong)" in dom
    assert "of the mixtures tried, it explains the given labels best" in dom  # which probabilities, and why


@pytest.mark.parametrize("n_classes", [2, 10])
@pytest.mark.parametrize("noise_rate", [0.0, 0.1])
def test_the_noise_channel_recovers_a_known_noise_rate(n_classes, noise_rate):
    """Probabilities of a model that is right about 85% of the time and calibrated; labels flipped at
    random at a known rate. The fitted rate comes back, and the estimate ranks the flips first."""
    from sklearn.metrics import roc_auc_score

    from curation.label_issues.estimate import fit_noise_channel

    rng = np.random.default_rng(n_classes)
    n = 3000
    truth = rng.integers(0, n_classes, n)
    logits = rng.normal(0, 1, (n, n_classes))
    logits[np.arange(n), truth] += 3.0
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = truth.copy()
    flip = rng.random(n) < noise_rate
    labels[flip] = (truth[flip] + rng.integers(1, n_classes, flip.sum())) % n_classes
    channel = fit_noise_channel(probs, labels)
    assert abs(channel.noise_rate - noise_rate) < 0.03
    estimate = channel.wrong_probability(probs, labels)
    assert ((estimate >= 0.5) & ~flip).sum() <= 0.01 * n  # few false alarms at the default threshold
    if noise_rate:
        assert roc_auc_score(flip, estimate) > 0.9
        assert ((estimate >= 0.5) & flip).sum() >= 0.5 * flip.sum()


def test_the_labels_likelihood_gives_the_better_model_the_larger_share():
    """Two sources of probabilities for the same noisy labels: one that knows the classes well, one that
    barely does. The mixture the labels' likelihood picks leans on the good one, whichever is "fast";
    fold models that are confidently wrong get no share at all."""
    from curation.label_issues.finetune import mixed_probabilities

    rng = np.random.default_rng(0)
    n, k = 2000, 3
    truth = rng.integers(0, k, n)

    def model(strength: float, sharpness: float = 1.0) -> np.ndarray:
        logits = rng.normal(0, 1, (n, k))
        logits[np.arange(n), truth] += strength
        logits *= sharpness
        return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)

    labels = truth.copy()
    flip = rng.random(n) < 0.1
    labels[flip] = (truth[flip] + rng.integers(1, k, flip.sum())) % k
    good, weak = model(3.0), model(0.5)
    for fast, tuned in ((weak, good), (good, weak)):
        probs, used = mixed_probabilities(fast, tuned, labels)
        assert np.abs(probs - good).mean() < np.abs(probs - weak).mean()
    assert mixed_probabilities(weak, good, labels)[1] == "finetune"
    probs, used = mixed_probabilities(good, model(0.5, sharpness=5.0), labels)
    assert used == "cv_logreg" and np.allclose(probs, good)


def test_other_splits_teach_train_only_when_asked_and_never_through_a_copy():
    """The fast path on made-up embeddings (three overlapping clouds): train holds 4 points a class, test 40.
    By default train's folds learn from train alone; asked, they also learn from test and predict train
    better. A test point in the copy group of a train point stays out of the fold that predicts it: a
    wrongly labelled twin of each train point then does not make its twin look wrong."""
    import pandas as pd

    from curation.label_issues.probabilities import cross_validated_probabilities

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 16)) * 1.2
    train_y, test_y = np.repeat(np.arange(3), 4), np.repeat(np.arange(3), 40)
    labels = np.concatenate([train_y, test_y])
    vectors = centres[labels] + rng.normal(size=(len(labels), 16))
    table = pd.DataFrame({"sample_id": [f"s{i}" for i in range(len(labels))], "label": [f"c{k}" for k in labels],
                          "split": ["train"] * len(train_y) + ["test"] * len(test_y), "load_error": ""})
    n = len(train_y)

    def train_probs(table, vectors, groups=None, **asked):
        result = cross_validated_probabilities(table, vectors, n_folds=2, c=1.0, groups=groups, **asked)
        probs = result.splits["train"]
        return probs.pred_probs[np.arange(n), probs.labels], probs.how

    alone, how_alone = train_probs(table, vectors)
    taught, how_taught = train_probs(table, vectors, other_splits_teach_train=True)
    assert "also fitted on" not in how_alone and how_taught.endswith("each fold's model also fitted on test")
    assert np.log(taught).mean() > np.log(alone).mean() + 0.1
    # test now holds a twin of every train point, under the next class's label
    twins = pd.DataFrame({"sample_id": [f"t{i}" for i in range(n)], "label": [f"c{(k + 1) % 3}" for k in train_y],
                          "split": "test", "load_error": ""})
    with_twins, twin_vectors = pd.concat([table, twins], ignore_index=True), np.vstack([vectors, vectors[:n]])
    own = np.arange(len(with_twins))
    as_copies = own.copy()
    as_copies[-n:] = np.arange(n)
    right_as_copies, _ = train_probs(with_twins, twin_vectors, as_copies, other_splits_teach_train=True)
    right_not_copies, _ = train_probs(with_twins, twin_vectors, own, other_splits_teach_train=True)
    assert right_as_copies.mean() > right_not_copies.mean() + 0.05, (right_as_copies.mean(), right_not_copies.mean())
