"""The label-issue audit of a sample table: copies, probabilities, the estimate, images of no class.

Every labelled split is checked on its own (train, test, an extended test_extra scraped from a
search engine, ...), because a split's labels may come from a different, noisier process. In order:
1. copy groups from the duplicate engine (copies.py), kept whole in one fold;
2. out-of-sample probabilities (probabilities.py; with source "finetune" also finetune.py);
3. per split, the noise channel (estimate.py): P(label wrong) for every sample;
4. images of no class from their distance to every class (foreign.py);
5. the findings, one kind each, in this order of precedence:
   - `not_in_any_class`: far from every class; never given a suggested class;
   - `conflicting_copies`: one picture filed under two labels (the side the evidence does not support);
   - `label_error`: P(label wrong) >= `threshold`, the default list; copies with one label count once;
   - `review`: below the threshold but >= `review_floor`, a ranked queue for whoever has time.
The result has one row per sample of the table, checked or not (an unreadable image is a row
saying so, never a silently dropped sample). cleanlab's find_label_issues and Datalab still run
on the same probabilities, as columns to compare with.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from curation.label_issues.copies import conflicting_copies, copy_group_ids, find_copy_pairs
from curation.label_issues.detect import datalab_issues, find_label_issues_ranked, validate_options
from curation.label_issues.estimate import NoiseChannel, fit_noise_channels
from curation.label_issues.evidence import nearest_references
from curation.label_issues.finetune import (
    ROUND_SEED_STEP, FinetuneParams, activation_tensor, best_mixture, finetuned_probabilities, split_probabilities,
)
from curation.label_issues.foreign import MAX_DEVIATIONS, class_affinity
from curation.label_issues.injection import injection_check
from curation.label_issues.probabilities import (
    DEFAULT_C, OutOfSample, averaged, cross_validated_probabilities, cv_probabilities, fold_probabilities,
    reweighed_cv_probabilities,
)
from curation.progress import progress

ISSUE_COLUMNS = ["sample_id", "split", "path", "given_label", "suggested_label", "score", "is_issue", "method"]
EVIDENCE_COLUMNS = ["kind", "wrong_probability", "copy_group", "copy_size", "copies", "class_affinity",
                    "affinity_deviations", "nearest", "cleanlab_issue", "label_quality", "note"]
KINDS = ("not_in_any_class", "conflicting_copies", "label_error", "review")
FLAG_KINDS = KINDS[:3]
SOURCES = ("finetune", "cv_logreg", "folds")
LABEL_EMBEDDING_MODELS = "tf_efficientnet_lite0,tf_efficientnet_lite1,tf_efficientnet_lite2"
DATALAB_TYPES = ("label", "outlier", "class_imbalance", "non_iid")  # copies come from the duplicate engine


@dataclass
class LabelIssueParams:
    # cv_logreg: the fast path on embeddings alone; finetune: also fold models fine-tuned on cached
    # activations, labels weighed by a first cv_logreg pass (better on the whole shoes set, more false
    # alarms on 80 images a class: bench/RESULTS.md); folds: the training's own fold models
    source: str = "cv_logreg"
    threshold: float = 0.5  # P(label wrong) at and above which a sample is in the default list
    review_floor: float = 0.05  # P(label wrong) at and above which a sample is in the review queue
    foreign_deviations: float = MAX_DEVIATIONS  # MADs below the median class affinity: not_in_any_class
    filter_by: str = "prune_by_noise_rate"  # cleanlab.filter.find_label_issues(filter_by=...), for comparison
    rank_by: str = "self_confidence"  # cleanlab.rank label quality behind the score (score = 1 - quality)
    n_folds: int = 5
    c: float = DEFAULT_C
    seed: int = 0
    # A timm name, or several comma-separated whose features go side by side: the three packaged
    # backbones together err less than any one (bench/RESULTS.md).
    embedding_model: str = LABEL_EMBEDDING_MODELS
    copies: bool = True  # ask the duplicate engine for copy groups
    # a second pass whose fits weigh each label by 1 - its first-pass P(label wrong): a model less
    # taught by the wrong labels ranks them better (10 % flips: AUROC 0.943 to 0.952, bench/RESULTS.md)
    reweigh: bool = True
    finetune: FinetuneParams = field(default_factory=FinetuneParams)
    # noise-injection rounds of the check (0: none); None: 2, or 1 with finetune (each round refits every fold model)
    injection_rounds: int | None = None
    datalab: bool = True  # also run Datalab (label, outlier, class imbalance, non-iid)
    train_split: str = "train"
    # train's fold models also learn from the other labelled splits, each label weighed by the first pass.
    # Off: with 10 % flips on shoes train, the 114 test images added moved the fine-tuned list from
    # P 0.84 / R 0.75 to 0.87 / 0.75 over 3 seeds, within the seeds' spread (bench/RESULTS.md)
    other_splits_teach_train: bool = False

    def validate(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"source {self.source!r} is not one of {', '.join(SOURCES)}")
        validate_options(self.filter_by, self.rank_by)
        if self.n_folds < 2:
            raise ValueError(f"n_folds must be at least 2, got {self.n_folds}")
        if not 0 < self.review_floor <= self.threshold < 1:
            raise ValueError(f"need 0 < review_floor <= threshold < 1, got {self.review_floor} and {self.threshold}")


@dataclass
class LabelAudit:
    issues: pd.DataFrame  # one row per table row: ISSUE_COLUMNS + EVIDENCE_COLUMNS + p_<class>, datalab_*
    datalab: pd.DataFrame  # per checked sample: sample_id, split, Datalab's is_<type>_issue / <type>_score
    datalab_summary: pd.DataFrame  # split, issue_type, score, num_issues
    classes: list[str]
    params: LabelIssueParams
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def flagged(self) -> pd.DataFrame:
        return self.issues[self.issues["is_issue"]]

    @property
    def review_queue(self) -> pd.DataFrame:
        return self.issues[self.issues["kind"] == "review"]


@dataclass
class _Checked:
    """What the steps learn about the checked samples, by sample_id."""
    oos: OutOfSample
    channels: dict[str, NoiseChannel]
    per_split: list[pd.DataFrame]
    injection: dict[str, Any]
    affinity: dict[str, float] = field(default_factory=dict)  # median and MAD of the class affinity
    choice: dict[str, Any] = field(default_factory=dict)  # which probabilities were used, and why


def audit_label_issues(table: pd.DataFrame, root: Path, *, cache, params: LabelIssueParams | None = None,
                       report_dir: Path | None = None) -> LabelAudit:
    """Run the audit. `report_dir` (reports/<dataset>) is where --from-folds finds the training output."""
    from curation.embeddings import combined_vectors

    params = params or LabelIssueParams()
    params.validate()
    table = table.reset_index(drop=True)
    vectors = combined_vectors(table, root, cache=cache, spec=params.embedding_model)
    pairs = find_copy_pairs(table, root, cache=cache) if params.copies else pd.DataFrame()
    groups = copy_group_ids(table, pairs)
    oos, choice = _probabilities(table, root, cache, vectors, groups, params, report_dir)
    checked = _estimate(oos, params)
    checked.choice = choice
    checked.injection = _injection(table, root, cache, vectors, groups, oos, checked, params)
    datalab, datalab_summary = _run_datalab(table, vectors, oos) if params.datalab else (pd.DataFrame(), pd.DataFrame())
    issues = _issue_table(table, vectors, groups, checked, datalab, params)
    audit = LabelAudit(issues, datalab, datalab_summary, oos.classes, params)
    audit.summary = _summary(audit, checked)
    return audit


def _probabilities(table, root, cache, vectors, groups, params: LabelIssueParams,
                   report_dir: Path | None) -> tuple[OutOfSample, dict[str, Any]]:
    """The out-of-sample probabilities of params.source, and which were used and why."""
    if params.source == "folds":
        oos = fold_probabilities(table, report_dir or Path("reports"), train_split=params.train_split)
        return oos, {"used": "folds"}

    def probabilities(weights=None) -> OutOfSample:
        return cross_validated_probabilities(table, vectors, n_folds=params.n_folds, c=params.c, seed=params.seed,
                                             train_split=params.train_split, groups=groups, weights=weights,
                                             other_splits_teach_train=params.other_splits_teach_train)

    fast = probabilities()
    weights = _label_weights(table, _estimate(fast, params)) if params.reweigh else None
    oos = probabilities(weights) if params.reweigh else fast
    if params.source != "finetune":
        return oos, {"used": "cv_logreg"}
    def fold_models(weights: np.ndarray | None, seed: int) -> OutOfSample:
        return finetuned_probabilities(table, root, cache=cache, groups=groups, weights=weights, n_folds=params.n_folds,
                                       seed=seed, train_split=params.train_split, params=params.finetune,
                                       other_splits_teach_train=params.other_splits_teach_train)

    fine = fold_models(weights, params.seed)
    mixed, choice = _best_mixture(fine, oos)
    for done in range(1, params.finetune.rounds):  # each round weighs the labels by the rounds before
        if choice["used"] != "finetune":
            break
        again = fold_models(_label_weights(table, _estimate(mixed, params)), params.seed + done * ROUND_SEED_STEP)
        fine = averaged(fine, again, done / (done + 1), how=f"the mean of {done + 1} rounds of fold models")
        mixed, choice = _best_mixture(fine, oos)
        choice["fold_model_rounds"] = done + 1
    if choice["used"] == "finetune":
        choice.setdefault("fold_model_rounds", 1)
    return mixed, choice


def _best_mixture(fine: OutOfSample, fast: OutOfSample) -> tuple[OutOfSample, dict[str, Any]]:
    """The mixture of the fold models and the fast path that explains the labels best (noise allowed).
    With many labels the fold models rank flips better and take most of the weight; on a small split they
    can err more, and more confidently, than the regression on the embeddings, and then the fast path
    takes it all rather than let them add false alarms."""
    weight, mixed, scores = best_mixture(
        lambda share: averaged(fine, fast, share),
        lambda source: {split: (probs.pred_probs, probs.labels) for split, probs in source.splits.items()})
    return (mixed if weight > 0 else fast), {"used": "finetune" if weight > 0 else "cv_logreg",
                                             "fold_model_weight": weight, "label_log_likelihood": scores}


def _method(params: LabelIssueParams) -> str:
    return f"{params.source}+noise channel (P(label wrong) >= {params.threshold})"


def _estimate(oos: OutOfSample, params: LabelIssueParams) -> _Checked:
    frames = []
    channels = fit_noise_channels({split: (probs.pred_probs, probs.labels) for split, probs in oos.splits.items()}) \
        if oos.splits else {}
    for split, probs in oos.splits.items():
        channel = channels[split]
        found = find_label_issues_ranked(probs.labels, probs.pred_probs, filter_by=params.filter_by,
                                         rank_by=params.rank_by)
        found = found.rename(columns={"is_issue": "cleanlab_issue"})
        found.insert(0, "sample_id", probs.sample_ids)
        found["wrong_probability"] = channel.wrong_probability(probs.pred_probs, probs.labels)
        found["label_quality"] = 1.0 - found["score"]
        for k, name in enumerate(oos.classes):
            found[f"p_{name}"] = probs.pred_probs[:, k]
        frames.append(found)
    return _Checked(oos, channels, frames, {})


def _label_weights(table: pd.DataFrame, checked: _Checked) -> np.ndarray:
    """Per table row, 1 - P(label wrong) from a first pass (1 where it was not checked)."""
    estimate = pd.concat(checked.per_split).set_index("sample_id")["wrong_probability"]
    return 1.0 - table["sample_id"].astype(str).map(estimate).fillna(0.0).to_numpy()


def _injection(table, root, cache, vectors, groups, oos: OutOfSample, checked: _Checked, params: LabelIssueParams) -> dict:
    """The noise-injection check on the train split, refitting the audit's own passes per round (the
    training's fold models cannot be refitted)."""
    train = oos.splits.get(params.train_split)
    rounds = params.injection_rounds if params.injection_rounds is not None else 1 if params.source == "finetune" else 2
    if params.source == "folds" or train is None or not rounds:
        return {"skipped": "fold-model probabilities cannot be refitted per injection round"
                if params.source == "folds" else "no rounds asked for or no train split"}
    position = {sid: i for i, sid in enumerate(table["sample_id"].astype(str))}
    rows = np.array([position[sid] for sid in train.sample_ids])
    features = _unit(vectors[rows])  # checked samples: every one has an embedding
    already = checked.per_split[list(oos.splits).index(params.train_split)]["wrong_probability"].to_numpy() >= params.threshold
    others, other_labels = _other_splits(oos, position, params)
    other_features = _unit(vectors[others])
    other_weights = _label_weights(table, checked)[others]
    fit = dict(n_folds=params.n_folds, seed=params.seed, groups=groups[rows], c=params.c)
    if checked.choice.get("used") == "finetune":
        activations = activation_tensor(table.iloc[np.concatenate([rows, others])], root, cache=cache,
                                        params=params.finetune)
        extra = (other_features, activations[len(rows):], other_labels, groups[others], other_weights)

        def probabilities_for(labels: np.ndarray, seed: int) -> np.ndarray:  # the audit's own steps, on new labels
            return split_probabilities(features, activations[: len(rows)], labels, len(oos.classes),
                                       reweigh=params.reweigh, params=params.finetune, extra=extra, **fit)[0]
    else:
        extra = (other_features, other_labels, groups[others], other_weights)

        def probabilities_for(labels: np.ndarray, seed: int) -> np.ndarray:  # the audit's own passes, on new labels
            if params.reweigh:
                return reweighed_cv_probabilities(features, labels, len(oos.classes), extra=extra, **fit)
            return cv_probabilities(features, labels, len(oos.classes), extra=(*extra[:3], np.ones(len(others))), **fit)

    return injection_check(train.labels, len(oos.classes), probabilities_for, already, threshold=params.threshold,
                           rounds=rounds)


