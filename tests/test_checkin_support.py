"""Shared helpers of the check-in tests (no test here): a fixed clock, the circuit, SMS in and out."""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from app.core.time import set_clock
from app.extensions import db as _db
from app.notifications.inbound import receive_sms
from app.notifications.models import OutboxEntry
from app.pathways.checkins.models import Answer, CheckIn
from app.pathways.checkins.planning import plan_checkins
from app.pathways.checkins.start import start_due_checkins
from tests.conftest import Circuit

# Monday 1 March 2027, 10:30 in Paris (winter time): the default slot (Monday 10:00) is due.
MONDAY = datetime(2027, 3, 1, 9, 30, tzinfo=timezone.utc)
OUR_NUMBER = "+33700000001"
_sids = itertools.count(1)


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start
        set_clock(start)

    def set(self, when: datetime) -> datetime:
        self.now = when
        set_clock(when)
        return when

    def advance(self, **delta: float) -> datetime:
        return self.set(self.now + timedelta(**delta))


@pytest.fixture()
def clock(db):
    clock = Clock(MONDAY)
    yield clock
    set_clock(None)


@pytest.fixture()
def world(db, clock):
    """The usual circuit, created on MONDAY (patients started 30 days before)."""
    circuit = Circuit()
    db.session.commit()
    return circuit


def sms(patient_or_phone, body: str) -> list[str]:
    """An inbound SMS through the transport, as the webhook hands it over (not committed)."""
    phone = getattr(patient_or_phone, "phone", patient_or_phone)
    return receive_sms(from_number=phone, to_number=OUR_NUMBER, body=body, provider_sid=f"SMtest{next(_sids):08d}")


def checkins_of(patient) -> list[CheckIn]:
    return list(_db.session.scalars(select(CheckIn).where(CheckIn.patient_id == patient.id)
                                    .order_by(CheckIn.scheduled_at)))


def answers_of(checkin: CheckIn) -> dict[str, Answer]:
    return {a.item_code: a for a in _db.session.scalars(select(Answer).where(Answer.checkin_id == checkin.id))}


def outbox_for(checkin: CheckIn) -> list[OutboxEntry]:
    return list(_db.session.scalars(select(OutboxEntry).where(OutboxEntry.ref == f"checkin:{checkin.id}")
                                    .order_by(OutboxEntry.id)))


def start_one(patient, now: datetime | None = None) -> CheckIn:
    """Plan and start the check-ins due now; return ``patient``'s current one."""
    plan_checkins(now)
    start_due_checkins(now)
    _db.session.expire_all()
    rows = [c for c in checkins_of(patient) if c.started_at is not None]
    assert rows, "the patient's check-in did not start"
    return rows[-1]
