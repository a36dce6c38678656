"""A drug's treatment as a timeline of regimen segments, and the dose arithmetic behind it.

Pure functions on plain data (no database, no Flask): the measures and their tests use them.

A *segment* is a stretch of days with one cycle (days on / days off counted from an anchor day)
and one need: ``units_per_day`` units on each on-day (tablets, milligrams: any unit, as long as
the supplies use the same), ``intakes_per_day`` intakes (for the self-report). While the
treatment is interrupted nothing is needed. As in ``prescription_phase``, a resumption starts a
new cycle on its day, and a stop counts as an interruption.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache

DOSE_CHANGE = "dose_change"
INTERRUPTION = "interruption"
RESUMPTION = "resumption"
STOP = "stop"
ONE_DAY = timedelta(days=1)
OPEN_END = date.max.toordinal() - 1


def on_until(x: int, anchor: int, on: int, length: int) -> int:
    """On-days in [anchor, x] of a cycle of ``length`` days starting with ``on`` days on (days as
    ordinals: the measures' hot path works on integers only)."""
    span = x - anchor + 1
    if span <= 0:
        return 0
    if on == length:
        return span
    cycles, rest = divmod(span, length)
    return cycles * on + (rest if rest < on else on)  # noqa: FURB136 (hot path: no call)


@dataclass(frozen=True)
class Segment:
    start: date
    end: date | None  # inclusive; None: open-ended
    anchor: date  # day 0 of the cycle, never after ``start``
    days_on: int
    days_off: int
    units_per_day: float  # needed on each on-day; 0 while interrupted
    intakes_per_day: int  # doses taken on each on-day; 0 while interrupted

    @property
    def needed(self) -> bool:
        return self.units_per_day > 0

    def contains(self, day: date) -> bool:
        return self.start <= day and (self.end is None or day <= self.end)

    def on_days(self, first: date, last: date) -> int:
        """Needed on-days in [first, last] within this segment."""
        if not self.needed:
            return 0
        first = max(first, self.start)
        if self.end is not None:
            last = min(last, self.end)
        if last < first:
            return 0
        anchor, length = self.anchor.toordinal(), self.days_on + self.days_off
        return (on_until(last.toordinal(), anchor, self.days_on, length)
                - on_until(first.toordinal() - 1, anchor, self.days_on, length))

    def nth_on_day(self, first: date, n: int) -> date:
        """The ``n``-th on-day (1-based) counted from ``first`` (the cycle goes on past ``end``)."""
        if not self.days_off:
            return first + timedelta(days=n - 1)
        length = self.days_on + self.days_off
        pos = (first - self.anchor).days % length
        left_in_cycle = self.days_on - pos if pos < self.days_on else 0
        if n <= left_in_cycle:
            return first + timedelta(days=n - 1)
        n -= left_in_cycle
        next_cycle = first + timedelta(days=length - pos)
        cycles, rest = divmod(n - 1, self.days_on)
        return next_cycle + timedelta(days=cycles * length + rest)

    def is_on(self, day: date) -> bool:
        return self.contains(day) and self.on_days(day, day) == 1


@dataclass(frozen=True)
class Course:
    """One drug's segments, sorted and not overlapping."""

    segments: tuple[Segment, ...] = ()

    @property
    def start(self) -> date | None:
        return self.segments[0].start if self.segments else None

    @property
    def ordinal_segments(self) -> list[tuple[int, int, int, int, int, float]]:
        """(start, end, anchor, days on, cycle length, units per on-day), days as ordinals; an
        open end is the last representable day. For the measures' hot loop: computed once, and
        cached by hand: ``functools.cached_property`` takes a lock on each first read before 3.12,
        which costs more than the list for the 47,000 courses of a night."""
        cached = self.__dict__.get("_ordinal_segments")
        if cached is None:
            cached = [(s.start.toordinal(), s.end.toordinal() if s.end else OPEN_END, s.anchor.toordinal(),
                       s.days_on, s.days_on + s.days_off, s.units_per_day) for s in self.segments]
            object.__setattr__(self, "_ordinal_segments", cached)  # a frozen dataclass
        return cached

    @property
    def end(self) -> date | None:
        """Last day of the treatment (None: ongoing)."""
        if not self.segments:
            return None
        return self.segments[-1].end

    def segment_at(self, day: date) -> Segment | None:
        for seg in self.segments:
            if seg.contains(day):
                return seg
        return None

    def rate_at(self, day: date) -> float:
        """Units per on-day of the regimen in force on ``day`` (the last one before an interruption,
        the first one before the start): what a supply dispensed that day was counted with."""
        if len(self.segments) == 1:
            return self.segments[0].units_per_day
        before = [s for s in self.segments if s.needed and s.start <= day]
        if before:
            return before[-1].units_per_day
        after = [s for s in self.segments if s.needed]
        return after[0].units_per_day if after else 0.0

    def on_days(self, first: date, last: date) -> int:
        return sum(seg.on_days(first, last) for seg in self.segments)

    def intakes(self, first: date, last: date) -> int:
        """Doses the prescription asks for in [first, last]."""
        lo, hi, total = first.toordinal(), last.toordinal(), 0
        for (s0, e0, anchor, on, length, rate), seg in zip(self.ordinal_segments, self.segments):
            a, b = max(lo, s0), min(hi, e0)
            if b >= a and rate > 0:
                total += (on_until(b, anchor, on, length) - on_until(a - 1, anchor, on, length)) * seg.intakes_per_day
        return total


@dataclass(frozen=True)
class RxEvent:
    on: date
    kind: str  # dose_change | interruption | resumption | stop
    units_per_day: float | None = None  # after a dose change


@dataclass(frozen=True)
class RxSpec:
    """One prescription of the drug, its need at the start and its dated events (in order)."""

    start: date
    end: date | None
    days_on: int
    days_off: int
    intakes_per_day: int
    units_per_day: float
    events: tuple[RxEvent, ...] = field(default=())


def _pieces(rx: RxSpec) -> list[Segment]:
    """Segments of one prescription, before any clipping by a later prescription."""
    out: list[Segment] = []
    anchor, units, paused, since = rx.start, rx.units_per_day, False, rx.start

    def close(until: date | None) -> None:
        if until is not None and until < since:
            return
        out.append(Segment(since, until, anchor, rx.days_on, rx.days_off,
                           0.0 if paused else units, 0 if paused else rx.intakes_per_day))

    for ev in rx.events:
        if rx.end is not None and ev.on > rx.end:
            break
        on = max(ev.on, rx.start)
        new_anchor, new_units, new_paused = anchor, units, paused
        if ev.kind == DOSE_CHANGE and ev.units_per_day is not None:
            new_units = ev.units_per_day
        elif ev.kind in (INTERRUPTION, STOP):
            new_paused = True
        elif ev.kind == RESUMPTION and paused:
            new_paused, new_anchor = False, on
        if (new_anchor, new_units, new_paused) == (anchor, units, paused):
            continue
        close(on - ONE_DAY)
        anchor, units, paused, since = new_anchor, new_units, new_paused, on
    close(rx.end)
    return out


def build_course(prescriptions: Iterable[RxSpec]) -> Course:
    """Join a drug's prescriptions; where two overlap, the later-starting one wins from its start."""
    rxs = sorted(prescriptions, key=lambda r: r.start)
    segments: list[Segment] = []
    for i, rx in enumerate(rxs):
        limit = rxs[i + 1].start - ONE_DAY if i + 1 < len(rxs) else None
        for seg in _pieces(rx):
            end = seg.end
            if limit is not None:
                if seg.start > limit:
                    continue
                end = limit if end is None else min(end, limit)
            segments.append(Segment(seg.start, end, seg.anchor, seg.days_on, seg.days_off,
                                    seg.units_per_day, seg.intakes_per_day))
    return Course(tuple(segments))


# --- Doses written as text -------------------------------------------------------------------

_MASS = re.compile(r"(\d+(?:[.,]\d+)?)\s*(mg|g|µg|μg|mcg|ug)", re.IGNORECASE)
_PERCENT = re.compile(r"(\d+(?:[.,]\d+)?)\s*%")
_TO_MG = {"mg": 1.0, "g": 1000.0, "µg": 0.001, "μg": 0.001, "mcg": 0.001, "ug": 0.001}


@lru_cache(maxsize=1024)  # a handful of distinct doses, parsed for every patient every night
def parse_mg(text: str | None) -> float | None:
    """"1000 mg", "1,5 g", "500mg" -> milligrams; anything else ("1250 mg/m2", "2 tablets") -> None."""
    match = _MASS.fullmatch((text or "").strip())
    if not match:
        return None
    value = float(match.group(1).replace(",", "."))
    return value * _TO_MG[match.group(2).lower()] if value > 0 else None


@lru_cache(maxsize=1024)
def parse_percent(text: str | None) -> float | None:
    """"75 %" -> 75.0 (a dose given as a share of the starting dose)."""
    match = _PERCENT.fullmatch((text or "").strip())
    if not match:
        return None
    value = float(match.group(1).replace(",", "."))
    return value if value > 0 else None


def dose_amounts(initial: str | None, changes: Sequence[str]) -> tuple[float, list[float]]:
    """The starting dose and the dose after each change, on one scale.

    Milligrams when the starting dose is known in mg; otherwise a relative scale where the
    starting dose is 1.0. A change given as a percentage is a share of the starting dose. When
    the starting dose is unknown, the first change in mg is taken as no change (the ratio is
    unknown) and later changes in mg are scaled from it. An unreadable change keeps the dose.
    """
    base = parse_mg(initial)
    start = base if base is not None else 1.0
    per_mg = 1.0 if base is not None else None  # scale units per milligram
    current, out = start, []
    for text in changes:
        pct, mg = parse_percent(text), parse_mg(text)
        if pct is not None:
            current = start * pct / 100
        elif mg is not None:
            if per_mg is None:
                per_mg = current / mg
            current = mg * per_mg
        out.append(current)
    return start, out


def units_per_intake(dose: str | None, strength: str | None) -> float:
    """Units (tablets, capsules) per intake: dose / strength when both are masses, else 1."""
    dose_mg, strength_mg = parse_mg(dose), parse_mg(strength)
    if dose_mg is None or strength_mg is None:
        return 1.0
    return dose_mg / strength_mg
