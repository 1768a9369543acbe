"""Out-of-sample predicted probabilities, the input every label-issue method needs.

cleanlab finds a wrong label where a model that never saw the sample disagrees confidently with
it, so each sample's probabilities must come from a model not trained on that sample. Two sources:

- `cross_validated_probabilities` (the fast path, no fine-tuning): a logistic regression on the
  cached backbone embeddings. For the train split: stratified K-fold within train. For any other
  labelled split S (test, valid, test_extra, ...): K-fold within S, each fold predicted by a model
  fitted on all of train plus the other folds of S. Every sample is thus predicted by a model that
  never saw it, S is judged by the same (larger) train set its own labels are compared with, and the
  other folds of S teach the model what S looks like when it differs from train (a scraped split).
  Train's probabilities never see another split, so a noisy extra split cannot blur them; asked
  (`other_splits_teach_train`), train's folds also learn from the other labelled splits, less the
  copies of the fold they predict, each label by its weight (bench/RESULTS.md: no clear gain on
  shoes, whose other split is a sixth of train).
  Copies (the duplicate engine's copy groups, across all splits) stay in one fold, and no fit
  holds a copy of an image it predicts: a model that saw a picture's twin would only echo its label.
- `fold_probabilities` (`--from-folds`): the training issue's fold models
  (reports/<dataset>/training/oof.parquet for train, predictions.parquet for the other splits).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from curation.errors import CurationError
from curation.progress import progress

TRAIN_SPLIT = "train"
DEFAULT_C = 0.01  # inverse L2 strength: sharp enough for the noise estimate to tell noise from doubt (bench/RESULTS.md)


@dataclass
class SplitProbabilities:
    """Predicted probabilities for the labelled, readable samples of one split."""

    split: str
    sample_ids: list[str]
    labels: np.ndarray  # int, shape (n,), indices into classes
    pred_probs: np.ndarray  # float, shape (n, len(classes)), rows sum to 1
    how: str  # how the probabilities were obtained, for the report


@dataclass
class OutOfSample:
    classes: list[str]  # sorted class names; column k of pred_probs is classes[k]
    splits: dict[str, SplitProbabilities]
    source: str  # "cv_logreg" or "folds"
    skipped: dict[str, str] = field(default_factory=dict)  # split -> why it was not checked


def labelled_rows(table: pd.DataFrame, vectors: np.ndarray | None = None) -> np.ndarray:
    """Mask of rows that can be checked: a label, a decoded image, and (if given) an embedding."""
    mask = (table["label"].fillna("").astype(str) != "").to_numpy() & (table["load_error"] == "").to_numpy()
    if vectors is not None:
        mask &= ~np.isnan(vectors).any(axis=1)
    return mask


def _classifier(c: float, seed: int):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=3000, random_state=seed))


def _fit(c: float, seed: int, features: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None):
    return _classifier(c, seed).fit(features, labels, logisticregression__sample_weight=weights)


def _n_folds(labels: np.ndarray, wanted: int) -> int:
    """As many folds as the rarest class allows (each fold needs one of every class)."""
    counts = np.bincount(labels)
    return max(2, min(wanted, int(counts[counts > 0].min())))


def _full_probs(model, features: np.ndarray, n_classes: int) -> np.ndarray:
    """predict_proba with a column for every class, also those missing from the fit."""
    probs = np.zeros((len(features), n_classes))
    probs[:, model.classes_] = model.predict_proba(features)
    return probs


def cv_probabilities(features: np.ndarray, labels: np.ndarray, n_classes: int, *, n_folds: int = 5,
                     c: float = DEFAULT_C, seed: int = 0, groups: np.ndarray | None = None,
                     weights: np.ndarray | None = None, extra: tuple | None = None) -> np.ndarray:
    """Out-of-fold probabilities (n, n_classes) from stratified K-fold logistic regression.

    `groups` (n,): copy-group ids; every group of copies lies in one fold, so no sample is predicted
    by a model that saw its copy. `weights` (n,): how much each label counts in the fits (None: all 1).
    `extra` = (features, labels, groups or None, weights) of samples added to every fold's training
    set (never predicted), less those in a group of the fold being predicted.
    """
    probs = np.zeros((len(labels), n_classes))
    weights = np.ones(len(labels)) if weights is None else weights
    for fit_index, predict_index in _folds(labels, groups, n_folds, seed):
        fit_x, fit_y, fit_w = features[fit_index], labels[fit_index], weights[fit_index]
        if extra is not None:
            extra_x, extra_y, extra_groups, extra_w = extra
            keep = outside_predicted_groups(len(extra_y), extra_groups, groups, predict_index)
            fit_x, fit_y = np.vstack([fit_x, extra_x[keep]]), np.concatenate([fit_y, extra_y[keep]])
            fit_w = np.concatenate([fit_w, extra_w[keep]])
        model = _fit(c, seed, fit_x, fit_y, fit_w)
        probs[predict_index] = _full_probs(model, features[predict_index], n_classes)
    return probs


def outside_predicted_groups(n_extra: int, extra_groups: np.ndarray | None, groups: np.ndarray | None,
                             predict_index: np.ndarray) -> np.ndarray:
    """Mask of the `n_extra` added samples a fold may fit on: those in no copy group of a sample it predicts
    (all of them where either side has no groups)."""
    if extra_groups is None or groups is None:
        return np.ones(n_extra, bool)
    return ~np.isin(extra_groups, groups[predict_index])


def first_pass_weights(features: np.ndarray, labels: np.ndarray, n_classes: int, *, n_folds: int = 5,
                       c: float = DEFAULT_C, seed: int = 0, groups: np.ndarray | None = None,
                       extra: tuple | None = None) -> np.ndarray:
    """1 - P(label wrong) per label, from a first cv_probabilities pass and the noise channel of
    curation.label_issues.estimate fitted to this one split: how much each label counts in a refit."""
    return label_weights(cv_probabilities(features, labels, n_classes, n_folds=n_folds, c=c, seed=seed, groups=groups,
                                          extra=extra), labels)


def label_weights(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """1 - P(label wrong) under the noise channel fitted to these out-of-sample probabilities of one split:
    what each label counts in the next fit (the fast path's refit, or the next round of fold models)."""
    from curation.label_issues.estimate import fit_noise_channel

    return 1.0 - fit_noise_channel(probs, labels).wrong_probability(probs, labels)


def reweighed_cv_probabilities(features: np.ndarray, labels: np.ndarray, n_classes: int, *, n_folds: int = 5,
                               c: float = DEFAULT_C, seed: int = 0, groups: np.ndarray | None = None,
                               extra: tuple | None = None) -> np.ndarray:
    """cv_probabilities twice: the second pass weighs each label by first_pass_weights. The audit's
    two passes on one split's arrays, for the noise-injection check and the benchmark; `extra` as in
    cv_probabilities."""
    fit = dict(n_folds=n_folds, c=c, seed=seed, groups=groups, extra=extra)
    return cv_probabilities(features, labels, n_classes, weights=first_pass_weights(features, labels, n_classes, **fit),
                            **fit)


def _folds(labels: np.ndarray, groups: np.ndarray | None, n_folds: int, seed: int):
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    k = _n_folds(labels, n_folds)
    if groups is None or len(np.unique(groups)) == len(groups):
        return StratifiedKFold(k, shuffle=True, random_state=seed).split(labels, labels)
    return StratifiedGroupKFold(k, shuffle=True, random_state=seed).split(labels, labels, groups)


def _encode(labels: pd.Series, classes: list[str]) -> np.ndarray:
    index = {name: i for i, name in enumerate(classes)}
    return labels.map(index).to_numpy(dtype=int)


def cross_validated_probabilities(table: pd.DataFrame, vectors: np.ndarray, *, n_folds: int = 5, c: float = DEFAULT_C,
                                  seed: int = 0, train_split: str = TRAIN_SPLIT,
                                  groups: np.ndarray | None = None, weights: np.ndarray | None = None,
                                  other_splits_teach_train: bool = False) -> OutOfSample:
    """The fast path: per labelled split, out-of-sample probabilities from embeddings (see module doc).

    `groups` (one id per table row): copy groups, kept whole in one fold and out of each other's fits.
    `weights` (one per table row): how much each label counts where it is fitted on (None: all 1).
    `other_splits_teach_train`: train's fold models also learn from the other labelled splits."""
    usable = labelled_rows(table, vectors)
    group_of = (np.arange(len(table)) if groups is None else np.asarray(groups))[usable]
    weight_of = (np.ones(len(table)) if weights is None else np.asarray(weights, dtype="float64"))[usable]
    rows = table[usable]
    features = vectors[usable].astype("float64")
    features /= np.linalg.norm(features, axis=1, keepdims=True).clip(min=1e-12)
    classes = sorted(rows["label"].astype(str).unique())
    if len(classes) < 2:
        raise CurationError(f"label issues need at least 2 classes; found {classes or 'no labels'}")
    labels = _encode(rows["label"].astype(str), classes)
    split_of = rows["split"].astype(str).to_numpy()
    in_train = split_of == train_split
    result = OutOfSample(classes, {}, "cv_logreg")
    for split in progress(sorted(set(split_of), key=lambda s: (s != train_split, s)), desc="out-of-sample probabilities"):
        here = split_of == split
        y = labels[here]
        if split == train_split or not in_train.any():
            problem = _cv_problem(y)
            if problem:
                result.skipped[split] = problem
                continue
            others = ~here if split == train_split and other_splits_teach_train else np.zeros(len(here), bool)
            probs = cv_probabilities(features[here], y, len(classes), n_folds=n_folds, c=c, seed=seed,
                                     groups=group_of[here], weights=weight_of[here],
                                     extra=(features[others], labels[others], group_of[others], weight_of[others]))
            how = f"{_n_folds(y, n_folds)}-fold CV within {split}" + also_fitted_on(split_of[others])
        else:
            probs, how = _other_split_probs(features[here], y, group_of[here], weight_of[here],
                                            (features[in_train], labels[in_train], group_of[in_train], weight_of[in_train]),
                                            len(classes), n_folds=n_folds, c=c, seed=seed, split=split, train_name=train_split)
        ids = rows["sample_id"].astype(str).to_numpy()[here].tolist()
        result.splits[split] = SplitProbabilities(split, ids, y, probs, how)
    return result


def also_fitted_on(other_splits: np.ndarray) -> str:
    """For a split's `how`: the other splits its fold models also learnt from, if any."""
    names = sorted(set(other_splits.tolist()))
    return f", each fold's model also fitted on {', '.join(names)}" if names else ""


def _cv_problem(labels: np.ndarray) -> str:
    counts = np.bincount(labels)
    present = counts[counts > 0]
    if len(present) < 2:
        return "fewer than 2 classes in this split"
    if present.min() < 2:
        return "a class with a single sample: cross-validation needs 2 or more per class"
    return ""


def _other_split_probs(x, y, groups, weights, train, n_classes, *, n_folds, c, seed, split, train_name):
    if _cv_problem(y) or len(y) < 2 * n_folds:  # one model on train, less the copies of this split's images
        keep = ~np.isin(train[2], groups)
        model = _fit(c, seed, train[0][keep], train[1][keep], train[3][keep])
        return _full_probs(model, x, n_classes), f"model fitted on {train_name}"
    folds = _n_folds(y, n_folds)
    probs = cv_probabilities(x, y, n_classes, n_folds=folds, c=c, seed=seed, groups=groups, weights=weights,
                             extra=train)
    return probs, f"{folds}-fold CV within {split}, each fold's model also fitted on all of {train_name}"


def averaged(first: OutOfSample, second: OutOfSample, weight: float = 0.5, *, how: str | None = None) -> OutOfSample:
    """weight * first + (1 - weight) * second, per split, for the samples both checked (in first's
    order); a split only one checked keeps that one's. Each split's `how` says both, or `how` and second's (for
    rounds of one procedure)."""
    source = first.source if first.source == second.source else f"{first.source}+{second.source}"
    result = OutOfSample(first.classes, {}, source, {**second.skipped, **first.skipped})
    for split in sorted(set(first.splits) | set(second.splits)):
        a, b = first.splits.get(split), second.splits.get(split)
        if a is None or b is None:
            result.splits[split] = a or b
            result.skipped.pop(split, None)
            continue
        where = {sid: i for i, sid in enumerate(b.sample_ids)}
        keep = [i for i, sid in enumerate(a.sample_ids) if sid in where]
        other = [where[a.sample_ids[i]] for i in keep]
        result.splits[split] = SplitProbabilities(
            split, [a.sample_ids[i] for i in keep], a.labels[keep],
            weight * a.pred_probs[keep] + (1 - weight) * b.pred_probs[other],
            f"{how}: {b.how}" if how else _mixture_how(a.how, b.how, weight))
        result.skipped.pop(split, None)
    return result


def _mixture_how(first: str, second: str, weight: float) -> str:
    if weight == 0.5:
        return f"the mean of {first} and {second}"
    if weight in (0.0, 1.0):
        return first if weight else second
    return f"{weight:.2f} x {first} + {1 - weight:.2f} x {second}"


# --- the training issue's fold models -------------------------------------------------------

def _read_training_frames(report_dir: Path) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """oof.parquet (train, each sample once) and predictions.parquet (the other splits), if written."""
    from training.oof import read_oof

    training_dir = report_dir / "training"
    oof = read_oof(report_dir)
    predictions_path = training_dir / "predictions.parquet"
    predictions = pd.read_parquet(predictions_path) if predictions_path.is_file() else None
    return oof, predictions


def _probability_columns(frame: pd.DataFrame, classes: list[str], what: str) -> np.ndarray:
    missing = [f"p_{name}" for name in classes if f"p_{name}" not in frame.columns]
    if missing:
        raise CurationError(f"{what} lacks probability columns {missing}")
    probs = frame[[f"p_{name}" for name in classes]].to_numpy(dtype="float64")
    return probs / probs.sum(axis=1, keepdims=True).clip(min=1e-12)


def fold_probabilities(table: pd.DataFrame, report_dir: Path, *, train_split: str = TRAIN_SPLIT) -> OutOfSample:
    """Probabilities from the training issue's output: out-of-fold for train, the final model's
    predictions (never trained on them) for the other splits. Samples are matched by sample_id."""
    oof, predictions = _read_training_frames(report_dir)
    if oof is None:
        raise CurationError(f"no fold predictions at {report_dir / 'training' / 'oof.parquet'}: run the training "
                            "with folds first (python -m training ...), or drop --from-folds to use the fast path")
    rows = table[labelled_rows(table)]
    classes = sorted(rows["label"].astype(str).unique())
    frames = {train_split: oof.assign(split=train_split)}
    if predictions is not None:
        frames.update({str(s): f for s, f in predictions[predictions["split"] != train_split].groupby("split")})
    result = OutOfSample(classes, {}, "folds")
    for split in sorted(set(rows["split"].astype(str))):
        if split not in frames:
            result.skipped[split] = "no fold-model predictions for this split"
            continue
        joined = rows[rows["split"] == split].merge(frames[split].drop(columns=["label", "split"], errors="ignore"),
                                                    on="sample_id", how="inner")
        if joined.empty:
            result.skipped[split] = "the training output names none of this split's samples (stale run?)"
            continue
        how = "out-of-fold predictions of the fold models" if split == train_split else "the trained model's predictions"
        unmatched = int((rows["split"] == split).sum()) - len(joined)
        if unmatched:  # samples added since the training run: said, not silently dropped
            how += f"; {unmatched} samples not in the training output are not checked"
        result.splits[split] = SplitProbabilities(
            split, joined["sample_id"].astype(str).tolist(), _encode(joined["label"].astype(str), classes),
            _probability_columns(joined, classes, f"training output for {split}"), how)
    return result
