"""The audit's files under reports/<dataset>/leakage/.

- pairs.csv: every exact, near-duplicate and similar pair (fuse.PAIR_COLUMNS), most certain first;
- leak_free.csv: sample_id, split, drop, reason for every non-train sample (leak_free.py);
- summary.json (schema below), summary.md, similarity_histogram.png, index.html (self-contained).

summary.json, schema_version 1 (keys are only ever added; a change of meaning bumps the version):
  schema_version, dataset, root, generated (ISO time), params (LeakageParams),
  embedding {model, source, index {split: "flat"|"ivf"}},
  samples {total, readable, by_split {split: n}},
  pairs {exact, near_duplicate, same_scene, similar}: pair counts,
  leaks {pairs, samples_to_drop, by_split_pair {"<a>/<b>": {exact, near_duplicate}}, same_scene_pairs: across splits},
  within_split_copies {split: pairs of kind exact or near_duplicate inside that split},
  groups {count, largest, samples}: copy groups (connected components of exact/near pairs),
  label_conflicts: pairs of copies whose labels differ,
  leak_free {split: {total, drop, keep}},
  nearest_neighbour {within|across: {count, median, p05, p95}}: cosine to the nearest sample,
  timings_s {step: seconds}, computed {hashes, embeddings, keypoints, fade_thumbnails}: images processed in this
  run (not cached); computed.pairs_verified, computed.faded_images: counts.
"""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from curation.html_pages import escape, page, table_html, thumbnail_data_uri
from curation.leakage.fuse import COPY_KINDS, KINDS
from curation.leakage.pipeline import LeakageResult, params_record
from curation.leakage.leak_free import LEAK_FREE_FILE
from curation.report_files import format_table, write_json, write_text_atomic

SCHEMA_VERSION = 1
HISTOGRAM_FILE = "similarity_histogram.png"


def build_summary(result: LeakageResult, table: pd.DataFrame, *, dataset: str, root: Path) -> dict:
    pairs = result.pairs
    copies = pairs[pairs["kind"].isin(COPY_KINDS)]
    leaks = result.leaks
    by_split_pair: dict[str, dict[str, int]] = {}
    for (a, b, kind), count in leaks.groupby(["split_a", "split_b", "kind"]).size().items():
        by_split_pair.setdefault(f"{a}/{b}", {k: 0 for k in COPY_KINDS})[kind] = int(count)
    group_sizes = _group_sizes(copies)
    leak_free = result.leak_free
    return {
        "schema_version": SCHEMA_VERSION,
        "dataset": dataset,
        "root": str(root),
        "generated": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "params": params_record(result.params),
        "embedding": {"model": result.embedding_model, "source": result.embedding_source, "index": result.index_kind},
        "samples": {"total": len(table), "readable": int((table["load_error"] == "").sum()),
                    "by_split": {str(k): int(v) for k, v in table["split"].value_counts().sort_index().items()}},
        "pairs": {kind: int((pairs["kind"] == kind).sum()) for kind in KINDS},
        "leaks": {"pairs": len(leaks), "samples_to_drop": int(leak_free["drop"].sum()), "by_split_pair": by_split_pair,
                  "same_scene_pairs": int(((pairs["kind"] == "same_scene") & pairs["cross_split"]).sum())},
        "within_split_copies": {str(k): int(v) for k, v in copies[~copies["cross_split"]].groupby("split_a").size().items()},
        "groups": {"count": len(group_sizes), "largest": max(group_sizes.values(), default=0),
                   "samples": int(sum(group_sizes.values()))},
        "label_conflicts": int(pairs["label_conflict"].sum()),
        "leak_free": {str(split): {"total": len(rows), "drop": int(rows["drop"].sum()), "keep": int((~rows["drop"]).sum())}
                      for split, rows in leak_free.groupby("split")},
        "nearest_neighbour": {"within": _stats(result.nearest_within), "across": _stats(result.nearest_across)},
        "timings_s": {k: round(v, 3) for k, v in result.timings.items()},
        "computed": result.computed,
    }


def _group_sizes(copies: pd.DataFrame) -> dict[int, int]:
    members: dict[int, set[str]] = {}
    for row in copies.itertuples():
        members.setdefault(row.group, set()).update((row.sample_id_a, row.sample_id_b))
    return {group: len(ids) for group, ids in members.items()}


def _stats(values: np.ndarray) -> dict:
    values = values[~np.isnan(values)]
    if not len(values):
        return {"count": 0, "median": None, "p05": None, "p95": None}
    return {"count": int(len(values)), "median": round(float(np.median(values)), 4),
            "p05": round(float(np.quantile(values, 0.05)), 4), "p95": round(float(np.quantile(values, 0.95)), 4)}


