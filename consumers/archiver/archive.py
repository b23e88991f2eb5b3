"""The archive layout and the batch-write plan of the archiver, as plain functions over a writer port.

Layout: ``tenant=<id>/dt=<yyyy-mm-dd>/hour=<hh>/<shard id>-<first sequence number>.ndjson.gz``, one
gzip NDJSON object per (tenant, day, hour) group of a batch, from ``received_at``. Lines are redacted
envelopes. gzip is written with ``mtime=0`` so the same lines give the same bytes.

Why the key names only the FIRST sequence number of the group: every object then holds "the group's
records from that record to the end of the batch that wrote it", and a redelivery lands on the same
keys even when Lambda's batch boundaries move:

- the same batch again (a timeout, a function error): same groups, same first records, same keys;
  the objects are overwritten with the same bytes;
- a batch that grew (more records arrived): same first records, supersets overwrite;
- a redelivery from a checkpoint F inside a group (after a partial failure, or a bisected retry): the
  records >= F form new groups with new first records. Before reporting the failure, the archiver
  rewrites each group that started before F to hold only its records before F, so the redelivered ones
  are in exactly one object. If that rewrite fails too, the checkpoint moves back to that group's first
  record, whose redelivery overwrites it whole.

So each record ends up in exactly one object (if S3 keeps failing past Lambda's retry limit, the
records are lost with the batch, as for any Kinesis consumer without an on-failure destination).
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import orjson

from consumers.processing import HeldBack
from core.envelope import Envelope, redact_envelope
from core.redaction import Counts, Redactor

GroupKey = tuple[str, str, str]  # tenant_id, dt (yyyy-mm-dd), hour (hh)


class ArchiveWriter(Protocol):
    def put(self, key: str, body: bytes) -> None: ...


@dataclass(frozen=True)
class ArchiveLine:
    """One record's line in the archive, with its batch position and sequence number."""

    index: int
    sequence_number: str
    group: GroupKey
    line: bytes


@dataclass(frozen=True)
class PreparedLine:
    """The record handler's result for one record: its archive line, where it goes, what was redacted."""

    sequence_number: str
    event_id: str
    group: GroupKey
    line: bytes
    redactions: Counts

    @property
    def tenant_id(self) -> str:
        return self.group[0]

    def at(self, index: int) -> ArchiveLine:
        """The line at its position in the batch."""
        return ArchiveLine(index, self.sequence_number, self.group, self.line)


def group_of(env: Envelope) -> GroupKey:
    received = env["received_at"]  # 2026-11-22T10:15:30.123456Z (the schema fixes the shape)
    return env["tenant_id"], received[:10], received[11:13]


def archive_line(env: Envelope, redactor: Redactor, body: str | None = None) -> tuple[bytes, Counts]:
    """The redacted envelope as one NDJSON line: storage never holds an unredacted secret."""
    red, counts = redact_envelope(env, redactor, body)
    return orjson.dumps(red) + b"\n", counts


def object_key(group: GroupKey, shard_id: str, first_sequence_number: str) -> str:
    tenant, dt, hour = group
    return f"tenant={tenant}/dt={dt}/hour={hour}/{shard_id}-{first_sequence_number}.ndjson.gz"


def gzip_ndjson(lines: Sequence[ArchiveLine]) -> bytes:
    return gzip.compress(b"".join(line.line for line in lines), compresslevel=6, mtime=0)


def archive_batch(
    lines: Sequence[ArchiveLine], shard_id: str, writer: ArchiveWriter
) -> dict[int, BaseException]:
    """Write one object per group; the batch positions to report when a write failed (see module doc).

    ``lines`` are in sequence order. Groups are written in the order of their first record and the
    first failure stops the writing: every later group starts after the checkpoint and is redelivered.
    """
    groups: dict[GroupKey, list[ArchiveLine]] = {}
    for line in lines:
        groups.setdefault(line.group, []).append(line)
    written: list[list[ArchiveLine]] = []
    cut: int | None = None
    cause: BaseException | None = None
    for members in groups.values():  # insertion order = order of first records
        try:
            writer.put(
                object_key(members[0].group, shard_id, members[0].sequence_number), gzip_ndjson(members)
            )
        except Exception as exc:
            cut, cause = members[0].index, exc
            break
        written.append(members)
    if cut is None:
        return {}
    changed = True
    while changed:  # the cut only moves back, one group at a time: this ends
        changed = False
        for n, members in enumerate(written):
            if members[0].index < cut <= members[-1].index:
                kept = [m for m in members if m.index < cut]
                try:
                    writer.put(
                        object_key(kept[0].group, shard_id, kept[0].sequence_number), gzip_ndjson(kept)
                    )
                except Exception as exc:
                    cut, cause, changed = members[0].index, exc, True
                    break
                written[n] = kept
    assert cause is not None
    return {
        line.index: cause if line.index == cut else HeldBack(f"after the failed record {cut}")
        for line in lines
        if line.index >= cut
    }
