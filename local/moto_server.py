"""moto in server mode with the patches of ``local/patches/`` applied: ``python -m local.moto_server``.

The patches keep moto's semantics and wire protocol; they make SQS cost O(1) per send instead of
O(queue depth), stop deletes at the message they delete, read the clock once per receive scan, find a
Kinesis shard's last sequence number without copying its keys, stop the server listing its own
package on every request, fix three races, and deliver a standard queue's message groups as SQS fair
queues do (see each patch's docstring). Each refuses to load when the installed moto is not the
version it was checked against, and the emulator then exits with that message in its log instead of
running without them.

The server does not log each request (werkzeug's access log: a line per AWS call, written under one
lock every request thread takes); errors are still logged. ``--access-log`` turns it back on.
"""

from __future__ import annotations

import logging
import os
import sys

from local.patches import (
    kinesis_put_lock,
    kinesis_sequence_ends,
    server_backend_lookup,
    sqs_clock,
    sqs_delete_lock,
    sqs_delete_scan,
    sqs_fair_queue,
    sqs_lazy_attributes,
    sqs_receive_lock,
    sqs_visible_scan,
)

# sqs_delete_scan replaces the method sqs_delete_lock then wraps in the queue's lock: it comes first.
PATCHES = (
    sqs_clock,
    sqs_lazy_attributes,
    sqs_visible_scan,
    sqs_delete_scan,
    sqs_delete_lock,
    sqs_receive_lock,
    sqs_fair_queue,
    kinesis_sequence_ends,
    kinesis_put_lock,
    server_backend_lookup,
)
ACCESS_LOG_FLAG = "--access-log"
# A measuring switch, not a setting: ``python -m loadtest.tenants --without-fair-queue`` sets it to measure
# what fair queueing changes for quiet tenants (docs/quotas.md). The emulator then delivers oldest first.
WITHOUT_FAIR_QUEUE = "SLUICE_EMULATOR_WITHOUT_FAIR_QUEUE"


def main(argv: list[str] | None = None) -> None:
    args = list(argv if argv is not None else sys.argv[1:])
    if ACCESS_LOG_FLAG in args:
        args.remove(ACCESS_LOG_FLAG)
    else:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    for patch in PATCHES:
        if patch is sqs_fair_queue and os.environ.get(WITHOUT_FAIR_QUEUE) == "1":
            continue
        patch.apply()
    from moto.server import main as moto_main

    moto_main(args)


if __name__ == "__main__":
    main()
