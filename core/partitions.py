"""A tenant's storage keys: one partition key value, or N of them for a tenant that outgrows one.

DynamoDB serves about 1,000 write units per second per partition key value, so a tenant whose items all
share one key is capped there. A tenant with ``partitions`` N > 1 spreads its items over ``tenant#0`` ..
``tenant#(N-1)``; with N = 1 the key is the tenant id itself, exactly as before partitions existed.

- **Which key an item takes** (``partition_key``): ``k`` is the first 8 bytes of SHA-256 of the event id
  (UTF-8), read as a big-endian unsigned integer, modulo N. It depends only on the event id and N, so
  anyone can compute it, and a message delivered again with the same N lands on the same key.
- **Which keys a reader queries** (``read_keys``): ``tenant`` and ``tenant#k`` for every k < N, N the
  tenant's current setting. N is only ever raised (``keys partitions set`` refuses to lower it), and an
  item written under N' <= N is under ``tenant`` or ``tenant#k`` with k < N' <= N: raising N hides
  nothing written before.
- **The same record under two keys**: a client that sends a record again after its tenant's N changed
  gets the same event id under another key. Readers merge by event id (``merge_by_sort_key``) and keep
  one; the two items hold the same record.

Tenant ids never contain ``#`` (``core/tenancy.py``), so ``tenant#k`` can belong to no other tenant, and
the ``dynamodb:LeadingKeys`` pattern ``<tenant>#*`` matches this tenant's keys only (docs/architecture.md §5).
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final, TypeVar

from core.tenancy import is_valid_tenant_id

SEPARATOR: Final = "#"
# A reader queries N + 1 keys, and a lookup by event id asks BatchGetItem (100 keys) for at most N + 1.
MAX_PARTITIONS: Final = 64
# The SQS message attribute with which ingest tells the worker the tenant's N (absent: 1).
MESSAGE_ATTRIBUTE: Final = "partitions"

Item = TypeVar("Item", bound=Mapping[str, Any])


class InvalidPartitions(ValueError):
    """A partitions value that is not an integer from 1 to ``MAX_PARTITIONS``."""


def parse_partitions(value: object) -> int:
    """``value`` (an int, or its decimal text) as a partition count; ``InvalidPartitions`` otherwise."""
    if isinstance(value, bool):
        raise InvalidPartitions(f"partitions must be an integer, got {value!r}")
    if isinstance(value, str):
        if not value.isascii() or not value.strip().isdigit():
            raise InvalidPartitions(f"partitions must be an integer, got {value[:20]!r}")
        value = int(value.strip())
    if not isinstance(value, int):
        raise InvalidPartitions(f"partitions must be an integer, got {type(value).__name__}")
    if not 1 <= value <= MAX_PARTITIONS:
        raise InvalidPartitions(f"partitions must be from 1 to {MAX_PARTITIONS}, got {value}")
    return value


def effective_partitions(override: object, default: int) -> int:
    """A tenant's N: the larger of its override (None: none) and the default (``TENANT_PARTITIONS``).

    The larger, not the override alone: a default raised above a tenant's override would otherwise let
    readers query fewer keys than writers used."""
    n = parse_partitions(default)
    return n if override is None else max(n, parse_partitions(override))


def partition_index(event_id: str, partitions: int) -> int:
    """``k`` of an event id among ``partitions`` keys: SHA-256's first 8 bytes, big-endian, mod N."""
    digest = hashlib.sha256(event_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % partitions


def partition_key(tenant_id: str, event_id: str, partitions: int = 1) -> str:
    """The partition key value an item of ``tenant_id`` takes: the tenant id when N is 1, else ``tenant#k``."""
    if partitions == 1:
        return tenant_id
    return f"{tenant_id}{SEPARATOR}{partition_index(event_id, parse_partitions(partitions))}"


def read_keys(tenant_id: str, partitions: int = 1) -> list[str]:
    """Every partition key value a reader of a tenant with N ``partitions`` queries, the tenant id first."""
    n = parse_partitions(partitions)
    return [tenant_id] + ([f"{tenant_id}{SEPARATOR}{k}" for k in range(n)] if n > 1 else [])


def lookup_keys(tenant_id: str, event_id: str, partitions: int = 1) -> list[str]:
    """The keys one event id can be stored under, N ``partitions`` now: under every N' <= N it had."""
    n = parse_partitions(partitions)
    return list(dict.fromkeys(partition_key(tenant_id, event_id, m) for m in range(1, n + 1)))


def tenant_of_key(key: str) -> str:
    """The tenant a partition key value belongs to (``acme#3`` -> ``acme``)."""
    return key.split(SEPARATOR, 1)[0]


def owns_key(tenant_id: str, key: str) -> bool:
    """True when ``key`` is ``tenant_id`` or ``tenant_id#<digits>`` and ``tenant_id`` is a valid tenant id."""
    if not is_valid_tenant_id(tenant_id):
        return False
    if key == tenant_id:
        return True
    prefix = tenant_id + SEPARATOR
    suffix = key[len(prefix) :]
    return key.startswith(prefix) and suffix.isascii() and suffix.isdigit() and int(suffix) < MAX_PARTITIONS


def merge_by_sort_key(
    sources: Iterable[Iterable[Item]], *, newest_first: bool = True, sort_key: str = "event_id"
) -> Iterator[Item]:
    """Items of several keys' queries, each already in sort-key order, as one sequence in that order.

    Items may hold plain values or DynamoDB attribute values (``{"S": ...}``). Lazy (a source is read only
    as far as the merge needs), and an event id met twice (the same record under two keys, see the module
    docstring) is yielded once.
    """

    def value(item: Mapping[str, Any]) -> str:
        v = item[sort_key]
        return str(v["S"] if isinstance(v, Mapping) else v)

    last: str | None = None
    for item in heapq.merge(*sources, key=value, reverse=newest_first):
        if value(item) != last:
            last = value(item)
            yield item
