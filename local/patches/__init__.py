"""Patches to libraries that local mode runs on (moto, Powertools): one file per patch.

Each patch states the upstream bug or cost it works around and the library version it was checked
against, and refuses to load (``PatchMismatch``) when the installed version or the internals it
replaces no longer match: a silent "step aside" would let the bug come back unnoticed. After a library
upgrade, re-check the upstream code named in the patch's docstring, re-run its regression test, then
update its ``CHECKED`` version.

- ``sqs_clock``: moto's SQS reads the clock through ``datetime`` for every message scanned.
- ``sqs_lazy_attributes``: moto's ``Queue.attributes`` computes every attribute to read one.
- ``sqs_visible_scan``: moto's ``Queue.messages`` reads the clock twice per message on every receive.
- ``sqs_delete_scan``: moto's ``Queue.delete_message`` scans the whole queue twice per receipt handle.
- ``sqs_delete_lock``: moto's ``Queue.delete_message`` can drop a message sent meanwhile.
- ``sqs_receive_lock``: moto's concurrent receives change the pending set while iterating it.
- ``kinesis_put_lock``: moto's ``Shard.put_record`` can give two concurrent puts one sequence number.
- ``sqs_fair_queue``: moto ignores message groups on standard queues; fair queues serve quiet groups first.
- ``kinesis_sequence_ends``: moto's Kinesis copies every key of a shard to find its last sequence number.
- ``server_backend_lookup``: moto's server lists its own package directory on every request.
- ``powertools_current_event``: Powertools' resolvers share the current event through a class attribute.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any


class PatchMismatch(RuntimeError):
    """The installed library is not the one a patch was checked against: re-check the patch."""


def require_version(patch: str, package: str, checked: str, patched: str) -> None:
    """Refuse to patch ``patched`` of ``package`` unless the installed version is ``checked``."""
    installed = version(package)
    if installed != checked:
        raise PatchMismatch(
            f"local/patches/{patch}.py patches {package} {patched} and was checked against {package} {checked}, "
            f"but {package} {installed} is installed: re-check the upstream code named in its docstring, run "
            f"its regression test, then update CHECKED there (or delete the patch if upstream fixed the bug)"
        )


def require(patch: str, package: str, patched: str, condition: bool, what: str) -> None:
    """Refuse to patch when the internals ``patched`` relies on are not there (``what`` says which)."""
    if not condition:
        raise PatchMismatch(
            f"local/patches/{patch}.py cannot patch {package} {patched} (installed {package} "
            f"{version(package)}): {what}. The patch no longer matches the library; re-check it."
        )


def has(obj: Any, *names: str) -> bool:
    """Whether ``obj`` has every attribute in ``names``."""
    return all(hasattr(obj, name) for name in names)
