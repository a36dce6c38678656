"""Ledger built from the sequence history, tariffs, idempotent reruns, statements and their CSV."""
from __future__ import annotations

import csv
import io
from datetime import date, datetime, timezone

from sqlalchemy import select

from app.core.roles import Role
from app.pathways.models import Enrolment, EnrolmentEvent
from app.reports.ledger import build_ledger
from app.reports.models import LedgerEntry, Tariff
from app.reports.statements import monthly_statement, statement_csv
from app.reports.tariffs import TariffBook, add_tariff
from tests import factories as f


def _tariffs(db):
    """The defaults of migration 0009 (the test fixture empties every table)."""
    rows = [("gp_coordination_S1", "gp", 2500, 1)]
    for seq in ("S1", "S2", "S3"):
        rows += [(f"seq_{seq}_month", "site", 2500, 1), (f"seq_{seq}_month", "site", 5000, 7)]
    for code, recipient, cents, step in rows:
        db.session.add(Tariff(code=code, recipient=recipient, amount_cents=cents, from_month=step,
                              valid_from=date(2020, 1, 1), note="default", is_default=True))
    db.session.flush()


def _at(y, m, d):
    return datetime(y, m, d, 9, 0, tzinfo=timezone.utc)


def _journey(db, circuit):
    """Enrolled 2026-01-10 in S1; S2 on 2026-02-15; S3 on 2026-06-01 (09:00 UTC)."""
    _tariffs(db)
    patient = f.create_patient(circuit.site, care_team=[circuit.oncologist, circuit.gp], sequence="S1",
                               prescriber=circuit.oncologist, start=date(2026, 1, 10))
    enrolment = db.session.scalar(select(Enrolment).where(Enrolment.patient_id == patient.id))
    enrolment.sequence = "S3"
    db.session.add_all([
        EnrolmentEvent(enrolment=enrolment, kind="sequence", from_value="S1", to_value="S2", reason="x",
                       at=_at(2026, 2, 15)),
        EnrolmentEvent(enrolment=enrolment, kind="sequence", from_value="S2", to_value="S3", reason="x",
                       at=_at(2026, 6, 1)),
    ])
    db.session.commit()
    return patient, enrolment


def _entries(db):
    return {(e.source_ref, e.activity, e.amount_cents, e.professional_id)
            for e in db.session.scalars(select(LedgerEntry))}


def test_ledger_follows_the_sequence_history(db, circuit):
    _, e = _journey(db, circuit)
    for month in ("2026-01", "2026-02", "2026-03", "2026-06", "2026-07", "2026-08"):
        build_ledger(month)
    db.session.commit()
    gp = circuit.gp.id
    # Jan: S1 at the start + GP coordination on the enrolment day. Feb: S1 on Feb 1st (S2 from the 15th).
    # Mar: S2. Jun: month 6, S3 at 09:00 on June 1st, so S2 at midnight. Jul: month 7 -> EUR 50, S3.
    assert _entries(db) == {
        (f"enrolment:{e.id}:S1:2026-01", "seq_S1_month", 2500, None),
        (f"enrolment:{e.id}:S1:gp:2026-01-10", "gp_coordination_S1", 2500, gp),
        (f"enrolment:{e.id}:S1:2026-02", "seq_S1_month", 2500, None),
        (f"enrolment:{e.id}:S2:2026-03", "seq_S2_month", 2500, None),
        (f"enrolment:{e.id}:S2:2026-06", "seq_S2_month", 2500, None),
        (f"enrolment:{e.id}:S3:2026-07", "seq_S3_month", 5000, None),
        (f"enrolment:{e.id}:S3:2026-08", "seq_S3_month", 5000, None),
    }


def test_rerun_adds_nothing(db, circuit):
    _journey(db, circuit)
    first = build_ledger("2026-01")
    again = build_ledger("2026-01")
    db.session.commit()
    assert (first["inserted"], again["inserted"], again["candidates"]) == (2, 0, 2)
    assert len(db.session.scalars(select(LedgerEntry)).all()) == 2


