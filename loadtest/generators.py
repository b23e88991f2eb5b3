"""Realistic request bodies and a skewed tenant mix for the load tests.

Pure: everything takes a ``random.Random`` and returns plain data. Real inputs from ``../shared/corpus``
(GitHub webhook bodies, Loghub log lines) are used when that folder exists beside the repository;
without it the synthesized bodies below stand in.
"""

from __future__ import annotations

import bisect
import gzip
import itertools
import random
import string
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO.parent / "shared" / "corpus"
# A record of an analytics or telemetry producer: about 1 KB serialized, as in the cost model.
DEFAULT_EVENT_BYTES = 1024
# Corpus bodies above this are skipped: a load test measures the pipeline, not the 256 KiB record limit.
MAX_CORPUS_BODY_BYTES = 64 * 1024


def new_run_id() -> str:
    """A short id naming one load run; every tenant of the run carries it, so its records can be counted."""
    return time.strftime("%m%d%H%M") + uuid.uuid4().hex[:4]


def run_tenants(run_id: str, count: int) -> list[str]:
    """``lt-<run>-t00`` ... : valid tenant ids (core.tenancy), unique to the run."""
    return [f"lt-{run_id}-t{k:02d}" for k in range(count)]


def zipf_weights(count: int, exponent: float = 1.1) -> list[float]:
    """Share of the traffic of the k-th tenant (k = 1..count), proportional to 1/k^exponent, summing to 1.

    Real multi-tenant traffic is skewed: one or two tenants send most of it. That is what makes hot
    partitions and per-tenant limits show up in a load test, which a uniform mix would hide.
    """
    if count < 1:
        raise ValueError("count must be >= 1")
    raw = [1.0 / (k**exponent) for k in range(1, count + 1)]
    total = sum(raw)
    return [w / total for w in raw]


@dataclass(frozen=True)
class TenantMix:
    """Picks a tenant per request with a Zipf-like skew."""

    tenants: tuple[str, ...]
    weights: tuple[float, ...]
    _cumulative: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.tenants) != len(self.weights) or not self.tenants:
            raise ValueError("one weight per tenant, at least one tenant")
        object.__setattr__(self, "_cumulative", tuple(itertools.accumulate(self.weights)))

    @classmethod
    def for_run(cls, run_id: str, count: int, exponent: float = 1.1) -> TenantMix:
        return cls(tuple(run_tenants(run_id, count)), tuple(zipf_weights(count, exponent)))

    def pick(self, rng: random.Random) -> str:
        x = rng.random() * self._cumulative[-1]
        return self.tenants[min(bisect.bisect_right(self._cumulative, x), len(self.tenants) - 1)]


@dataclass(frozen=True)
class Webhook:
    """One webhook delivery body and the event name its sender puts in a header."""

    event: str
    body: bytes


@dataclass(frozen=True)
class Corpus:
    webhooks: tuple[Webhook, ...] = ()
    log_lines: tuple[str, ...] = ()

    @classmethod
    def load(cls, root: Path = CORPUS) -> Corpus:
        """Whatever of the shared corpus is present under ``root``; empty when it is absent."""
        hooks: list[Webhook] = []
        lines: list[str] = []
        github = root / "webhooks" / "github"
        if github.is_dir():
            for path in sorted(github.glob("*.json")):
                body = path.read_bytes()
                if len(body) <= MAX_CORPUS_BODY_BYTES:
                    hooks.append(Webhook(path.name.split(".", 1)[0], body))
        logs = root / "logs"
        if logs.is_dir():
            for path in sorted(logs.glob("*.log")):
                text = path.read_bytes().decode("utf-8", errors="replace")
                lines.extend(line.removesuffix("\r") for line in text.split("\n") if line.strip())
        return cls(tuple(hooks), tuple(lines))


# --- records ----------------------------------------------------------------------------------

_PAGES = ("/", "/pricing", "/docs/getting-started", "/blog/launch", "/signup", "/checkout", "/account")
_EVENTS = ("page_view", "click", "signup", "add_to_cart", "checkout_started", "purchase", "search")
_AGENTS = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
)
_LEVELS = ("INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR")


def _words(rng: random.Random, n: int) -> str:
    return " ".join("".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 9))) for _ in range(n))


