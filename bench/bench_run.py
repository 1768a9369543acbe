"""The whole audit (`python -m curation run`) on the shoes set with default settings: cold (empty
cache, reports and FiftyOne database) and warm (everything unchanged), with the time of each stage.

Run: .venv/bin/python bench/bench_run.py [DATA]. Prints a Markdown table for bench/RESULTS.md.
Targets: at most 20 minutes cold and under a minute warm on 2 CPU cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = PROJECT.parent / "shared" / "datasets" / "shoes"


def run(data: Path, scratch: Path) -> tuple[float, dict]:
    env = dict(os.environ, CURATION_CACHE_DIR=str(scratch / "cache"), FIFTYONE_DATABASE_DIR=str(scratch / "db"),
               HF_HUB_OFFLINE="1", FIFTYONE_DO_NOT_TRACK="true", CURATION_PROGRESS="0")
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "curation", "run", str(data), "--reports-dir", str(scratch / "reports")],
                   check=True, env=env, cwd=PROJECT)
    seconds = time.perf_counter() - started
    state = json.loads((scratch / "reports" / data.name / "run_state.json").read_text())["stages"]
    return seconds, state


def main() -> None:
    data = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DATA
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        cold, state = run(data, scratch)
        warm, _ = run(data, scratch)
        metrics = json.loads((scratch / "reports" / data.name / "training" / "metrics.json").read_text())
    print("| run | seconds | minutes |\n|---|---|---|")
    print(f"| cold | {cold:.0f} | {cold / 60:.1f} |\n| warm | {warm:.0f} | {warm / 60:.2f} |\n")
    print("| stage (cold) | seconds |\n|---|---|")
    for stage, info in state.items():
        print(f"| {stage} | {info['seconds']:.0f} |")
    for split, result in metrics["splits"].items():
        full, free = result["full"], result.get("leak_free")
        print(f"\n{split}: error {full['error']:.3f} (TTA {full['tta_error']:.3f}), n={full['n']}; "
              f"leak-free {free['error']:.3f} (n={free['n']})" if free else "")


if __name__ == "__main__":
    main()
