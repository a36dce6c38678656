"""Out of hours: an orange alert that told the patient to pause the treatment until the nurse calls
pages the on-call team (the default) or waits (the site's choice); public holidays count no
working hours."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from app.core.time import set_clock
from app.notifications.models import OutboxEntry
from app.pathways.checkins import templates as t
from app.pathways.checkins.models import CheckIn
from app.pathways.checkins.start import start_checkin
from app.triage import oncall
from app.triage.models import Alert
from app.triage.out_of_hours import holiday_calendar, is_working_time, pages_out_of_hours
from app.triage.paging import AlertPage
from app.triage.services import add_working_hours, raise_alert
from tests.conftest import Circuit
from tests.test_checkin_support import sms

PARIS = ZoneInfo("Europe/Paris")
FRIDAY_20H = datetime(2025, 3, 14, 20, 0, tzinfo=PARIS)  # after the working day, before the weekend
VICTORY_DAY_10H = datetime(2025, 5, 8, 10, 0, tzinfo=PARIS)  # Thursday 8 May: a French public holiday
TUESDAY_10H = datetime(2025, 5, 13, 10, 0, tzinfo=PARIS)
PAUSE = {"item": "diarrhoea", "value": 5, "grade": 2, "rule": "grading rule v1", "instruction": "pause_until_call"}


@pytest.fixture()
def circuit(db):
    """The usual circuit, created on the test's days (patients on capecitabine for 30 days)."""
    set_clock(FRIDAY_20H.astimezone(timezone.utc))
    circuit = Circuit()
    db.session.commit()
    yield circuit
    set_clock(None)


@pytest.fixture()
def on_call(circuit, db):
    def at(when: datetime):
        set_clock(when.astimezone(timezone.utc))
        oncall.add_shift(circuit.site, professional_id=circuit.oncologist.id,
                         starts_at=when - timedelta(hours=2), ends_at=when + timedelta(hours=12))
        db.session.commit()
    return at


def _orange(patient, detail=PAUSE) -> Alert:
    return raise_alert(patient_id=patient.id, severity="orange", source="checkin", reason_code="diarrhoea_grade_2",
                       summary="Check-in: diarrhoea = 2 (grade 2)", detail=dict(detail), checkin_id=None)


def _pages(alert_id):
    from app.extensions import db

    return list(db.session.scalars(select(AlertPage).where(AlertPage.alert_id == alert_id)))


def test_friday_evening_capecitabine_grade_2_diarrhoea_pages_the_on_call_team(circuit, db, on_call):
    """Through the check-in conversation: the grading rule tells the patient to pause capecitabine
    until the nurse calls; with the default setting the on-call oncologist is paged at once."""
    on_call(FRIDAY_20H)
    patient = circuit.patient
    now = FRIDAY_20H.astimezone(timezone.utc)
    checkin = CheckIn(patient_id=patient.id, period_key="2025-W11", sequence="S2", scheduled_at=now,
                      closes_at=now + timedelta(days=7), channel="sms", status="scheduled")
    db.session.add(checkin)
    db.session.flush()
    start_checkin(checkin, now, respect_window=False)
    for _ in range(10):  # "0" to every question before the diarrhoea one
        db.session.refresh(checkin)
        if checkin.current_code == "diarrhoea":
            break
        sms(patient, "0")
    pause = sms(patient, "5")[0]  # 5 stools a day above usual: diarrhoea grade 2 on capecitabine
    assert pause == t.render("pause_until_call", "fr", hospital_phone=patient.site.hospital_phone)
    db.session.commit()
    alert = db.session.scalar(select(Alert).where(Alert.patient_id == patient.id, Alert.severity == "orange"))
    assert alert.detail["instruction"] == "pause_until_call"
    [page] = _pages(alert.id)
    assert (page.level, page.target, page.professional_id) == (0, "on_call", circuit.oncologist.id)
    entry = db.session.get(OutboxEntry, page.outbox_id)
    assert (entry.purpose, entry.priority, entry.to_number) == ("page", 0, circuit.oncologist.phone)
    # Its working-hours deadline is unchanged: Monday 16:00 (8 working hours from Monday 08:00).
    assert alert.due_at.astimezone(PARIS) == datetime(2025, 3, 17, 16, 0, tzinfo=PARIS)


