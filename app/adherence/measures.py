"""Adherence measures: pure functions on a course (``regimen.Course``) and plain records.

PDC (proportion of days covered) is counted on *needed* days only: on-days of the cycle, inside
the treatment, outside interruptions. Supplies are in the course's units. Stock is carried
forward: an early refill adds to what is left, it never covers the same day twice; a day is
covered when the stock holds that day's need. The measure starts on the index date (the first
dispensing, or the start of the treatment if it was dispensed before) and ends on ``as_of`` or
on the last day of the treatment, whichever is first; windows of N days end there too. PDC is
capped at 100% by construction (covered days are needed days).

Self-report: each check-in answer gives the doses missed since the previous answer; the doses
expected over the same days are the prescription's intakes on on-days. A first answer covers
the ``lookback`` days before it.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from .regimen import ONE_DAY, Course, on_until

EPSILON = 1e-9
START = "start"


@dataclass(frozen=True)
class Supply:
    on: date
    units: float


@dataclass
class Coverage:
    start: date
    needed: int = 0
    covered: int = 0

    @property
    def pdc(self) -> float | None:
        if self.needed <= 0:
            return None
        return min(1.0, self.covered / self.needed)


@dataclass
class Gap:
    """Needed days without supply, from ``start`` to ``end``; ``closed_on`` is the dispensing that
    ended it (None: still open on the last day measured)."""

    start: date
    end: date
    days: int
    closed_on: date | None = None


@dataclass
class SupplyReport:
    index_date: date | None = None
    until: date | None = None  # last day measured
    windows: dict[str, Coverage] = field(default_factory=dict)
    gaps: list[Gap] = field(default_factory=list)
    stock_units: float = 0.0  # left at the end of ``until`` if taken as prescribed
    stock_days: float = 0.0  # the same, in on-days at the rate in force then

    def pdc(self, window: str) -> float | None:
        cov = self.windows.get(window)
        return cov.pdc if cov else None

    @property
    def open_gap(self) -> Gap | None:
        return self.gaps[-1] if self.gaps and self.gaps[-1].closed_on is None else None


def _nth(first: int, n: int, anchor: int, on: int, length: int) -> int:
    """The ``n``-th on-day (1-based) from ``first``, as an ordinal."""
    if on == length:
        return first + n - 1
    pos = (first - anchor) % length
    left = on - pos if pos < on else 0
    if n <= left:
        return first + n - 1
    cycles, rest = divmod(n - left - 1, on)
    return first + (length - pos) + cycles * length + rest


def supply_coverage(course: Course, supplies: Iterable[Supply], as_of: date,
                    windows: Sequence[int] = (30, 90)) -> SupplyReport:
    """PDC over the last ``windows`` days and since the index date, the gaps, and the stock left.

    Event-driven: the stock changes only at supplies and the need only at segment boundaries,
    so the days between two such points are counted at once (dates as ordinals)."""
    by_day: dict[int, float] = {}
    for s in supplies:
        if s.units > 0:
            key = s.on.toordinal()
            by_day[key] = by_day.get(key, 0.0) + s.units
    return coverage_by_ordinal(course, by_day, as_of, windows)


def coverage_by_ordinal(course: Course, by_day: dict[int, float], as_of: date,
                        windows: Sequence[int] = (30, 90)) -> SupplyReport:
    """``supply_coverage`` with the supplies already summed per day (ordinal -> units)."""
    report = SupplyReport()
    segs = course.ordinal_segments
    if not segs:
        return report
    until = min(as_of.toordinal(), segs[-1][1])
    by_day = {d: u for d, u in by_day.items() if d <= until and u > 0}
    if not by_day:
        return report
    first_supply = min(by_day)
    index = max(first_supply, segs[0][0])
    if index > until:
        return report
    keys = [START] + [str(n) for n in windows]
    starts = [index] + [max(index, until - n + 1) for n in windows]
    # Window starts are breakpoints: the totals reached at a window's start are subtracted from
    # the final totals, so the loop keeps one running count whatever the number of windows.
    marks: dict[int, tuple[int, int]] = {}
    total_needed = total_covered = 0

    points = set(by_day)
    points.update(starts)
    points.add(until + 1)
    for seg in segs:
        points.add(seg[0])
        points.add(seg[1] + 1)
    ordered = sorted(p for p in points if first_supply <= p <= until + 1)
    seg_i, n_segs, stock, gap, gaps = 0, len(segs), 0.0, None, []
    s0, e0, anchor, on, length, rate = segs[0]
    for i in range(len(ordered) - 1):
        first, last = ordered[i], ordered[i + 1] - 1
        stock += by_day.get(first, 0.0)
        if first < index:
            continue
        if first not in marks:
            marks[first] = (total_needed, total_covered)
        if first > e0:
            while seg_i < n_segs and segs[seg_i][1] < first:
                seg_i += 1
            if seg_i >= n_segs:
                break
            s0, e0, anchor, on, length, rate = segs[seg_i]
        if first < s0 or rate <= 0:
            continue
        if on == length:
            needed = last - first + 1
        else:
            needed = on_until(last, anchor, on, length) - on_until(first - 1, anchor, on, length)
            if not needed:
                continue
        covered = int(stock / rate + EPSILON)
        if covered >= needed:
            covered = needed
            stock -= needed * rate
        else:
            stock = stock - covered * rate if covered else stock
        total_needed += needed
        total_covered += covered
        if covered and gap is not None:
            gap[3], gap = first, None
        if covered < needed:
            end = _nth(first, needed, anchor, on, length)
            if gap is None:
                gap = [_nth(first, covered + 1, anchor, on, length), end, needed - covered, None]
                gaps.append(gap)
            else:
                gap[1], gap[2] = end, gap[2] + needed - covered
    if stock < 0:
        stock = 0.0
    windows_out = {}
    for key, start in zip(keys, starts):
        before_n, before_c = marks.get(start, (total_needed, total_covered))
        windows_out[key] = Coverage(date.fromordinal(start), total_needed - before_n, total_covered - before_c)
    report.windows = windows_out
    report.index_date, report.until = date.fromordinal(index), date.fromordinal(until)
    report.gaps = [Gap(date.fromordinal(a), date.fromordinal(b), n, date.fromordinal(c) if c else None)
                   for a, b, n, c in gaps]
    report.stock_units = stock
    rate = course.rate_at(report.until)
    report.stock_days = stock / rate if rate else 0.0
    return report


@dataclass(frozen=True)
class RefillCheck:
    """A new dispensing seen against the stock the earlier ones should have left."""

    left_days: float  # on-days of supply still in hand the day before
    previous_days: float  # on-days of the previous dispensing
    gap_days: int  # needed days without supply just before it

    def early(self, fraction: float) -> bool:
        return self.previous_days > 0 and self.left_days > fraction * self.previous_days

    def late(self, grace_days: int) -> bool:
        return self.gap_days > grace_days


def refill_check(course: Course, earlier: Sequence[Supply], on: date) -> RefillCheck | None:
    """Compare a dispensing on ``on`` with the supplies recorded before it, up to that day
    (None: nothing to compare). A box already handed over the same day is still all there."""
    before = [s for s in earlier if s.on <= on]
    if not before or not course.segments:
        return None
    previous = max(before, key=lambda s: s.on)
    rate_prev = course.rate_at(previous.on)
    report = supply_coverage(course, [s for s in before if s.on < on], on - ONE_DAY, windows=())
    stock = sum(s.units for s in before if s.on == on)
    if report.until is None or report.until >= on - ONE_DAY:
        stock += report.stock_units  # (after the end of the treatment nothing is "still covered")
    rate = course.rate_at(on)
    gap = report.open_gap
    return RefillCheck(left_days=stock / rate if rate else 0.0,
                       previous_days=previous.units / rate_prev if rate_prev else 0.0,
                       gap_days=gap.days if gap else 0)


# --- Self-report ------------------------------------------------------------------------------

@dataclass(frozen=True)
class SelfReport:
    missed: int = 0
    expected: int = 0
    answers: int = 0

    @property
    def ratio(self) -> float | None:
        """Share of the expected doses taken (0..1), or None when no dose was expected."""
        if self.expected <= 0:
            return None
        return max(0.0, 1.0 - self.missed / self.expected)


def expected_intakes(courses: Iterable[Course], first: date, last: date) -> int:
    if last < first:
        return 0
    return sum(course.intakes(first, last) for course in courses)


def self_report_from_bounds(courses: Sequence[Course], *, missed: int, answers: int,
                            first_answer: date | None, last_answer: date | None,
                            previous_answer: date | None, lookback_days: int) -> SelfReport:
    """The self-report of consecutive answers, from their aggregates: the days covered run from
    the answer before the first one (or ``lookback_days`` before it) to the day before the last."""
    if not answers or first_answer is None or last_answer is None:
        return SelfReport()
    since = previous_answer if previous_answer is not None else first_answer - timedelta(days=lookback_days)
    expected = expected_intakes(courses, since, last_answer - ONE_DAY)
    return SelfReport(missed=max(0, missed), expected=expected, answers=answers)


def self_report(courses: Sequence[Course], answers: Iterable[tuple[date, int]], window_start: date,
                as_of: date, lookback_days: int = 7) -> SelfReport:
    """Doses missed against doses expected, for the answers given in [window_start, as_of]."""
    ordered = sorted(answers)
    inside = [(d, n) for d, n in ordered if window_start <= d <= as_of]
    if not inside:
        return SelfReport()
    before = [d for d, _ in ordered if d < window_start]
    return self_report_from_bounds(
        courses, missed=sum(n for _, n in inside), answers=len(inside), first_answer=inside[0][0],
        last_answer=inside[-1][0], previous_answer=before[-1] if before else None,
        lookback_days=lookback_days)
