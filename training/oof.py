"""Reading the out-of-fold probabilities written by `python -m training.train --folds K`.

oof.parquet holds one row per usable train sample, predicted by the one fold model that did not
train on it: sample_id, label, fold, predicted, wrong (bool), and p_<class> columns. That is what
cleanlab's find_label_issues expects (out-of-sample pred_probs).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

OOF_FILE = "oof.parquet"


def oof_path(report_dir: Path) -> Path:
    return report_dir / "training" / OOF_FILE


def read_oof(report_dir: Path) -> pd.DataFrame | None:
    """The out-of-fold table for reports/<dataset>/ (`report_dir`), or None when folds have not run."""
    path = oof_path(Path(report_dir))
    if not path.is_file():
        return None
    return pd.read_parquet(path)


def probability_columns(frame: pd.DataFrame) -> list[str]:
    """The p_<class> columns in the order the model's classes were written."""
    return [c for c in frame.columns if c.startswith("p_")]