def _pad_to(record: dict[str, Any], target_bytes: int, rng: random.Random, key: str) -> dict[str, Any]:
    """Grow ``record[key]`` with words until the serialized record is about ``target_bytes``."""
    size = len(orjson.dumps(record))
    if size < target_bytes:
        filler = _words(rng, (target_bytes - size) // 6 + 1)
        record[key] = filler[: max(0, target_bytes - size - len(key) - 6)]
    return record


def analytics_event(rng: random.Random, target_bytes: int = DEFAULT_EVENT_BYTES) -> dict[str, Any]:
    """A product-analytics event (page view, click, purchase ...) of about ``target_bytes`` as JSON."""
    event = {
        "type": rng.choice(_EVENTS),
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "anonymous_id": str(uuid.UUID(int=rng.getrandbits(128))),
        "user_id": f"u_{rng.randint(1, 50_000)}",
        "context": {
            "page": {"path": rng.choice(_PAGES), "referrer": "https://www.google.com/"},
            "user_agent": rng.choice(_AGENTS),
            "locale": rng.choice(("en-US", "de-DE", "fr-FR", "ja-JP")),
            "library": {"name": "analytics.js", "version": "4.1.0"},
        },
        "properties": {
            "plan": rng.choice(("free", "team", "enterprise")),
            "value": round(rng.uniform(0, 500), 2),
            "currency": "EUR",
            "experiment": rng.choice(("control", "variant-a", "variant-b")),
        },
    }
    return _pad_to(event, target_bytes, rng, "description")


def telemetry_event(rng: random.Random, target_bytes: int = DEFAULT_EVENT_BYTES) -> dict[str, Any]:
    """A device/service telemetry sample: metrics, tags and a short status text."""
    event = {
        "type": "telemetry.sample",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "device_id": f"dev-{rng.randint(1, 5_000):05d}",
        "firmware": f"2.{rng.randint(0, 9)}.{rng.randint(0, 30)}",
        "metrics": {
            name: round(rng.uniform(0, 100), 3)
            for name in ("cpu", "mem", "temp_c", "rssi", "battery", "latency_ms", "queue", "errors")
        },
        "tags": {"region": rng.choice(("eu-west-1", "us-east-1", "ap-south-1")), "fleet": "edge"},
    }
    return _pad_to(event, target_bytes, rng, "status")


def synthetic_webhook(rng: random.Random) -> Webhook:
    """A payment-provider style delivery (no corpus needed)."""
    kind = rng.choice(("payment_intent.succeeded", "invoice.paid", "customer.updated", "charge.refunded"))
    body = {
        "object": "event",
        "type": kind,
        "created": int(time.time()),
        "livemode": False,
        "data": {
            "object": {
                "id": f"obj_{uuid.UUID(int=rng.getrandbits(128)).hex[:24]}",
                "amount": rng.randint(100, 100_000),
                "currency": "eur",
                "metadata": {"order": str(rng.randint(1, 10**6)), "note": _words(rng, 12)},
            }
        },
    }
    return Webhook(kind, orjson.dumps(body))


def synthetic_log_line(rng: random.Random) -> str:
    """An application log line: timestamp, level, logger, message with key=value pairs."""
    return (
        f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime())}.{rng.randint(0, 999):03d}Z "
        f"{rng.choice(_LEVELS)} [{rng.choice(('api', 'billing', 'auth', 'worker'))}] "
        f"request_id={uuid.UUID(int=rng.getrandbits(128))} path={rng.choice(_PAGES)} "
        f"status={rng.choice((200, 200, 201, 204, 400, 404, 500))} duration_ms={rng.randint(1, 900)} "
        f"msg={_words(rng, rng.randint(3, 15))!r}"
    )


@dataclass(frozen=True)
class Body:
    """One request to send: bytes, headers, and how many records the server must accept from it."""

    data: bytes
    headers: dict[str, str]
    records: int


def gzip_body(body: Body) -> Body:
    return Body(
        gzip.compress(body.data, compresslevel=5), {**body.headers, "Content-Encoding": "gzip"}, body.records
    )


def webhook_body(hook: Webhook, rng: random.Random) -> Body:
    # A fresh delivery id per request: the id is the record's identity, so a repeated one would be
    # (correctly) de-duplicated and make the accepted-vs-stored count look like a loss.
    return Body(
        hook.body,
        {
            "Content-Type": "application/json",
            "X-GitHub-Event": hook.event,
            "X-GitHub-Delivery": str(uuid.UUID(int=rng.getrandbits(128))),
            "User-Agent": "GitHub-Hookshot/loadtest",
        },
        1,
    )


class BodyFactory:
    """Builds the bodies of each request kind from the corpus when present, else synthesized."""

    def __init__(self, corpus: Corpus, rng: random.Random, event_bytes: int = DEFAULT_EVENT_BYTES) -> None:
        self.corpus = corpus
        self.rng = rng
        self.event_bytes = event_bytes

    def event(self) -> dict[str, Any]:
        maker = analytics_event if self.rng.random() < 0.7 else telemetry_event
        return maker(self.rng, self.event_bytes)

    def single_event(self) -> Body:
        return Body(orjson.dumps(self.event()), {"Content-Type": "application/json"}, 1)

    def webhook(self) -> Body:
        hooks = self.corpus.webhooks
        hook = self.rng.choice(hooks) if hooks else synthetic_webhook(self.rng)
        return webhook_body(hook, self.rng)

    def event_batch(self, n: int) -> Body:
        return Body(orjson.dumps([self.event() for _ in range(n)]), {"Content-Type": "application/json"}, n)

    def log_lines(self, n: int) -> list[str]:
        lines = self.corpus.log_lines
        if lines:
            start = self.rng.randrange(len(lines))
            return [lines[(start + i) % len(lines)] for i in range(n)]
        return [synthetic_log_line(self.rng) for _ in range(n)]

    def text_logs(self, n: int) -> Body:
        kept = [line for line in self.log_lines(n) if line.strip()]
        return Body(
            "\n".join(kept).encode() + b"\n", {"Content-Type": "text/plain; charset=utf-8"}, len(kept)
        )

    def ndjson_logs(self, n: int) -> Body:
        data = b"".join(orjson.dumps({"message": line, "level": self.rng.choice(_LEVELS),
                                      "attributes": {"host": f"web-{i % 8}"}}) + b"\n"
                        for i, line in enumerate(self.log_lines(n)))  # fmt: skip
        return Body(data, {"Content-Type": "application/x-ndjson"}, n)
