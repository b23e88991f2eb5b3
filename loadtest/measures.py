"""The numbers a load run reports, computed from plain samples: percentiles, lag, drain time, losses.

Pure functions over lists and dicts, shared by the load driver, the concurrency experiment and the
locustfile's threshold check, and unit tested on hand-made series.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100), linear between closest ranks (numpy's default); None when empty."""
    if not values:
        return None
    if not 0 <= q <= 100:
        raise ValueError("q must be within 0..100")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def epoch_seconds(value: str | float | int) -> float:
    """An RFC 3339 timestamp (``...Z`` or with an offset) or an epoch number (seconds or milliseconds)."""
    if isinstance(value, int | float):
        number = float(value)
    else:
        text = str(value).strip()
        try:
            number = float(text)
        except ValueError:
            return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    # Epoch milliseconds are 13 digits today; seconds are 10.
    return number / 1000 if number > 1e11 else number


def lag_seconds(received_at: str | float, stored_at: str | float) -> float:
    """End-to-end lag of one record: accepted by the API -> written to the table."""
    return epoch_seconds(stored_at) - epoch_seconds(received_at)


@dataclass(frozen=True)
class LagSummary:
    samples: int
    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None

    @classmethod
    def of(cls, lags: Sequence[float]) -> LagSummary:
        return cls(
            len(lags),
            percentile(lags, 50),
            percentile(lags, 95),
            percentile(lags, 99),
            max(lags) if lags else None,
        )


def level_before(series: Sequence[tuple[float, int]], start: float, end: float) -> int:
    """The backlog normal traffic keeps in the queue: the highest sample in [start, end).

    Messages wait up to the batching window before a worker takes them, so under steady traffic the
    backlog is not 0 but a small number; "drained" means back to that level, not necessarily empty.
    """
    window = [v for t, v in series if start <= t < end]
    return max(window) if window else 0


def drain_time(series: Sequence[tuple[float, int]], after: float, level: int = 0) -> float | None:
    """Seconds from ``after`` until the backlog is first at or below ``level``; None if it never is.

    ``series`` is (time, backlog) samples in time order, e.g. one per second from the sampler.
    """
    for t, backlog in series:
        if t >= after and backlog <= level:
            return t - after
    return None


def stalled_in_flight(samples: Sequence[tuple[float, int, int]], min_seconds: float = 10.0) -> int:
    """The most messages seen held in flight, unchanged, with nothing visible, for ``min_seconds`` or more.

    ``samples`` are (time, visible, in_flight). A worker that is alive takes visible messages and
    deletes what it finished, so in-flight messages that neither finish nor come back are stuck: a
    receive whose answer never reached the poller, or a delete that did not take. They reappear only
    after the queue's visibility timeout, and every record among them is late by that much.
    """
    worst, start, held = 0, None, -1
    for t, visible, in_flight in samples:
        if visible == 0 and in_flight > 0 and in_flight == held:
            if start is not None and t - start >= min_seconds:
                worst = max(worst, in_flight)
            continue
        start, held = (t, in_flight) if visible == 0 and in_flight > 0 else (None, -1)
    return worst


def peak(series: Iterable[tuple[float, int]]) -> int:
    return max((v for _, v in series), default=0)


@dataclass(frozen=True)
class LossReport:
    accepted: int
    stored: int
    lost: int  # accepted by the API but not in the table: must be 0
    extra: int  # in the table but never acknowledged (e.g. a 503 after a partial publish): allowed
    lost_by_tenant: dict[str, int]


def losses(accepted: Mapping[str, int], stored: Mapping[str, int]) -> LossReport:
    """Per-tenant accepted (from the 202 receipts) against stored (counted in the table)."""
    lost_by_tenant = {t: n - stored.get(t, 0) for t, n in accepted.items() if n > stored.get(t, 0)}
    extra = sum(max(0, stored.get(t, 0) - n) for t, n in accepted.items())
    extra += sum(n for t, n in stored.items() if t not in accepted)
    return LossReport(
        accepted=sum(accepted.values()),
        stored=sum(stored.values()),
        lost=sum(lost_by_tenant.values()),
        extra=extra,
        lost_by_tenant=lost_by_tenant,
    )


def threshold_failures(
    requests: int, failures: int, p95_ms: float | None, max_error_rate: float, max_p95_ms: float
) -> list[str]:
    """Why a run fails its thresholds (empty when it passes); a run with no requests fails too."""
    reasons = []
    if requests == 0:
        return ["no requests were sent"]
    rate = failures / requests
    if rate > max_error_rate:
        reasons.append(f"error rate {rate:.2%} > {max_error_rate:.2%} ({failures} of {requests} requests)")
    if p95_ms is not None and p95_ms > max_p95_ms:
        reasons.append(f"p95 latency {p95_ms:.0f} ms > {max_p95_ms:.0f} ms")
    return reasons


def table(rows: Sequence[Sequence[object]], header: Sequence[str], title: str = "") -> str:
    """A plain fixed-width text table for terminal summaries, under ``title`` when given."""
    cells = [[str(h) for h in header], *[[cell(v) for v in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
             for r in cells]  # fmt: skip
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join([f"\n{title}", *lines] if title else lines)


def cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value == 0 or abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:.2f}" if abs(value) >= 1 else f"{value:.4f}".rstrip("0")
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
