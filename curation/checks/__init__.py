"""The registry of checks. Each entry names its parameters class and its run function by import
path, so that listing checks imports nothing heavy; later checks (exact and near duplicates,
leakage, label issues) join by adding one entry here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from curation.checks.base import CheckContext, CheckResult


@dataclass(frozen=True)
class CheckSpec:
    name: str
    description: str
    params: str  # "module:Class" of the parameters dataclass
    run: str  # "module:function" taking (table, params, context)

    def _load(self, target: str) -> Any:
        module, attribute = target.split(":")
        return getattr(importlib.import_module(module), attribute)

    def default_params(self) -> Any:
        return self._load(self.params)()

    def __call__(self, table, params=None, context: CheckContext | None = None) -> CheckResult:
        return self._load(self.run)(table, params if params is not None else self.default_params(), context)


CHECKS: dict[str, CheckSpec] = {
    spec.name: spec
    for spec in [
        CheckSpec(
            "integrity",
            "unreadable, mislabelled-format, odd-mode, rotated, animated, tiny, extreme or huge images",
            "curation.checks.integrity:IntegrityParams",
            "curation.checks.integrity:run",
        ),
        CheckSpec(
            "exact_duplicates",
            "the same file bytes or the same decoded pixels, within or across splits",
            "curation.checks.duplicates:ExactDuplicatesParams",
            "curation.checks.duplicates:run_exact",
        ),
        CheckSpec(
            "near_duplicates",
            "edited copies (resized, cropped, flipped, recoloured...): mirror-aware hashes and embeddings",
            "curation.leakage.params:LeakageParams",
            "curation.checks.duplicates:run_near",
        ),
        CheckSpec(
            "leakage",
            "copies of a picture across splits (train/test leaks) and copies under two labels",
            "curation.leakage.params:LeakageParams",
            "curation.checks.duplicates:run_leakage",
        ),
        CheckSpec(
            "label_issues",
            "labels an out-of-sample model confidently disputes (cleanlab), plus Datalab outliers and near duplicates",
            "curation.label_issues.audit:LabelIssueParams",
            "curation.checks.label_issues:run",
        ),
    ]
}


def get_check(name: str) -> CheckSpec:
    try:
        return CHECKS[name]
    except KeyError:
        raise KeyError(f"unknown check {name!r}; known checks: {', '.join(CHECKS)}") from None
