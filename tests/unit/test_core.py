"""The shared core: chunking at the AWS limits, failure mapping, ids, settings, wiring."""

from __future__ import annotations

import dataclasses
import functools
import io
import logging
import uuid
from decimal import Decimal

import orjson
import pytest
from aws_lambda_powertools import Logger
from hypothesis import given
from hypothesis import strategies as st

from core import envelope as env
from core import wiring
from core.batching import chunk, chunk_by_size, failed_kinesis_indexes, failed_sqs_ids
from core.errors import is_transient
from core.ids import derive_event_id, event_id_time_ms, new_event_id, new_event_ids
from core.observability import log_json
from core.settings import (
    FUNCTION_SETTINGS,
    VARIABLES,
    ArchiverSettings,
    AuthorizerSettings,
    FromEnv,
    IngestSettings,
    RollupSettings,
    SettingsError,
    WorkerSettings,
)
from core.tenancy import is_valid_tenant_id

INGEST_RESOURCES = {"QUEUE_URL": "q", "STREAM_NAME": "s"}


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


def test_error_classification_by_code() -> None:
    assert is_transient("ProvisionedThroughputExceededException")
    assert is_transient("ThrottlingException")
    assert not is_transient("ValidationException")
    assert not is_transient("AccessDeniedException")


def test_server_ids_are_uuid7_and_strictly_increasing() -> None:
    ids = [new_event_id() for _ in range(5000)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(uuid.UUID(i).version == 7 for i in ids)
    assert event_id_time_ms(ids[0]) is not None


def test_batched_server_ids_continue_the_same_sequence() -> None:
    # GIVEN single ids and batches interleaved, one batch longer than a millisecond's 4,096 counters
    ids = [new_event_id(), *new_event_ids(3), new_event_id(), *new_event_ids(5000), new_event_id()]
    # THEN every id is a canonical UUIDv7, all distinct, strictly increasing across both functions
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 7 and parsed.variant == uuid.RFC_4122
    # AND the batch borrowed later milliseconds instead of wrapping its counter
    times = [event_id_time_ms(i) for i in ids]
    assert times == sorted(times) and times[-1] > times[0]  # type: ignore[type-var]
    assert new_event_ids(0) == []


def test_derived_ids_are_stable_uuid5() -> None:
    a = derive_event_id("acme", "event", "delivery-1#0")
    assert a == derive_event_id("acme", "event", "delivery-1#0")
    assert uuid.UUID(a).version == 5 and event_id_time_ms(a) is None


def test_settings_defaults_are_the_design_limits() -> None:
    s = IngestSettings.from_env(INGEST_RESOURCES)
    assert (s.max_body_bytes, s.max_decompressed_bytes, s.max_records, s.max_record_bytes, s.max_depth) == (
        1024 * 1024,
        10 * 1024 * 1024,
        1000,
        256 * 1024,
        64,
    )


@pytest.mark.parametrize(
    ("cls", "env", "name"),
    [
        (IngestSettings, {**INGEST_RESOURCES, "MAX_RECORDS": "many"}, "MAX_RECORDS"),
        (IngestSettings, {**INGEST_RESOURCES, "MAX_RECORDS": "0"}, "MAX_RECORDS"),
        (IngestSettings, {**INGEST_RESOURCES, "AUTH_MODE": "magic"}, "AUTH_MODE"),
        (WorkerSettings, {"TABLE_NAME": "t", "REDACT_IP_ADDRESSES": "perhaps"}, "REDACT_IP_ADDRESSES"),
        (IngestSettings, {**INGEST_RESOURCES, "DEFAULT_TENANT": "bad tenant"}, "DEFAULT_TENANT"),
        (IngestSettings, {**INGEST_RESOURCES, "DEFAULT_TENANT": "acme\n"}, "DEFAULT_TENANT"),
        (
            IngestSettings,
            {**INGEST_RESOURCES, "MAX_BODY_BYTES": "100", "MAX_DECOMPRESSED_BYTES": "10"},
            "MAX_DECOMPRESSED_BYTES",
        ),
        (WorkerSettings, {"TABLE_NAME": "t", "STORE_BUDGET_SECONDS": "0"}, "STORE_BUDGET_SECONDS"),
    ],
)
def test_bad_settings_name_the_variable(cls: type[FromEnv], env: dict[str, str], name: str) -> None:
    with pytest.raises(SettingsError, match=name):
        cls.from_env(env)


@pytest.mark.parametrize(
    ("cls", "names"),
    [
        (IngestSettings, "QUEUE_URL, STREAM_NAME"),
        (AuthorizerSettings, "API_KEYS_TABLE_NAME"),
        (WorkerSettings, "TABLE_NAME"),
        (ArchiverSettings, "ARCHIVE_BUCKET"),
        (RollupSettings, "ROLLUP_TABLE_NAME"),
    ],
)
def test_require_names_missing_resources(cls: type[FromEnv], names: str) -> None:
    with pytest.raises(SettingsError, match=names):
        cls.from_env({})


def test_each_function_reads_only_its_variables_with_the_declared_types() -> None:
    # GIVEN every variable set to a valid non-default value
    env = {
        v.name: v.choices[-1]
        if v.choices
        else {bool: "true", int: "7", float: "2.5", str: "x"}[type(v.default)]
        for v in VARIABLES.values()
    }
    env["DEFAULT_TENANT"] = "acme"
    env["MAX_DECOMPRESSED_BYTES"] = "7"
    for cls in FUNCTION_SETTINGS:
        s = cls.from_env(env)
        for f in dataclasses.fields(s):  # type: ignore[arg-type]
            value = getattr(s, f.name)
            # THEN each field has its variable's type, as its class annotation says
            assert type(value) is type(VARIABLES[f.name].default), f.name
            assert f.type == type(value).__name__, f.name
    worker = WorkerSettings.from_env({"TABLE_NAME": "events"})
    assert (worker.table_name, worker.retention_days, worker.store_compact) == ("events", 30, True)
    assert not hasattr(worker, "queue_url")


def test_wiring_follows_aws_advice() -> None:
    w = wiring.load()
    # AWS: queue visibility timeout at least six times the function timeout.
    assert w.worker.visibility_timeout_seconds >= 6 * w.worker.function_timeout_seconds
    assert w.worker.maximum_concurrency >= 2  # the SQS event source mapping minimum
    assert {c.name for c in w.stream_consumers} == {"archiver", "rollup"}


def test_every_wired_handler_is_a_function_of_the_code() -> None:
    import importlib

    w = wiring.load()
    paths = {**w.handlers, **{c.name: c.handler for c in w.stream_consumers}}
    assert set(paths) == {"ingest", "authorizer", "worker", "archiver", "rollup"}
    for name, dotted in paths.items():
        module, _, attr = dotted.rpartition(".")
        assert callable(getattr(importlib.import_module(module), attr)), name


def test_connection_failures_are_transient() -> None:
    from botocore.exceptions import ConnectionClosedError, EndpointConnectionError, ReadTimeoutError

    assert is_transient(EndpointConnectionError(endpoint_url="http://x"))
    assert is_transient(ConnectionClosedError(endpoint_url="http://x"))
    assert is_transient(ReadTimeoutError(endpoint_url="http://x"))
    assert not is_transient(ValueError("a bug is not a retry"))


def test_ids_from_many_threads_are_unique_and_increasing_per_thread() -> None:
    # The sequence number used to be read after the lock was released: two threads could share it.
    import threading

    results: list[list[str]] = [[] for _ in range(8)]

    def make(slot: list[str]) -> None:
        slot.extend(new_event_id() for _ in range(3000))

    threads = [threading.Thread(target=make, args=(r,)) for r in results]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [i for r in results for i in r]
    assert len(set(every)) == len(every)
    assert all(r == sorted(r) for r in results)


def test_threads_asking_for_a_client_at_once_share_one(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN client creation slow enough that racing threads overlap (as pollers starting together do)
    import threading
    import time

    from core import aws

    made: list[object] = []

    def slow_create(service: str) -> object:
        time.sleep(0.01)
        made.append(object())
        return made[-1]

    monkeypatch.setattr(aws, "_create", functools.cache(slow_create))
    barrier = threading.Barrier(8)
    got: list[object] = []

    def ask() -> None:
        barrier.wait()
        got.append(aws.client("sqs"))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # THEN one client was made, and every thread got it
    assert len(made) == 1 and all(c is made[0] for c in got) and len(got) == 8


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


@pytest.mark.parametrize("tenant", ["acme\n", "\nacme", "acme\r", "ac me", "x" * 65, "", "-acme"])
def test_tenant_ids_are_matched_whole_a_trailing_newline_included(tenant: str) -> None:
    # GIVEN a shape `^...$` accepts with re.match: "acme\n" passed and its records died in the worker
    assert not is_valid_tenant_id(tenant)
    # THEN the envelope schema, compiled as the consumers compile it, refuses the same ids
    record = {
        "v": 1,
        "kind": "event",
        "tenant_id": tenant,
        "event_id": "0190b6d4-1c6e-7a3b-8c5d-2e3f4a5b6c7d",
    }
    record |= {
        "received_at": "2026-11-22T10:15:30.123456Z",
        "type": None,
        "source": {"route": "POST /events"},
    }
    with pytest.raises(env.InvalidEnvelope, match="tenant_id"):
        env.validate({**record, "payload": {}})
    env.validate({**record, "tenant_id": "acme", "payload": {}})
