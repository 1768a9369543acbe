"""`python -m curation run DATA`: scan -> leakage audit -> train (or reuse) -> evaluate (full and
leak-free) -> label issues -> FiftyOne dataset, then one report linking everything.

Every stage is skipped when its inputs are unchanged since it last finished (see state.py), so a
re-run with nothing changed takes seconds; `stages` runs a subset.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curation.pipeline.config import RunConfig
from curation.pipeline.state import RunState, fingerprint, table_fingerprint

log = logging.getLogger("curation.run")


@dataclass
class RunResult:
    config: RunConfig
    report: Path
    ran: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    summaries: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def run_pipeline(config: RunConfig) -> RunResult:
    from curation.cache import ContentCache
    from curation.scan import scan_dataset
    from curation.pipeline.report import write_run_report
    from curation.pipeline.stages import STAGE_LIST, RunContext

    from curation.engine import use_engine

    with use_engine(config.engine), ContentCache(config.cache_dir) as cache:
        started = time.perf_counter()
        scanned = scan_dataset(config.data, reports_dir=Path(config.reports_dir), cache=cache)
        ctx = RunContext(config, scanned, cache, {"table": table_fingerprint(scanned.table)})
        state = RunState.load(scanned.report_dir / "run_state.json")
        result = RunResult(config, scanned.report_dir / "index.html")
        result.seconds["load"] = time.perf_counter() - started
        for position, stage in enumerate(STAGE_LIST, start=1):
            stage_fingerprint = fingerprint(stage.name, stage.inputs(ctx))
            ctx.fingerprints[stage.name] = stage_fingerprint
            if stage.name not in config.stages:
                continue
            prefix = f"[{position}/{len(STAGE_LIST)}] {stage.name}: {stage.description}"
            if state.is_current(stage.name, stage_fingerprint) and stage.outputs_present(ctx):
                log.info("%s: unchanged, reused", prefix)
                result.reused.append(stage.name)
                result.summaries[stage.name] = state.stages[stage.name]["summary"]
                continue
            log.info("%s ...", prefix)
            began = time.perf_counter()
            summary = stage.run(ctx)
            seconds = time.perf_counter() - began
            state.record(stage.name, stage_fingerprint, seconds, summary)
            result.ran.append(stage.name)
            result.summaries[stage.name] = summary
            result.seconds[stage.name] = seconds
            log.info("%s: done in %.1f s", prefix, seconds)
        write_run_report(scanned, config, result, state)
    return result
