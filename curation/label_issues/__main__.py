"""`python -m curation.label_issues DATA`: which labels look wrong, in every labelled split.

Copies come from the duplicate engine and stay in one fold. Out-of-sample probabilities come from a
cross-validated logistic regression on cached backbone embeddings (the fast path, default), or from
the training's fold models (--from-folds). A noise channel fitted to them gives P(label wrong); the
findings: not_in_any_class, conflicting_copies, label_error (P >= --threshold), and a review queue.
cleanlab's find_label_issues and Datalab (outliers, class imbalance, non-iid) run for comparison.

Writes reports/<dataset>/label_issues/{issues.csv, issues.json, datalab.csv, findings.csv,
findings.json, summary.json, score_distribution.png, index.html}. The dataset is only read.

Exit codes: 0 done; 1 label issues found and --fail-on-issues given; 2 bad input.
"""

from __future__ import annotations

import argparse
import sys

from curation.cache import ContentCache
from curation.engine import use_engine
from curation.checks.label_issues import check_result
from curation.cli import EXIT_FINDINGS, EXIT_OK, command_parser, run_cli, scan_from_args
from curation.errors import CurationError
from curation.label_issues.audit import SOURCES, LabelIssueParams, audit_label_issues
from curation.label_issues.finetune import FinetuneParams
from curation.label_issues.detect import FILTER_BY, RANK_BY
from curation.label_issues.report import write_label_issue_report
from curation.report_files import format_table


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser("python -m curation.label_issues", __doc__, engine=True)
    defaults = LabelIssueParams()
    parser.add_argument("--probabilities", choices=SOURCES, default=defaults.source,
                        help="where the out-of-sample probabilities come from: cv_logreg (default, the fast path: "
                             "logistic regression on the embeddings), finetune (also fold models fine-tuned on "
                             "cached activations of the frozen early stages, mixed with it in the share that explains "
                             "the labels best: for hundreds of images a class), folds (the training's own fold "
                             "models, reports/<dataset>/training/oof.parquet)")
    parser.add_argument("--from-folds", action="store_true", help="the same as --probabilities folds")
    parser.add_argument("--fold-model-rounds", type=int, default=FinetuneParams().rounds,
                        help="with finetune: rounds of fold models, each on other folds with the labels weighed by "
                             "the rounds before, averaged (default %(default)s; 2 ranks flips a little better in twice "
                             "the time)")
    parser.add_argument("--threshold", type=float, default=defaults.threshold,
                        help="P(label wrong) at and above which a sample is in the default list")
    parser.add_argument("--review-floor", type=float, default=defaults.review_floor,
                        help="P(label wrong) at and above which a sample below the threshold is in the review queue")
    parser.add_argument("--injection-rounds", type=int, default=defaults.injection_rounds,
                        help="rounds of the noise-injection check (0: skip it; default 2, 1 with finetune)")
    parser.add_argument("--filter-by", choices=FILTER_BY, default=defaults.filter_by,
                        help="cleanlab's rule, run for comparison (the cleanlab_issue column)")
    parser.add_argument("--rank-by", choices=RANK_BY, default=defaults.rank_by, help="label quality behind the score")
    parser.add_argument("--folds", type=int, default=defaults.n_folds, help="cross-validation folds of the fast path")
    parser.add_argument("--c", type=float, default=defaults.c, help="inverse regularisation of the logistic regression")
    parser.add_argument("--model", default=defaults.embedding_model,
                        help="backbone for the embeddings, or several comma-separated whose features are used side "
                             "by side (e.g. tf_efficientnet_lite0,tf_efficientnet_lite1)")
    parser.add_argument("--no-datalab", action="store_true", help="skip Datalab (outliers, near duplicates, ...)")
    parser.add_argument("--train-split", default=defaults.train_split)
    parser.add_argument("--other-splits-teach-train", action="store_true",
                        help="train's fold models also learn from the other labelled splits (less the copies of "
                             "what they predict; each label weighed by its first-pass estimate)")
    parser.add_argument("--top", type=int, default=15, help="flagged samples to print")
    parser.add_argument("--fail-on-issues", action="store_true", help="exit 1 when any label issue is flagged")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        params = LabelIssueParams(source="folds" if args.from_folds else args.probabilities, filter_by=args.filter_by,
                                  rank_by=args.rank_by, n_folds=args.folds, c=args.c, embedding_model=args.model,
                                  datalab=not args.no_datalab, train_split=args.train_split, threshold=args.threshold,
                                  review_floor=args.review_floor, injection_rounds=args.injection_rounds,
                                  finetune=FinetuneParams(rounds=args.fold_model_rounds),
                                  other_splits_teach_train=args.other_splits_teach_train)
        params.validate()
    except ValueError as exc:
        raise CurationError(str(exc)) from exc
    with use_engine(args.engine), ContentCache(args.cache_dir) as cache:
        scanned = scan_from_args(args, cache)
        audit = audit_label_issues(scanned.table, scanned.dataset.root, cache=cache, params=params,
                                   report_dir=scanned.report_dir)
    result = check_result(scanned.table, audit)
    out_dir = write_label_issue_report(audit, result, root=scanned.dataset.root,
                                       out_dir=scanned.report_dir / "label_issues", dataset=scanned.name)
    _print_summary(audit, args.top)
    print(f"report: {out_dir / 'index.html'}")
    return EXIT_FINDINGS if args.fail_on_issues and len(audit.flagged) else EXIT_OK


def _print_summary(audit, top: int) -> None:
    kinds = ", ".join(f"{count} {kind}" for kind, count in audit.summary["by_kind"].items())
    print(f"{audit.summary['flagged']} of {audit.summary['checked']} samples flagged by {audit.summary['method']}"
          f" ({kinds}; {audit.summary['review']} in the review queue; {audit.summary['not_checked']} not checked)")
    for split, info in audit.summary["splits"].items():
        print(f"  {split}: " + (f"{info['flagged']} of {info['checked']} flagged; probabilities: {info['probabilities']}"
                                 if "probabilities" in info else f"not checked: {info['skipped']}"))
    if len(audit.flagged) and top > 0:
        shown = audit.flagged.head(top)[["split", "path", "kind", "given_label", "suggested_label", "wrong_probability"]]
        shown = shown.round({"wrong_probability": 3})
        print("\n" + format_table(shown) + "\n")


if __name__ == "__main__":
    sys.exit(run_cli(main))