def write_leakage_report(result: LeakageResult, table: pd.DataFrame, out_dir: Path, *, dataset: str, root: Path) -> dict:
    """Write every file of the report; returns the summary."""
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = build_summary(result, table, dataset=dataset, root=root)
    write_text_atomic(out_dir / "pairs.csv", result.pairs.to_csv(index=False))
    write_text_atomic(out_dir / LEAK_FREE_FILE, result.leak_free.to_csv(index=False))
    write_json(out_dir / "summary.json", summary)
    write_text_atomic(out_dir / "summary.md", summary_markdown(summary))
    png = draw_histogram(result, out_dir / HISTOGRAM_FILE)
    write_text_atomic(out_dir / "index.html", report_html(result, table, summary, root=root, histogram_png=png))
    return summary


def split_pair_rows(summary: dict) -> list[dict]:
    rows = [{"splits": pair, **counts, "leak pairs": sum(counts.values())}
            for pair, counts in sorted(summary["leaks"]["by_split_pair"].items())]
    return rows


def summary_markdown(summary: dict) -> str:
    p = summary["params"]
    lines = [f"# Leakage audit of {summary['dataset']}", "",
             f"{summary['samples']['total']} images ({summary['samples']['readable']} readable). "
             f"Pairs: {summary['pairs']['exact']} exact, {summary['pairs']['near_duplicate']} near-duplicate, "
             f"{summary['pairs']['same_scene']} same-scene ({summary['leaks']['same_scene_pairs']} across splits), "
             f"{summary['pairs']['similar']} similar (context, not leaks).", "",
             f"**Leaks (copies across splits): {summary['leaks']['pairs']} pairs; "
             f"{summary['leaks']['samples_to_drop']} evaluation samples to drop for a leak-free split.**",
             f"Copy groups: {summary['groups']['count']} (largest {summary['groups']['largest']}); "
             f"label conflicts: {summary['label_conflicts']}.", ""]
    if summary["leaks"]["by_split_pair"]:
        lines += ["| splits | exact | near-duplicate |", "|---|---|---|"]
        lines += [f"| {pair} | {c['exact']} | {c['near_duplicate']} |" for pair, c in sorted(summary["leaks"]["by_split_pair"].items())]
        lines.append("")
    lines += ["| split | evaluation samples | drop | keep |", "|---|---|---|---|"]
    lines += [f"| {s} | {c['total']} | {c['drop']} | {c['keep']} |" for s, c in summary["leak_free"].items()]
    lines += ["", f"Thresholds: near-duplicate when aligned (blocks >= {p['aligned_structure']}, tone >= {p['aligned_tone']}), "
              f"never when the alignment contradicts (below {p['contradict_structure']} / {p['contradict_tone']}); "
              f"else at >= {p['inliers_near']} keypoint inliers, or cosine >= {p['cosine_near']}, "
              f"or hash <= {p['hash_strict']} / >= {p['inliers_support']} inliers with cosine >= {p['cosine_support']}; "
              f"a washed-out image (>= {p['faded_fraction']:.0%} saturated) at fade score >= {p['faded_near']}; "
              f"same scene when aligned loosely (blocks >= {p['scene_structure']}, tone >= {p['scene_tone']}) or, in a "
              f"setting, at backdrop >= {p['setting_backdrop']}, object colours >= {p['setting_object_colours']}, "
              f"cosine >= {p['setting_cosine']}; "
              f"similar at cosine >= {p['cosine_similar']}; hashes {', '.join(p['hash_methods'])} (mirror included); "
              f"embeddings {summary['embedding']['model'] or 'off'}."]
    return "\n".join(lines) + "\n"


