"""Adherence measures on hand-computed cases, and the fast interval algorithm checked against a
day-by-day reference on random regimens."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.adherence.findings import (
    ABOVE_PRESCRIPTION,
    PDC_LOW,
    PDC_WATCH,
    SOURCES_DISAGREE,
    DrugMeasure,
    Settings,
    findings,
)
from app.adherence.measures import (
    START,
    Supply,
    refill_check,
    self_report,
    supply_coverage,
)
from app.adherence.regimen import (
    RxEvent,
    RxSpec,
    Segment,
    build_course,
    dose_amounts,
    parse_mg,
    parse_percent,
    units_per_intake,
)

D = date(2024, 1, 1)  # a Monday; January has 31 days, February 29 (2024)


def day(n: int) -> date:
    return D + timedelta(days=n)


def course(units=1.0, on=28, off=0, intakes=1, start=D, end=None, events=()):
    return build_course([RxSpec(start, end, on, off, intakes, units, tuple(events))])


# --- Continuous regimen: gaps, carried-over stock, cap --------------------------------------

def test_refills_on_time_cover_every_day():
    c = course()
    r = supply_coverage(c, [Supply(day(0), 30), Supply(day(30), 30)], date(2024, 2, 29))
    assert (r.windows[START].needed, r.windows[START].covered) == (60, 60)
    assert r.pdc(START) == 1.0 and r.gaps == []


def test_late_refill_leaves_a_gap():
    # 30 days from Jan 1 (to Jan 30); the refill comes on Feb 10: Jan 31 - Feb 9 uncovered.
    r = supply_coverage(course(), [Supply(day(0), 30), Supply(date(2024, 2, 10), 30)], date(2024, 2, 29))
    assert (r.windows[START].needed, r.windows[START].covered) == (60, 50)
    assert r.pdc(START) == pytest.approx(50 / 60)
    # Last 30 days: Jan 31 - Feb 29, covered from Feb 10 only.
    assert r.windows["30"].start == date(2024, 1, 31)
    assert r.pdc("30") == pytest.approx(20 / 30)
    [gap] = r.gaps
    assert (gap.start, gap.end, gap.days, gap.closed_on) == (
        date(2024, 1, 31), date(2024, 2, 9), 10, date(2024, 2, 10))


def test_early_refill_is_carried_forward_not_double_counted():
    # Refill 10 days early: the 10 days left are used first, the new box then lasts to Feb 29.
    supplies = [Supply(day(0), 30), Supply(date(2024, 1, 21), 30)]
    r = supply_coverage(course(), supplies, date(2024, 2, 29))
    assert r.pdc(START) == 1.0 and r.gaps == []
    # Ten days later the stock is gone: 60 covered of 70 needed, a gap still open.
    r = supply_coverage(course(), supplies, date(2024, 3, 10))
    assert (r.windows[START].needed, r.windows[START].covered) == (70, 60)
    assert r.open_gap.start == date(2024, 3, 1) and r.open_gap.days == 10


def test_pdc_is_capped_at_100_percent_and_the_surplus_stays_in_stock():
    r = supply_coverage(course(), [Supply(day(0), 90), Supply(day(14), 30)], day(29))
    assert (r.windows[START].needed, r.windows[START].covered) == (30, 30)
    assert r.pdc(START) == 1.0
    assert r.stock_units == 90 and r.stock_days == 90


def test_supply_before_the_start_counts_from_the_start():
    r = supply_coverage(course(), [Supply(day(-4), 30)], day(29))
    assert r.index_date == D
    assert (r.windows[START].needed, r.windows[START].covered) == (30, 30)


def test_measure_starts_at_the_first_dispensing():
    r = supply_coverage(course(), [Supply(day(4), 30)], day(19))
    assert r.index_date == day(4)
    assert (r.windows[START].needed, r.windows[START].covered) == (16, 16)


def test_no_dispensing_means_no_measure():
    r = supply_coverage(course(), [], day(30))
    assert r.pdc(START) is None and r.pdc("30") is None


# --- Off-weeks -----------------------------------------------------------------------------

def test_off_week_days_are_neither_needed_nor_missed():
    # Capecitabine 14 days on / 7 off, 4 tablets a day: 56 tablets per cycle.
    c = course(units=4, on=14, off=7, intakes=2)
    r = supply_coverage(c, [Supply(day(0), 56), Supply(day(21), 56)], day(41))
    assert (r.windows[START].needed, r.windows[START].covered) == (28, 28)
    assert r.pdc(START) == 1.0  # a calendar count would say 28/42


def test_late_refill_across_an_off_week_counts_only_on_days():
    c = course(units=4, on=14, off=7, intakes=2)
    # Cycle 2 starts Jan 22; the box comes on Jan 25: Jan 22, 23, 24 are missed.
    r = supply_coverage(c, [Supply(day(0), 56), Supply(day(24), 56)], day(41))
    assert (r.windows[START].needed, r.windows[START].covered) == (28, 25)
    [gap] = r.gaps
    assert (gap.start, gap.end, gap.days, gap.closed_on) == (day(21), day(23), 3, day(24))
    assert r.stock_units == 12  # 3 days of the second box are left over


# --- Dose changes, interruptions, end of treatment -------------------------------------------

def test_dose_change_changes_units_per_day_from_its_date():
    # 120 tablets at 4 a day; from Jan 11, 3 a day: 80 left last 26 days (to Feb 5), 2 tablets over.
    c = course(units=4, intakes=2, events=[RxEvent(day(10), "dose_change", 3)])
    r = supply_coverage(c, [Supply(day(0), 120)], date(2024, 2, 9))
    assert (r.windows[START].needed, r.windows[START].covered) == (40, 36)
    assert r.pdc(START) == pytest.approx(0.9)
    assert r.open_gap.start == date(2024, 2, 6) and r.open_gap.days == 4
    assert r.stock_units == pytest.approx(2)


def test_interruption_days_are_not_needed():
    c = course(events=[RxEvent(day(10), "interruption"), RxEvent(day(20), "resumption")])
    r = supply_coverage(c, [Supply(day(0), 30)], date(2024, 2, 9))
    assert (r.windows[START].needed, r.windows[START].covered) == (30, 30)
    assert r.gaps == []


def test_resumption_starts_a_new_cycle():
    c = course(units=1, on=14, off=7, events=[RxEvent(day(7), "interruption"), RxEvent(day(14), "resumption")])
    # Jan 1-7 on, interrupted Jan 8-14, then a new cycle: Jan 15-28 on, Jan 29 - Feb 4 off.
    assert c.on_days(day(0), date(2024, 2, 4)) == 7 + 14
    assert [s.anchor for s in c.segments if s.needed] == [day(0), day(14)]


def test_window_ends_at_the_end_of_treatment():
    c = course(end=day(19))
    r = supply_coverage(c, [Supply(day(0), 10)], date(2024, 3, 1))
    assert r.until == day(19)
    assert (r.windows[START].needed, r.windows[START].covered) == (20, 10)
    assert r.pdc("30") == 0.5 and r.pdc("90") == 0.5  # not 10/61


def test_a_later_prescription_of_the_same_drug_takes_over_from_its_start():
    first = RxSpec(D, None, 28, 0, 1, 1.0)
    second = RxSpec(day(10), None, 28, 0, 2, 2.0)
    c = build_course([second, first])
    assert c.rate_at(day(5)) == 1.0 and c.rate_at(day(15)) == 2.0
    assert c.intakes(day(0), day(19)) == 10 * 1 + 10 * 2


# --- Refill checks -----------------------------------------------------------------------------

def test_refill_check_early_and_late():
    c = course()
    early = refill_check(c, [Supply(day(0), 30)], day(20))
    assert early.left_days == 10 and early.early(0.2) and not early.late(3)
    on_time = refill_check(c, [Supply(day(0), 30)], day(26))
    assert on_time.left_days == 4 and not on_time.early(0.2)
    late = refill_check(c, [Supply(day(0), 30)], day(35))
    assert late.gap_days == 5 and late.late(3) and not late.early(0.2)
    assert refill_check(c, [], day(3)) is None


# --- Self-report -------------------------------------------------------------------------------

def test_self_report_counts_expected_doses_since_the_previous_answer():
    c = course(units=2, intakes=2)
    answers = [(day(7), 2), (day(14), 0), (day(21), 4)]
    # Window from Jan 10: answers of Jan 15 and Jan 22, covering Jan 8 - Jan 21: 14 days x 2 doses.
    r = self_report([c], answers, day(9), day(21))
    assert (r.missed, r.expected, r.answers) == (4, 28, 2)
    assert r.ratio == pytest.approx(1 - 4 / 28)


def test_self_report_on_days_only_and_first_answer_looks_back_a_week():
    c = course(units=4, on=14, off=7, intakes=2)
    # Jan 8 covers Jan 1-7 (7 on-days); Jan 29 covers Jan 8-28: on Jan 8-14 and Jan 22-28.
    r = self_report([c], [(day(7), 1), (day(28), 3)], D, day(28))
    assert (r.missed, r.expected) == (4, 14 + 28)


def test_self_report_is_never_below_zero_and_none_without_answers():
    c = course()
    assert self_report([c], [(day(7), 30)], D, day(7)).ratio == 0.0
    assert self_report([c], [], D, day(7)).ratio is None


# --- Doses as text -----------------------------------------------------------------------------

def test_doses_as_text():
    assert parse_mg("1000 mg") == 1000 and parse_mg("1,5 g") == 1500 and parse_mg("500mg") == 500
    assert parse_mg("1250 mg/m2") is None and parse_mg("2 tablets") is None
    assert parse_percent("75 %") == 75
    assert units_per_intake("1000 mg", "500 mg") == 2 and units_per_intake("1250 mg/m2", "500 mg") == 1
    assert dose_amounts("1000 mg", ["750 mg", "50 %"]) == (1000, [750, 500])
    # Starting dose unknown: the first change in mg is taken as no change, later ones scale from it.
    start, after = dose_amounts(None, ["1500 mg", "1000 mg"])
    assert start == 1.0 and after == [1.0, pytest.approx(1000 / 1500)]


# --- Findings ----------------------------------------------------------------------------------

def test_findings_thresholds():
    cfg = Settings()
    low = findings([DrugMeasure("capecitabine", 0.7, 60)], None, cfg)
    assert [(f.reason_code, f.severity) for f in low] == [(PDC_LOW, "orange")]
    watch = findings([DrugMeasure("imatinib", 0.85, 90)], None, cfg)
    assert [(f.reason_code, f.severity) for f in watch] == [(PDC_WATCH, "yellow")]
    assert findings([DrugMeasure("capecitabine", 0.85, 90)], None, cfg) == []
    disagree = findings([DrugMeasure("imatinib", 0.5, 90)], 0.97, cfg)
    assert {f.reason_code for f in disagree} == {PDC_LOW, SOURCES_DISAGREE}
    assert findings([DrugMeasure("imatinib", 0.5, 10)], 0.97, cfg) == []  # too few days to judge
    over = findings([DrugMeasure("imatinib", 1.0, 90, stock_days=70, last_supply_days=30)], None, cfg)
    assert [(f.reason_code, f.severity) for f in over] == [(ABOVE_PRESCRIPTION, "orange")]


# --- The interval algorithm against a day-by-day reference ------------------------------------

def _reference(course_, supplies, as_of, windows=(30, 90)):
    """Day by day: add the day's supplies, cover the day if the stock holds its need."""
    by_day = {}
    for s in supplies:
        by_day[s.on] = by_day.get(s.on, 0) + s.units
    if not by_day or not course_.segments:
        return None
    until = as_of if course_.end is None else min(as_of, course_.end)
    by_day = {d: u for d, u in by_day.items() if d <= until}
    if not by_day:
        return None
    index = max(min(by_day), course_.start)
    if index > until:
        return None
    starts = {START: index, **{str(n): max(index, until - timedelta(days=n - 1)) for n in windows}}
    counts = {k: [0, 0] for k in starts}
    stock, d = 0.0, min(by_day)
    while d <= until:
        stock += by_day.get(d, 0)
        seg = course_.segment_at(d)
        if d >= index and seg is not None and seg.needed and seg.on_days(d, d):
            covered = stock + 1e-9 >= seg.units_per_day
            if covered:
                stock -= seg.units_per_day
            for k, s in starts.items():
                if d >= s:
                    counts[k][0] += 1
                    counts[k][1] += covered
        d += timedelta(days=1)
    return counts, stock