def test_the_site_may_choose_to_wait_for_working_hours(circuit, db, on_call):
    on_call(FRIDAY_20H)
    oncall.save_policy(circuit.site, ack_minutes=30, fallback_phone="04 72 11 22 33", fallback_label="Standard",
                       out_of_hours_orange="wait")
    db.session.commit()
    alert = _orange(circuit.patient)
    assert _pages(alert.id) == []


def test_in_working_hours_or_without_an_instruction_nobody_is_paged(circuit, db, on_call):
    on_call(TUESDAY_10H)
    assert _pages(_orange(circuit.patient).id) == []
    set_clock(FRIDAY_20H.astimezone(timezone.utc))
    assert _pages(_orange(circuit.patient, {k: v for k, v in PAUSE.items() if k != "instruction"}).id) == []
    assert _pages(_orange(circuit.patient).id) != []


def test_a_french_public_holiday_counts_no_working_hours(circuit, db, on_call):
    on_call(VICTORY_DAY_10H)
    alert = raise_alert(patient_id=circuit.patient.id, severity="orange", source="checkin", reason_code="nausea",
                        summary="Check-in: nausea = 2 (grade 2)")
    # 8 working hours from a Thursday holiday at 10:00: none that day, so Friday 08:00 to 16:00.
    assert alert.due_at.astimezone(PARIS) == datetime(2025, 5, 9, 16, 0, tzinfo=PARIS)
    # The same on an ordinary Thursday would be due the same day at 18:00.
    ordinary = datetime(2025, 5, 15, 10, 0, tzinfo=PARIS)
    assert add_working_hours(ordinary, 8, "Europe/Paris", 8, 18, holiday_calendar("FR")).astimezone(PARIS) == \
        datetime(2025, 5, 15, 18, 0, tzinfo=PARIS)
    # A holiday is out of hours: an instruction to the patient that day pages the on-call team.
    assert _pages(_orange(circuit.patient).id) != []


def test_a_subdivision_adds_its_own_holidays(circuit, db):
    stephen = datetime(2025, 12, 26, 10, 0, tzinfo=PARIS)  # a holiday in Alsace-Moselle only
    kwargs = dict(tz_name="Europe/Paris", day_start=8, day_end=18)
    assert is_working_time(stephen, closed=holiday_calendar("FR"), **kwargs)
    assert not is_working_time(stephen, closed=holiday_calendar("FR", "57"), **kwargs)
    policy = oncall.save_policy(circuit.site, ack_minutes=30, fallback_phone="04 72 11 22 33",
                                fallback_label="Standard", holiday_subdivision="57")
    assert (policy.holiday_country, policy.holiday_subdivision) == ("FR", "57")
    assert not pages_out_of_hours(severity="orange", detail=PAUSE, policy=oncall.effective_policy(circuit.site.id),
                                  tz_name="Europe/Paris", now=datetime(2025, 12, 29, 10, 0, tzinfo=PARIS))
    assert pages_out_of_hours(severity="orange", detail=PAUSE, policy=oncall.effective_policy(circuit.site.id),
                              tz_name="Europe/Paris", now=stephen)


def test_an_unknown_holiday_calendar_is_refused(circuit, db):
    from app.core.errors import ValidationFailed

    with pytest.raises(ValidationFailed) as exc:
        oncall.save_policy(circuit.site, ack_minutes=30, fallback_phone="04 72 11 22 33", fallback_label="Standard",
                           holiday_subdivision="99")
    assert set(exc.value.errors) == {"holiday_subdivision"}
