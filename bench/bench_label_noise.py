"""Label-noise benchmark: how well each method finds labels we flipped on purpose.

Noise is injected into the shoes train split with cleanlab.benchmarking.noise_generation
(generate_noise_matrix_from_trace / generate_noisy_labels): 5%, 10% and 20%, symmetric (every wrong
class equally likely) and class-conditional (a random noise matrix with that average rate), 3 seeds
each. The audit's own probabilities are refitted on each noisy labelling, copy groups whole in one
fold (curation.label_issues.finetune.split_probabilities): a first fast pass (5-fold logistic
regression on the cached embeddings of lite0+lite1+lite2 side by side; --models to change) gives
P(label wrong); the fast path refitted and fold models fine-tuned on cached activations of lite2's
frozen stages (each label weighed by 1 - that) are mixed in the share under which the labels are
likeliest (curation.label_issues.finetune.mixed_probabilities). Every other method sees those same
probabilities and is scored against the injected flips:

- ours: the default list, P(label wrong) >= 0.5 from the noise channel (curation/label_issues/estimate.py)
  fitted to the same probabilities; its ranking score is that estimate;
- ours before: the same on the fast path's probabilities alone (two passes, no fold models);
- cleanlab find_label_issues (the earlier default, prune_by_noise_rate, and the other filter_by rules);
- Datalab: cleanlab Datalab label issues, embeddings as features;
- top losses (the original project's fastai `plot_top_losses`): flag where argmax != given label,
  rank by cross-entropy loss;
- FiftyOne brain compute_mistakenness on Classification labels with logits = log(probabilities),
  in a real (temporary) MongoDB; flag where mistakenness > 0.5 (which is argmax != given).

Precision/recall/F1 are of the flags; AUROC of the method's ranking score; P@R0.9 is the best
precision any threshold on the estimate reaches at recall >= 0.9 (P@R0.8 likewise): what a perfectly
calibrated threshold could give. The training's own fold models are not measured here (they would
need a full fine-tuning run per fold and noisy labelling).

Run: python bench/bench_label_noise.py [--seeds 3] [--first-seed 0] [--rates 0.05 0.1 0.2] [--kinds symmetric class_conditional];
writes bench/out/label_noise.csv, and per run bench/out/label_noise/*.npz (true and noisy labels,
the fast path's, the fold models' and the mixed probabilities).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
os.environ.setdefault("CURATION_PROGRESS", "0")

FILTERS = ["prune_by_noise_rate", "prune_by_class", "both", "confident_learning", "low_self_confidence",
           "predicted_neq_given"]


def noisy_labels(true: np.ndarray, rate: float, kind: str, seed: int) -> np.ndarray:
    from cleanlab.benchmarking.noise_generation import generate_noise_matrix_from_trace, generate_noisy_labels

    k = int(true.max()) + 1
    if kind == "symmetric":
        matrix = np.full((k, k), rate / (k - 1))
        np.fill_diagonal(matrix, 1 - rate)
    else:
        py = np.bincount(true, minlength=k) / len(true)
        matrix = generate_noise_matrix_from_trace(k, k * (1 - rate), py=py, valid_noise_matrix=True, seed=seed)
    np.random.seed(seed)  # generate_noisy_labels draws from numpy's global generator
    return generate_noisy_labels(true, matrix)


def flag_metrics(flips: np.ndarray, flags: np.ndarray, score: np.ndarray) -> dict:
    from sklearn.metrics import roc_auc_score

    tp = int((flags & flips).sum())
    precision = tp / flags.sum() if flags.sum() else 0.0
    recall = tp / flips.sum()
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"flagged": int(flags.sum()), "precision": precision, "recall": recall, "f1": f1,
            "auroc": roc_auc_score(flips, score)}


def precision_at_recall(flips: np.ndarray, score: np.ndarray, recall: float = 0.9) -> float:
    from sklearn.metrics import precision_recall_curve

    precisions, recalls, _ = precision_recall_curve(flips, score)
    return float(precisions[recalls >= recall].max())


def fiftyone_mistakenness(paths: list[str], classes: list[str], labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    import fiftyone as fo
    import fiftyone.brain as fob

    dataset = fo.Dataset()  # non-persistent: dropped when the process's database client exits
    logits = np.log(np.clip(probs, 1e-12, 1))
    samples = [fo.Sample(filepath=path,
                         ground_truth=fo.Classification(label=classes[label]),
                         predictions=fo.Classification(label=classes[int(p.argmax())], confidence=float(p.max()),
                                                       logits=logit.tolist()))
               for path, label, p, logit in zip(paths, labels, probs, logits)]
    dataset.add_samples(samples, progress=False)
    fob.compute_mistakenness(dataset, "predictions", label_field="ground_truth", use_logits=True, progress=False)
    by_path = dict(zip(dataset.values("filepath"), dataset.values("mistakenness")))
    dataset.delete()
    return np.array([by_path[path] for path in paths])


def run_config(features, activations, true, paths, classes, rate, kind, seed, c, groups, finetune=None,
               keep_dir: Path | None = None, extra: tuple | None = None) -> list[dict]:
    from curation.label_issues.detect import datalab_issues, find_label_issues_ranked
    from curation.label_issues.estimate import fit_noise_channel
    from curation.label_issues.finetune import mixed_probabilities, probability_parts
    from curation.label_issues.probabilities import reweighed_cv_probabilities

    noisy = noisy_labels(true, rate, kind, seed)
    flips = noisy != true
    started = time.perf_counter()
    fast = reweighed_cv_probabilities(features, noisy, len(classes), c=c, seed=seed, groups=groups)
    fast_seconds = time.perf_counter() - started
    started = time.perf_counter()
    weighed, tuned = probability_parts(features, activations, noisy, len(classes), c=c, seed=seed, groups=groups,
                                       params=finetune, extra=extra)
    probs, used = mixed_probabilities(weighed, tuned, noisy)  # as split_probabilities makes them
    probs_seconds = time.perf_counter() - started
    if keep_dir is not None:  # per-sample figures, for calibration and mixing studies without refitting
        np.savez_compressed(keep_dir / f"rate{rate}_{kind}_seed{seed}.npz", true=true, noisy=noisy, fast=weighed,
                            tuned=tuned, mixed=probs)
    rows = []

    def add(method, flags, score, seconds, **extra):
        rows.append({"rate": rate, "kind": kind, "seed": seed, "flips": int(flips.sum()), "method": method,
                     **flag_metrics(flips, np.asarray(flags, bool), score), "seconds": seconds, **extra})

    for method, source, seconds, folds_used in (
            ("ours: fine-tuned folds + fast path, P(label wrong) >= 0.5", probs, probs_seconds, float(used == "finetune")),
            ("ours before: fast path only, P(label wrong) >= 0.5", fast, fast_seconds, np.nan)):
        started = time.perf_counter()
        channel = fit_noise_channel(source, noisy)
        estimate = channel.wrong_probability(source, noisy)
        add(method, estimate >= 0.5, estimate, seconds + time.perf_counter() - started,
            p_at_r90=precision_at_recall(flips, estimate), p_at_r80=precision_at_recall(flips, estimate, 0.8),
            noise_rate=channel.noise_rate, fold_models_used=folds_used)
    for filter_by in FILTERS:
        started = time.perf_counter()
        found = find_label_issues_ranked(noisy, probs, filter_by=filter_by)
        extra = {"p_at_r90": precision_at_recall(flips, found["score"].to_numpy())} if filter_by == FILTERS[0] else {}
        add(f"cleanlab ({filter_by})", found["is_issue"], found["score"], probs_seconds + time.perf_counter() - started, **extra)
    started = time.perf_counter()
    datalab, _ = datalab_issues([classes[k] for k in noisy], features, probs, issue_types=("label",))
    add("Datalab (label)", datalab["is_label_issue"], 1 - datalab["label_score"], probs_seconds + time.perf_counter() - started)
    loss = -np.log(np.clip(probs[np.arange(len(noisy)), noisy], 1e-12, 1))
    add("top losses (argmax != given)", probs.argmax(1) != noisy, loss, probs_seconds)
    started = time.perf_counter()
    mistakenness = fiftyone_mistakenness(paths, classes, noisy, probs)
    add("FiftyOne compute_mistakenness (> 0.5)", mistakenness > 0.5, mistakenness,
        probs_seconds + time.perf_counter() - started)
    return rows


def load_train(cache_dir: Path | None, models: str, finetune, extra_splits: tuple[str, ...] = ()):
    """Arrays of shoes train (features, activations, labels, paths, classes, copy groups) and, if
    `extra_splits` name any, the `extra` of probability_parts: those splits' samples, which every fit also
    learns from, each label weighed 1 (the shoes labels are right, as far as eyes can tell)."""
    from curation.cache import ContentCache
    from curation.scan import scan_dataset
    from curation.embeddings import combined_vectors
    from curation.label_issues.finetune import activation_tensor

    from curation.label_issues.copies import copy_group_ids, find_copy_pairs

    with ContentCache(cache_dir) as cache:
        scanned = scan_dataset("shoes", reports_dir=ROOT / "bench" / "out" / "reports", cache=cache)
        table = scanned.table[scanned.table["split"].isin(("train", *extra_splits)) & (scanned.table["load_error"] == "")]
        table = table.sort_values("split", key=lambda split: split != "train", kind="stable").reset_index(drop=True)
        vectors = combined_vectors(table, scanned.dataset.root, cache=cache, spec=models)
        activations = activation_tensor(table, scanned.dataset.root, cache=cache, params=finetune)
        groups = copy_group_ids(table, find_copy_pairs(table, scanned.dataset.root, cache=cache))
    classes = sorted(table["label"].unique())
    labels = table["label"].map({name: k for k, name in enumerate(classes)}).to_numpy()
    n = int((table["split"] == "train").sum())
    paths = [str(scanned.dataset.root / path) for path in table["path"][:n]]
    extra = (vectors[n:], activations[n:], labels[n:], groups[n:], np.ones(len(table) - n)) if n < len(table) else None
    # unit vectors: combined_vectors normalises
    return vectors[:n], activations[:n], labels[:n], paths, classes, groups[:n], extra


def main() -> None:
    from curation.label_issues.audit import LabelIssueParams
    from curation.label_issues.finetune import FinetuneParams

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", type=float, nargs="+", default=[0.1])
    parser.add_argument("--kinds", nargs="+", default=["symmetric"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0,
                        help="seeds first-seed .. first-seed + seeds - 1 (to finish or extend an earlier run)")
    parser.add_argument("--c", type=float, default=LabelIssueParams().c)
    parser.add_argument("--cache-dir", type=Path)
    parser.add_argument("--models", default=LabelIssueParams().embedding_model,
                        help="embedding backbone(s) of the fast path, comma-separated for several side by side")
    parser.add_argument("--out", default="label_noise", help="name of the CSV under bench/out")
    parser.add_argument("--frozen-blocks", type=int, default=FinetuneParams().frozen_blocks,
                        help="fold models: backbone blocks run once per image (the rest trained per fold)")
    parser.add_argument("--fold-model-rounds", type=int, default=FinetuneParams().rounds,
                        help="fold models: rounds on other folds, each weighed by the rounds before, averaged")
    parser.add_argument("--extra-splits", nargs="*", default=[],
                        help="other splits every fit also learns from (never predicted; their labels weighed 1)")
    args = parser.parse_args()
    finetune = FinetuneParams(frozen_blocks=args.frozen_blocks, rounds=args.fold_model_rounds)
    import torch

    torch.set_num_threads(2)  # the fold models train as the audit trains them
    os.environ["FIFTYONE_DATABASE_DIR"] = tempfile.mkdtemp(prefix="bench-fiftyone-db-")
    features, activations, true, paths, classes, groups, extra = load_train(args.cache_dir, args.models, finetune,
                                                                            tuple(args.extra_splits))
    keep_dir = ROOT / "bench" / "out" / args.out
    keep_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for rate in args.rates:
        for kind in args.kinds:
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                rows += run_config(features, activations, true, paths, classes, rate, kind, seed, args.c, groups,
                                   finetune, keep_dir=keep_dir, extra=extra)
                print(f"done rate={rate} kind={kind} seed={seed}", file=sys.stderr, flush=True)
    frame = pd.DataFrame(rows)
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out / f"{args.out}.csv", index=False)
    from curation.report_files import format_table

    print(format_table(summarise(frame).round(2)))


def summarise(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds of each (rate, kind, method)."""
    columns = ["flips", "flagged", "precision", "recall", "f1", "auroc", "p_at_r80", "p_at_r90", "noise_rate",
               "fold_models_used", "seconds"]
    grouped = frame.groupby(["rate", "kind", "method"], sort=False)[columns].mean().reset_index()
    return grouped


if __name__ == "__main__":
    main()
