"""Retry timing: exponential backoff with full jitter inside a deadline (AWS Architecture Blog, 2015)."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Full-jitter exponential backoff: attempt n sleeps uniform(0, min(cap, base * 2**n))."""

    base: float = 0.05
    cap: float = 2.0
    max_attempts: int = 8

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        ceiling = min(self.cap, self.base * (2**attempt))
        return (rng or random).uniform(0, ceiling)


class Deadline:
    """A monotonic point in time that retry loops must not sleep past."""

    def __init__(self, seconds: float) -> None:
        self._clock = time.monotonic
        self.expires = self._clock() + seconds

    def remaining(self) -> float:
        return max(0.0, self.expires - self._clock())

    def sleep(self, seconds: float) -> bool:
        """Sleep at most until the deadline; False when there was no time left to sleep and retry."""
        left = self.remaining()
        if left <= seconds:
            return False
        time.sleep(seconds)
        return True
