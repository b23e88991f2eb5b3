"""The Lambda entry point of a batch consumer, built once from its processor and record handler.

Every consumer handler is the same few lines around Powertools' ``process_partial_response``: the
Logger's Lambda context, the Metrics flush, and dropping the metrics when they are disabled (see
``core.observability``). ``batch_entry`` writes them once. Each handler module calls it with its own
module-level processor, logger and metrics, so a copy of the module (one local execution environment,
``local.sources.load_container``) keeps its own batch state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch import BasePartialBatchProcessor, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from core.observability import discard_metrics_if_disabled

LambdaHandler = Callable[[dict[str, Any], LambdaContext], PartialItemFailureResponse]


def batch_entry(
    processor: BasePartialBatchProcessor,
    record_handler: Callable[..., Any],
    logger: Logger,
    metrics: Metrics,
) -> LambdaHandler:
    """``lambda_handler`` for a batch consumer: Powertools' partial batch response, logged and measured."""

    @logger.inject_lambda_context
    @metrics.log_metrics
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
        try:
            return process_partial_response(
                event=event, record_handler=record_handler, processor=processor, context=context
            )
        finally:
            discard_metrics_if_disabled(metrics)

    return lambda_handler  # type: ignore[no-any-return]
