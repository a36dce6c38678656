"""Pacing of the dispatcher: a token bucket for the send rate, backoff for retries."""
from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import timedelta


class TokenBucket:
    """At most ``burst + rate * t`` takes in any ``t`` seconds; rate <= 0: no limit.

    A small burst lets the loop catch up after a slow send (a provider call that took
    longer than 1/rate) instead of losing that time for good.
    """

    def __init__(self, rate: float, burst: float = 1.0, monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.rate = rate
        self.capacity = max(1.0, burst)
        self.tokens = self.capacity
        self._monotonic, self._sleep = monotonic, sleep
        self._updated = monotonic()

    def take(self) -> None:
        if self.rate <= 0:
            return
        while True:
            now = self._monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self._updated) * self.rate)
            self._updated = now
            if self.tokens >= 1.0 - 1e-9:  # float sums of waits land a hair under 1
                self.tokens = max(0.0, self.tokens - 1.0)
                return
            self._sleep((1.0 - self.tokens) / self.rate)


def backoff_delay(attempts: int, *, base_s: float, max_s: float, jitter: float,
                  rng: random.Random | None = None) -> timedelta:
    """Capped exponential backoff after the ``attempts``-th failure, shortened by up to ``jitter``
    (a fraction), so rows that failed together do not all come back together."""
    raw = min(max_s, base_s * (2 ** max(0, attempts - 1)))
    spread = (rng or random).uniform(0.0, jitter)
    return timedelta(seconds=raw * (1.0 - spread))
