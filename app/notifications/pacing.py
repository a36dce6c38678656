"""Pacing of the dispatcher: a token bucket and a one-second window for the send rate, backoff
for retries."""
from __future__ import annotations

import math
import random
import threading
import time
from collections import deque
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
        self._lock = threading.Lock()  # taken by several sending threads

    def take(self) -> None:
        if self.rate <= 0:
            return
        with self._lock:
            self._take()

    def _take(self) -> None:
        while True:
            now = self._monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self._updated) * self.rate)
            self._updated = now
            if self.tokens >= 1.0 - 1e-9:  # float sums of waits land a hair under 1
                self.tokens = max(0.0, self.tokens - 1.0)
                return
            self._sleep((1.0 - self.tokens) / self.rate)


class SendPacer:
    """At most ``floor(rate)`` sends in any second *as the provider counts them*, spaced by a token
    bucket; shared by the dispatcher's sending threads.

    The provider stamps a request somewhere between its start and its answer, so a send may
    start only when the send ``floor(rate)`` places before it has been answered at least one
    second ago: then no two sends that far apart can be stamped within the same second, whatever
    the network's jitter. The price is the round trip: the sustained rate is
    ``rate / (1 + round trip in seconds)`` at most (about 99.5/s for 100/s at 5 ms).

    ``acquire()`` blocks until a send may start and returns a ticket; ``done(ticket)`` when its
    answer (or error) came back. rate <= 0: no limit.
    """

    WINDOW_S = 1.0

    def __init__(self, rate: float, burst: float = 1.0, monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.rate = rate
        self.per_window = max(1, math.floor(rate)) if rate > 0 else 0
        self.bucket = TokenBucket(rate, burst=burst, monotonic=monotonic, sleep=sleep)
        self._monotonic, self._sleep = monotonic, sleep
        self._tickets: deque[list[float | None]] = deque()  # [answered at] of the last sends, in start order
        self._answered = threading.Condition()
        self._one_at_a_time = threading.Lock()

    def acquire(self) -> list[float | None] | None:
        if self.rate <= 0:
            return None
        with self._one_at_a_time:
            self.bucket.take()
            while True:
                with self._answered:
                    while len(self._tickets) >= self.per_window and self._tickets[0][0] is None:
                        self._answered.wait()  # that send is still in flight
                    if len(self._tickets) < self.per_window:
                        ticket: list[float | None] = [None]
                        self._tickets.append(ticket)
                        return ticket
                    wait = self._tickets[0][0] + self.WINDOW_S - self._monotonic()
                    if wait <= 0:
                        self._tickets.popleft()
                        continue
                self._sleep(wait)

    def done(self, ticket: list[float | None] | None) -> None:
        if ticket is None:
            return
        with self._answered:
            ticket[0] = self._monotonic()
            self._answered.notify_all()


def backoff_delay(attempts: int, *, base_s: float, max_s: float, jitter: float,
                  rng: random.Random | None = None) -> timedelta:
    """Capped exponential backoff after the ``attempts``-th failure, shortened by up to ``jitter``
    (a fraction), so rows that failed together do not all come back together."""
    raw = min(max_s, base_s * (2 ** max(0, attempts - 1)))
    spread = (rng or random).uniform(0.0, jitter)
    return timedelta(seconds=raw * (1.0 - spread))
