"""The "Where the model fails" report: reports/<dataset>/slices/{slices.csv, members.csv, queries.csv,
summary.json, error_rates.png, index.html}.

slices.csv: slice, n, errors, error_rate, low, high (95% Wilson), rest_error_rate, p_adjusted,
description, action, origin. members.csv: path, split, label, predicted, slice, wrong, sample_id.
queries.csv: label, query, slice: what `python -m curation.scrape --queries-file` reads as it is.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from curation.html_pages import escape, page, table_html, thumbnail_data_uri
from curation.report_files import write_json, write_text_atomic
from curation.slices import SliceResult

MAX_THUMBNAILS = 24
RELABEL_SHARE = 0.5  # a slice whose errors are mostly flagged label issues calls for relabelling, not more data


def action(result: SliceResult, found) -> str:
    errors = result.outcomes.iloc[found.members][lambda rows: rows["wrong"]]
    flagged = errors["sample_id"].isin(result.flagged).mean() if len(errors) else 0.0
    if flagged >= RELABEL_SHARE:
        return f"relabel: {flagged:.0%} of its errors are flagged label issues (label_issues/index.html)"
    queries = [q["query"] for q in result.queries if q["slice"] == found.id]
    return "collect more of it: " + "; ".join(f'"{q}"' for q in queries)


def slice_rows(result: SliceResult) -> pd.DataFrame:
    rows = [{"slice": s.id, "n": s.n, "pictures": s.pictures, "errors": s.errors, "error_rate": round(s.error_rate, 4),
             "low": round(s.interval[0], 4), "high": round(s.interval[1], 4), "rest_error_rate": round(s.rest_rate, 4),
             "p_adjusted": s.p_value, "description": s.description, "action": action(result, s), "origin": s.origin}
            for s in result.slices]
    return pd.DataFrame(rows, columns=["slice", "n", "pictures", "errors", "error_rate", "low", "high", "rest_error_rate",
                                       "p_adjusted", "description", "action", "origin"])


def member_rows(result: SliceResult) -> pd.DataFrame:
    frames = [result.outcomes.iloc[s.members].assign(slice=s.id) for s in result.slices]
    columns = ["path", "split", "label", "predicted", "slice", "wrong", "sample_id"]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def draw_error_rates(result: SliceResult) -> bytes:
    """PNG: each slice's error rate with its 95% interval, beside the rest's."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    count = max(len(result.slices), 1)
    fig, axis = plt.subplots(figsize=(7.5, 0.55 * count + 1.4))
    overall = result.outcomes["wrong"].mean()
    for row, s in enumerate(result.slices):
        axis.errorbar(s.error_rate, row, xerr=[[s.error_rate - s.interval[0]], [s.interval[1] - s.error_rate]],
                      fmt="o", color="#c0392b", capsize=4)
        axis.errorbar(s.rest_rate, row, xerr=[[s.rest_rate - s.rest_interval[0]], [s.rest_interval[1] - s.rest_rate]],
                      fmt="s", color="#7f8c8d", capsize=3, markersize=4)
    axis.axvline(overall, color="#34495e", linestyle=":", label=f"overall {overall:.1%}")
    axis.set_yticks(range(len(result.slices)), [f"slice {s.id} (n={s.n})" for s in result.slices])
    axis.invert_yaxis()
    axis.set(xlim=(0, 1), xlabel="error rate (dot: slice, square: the rest; bars: 95% interval)",
             title="Where the model fails" if result.slices else "No error slice found")
    axis.legend(loc="lower right")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def _thumbnails(result: SliceResult, found, root: Path) -> str:
    cards = []
    for _, row in result.outcomes.iloc[found.members[:MAX_THUMBNAILS]].iterrows():
        verdict = (f"<span class=error>{escape(row['label'])} called {escape(row['predicted'])}</span>" if row["wrong"]
                   else f"{escape(row['label'])}, right")
        cards.append(f"<div class=card><img alt='{escape(row['path'])}' src='{thumbnail_data_uri(root / row['path'], 150)}'>"
                     f"{verdict}<br><small>{escape(row['split'])}: {escape(row['path'])}</small></div>")
    more = len(found.members) - MAX_THUMBNAILS
    return "".join(cards) + (f"<p>... and {more} more in members.csv</p>" if more > 0 else "")


