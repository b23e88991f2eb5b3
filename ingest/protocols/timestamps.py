"""Protocol timestamps (Unix nanoseconds or seconds) as the envelope's RFC 3339 UTC text."""

from __future__ import annotations

import time
from datetime import UTC, datetime

# From the Unix epoch (no shipper means an earlier time: it is a zero or a sign error) to the last
# second a four-digit year can write.
_MIN_SECONDS = 0
_MAX_SECONDS = 253402300799


def from_unix_nanos(nanos: int) -> str | None:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (microseconds, truncated) of Unix ns; None out of range."""
    seconds, rest = divmod(nanos, 1_000_000_000)
    if not _MIN_SECONDS <= seconds <= _MAX_SECONDS:
        return None
    global _second_text
    if _second_text[0] != seconds:
        # The records of one request mostly share their second: format it once.
        _second_text = (seconds, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)))
    return f"{_second_text[1]}.{rest // 1000:06d}Z"


_second_text: tuple[int, str] = (-1, "")


def from_unix_seconds(seconds: float) -> str | None:
    """The same text for a Unix time in (fractional) seconds, as Python's ``time.time()`` gives it."""
    if seconds != seconds or not _MIN_SECONDS <= seconds <= _MAX_SECONDS:  # NaN or out of range
        return None
    micros = round(seconds * 1_000_000)
    return from_unix_nanos(micros * 1000)


def from_iso8601(value: object) -> str | None:
    """The same text for an ISO 8601 time as analytics SDKs send it (``2024-01-02T03:04:05.678Z``,
    an offset, or none: read as UTC); None for anything else or out of range."""
    if not isinstance(value, str) or not 10 <= len(value) <= 40:
        return None
    try:
        moment = datetime.fromisoformat(value)
        shifted = bool(moment.utcoffset())
        if shifted:
            moment = moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    if moment.year < 1970:
        return None
    # Exact to the microsecond, with no float round trip. A UTC time in the extended form (what the
    # SDKs send) already holds the text up to the seconds, which fromisoformat has validated.
    if not shifted and len(value) >= 19 and value[10] == "T" and value[13] == value[16] == ":":
        return f"{value[:19]}.{moment.microsecond:06d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
