"""Which questions a check-in asks: the universal red flags always, then the drug's symptoms and
the day of the cycle.

Issue 10 changed what these tests hold: bleeding and breathlessness (and the new vomiting
question) used to be asked only when the drug listed them, and tests here asserted that a
patient on abiraterone or sunitinib was never asked about bleeding. A red flag that depends on
the drug is not a safety net: they are now asked of every patient (CLINICAL.md).
"""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.extensions import db as _db
from app.pathways.checkins.models import QuestionnaireItem
from hypothesis import given, settings
from hypothesis import strategies as st

from app.pathways.catalogue import DEFAULT_DRUGS
from app.pathways.checkins.questionnaire import (
    DEFAULT_ITEMS,
    UNIVERSAL_CODES,
    Treatment,
    current_treatment,
    prescription_phase,
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
    assert _codes(world.patient) == ["doses_missed", "temperature", "bleeding", "breathlessness", "vomiting",
                                     "diarrhoea", "nausea", "mouth_sores", "hand_foot", "fatigue", "wants_call"]


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
    ("palbociclib", {"mouth_sores"}, {"blood_pressure", "hand_foot"}),
    ("abiraterone", {"blood_pressure", "doses_missed"}, {"diarrhoea", "rash"}),
    ("sunitinib", {"blood_pressure", "hand_foot", "mouth_sores", "diarrhoea"}, {"rash"}),
    ("imatinib", {"rash", "diarrhoea"}, {"blood_pressure", "hand_foot"}),
])
def test_drug_specific_items_add_to_the_universal_red_flags(db, clock, inn, present, absent):
    patient = f.create_patient(f.create_site(), drug_inn=inn, start=TODAY - timedelta(days=2))
    db.session.commit()
    codes = set(_codes(patient))
    assert present <= codes and not (absent & codes)
    assert set(UNIVERSAL_CODES) <= codes
    assert {"temperature", "bleeding", "breathlessness", "vomiting", "wants_call"} == set(UNIVERSAL_CODES)


def test_voice_asks_blood_pressure_last(db, clock):
    patient = f.create_patient(f.create_site(), drug_inn="abiraterone", start=TODAY - timedelta(days=2))
    db.session.commit()
    assert _codes(patient)[-2:] == ["blood_pressure", "wants_call"]
    assert _codes(patient, voice=True)[-1] == "blood_pressure"


def test_without_prescription_the_red_flags_and_general_items(db, clock):
    patient = f.create_patient(f.create_site(), drug_inn=None)
    db.session.commit()
    assert _codes(patient) == ["temperature", "bleeding", "breathlessness", "vomiting", "nausea", "fatigue",
                               "wants_call"]


def test_item_restricted_to_drugs_and_inactive_items():
    items = _items()
    items[0].drugs = ["imatinib"]  # doses_missed only for imatinib
    by_code = {i.code: i for i in items}
    by_code["fatigue"].active = False  # switched off
    treatment = Treatment(frozenset({"capecitabine"}), frozenset({"diarrhoea"}), "on")
    assert select_items(items, treatment) == ["temperature", "bleeding", "breathlessness", "vomiting", "diarrhoea",
                                              "nausea", "wants_call"]


def test_a_universal_red_flag_cannot_be_switched_off_or_restricted():
    items = _items()
    for item in items:
        if item.universal:
            item.active, item.drugs, item.symptom, item.phase = False, ["imatinib"], "rash", "off"
    treatment = Treatment(frozenset({"capecitabine"}), frozenset(), "on")
    assert set(UNIVERSAL_CODES) <= set(select_items(items, treatment))


def _items():
    items = [QuestionnaireItem(**spec) for spec in DEFAULT_ITEMS]
    for item in items:
        item.active = True
        item.universal = bool(item.universal)
    return items


@settings(max_examples=400, deadline=None)
@given(drug=st.sampled_from(DEFAULT_DRUGS), day=st.integers(min_value=0, max_value=200),
       channel=st.sampled_from(["sms", "voice", "nurse_call"]),
       interrupted=st.booleans(), second=st.sampled_from([None, *DEFAULT_DRUGS]))
def test_every_drug_every_cycle_day_every_channel_asks_the_universal_red_flags(drug, day, channel, interrupted,
                                                                              second):
    """The property of issue 10: whatever the drug (or two drugs), the day of the cycle, an
    interruption and the channel, every universal red-flag question is asked."""
    start = TODAY - timedelta(days=day)
    prescriptions = []
    for spec in filter(None, (drug, second)):
        rx = Prescription(start_date=start, days_on=spec["default_days_on"], days_off=spec["default_days_off"],
                          frequency_per_day=spec["default_frequency_per_day"])
        rx.events = [PrescriptionEvent(kind="interruption", effective_date=TODAY - timedelta(days=1))] \
            if interrupted else []
        prescriptions.append((rx, spec))
    phases = {prescription_phase(rx, TODAY) for rx, _spec in prescriptions}
    treatment = Treatment(frozenset(spec["inn"] for _rx, spec in prescriptions),
                          frozenset(s for _rx, spec in prescriptions for s in spec["monitored_symptoms"]),
                          "on" if "on" in phases else "off")
    codes = select_items(_items(), treatment, voice=channel == "voice")
    assert set(UNIVERSAL_CODES) <= set(codes), (drug["inn"], day, channel)
    assert len(codes) == len(set(codes))


@pytest.mark.parametrize("inn", [d["inn"] for d in DEFAULT_DRUGS])
def test_started_checkins_and_nurse_calls_ask_the_red_flags_for_every_drug(db, clock, inn):
    """The same through the database: an SMS check-in, a voice check-in and a nurse's call."""
    from app.pathways.checkins.nurse_call import items_for_call

    site = f.create_site()
    sms_patient = f.create_patient(site, drug_inn=inn, start=TODAY - timedelta(days=3))
    voice_patient = f.create_patient(site, drug_inn=inn, start=TODAY - timedelta(days=17), channel="voice")
    db.session.commit()
    for patient in (sms_patient, voice_patient):
        assert set(UNIVERSAL_CODES) <= set(start_one(patient).item_codes)
    assert set(UNIVERSAL_CODES) <= {item.code for item in items_for_call(sms_patient)}