def _training_counts(result: SliceResult, found) -> str:
    return ", ".join(f"{label} {count}" for label, count in result.resembling_train(found).items())


def _section(result: SliceResult, found, root: Path, advice: str) -> str:
    evidence = table_html([{"attribute": e["attribute"], "in the slice": f"{e['inside']:.0%}",
                            "in the rest": f"{e['outside']:.0%}"} for e in found.evidence],
                          ["attribute", "in the slice", "in the rest"]) if found.evidence else ""
    confusions = ", ".join(f"{c['label']} called {c['predicted']} ({c['count']})"
                           for c in found.composition.get("confusions", [])) or "none"
    splits = ", ".join(f"{k} {v}" for k, v in found.composition.get("splits", {}).items())
    return (f"<section id='slice-{found.id}'><h2>Slice {found.id}: {escape(found.description)}</h2>"
            f"<p><b>{found.errors} errors in {found.n}</b> ({found.pictures} distinct pictures): error rate {found.error_rate:.0%} "
            f"(95% interval {found.interval[0]:.0%}-{found.interval[1]:.0%}) against {found.rest_rate:.1%} "
            f"({found.rest_interval[0]:.1%}-{found.rest_interval[1]:.1%}) for the rest; adjusted p = {found.p_value:.3g}.</p>"
            f"{evidence}<p>Confusions: {escape(confusions)}. Members by split: {escape(splits)}. "
            f"Training images that resemble it (as close to its centre as 80% of its members), per class: {escape(_training_counts(result, found))}.</p>"
            f"<p><b>What to do:</b> {escape(advice)}</p>"
            f"<p><small>Found as {escape(found.origin)}. FiftyOne: the saved view <code>error-slice-{found.id}</code>.</small></p>"
            f"{_thumbnails(result, found, root)}</section>")


def _html(result: SliceResult, rows: pd.DataFrame, root: Path, dataset: str) -> str:
    sources = result.outcomes.groupby(["split", "source"]).agg(n=("wrong", "size"), errors=("wrong", "sum")).reset_index()
    head = (f"<p>{result.errors} errors in {len(result.outcomes)} labelled samples, every prediction out of sample "
            f"(below: where each came from). {result.candidates} candidate groups were tested (embedding clusters "
            f"and named image attributes); a slice errs more than the rest beyond chance after a permutation test "
            f"over all of them (family-wise 5%), and its error interval starts above the overall rate.</p>"
            + table_html(sources.to_dict("records"), ["split", "source", "n", "errors"])
            + "".join(f"<p><b>{escape(note)}</b></p>" for note in result.notes)
            + "<img alt='error rates' src='error_rates.png'>"
            + (table_html(rows[["slice", "n", "errors", "error_rate", "low", "high", "description"]].to_dict("records"),
                          ["slice", "n", "errors", "error_rate", "low", "high", "description"]) if len(rows) else ""))
    sections = "".join(_section(result, s, root, advice) for s, advice in zip(result.slices, rows["action"]))
    return page(f"Where the model fails: {dataset}", head + sections)


def write_slice_report(result: SliceResult, *, root: Path, out_dir: Path, dataset: str) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = slice_rows(result)
    write_text_atomic(out_dir / "slices.csv", rows.to_csv(index=False))
    write_text_atomic(out_dir / "members.csv", member_rows(result).to_csv(index=False))
    write_text_atomic(out_dir / "queries.csv", pd.DataFrame(result.queries, columns=["label", "query", "slice"]).to_csv(index=False))
    (out_dir / "error_rates.png").write_bytes(draw_error_rates(result))
    write_text_atomic(out_dir / "index.html", _html(result, rows, root, dataset))
    summary = {"dataset": dataset, "samples": int(len(result.outcomes)), "errors": result.errors,
               "candidates": result.candidates, "slices": int(len(rows)), "notes": result.notes,
               "sources": {f"{k[0]}:{k[1]}": int(v) for k, v in result.outcomes.groupby(["split", "source"]).size().items()},
               "found": rows.drop(columns=["origin"]).to_dict("records")}
    write_json(out_dir / "summary.json", summary)
    return summary
