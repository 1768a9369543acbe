"""The saved views a reviewer opens first: what the model still gets wrong, and why we doubt it."""

from __future__ import annotations

EXTENDED_TEST_SPLIT = "test_extra"


def _still_wrong(dataset):
    from fiftyone import ViewField as F

    wrong = dataset.exists("predictions").match(F("predictions.label") != F("ground_truth.label"))
    return wrong.sort_by("mistakenness", reverse=True)


def saved_view_definitions(dataset) -> dict[str, object]:
    """name -> view. Every view exists even when empty, so reviewers always find the same names."""
    from fiftyone import ViewField as F

    return {
        "still-wrong": _still_wrong(dataset),
        "consensus-hard": dataset.match(F("consensus_hard") == True).sort_by("mistakenness", reverse=True),  # noqa: E712
        # Originals and their copies share a leak_group; sorting by it puts each copy beside its original.
        "leaks": dataset.exists("leak_group").sort_by([("leak_group", 1), ("is_leak", 1)]),
        "label-issues": dataset.match(F("label_issue") == True).sort_by("label_issue_score", reverse=True),  # noqa: E712
        "extended-test-wrong": _still_wrong(dataset).match_tags(EXTENDED_TEST_SPLIT),
    }


def save_views(dataset) -> dict[str, int]:
    """Save (or overwrite) every view; returns name -> sample count."""
    counts = {}
    for name, view in saved_view_definitions(dataset).items():
        dataset.save_view(name, view, overwrite=True)
        counts[name] = len(view)
    return counts
