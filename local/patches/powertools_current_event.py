"""Powertools' resolvers share the current event through a class attribute; give each resolver its own.

Upstream design (aws-lambda-powertools 3.37.0, ``aws_lambda_powertools/event_handler/api_gateway.py``
``ApiGatewayResolver.resolve``): ``BaseRouter.current_event = self._to_proxy_event(event)`` and
``BaseRouter.lambda_context = context`` set the request on the *class*, shared by every resolver in the
process, so that routers included with ``include_router`` see it. One request per process on Lambda
makes that harmless. Local mode runs concurrent execution environments as threads of one process (each
with its own copy of the handler module, ``local.sources.load_container``), so a request could route
and read another request's event (body, headers, tenant). Powertools has no public way to keep the
event per resolver; the patch wraps one resolver's ``resolve`` to also set the event and context on
the instance, which shadows the class attribute for that resolver only. It uses the resolver's own
``_to_proxy_event`` (private) so the event class and JSON deserializer stay Powertools' choice.

Local mode only: the deployed functions never load this module. Regression test:
``tests/tooling/test_powertools_patch.py``.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

from local.patches import has, require, require_version

PATCH, PACKAGE, CHECKED = "powertools_current_event", "aws_lambda_powertools", "3.37.0"
PATCHED = "BaseRouter.current_event (set by ApiGatewayResolver.resolve)"


@functools.cache
def check() -> None:
    """``PatchMismatch`` unless Powertools is the version checked and still sets the event on the class."""
    require_version(PATCH, PACKAGE, CHECKED, PATCHED)
    from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver

    require(PATCH, PACKAGE, PATCHED, has(ApiGatewayResolver, "resolve", "_to_proxy_event"),
            "ApiGatewayResolver has no resolve/_to_proxy_event")  # fmt: skip
    require(PATCH, PACKAGE, PATCHED,
            "BaseRouter.current_event = self._to_proxy_event(" in inspect.getsource(ApiGatewayResolver.resolve),
            "ApiGatewayResolver.resolve no longer sets BaseRouter.current_event from _to_proxy_event")  # fmt: skip


check()


def isolate(resolver: Any) -> None:
    """Make ``resolver`` keep the current event and Lambda context on itself (idempotent)."""
    original = resolver.resolve
    if getattr(original, "_sluice_patch", None) == PATCH:
        return

    def resolve(event: Any, context: Any) -> Any:
        resolver.current_event = resolver._to_proxy_event(event)
        resolver.lambda_context = context
        return original(event, context)

    resolve._sluice_patch = PATCH  # type: ignore[attr-defined]
    resolver.resolve = resolve


def isolate_module(module: Any) -> None:
    """Apply ``isolate`` to every API Gateway resolver defined at the top level of ``module``."""
    check()
    from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver

    for value in list(vars(module).values()):
        if isinstance(value, ApiGatewayResolver):
            isolate(value)
