"""What each pipeline stage last computed, so a re-run with nothing changed skips it.

A stage's fingerprint digests everything its output depends on: the stage's own settings and the
fingerprints of what it reads (the sample table's content, upstream stages). The state lives in
reports/<dataset>/run_state.json and is written after every stage, so an interrupted run resumes
at the stage it was in.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curation.report_files import write_json


def fingerprint(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]


def table_fingerprint(table) -> str:
    """What the dataset is: every file's content with its path, split and label."""
    columns = table[["path", "split", "label", "sha256"]].astype(str).sort_values("path")
    return hashlib.sha256(columns.to_csv(index=False).encode()).hexdigest()[:20]


@dataclass
class RunState:
    path: Path
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> "RunState":
        stages = json.loads(path.read_text()).get("stages", {}) if path.is_file() else {}
        return cls(path, stages)

    def is_current(self, stage: str, stage_fingerprint: str) -> bool:
        return self.stages.get(stage, {}).get("fingerprint") == stage_fingerprint

    def record(self, stage: str, stage_fingerprint: str, seconds: float, summary: dict[str, Any]) -> None:
        self.stages[stage] = {"fingerprint": stage_fingerprint, "seconds": round(seconds, 2), "summary": summary}
        write_json(self.path, {"schema_version": 1, "stages": self.stages})
