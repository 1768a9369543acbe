"""The label-issue report: reports/<dataset>/label_issues/{issues.csv, issues.json, datalab.csv,
findings.csv, findings.json, summary.json, score_distribution.png, index.html}.

issues.csv holds every sample (flagged first, by score); index.html shows each flagged image with
given -> suggested label and its score, so a person can confirm or dismiss it at a glance.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd

from curation.checks.base import CheckResult
from curation.html_pages import escape, page, table_html, thumbnail_data_uri
from curation.label_issues.audit import LabelAudit
from curation.report_files import write_check_result, write_json, write_text_atomic

MAX_CARDS = 500  # a report of thousands of thumbnails helps nobody; the CSV has them all


def write_label_issue_report(audit: LabelAudit, result: CheckResult, *, root: Path, out_dir: Path,
                             dataset: str) -> Path:
    paths = write_check_result(result, out_dir, dataset=dataset)  # findings.csv/json, summary.json
    write_text_atomic(out_dir / "issues.csv", audit.issues.to_csv(index=False))
    write_json(out_dir / "issues.json", json.loads(audit.issues.to_json(orient="records")))
    if not audit.datalab.empty:
        write_text_atomic(out_dir / "datalab.csv", audit.datalab.to_csv(index=False))
    figure = draw_score_distribution(audit)
    (out_dir / "score_distribution.png").write_bytes(figure)
    write_text_atomic(out_dir / "index.html", _html(audit, root, dataset, figure))
    return paths["summary_json"].parent


def draw_score_distribution(audit: LabelAudit) -> bytes:
    """PNG: issue-score histograms per split (flagged vs kept), and given -> suggested counts of the flags."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    checked = audit.issues[audit.issues["method"] != ""]
    train = audit.params.train_split
    splits = sorted(checked["split"].unique(), key=lambda s: (s != train, s))
    fig, axes = plt.subplots(1, len(splits) + 1, figsize=(4.2 * (len(splits) + 1), 3.6), squeeze=False)
    bins = np.linspace(0, 1, 26)
    for axis, split in zip(axes[0], splits):
        here = checked[checked["split"] == split]
        axis.hist([here.loc[~here["is_issue"], "score"], here.loc[here["is_issue"], "score"]], bins=bins,
                  stacked=True, color=["#7a9cc6", "#d9534f"], label=["kept", "flagged"])
        axis.set(title=f"{split}: {int(here['is_issue'].sum())} of {len(here)} flagged", xlabel="issue score",
                 ylabel="samples")
        axis.legend()
    _draw_flag_matrix(axes[0][-1], audit)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()


def _draw_flag_matrix(axis, audit: LabelAudit) -> None:
    classes = audit.classes
    flagged = audit.flagged
    counts = pd.crosstab(flagged["given_label"], flagged["suggested_label"]).reindex(
        index=classes, columns=classes, fill_value=0)
    axis.imshow(counts.to_numpy(), cmap="Reds")
    for (i, j), value in np.ndenumerate(counts.to_numpy()):
        axis.text(j, i, str(value), ha="center", va="center")
    axis.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    axis.set_yticks(range(len(classes)), classes)
    axis.set(title="flagged: given (rows) -> suggested", xlabel="suggested", ylabel="given")


def _split_rows(audit: LabelAudit) -> list[dict]:
    return [{"split": split, **{k: info.get(k, "") for k in ("samples", "checked", "flagged", "model_disagrees")},
             "how": info.get("probabilities") or info.get("skipped", "")}
            for split, info in audit.summary["splits"].items()]


def _card(row, root: Path) -> str:
    return (f"<div class='card flagged' data-sample-id='{escape(row.sample_id)}'>"
            f"<img src='{thumbnail_data_uri(root / row.path)}' alt='{escape(row.path)}'>"
            f"<div class=warning><b>{escape(row.given_label)}</b> &rarr; <b>{escape(row.suggested_label)}</b></div>"
            f"<div>score {row.score:.3f} &middot; {escape(row.split)}</div><div>{escape(row.path)}</div></div>")


def _datalab_section(audit: LabelAudit, root: Path) -> str:
    if audit.datalab_summary.empty:
        return ""
    summary = audit.datalab_summary[["split", "issue_type", "num_issues", "score"]].round({"score": 3})
    cards = []
    paths = audit.issues.set_index("sample_id")["path"]
    for issue_type in ("outlier", "near_duplicate"):
        column = f"is_{issue_type}_issue"
        if column in audit.datalab:
            for row in audit.datalab[audit.datalab[column] == True].itertuples():  # noqa: E712
                path = paths[row.sample_id]
                cards.append(f"<div class=card><img src='{thumbnail_data_uri(root / path)}' alt=''>"
                             f"<div class=info>{escape(issue_type)}</div><div>{escape(path)}</div></div>")
    return ("<h2>Datalab</h2><p>Datalab on the same probabilities, with the embeddings as features. "
            "<code>non_iid</code> tests whether features drift along the table's order (sorted paths, so "
            "class folders come in blocks): a low score there is expected for a folder-per-class layout.</p>"
            + table_html(summary.to_dict("records"), list(summary.columns)) + "".join(cards))


def _html(audit: LabelAudit, root: Path, dataset: str, figure: bytes) -> str:
    flagged = audit.flagged
    shown = flagged.head(MAX_CARDS)
    more = f"<p>{len(flagged) - len(shown)} more in issues.csv.</p>" if len(flagged) > len(shown) else ""
    body = (f"<p>{audit.summary['flagged']} of {audit.summary['checked']} checked samples flagged "
            f"({audit.summary['not_checked']} not checked) by <code>{escape(audit.summary['method'])}</code>. "
            f"Score: {escape(audit.summary['score'])}.</p>"
            + table_html(_split_rows(audit), ["split", "samples", "checked", "flagged", "model_disagrees", "how"])
            + f"<img alt='issue score distribution' src='data:image/png;base64,{base64.b64encode(figure).decode()}'>"
            + f"<h2 id=flagged>Flagged samples ({len(flagged)}), most likely mislabelled first</h2>"
            + "".join(_card(row, root) for row in shown.itertuples()) + more
            + _datalab_section(audit, root))
    return page(f"Label issues: {dataset}", body)
