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
            while (wait := self.wait_s()) > 0:
                self._sleep(wait)
            self.consume()

    def wait_s(self) -> float:
        """Seconds until a token is there (0: now); takes nothing. The caller holds the lock."""
        if self.rate <= 0:
            return 0.0
        now = self._monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self._updated) * self.rate)
        self._updated = now
        if self.tokens >= 1.0 - 1e-9:  # float sums of waits land a hair under 1
            return 0.0
        return (1.0 - self.tokens) / self.rate

    def consume(self) -> None:
        """Take the token ``wait_s`` said was there. The caller holds the lock."""
        if self.rate > 0:
            self.tokens = max(0.0, self.tokens - 1.0)


class SendPacer:
    """At most ``floor(rate)`` sends in any second *as the provider counts them*, spaced by a token
    bucket; shared by the dispatcher's sending threads, in two lanes.

    The provider stamps a request somewhere between its start and its answer, so a send may
    start only when the send ``floor(rate)`` places before it has been answered at least one
    second ago: then no two sends that far apart can be stamped within the same second, whatever
    the network's jitter. The price is the round trip: the sustained rate is
    ``rate / (1 + round trip in seconds)`` at most (about 99.5/s for 100/s at 5 ms).

    Lanes: an urgent send (``acquire(urgent=True)``: a safety reply, a page) takes the next free
    slot before any routine send that waits, and routine sends together never use more than
    ``rate * (1 - reserve)`` (a second token bucket), so the rest of the rate is free for urgent
    sends at any moment, whatever the backlog. Both lanes share the one-second window above, so
    the provider's limit holds for their sum. A routine send waiting for its slot gives way as
    soon as an urgent one asks (its wait is a condition wait, woken by every answer and every
    urgent arrival), so an urgent send waits for at most one window: the sends in flight.

    ``acquire()`` blocks until a send may start and returns a ticket; ``done(ticket)`` when its
    answer (or error) came back. rate <= 0: no limit.
    """

    WINDOW_S = 1.0

    def __init__(self, rate: float, burst: float = 1.0, monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, reserve: float = 0.0):
        if not 0.0 <= reserve < 1.0:
            raise ValueError("the urgent reserve is a fraction of the rate, from 0 to below 1")
        self.rate = rate
        self.reserve = reserve
        self.per_window = max(1, math.floor(rate)) if rate > 0 else 0
        self.bucket = TokenBucket(rate, burst=burst, monotonic=monotonic, sleep=sleep)
        self.routine_bucket = (TokenBucket(rate * (1.0 - reserve), burst=burst * (1.0 - reserve),
                                           monotonic=monotonic, sleep=sleep)
                               if rate > 0 and reserve > 0 else None)
        self._monotonic, self._sleep = monotonic, sleep
        # With the real clock a wait is a condition wait, cut short by an answer or an urgent send.
        self._interruptible = sleep is time.sleep and monotonic is time.monotonic
        self._tickets: deque[list[float | None]] = deque()  # [answered at] of the last sends, in start order
        self._state = threading.Condition()
        self._urgent_waiting = 0

    def acquire(self, urgent: bool = False) -> list[float | None] | None:
        if self.rate <= 0:
            return None
        with self._state:
            if urgent:
                self._urgent_waiting += 1
            try:
                while True:
                    if not urgent and self._urgent_waiting:
                        self._state.wait()  # an urgent send goes first
                        continue
                    wait = self._wait_s(urgent)
                    if wait == 0.0:
                        self.bucket.consume()
                        if not urgent and self.routine_bucket is not None:
                            self.routine_bucket.consume()
                        ticket: list[float | None] = [None]
                        self._tickets.append(ticket)
                        return ticket
                    self._pause(wait)
            finally:
                if urgent:
                    self._urgent_waiting -= 1
                    self._state.notify_all()

    def _wait_s(self, urgent: bool) -> float | None:
        """0 when a send of this lane may start now, else the seconds to wait (None: until the
        send at the head of the window is answered)."""
        while len(self._tickets) >= self.per_window:
            answered = self._tickets[0][0]
            if answered is None:
                return None  # that send is still in flight
            left = answered + self.WINDOW_S - self._monotonic()
            if left > 0:
                return left
            self._tickets.popleft()
        wait = self.bucket.wait_s()
        if not urgent and self.routine_bucket is not None:
            wait = max(wait, self.routine_bucket.wait_s())
        return wait

    def _pause(self, seconds: float | None) -> None:
        if self._interruptible or seconds is None:
            self._state.wait(seconds)
            return
        self._state.release()  # an injected (test) clock: sleep on it
        try:
            self._sleep(seconds)
        finally:
            self._state.acquire()

    def done(self, ticket: list[float | None] | None) -> None:
        if ticket is None:
            return
        with self._state:
            ticket[0] = self._monotonic()
            self._state.notify_all()


def backoff_delay(attempts: int, *, base_s: float, max_s: float, jitter: float,
                  rng: random.Random | None = None) -> timedelta:
    """Capped exponential backoff after the ``attempts``-th failure, shortened by up to ``jitter``
    (a fraction), so rows that failed together do not all come back together."""
    raw = min(max_s, base_s * (2 ** max(0, attempts - 1)))
    spread = (rng or random).uniform(0.0, jitter)
    return timedelta(seconds=raw * (1.0 - spread))