def _other_splits(oos: OutOfSample, position: dict[str, int], params: LabelIssueParams) -> tuple[np.ndarray, np.ndarray]:
    """(table rows, int labels) of the checked samples of every split but train: what train's folds also
    learn from (none where params.other_splits_teach_train is off)."""
    others = [probs for split, probs in oos.splits.items() if split != params.train_split]
    if not params.other_splits_teach_train or not others:
        return np.zeros(0, dtype=int), np.zeros(0, dtype=int)
    rows = np.array([position[sid] for probs in others for sid in probs.sample_ids], dtype=int)
    return rows, np.concatenate([probs.labels for probs in others])


def _run_datalab(table: pd.DataFrame, vectors: np.ndarray, oos: OutOfSample) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Datalab per split, on the same probabilities and the L2-normalised embeddings."""
    position = {sid: i for i, sid in enumerate(table["sample_id"].astype(str))}
    frames, summaries = [], []
    for split, probs in progress(list(oos.splits.items()), desc="Datalab"):
        rows = [position[sid] for sid in probs.sample_ids]
        features = vectors[rows] / np.linalg.norm(vectors[rows], axis=1, keepdims=True).clip(min=1e-12)
        issues, summary = datalab_issues([oos.classes[k] for k in probs.labels], features, probs.pred_probs,
                                         issue_types=DATALAB_TYPES)
        issues.insert(0, "split", split)
        issues.insert(0, "sample_id", probs.sample_ids)
        frames.append(issues)
        summaries.append(summary.assign(split=split))
    return pd.concat(frames, ignore_index=True), pd.concat(summaries, ignore_index=True)


def _note(row, checked_splits: set[str], skipped: dict[str, str]) -> str:
    if row.load_error:
        return f"not checked: unreadable image ({row.load_error})"
    if not row.label:
        return "not checked: no label"
    if row.split in skipped:
        return f"not checked: {skipped[row.split]}"
    if row.split not in checked_splits:
        return "not checked: no out-of-sample prediction for this sample"
    return "not checked: no embedding"


def _issue_table(table, vectors, groups, checked: _Checked, datalab, params) -> pd.DataFrame:
    oos = checked.oos
    found = pd.concat(checked.per_split, ignore_index=True) if checked.per_split else pd.DataFrame(columns=["sample_id"])
    base = table[["sample_id", "split", "path", "label", "load_error"]].copy()
    base["label"] = base["label"].fillna("").astype(str)
    base["copy_group"] = groups
    base["copy_size"] = base.groupby("copy_group")["sample_id"].transform("size")
    merged = base.merge(found, on="sample_id", how="left")
    is_checked = merged["score"].notna()
    merged["given_label"] = merged["label"]
    merged["suggested_label"] = [oos.classes[int(k)] if ok else "" for k, ok in zip(merged["suggested"].fillna(0), is_checked)]
    merged["cleanlab_issue"] = merged["cleanlab_issue"].fillna(False).astype(bool)
    merged["method"] = np.where(is_checked, _method(params), "")
    merged["note"] = [
        "" if ok else _note(row, set(oos.splits), oos.skipped) for ok, row in zip(is_checked, merged.itertuples())]
    merged["copies"] = _copies_column(merged)
    checked.affinity = _add_affinity(merged, vectors, is_checked.to_numpy(), oos.classes, params)
    _decide_kinds(merged, is_checked.to_numpy(), oos.classes, params)
    merged["nearest"] = _nearest_column(merged, vectors, params)
    if not datalab.empty:
        extra = datalab[["sample_id", "is_label_issue", "label_score", "outlier_score"]].rename(
            columns={"is_label_issue": "datalab_label_issue", "label_score": "datalab_label_quality",
                     "outlier_score": "datalab_outlier_score"})
        merged = merged.merge(extra, on="sample_id", how="left")
    probability_columns = [f"p_{name}" for name in oos.classes]
    columns = ISSUE_COLUMNS + EVIDENCE_COLUMNS + probability_columns + \
        [c for c in ("datalab_label_issue", "datalab_label_quality", "datalab_outlier_score") if c in merged.columns]
    merged["_rank"] = merged["kind"].map({k: i for i, k in enumerate(KINDS)}).fillna(len(KINDS))
    ranked = merged.sort_values(["is_issue", "_rank", "wrong_probability", "score"], ascending=[False, True, False, False],
                                na_position="last")
    return ranked[columns].reset_index(drop=True)


def _copies_column(frame: pd.DataFrame) -> list[str]:
    """Per row, the other members of its copy group as 'label:path' joined by '; '."""
    members = frame.groupby("copy_group")[["path", "given_label"]].apply(
        lambda rows: list(zip(rows["path"], rows["given_label"])))
    return ["; ".join(f"{label}:{path}" for path, label in members[group] if path != own) if size > 1 else ""
            for own, group, size in zip(frame["path"], frame["copy_group"], frame["copy_size"])]


def _unit(vectors: np.ndarray) -> np.ndarray:
    clean = np.nan_to_num(vectors.astype("float64"))
    return clean / np.linalg.norm(clean, axis=1, keepdims=True).clip(min=1e-12)


def _add_affinity(frame: pd.DataFrame, vectors, is_checked: np.ndarray, classes: list[str], params) -> dict:
    """class_affinity and affinity_deviations (foreign.py) for every checked sample, against all checked ones.
    Rows of `frame` line up with the table's, and so with `vectors`. Returns the median and MAD."""
    frame["class_affinity"] = np.nan
    frame["affinity_deviations"] = np.nan
    position = frame.index.to_numpy()[is_checked]
    if len(position) < 2 * len(classes):
        return {}
    labels = frame.loc[is_checked, "given_label"].map({c: k for k, c in enumerate(classes)}).to_numpy()
    affinity = class_affinity(_unit(vectors)[position], labels, frame.loc[is_checked, "copy_group"].to_numpy(),
                              len(classes))
    frame.loc[is_checked, "class_affinity"] = affinity.best
    frame.loc[is_checked, "affinity_deviations"] = affinity.deviations
    return {"median": round(affinity.median, 4), "mad": round(affinity.mad, 4)}


