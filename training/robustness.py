"""`python -m training.robustness DATA`: the trained model on an evaluation split under realistic
shifts (training.shift), beside its accuracy on the plain images.

The shifted images are written once per (image, shift, seed) under
reports/<dataset>/training/shift/images/v<version>-seed<seed>/<shift>/<label>/ and read through the same sample table and
resized-image cache as every evaluation, so the plain figure equals training.evaluate's. For each
shift: accuracy with its 95 % Wilson interval, the drop from plain, and how many images the shift
really changed (a photo without a plain background gets no new background).

Writes reports/<dataset>/training/shift/{robustness.json, summary.md, accuracy.png, examples.png}.
Exit codes: 0 done; 2 bad input.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from curation.cache import ContentCache
from curation.layout import SampleEntry
from curation.report_files import format_table, write_json, write_text_atomic
from training.metrics import classification_metrics
from training.predict import predict_rows, prediction_frame
from training.shift import SHIFT_VERSION, SHIFTS, shift_image, shifted_path

PLAIN = "plain"
SHIFT_DIR = "shift"


@dataclass
class Robustness:
    figures: dict  # shift (and "plain") -> {n, changed, accuracy, accuracy_ci95, drop}
    predictions: pd.DataFrame  # one row per image and shift: shift, path, label, predicted, correct
    out_dir: Path


def write_shifted(rows: pd.DataFrame, root: Path, out: Path, shifts: list[str], seed: int) -> tuple[list[SampleEntry], dict]:
    """Shifted copies of `rows` as out/<shift>/<label>/<name>.png (kept when already there: the
    images are a function of their inputs); entries for the sample table and changed counts."""
    from curation.progress import progress

    entries, changed = [], {shift: 0 for shift in shifts}
    for row in progress(list(rows.itertuples()), desc="shifted images"):
        data = (root / row.path).read_bytes()
        for shift in shifts:
            relative = shifted_path(shift, str(row.label), row.path)
            target = out / relative
            made = shift_image(data, shift, seed)
            changed[shift] += int(made.changed)
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                made.image.save(target)  # PNG: the shift's own artefacts (JPEG's included) and nothing more
            entries.append(SampleEntry(path=relative, split=shift, label=str(row.label)))
    return entries, changed


def measure_robustness(learn, metadata: dict, table: pd.DataFrame, root: Path, *, cache: ContentCache, out_dir: Path,
                       split: str = "test", shifts: list[str] | None = None, seed: int = 0,
                       companion=None) -> Robustness:
    """Accuracy on `split` as it is and under each shift; writes the report files into out_dir. With a
    companion (training.companion), the ensemble's accuracy too."""
    from curation.errors import CurationError
    from curation.sample_table import build_sample_table

    classes = list(metadata["classes"])
    shifts = list(shifts or SHIFTS)
    rows = table[(table["split"] == split) & (table["load_error"] == "") & table["label"].isin(classes)]
    if rows.empty:
        raise CurationError(f"split {split!r} has no readable image of a class the model knows")
    rows = rows.reset_index(drop=True)
    images = out_dir / "images" / f"v{SHIFT_VERSION}-seed{seed}"
    entries, changed = write_shifted(rows, root, images, shifts, seed)
    shifted, _ = build_sample_table(images, entries, cache=cache)
    frames = [_predicted(learn, rows, root, cache, metadata, classes, companion).assign(shift=PLAIN)]
    for shift in shifts:
        part = shifted[shifted["split"] == shift].reset_index(drop=True)
        frames.append(_predicted(learn, part, images, cache, metadata, classes, companion).assign(shift=shift))
    predictions = pd.concat(frames, ignore_index=True)
    figures = _figures(predictions, classes, {PLAIN: 0, **changed})
    out_dir.mkdir(parents=True, exist_ok=True)
    result = Robustness(figures, predictions, out_dir)
    write_robustness_report(result, metadata, split, seed, root, images)
    return result


def _predicted(learn, rows, root, cache, metadata, classes, companion=None) -> pd.DataFrame:
    found = predict_rows(learn, rows, root, cache=cache, image_size=metadata["image_size"])
    frame = prediction_frame(rows, found, classes)
    if companion is None:
        return frame[["path", "label", "predicted", "correct"]]
    from training.evaluate import with_ensemble

    frame = with_ensemble(frame, companion.probabilities(rows, root, cache=cache), classes)
    return frame[["path", "label", "predicted", "correct", "ensemble_predicted"]]


