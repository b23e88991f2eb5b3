"""Failure classification by error code, never by message text."""

from __future__ import annotations

from core.errors import is_transient


def test_error_classification_by_code() -> None:
    assert is_transient("ProvisionedThroughputExceededException")
    assert is_transient("ThrottlingException")
    assert not is_transient("ValidationException")
    assert not is_transient("AccessDeniedException")


def test_connection_failures_are_transient() -> None:
    from botocore.exceptions import ConnectionClosedError, EndpointConnectionError, ReadTimeoutError

    assert is_transient(EndpointConnectionError(endpoint_url="http://x"))
    assert is_transient(ConnectionClosedError(endpoint_url="http://x"))
    assert is_transient(ReadTimeoutError(endpoint_url="http://x"))
    assert not is_transient(ValueError("a bug is not a retry"))
