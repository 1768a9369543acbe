"""Atomic writes: a reader sees the old file or the whole new one; writers do not share a temporary."""

from __future__ import annotations

import pandas as pd
import pytest

from curation.atomic_files import atomic_path
from curation.sample_table import write_sample_table


def test_two_writers_of_one_file_each_get_their_own_temporary_and_the_later_rename_wins(tmp_path):
    target = tmp_path / "reports" / "samples.parquet"
    with atomic_path(target) as first, atomic_path(target) as second:  # two runs writing the same report
        assert first != second and first.suffix == second.suffix == ".parquet"
        pd.DataFrame({"x": [1]}).to_parquet(first)
        pd.DataFrame({"x": [2]}).to_parquet(second)
    assert pd.read_parquet(target)["x"].tolist() == [1]  # the outer block renamed last
    assert sorted(p.name for p in target.parent.iterdir()) == ["samples.parquet"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "samples.parquet"
    write_sample_table(pd.DataFrame({"x": [1]}), target)
    with pytest.raises(RuntimeError), atomic_path(target) as temporary:
        temporary.write_bytes(b"half a parquet")
        raise RuntimeError("interrupted")
    assert pd.read_parquet(target)["x"].tolist() == [1]
    assert [p.name for p in tmp_path.iterdir()] == ["samples.parquet"]
