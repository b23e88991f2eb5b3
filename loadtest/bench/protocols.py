"""Protocol adapter CPU per record (``ingest/protocols``), each against its floor measured in the same run.

adapter: the protocol's ``decode`` of a 100-record request, then ``orjson.dumps`` of each decoded
record's body (the least the service does next with it).
floor (issue 13): for protobuf, ``ParseFromString`` of the same bytes (after snappy for Loki, which any
implementation must undo) and ``orjson.dumps`` of each record's line; for OTLP JSON, ``orjson.loads``
of the body and ``orjson.dumps`` of each LogRecord object.
floor (issue 14): for a Segment batch and a PostHog batch (what analytics-python and posthog-python
send), ``orjson.loads`` of the body and ``orjson.dumps`` of each message object.

Run: ``python -m loadtest.bench.protocols``. The implementations alternate round after round and the
figures are medians (ratios: the median of each round's own ratio), as in ``loadtest.bench.cpu``.
"""

from __future__ import annotations

import base64
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cramjam
import orjson
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from ingest.protocols import loki, otlp, posthog, segment
from loadtest.bench.cpu import _time_per_record
from loadtest.bench.workload import log_line

RECORDS = 100
_SEVERITIES = [(9, "INFO"), (9, "INFO"), (13, "WARN"), (17, "ERROR"), (5, "DEBUG")]


@dataclass(frozen=True)
class Case:
    name: str
    adapter: Callable[[], Any]
    floor: Callable[[], Any]
    body_bytes: int


def otlp_request(n: int = RECORDS) -> ExportLogsServiceRequest:
    """What the OTel Python SDK's LoggingHandler exports: one resource, one scope, n records."""
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    for key, value in (
        ("service.name", "checkout"),
        ("service.version", "1.4.2"),
        ("telemetry.sdk.language", "python"),
        ("telemetry.sdk.name", "opentelemetry"),
        ("host.name", "ip-10-0-3-17"),
    ):
        resource_logs.resource.attributes.append(KeyValue(key=key, value=AnyValue(string_value=value)))
    scope_logs = resource_logs.scope_logs.add()
    scope_logs.scope.name = "checkout.orders"
    for i in range(n):
        number, text = _SEVERITIES[i % len(_SEVERITIES)]
        scope_logs.log_records.append(
            LogRecord(
                time_unix_nano=1_764_000_000_000_000_000 + i * 1_000_123,
                observed_time_unix_nano=1_764_000_000_000_000_000 + i * 1_000_456,
                severity_number=number,  # type: ignore[arg-type]
                severity_text=text,
                body=AnyValue(string_value=log_line(i)),
                attributes=[
                    KeyValue(key="code.filepath", value=AnyValue(string_value="/srv/checkout/orders.py")),
                    KeyValue(key="code.function", value=AnyValue(string_value="place_order")),
                    KeyValue(key="code.lineno", value=AnyValue(int_value=120 + i % 7)),
                ],
                trace_id=(i + 1).to_bytes(16, "big"),
                span_id=(i + 1).to_bytes(8, "big"),
                flags=1,
            )
        )
    return request


def otlp_json_body(request: ExportLogsServiceRequest) -> bytes:
    document = json_format.MessageToDict(request, use_integers_for_enums=True)
    for record in document["resourceLogs"][0]["scopeLogs"][0]["logRecords"]:
        for name in ("traceId", "spanId"):
            record[name] = base64.b64decode(record[name]).hex()  # OTLP JSON ids are hex
    return orjson.dumps(document)


def loki_body(n: int = RECORDS) -> bytes:
    """A Promtail-like push: one stream, n entries, a little structured metadata, snappy protobuf."""
    request = loki._push_request_class()()
    stream = request.streams.add(labels=b'{app="checkout", env="prod", host="ip-10-0-3-17", job="orders"}')
    for i in range(n):
        entry = stream.entries.add(line=log_line(i).encode())
        entry.timestamp.seconds, entry.timestamp.nanos = 1_764_000_000 + i, 123_456_789
        if i % 4 == 0:
            entry.structuredMetadata.add(name=b"trace_id", value=f"{i + 1:032x}".encode())
    return bytes(cramjam.snappy.compress_raw(request.SerializeToString()))


def segment_body(n: int = RECORDS) -> bytes:
    """What analytics-python posts to /v1/batch: n messages (track/identify/page/alias), context."""
    kinds = ("track", "identify", "page", "alias")
    batch = []
    for i in range(n):
        message: dict[str, Any] = {
            "type": kinds[i % 4],
            "userId": f"user-{i % 17}",
            "messageId": f"3f1c9a2e-5b7d-4e8f-9a0b-{i:012d}",
            "timestamp": "2026-12-01T10:20:30.123456+00:00",
            "context": {"library": {"name": "analytics-python", "version": "2.4.0"}},
            "integrations": {},
        }
        if i % 4 == 0:
            message.update(
                event="Order Completed", properties={"order": i, "total": 42.5, "note": log_line(i)}
            )
        elif i % 4 == 1:
            message["traits"] = {"plan": "pro", "seq": i}
        elif i % 4 == 2:
            message.update(name="Home", properties={"url": f"https://example.com/{i}"})
        else:
            message["previousId"] = f"anon-{i}"
        batch.append(message)
    return orjson.dumps(
        {"batch": batch, "sentAt": "2026-12-01T10:20:31+00:00", "writeKey": "slk_" + "k" * 43}
    )


