"""From a validated envelope to the DynamoDB item the worker stores (docs/architecture.md §5), as plain data.

The item keeps the envelope's shape: ``tenant_id`` (partition key), ``event_id`` (sort key), ``kind``,
``received_at``, ``type``, ``client``, ``source``, then the redacted body (``payload`` for an event;
``text``, ``level``, ``attributes`` for a log), ``expires_at`` (TTL) and ``stored_at``. The partition key
holds the tenant id, or ``<tenant>#<k>`` for a tenant spread over N > 1 partition key values
(``core/partitions.py``); ``stored_record`` gives the tenant id back either way.

DynamoDB cannot hold every JSON document as a native map, so the body is stored in the first form that
fits, and ``storage`` says which:

- ``native``: a map with numbers as ``Decimal`` (boto3 refuses floats);
- ``json``: the body as one JSON string (``payload_json``, or ``attributes_json`` for a log) when it is
  nested deeper than DynamoDB's 32 levels, holds a number DynamoDB cannot represent (more than 38
  significant digits, outside 1e-130..1e126), or an empty map key;
- ``gzip``: ``body_gz``, the gzipped JSON of the whole body, when the item would exceed 400 KB
  (a native map of small numbers takes ~2.5x its JSON size), or when it takes fewer write units
  (``compact``); a body that does not fit even then is a permanent ``item_too_large`` failure.

``stored_record`` reads every form back, for whoever looks at what was stored (the CLI, the tests).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Context, Decimal, Inexact, Rounded
from typing import Any, TypeVar

import orjson

from core.envelope import Envelope, InvalidEnvelope, parse_received_at, redact_envelope, validate
from core.errors import PermanentError
from core.partitions import InvalidPartitions, owns_key, parse_partitions, partition_key, tenant_of_key
from core.redaction import Counts, Redactor, json_text

Key = tuple[str, str]  # (partition key: the tenant id or <tenant>#<k>, event_id)
E = TypeVar("E")

MAX_ITEM_BYTES = 400 * 1024
# Our size estimate follows the published rules but rounds numbers loosely: keep a margin under the limit.
ITEM_BYTES_BUDGET = MAX_ITEM_BYTES - 8 * 1024
# DynamoDB nests documents at most 32 levels; the body map sits one level below the item.
MAX_NATIVE_DEPTH = 31
BATCH_WRITE_MAX_ITEMS = 25  # BatchWriteItem limit
_HEAD_FIELDS = ("type", "client", "source")  # the redacted fields kept beside the body

_DYNAMO_NUMBER = Context(prec=38, Emin=-128, Emax=126, traps=[Inexact, Rounded])


class NotNative(ValueError):
    """A value DynamoDB cannot store as a native attribute (depth, number range, empty key)."""


@dataclass(frozen=True)
class PreparedItem:
    """One record ready to write: its key, the item (plain Python, Decimal numbers) and redaction counts."""

    key: Key
    item: dict[str, Any]
    storage: str
    redactions: Counts


@dataclass(frozen=True)
class WriteUnit:
    """One put request and every record id whose outcome is the outcome of that put."""

    key: Key
    item: dict[str, Any]
    record_ids: tuple[str, ...]


def to_dynamo(value: Any, depth: int = 0) -> tuple[Any, int]:
    """The value with numbers as Decimal, and its DynamoDB size estimate in bytes; ``NotNative`` otherwise.

    Sizes follow the DynamoDB item size rules: strings and binary by length, numbers ~1 byte per two
    significant digits plus one, 1 byte for null and booleans, 3 bytes per map or list plus 1 per element.
    """
    kind = type(value)
    if kind is str:
        return value, len(value) if value.isascii() else len(value.encode("utf-8", "surrogatepass"))
    if kind is dict:
        if depth >= MAX_NATIVE_DEPTH:
            raise NotNative("nested deeper than DynamoDB's 32 levels")
        out: dict[str, Any] = {}
        size = 3
        for key, item in value.items():
            if not key:
                raise NotNative("empty map key")
            out[key], item_size = to_dynamo(item, depth + 1)
            size += 1 + len(key.encode("utf-8", "surrogatepass")) + item_size
        return out, size
    if kind is list:
        if depth >= MAX_NATIVE_DEPTH:
            raise NotNative("nested deeper than DynamoDB's 32 levels")
        items = []
        size = 3
        for item in value:
            converted, item_size = to_dynamo(item, depth + 1)
            items.append(converted)
            size += 1 + item_size
        return items, size
    if value is None or kind is bool:
        return value, 1
    if kind is int or kind is float:
        try:
            number = _DYNAMO_NUMBER.create_decimal(repr(value) if kind is float else value)
        except (Inexact, Rounded):
            raise NotNative("number outside DynamoDB's 38-digit range") from None
        if number and not (-130 <= number.adjusted() <= 125):
            raise NotNative("number outside DynamoDB's exponent range")
        return number, 1 + (len(number.as_tuple().digits) + 1) // 2
    raise NotNative(f"unsupported type {kind.__name__}")


def _expires_at(received_at: str, retention_days: int) -> int | None:
    if retention_days <= 0:
        return None
    return int(parse_received_at(received_at).timestamp()) + retention_days * 86_400


def build_item(
    env: Envelope,
    redactor: Redactor,
    *,
    retention_days: int,
    stored_at: str,
    body: str | None = None,
    compact: bool = False,
    partitions: int = 1,
) -> PreparedItem:
    """The DynamoDB item for a validated envelope: redacted, typed for DynamoDB, under the size limit.

    ``partitions``: the tenant's N, as ingest stamped it on the message; the item's partition key is
    ``core.partitions.partition_key`` of the envelope's own tenant, never anything else.

    ``compact``: store the body gzipped when that takes fewer write request units (a WRU is 1 KB of
    item); a typical 1 KB event becomes a ~1.3 KB item natively (2 WRU) and ~0.8 KB gzipped (1 WRU),
    which halves the largest line of the cost per event. Items that already fit one WRU stay native, and
    so do items whose head alone would keep the gzipped form at the native form's units: the decision is
    made from the sizes before anything is compressed.

    Raises ``PermanentError("item_too_large")`` when even the gzipped body does not fit.
    """
    red, counts = redact_envelope(env, redactor, body)
    key_value = partition_key(env["tenant_id"], env["event_id"], partitions)
    if not owns_key(env["tenant_id"], key_value):  # unreachable with a valid envelope: a last guard
        raise PermanentError("invalid_partition_key", "the item's key is outside its tenant's key space")
    head: dict[str, Any] = {
        "tenant_id": key_value,
        "event_id": red["event_id"],
        "v": red["v"],
        "kind": red["kind"],
        "received_at": red["received_at"],
        "stored_at": stored_at,
    }
    for field in _HEAD_FIELDS:
        if red.get(field) is not None:
            head[field] = red[field]
    expires_at = _expires_at(red["received_at"], retention_days)
    if expires_at is not None:
        head["expires_at"] = expires_at
    head, head_size = to_dynamo(head)

    if red["kind"] == "event":
        body_fields = {"payload": red["payload"]}
        json_field, json_source = "payload_json", "payload"
    else:
        body_fields = {k: red[k] for k in ("text", "level", "attributes") if red.get(k) is not None}
        json_field, json_source = "attributes_json", "attributes"

    key = (key_value, red["event_id"])
    try:
        native, size = to_dynamo(body_fields)
        if head_size + size <= ITEM_BYTES_BUDGET:
            native_units = write_units(head_size + size + NATIVE_MARKER_BYTES)
            # Compress only when it can save a unit: even the shortest gzip stream leaves the head.
            if compact and native_units > write_units(head_size + GZIP_MIN_BYTES + GZIP_MARKER_BYTES):
                gz = _gzipped_item(key, head, head_size, body_fields, counts)
                if write_units(gz[1]) < native_units:
                    return gz[0]
            return PreparedItem(key, {**head, **native, "storage": "native"}, "native", counts)
    except NotNative:
        pass
    if json_source in body_fields:
        as_json = {k: v for k, v in body_fields.items() if k != json_source}
        as_json[json_field] = json_text(body_fields[json_source])
        try:
            native, size = to_dynamo(as_json)
            if head_size + size <= ITEM_BYTES_BUDGET:
                return PreparedItem(key, {**head, **native, "storage": "json"}, "json", counts)
        except NotNative:
            pass
    gz = _gzipped_item(key, head, head_size, body_fields, counts)
    if gz[1] <= ITEM_BYTES_BUDGET:
        return gz[0]
    raise PermanentError("item_too_large", f"item is over {MAX_ITEM_BYTES} bytes even gzipped")


WRU_BYTES = 1024  # DynamoDB bills one write request unit per started KB of item
NATIVE_MARKER_BYTES = len("storage") + len("native")
GZIP_MARKER_BYTES = len("body_gz") + len("storage") + len("gzip")
GZIP_MIN_BYTES = 20  # gzip's 10-byte header and 8-byte trailer around the shortest deflate stream


def write_units(item_bytes: int) -> int:
    return max(1, -(-item_bytes // WRU_BYTES))


def _gzipped_item(
    key: Key, head: dict[str, Any], head_size: int, body_fields: dict[str, Any], counts: Counts
) -> tuple[PreparedItem, int]:
    """The item with its body as gzipped JSON, and the item's size."""
    compressed = gzip.compress(json_text(body_fields).encode(), compresslevel=6, mtime=0)
    size = head_size + len(compressed) + GZIP_MARKER_BYTES
    return PreparedItem(key, {**head, "body_gz": compressed, "storage": "gzip"}, "gzip", counts), size