def draw_histogram(result: LeakageResult, path: Path) -> bytes:
    """Nearest-neighbour cosine similarities within and across splits, thresholds marked."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 3.6), dpi=100)
    bins = np.linspace(min(0.3, np.nanmin(np.r_[result.nearest_within, result.nearest_across, 1.0])), 1.0, 71)
    for values, label, colour in ((result.nearest_across, "nearest in another split", "#d62728"),
                                  (result.nearest_within, "nearest in the same split", "#1f77b4")):
        values = values[~np.isnan(values)]
        if len(values):
            axis.hist(values, bins=bins, alpha=0.55, label=f"{label} ({len(values)})", color=colour)
    p = result.params
    for value, name, style in ((p.cosine_similar, "similar", ":"), (p.cosine_support, "near (with hash or keypoints)", "-."),
                               (p.cosine_near, "near-duplicate", "--")):
        axis.axvline(value, color="black", linestyle=style, linewidth=1)
        axis.text(value, axis.get_ylim()[1] * 0.95, f" {name} {value:g}", rotation=90, va="top", fontsize=8)
    axis.set_xlabel("cosine similarity to the nearest neighbour")
    axis.set_ylabel("images")
    axis.set_yscale("log")
    axis.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    path.write_bytes(buffer.getvalue())
    return buffer.getvalue()


def _figure(value) -> str:
    return "-" if pd.isna(value) else f"{value:.3f}"


def _card(row, root: Path, side: str) -> str:
    path = getattr(row, f"path_{side}")
    return (f"<div class=card><img src='{thumbnail_data_uri(root / path)}' alt=''>"
            f"<div><b>{escape(getattr(row, f'split_{side}'))}</b> · {escape(getattr(row, f'label_{side}'))}</div>"
            f"<div class=path>{escape(path)}</div></div>")


def _pair_row(row) -> str:
    flags = ("<span class=error>LEAK</span> " if row.leak else "") + (
        "<span class=error>label conflict</span>" if row.label_conflict else "")
    cosine = "" if pd.isna(row.cosine) else f"{row.cosine:.3f}"
    return (f"<tr class=pair data-kind='{escape(row.kind)}' data-a='{escape(row.sample_id_a)}' data-b='{escape(row.sample_id_b)}'>"
            f"<td>{escape(row.kind)}</td><td>{escape(row.signal)}</td><td>{cosine}</td><td>{int(row.hash_distance)}</td>"
            f"<td>{'' if row.inliers < 0 else int(row.inliers)}</td>"
            f"<td>{'' if pd.isna(row.fade_score) else f'{row.fade_score:.3f}'}</td>"
            f"<td>{_figure(row.structure)} / {_figure(row.tone)}{_overlay_note(row)}</td>"
            f"<td>{escape(row.split_a)} · {escape(row.label_a)}<br>{escape(row.path_a)}</td>"
            f"<td>{escape(row.split_b)} · {escape(row.label_b)}<br>{escape(row.path_b)}</td><td>{flags}</td></tr>")


PAIR_HEAD = ("<table><thead><tr><th>kind</th><th>signal</th><th>cosine</th><th>hash distance</th><th>keypoint inliers</th>"
             "<th>fade score</th><th>aligned / tone</th><th>a</th><th>b</th>"
             "<th></th></tr></thead><tbody>")


def _overlay_note(row) -> str:
    """The share of the picture set aside as one image's overlay, where the figures were measured without it."""
    overlay = getattr(row, "overlay", np.nan)
    return f"<br>overlay set aside: {overlay:.0%} of the picture" if pd.notna(overlay) and overlay > 0 else ""


def _setting_note(row) -> str:
    """The setting figures, where the pair was compared by its backdrop (curation.leakage.scene)."""
    if pd.isna(getattr(row, "backdrop", np.nan)):
        return ""
    return (f"<br>backdrop patches matched {row.backdrop:.0%}, backdrop colours {row.backdrop_colours:.2f}, "
            f"object colours {row.object_colours:.2f}")


def _groups_html(pairs: pd.DataFrame, root: Path) -> str:
    copies = pairs[pairs["kind"].isin(COPY_KINDS)]
    if copies.empty:
        return "<p>No exact or near-duplicate pairs.</p>"
    parts = []
    for group, rows in copies.groupby("group", sort=False):
        seen, cards = set(), []
        for row in rows.itertuples():
            for side in ("a", "b"):
                sample = getattr(row, f"sample_id_{side}")
                if sample not in seen:
                    seen.add(sample)
                    cards.append(_card(row, root, side))
        leak = " (leak across splits)" if rows["leak"].any() else " (within one split)"
        parts.append(f"<section class=group id='group-{group}'><h3>Group {group}: {len(seen)} copies{leak}</h3>"
                     + "".join(cards) + PAIR_HEAD + "".join(_pair_row(r) for r in rows.itertuples()) + "</tbody></table></section>")
    return "".join(parts)


def _similar_html(pairs: pd.DataFrame, root: Path, limit: int) -> str:
    return _kind_html(pairs, root, "similar", limit)