def posthog_body(n: int = RECORDS) -> bytes:
    """What posthog-python posts to /batch/: n events with uuid, distinct_id and properties."""
    batch = [
        {
            "event": "Order Completed" if i % 2 else "$pageview",
            "distinct_id": f"user-{i % 17}",
            "uuid": f"0190f3a2-5c1e-7b3a-9f1e-{i:012d}",
            "timestamp": "2026-12-01T10:20:30.123456+00:00",
            "properties": {
                "$lib": "posthog-python",
                "$lib_version": "7.91.1",
                "order": i,
                "note": log_line(i),
            },
            "type": "capture",
            "library": "posthog-python",
        }
        for i in range(n)
    ]
    return orjson.dumps(
        {"api_key": "slk_" + "k" * 43, "batch": batch, "sent_at": "2026-12-01T10:20:31+00:00"}
    )


def _dump_bodies(decoded: Any) -> Any:
    dumps = orjson.dumps
    return [dumps(record.body) for record in decoded.records]


def cases() -> list[Case]:
    request = otlp_request()
    proto = request.SerializeToString()
    as_json = otlp_json_body(request)
    push = loki_body()
    dumps, loads = orjson.dumps, orjson.loads
    push_class = loki._push_request_class()
    segment_batch = segment_body()
    posthog_batch = posthog_body()

    def batch_floor(body: bytes) -> Callable[[], Any]:
        return lambda: [dumps(message) for message in loads(body)["batch"]]

    def proto_floor() -> Any:
        parsed = ExportLogsServiceRequest.FromString(proto)
        return [
            dumps(record.body.string_value)
            for resource_logs in parsed.resource_logs
            for scope_logs in resource_logs.scope_logs
            for record in scope_logs.log_records
        ]

    def json_floor() -> Any:
        document = loads(as_json)
        return [
            dumps(record)
            for resource_logs in document["resourceLogs"]
            for scope_logs in resource_logs["scopeLogs"]
            for record in scope_logs["logRecords"]
        ]

    def loki_floor() -> Any:
        parsed = push_class.FromString(bytes(cramjam.snappy.decompress_raw(push)))
        return [dumps(entry.line.decode()) for stream in parsed.streams for entry in stream.entries]

    return [
        Case(
            "OTLP protobuf, 100 log records",
            lambda: _dump_bodies(otlp.decode(proto, otlp.PROTOBUF)),
            proto_floor,
            len(proto),
        ),
        Case(
            "OTLP JSON, 100 log records",
            lambda: _dump_bodies(otlp.decode(as_json, otlp.JSON)),
            json_floor,
            len(as_json),
        ),
        Case(
            "Loki snappy protobuf, 100 entries",
            lambda: _dump_bodies(loki.decode(push, loki.PROTOBUF)),
            loki_floor,
            len(push),
        ),
        Case(
            "Segment batch, 100 messages",
            lambda: _dump_bodies(segment.decode(segment_batch)),
            batch_floor(segment_batch),
            len(segment_batch),
        ),
        Case(
            "PostHog batch, 100 events",
            lambda: _dump_bodies(posthog.decode(posthog_batch, "application/json").decoded),
            batch_floor(posthog_batch),
            len(posthog_batch),
        ),
    ]


def run(rounds: int = 9, budget_s: float = 0.15) -> list[dict[str, Any]]:
    """Per case: median µs/record of the adapter and of its floor, and the median per-round ratio."""
    results = []
    for case in cases():
        samples: dict[str, list[float]] = {"adapter": [], "floor": []}
        for _ in range(rounds):
            samples["adapter"].append(_time_per_record(case.adapter, RECORDS, budget_s))
            samples["floor"].append(_time_per_record(case.floor, RECORDS, budget_s))
        results.append(
            {
                "case": case.name,
                "records": RECORDS,
                "body_bytes": case.body_bytes,
                "us_per_record": {k: statistics.median(v) for k, v in samples.items()},
                "ratio_to_floor": statistics.median(
                    a / f for a, f in zip(samples["adapter"], samples["floor"], strict=True)
                ),
                "rounds": rounds,
            }
        )
    return results


if __name__ == "__main__":
    print(f"{'case':36} {'bytes':>7} {'adapter µs/rec':>15} {'floor µs/rec':>13} {'ratio':>6}")
    for row in run():
        us = row["us_per_record"]
        print(
            f"{row['case']:36} {row['body_bytes']:>7} {us['adapter']:>15.2f} {us['floor']:>13.2f} "
            f"{row['ratio_to_floor']:>6.2f}"
        )