BODY_STORAGE_FIELDS = ("payload_json", "attributes_json", "body_gz")


def stored_record(item: Mapping[str, Any]) -> dict[str, Any]:
    """A stored item back as a plain record, whichever form its body was stored in.

    ``payload_json`` / ``attributes_json`` (``storage=json``) become ``payload`` / ``attributes`` again,
    ``body_gz`` (``storage=gzip``) is unpacked into the body fields, and numbers are ``int`` or
    ``float`` rather than ``Decimal``. ``storage``, ``stored_at`` and ``expires_at`` stay. ``tenant_id`` is
    the tenant's, also for an item stored under one of its partitions (``acme#3`` -> ``acme``).

    ``item`` holds plain values, as boto3's ``TypeDeserializer`` gives them (``body_gz`` as bytes or
    boto3's ``Binary``); ``consumers.worker.store.deserialize_item`` turns an item of the DynamoDB API
    (attribute values) into that form.
    """
    out = {k: _from_dynamo(v) for k, v in item.items() if k not in BODY_STORAGE_FIELDS}
    if isinstance(out.get("tenant_id"), str):
        out["tenant_id"] = tenant_of_key(out["tenant_id"])
    # The standard library, not orjson: json_text falls back to it for integers beyond 64 bits.
    if "payload_json" in item:
        out["payload"] = json.loads(item["payload_json"])
    if "attributes_json" in item:
        out["attributes"] = json.loads(item["attributes_json"])
    packed = item.get("body_gz")
    if packed is not None:
        out.update(json.loads(gzip.decompress(getattr(packed, "value", packed))))
    return out


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dynamo(v) for v in value]
    return value