def _kind_html(pairs: pd.DataFrame, root: Path, kind: str, limit: int) -> str:
    similar = pairs[pairs["kind"] == kind]
    if similar.empty:
        return "<p>None.</p>"
    shown = similar.head(limit)
    note = (f"<p>Showing the {len(shown)} most similar of {len(similar)}; all are in pairs.csv.</p>"
            if len(similar) > len(shown) else "")
    rows = "".join(f"<div class=pairbox data-kind='{kind}'>{_card(r, root, 'a')}{_card(r, root, 'b')}"
                   f"<div>{escape(r.signal)}; cosine {r.cosine:.3f}; aligned {_figure(r.structure)}, tone {_figure(r.tone)}"
                   f"{_setting_note(r)}</div></div>"
                   for r in shown.itertuples())
    return note + rows + PAIR_HEAD + "".join(_pair_row(r) for r in shown.itertuples()) + "</tbody></table>"


EXTRA_STYLE = ("<style>.group{border-top:2px solid #ccc;margin-top:1rem}.path{font-family:monospace}"
               ".pairbox{display:inline-block;border:1px dashed #bbb;margin:.3rem;padding:.2rem}</style>")


def report_html(result: LeakageResult, table: pd.DataFrame, summary: dict, *, root: Path, histogram_png: bytes) -> str:
    p = summary["params"]
    thresholds = [{"setting": k, "value": p[k]} for k in
                  ("align_min_inliers", "aligned_structure", "aligned_tone", "contradict_structure", "contradict_tone",
                   "scene_structure", "scene_tone", "scene_coverage", "setting_share", "setting_backdrop", "setting_backdrop_colours",
                   "setting_object_colours", "setting_cosine", "cosine_near", "cosine_support", "cosine_similar", "inliers_near", "inliers_support", "keypoint_features",
                   "faded_fraction", "faded_near", "hash_methods", "hash_strict", "hash_max_distance", "neighbours", "model")]
    leak_free_rows = [{"split": s, **c} for s, c in summary["leak_free"].items()]
    histogram = "data:image/png;base64," + base64.b64encode(histogram_png).decode()
    body = (EXTRA_STYLE
            + f"<p>{summary['samples']['total']} images under <code>{escape(root)}</code>. "
            f"<b id=leak-count>{summary['leaks']['pairs']}</b> leak pairs (copies across splits); "
            f"{summary['pairs']['exact']} exact, {summary['pairs']['near_duplicate']} near-duplicate, "
            f"{summary['pairs']['same_scene']} same-scene ({summary['leaks']['same_scene_pairs']} across splits) and "
            f"{summary['pairs']['similar']} similar pairs in all; {summary['groups']['count']} copy groups; "
            f"{summary['label_conflicts']} label conflicts.</p>"
            + "<h2>Leaks per split pair</h2>"
            + (table_html(split_pair_rows(summary), ["splits", "exact", "near_duplicate", "leak pairs"])
               if summary["leaks"]["by_split_pair"] else "<p>No leaks across splits.</p>")
            + "<h2>Leak-free evaluation splits</h2>" + table_html(leak_free_rows, ["split", "total", "drop", "keep"])
            + "<h2>Nearest-neighbour similarities</h2>"
            + f"<img src='{histogram}' alt='histogram of nearest-neighbour cosine similarities'>"
            + "<h2>Copies (exact and near-duplicate), most certain first</h2>" + _groups_html(result.pairs, root)
            + "<h2 id=same-scene>Same scene: another frame of the same shoot (a leak for evaluation, counted apart)</h2>"
            + _kind_html(result.pairs, root, "same_scene", result.params.similar_shown)
            + "<h2>Similar but different (context, not leaks)</h2>" + _similar_html(result.pairs, root, result.params.similar_shown)
            + "<h2>Settings</h2>" + table_html(thresholds, ["setting", "value"])
            + f"<p>Embeddings: {escape(summary['embedding']['model'] or 'off')} "
            f"({escape(summary['embedding']['source'])}).</p>")
    return page(f"Leakage audit: {summary['dataset']}", body)


def print_summary(summary: dict, out_dir: Path, stream) -> None:
    print(f"dataset {summary['dataset']}: {summary['samples']['total']} images", file=stream)
    counts = pd.DataFrame([{"kind": k, "pairs": v} for k, v in summary["pairs"].items()])
    print(format_table(counts), file=stream)
    rows = split_pair_rows(summary)
    if rows:
        print("\nleaks by split pair\n" + format_table(pd.DataFrame(rows)), file=stream)
    print(f"\nleak pairs: {summary['leaks']['pairs']}; evaluation samples to drop: {summary['leaks']['samples_to_drop']}; "
          f"label conflicts: {summary['label_conflicts']}", file=stream)
    print(f"report: {out_dir / 'index.html'}", file=stream)
