"""The label-issue report: reports/<dataset>/label_issues/{issues.csv, issues.json, datalab.csv,
findings.csv, findings.json, summary.json, score_distribution.png, index.html}.

issues.csv holds every sample (findings first, then the review queue); index.html shows each finding
in its kind's section with the evidence that decided it (given and suggested label, the model's
probabilities, P(label wrong), its copies, the nearest train images with their labels), the
method, and the noise-injection check, so a person can confirm or dismiss it at a glance.
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
    """PNG: P(label wrong) histograms per split (flagged vs kept), and given -> suggested counts of the flags."""
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
        axis.hist([here.loc[~here["is_issue"], "wrong_probability"], here.loc[here["is_issue"], "wrong_probability"]],
                  bins=bins, stacked=True, color=["#7a9cc6", "#d9534f"], label=["kept", "flagged"])
        axis.set(title=f"{split}: {int(here['is_issue'].sum())} of {len(here)} flagged", xlabel="P(label wrong)",
                 ylabel="samples (log)", yscale="log")
        axis.legend()
    _draw_flag_matrix(axes[0][-1], audit)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()


def _draw_flag_matrix(axis, audit: LabelAudit) -> None:
    classes = audit.classes
    flagged = audit.flagged[audit.flagged["kind"] != "not_in_any_class"]
    counts = pd.crosstab(flagged["given_label"], flagged["suggested_label"]).reindex(
        index=classes, columns=classes, fill_value=0)
    axis.imshow(counts.to_numpy(), cmap="Reds")
    for (i, j), value in np.ndenumerate(counts.to_numpy()):
        axis.text(j, i, str(value), ha="center", va="center")
    axis.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    axis.set_yticks(range(len(classes)), classes)
    axis.set(title="flagged: given (rows) -> suggested", xlabel="suggested", ylabel="given")


METHOD_HTML = (
    "<p><b>Where the probabilities come from:</b> a logistic regression on three backbones' embeddings, "
    "cross-validated, fitted twice: the second fit weighs each label by 1 - its first-pass P(label wrong), "
    "so a suspected error teaches it less. With <code>finetune</code>, fold models (the last stage of "
    "EfficientNet-Lite2 fine-tuned per fold on cached activations of its frozen early stages, with the "
    "same weights) are averaged with it where that explains the labels better. Every sample is predicted "
    "by a model that never saw it or its copies (the per-split lines below say how).</p>"
    "<p><b>How sure:</b> each estimate is P(label wrong), from a noise channel fitted to the split's "
    "out-of-sample probabilities: the given label is taken to be the true class except for a fraction "
    "(the estimated noise rate) replaced at random; a temperature and that rate are fitted by maximum "
    "likelihood, then Bayes gives each sample's probability. Folds keep copies of one picture together, "
    "so no image is judged by a model that saw its twin. The default list holds estimates of at least "
    "{threshold}; the review queue those down to {floor}. Images far from every class are "
    "<code>not_in_any_class</code> and get no suggested class. The noise-injection check below flipped "
    "known labels of this dataset and measured what the estimate makes of them.</p>")


def _choice_html(choice: dict) -> str:
    """Which mixture of the fold models and the fast path was used, and the likelihoods that chose it."""
    scores = choice.get("label_log_likelihood") or {}
    if len(scores) < 2 or "fold_model_weight" not in choice:
        return ""
    weight = float(choice["fold_model_weight"])
    used = ("the fast path alone" if weight == 0 else "the fold models alone" if weight == 1
            else f"the fold models at weight {weight:.2f} with the fast path")
    others = ", ".join(f"{float(share):.2f}: {score:.3f}" for share, score in scores.items())
    rounds = int(choice.get("fold_model_rounds", 1))
    averaged = (f" The fold models are the mean of {rounds} rounds, each on other folds and with every label "
                f"weighed by 1 - the estimate of the rounds before." if rounds > 1 else "")
    return (f" Used {used}: of the mixtures tried, it explains the given labels best (mean log-likelihood per "
            f"label {scores[f'{weight:.2f}']:.3f}; by the fold models' weight, {others}).{averaged}")


def _split_rows(audit: LabelAudit) -> list[dict]:
    return [{"split": split, **{k: info.get(k, "") for k in ("samples", "checked", "flagged", "review",
                                                               "estimated_noise_rate", "cleanlab_flags")},
             "how": info.get("probabilities") or info.get("skipped", "")}
            for split, info in audit.summary["splits"].items()]


def _injection_html(audit: LabelAudit) -> str:
    check = audit.summary.get("injection_check") or {}
    if "rounds" not in check:
        return f"<p>Noise-injection check not run: {escape(check.get('skipped', ''))}.</p>"
    rows = [{"round": i + 1, **r} for i, r in enumerate(check["rounds"])]
    # no new flag at all (a small split whose estimate doubts nothing) leaves no precision to state
    flags = ("it raised no new flag" if check["precision"] is None
             else f"{check['precision']:.0%} of its new flags were flips")
    return (f"<h2 id=injection>Noise-injection check</h2><p>{int(check['rate'] * 100)}% of the train labels flipped "
            f"at random, per round: the default list found {check['recall']:.0%} of the flips, and "
            f"{flags} (AUROC of the estimate {check['auroc']:.3f}).</p>"
            + table_html(rows, ["round", "flipped", "found", "other_flags", "noise_rate", "auroc"]))


def _thumb(root: Path, path: str, caption: str, size: int = 110) -> str:
    return (f"<figure class=evidence><img src='{thumbnail_data_uri(root / path, size)}' alt='{escape(path)}'>"
            f"<figcaption>{caption}</figcaption></figure>")


def _references(text: str, root: Path, kind: str) -> str:
    """'label:path[:cosine]; ...' as thumbnails with captions."""
    out = []
    for item in filter(None, (part.strip() for part in (text or "").split(";"))):
        label, _, rest = item.partition(":")
        path, _, cosine = rest.rpartition(":") if kind == "nearest" else (rest, "", "")
        caption = f"{kind}: <b>{escape(label)}</b>" + (f" &middot; cos {escape(cosine)}" if cosine else "")
        out.append(_thumb(root, path, caption + f"<br>{escape(path)}"))
    return "".join(out)


def _probabilities(row, classes: list[str]) -> str:
    return ", ".join(f"{escape(name)} {getattr(row, f'p_{name}'):.2f}" for name in classes
                     if getattr(row, f"p_{name}", None) == getattr(row, f"p_{name}", None))


def _card(row, root: Path, classes: list[str]) -> str:
    verdict = (f"<b>{escape(row.given_label)}</b> &rarr; no class fits" if row.kind == "not_in_any_class" else
               f"<b>{escape(row.given_label)}</b> &rarr; <b>{escape(row.suggested_label)}</b>")
    sure = (f"{row.affinity_deviations:.1f} deviations below the typical class affinity" if row.kind == "not_in_any_class"
            else f"P(label wrong) {row.wrong_probability:.2f}")
    return (f"<div class='card flagged {escape(row.kind)}' data-sample-id='{escape(row.sample_id)}' "
            f"data-kind='{escape(row.kind)}'>"
            f"<img src='{thumbnail_data_uri(root / row.path)}' alt='{escape(row.path)}'>"
            f"<div class=warning>{verdict}</div><div>{sure}</div>"
            f"<div>model: {_probabilities(row, classes)}</div>"
            f"<div>{escape(row.split)} &middot; {escape(row.path)}</div>"
            + (f"<div class=note>{escape(row.note)}</div>" if row.note else "")
            + _references(row.copies, root, "copy") + _references(row.nearest, root, "nearest") + "</div>")


def _kind_section(audit: LabelAudit, root: Path, kind: str, title: str, explain: str, rows: pd.DataFrame) -> str:
    shown = rows.head(MAX_CARDS)
    more = f"<p>{len(rows) - len(shown)} more in issues.csv.</p>" if len(rows) > len(shown) else ""
    return (f"<h2 id='{kind.replace('_', '-')}'>{title} ({len(rows)})</h2><p>{explain}</p>"
            + "".join(_card(row, root, audit.classes) for row in shown.itertuples()) + more)


def _datalab_section(audit: LabelAudit, root: Path) -> str:
    if audit.datalab_summary.empty:
        return ""
    summary = audit.datalab_summary[["split", "issue_type", "num_issues", "score"]].round({"score": 3})
    cards = []
    paths = audit.issues.set_index("sample_id")["path"]
    if "is_outlier_issue" in audit.datalab:
        for row in audit.datalab[audit.datalab["is_outlier_issue"].astype(bool)].itertuples():
            path = paths[row.sample_id]
            cards.append(f"<div class=card><img src='{thumbnail_data_uri(root / path)}' alt=''>"
                         f"<div class=info>outlier {row.outlier_score:.2f}</div><div>{escape(path)}</div></div>")
    return ("<h2>Datalab</h2><p>Datalab on the same probabilities, with the embeddings as features, for "
            "comparison (copies come from the duplicate engine, not from Datalab). <code>non_iid</code> tests "
            "whether features drift along the table's order (sorted paths, so class folders come in blocks): a low "
            "score there is expected for a folder-per-class layout.</p>"
            + table_html(summary.to_dict("records"), list(summary.columns)) + "".join(cards))


STYLE = ("<style>figure.evidence{display:inline-block;margin:2px;font-size:11px;max-width:120px;vertical-align:top}"
         "figure.evidence img{width:110px}.card .note{font-size:12px;color:#555}</style>")


def _html(audit: LabelAudit, root: Path, dataset: str, figure: bytes) -> str:
    issues, summary = audit.issues, audit.summary
    flagged = audit.flagged
    by_kind = summary["by_kind"]
    body = (STYLE + f"<p>{summary['flagged']} findings in {summary['checked']} checked samples "
            f"({by_kind['not_in_any_class']} of no class, {summary['conflicting_copy_groups']} pictures filed under "
            f"two labels, {by_kind['label_error']} likely label errors), {summary['review']} more in the review queue; "
            f"{summary['not_checked']} not checked. Probabilities: <code>{escape(summary['source'])}</code>."
            f"{_choice_html(summary.get('probabilities_chosen') or {})}</p>"
            + METHOD_HTML.format(threshold=audit.params.threshold, floor=audit.params.review_floor)
            + table_html(_split_rows(audit), ["split", "samples", "checked", "flagged", "review",
                                              "estimated_noise_rate", "cleanlab_flags", "how"])
            + f"<img alt='issue score distribution' src='data:image/png;base64,{base64.b64encode(figure).decode()}'>"
            + _kind_section(audit, root, "not_in_any_class", "Images of no class",
                            "Far from every class in embedding space: another product, a place, a graphic. "
                            "Remove them rather than relabel.", flagged[flagged["kind"] == "not_in_any_class"])
            + _kind_section(audit, root, "conflicting_copies", "The same picture under two labels",
                            "Copies (from the duplicate engine) filed under different labels; the card is the side the "
                            "copies' probabilities do not support. Keep one copy, with the supported label.",
                            issues[issues["kind"] == "conflicting_copies"])
            + _kind_section(audit, root, "label_error", "Likely label errors, most likely first",
                            f"P(label wrong) at least {audit.params.threshold}. Copies with one label are one card.",
                            flagged[flagged["kind"] == "label_error"])
            + _kind_section(audit, root, "review", "Review queue", "Below the default list: doubtful, probably right.",
                            audit.review_queue.head(50))
            + _injection_html(audit) + _datalab_section(audit, root))
    return page(f"Label issues: {dataset}", body)