def test_month_outside_the_enrolment_and_ended_enrolment(db, circuit):
    _, e = _journey(db, circuit)
    e.ended_on, e.status, e.active_patient_id = date(2026, 3, 31), "ended", None
    db.session.commit()
    assert build_ledger("2025-12")["candidates"] == 0
    assert build_ledger("2026-03")["candidates"] == 1
    assert build_ledger("2026-04")["candidates"] == 0


def test_no_gp_in_care_team_no_gp_entry(db, circuit):
    _tariffs(db)
    f.create_patient(circuit.site, care_team=[circuit.oncologist], sequence="S1", start=date(2026, 1, 5))
    db.session.commit()
    result = build_ledger("2026-01")
    assert [e.activity for e in db.session.scalars(select(LedgerEntry))] == ["seq_S1_month"]
    assert result["no_tariff"] == []


def test_missing_tariff_is_reported_not_invented(db, circuit):
    f.create_patient(circuit.site, sequence="S2", start=date(2026, 1, 5))
    db.session.commit()
    assert build_ledger("2026-01") == {"month": "2026-01", "candidates": 0, "inserted": 0,
                                       "no_tariff": ["seq_S2_month"]}


def test_new_tariff_version_closes_the_previous_one(db, circuit):
    _tariffs(db)
    add_tariff(code="seq_S2_month", recipient="site", amount_cents=3000, from_month=1,
               valid_from=date(2026, 3, 1), valid_to=None, note="2026 rate", actor_id=circuit.admin.id)
    book = TariffBook.load()
    assert book.rate("seq_S2_month", date(2026, 2, 1), 1).amount_cents == 2500
    assert book.rate("seq_S2_month", date(2026, 3, 1), 1).amount_cents == 3000
    assert book.rate("seq_S2_month", date(2026, 3, 1), 9).amount_cents == 5000


def _two_sites(db, circuit):
    """LYN: the S1 journey patient + one S2 patient (started 2025-12-01, month 2). TRS: one S3 patient
    started 2025-05-01 (month 9 in January -> EUR 50)."""
    _, e = _journey(db, circuit)
    f.create_patient(circuit.site, sequence="S2", start=date(2025, 12, 1))
    f.create_patient(circuit.other_site, sequence="S3", start=date(2025, 5, 1))
    db.session.commit()
    build_ledger("2026-01")
    db.session.commit()
    return e


def test_statement_totals(db, circuit):
    _two_sites(db, circuit)
    everything = monthly_statement("2026-01", None)
    assert everything.total_cents == 2500 + 2500 + 2500 + 5000
    by_site = {r.site_code: [(line.activity, line.entries, line.amount_cents) for line in r.lines]
               for r in everything.sites}
    assert by_site == {"LYN": [("seq_S1_month", 1, 2500), ("seq_S2_month", 1, 2500)],
                       "TRS": [("seq_S3_month", 1, 5000)]}
    assert [(r.id, r.total_cents) for r in everything.professionals] == [(circuit.gp.id, 2500)]
    lyon = monthly_statement("2026-01", [circuit.site.id])
    assert lyon.total_cents == 7500


def test_statement_csv(db, circuit):
    _two_sites(db, circuit)
    text = statement_csv(monthly_statement("2026-01", [circuit.site.id]))
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["month", "site", "recipient_type", "recipient_id", "recipient", "activity", "entries",
                       "amount_eur"]
    site = circuit.site
    gp = circuit.gp
    assert rows[1:] == [
        ["2026-01", "LYN", "site", str(site.id), site.name, "seq_S1_month", "1", "25.00"],
        ["2026-01", "LYN", "site", str(site.id), site.name, "seq_S2_month", "1", "25.00"],
        ["2026-01", "LYN", "professional", str(gp.id), f"{gp.last_name.upper()} {gp.first_name}",
         "gp_coordination_S1", "1", "25.00"],
    ]
    assert "Durand" not in text and "MRN" not in text


def test_monthly_job_builds_the_previous_month(db, circuit):
    from app.core.time import set_clock
    from app.reports.tasks import monthly_statements

    _journey(db, circuit)
    set_clock(datetime(2026, 3, 1, 3, 0, tzinfo=timezone.utc))
    assert monthly_statements()["month"] == "2026-02"
    assert monthly_statements()["inserted"] == 0
    assert Role.GP == "gp"