def _decide_kinds(frame: pd.DataFrame, is_checked: np.ndarray, classes: list[str], params) -> None:
    """kind and is_issue per row (see the module doc); suggested_label cleared where no class fits."""
    estimate = frame["wrong_probability"].to_numpy()
    kind = np.full(len(frame), "", dtype=object)
    kind[is_checked & (estimate >= params.review_floor)] = "review"
    kind[is_checked & (estimate >= params.threshold)] = "label_error"
    is_issue = np.asarray(kind == "label_error", dtype=bool)
    conflicts = conflicting_copies(frame[is_checked | (frame["copy_size"] > 1)], classes)
    index_of = {sid: i for i, sid in enumerate(frame["sample_id"])}
    conflict_note = {}
    for conflict in conflicts:  # one finding per picture, on the side to fix
        for sid in conflict.sample_ids:
            i = index_of[sid]
            kind[i] = "conflicting_copies"
            is_issue[i] = sid == conflict.finding
            frame.loc[i, "suggested_label"] = conflict.supported
            conflict_note[i] = conflict.describe()
    foreign = is_checked & (frame["affinity_deviations"].to_numpy() >= params.foreign_deviations)
    kind[foreign] = "not_in_any_class"
    is_issue[foreign] = True
    frame.loc[foreign, "suggested_label"] = ""
    frame["kind"] = kind
    frame["is_issue"] = is_issue
    _count_copies_once(frame)
    for i, text in conflict_note.items():
        frame.loc[i, "note"] = text


