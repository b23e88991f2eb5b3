"""Classifying AWS errors by code: transient ones are retried, permanent ones are routed aside."""

from __future__ import annotations

from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

# Codes AWS documents as retryable (throttling, capacity, internal). Everything else is permanent: a
# retry of the same request would fail the same way, so it must go to a DLQ or back to the client.
TRANSIENT_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "LimitExceededException",
        "SlowDown",
        "InternalFailure",
        "InternalError",
        "InternalServerError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "KMSThrottlingException",
        "KMSInternalException",
        "TransactionInProgressException",
        "RequestTimeout",
        "RequestTimeoutException",
        "AWS.SimpleQueueService.InternalError",
        "AWS.SimpleQueueService.RequestThrottled",
        "KMS.ThrottlingException",
    }
)


def error_code(exc: BaseException) -> str:
    """The AWS error code of an exception, or its class name for non-AWS errors."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "Unknown"))
    return type(exc).__name__


def is_transient(exc_or_code: BaseException | str) -> bool:
    """True when retrying the same request later can succeed."""
    if isinstance(exc_or_code, str):
        return exc_or_code in TRANSIENT_CODES
    # Connection refused/reset/closed and timeouts (HTTPClientError covers ConnectionClosedError and
    # ReadTimeoutError; ConnectionError covers EndpointConnectionError and ConnectTimeoutError).
    if isinstance(exc_or_code, ConnectionError | HTTPClientError):
        return True
    if isinstance(exc_or_code, ClientError):
        status = exc_or_code.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return error_code(exc_or_code) in TRANSIENT_CODES or status >= 500
    return False


class TransientError(Exception):
    """A failure worth retrying: the record is handed back to its event source for redelivery."""


class PermanentError(Exception):
    """A failure that a retry cannot fix: the record is counted, logged and routed to the DLQ path."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
