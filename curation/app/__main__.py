"""`python -m curation.app [DATA]`: serve the last run's model on 127.0.0.1, with whether to trust it.

Loads reports/<dataset>/training/ (or --model-dir) with its companion model when one was trained
(`--companion`: the answer is then the ensemble's, unless --no-companion), fits the calibration on
the held-out predictions of what it serves, indexes the dataset's images (cached embeddings and hashes of the audit), reads the
error slices, and serves the page and the JSON API (curation/app/server.py) on --host:--port.
Offline: no analytics, no download. Corrections go to feedback/<dataset>/<label>/ beside reports/.

    python -m curation.app shoes --port 8000
    curl -F file=@photo.jpg http://127.0.0.1:8000/api/predict
    python -m curation.app shoes --export /tmp/shoes-app   # a folder that runs elsewhere: python app.py

Exit codes: 0 served (or exported); 2 bad input (no model, no dataset).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from curation.cli import EXIT_OK, command_parser, run_cli


def build_parser() -> argparse.ArgumentParser:
    from curation.app.calibration import COVERAGE
    from curation.app.inputs import MAX_UPLOAD_BYTES
    from curation.app.predictor import EVIDENCE_EMBEDDINGS

    parser = command_parser("python -m curation.app", __doc__, dataset=False)
    parser.add_argument("data", nargs="?", default="shoes", help="a dataset folder or known name (default shoes)")
    parser.add_argument("--model-dir", type=Path, help="model.pkl and model.json (default reports/<dataset>/training)")
    parser.add_argument("--reports-dir", type=Path, default=Path("reports"))
    parser.add_argument("--cache-dir", type=Path, help="the per-image cache (default: $CURATION_CACHE_DIR or ~/.cache/curation)")
    parser.add_argument("--feedback-dir", type=Path, help="where corrections go (default feedback/<dataset> beside reports/)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--coverage", type=float, default=COVERAGE, help="of the prediction sets (default %(default)s)")
    parser.add_argument("--max-upload-mb", type=float, default=MAX_UPLOAD_BYTES / 2**20)
    parser.add_argument("--evidence", default=EVIDENCE_EMBEDDINGS,
                        help="backbones of the nearest / no-class / slice vectors (default: %(default)s)")
    parser.add_argument("--no-companion", action="store_true",
                        help="serve the model alone even where a companion model was trained beside it")
    parser.add_argument("--export", type=Path, metavar="DIR", help="write a self-contained app folder and exit")
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from curation.app.feedback import FeedbackStore
    from curation.app.predictor import TrustedPredictor
    from curation.app.server import create_app, serve
    from curation.errors import CurationError
    from curation.layout import feedback_folder

    args = build_parser().parse_args(argv)
    if not 0.5 <= args.coverage < 1:
        raise CurationError(f"--coverage must be at least 0.5 and below 1, not {args.coverage}")
    if args.export:
        from curation.app.export import export_app

        folder = export_app(args.data, args.export, reports_dir=args.reports_dir, model_dir=args.model_dir,
                            cache_dir=args.cache_dir)
        print(f"exported to {folder}: run it with `python {folder / 'app.py'} --port {args.port}`")
        return EXIT_OK
    predictor = TrustedPredictor.load(args.data, reports_dir=args.reports_dir, model_dir=args.model_dir,
                                      cache_dir=args.cache_dir, coverage=args.coverage, evidence=args.evidence,
                                      companion=not args.no_companion)
    store = FeedbackStore(args.feedback_dir or feedback_folder(args.reports_dir, predictor.dataset),
                          predictor.classes, predictor.root)
    app = create_app(predictor, store, max_bytes=int(args.max_upload_mb * 2**20))
    print(f"serving {predictor.dataset} ({predictor.metadata.get('arch')}) on http://{args.host}:{args.port} "
          f"(ready in {predictor.started_seconds} s)", flush=True)
    serve(app, args.host, args.port)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(run_cli(main))
