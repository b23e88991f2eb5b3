"""moto's ``Queue.delete_message`` scans the whole queue twice per receipt handle; stop at the message.

Upstream cost (moto 5.2.5, ``moto/sqs/models.py``): ``Queue.delete_message`` first asks every message
``had_receipt_handle`` (which builds a list of its receipt handles), then rebuilds the message list,
asking every message again. A ``DeleteMessageBatch`` of 10 on a queue 17,000 deep walks 340,000
messages and allocates a list per message, while holding the queue's lock (``sqs_delete_lock``), so
sends and receives queue up behind it. In a burst this was the largest single cost in the emulator.

A receipt handle names one receive of one message (moto generates a fresh random handle per receive),
so at most one message holds it. Received messages sit near the front of the list, which is in send
order, and receives take the oldest visible messages first. The patched method walks the list once
and stops at the message that holds the handle, then drops it from a copy of the list. What it raises, records
and removes is unchanged: ``ReceiptHandleIsInvalid`` for an unknown handle, a handle already deleted
is ignored, the message leaves the pending set and all its handles count as deleted.

Regression test: ``tests/tooling/test_moto_patches.py::test_sqs_delete_scan_*``.
"""

from __future__ import annotations

import inspect
from typing import Any

from local.patches import require, require_version

PATCH, PACKAGE, CHECKED, PATCHED = "sqs_delete_scan", "moto", "5.2.5", "moto.sqs.models.Queue.delete_message"


def apply() -> None:
    """Install the patch (idempotent); ``PatchMismatch`` when moto is not the version checked.

    Apply it before ``sqs_delete_lock``, which then wraps this method in the queue's lock.
    """
    require_version(PATCH, PACKAGE, CHECKED, PATCHED)
    from moto.sqs import models

    queue: Any = getattr(models, "Queue", None)
    message: Any = getattr(models, "Message", None)
    original: Any = getattr(queue, "delete_message", None)
    if original is None or getattr(original, "_sluice_patch", None) in (PATCH, "sqs_delete_lock"):
        require(PATCH, PACKAGE, PATCHED, original is not None and getattr(original, "_sluice_patch", None) == PATCH,
                "Queue.delete_message is missing, or sqs_delete_lock was applied first")  # fmt: skip
        return
    source = inspect.getsource(original)
    require(PATCH, PACKAGE, PATCHED,
            message is not None and "had_receipt_handle" in source and "self.deleted_messages" in source
            and "_old_receipt_handles" in inspect.getsource(message),
            "Queue.delete_message no longer finds the message by had_receipt_handle")  # fmt: skip
    from moto.sqs.exceptions import ReceiptHandleIsInvalid as invalid

    def delete_message(self: Any, receipt_handle: str) -> None:
        if receipt_handle in self.deleted_messages:
            return
        messages = self._messages
        for index, candidate in enumerate(messages):
            if candidate.receipt_handle == receipt_handle or receipt_handle in candidate._old_receipt_handles:
                # A new list, as moto assigns one: readers iterating the old list without the lock
                # (depth attributes) see a consistent snapshot.
                self._messages = messages[:index] + messages[index + 1 :]
                self.pending_messages.discard(candidate)
                self.deleted_messages.update(candidate.all_receipt_handles)
                return
        raise invalid()

    delete_message._sluice_patch = PATCH  # type: ignore[attr-defined]
    queue.delete_message = delete_message