def _figures(predictions: pd.DataFrame, classes: list[str], changed: dict) -> dict:
    figures = {}
    for shift, part in predictions.groupby("shift", sort=False):
        scored = part[part["predicted"].notna()]
        scores = classification_metrics(scored["label"].astype(str), scored["predicted"].astype(str), classes)
        figures[shift] = {"n": scores["n"], "changed": int(changed.get(shift, 0)), "accuracy": scores["accuracy"],
                          "accuracy_ci95": scores["accuracy_ci95"]}
        if "ensemble_predicted" in scored:
            figures[shift]["ensemble_accuracy"] = float((scored["ensemble_predicted"] == scored["label"]).mean())
    plain = figures[PLAIN]["accuracy"]
    for values in figures.values():
        values["drop"] = None if plain is None or values["accuracy"] is None else plain - values["accuracy"]
    return figures


def figures_table(figures: dict) -> pd.DataFrame:
    def pct(value):
        return "-" if value is None else f"{value:.1%}"

    return pd.DataFrame([{"images": shift, "n": f["n"], "changed": "-" if shift == PLAIN else f["changed"],
                          "accuracy": pct(f["accuracy"]),
                          "95% CI": "-" if not f["accuracy_ci95"] else f"{f['accuracy_ci95'][0]:.1%}-{f['accuracy_ci95'][1]:.1%}",
                          "drop": "-" if shift == PLAIN else pct(f["drop"]),
                          **({"ensemble accuracy": pct(f["ensemble_accuracy"])} if "ensemble_accuracy" in f else {})}
                         for shift, f in figures.items()])


def write_robustness_report(result: Robustness, metadata: dict, split: str, seed: int, root: Path, images: Path) -> None:
    from training.figures import plot_shift_accuracy, plot_shift_examples

    out = result.out_dir
    write_json(out / "robustness.json", {"schema_version": 1, "split": split, "seed": seed,
                                         "model": {k: metadata.get(k) for k in ("arch", "image_size", "classes")},
                                         "shifts": result.figures})
    result.predictions.to_csv(out / "predictions.csv", index=False)
    plot_shift_accuracy(result.figures, out / "accuracy.png", title=f"{metadata['arch']} on {split}, plain and shifted")
    plot_shift_examples(result.predictions, root, images, out / "examples.png")
    worst = max((s for s in result.figures if s != PLAIN), key=lambda s: result.figures[s]["drop"] or 0, default=None)
    lines = [f"# {metadata['arch']} on {split} under shifts (seed {seed})", "",
             "```", format_table(figures_table(result.figures)), "```", ""]
    if worst and (result.figures[worst]["drop"] or 0) > 0:
        lines.append(f"- The largest drop: {worst}, {result.figures[worst]['drop']:.1%} below plain.")
    elif worst:
        lines.append("- No shift lowered the accuracy.")
    lines.append("- Shifts are described in training/shift.py; `changed` counts the images a shift really altered.")
    write_text_atomic(out / "summary.md", "\n".join(lines) + "\n")


def build_parser() -> argparse.ArgumentParser:
    from curation.cli import command_parser

    parser = command_parser("python -m training.robustness", __doc__)
    parser.add_argument("--model-dir", type=Path, help="folder with model.pkl and model.json (default: reports/<dataset>/training)")
    parser.add_argument("--split", default="test", help="the evaluation split to shift (default test)")
    parser.add_argument("--shifts", default=",".join(SHIFTS), help=f"comma-separated, from {', '.join(SHIFTS)}")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    return parser


def main(argv: list[str] | None = None) -> int:
    import torch

    from curation.cli import scan_from_args
    from curation.errors import CurationError
    from training.companion import load_companion
    from training.export import load_trained

    args = build_parser().parse_args(argv)
    shifts = [s.strip() for s in args.shifts.split(",") if s.strip()]
    unknown = [s for s in shifts if s not in SHIFTS]
    if unknown:
        raise CurationError(f"unknown shift(s) {', '.join(unknown)}; choose from {', '.join(SHIFTS)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    with ContentCache(args.cache_dir) as cache:
        scanned = scan_from_args(args, cache)
        model_dir, metadata, learn = load_trained(args.model_dir, scanned.report_dir)
        result = measure_robustness(learn, metadata, scanned.table, scanned.dataset.root, cache=cache,
                                    out_dir=model_dir / SHIFT_DIR, split=args.split, shifts=shifts, seed=args.seed,
                                    companion=load_companion(model_dir, list(metadata["classes"])))
    print(format_table(figures_table(result.figures)))
    print(f"report in {result.out_dir}")
    return 0


if __name__ == "__main__":
    from curation.cli import run_cli

    sys.exit(run_cli(main))
