"""Regression: a message sent while deletes overlap must not vanish from the local emulator's queue.

Found by the end-to-end test under load: 10 accepted records (one SendMessageBatch) never reached the
worker. moto's ``Queue.delete_message`` rebuilds the message list from the current one and assigns
it, without the lock ``add_message`` appends under. When two deletes overlap, the later assignment
wins: a message appended to the other's list is lost (and a deleted one comes back).
``local/patches/sqs_delete_lock.py`` makes deletes hold that lock. The interleaving is made certain here: one delete
pauses inside its rebuild while another poller deletes and a producer sends.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from moto.sqs import models

from local.patches import sqs_delete_lock

pytestmark = pytest.mark.integration


@pytest.fixture
def locked_deletes() -> Iterator[None]:
    original = models.Queue.delete_message
    sqs_delete_lock.apply()
    yield
    models.Queue.delete_message = original  # type: ignore[method-assign]


def test_a_message_sent_while_two_deletes_overlap_is_kept(
    locked_deletes: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = models.Queue("q", region="us-east-1", account_id="000000000000")
    messages = [models.Message(f"m{i}", f"body {i}") for i in (1, 2, 3)]
    for n, message in enumerate(messages, 1):
        queue.add_message(message)
        message.receipt_handle = f"handle-{n}"
    late = models.Message("late", "sent while the deletes overlap")

    def other_worker() -> None:  # a second poller deletes its message, then a producer sends
        queue.delete_message("handle-2")
        queue.add_message(late)

    other = threading.Thread(target=other_worker)
    main = threading.current_thread()
    real = models.Message.had_receipt_handle
    calls = {"n": 0}

    def had_receipt_handle(self: Any, handle: str) -> bool:
        if threading.current_thread() is main:
            calls["n"] += 1
            if calls["n"] == 2:  # the first step of the rebuild loop of the main thread's delete
                other.start()
                other.join(0.5)  # with deletes locked it must wait; without, it runs to the end now
        return bool(real(self, handle))

    monkeypatch.setattr(models.Message, "had_receipt_handle", had_receipt_handle)
    # WHEN two pollers delete at once while a producer sends
    queue.delete_message("handle-1")
    other.join(5)
    # THEN both deletes took effect and the sent message is on the queue
    assert [m.id for m in queue._messages] == ["m3", "late"]
