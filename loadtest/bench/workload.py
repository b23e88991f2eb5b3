"""The benchmark's inputs: 1 KB JSON events and text log lines, deterministic so runs compare."""

from __future__ import annotations

import random

import orjson

EVENT_BYTES = 1024


def make_event(i: int, size: int = EVENT_BYTES) -> dict[str, object]:
    """A webhook-like JSON object of exactly ``size`` bytes once serialized with orjson."""
    rng = random.Random(i)
    event: dict[str, object] = {
        "type": rng.choice(["order.created", "order.paid", "user.signup", "page.view"]),
        "timestamp": f"2026-11-22T10:{i % 60:02d}:{rng.randrange(60):02d}.{rng.randrange(10**6):06d}Z",
        "user": {"id": f"u-{rng.randrange(10**6)}", "plan": rng.choice(["free", "pro", "team"])},
        "order": {
            "id": f"o-{i}",
            "amount": round(rng.uniform(1, 500), 2),
            "currency": "EUR",
            "items": [{"sku": f"sku-{rng.randrange(1000)}", "qty": rng.randrange(1, 5)} for _ in range(3)],
        },
        "context": {"ip": f"198.51.100.{rng.randrange(256)}", "locale": "en-GB", "ua": "Mozilla/5.0 (X11)"},
        "note": "",
    }
    pad = size - len(orjson.dumps(event))
    if pad < 0:
        raise ValueError(f"an event cannot be as small as {size} bytes")
    event["note"] = "x" * pad
    return event


def event_body(n: int, start: int = 0, size: int = EVENT_BYTES) -> bytes:
    """A request body of ``n`` events: one JSON object when n == 1, else a JSON array."""
    events = [make_event(start + k, size) for k in range(n)]
    return orjson.dumps(events[0] if n == 1 else events)


_LEVELS = ["INFO", "INFO", "INFO", "WARN", "ERROR", "DEBUG"]


def log_line(i: int) -> str:
    rng = random.Random(i)
    return (
        f"2026-11-22T10:15:{i % 60:02d}.{rng.randrange(1000):03d}Z {_LEVELS[i % len(_LEVELS)]} "
        f"[worker-{rng.randrange(16)}] GET /api/v1/orders/{rng.randrange(10**6)} status=200 "
        f"duration_ms={rng.randrange(1, 900)} user=u-{rng.randrange(10**5)} trace={rng.getrandbits(64):016x}"
    )


def log_body(n: int, start: int = 0) -> bytes:
    return ("\n".join(log_line(start + k) for k in range(n)) + "\n").encode()
