"""`python -m training.evaluate DATA`: evaluate the exported model on every split that is not train.

For each split: error and accuracy with a 95% Wilson interval, per-class precision and recall,
TTA error, a confusion matrix PNG and a top-losses grid PNG. Per-sample predictions (probability
and logit per class, predicted label, loss) for all those splits go to predictions.parquet, keyed
by sample_id. When the leakage audit has run (reports/<dataset>/leakage/), every metric is also
computed on the split without its leaked samples, side by side.

Writes reports/<dataset>/training/{predictions.parquet, metrics.json, summary.md,
confusion_<split>.png, top_losses_<split>.png}. Exit codes: 0 done; 2 bad input.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from curation.atomic_files import atomic_path
from curation.cache import ContentCache
from curation.leakage.leak_free import leak_free_ids
from curation.report_files import format_table, write_json, write_text_atomic
from training.figures import plot_confusion, plot_top_losses
from training.metrics import classification_metrics
from training.predict import predict_rows, prediction_frame
from training.time_budget import described

log = logging.getLogger(__name__)
PREDICTIONS_FILE = "predictions.parquet"
METRICS_FILE = "metrics.json"
TOP_LOSSES = 12


@dataclass
class Evaluation:
    predictions: pd.DataFrame  # every non-train row, contract columns (see training.predict)
    metrics: dict  # split -> {"full": ..., "leak_free": ... or None, "tta_error": ..., ...}
    figures: list[Path]
    out_dir: Path


def evaluation_splits(table: pd.DataFrame) -> list[str]:
    return sorted(s for s in table["split"].astype(str).unique() if s != "train")


def evaluate_model(learn, metadata: dict, table: pd.DataFrame, root: Path, *, cache: ContentCache, out_dir: Path,
                   report_dir: Path, tta: int = 4, top_losses: int = TOP_LOSSES) -> Evaluation:
    """Predict and score every non-train split; write predictions, metrics and figures to `out_dir`."""
    from training.companion import load_companion

    classes = list(metadata["classes"])
    dropped = leak_free_ids(report_dir)
    companion = load_companion(out_dir, classes)
    frames, metrics, figures = [], {}, []
    for split in evaluation_splits(table):
        rows = table[table["split"] == split].reset_index(drop=True)
        predictions = predict_rows(learn, rows, root, cache=cache, image_size=metadata["image_size"], tta=tta)
        frame = prediction_frame(rows, predictions, classes)
        if companion is not None:
            frame = with_ensemble(frame, companion.probabilities(rows, root, cache=cache), classes)
        metrics[split] = split_metrics(frame, classes, dropped, metadata)
        figures += _split_figures(frame, classes, metrics[split], split, root, out_dir, top_losses)
        frames.append(frame)
    predictions = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / PREDICTIONS_FILE) as temporary:
        predictions.to_parquet(temporary, index=False)
    write_json(out_dir / METRICS_FILE, {"schema_version": 1, "model": _model_summary(metadata),
                                        "leakage_audit": dropped is not None, "splits": metrics})
    write_text_atomic(out_dir / "summary.md", summary_markdown(metrics, metadata))
    return Evaluation(predictions, metrics, figures, out_dir)


def with_ensemble(frame: pd.DataFrame, companion_probs, classes: list[str]) -> pd.DataFrame:
    """The frame with the ensemble's columns: ensemble_p_<class> (the mean of the model's and the
    companion's probabilities) and ensemble_predicted (<NA> where either has no prediction); with
    TTA columns, ensemble_tta_predicted too (the model's TTA probabilities with the companion's)."""
    frame = frame.copy()
    probs = _add_ensemble(frame, "p_", "ensemble_", companion_probs, classes)
    for i, name in enumerate(classes):
        frame[f"ensemble_p_{name}"] = probs[:, i]
    if f"tta_p_{classes[0]}" in frame:
        _add_ensemble(frame, "tta_p_", "ensemble_tta_", companion_probs, classes)
    return frame


def _add_ensemble(frame: pd.DataFrame, source: str, prefix: str, companion_probs, classes: list[str]):
    import numpy as np

    from training.companion import ensemble_probabilities
    from training.predict import predicted_labels

    probs = ensemble_probabilities(frame[[f"{source}{c}" for c in classes]].to_numpy("float64"), companion_probs)
    frame[f"{prefix}predicted"] = predicted_labels(probs, ~np.isnan(probs).any(axis=1), classes)
    return probs


def split_metrics(frame: pd.DataFrame, classes: list[str], dropped: set[str] | None, metadata: dict) -> dict:
    scorable = frame[frame["predicted"].notna() & frame["label"].isin(classes)]
    result = {
        "n_rows": int(len(frame)),
        "n_unreadable": int(frame["predicted"].isna().sum()),
        "n_unknown_label": int((~frame["label"].isin(classes)).sum()),
        "full": _scores(scorable, classes),
        "leak_free": None,
        "n_leaked_dropped": None,
        "used_for_checkpoint_selection": bool(metadata.get("validation", {}).get("used_for_checkpoint_selection")
                                              and metadata.get("validation", {}).get("split") == frame["split"].iloc[0]),
    }
    if dropped is not None:
        kept = scorable[~scorable["sample_id"].isin(dropped)]
        result["leak_free"] = _scores(kept, classes)
        result["n_leaked_dropped"] = int(len(scorable) - len(kept))
    return result


def _scores(frame: pd.DataFrame, classes: list[str]) -> dict:
    scores = classification_metrics(frame["label"].astype(str), frame["predicted"].astype(str), classes)
    if "tta_predicted" in frame and len(frame):
        scores["tta_error"] = float((frame["tta_predicted"] != frame["label"]).mean())
    else:
        scores["tta_error"] = None
    for column, key in (("ensemble_predicted", "ensemble_error"), ("ensemble_tta_predicted", "ensemble_tta_error")):
        if column in frame and len(frame):
            scores[key] = float((frame[column] != frame["label"]).mean())
    scores["mean_loss"] = float(frame["loss"].mean()) if len(frame) else None
    return scores


def _split_figures(frame, classes, metrics, split, root, out_dir, top_losses) -> list[Path]:
    import numpy as np

    full = metrics["full"]
    error = "n/a" if full["error"] is None else f"{full['error']:.1%}"
    title = f"{split}: error {error} (n={full['n']})"
    if metrics["leak_free"] and metrics["leak_free"]["error"] is not None:
        title += f", leak-free {metrics['leak_free']['error']:.1%} (n={metrics['leak_free']['n']})"
    confusion = plot_confusion(np.array(full["confusion"]), classes, out_dir / f"confusion_{split}.png", title=title)
    worst = frame[frame["loss"].notna()].sort_values("loss", ascending=False).head(top_losses)
    grid = plot_top_losses(worst, root, out_dir / f"top_losses_{split}.png", title=f"{split}: highest losses")
    return [confusion, grid]


def _model_summary(metadata: dict) -> dict:
    keys = ("arch", "weights_source", "image_size", "classes", "seed", "selected_epoch")
    return {k: metadata.get(k) for k in keys} | {"training_data_hash": metadata.get("training_data", {}).get("hash")}


def metrics_rows(metrics: dict) -> pd.DataFrame:
    def pct(value):
        return "-" if value is None else f"{value:.1%}"

    def interval(scores):
        return "-" if not scores or scores["error_ci95"] is None else f"{scores['error_ci95'][0]:.1%}-{scores['error_ci95'][1]:.1%}"

    rows = []
    for split, m in metrics.items():
        full, free = m["full"], m["leak_free"]
        rows.append({"split": split, "n": full["n"], "error": pct(full["error"]), "95% CI": interval(full),
                     "TTA error": pct(full["tta_error"]),
                     **({"ensemble error": pct(full["ensemble_error"])} if "ensemble_error" in full else {}),
                     **({"ensemble TTA error": pct(full["ensemble_tta_error"])} if "ensemble_tta_error" in full else {}),
                     "leak-free n": "-" if free is None else free["n"],
                     "leak-free error": "-" if free is None else pct(free["error"]),
                     "leak-free 95% CI": interval(free)})
    return pd.DataFrame(rows)


def summary_markdown(metrics: dict, metadata: dict) -> str:
    lines = [f"# Evaluation of {metadata['arch']} (weights: {metadata['weights_source']}, {metadata['image_size']} px)", ""]
    lines += ["```", format_table(metrics_rows(metrics)), "```", ""]
    if metadata.get("schedule"):
        lines.append(f"- Trained under {described(metadata['schedule'])}")
    for split, m in metrics.items():
        if m["used_for_checkpoint_selection"]:
            lines.append(f"- {split} chose the kept epoch (best validation error): its figures are optimistic.")
        if m["leak_free"] is None:
            lines.append(f"- {split}: no leakage audit found, so no leak-free figures (run the leakage audit).")
        lines.append(f"- {split}: per class " + ", ".join(
            f"{c} precision {_fmt(s['precision'])} recall {_fmt(s['recall'])} (n={s['support']})"
            for c, s in m["full"]["per_class"].items()))
    return "\n".join(lines) + "\n"


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.2f}"


def build_parser() -> argparse.ArgumentParser:
    from curation.cli import command_parser

    parser = command_parser("python -m training.evaluate", __doc__)
    parser.add_argument("--model-dir", type=Path, help="folder with model.pkl and model.json (default: reports/<dataset>/training)")
    parser.add_argument("--tta", type=int, default=4, help="augmented passes for the TTA error (0: no TTA)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores; 1 is steadier on a busy machine)")
    return parser


def main(argv: list[str] | None = None) -> int:
    import torch

    from curation.cli import scan_from_args
    from training.export import load_trained

    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    with ContentCache(args.cache_dir) as cache:
        scanned = scan_from_args(args, cache)
        model_dir, metadata, learn = load_trained(args.model_dir, scanned.report_dir)
        evaluation = evaluate_model(learn, metadata, scanned.table, scanned.dataset.root, cache=cache,
                                    out_dir=model_dir, report_dir=scanned.report_dir, tta=args.tta)
    print_evaluation(evaluation, stream=sys.stdout)
    return 0


def print_evaluation(evaluation: Evaluation, stream) -> None:
    if not evaluation.metrics:
        print("no split other than train: nothing to evaluate", file=stream)
        return
    print(format_table(metrics_rows(evaluation.metrics)), file=stream)
    for split, m in evaluation.metrics.items():
        if m["used_for_checkpoint_selection"]:
            print(f"note: {split} was the validation split that chose the kept epoch; its error is optimistic", file=stream)
        if m["n_unreadable"]:
            print(f"note: {m['n_unreadable']} unreadable image(s) in {split} have no prediction", file=stream)
    print(f"predictions, metrics and figures in {evaluation.out_dir}", file=stream)


if __name__ == "__main__":
    from curation.cli import run_cli

    sys.exit(run_cli(main))
