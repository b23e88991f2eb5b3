"""moto's Kinesis ``Shard.put_record`` can give two concurrent puts one sequence number; serialize puts.

Upstream bug (moto 5.2.5, ``moto/kinesis/models.py``, whose own comment says "this function is not safe
for concurrency"): ``put_record`` reads the shard's highest sequence number, adds one and stores the
record under it. moto's server answers requests on several threads, so two ``PutRecords`` calls on one
shard can read the same highest number, and the later store replaces the earlier record: a record the
caller was told is on the stream is gone. Seen in the end-to-end fault test (an accepted record missing
from the stream while the ingest function publishes batches concurrently). Puts now hold a lock per
shard, so each reads the number the previous one wrote.

Regression test: ``tests/tooling/test_moto_patches.py::test_kinesis_put_lock_*``.
"""

from __future__ import annotations

import inspect
import threading
from typing import Any

from local.patches import require, require_version

PATCH, PACKAGE, CHECKED, PATCHED = "kinesis_put_lock", "moto", "5.2.5", "moto.kinesis.models.Shard.put_record"

# One lock for every shard: puts are microseconds of dictionary work, and a module-level lock needs no
# change to moto's Shard objects (which moto also deep-copies and pickles in places).
_LOCK = threading.Lock()


def apply() -> None:
    """Install the patch (idempotent); ``PatchMismatch`` when moto is not the version checked."""
    require_version(PATCH, PACKAGE, CHECKED, PATCHED)
    from moto.kinesis import models

    shard: Any = getattr(models, "Shard", None)
    original: Any = getattr(shard, "put_record", None)
    if getattr(original, "_sluice_patch", None) == PATCH:
        return
    require(PATCH, PACKAGE, PATCHED, original is not None and "get_max_sequence_number" in inspect.getsource(
        original), "Shard.put_record no longer derives the sequence number from get_max_sequence_number")  # fmt: skip

    def put_record(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return original(self, *args, **kwargs)

    put_record._sluice_patch = PATCH  # type: ignore[attr-defined]
    shard.put_record = put_record