regimens = st.sampled_from([(28, 0), (14, 7), (21, 7), (28, 14), (5, 2)])
kinds = st.sampled_from(["dose_change", "interruption", "resumption", "stop"])


@settings(max_examples=300, deadline=None)
@given(regimen=regimens, units=st.integers(1, 4), end=st.one_of(st.none(), st.integers(20, 200)),
       events=st.lists(st.tuples(st.integers(0, 200), kinds, st.integers(1, 5)), max_size=4),
       supplies=st.lists(st.tuples(st.integers(-10, 220), st.integers(1, 120)), min_size=1, max_size=8),
       as_of=st.integers(0, 240))
def test_interval_algorithm_matches_the_day_by_day_reference(regimen, units, end, events, supplies, as_of):
    on, off = regimen
    evs = tuple(RxEvent(day(n), kind, float(u) if kind == "dose_change" else None)
                for n, kind, u in sorted(events))
    c = course(units=float(units), on=on, off=off, end=day(end) if end else None, events=evs)
    sup = [Supply(day(n), float(u)) for n, u in supplies]
    expected = _reference(c, sup, day(as_of))
    got = supply_coverage(c, sup, day(as_of))
    if expected is None:
        assert got.pdc(START) is None
        return
    counts, stock = expected
    for key, (needed, covered) in counts.items():
        assert (got.windows[key].needed, got.windows[key].covered) == (needed, covered), key
    assert got.stock_units == pytest.approx(stock)
    assert sum(g.days for g in got.gaps) == counts[START][0] - counts[START][1]


@settings(max_examples=200, deadline=None)
@given(regimen=regimens, anchor=st.integers(0, 30), first=st.integers(0, 90), n=st.integers(1, 60))
def test_nth_on_day_and_on_days_agree(regimen, anchor, first, n):
    on, off = regimen
    seg = Segment(day(anchor), None, day(anchor), on, off, 1.0, 1)
    start = day(anchor + first)
    found = seg.nth_on_day(start, n)
    assert seg.on_days(start, found) == n and seg.on_days(found, found) == 1
