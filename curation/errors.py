"""Errors the command-line tools turn into a clean message and a documented exit code."""


class CurationError(Exception):
    """A problem the user can fix (bad path, missing dataset, bad option): no traceback needed."""

    exit_code = 2


class DatasetNotFound(CurationError):
    """No dataset root could be resolved; the message names every place that was tried."""


class WeightsNotFound(CurationError):
    """No weight source worked for a model; the message names every source that was tried."""
