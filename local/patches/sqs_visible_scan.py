"""moto's ``Queue.messages`` reads the clock twice per message; read it once per scan.

Upstream cost (moto 5.2.5, ``moto/sqs/models.py``): ``Queue.messages``, the list of messages a receive
may take, calls the ``Message.visible`` and ``Message.delayed`` properties for every message of the
queue, and each reads the clock. Every ``ReceiveMessage`` builds that list in full before taking its
ten messages, while holding the queue's lock (``sqs_receive_lock``), so at a depth of 17,000 a receive
makes 34,000 clock reads and property calls, and sends wait behind it.

The patched property reads the clock once and compares each message's ``visible_at`` and
``delayed_until`` with it, the same comparisons the two properties make (visible: now > visible_at;
delayed: now < delayed_until). The only difference is that one scan sees one instant.

Regression test: ``tests/tooling/test_moto_patches.py::test_sqs_visible_scan_*``.
"""

from __future__ import annotations

import inspect
from typing import Any

from local.patches import require, require_version

PATCH, PACKAGE, CHECKED, PATCHED = "sqs_visible_scan", "moto", "5.2.5", "moto.sqs.models.Queue.messages"


def apply() -> None:
    """Install the patch (idempotent); ``PatchMismatch`` when moto is not the version checked."""
    require_version(PATCH, PACKAGE, CHECKED, PATCHED)
    from moto.sqs import models

    queue: Any = getattr(models, "Queue", None)
    message: Any = getattr(models, "Message", None)
    original: Any = inspect.getattr_static(queue, "messages", None) if queue is not None else None
    if getattr(getattr(original, "fget", None), "_sluice_patch", None) == PATCH:
        return
    getter: Any = getattr(original, "fget", None)
    require(PATCH, PACKAGE, PATCHED,
            getter is not None and message is not None
            and "message.visible and not message.delayed" in inspect.getsource(getter)
            and "current_time > self.visible_at" in inspect.getsource(message.visible.fget)
            and "current_time < self.delayed_until" in inspect.getsource(message.delayed.fget),
            "Queue.messages or Message.visible/delayed no longer compare the clock with visible_at/delayed_until")  # fmt: skip

    clock: Any = models  # read at each call: sqs_clock replaces moto's unix_time_millis there

    def messages(self: Any) -> list[Any]:
        now = clock.unix_time_millis()
        return [m for m in self._messages if now > m.visible_at and not now < m.delayed_until]

    messages._sluice_patch = PATCH  # type: ignore[attr-defined]
    queue.messages = property(messages)
