"""moto's Kinesis copies every key of a shard to find its last sequence number; read the end of the dict.

Upstream cost (moto 5.2.5, ``moto/kinesis/models.py``): ``Shard.get_max_sequence_number`` returns
``list(self.records.keys())[-1]`` and ``get_min_sequence_number`` ``list(...)[0]``. ``put_record`` asks
for the maximum once per record, so every record put into a shard copies all the keys already in it:
a 20,000-record burst does about 200 million key copies, and each ``PutRecords`` gets slower as the
stream fills. ``records`` is an ``OrderedDict`` in insertion (= sequence) order, so the ends are
``next(reversed(records))`` and ``next(iter(records))``: the same numbers, O(1).

Regression test: ``tests/tooling/test_moto_patches.py::test_kinesis_sequence_ends_*``.
"""

from __future__ import annotations

import inspect
from typing import Any

from local.patches import require, require_version

PATCH, PACKAGE, CHECKED = "kinesis_sequence_ends", "moto", "5.2.5"
PATCHED = "moto.kinesis.models.Shard.get_max_sequence_number and get_min_sequence_number"


def apply() -> None:
    """Install the patch (idempotent); ``PatchMismatch`` when moto is not the version checked."""
    require_version(PATCH, PACKAGE, CHECKED, PATCHED)
    from moto.kinesis import models

    shard: Any = getattr(models, "Shard", None)
    original: Any = getattr(shard, "get_max_sequence_number", None)
    if getattr(original, "_sluice_patch", None) == PATCH:
        return
    require(PATCH, PACKAGE, PATCHED,
            original is not None and "list(self.records.keys())[-1]" in inspect.getsource(original)
            and "list(self.records.keys())[0]" in inspect.getsource(shard.get_min_sequence_number)
            and "self.records: dict[int, Record] = OrderedDict()" in inspect.getsource(shard.__init__),
            "Shard no longer keeps its records in an OrderedDict read through list(keys())")  # fmt: skip

    def get_max_sequence_number(self: Any) -> int:
        return next(reversed(self.records)) if self.records else 0

    def get_min_sequence_number(self: Any) -> int:
        return next(iter(self.records)) if self.records else 0

    for method in (get_max_sequence_number, get_min_sequence_number):
        method._sluice_patch = PATCH  # type: ignore[attr-defined]
        setattr(shard, method.__name__, method)
