"""Which questions a check-in asks: the drug's symptoms and the day of the cycle."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.extensions import db as _db
from app.pathways.checkins.models import QuestionnaireItem
from app.pathways.checkins.questionnaire import (
    DEFAULT_ITEMS,
    Treatment,
    current_treatment,
    seed_questionnaire,
    select_items,
)
from app.pathways.models import Prescription, PrescriptionEvent
from app.triage.models import Alert
from tests import factories as f
from tests.test_checkin_support import MONDAY, clock, outbox_for, sms, start_one, world  # noqa: F401

TODAY = MONDAY.date()


def _codes(patient, voice=False):
    items = list(_db.session.scalars(select(QuestionnaireItem)))
    return select_items(items, current_treatment(patient.id, TODAY), voice=voice)


def test_seeding_is_idempotent_and_keeps_edits(db):
    item = db.session.scalar(select(QuestionnaireItem).where(QuestionnaireItem.code == "fatigue"))
    item.text_fr = "Question revue par le site ?"
    db.session.flush()
    assert seed_questionnaire() == 0
    assert item.text_fr == "Question revue par le site ?"
    assert db.session.query(QuestionnaireItem).count() == len(DEFAULT_ITEMS)


def test_capecitabine_on_week(world):
    # Day 31 since the start: day 10 of the 3rd cycle (14 on / 7 off).
    assert _codes(world.patient) == ["doses_missed", "temperature", "diarrhoea", "nausea", "mouth_sores",
                                     "hand_foot", "fatigue", "wants_call"]


def test_capecitabine_day_16_of_21_asks_about_a_dose_in_the_break(db, clock):
    site = f.create_site()
    patient = f.create_patient(site, start=TODAY - timedelta(days=15))  # day 16
    db.session.commit()
    assert current_treatment(patient.id, TODAY).phase == "off"
    codes = _codes(patient)
    assert "dose_in_break" in codes and "doses_missed" not in codes
    checkin = start_one(patient)
    assert checkin.phase == "off" and checkin.item_codes[0] == "dose_in_break"
    (first,) = outbox_for(checkin)
    assert "pause" in first.body
    # A yes is a safety finding, not adherence: orange alert at once.
    sms(patient, "oui")
    alert = db.session.scalar(select(Alert).where(Alert.patient_id == patient.id))
    assert (alert.severity, alert.reason_code, alert.checkin_id) == ("orange", "dose_during_off_week", checkin.id)


@pytest.mark.parametrize("days_since_start, phase", [(0, "on"), (13, "on"), (14, "off"), (20, "off"), (21, "on")])
def test_cycle_days(db, clock, days_since_start, phase):
    patient = f.create_patient(f.create_site(), start=TODAY - timedelta(days=days_since_start))
    db.session.commit()
    assert current_treatment(patient.id, TODAY).phase == phase


def test_interruption_is_off_and_resumption_starts_a_new_cycle(db, clock, world):
    patient = world.patient  # on-week today
    rx = db.session.scalar(select(Prescription).where(Prescription.patient_id == patient.id))
    db.session.add(PrescriptionEvent(prescription=rx, kind="interruption", effective_date=TODAY - timedelta(days=3),
                                     reason="grade 2", recorded_by_id=world.nurse.id))
    db.session.flush()
    db.session.expire(rx)
    assert current_treatment(patient.id, TODAY).phase == "off"
    db.session.add(PrescriptionEvent(prescription=rx, kind="resumption", effective_date=TODAY - timedelta(days=15),
                                     reason="x", recorded_by_id=world.nurse.id))
    db.session.flush()
    db.session.expire(rx)
    # Interrupted 3 days ago, after a resumption: still off.
    assert current_treatment(patient.id, TODAY).phase == "off"
    db.session.add(PrescriptionEvent(prescription=rx, kind="resumption", effective_date=TODAY - timedelta(days=1),
                                     reason="back to grade 1", recorded_by_id=world.nurse.id))
    db.session.flush()
    db.session.expire(rx)
    assert current_treatment(patient.id, TODAY).phase == "on"  # day 2 of a new cycle


@pytest.mark.parametrize("inn, present, absent", [
    ("palbociclib", {"bleeding", "temperature", "mouth_sores"}, {"blood_pressure", "hand_foot"}),
    ("abiraterone", {"blood_pressure", "breathlessness", "doses_missed"}, {"diarrhoea", "bleeding"}),
    ("sunitinib", {"blood_pressure", "hand_foot", "mouth_sores", "diarrhoea"}, {"bleeding", "rash"}),
    ("imatinib", {"rash", "breathlessness", "diarrhoea"}, {"blood_pressure", "hand_foot"}),
])
def test_drug_specific_items(db, clock, inn, present, absent):
    patient = f.create_patient(f.create_site(), drug_inn=inn, start=TODAY - timedelta(days=2))
    db.session.commit()
    codes = set(_codes(patient))
    assert present <= codes and not (absent & codes)
    assert {"temperature", "nausea", "fatigue", "wants_call"} <= codes


def test_voice_asks_blood_pressure_last(db, clock):
    patient = f.create_patient(f.create_site(), drug_inn="abiraterone", start=TODAY - timedelta(days=2))
    db.session.commit()
    assert _codes(patient)[-2:] == ["blood_pressure", "wants_call"]
    assert _codes(patient, voice=True)[-1] == "blood_pressure"


def test_without_prescription_only_general_items(db, clock):
    patient = f.create_patient(f.create_site(), drug_inn=None)
    db.session.commit()
    assert _codes(patient) == ["temperature", "nausea", "fatigue", "wants_call"]


def test_item_restricted_to_drugs_and_inactive_items():
    items = [QuestionnaireItem(**spec) for spec in DEFAULT_ITEMS]
    for item in items:
        item.active = True
    items[0].drugs = ["imatinib"]  # doses_missed only for imatinib
    items[-1].active = False  # wants_call switched off
    treatment = Treatment(frozenset({"capecitabine"}), frozenset({"diarrhoea"}), "on")
    assert select_items(items, treatment) == ["temperature", "diarrhoea", "nausea", "fatigue"]