def _count_copies_once(frame: pd.DataFrame) -> None:
    """Copies flagged as label_error with one label are one finding: the most likely member carries it."""
    flagged = frame[(frame["kind"] == "label_error") & (frame["copy_size"] > 1)]
    for _, members in flagged.groupby("copy_group"):
        keep = members["wrong_probability"].idxmax()
        for i in members.index.drop(keep):
            frame.loc[i, "is_issue"] = False
            frame.loc[i, "note"] = f"copy of {frame.loc[keep, 'path']}, counted with it"


def _nearest_column(frame: pd.DataFrame, vectors, params, k: int = 3) -> list[str]:
    """For flags and the review queue: the nearest train images (never copies) as 'label:path:cosine'."""
    wanted = np.flatnonzero(frame["kind"].isin(KINDS).to_numpy())
    reference = np.flatnonzero(((frame["split"] == params.train_split) & frame["wrong_probability"].notna()).to_numpy())
    found = nearest_references(_unit(vectors), wanted, reference, frame["copy_group"].to_numpy(), k=k)
    column = [""] * len(frame)
    for row, neighbours in zip(wanted, found):
        column[row] = "; ".join(f"{frame.at[j, 'given_label']}:{frame.at[j, 'path']}:{cos:.3f}" for j, cos in neighbours)
    return column


