"""Running a corpus of patients' texts through the real path (no test here).

Each case is a patient (their drug and language) with a question pending (``context``: an item
code, ``outside`` for no check-in, ``opted_out`` for a patient who sent STOP earlier), and one
text they send. The text is posted to the signed Twilio webhook, then read by the
``process-inbound`` job. When the only answer is a re-ask, the patient sends the same text again
(what they would do, having nothing else to say), so "not understood after the re-ask" is seen.

Outcomes, judged on the database and the replies:
- ``red``: a red alert exists and the patient got a safety reply (in the webhook's TwiML or
  queued in the outbox);
- ``orange``: an orange (or red) alert exists, or a nurse call task;
- ``none``: anything but a red alert (a red one is counted as a false red).

CSV files with the columns ``id,lang,drug,context,text,expected,why`` (see tests/corpus/README.md).
"""
from __future__ import annotations

import csv
import itertools
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from twilio.request_validator import RequestValidator

from app.core.time import utcnow
from app.extensions import db
from app.notifications.models import OutboxEntry
from app.notifications.tasks import process_inbound
from app.pathways.checkins import templates as t
from app.pathways.checkins.models import CheckIn, CheckInStatus
from app.pathways.checkins.questionnaire import active_items, current_treatment, select_items
from app.triage.models import Alert, NurseTask
from tests import factories

TOKEN = "corpus-test-token-0123456789abcdef"
PUBLIC = "https://oncolink.example.test"
SENDER = "+33700000077"
SMS_PATH = "/webhooks/twilio/sms"
SETTINGS = {"TWILIO_AUTH_TOKEN": TOKEN, "PUBLIC_BASE_URL": PUBLIC, "SMS_PROVIDER": "console"}
SAFETY_KEYS = ("safety", "safety_self_harm", "safety_generic")
REASK_STARTS = ("Je n'ai pas compris", "Sorry, I did not understand")
_phones = itertools.count(1)
_sids = itertools.count(1)


@dataclass(frozen=True)
class Case:
    id: str
    lang: str
    drug: str
    context: str
    text: str
    expected: str
    why: str = ""
    source: str = ""


@dataclass
class Result:
    case: Case
    red: bool
    orange: bool
    safety_reply: bool
    posted: int
    alerts: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        if self.case.expected == "red":
            return self.red and self.safety_reply
        if self.case.expected == "orange":
            return self.red or self.orange
        return not self.red


def load(paths) -> list[Case]:
    cases = []
    for path in paths:
        with open(path, encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                cases.append(Case(row["id"], row["lang"], row["drug"] or "capecitabine", row["context"], row["text"],
                                  row["expected"].strip().lower(), row.get("why", ""), Path(path).name))
    return cases


def _start(patient, context: str) -> CheckIn | None:
    """A check-in of this patient with ``context`` as the pending question."""
    now = utcnow()
    treatment = current_treatment(patient.id, now.date())
    codes = select_items(active_items(), treatment)
    if context not in codes:
        codes.insert(1 if codes else 0, context)
    index = codes.index(context)
    checkin = CheckIn(patient_id=patient.id, period_key=f"corpus-{patient.id}", sequence="S2",
                      scheduled_at=now - timedelta(hours=1), closes_at=now + timedelta(days=6), channel="sms",
                      status=CheckInStatus.IN_PROGRESS if index else CheckInStatus.SENT, item_codes=codes,
                      phase=treatment.phase, current_index=index, started_at=now - timedelta(hours=1),
                      last_activity_at=now - timedelta(minutes=5), asked_at=now - timedelta(minutes=5))
    db.session.add(checkin)
    return checkin


def _post(client, phone: str, body: str) -> list[str]:
    params = {"From": phone, "To": SENDER, "Body": body, "MessageSid": f"SMcorpus{next(_sids):024d}",
              "AccountSid": "AC" + "0" * 32}
    signature = RequestValidator(TOKEN).compute_signature(PUBLIC + SMS_PATH, params)
    response = client.post(SMS_PATH, data=params, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200, response.status_code
    return [m.text or "" for m in ET.fromstring(response.get_data(as_text=True)).findall("Message")]


def _replies(patient_id: int) -> list[str]:
    return list(db.session.scalars(select(OutboxEntry.body).where(OutboxEntry.patient_id == patient_id,
                                                                   OutboxEntry.purpose == "sms_reply")
                                   .order_by(OutboxEntry.id)))


def run_case(client, site, case: Case) -> Result:
    phone = f"+33655{next(_phones):06d}"
    off = case.context == "dose_in_break"
    start = utcnow().date() - timedelta(days=16 if off else 3)  # day 17 of a 14/7 cycle: the break
    patient = factories.create_patient(site, drug_inn=case.drug, phone=phone, language=case.lang, start=start)
    if case.context == "opted_out":
        patient.opted_out_at = utcnow() - timedelta(days=20)
    elif case.context != "outside":
        _start(patient, case.context)
    db.session.commit()
    patient_id = patient.id
    safety = {t.render(key, case.lang, hospital_phone=site.hospital_phone) for key in SAFETY_KEYS}
    safety.add(t.render("safety_generic", "fr"))
    twiml = _post(client, phone, case.text)
    process_inbound()
    posted = 1
    replies = _replies(patient_id)
    if replies and all(r.startswith(REASK_STARTS) for r in replies) and case.context not in ("outside", "opted_out"):
        twiml += _post(client, phone, case.text)  # asked again: the patient has nothing else to say
        process_inbound()
        posted = 2
        replies = _replies(patient_id)
    db.session.rollback()
    alerts = list(db.session.scalars(select(Alert).where(Alert.patient_id == patient_id)))
    tasks = db.session.scalar(select(NurseTask.id).where(NurseTask.patient_id == patient_id).limit(1))
    return Result(case, red=any(a.severity == "red" for a in alerts),
                  orange=any(a.severity == "orange" for a in alerts) or tasks is not None,
                  safety_reply=bool(safety & set(twiml + replies)), posted=posted,
                  alerts=[f"{a.severity}:{a.reason_code}" for a in alerts])


@dataclass
class Report:
    results: list[Result]

    def of(self, expected: str) -> list[Result]:
        return [r for r in self.results if r.case.expected == expected]

    @property
    def failures(self) -> list[Result]:
        return [r for r in self.results if not r.passed]

    @property
    def false_red_rate(self) -> float:
        none = self.of("none")
        return sum(r.red for r in none) / len(none) if none else 0.0

    def summary(self) -> str:
        counts = Counter(r.case.expected for r in self.results)
        lines = [f"{len(self.results)} texts: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))]
        for expected in ("red", "orange", "none"):
            group = self.of(expected)
            if group:
                ok = sum(r.passed for r in group)
                lines.append(f"  {expected}: {ok}/{len(group)} as expected")
        lines.append(f"  false red on 'none': {sum(r.red for r in self.of('none'))}/{len(self.of('none'))}"
                     f" = {self.false_red_rate:.1%}")
        for r in self.failures:
            lines.append(f"  FAIL {r.case.id} [{r.case.lang} {r.case.drug} {r.case.context}] expected "
                         f"{r.case.expected}: {r.case.text!r} -> {r.alerts or 'no alert'}"
                         f"{'' if r.safety_reply or r.case.expected != 'red' else ' (no safety reply)'}")
        return "\n".join(lines)
