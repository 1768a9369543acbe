"""The stages of `python -m curation run`, each a short function over one shared context.

A stage declares what its output depends on (`inputs`) and does its work (`run`); the runner
skips a stage whose inputs are unchanged since it last finished and whose outputs still exist.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from curation.pipeline.config import RunConfig


@dataclass
class RunContext:
    config: RunConfig
    scanned: Any  # ScannedDataset
    cache: Any  # ContentCache
    fingerprints: dict[str, str]  # stage -> fingerprint of its inputs, for downstream stages

    @property
    def report_dir(self) -> Path:
        return self.scanned.report_dir

    @property
    def training_dir(self) -> Path:
        return self.report_dir / "training"


@dataclass(frozen=True)
class Stage:
    name: str
    description: str
    inputs: Callable[[RunContext], list[Any]]
    outputs: Callable[[RunContext], list[Path]]
    run: Callable[[RunContext], dict[str, Any]]
    exists: Callable[[RunContext], bool] | None = None  # for outputs that are not files

    def outputs_present(self, ctx: RunContext) -> bool:
        files = all(path.is_file() for path in self.outputs(ctx))
        return files and (self.exists is None or self.exists(ctx))


# --- scan: the sample table and the integrity check --------------------------------------------

def _scan(ctx: RunContext) -> dict[str, Any]:
    from curation.checks import get_check
    from curation.checks.base import CheckContext
    from curation.scan.report import write_integrity_report

    scanned = ctx.scanned
    context = CheckContext(scanned.dataset.root, scanned.name, scanned.dataset.descriptor, ctx.cache)
    result = get_check("integrity")(scanned.table, None, context)
    write_integrity_report(scanned, result)
    return {"samples": len(scanned.table), "unreadable": result.summary["unreadable"],
            "findings": result.counts_by_code()}


# --- audit: leakage between splits ----------------------------------------------------------------

def _audit(ctx: RunContext) -> dict[str, Any]:
    from curation.leakage import audit_leakage, write_leakage_report

    scanned = ctx.scanned
    result = audit_leakage(scanned.table, scanned.dataset.root, cache=ctx.cache)
    summary = write_leakage_report(result, scanned.table, ctx.report_dir / "leakage", dataset=scanned.name,
                                   root=scanned.dataset.root)
    return {"leak_pairs": summary["leaks"]["pairs"], "copy_groups": summary["groups"]["count"],
            "samples_to_drop": summary["leaks"]["samples_to_drop"]}


# --- train: fine-tune (and K fold models), or reuse a model trained on the same data ----------------

def train_config(settings) -> Any:
    from training.config import AugmentConfig, TrainConfig

    augment = AugmentConfig(backdrop=settings.backdrop, degrade=settings.degrade, crop_min_scale=settings.crop_min_scale)
    return TrainConfig(arch=settings.arch, weights=Path(settings.weights) if settings.weights else None, augment=augment,
                       image_size=settings.image_size, epochs=settings.epochs, frozen_epochs=settings.frozen_epochs,
                       frozen_stages=settings.frozen_stages, batch_size=settings.batch_size, lr=settings.lr,
                       lr_mult=settings.lr_mult, valid_split=settings.valid_split, seed=settings.seed,
                       time_budget=settings.time_budget, low_res_size=_smaller(settings.low_res_size, settings.image_size),
                       threads=settings.threads)


def _smaller(low_res_size: int, image_size: int) -> int:
    """The smaller size for early epochs, or 0 where it is not smaller than the run's image size (a run at
    --image-size 224 or below has no smaller size by default)."""
    return low_res_size if low_res_size < image_size else 0


def _train(ctx: RunContext) -> dict[str, Any]:
    from training.pipeline import train_dataset

    settings = ctx.config.train
    run = train_dataset(ctx.scanned, train_config(settings), cache=ctx.cache, folds=settings.folds, evaluate=False,
                        out_dir=ctx.training_dir, companion=settings.companion)
    return {"arch": run.metadata.get("arch"), "weights": run.metadata.get("weights_source"),
            "data_hash": run.metadata.get("training_data", {}).get("hash"), "folds": settings.folds}


# --- evaluate: every non-train split, full and leak-free ------------------------------------------

def _evaluate(ctx: RunContext) -> dict[str, Any]:
    from training.evaluate import evaluate_model
    from training.export import load_exported, read_metadata

    learn = load_exported(ctx.training_dir)
    metadata = read_metadata(ctx.training_dir)
    evaluation = evaluate_model(learn, metadata, ctx.scanned.table, ctx.scanned.dataset.root, cache=ctx.cache,
                                out_dir=ctx.training_dir, report_dir=ctx.report_dir, tta=ctx.config.train.tta)
    return {"splits": sorted(evaluation.metrics)}


# --- labels: cleanlab on out-of-sample probabilities -----------------------------------------------

def _label_source(ctx: RunContext) -> str:
    return "folds" if ctx.config.train.folds and (ctx.training_dir / "oof.parquet").is_file() else "cv_logreg"


def _labels(ctx: RunContext) -> dict[str, Any]:
    from curation.checks.label_issues import check_result
    from curation.label_issues.audit import LabelIssueParams, audit_label_issues
    from curation.label_issues.report import write_label_issue_report

    scanned = ctx.scanned
    params = LabelIssueParams(source=_label_source(ctx))
    audit = audit_label_issues(scanned.table, scanned.dataset.root, cache=ctx.cache, params=params,
                               report_dir=ctx.report_dir)
    write_label_issue_report(audit, check_result(scanned.table, audit), root=scanned.dataset.root,
                             out_dir=ctx.report_dir / "label_issues", dataset=scanned.name)
    return {"source": params.source, "flagged": audit.summary["flagged"], "checked": audit.summary["checked"]}


# --- slices: where the model fails --------------------------------------------------------------------

def _slices(ctx: RunContext) -> dict[str, Any]:
    from curation.slices import find_error_slices, object_noun
    from curation.slices.report import write_slice_report

    scanned = ctx.scanned
    result = find_error_slices(scanned.table, scanned.dataset.root, cache=ctx.cache, report_dir=ctx.report_dir,
                               noun=object_noun(scanned.name))
    summary = write_slice_report(result, root=scanned.dataset.root, out_dir=ctx.report_dir / "slices",
                                 dataset=scanned.name)
    return {"slices": summary["slices"], "errors": summary["errors"], "samples": summary["samples"]}


# --- review: the FiftyOne dataset ------------------------------------------------------------------

def _review(ctx: RunContext) -> dict[str, Any]:
    from curation.review import build_review

    result = build_review(ctx.scanned, cache=ctx.cache, embeddings=ctx.config.review_embeddings)
    return {"dataset": result.name, "samples": result.samples, "views": result.views, "brain_runs": result.brain_runs}


def _review_dataset_exists(ctx: RunContext) -> bool:
    import fiftyone as fo

    return fo.dataset_exists(ctx.scanned.name)


def _table(ctx: RunContext) -> str:
    return ctx.fingerprints["table"]


STAGE_LIST = [
    Stage("scan", "sample table and integrity check", lambda c: [_table(c)],
          lambda c: [c.report_dir / "integrity" / "summary.json"], _scan),
    Stage("audit", "leakage audit", lambda c: [_table(c), "leakage-v1"],
          lambda c: [c.report_dir / "leakage" / "summary.json"], _audit),
    Stage("train", "fine-tune the classifier", lambda c: [_table(c), asdict(c.config.train) | {"tta": None}],
          lambda c: [c.training_dir / "model.pkl", c.training_dir / "model.json"]
          + ([c.training_dir / "oof.parquet"] if c.config.train.folds else [])
          + ([c.training_dir / "companion.pt"] if c.config.train.companion else []), _train),
    Stage("evaluate", "metrics on every non-train split, full and leak-free",
          lambda c: [c.fingerprints.get("train"), c.fingerprints.get("audit"), c.config.train.tta],
          lambda c: [c.training_dir / "predictions.parquet", c.training_dir / "metrics.json"], _evaluate),
    Stage("labels", "label issues", lambda c: [_table(c), "labels-v2", _label_source(c), c.fingerprints.get("train")
                                                if _label_source(c) == "folds" else None],
          lambda c: [c.report_dir / "label_issues" / "issues.csv"], _labels),
    Stage("slices", "error slices: where the model fails", lambda c: [_table(c), "slices-v1"] +
          [c.fingerprints.get(s) for s in ("train", "evaluate", "labels")],
          lambda c: [c.report_dir / "slices" / "slices.csv"], _slices),
    Stage("review", "FiftyOne dataset", lambda c: [_table(c), c.config.review_embeddings] +
          [c.fingerprints.get(s) for s in ("audit", "train", "evaluate", "labels", "slices")],
          lambda c: [], _review, _review_dataset_exists),
]
STAGES_BY_NAME = {stage.name: stage for stage in STAGE_LIST}