def _summary(audit: LabelAudit, checked: _Checked) -> dict[str, Any]:
    issues = audit.issues
    splits = {}
    for split, probs in checked.oos.splits.items():
        here = issues[issues["split"] == split]
        done = here[here["method"] != ""]
        channel = checked.channels[split]
        splits[split] = {
            "samples": int(len(here)),
            "checked": int(len(done)),
            "flagged": int(done["is_issue"].sum()),
            "flagged_fraction": round(float(done["is_issue"].mean()), 4) if len(done) else 0.0,
            "review": int((done["kind"] == "review").sum()),
            "model_disagrees": int((done["suggested_label"] != done["given_label"]).sum()),
            "cleanlab_flags": int(done["cleanlab_issue"].sum()),
            "estimated_noise_rate": round(channel.noise_rate, 4),
            "temperature": round(channel.temperature, 3),
            "probabilities": probs.how,
        }
    for split, why in checked.oos.skipped.items():
        splits[split] = {"samples": int((issues["split"] == split).sum()), "checked": 0, "flagged": 0, "skipped": why}
    datalab_counts = {}
    if not audit.datalab_summary.empty:
        for row in audit.datalab_summary.itertuples():
            datalab_counts.setdefault(row.split, {})[row.issue_type] = {"num_issues": int(row.num_issues),
                                                                        "score": round(float(row.score), 4)}
    flagged = issues[issues["is_issue"]]
    conflict_groups = issues.loc[issues["kind"] == "conflicting_copies", "copy_group"].nunique()
    return {
        "classes": checked.oos.classes,
        "source": checked.oos.source,
        "probabilities_chosen": checked.choice,
        "method": _method(audit.params),
        "estimate": "P(label wrong): a noise channel fitted per split to the out-of-sample probabilities "
                    "(temperature and noise rate by maximum likelihood), then Bayes; see curation/label_issues/estimate.py",
        "score": f"1 - cleanlab label quality ({audit.params.rank_by}); higher = more likely mislabelled",
        "samples": int(len(issues)),
        "checked": int((issues["method"] != "").sum()),
        "flagged": int(len(flagged)),
        "by_kind": {kind: int((flagged["kind"] == kind).sum()) for kind in FLAG_KINDS},
        "conflicting_copy_groups": int(conflict_groups),
        "review": int((issues["kind"] == "review").sum()),
        "copy_groups": int((issues.groupby("copy_group").size() > 1).sum()),
        "not_checked": int((issues["method"] == "").sum()),
        "class_affinity": checked.affinity,
        "injection_check": checked.injection,
        "splits": splits,
        "datalab": datalab_counts,
        "params": asdict(audit.params),
    }
