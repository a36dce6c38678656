"""Shared builders for the on-call tests: a fixed clock, shifts, red alerts, page lookups."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from app.core.time import set_clock
from app.extensions import db
from app.notifications.models import OutboxEntry
from app.triage.models import AlertAction
from app.triage.paging import AlertPage

# A Monday afternoon (14:00 in Paris).
T0 = datetime(2025, 3, 10, 13, 0, tzinfo=timezone.utc)
# Words of any symptom or clinical finding: none may appear in a page.
SYMPTOM_WORDS = ("fever", "fièvre", "fievre", "temperature", "température", "39", "diarrh", "vomit",
                 "nausea", "nausée", "rash", "bleed", "saign", "chest", "thorac", "breath", "respir",
                 "pain", "douleur", "mucos", "fatigue", "capecitabine", "neutro", "symptom")


def at(minutes: float = 0, start: datetime = T0) -> datetime:
    when = start + timedelta(minutes=minutes)
    set_clock(when)
    return when


def shift(site, prof, start: datetime, end: datetime):
    from app.triage.oncall import add_shift

    return add_shift(site, professional_id=prof.id, starts_at=start, ends_at=end)


def red_alert(patient, summary: str = "Fever 39.2 C on capecitabine", reason: str = "fever_high"):
    from app.triage.services import raise_alert

    return raise_alert(patient_id=patient.id, severity="red", source="checkin", reason_code=reason,
                       summary=summary)


def pages_of(alert_id: int) -> list[AlertPage]:
    return list(db.session.scalars(select(AlertPage).where(AlertPage.alert_id == alert_id)
                                   .order_by(AlertPage.level)))


def page_bodies(alert_id: int | None = None) -> list[OutboxEntry]:
    query = select(OutboxEntry).where(OutboxEntry.purpose == "page").order_by(OutboxEntry.id)
    if alert_id is not None:
        query = query.where(OutboxEntry.ref == f"alert:{alert_id}")
    return list(db.session.scalars(query))


def actions(alert_id: int, kind: str) -> list[AlertAction]:
    return list(db.session.scalars(select(AlertAction).where(AlertAction.alert_id == alert_id,
                                                             AlertAction.kind == kind)
                                   .order_by(AlertAction.id)))


import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def english(app, circuit, db):
    """These tests read the English texts: the professionals and the site default speak English
    (French is the platform default; tests/test_oncall_paging.py checks the French pages too)."""
    saved = app.config["BABEL_DEFAULT_LOCALE"]
    app.config["BABEL_DEFAULT_LOCALE"] = "en"
    for prof in (circuit.nurse, circuit.oncologist, circuit.hospital_pharmacist, circuit.other_nurse,
                 circuit.other_oncologist, circuit.admin):
        prof.language = "en"
    db.session.commit()
    yield
    app.config["BABEL_DEFAULT_LOCALE"] = saved
