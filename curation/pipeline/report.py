"""reports/<dataset>/index.html: the whole audit on one page, linking every stage's own report.

Each section reads its stage's files; a stage that has not run says so instead of failing. Pictures
(confusion matrices, histograms) are linked relative to the page, so the folder can be moved whole.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pandas as pd

from curation.html_pages import escape, page, table_html, thumbnail_data_uri
from curation.scan.report import split_class_counts
from curation.report_files import write_json, write_text_atomic

SECTIONS = ("overview", "integrity", "leakage", "model", "label-issues", "slices", "fiftyone", "configuration")


def _read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _section(anchor: str, title: str, body: str) -> str:
    return f"<section id='{anchor}'><h2>{escape(title)}</h2>{body}</section>"


def _not_run(stage: str) -> str:
    return f"<p class=info>Not run yet: run the <code>{stage}</code> stage (<code>--stages {stage}</code>).</p>"


def _link(path: str, text: str) -> str:
    return f"<p><a href='{escape(path)}'>{escape(text)}</a></p>"


def _image(path: Path, report_dir: Path, alt: str) -> str:
    if not path.is_file():
        return ""
    return f"<img src='{escape(path.relative_to(report_dir).as_posix())}' alt='{escape(alt)}' style='max-width:48%'>"


def _overview(scanned) -> str:
    counts = split_class_counts(scanned.table)
    return (f"<p>{len(scanned.table)} files under <code>{escape(scanned.dataset.root)}</code>.</p>"
            + table_html(counts.to_dict("records"), list(counts.columns)))


def _integrity(report_dir: Path) -> str:
    summary = _read_json(report_dir / "integrity" / "summary.json")
    if summary is None:
        return _not_run("scan")
    rows = [{"code": code, "count": count} for code, count in summary.get("by_code", {}).items()]
    severities = ", ".join(f"{count} {severity}" for severity, count in summary["counts_by_severity"].items())
    body = f"<p>{summary['readable']} readable, {summary['unreadable']} unreadable; findings: {escape(severities)}.</p>"
    body += table_html(rows, ["code", "count"]) if rows else "<p>No integrity findings.</p>"
    return body + _link("integrity/index.html", "Every finding, with its image")


def _leakage(report_dir: Path) -> str:
    summary = _read_json(report_dir / "leakage" / "summary.json")
    if summary is None:
        return _not_run("audit")
    leaks = summary["leaks"]
    rows = [{"split pair": pair, **kinds} for pair, kinds in leaks.get("by_split_pair", {}).items()]
    free = [{"split": split, **counts} for split, counts in summary.get("leak_free", {}).items()]
    body = (f"<p><b>{leaks['pairs']}</b> cross-split leak pairs; {summary['groups']['count']} copy groups; "
            f"{summary.get('label_conflicts', 0)} label conflicts; {leaks['samples_to_drop']} samples to drop "
            "for a leak-free evaluation.</p>")
    body += table_html(rows, list(rows[0])) if rows else "<p>No leak between splits.</p>"
    body += "<h3>Leak-free splits</h3>" + table_html(free, ["split", "total", "drop", "keep"]) if free else ""
    body += _image(report_dir / "leakage" / "similarity_histogram.png", report_dir, "nearest-neighbour similarities")
    return body + _link("leakage/index.html", "Every pair side by side")


def _percent(value: Any) -> str:
    return "" if value is None else f"{100 * value:.1f}%"


def _metric_row(split: str, which: str, scores: dict | None, dropped: int | None) -> dict:
    if not scores:
        return {"split": split, "part": which, "n": "", "error": "(leakage audit not run)", "95% interval": "", "TTA error": ""}
    low, high = scores.get("error_ci95") or (None, None)
    part = which if dropped is None or which == "full" else f"{which} ({dropped} leaked dropped)"
    return {"split": split, "part": part, "n": scores["n"], "error": _percent(scores["error"]),
            "95% interval": f"{_percent(low)} - {_percent(high)}" if low is not None else "",
            "TTA error": _percent(scores.get("tta_error"))}


def _model(report_dir: Path) -> str:
    training = report_dir / "training"
    model = _read_json(training / "model.json")
    metrics = _read_json(training / "metrics.json")
    if model is None:
        return _not_run("train")
    body = (f"<p>Model <code>{escape(model.get('arch'))}</code>, weights from {escape(model.get('weights_source'))}, "
            f"{escape(model.get('image_size'))} px, trained on {escape(model.get('training_data', {}).get('n_samples', '?'))} "
            "images.</p>")
    if model.get("schedule"):
        from training.time_budget import described

        body += f"<p>Trained under {escape(described(model['schedule']))}</p>"
    if metrics is None:
        return body + _not_run("evaluate")
    rows = []
    for split, result in metrics["splits"].items():
        rows.append(_metric_row(split, "full", result["full"], None))
        rows.append(_metric_row(split, "leak-free", result.get("leak_free"), result.get("n_leaked_dropped")))
    body += table_html(rows, ["split", "part", "n", "error", "95% interval", "TTA error"])
    for split in metrics["splits"]:
        body += f"<h3>{escape(split)}</h3>"
        body += _image(training / f"confusion_{split}.png", report_dir, f"confusion matrix, {split}")
        body += _image(training / f"top_losses_{split}.png", report_dir, f"highest losses, {split}")
    body += _image(training / "hard_examples.png", report_dir, "consensus hard examples")
    return body + _link("training/summary.md", "Evaluation summary")


def _wrong(row) -> str:
    value = getattr(row, "wrong_probability", "")
    return f"P(wrong) {float(value):.2f}" if value not in ("", None) else ""


def _label_issues(report_dir: Path, root: Path, top: int = 8) -> str:
    folder = report_dir / "label_issues"
    summary = _read_json(folder / "summary.json")
    if summary is None or not (folder / "issues.csv").is_file():
        return _not_run("labels")
    issues = pd.read_csv(folder / "issues.csv", dtype={"sample_id": str}, keep_default_na=False)
    flagged = issues[issues["is_issue"].astype(str).str.lower().isin(["true", "1"])].head(top)
    cards = "".join(
        f"<div class=card><img src='{thumbnail_data_uri(root / row.path)}' alt=''><div>{escape(row.path)}</div>"
        f"<div>{escape(row.given_label)} &rarr; <b>{escape(row.suggested_label or 'no class')}</b> "
        f"({escape(getattr(row, 'kind', ''))} {_wrong(row)})</div></div>"
        for row in flagged.itertuples())
    body = (f"<p>{summary.get('flagged', len(flagged))} of {summary.get('checked', len(issues))} samples flagged "
            f"(probabilities: {escape(summary.get('method', ''))}).</p>{cards}")
    body += _image(folder / "score_distribution.png", report_dir, "label issue score distribution")
    return body + _link("label_issues/index.html", "Every flagged image")


def _slices(report_dir: Path) -> str:
    folder = report_dir / "slices"
    summary = _read_json(folder / "summary.json")
    if summary is None:
        return _not_run("slices")
    rows = "".join(f"<li>slice {row['slice']}: <b>{row['errors']} of {row['n']} wrong</b> "
                   f"({row['low']:.0%}-{row['high']:.0%}): {escape(row['description'])}</li>" for row in summary["found"])
    notes = "".join(f"<p>{escape(note)}</p>" for note in summary.get("notes", []))
    body = (f"<p>{summary['errors']} errors in {summary['samples']} samples; {summary['slices']} error slice(s).</p>"
            f"<ul>{rows}</ul>{notes}")
    return body + _link("slices/index.html", "Where the model fails")


def _fiftyone(result, name: str) -> str:
    review = result.summaries.get("review")
    if not review:
        return _not_run("review")
    rows = [{"view": view, "samples": count} for view, count in review.get("views", {}).items()]
    return (f"<p>Open the FiftyOne App on this dataset with <code>fiftyone app launch {escape(review['dataset'])}</code> "
            f"or <code>python -m curation.review {escape(name)} --launch</code>, then pick a saved view:</p>"
            + table_html(rows, ["view", "samples"]))


def _configuration(config, result, state) -> str:
    rows = [{"stage": stage, "this run": "ran" if stage in result.ran else "reused" if stage in result.reused else "skipped",
             "seconds (last run)": info.get("seconds", "")} for stage, info in state.stages.items()]
    return (table_html(rows, ["stage", "this run", "seconds (last run)"])
            + f"<pre>{escape(json.dumps(config.to_dict(), indent=2, default=str))}</pre>")


def write_run_report(scanned, config, result, state) -> Path:
    report_dir = scanned.report_dir
    nav = " | ".join(f"<a href='#{s}'>{s}</a>" for s in SECTIONS)
    generated = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    body = (f"<p>{nav}</p><p class=info>Generated {generated}.</p>"
            + _section("overview", "The dataset at a glance", _overview(scanned))
            + _section("integrity", "Integrity", _integrity(report_dir))
            + _section("leakage", "Leakage between splits", _leakage(report_dir))
            + _section("model", "Model metrics: full and leak-free", _model(report_dir))
            + _section("label-issues", "Label issues", _label_issues(report_dir, scanned.dataset.root))
            + _section("slices", "Where the model fails", _slices(report_dir))
            + _section("fiftyone", "Review in FiftyOne", _fiftyone(result, scanned.name))
            + _section("configuration", "Configuration and stages", _configuration(config, result, state)))
    write_json(report_dir / "run_config.json", config.to_dict())
    return write_text_atomic(report_dir / "index.html", page(f"Dataset audit: {scanned.name}", body))
