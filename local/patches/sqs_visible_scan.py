"""moto's ``Queue.messages`` reads the clock twice per message; read it once per scan.

Upstream cost (moto 5.2.5, ``moto/sqs/models.py``): ``Queue.messages``, the list of messages a receive
may take, calls the ``Message.visible`` and ``Message.delayed`` properties for every message of the
queue, and each reads the clock. Every ``ReceiveMessage`` builds that list in full before taking its
ten messages, while holding the queue's lock (``sqs_receive_lock``), so at a depth of 17,000 a receive
makes 34,000 clock reads and property calls, and sends wait behind it.

The patched property reads the clock once and compares each message's ``visible_at`` and
``delayed_until`` with it, the same comparisons the two properties make (visible: now > visible_at;
delayed: now < delayed_until). The only difference is that one scan sees one instant. It also finds
them as they are read (``VisibleMessages``): a receive stops at its tenth, so on a deep queue it walks
the messages in flight at the head and ten more instead of the whole queue; the counts (``len``) and
the long poll's wait (truthiness) see the same messages as before.

Regression test: ``tests/tooling/test_moto_patches.py::test_sqs_visible_scan_*``.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Sequence
from typing import Any, overload

from local.patches import require, require_version

PATCH, PACKAGE, CHECKED, PATCHED = "sqs_visible_scan", "moto", "5.2.5", "moto.sqs.models.Queue.messages"


class VisibleMessages(Sequence[Any]):
    """The visible messages of a queue at one instant, found as they are read.

    A receive reads them in order and stops at its tenth, and the queue's head is mostly messages in
    flight, so it only walks that head. ``len``, indexing and comparison see them all (one scan, as a
    list would); truthiness stops at the first.
    """

    __slots__ = ("_done", "_found", "_next", "_now", "_source")

    def __init__(self, source: list[Any], now: float) -> None:
        self._source, self._now = source, now
        self._found: list[Any] = []
        self._next, self._done = 0, False

    def _visible(self, m: Any) -> bool:
        return bool(self._now > m.visible_at and not self._now < m.delayed_until)

    def _advance(self) -> bool:
        while self._next < len(self._source):
            m = self._source[self._next]
            self._next += 1
            if self._visible(m):
                self._found.append(m)
                return True
        self._done = True
        return False

    def _all(self) -> list[Any]:
        if not self._done:
            now, rest = self._now, self._source[self._next :]
            self._found += [m for m in rest if now > m.visible_at and not now < m.delayed_until]
            self._next, self._done = len(self._source), True
        return self._found

    def _lazily(self) -> Iterator[Any]:
        i = 0
        while i < len(self._found) or (not self._done and self._advance()):
            yield self._found[i]
            i += 1

    def __iter__(self) -> Iterator[Any]:
        return iter(self._found) if self._done else self._lazily()

    def __len__(self) -> int:
        return len(self._all())

    def __bool__(self) -> bool:
        return bool(self._found) or (not self._done and self._advance())

    @overload
    def __getitem__(self, index: int) -> Any: ...
    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...
    def __getitem__(self, index: int | slice) -> Any:
        return self._all()[index]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and self._all() == list(other)

    __hash__ = None  # type: ignore[assignment]


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

    def messages(self: Any) -> VisibleMessages:
        return VisibleMessages(self._messages, clock.unix_time_millis())

    messages._sluice_patch = PATCH  # type: ignore[attr-defined]
    queue.messages = property(messages)
