"""Calendar months as 'YYYY-MM' strings."""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def parse_month(value: str) -> date:
    """First day of the month 'YYYY-MM'; ValueError otherwise."""
    match = _MONTH.match(value or "")
    if not match:
        raise ValueError(f"not a month: {value!r}")
    return date(int(match.group(1)), int(match.group(2)), 1)


def month_key(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def next_month(first: date) -> date:
    return date(first.year + first.month // 12, first.month % 12 + 1, 1)


def previous_month(day: date) -> date:
    first = day.replace(day=1)
    return (first - timedelta(days=1)).replace(day=1)


def month_index(start: date, first: date) -> int:
    """Month of follow-up of ``first`` for an enrolment started on ``start`` (1 = start month)."""
    return (first.year - start.year) * 12 + first.month - start.month + 1


def utc_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
