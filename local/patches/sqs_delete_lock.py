"""moto's ``Queue.delete_message`` can drop a message sent meanwhile; make it hold the queue's lock.

Upstream bug (moto 5.2.5, ``moto/sqs/models.py``): ``Queue.delete_message`` rebuilds the message list
from the current one and assigns it, without the ``_messages_lock`` that ``add_message`` appends under.
When two deletes overlap, or a send lands during a delete, the later assignment wins: a message sent
meanwhile is lost and a deleted one can come back. Seen in the end-to-end test under load (accepted
records that never reached the worker). Deletes now hold the lock (a ``threading.Condition``, reentrant).

Regression tests: ``tests/tooling/test_faults_moto_sqs.py`` (the interleaving made certain) and
``tests/tooling/test_emulator.py::test_concurrent_sends_and_deletes_lose_no_message``.
"""

from __future__ import annotations

import inspect
from typing import Any

from local.patches import require, require_version

PATCH, PACKAGE, CHECKED, PATCHED = "sqs_delete_lock", "moto", "5.2.5", "moto.sqs.models.Queue.delete_message"


def apply() -> None:
    """Install the patch (idempotent); ``PatchMismatch`` when moto is not the version checked."""
    require_version(PATCH, PACKAGE, CHECKED, PATCHED)
    from moto.sqs import models

    queue: Any = getattr(models, "Queue", None)
    original: Any = getattr(queue, "delete_message", None)
    if getattr(original, "_sluice_patch", None) == PATCH:
        return
    require(PATCH, PACKAGE, PATCHED, original is not None and "self._messages_lock" in inspect.getsource(
        queue.add_message), "Queue.add_message no longer appends under self._messages_lock")  # fmt: skip

    def delete_message(self: Any, receipt_handle: str) -> None:
        with self._messages_lock:
            original(self, receipt_handle)

    delete_message._sluice_patch = PATCH  # type: ignore[attr-defined]
    queue.delete_message = delete_message
