"""Small glue around Powertools observability shared by every handler."""

from __future__ import annotations

from typing import Any

import orjson
from aws_lambda_powertools.metrics.functions import is_metrics_disabled


def discard_metrics_if_disabled(metrics: Any) -> None:
    """Drop the invocation's metrics when ``POWERTOOLS_METRICS_DISABLED`` is set.

    Powertools skips the flush when metrics are disabled but keeps the values in memory, so a
    long-lived process (the local runtime, a test session) grows the set until it serializes it
    anyway at 100 values. Call this at the end of every invocation.
    """
    if is_metrics_disabled():
        metrics.clear_metrics()


def log_json(obj: Any) -> str:
    """Powertools Logger serializer: orjson, returning text (raw bytes would break the Logger), and
    ``str()`` for values JSON has no form for (exceptions, Decimal), so a log line never raises."""
    return orjson.dumps(obj, default=str).decode()