def plan_writes(entries: Iterable[tuple[str, PreparedItem]]) -> list[WriteUnit]:
    """One put per key, in first-seen order: BatchWriteItem rejects a request naming a key twice.

    ``entries`` are (record id, prepared item). Records sharing a key (a redelivered or re-sent record)
    are the same record by construction (the id is derived from the client's identity), so the last
    one's item is written and all of them share its outcome.
    """
    units: dict[Key, tuple[dict[str, Any], list[str]]] = {}
    for record_id, prepared in entries:
        if prepared.key in units:
            ids = units[prepared.key][1]
            ids.append(record_id)
            units[prepared.key] = (prepared.item, ids)
        else:
            units[prepared.key] = (prepared.item, [record_id])
    return [WriteUnit(key, item, tuple(ids)) for key, (item, ids) in units.items()]


def item_key(item: dict[str, Any]) -> Key:
    """The primary key of an item in either form (plain values or DynamoDB attribute values)."""
    tenant, event = item["tenant_id"], item["event_id"]
    if isinstance(tenant, dict):
        return tenant["S"], event["S"]
    return tenant, event


def unprocessed_item_keys(response: dict[str, Any], table: str) -> list[Key]:
    """The keys of the put requests a BatchWriteItem response hands back as ``UnprocessedItems``."""
    return [item_key(r["PutRequest"]["Item"]) for r in response.get("UnprocessedItems", {}).get(table, ())]


def failures_by_record_id(units: Sequence[WriteUnit], failures: Mapping[Key, E]) -> dict[str, E]:
    """Record id -> why its write failed, for every record whose unit's key is in ``failures``."""
    return {rid: failures[unit.key] for unit in units if unit.key in failures for rid in unit.record_ids}


def prepare_record(
    body: str,
    redactor: Redactor,
    *,
    retention_days: int,
    stored_at: str,
    compact: bool = False,
    partitions: object = None,
) -> PreparedItem:
    """Parse, validate, redact and shape one message body; ``PermanentError`` when it cannot be stored.

    ``partitions``: the message's ``partitions`` attribute as sent (None: absent, N = 1).

    Codes: ``not_json``, ``invalid_envelope`` (schema), ``invalid_partitions`` (an attribute that is not
    1..``MAX_PARTITIONS``), ``item_too_large``. The error message never holds the body, so it is safe to log.
    """
    try:
        n = 1 if partitions is None else parse_partitions(partitions)
    except InvalidPartitions as exc:
        raise PermanentError("invalid_partitions", str(exc)) from None
    try:
        env = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise PermanentError("not_json", f"not JSON: {exc}") from None
    try:
        validate(env)
    except InvalidEnvelope as exc:
        raise PermanentError("invalid_envelope", str(exc)[:300]) from None
    return build_item(
        env,
        redactor,
        retention_days=retention_days,
        stored_at=stored_at,
        body=body,
        compact=compact,
        partitions=n,
    )
