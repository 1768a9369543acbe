"""`python -m curation.audit DATA`: the leakage audit's earlier name, kept so CI jobs that call it still
run; the command lives in curation/leakage/__main__.py (`python -m curation.leakage`)."""

import sys

from curation.cli import run_cli
from curation.leakage.__main__ import build_parser, main, params_from_args

__all__ = ["build_parser", "main", "params_from_args"]

if __name__ == "__main__":
    sys.exit(run_cli(main))
