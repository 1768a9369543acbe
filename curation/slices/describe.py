"""Naming a slice in words a person checks at a glance, and saying what to do about it."""

from __future__ import annotations

import numpy as np
import pandas as pd

MIN_SHARE = 0.4  # a predicate must hold for this share of the slice to describe it
MIN_LIFT = 0.2  # and be this much more common inside than outside (absolute share)
MAX_WORDS = 3


def attribute_evidence(flags: pd.DataFrame, members: np.ndarray) -> list[dict]:
    """The predicates that set the members apart: share inside and outside, largest differences first."""
    inside = flags.iloc[members].mean()
    rest = flags.drop(index=flags.index[members]).mean() if len(members) < len(flags) else inside * 0
    difference = (inside - rest).sort_values(ascending=False)
    chosen = [name for name in difference.index if inside[name] >= MIN_SHARE and difference[name] >= MIN_LIFT]
    return [{"attribute": name, "inside": float(inside[name]), "outside": float(rest[name])}
            for name in chosen[:MAX_WORDS]]


def class_evidence(outcomes: pd.DataFrame, members: np.ndarray) -> dict:
    """The labels that dominate the slice and its confusions (label -> predicted, errors only)."""
    inside = outcomes.iloc[members]
    shares = inside["label"].value_counts(normalize=True)
    overall = outcomes["label"].value_counts(normalize=True)
    wrong = inside[inside["wrong"]]
    confusions = wrong.groupby(["label", "predicted"]).size().sort_values(ascending=False)
    splits = inside["split"].value_counts()
    return {"label": str(shares.index[0]), "label_inside": float(shares.iloc[0]),
            "label_outside": float(overall.get(shares.index[0], 0.0)),
            "confusions": [{"label": str(a), "predicted": str(b), "count": int(n)} for (a, b), n in confusions.items()],
            "splits": {str(k): int(v) for k, v in splits.items()}}


def describe(evidence: list[dict], classes: dict) -> str:
    """"labelled adidas (100% vs 31%); background busy (70% vs 25%); mostly called nike (7), converse (4)"."""
    parts = []
    if classes["label_inside"] >= 0.75:
        parts.append(f"labelled {classes['label']} ({classes['label_inside']:.0%} vs {classes['label_outside']:.0%})")
    parts += [f"{e['attribute']} ({e['inside']:.0%} vs {e['outside']:.0%})" for e in evidence]
    if not evidence:
        parts.append("no measured attribute sets it apart: look at the thumbnails")
    if classes["confusions"]:
        top = classes["confusions"][:2]
        parts.append("errors: " + ", ".join(f"{c['label']} called {c['predicted']} ({c['count']})" for c in top))
    return "; ".join(parts)


QUERY_WORDS = {  # predicate -> words a search engine understands, or None: not searchable
    "background busy (a scene, not a backdrop)": "street photo",
    "background plain and dark": "black background",
    "background plain white": "white background",
    "grey-scale or nearly": "black and white photo",
    "vivid colours": "colorful",
    "blurred": "blurry photo",
}


def _query_words(attribute: str, noun: str) -> str | None:
    if attribute in QUERY_WORDS:
        return QUERY_WORDS[attribute]
    prefix = f"{noun} colour "
    if attribute.startswith(prefix):
        return attribute[len(prefix):]
    if attribute.endswith("fills most of the frame"):
        return "close-up"
    if attribute.endswith("small in the frame"):
        return "worn, full body"
    return None


def scrape_queries(evidence: list[dict], classes: dict, all_classes: list[str], noun: str) -> list[tuple[str, str]]:
    """(label, query) pairs to collect more of the slice: its searchable words for each class it
    holds (for a one-class slice, that class and the classes it is mistaken for)."""
    words = [w for w in (_query_words(e["attribute"], noun) for e in evidence) if w]
    wanted = [classes["label"]] if classes["label_inside"] >= 0.75 else list(all_classes)
    wanted += [c["predicted"] for c in classes["confusions"][:1] if c["predicted"] not in wanted]
    suffix = f" {noun}s" if noun != "object" else ""
    return [(label, " ".join([label, *words]) + suffix) for label in wanted]
