"""moto's SQS reads the clock through ``datetime`` for every message it looks at; read ``time.time()``.

Upstream cost (moto 5.2.5, ``moto/sqs/models.py``): ``Message.visible``, ``Message.delayed`` and the
visibility/delay setters call ``moto.core.utils.unix_time_millis()``, which builds
``datetime.utcnow()`` and converts it to epoch milliseconds. Reading queue depths and receiving scan
every message, so a deep queue pays that conversion per message per call, and the local pipeline
could not keep up with itself. Without an argument the patched function returns the same UTC epoch
milliseconds from ``time.time()``; with one it defers to moto's.

Regression test: ``tests/tooling/test_moto_patches.py::test_sqs_clock_*``.
"""

from __future__ import annotations

import inspect
import time
from typing import Any

from local.patches import has, require, require_version

PATCH, PACKAGE, CHECKED, PATCHED = "sqs_clock", "moto", "5.2.5", "moto.sqs.models.unix_time_millis"


def apply() -> None:
    """Install the patch (idempotent); ``PatchMismatch`` when moto is not the version checked."""
    require_version(PATCH, PACKAGE, CHECKED, PATCHED)
    from moto.sqs import models

    require(PATCH, PACKAGE, PATCHED, has(models, "unix_time_millis", "Message"),
            "moto.sqs.models no longer imports unix_time_millis")  # fmt: skip
    original: Any = getattr(models, "unix_time_millis")  # noqa: B009 - moto does not re-export it
    if getattr(original, "_sluice_patch", None) == PATCH:
        return
    require(PATCH, PACKAGE, PATCHED, "unix_time_millis()" in inspect.getsource(models.Message),
            "Message no longer reads the clock through unix_time_millis()")  # fmt: skip

    def unix_time_millis(dt: Any = None) -> float:
        return time.time() * 1000.0 if dt is None else float(original(dt))

    unix_time_millis._sluice_patch = PATCH  # type: ignore[attr-defined]
    setattr(models, "unix_time_millis", unix_time_millis)  # noqa: B010 - moto does not re-export it
