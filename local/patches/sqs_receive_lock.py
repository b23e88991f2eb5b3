"""moto's concurrent receives on one queue change its pending set while iterating it; serialize them.

Upstream bug (moto 5.2.5, ``moto/sqs/models.py`` ``SQSBackend.receive_message``): two receives on the
same queue iterate and change the same ``_pending_messages`` set without a lock, and one fails with
"Set changed size during iteration" (seen under load in local mode). Receives now hold the queue's
``_messages_lock``. That is safe across a long poll: the poll waits on that same ``Condition``, whose
``wait`` releases the lock entirely while it waits.

Regression test: ``tests/tooling/test_moto_patches.py::test_sqs_receive_lock_*``.
"""

from __future__ import annotations

import inspect
from typing import Any

from local.patches import require, require_version

PATCH, PACKAGE, CHECKED, PATCHED = (
    "sqs_receive_lock",
    "moto",
    "5.2.5",
    "moto.sqs.models.SQSBackend.receive_message",
)


def apply() -> None:
    """Install the patch (idempotent); ``PatchMismatch`` when moto is not the version checked."""
    require_version(PATCH, PACKAGE, CHECKED, PATCHED)
    from moto.sqs import models

    backend: Any = getattr(models, "SQSBackend", None)
    original: Any = getattr(backend, "receive_message", None)
    if getattr(original, "_sluice_patch", None) == PATCH:
        return
    queue: Any = getattr(models, "Queue", None)
    require(PATCH, PACKAGE, PATCHED, original is not None and queue is not None
            and "self._messages_lock.wait_for" in inspect.getsource(queue.wait_for_messages),
            "the long poll no longer waits on Queue._messages_lock (holding it would then block sends)")  # fmt: skip

    def receive_message(self: Any, queue_name: str, *args: Any, **kwargs: Any) -> Any:
        with self.get_queue(queue_name)._messages_lock:
            return original(self, queue_name, *args, **kwargs)

    receive_message._sluice_patch = PATCH  # type: ignore[attr-defined]
    backend.receive_message = receive_message
