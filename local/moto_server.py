"""moto in server mode with the patches of ``local/patches/`` applied: ``python -m local.moto_server``.

The patches keep moto's semantics and wire protocol; they make SQS cost O(1) per send instead of
O(queue depth), fix three races, and deliver a standard queue's message groups as SQS fair queues do
(see each patch's docstring). Each refuses to load when the installed
moto is not the version it was checked against, and the emulator then exits with that message in
its log instead of running without them.
"""

from __future__ import annotations

import sys

from local.patches import (
    kinesis_put_lock,
    sqs_clock,
    sqs_delete_lock,
    sqs_fair_queue,
    sqs_lazy_attributes,
    sqs_receive_lock,
)

PATCHES = (
    sqs_clock,
    sqs_lazy_attributes,
    sqs_delete_lock,
    sqs_receive_lock,
    sqs_fair_queue,
    kinesis_put_lock,
)


def main(argv: list[str] | None = None) -> None:
    for patch in PATCHES:
        patch.apply()
    from moto.server import main as moto_main

    moto_main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
