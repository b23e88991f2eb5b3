"""moto in server mode, with its SQS hot spots made cheap and one race fixed: ``python -m local.moto_server``.

moto's SQS model makes every SendMessage cost O(queue depth) several times over: it builds *all*
queue attributes (three of which scan every message) just to read ``ContentBasedDeduplication``, and
each scan converts ``datetime.utcnow()`` to epoch milliseconds per message. With a few thousand
messages queued, one SendMessageBatch took a quarter of a second and the local pipeline could not keep
up with itself. The patches keep the semantics and the wire protocol unchanged:

- message visibility/delay checks read the clock with ``time.time()`` (the same UTC epoch ms);
- ``Queue.attributes`` becomes a lazy mapping that computes only the attributes asked for.

And one race fixed: ``Queue.delete_message`` rebuilds the message list from a snapshot without the lock
that ``add_message`` appends under, so a message sent while another was being deleted could vanish
(seen in the end-to-end test under load; 20 of 4,000 messages lost with 4 threads sending and 4
deleting). Deletes now hold that lock (``tests/integration/test_emulator.py``,
``tests/integration/test_faults_moto_sqs.py``).

Measured here: 200 sends into a queue ~1,500 deep took 12.8 s before and about 0.1 s after (see
``docs/local.md``). If moto changes these internals, the patches step aside and moto runs as shipped.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator, Mapping
from typing import Any


def _patch_sqs() -> bool:
    try:
        from moto.core.utils import camelcase_to_underscores
        from moto.sqs import models
    except ImportError:
        return False
    queue_cls = getattr(models, "Queue", None)
    original_millis = getattr(models, "unix_time_millis", None)
    if queue_cls is None or original_millis is None or not hasattr(queue_cls, "BASE_ATTRIBUTES"):
        return False

    def unix_time_millis(dt: Any = None) -> float:
        return time.time() * 1000.0 if dt is None else float(original_millis(dt))

    class LazyAttributes(Mapping[str, Any]):
        """``Queue.attributes`` with the same keys and values, each computed only when read."""

        def __init__(self, queue: Any) -> None:
            self._queue = queue
            names = list(queue.BASE_ATTRIBUTES)
            if queue.fifo_queue:
                names += queue.FIFO_ATTRIBUTES
            if queue.kms_master_key_id:
                names += queue.KMS_ATTRIBUTES
            if queue.policy:
                names.append("Policy")
            if queue.redrive_policy:
                names.append("RedrivePolicy")
            self._names = names

        def __getitem__(self, name: str) -> Any:
            if name not in self._names:
                raise KeyError(name)
            q = self._queue
            if name == "Policy":
                value = q.policy
            elif name == "RedrivePolicy":
                value = json.dumps(q.redrive_policy)
            else:
                value = getattr(q, camelcase_to_underscores(name))
            return str(value).lower() if isinstance(value, bool) else value

        def __iter__(self) -> Iterator[str]:
            return iter(self._names)

        def __len__(self) -> int:
            return len(self._names)

    models.unix_time_millis = unix_time_millis  # type: ignore[attr-defined]
    queue_cls.attributes = property(LazyAttributes)
    return True


def _patch_sqs_delete_lock() -> bool:
    """Make ``Queue.delete_message`` hold ``_messages_lock``, as ``add_message`` does."""
    try:
        from moto.sqs import models
    except ImportError:
        return False
    queue_cls = getattr(models, "Queue", None)
    original = getattr(queue_cls, "delete_message", None)
    if original is None or getattr(original, "_sluice_locked", False):
        return original is not None

    def delete_message(self: Any, receipt_handle: str) -> None:
        lock = getattr(self, "_messages_lock", None)
        if lock is None:
            return original(self, receipt_handle)  # type: ignore[no-any-return]
        with lock:
            return original(self, receipt_handle)  # type: ignore[no-any-return]

    delete_message._sluice_locked = True  # type: ignore[attr-defined]
    queue_cls.delete_message = delete_message  # type: ignore[union-attr]

    # Concurrent receives iterate and change the same pending set ("Set changed size during iteration"
    # seen under load). Holding the queue's Condition is safe across the long poll: its wait() releases
    # the lock entirely while waiting.
    backend_cls = getattr(models, "SQSBackend", None)
    receive = getattr(backend_cls, "receive_message", None)
    if receive is not None and not getattr(receive, "_sluice_locked", False):

        def receive_message(self: Any, queue_name: str, *args: Any, **kwargs: Any) -> Any:
            lock = getattr(self.get_queue(queue_name), "_messages_lock", None)
            if lock is None:
                return receive(self, queue_name, *args, **kwargs)
            with lock:
                return receive(self, queue_name, *args, **kwargs)

        receive_message._sluice_locked = True  # type: ignore[attr-defined]
        backend_cls.receive_message = receive_message  # type: ignore[union-attr]
    return True


def main(argv: list[str] | None = None) -> None:
    _patch_sqs()
    _patch_sqs_delete_lock()
    from moto.server import main as moto_main

    moto_main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
