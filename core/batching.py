"""Chunking under the AWS batch limits, and mapping partial failures back to the records they name."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def chunk(items: Sequence[T], n: int) -> Iterator[Sequence[T]]:
    """Consecutive slices of at most ``n`` items."""
    if n < 1:
        raise ValueError("chunk size must be at least 1")
    for start in range(0, len(items), n):
        yield items[start : start + n]


def chunk_by_size(
    items: Iterable[T], max_count: int, max_bytes: int, size_of: Callable[[T], int]
) -> Iterator[list[T]]:
    """Greedy batches of at most ``max_count`` items whose sizes add up to at most ``max_bytes``.

    An item larger than ``max_bytes`` on its own is still yielded alone, so the caller's API rejects it
    with its own error instead of this function silently dropping it.
    """
    batch: list[T] = []
    total = 0
    for item in items:
        size = size_of(item)
        if batch and (len(batch) >= max_count or total + size > max_bytes):
            yield batch
            batch, total = [], 0
        batch.append(item)
        total += size
    if batch:
        yield batch


def failed_kinesis_indexes(response: dict[str, Any]) -> list[tuple[int, str]]:
    """Indexes (and error codes) of the entries a PutRecords response says failed.

    PutRecords answers 200 even when some records failed: ``FailedRecordCount`` counts them and each
    failed entry of ``Records`` (same order as the request) carries ``ErrorCode`` instead of a sequence.
    """
    if not response.get("FailedRecordCount"):
        return []
    return [(i, r["ErrorCode"]) for i, r in enumerate(response.get("Records", ())) if "ErrorCode" in r]


def failed_sqs_ids(response: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    """Entry id -> (error code, sender's fault) for each entry a SendMessageBatch response lists as failed."""
    return {
        f["Id"]: (f.get("Code", "Unknown"), bool(f.get("SenderFault"))) for f in response.get("Failed", ())
    }
