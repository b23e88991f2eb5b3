"""moto's server lists its own package directory on every request; remember each host's backend.

Upstream cost (moto 5.2.5, ``moto/moto_server/werkzeug_app.py``): ``DomainDispatcherApplication``
``get_backend_for_host`` checks ``host in backends.list_of_moto_modules()``, which runs ``os.listdir``
over moto's package and ``os.path.isdir`` on each of its ~200 entries, for every request, inside
``get_application``'s process-wide lock. Under load every AWS call the emulator serves waits in line
for that directory walk (a tenth of the emulator's time in a 20,000-record burst).

The answer depends only on the host string and on the installed package and its URL patterns, which do
not change while the server runs, so the patched method remembers each host's answer. Hosts that match
no backend are not remembered (moto prints a hint for them, which stays).

Regression test: ``tests/tooling/test_moto_patches.py::test_server_backend_lookup_*``.
"""

from __future__ import annotations

import inspect
from typing import Any

from local.patches import require, require_version

PATCH, PACKAGE, CHECKED, PATCHED = (
    "server_backend_lookup",
    "moto",
    "5.2.5",
    "moto.moto_server.werkzeug_app.DomainDispatcherApplication.get_backend_for_host",
)


def apply() -> None:
    """Install the patch (idempotent); ``PatchMismatch`` when moto is not the version checked."""
    require_version(PATCH, PACKAGE, CHECKED, PATCHED)
    from moto.moto_server import werkzeug_app

    dispatcher: Any = getattr(werkzeug_app, "DomainDispatcherApplication", None)
    original: Any = getattr(dispatcher, "get_backend_for_host", None)
    if getattr(original, "_sluice_patch", None) == PATCH:
        return
    require(PATCH, PACKAGE, PATCHED,
            original is not None and "list_of_moto_modules()" in inspect.getsource(original)
            and "self.backend_url_patterns" in inspect.getsource(original),
            "get_backend_for_host no longer decides from the module list and the URL patterns alone")  # fmt: skip
    known: dict[str | None, Any] = {}

    def get_backend_for_host(self: Any, host: str | None) -> Any:
        try:
            return known[host]
        except KeyError:
            backend = original(self, host)
            if backend is not None:
                known[host] = backend
            return backend

    get_backend_for_host._sluice_patch = PATCH  # type: ignore[attr-defined]
    dispatcher.get_backend_for_host = get_backend_for_host
