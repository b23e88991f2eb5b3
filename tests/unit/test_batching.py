"""Chunking at the AWS limits, and mapping partial failures back to their records."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.batching import chunk, chunk_by_size, failed_kinesis_indexes, failed_sqs_ids


def test_chunk_at_exact_limits() -> None:
    assert [len(c) for c in chunk(list(range(25)), 25)] == [25]
    assert [len(c) for c in chunk(list(range(26)), 25)] == [25, 1]
    assert list(chunk([], 10)) == []
    with pytest.raises(ValueError, match="at least 1"):
        list(chunk([1], 0))


@given(st.lists(st.integers(1, 300), max_size=200), st.integers(1, 12), st.integers(300, 2000))
def test_chunk_by_size_respects_both_limits_and_keeps_order(sizes: list[int], count: int, limit: int) -> None:
    batches = list(chunk_by_size(sizes, count, limit, lambda s: s))
    assert [s for b in batches for s in b] == sizes
    for batch in batches:
        assert 1 <= len(batch) <= count
        assert sum(batch) <= limit


def test_chunk_by_size_fills_sqs_batches_exactly_to_256_kib() -> None:
    # Ten 26,214-byte bodies are 262,140 bytes: one batch. An eleventh entry starts a new one.
    assert [len(b) for b in chunk_by_size([26_214] * 11, 10, 262_144, lambda s: s)] == [10, 1]
    # Two bodies of 131,072 bytes fill a batch exactly; a third must go to the next.
    assert [len(b) for b in chunk_by_size([131_072] * 3, 10, 262_144, lambda s: s)] == [2, 1]


def test_oversized_item_is_yielded_alone_not_dropped() -> None:
    assert list(chunk_by_size([5, 50, 5], 10, 10, lambda s: s)) == [[5], [50], [5]]


def test_kinesis_failures_map_back_to_request_positions() -> None:
    response = {
        "FailedRecordCount": 2,
        "Records": [
            {"SequenceNumber": "1", "ShardId": "s"},
            {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "slow down"},
            {"SequenceNumber": "2", "ShardId": "s"},
            {"ErrorCode": "InternalFailure", "ErrorMessage": "oops"},
        ],
    }
    assert failed_kinesis_indexes(response) == [
        (1, "ProvisionedThroughputExceededException"),
        (3, "InternalFailure"),
    ]
    assert failed_kinesis_indexes({"FailedRecordCount": 0, "Records": [{"SequenceNumber": "1"}]}) == []


def test_sqs_failures_map_back_to_entry_ids() -> None:
    response = {
        "Successful": [{"Id": "0"}],
        "Failed": [
            {"Id": "1", "Code": "InternalError", "SenderFault": False},
            {"Id": "2", "Code": "InvalidMessageContents", "SenderFault": True},
        ],
    }
    assert failed_sqs_ids(response) == {"1": ("InternalError", False), "2": ("InvalidMessageContents", True)}
