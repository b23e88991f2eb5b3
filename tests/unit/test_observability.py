"""The log serializer writes any value."""

from __future__ import annotations

import io
import logging
from decimal import Decimal

import orjson
from aws_lambda_powertools import Logger

from core.observability import log_json


def test_log_serializer_writes_exceptions_and_values_json_has_no_form_for() -> None:
    # GIVEN a Powertools Logger with the shared serializer
    stream = io.StringIO()
    logger = Logger(
        service="test-log-json", json_serializer=log_json, logger_handler=logging.StreamHandler(stream)
    )
    # WHEN an exception object and a Decimal are logged as extra keys
    logger.error("failed", extra={"error": LookupError("unknown encoding: rot13"), "amount": Decimal("1.50")})
    # THEN the line is JSON text holding their str() forms
    line = orjson.loads(stream.getvalue())
    assert (line["message"], line["error"], line["amount"]) == ("failed", "unknown encoding: rot13", "1.50")
    assert isinstance(log_json({"a": 1}), str)
