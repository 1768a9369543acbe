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


def slice_ids(report_dir) -> list[int]:
    """The error slices of the last slices stage (reports/<dataset>/slices/slices.csv)."""
    import pandas as pd

    path = report_dir / "slices" / "slices.csv"
    return [int(s) for s in pd.read_csv(path)["slice"]] if path.is_file() else []


def slice_views(dataset, slices: list[int]) -> dict[str, object]:
    """One view per error slice, its errors first (most confident first, as the slice page shows them)."""
    from fiftyone import ViewField as F

    return {f"error-slice-{n}": dataset.match(F("error_slices").contains(n)) for n in slices}


def save_views(dataset, slices: list[int] = ()) -> dict[str, int]:
    """Save (or overwrite) every view; returns name -> sample count. Error-slice views of slices that
    no longer exist are deleted."""
    for stale in [v for v in dataset.list_saved_views() if v.startswith("error-slice-")]:
        dataset.delete_saved_view(stale)
    counts = {}
    for name, view in (saved_view_definitions(dataset) | slice_views(dataset, list(slices))).items():
        dataset.save_view(name, view, overwrite=True)
        counts[name] = len(view)
    return counts
