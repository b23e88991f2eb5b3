"""moto delivers a standard queue's messages oldest first whatever their ``MessageGroupId``; SQS fair
queues deliver quiet groups first while one group is a noisy neighbour. Reproduce that order.

Missing upstream (moto 5.2.5, ``moto/sqs/models.py`` ``Queue.messages``, read by
``SQSBackend.receive_message``): fair queues (AWS, "How Amazon SQS fair queues work") count each message
group's messages in flight; a group holding more than ``NOISY_SHARE`` of the queue's in-flight messages
and at least ``NOISY_MIN_IN_FLIGHT`` of its own is a noisy neighbour. A receive then returns the other
groups' visible messages first, and, among noisy groups, those with fewest messages in flight first. A
message without a group is a group of its own. AWS's second measure (a group's share of consumer
processing time) is not reproduced: the emulator cannot see how long a consumer works. FIFO queues and
queues with no message in flight keep moto's order. Nothing is held back: the order changes, not what
can be received (it reorders, it does not cap).

It wraps whatever ``Queue.messages`` returns the visible messages with: moto's getter, or
``sqs_visible_scan``'s when that patch is applied first (``local/moto_server.py`` applies it first).
It also wraps ``Queue.add_message`` to remember the groups ever sent to each queue: a receive runs this
order over the whole queue, and while one tenant floods a queue nobody else has written to, nothing can
be quiet, so the order is moto's without looking at the messages (what a deep one-tenant burst needs).

Regression test: ``tests/tooling/test_moto_patches.py::test_sqs_fair_queue_*``.
"""

from __future__ import annotations

import inspect
import re
from collections import Counter
from collections.abc import Collection
from typing import Any

from local.patches import require, require_version

PATCH, PACKAGE, CHECKED, PATCHED = "sqs_fair_queue", "moto", "5.2.5", "moto.sqs.models.Queue.messages"
# AWS documents these thresholds as approximate ("Amazon SQS fair queues", how detection works).
NOISY_SHARE = 0.10
NOISY_MIN_IN_FLIGHT = 30
SENT_GROUPS = "_sluice_sent_groups"  # on each Queue: the groups of the messages ever sent to it


def _group(message: Any) -> object:
    """A message's group: its ``MessageGroupId``, or the message itself when it has none."""
    return getattr(message, "group_id", None) or id(message)


def fair_order(
    visible: list[Any], in_flight: list[Any], sent_groups: Collection[object] | None = None
) -> list[Any]:
    """``visible`` (moto's order) with quiet groups' messages first, then noisy groups' (fewest in flight first).

    It runs on every receive over every visible message, so the per-message work is one dictionary
    lookup of the ``MessageGroupId``: a noisy group always has a ``MessageGroupId`` (a message without
    one is a group of one, never noisy), so a message without one is quiet. With a single noisy group
    and nothing quiet the order is moto's, returned as it is. ``sent_groups``, when known, holds the
    group of every message ever sent to the queue (``None`` for a message without one): when they are
    all noisy, nothing can be quiet and the visible messages are not even scanned.
    """
    groups = Counter(_group(m) for m in in_flight)
    total = sum(groups.values())
    noisy = {g: n for g, n in groups.items() if n >= NOISY_MIN_IN_FLIGHT and n > NOISY_SHARE * total}
    if not noisy or (len(noisy) == 1 and sent_groups is not None and all(g in noisy for g in sent_groups)):
        return visible
    listed = list(visible)
    quiet = [m for m in listed if getattr(m, "group_id", None) not in noisy]
    if not quiet and len(noisy) == 1:
        return visible
    rest = [m for m in listed if getattr(m, "group_id", None) in noisy]
    if len(noisy) > 1:
        rest.sort(key=lambda m: noisy[m.group_id])  # stable: each group keeps moto's order
    return quiet + rest


def apply() -> None:
    """Install the patch (idempotent); ``PatchMismatch`` when moto is not the version checked."""
    require_version(PATCH, PACKAGE, CHECKED, PATCHED)
    from moto.sqs import models

    queue: Any = getattr(models, "Queue", None)
    prop: Any = inspect.getattr_static(queue, "messages", None) if queue is not None else None
    if getattr(getattr(prop, "fget", None), "_sluice_patch", None) == PATCH:
        return
    backend: Any = getattr(models, "SQSBackend", None)
    # The getter is moto's, or sqs_visible_scan's (the same visible messages, one clock read): wrap either.
    require(PATCH, PACKAGE, PATCHED, isinstance(prop, property) and prop.fget is not None
            and ("message.visible and not message.delayed" in inspect.getsource(prop.fget)
                 or getattr(prop.fget, "_sluice_patch", None) == "sqs_visible_scan")
            and backend is not None and "for message in queue.messages" in inspect.getsource(models)
            and "pending_messages" in inspect.getsource(queue),
            "Queue.messages is no longer the visible messages that receive_message walks")  # fmt: skip
    # Messages enter a queue only through add_message, which records their group first (under the GIL,
    # before the message is visible to a receive), so the set holds the group of every message present.
    require(PATCH, PACKAGE, PATCHED,
            re.findall(r"\._messages\.(append|extend|insert)\(", inspect.getsource(models)) == ["append"]
            and "self._messages.append(message)" in inspect.getsource(inspect.unwrap(queue.add_message)),
            "messages no longer enter a queue only through Queue.add_message")  # fmt: skip
    original = prop.fget
    original_add = queue.add_message

    def add_message(self: Any, message: Any) -> None:
        self.__dict__.setdefault(SENT_GROUPS, set()).add(message.group_id or None)
        original_add(self, message)

    def messages(self: Any) -> list[Any]:
        visible: list[Any] = original(self)
        if self.fifo_queue or not self.pending_messages:
            return visible
        in_flight = [m for m in list(self.pending_messages) if not m.visible]
        return fair_order(visible, in_flight, set(self.__dict__.get(SENT_GROUPS, ())))

    messages._sluice_patch = PATCH  # type: ignore[attr-defined]
    add_message._sluice_patch = PATCH  # type: ignore[attr-defined]
    add_message.__wrapped__ = original_add  # type: ignore[attr-defined]
    queue.messages = property(messages)
    if getattr(original_add, "_sluice_patch", None) != PATCH:
        queue.add_message = add_message
