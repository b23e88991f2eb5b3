"""moto's ``Queue.attributes`` computes every attribute to read one; compute only the ones read.

Upstream cost (moto 5.2.5, ``moto/sqs/models.py`` ``Queue.attributes``): the property builds the whole
attribute dict, three entries of which (``ApproximateNumberOfMessages``, ``...NotVisible``,
``...Delayed``) scan every message, and moto reads it on every SendMessage (for
``ContentBasedDeduplication``). Each send into a deep queue so cost O(queue depth) several times
over. The patched property is a lazy mapping with the same keys and values (booleans as "true"/
"false", a set ``RedrivePolicy`` as JSON), each computed when read.

Regression test: ``tests/tooling/test_moto_patches.py::test_sqs_lazy_attributes_*``; that the
values read as moto's own: ``tests/tooling/test_emulator.py``.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator, Mapping
from typing import Any

from moto.core.utils import camelcase_to_underscores

from local.patches import has, require, require_version

PATCH, PACKAGE, CHECKED, PATCHED = "sqs_lazy_attributes", "moto", "5.2.5", "moto.sqs.models.Queue.attributes"


class LazyAttributes(Mapping[str, Any]):
    """``Queue.attributes`` with the same keys and values, each computed only when read."""

    def __init__(self, queue: Any) -> None:
        self._queue = queue
        names = list(queue.BASE_ATTRIBUTES)
        if queue.fifo_queue:
            names += queue.FIFO_ATTRIBUTES
        if queue.kms_master_key_id:
            names += queue.KMS_ATTRIBUTES
        # moto lists Policy and RedrivePolicy among the base attributes and sets them again when present
        self._names = list(dict.fromkeys(names))

    def __getitem__(self, name: str) -> Any:
        if name not in self._names:
            raise KeyError(name)
        q = self._queue
        if name == "RedrivePolicy" and q.redrive_policy:
            value = json.dumps(q.redrive_policy)
        else:
            value = getattr(q, camelcase_to_underscores(name))
        return str(value).lower() if isinstance(value, bool) else value

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def apply() -> None:
    """Install the patch (idempotent); ``PatchMismatch`` when moto is not the version checked."""
    require_version(PATCH, PACKAGE, CHECKED, PATCHED)
    from moto.sqs import models

    queue: Any = getattr(models, "Queue", None)
    require(PATCH, PACKAGE, PATCHED, has(queue, "BASE_ATTRIBUTES", "FIFO_ATTRIBUTES", "KMS_ATTRIBUTES"),
            "Queue no longer lists its attributes in BASE/FIFO/KMS_ATTRIBUTES")  # fmt: skip
    current: Any = inspect.getattr_static(queue, "attributes", None)
    if isinstance(current, property) and current.fget is LazyAttributes:
        return
    shipped: Any = current.fget if isinstance(current, property) else None
    require(PATCH, PACKAGE, PATCHED, shipped is not None and all(
        name in inspect.getsource(shipped) for name in ("BASE_ATTRIBUTES", "FIFO_ATTRIBUTES", "KMS_ATTRIBUTES",
                                                        "Policy", "RedrivePolicy")),
        "Queue.attributes is no longer the property building BASE/FIFO/KMS, Policy and RedrivePolicy")  # fmt: skip
    queue.attributes = property(LazyAttributes)
