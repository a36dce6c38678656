"""Alerts: grouping, the work queue, acknowledgement and closing, all audited."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from app.core.audit import AuditEvent
from app.core.errors import ValidationFailed
from app.core.time import set_clock
from app.triage import queries, services
from app.triage.models import Alert, AlertAction


def _raise(db, patient, severity="orange", reason="diarrhoea_g2"):
    alert = services.raise_alert(patient_id=patient.id, severity=severity, source="checkin", reason_code=reason,
                                 summary=f"{reason} reported")
    db.session.commit()
    return alert


def test_alerts_of_one_patient_close_in_time_are_one_line_of_the_queue(circuit, db):
    set_clock(datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc))  # a Monday
    a1 = _raise(db, circuit.patient, "yellow", "fatigue_g1")
    set_clock(datetime(2026, 11, 23, 15, 0, tzinfo=timezone.utc))
    a2 = _raise(db, circuit.patient, "red", "fever")
    _raise(db, circuit.patient_no_team, "orange", "mouth_g2")
    assert a2.group_id == a1.id
    page = queries.queue(circuit.site.id)
    assert page.total == 2
    first, second = page.lines
    assert first.alert.id == a2.id and first.count == 2  # most severe of the group leads
    assert second.alert.patient_id == circuit.patient_no_team.id
    # A day later a new alert starts a new group.
    set_clock(datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc))
    a4 = _raise(db, circuit.patient, "yellow", "nausea_g1")
    assert a4.group_id in (a1.id, a4.id)


def test_deadlines_follow_severity_and_orange_skips_the_weekend(circuit, db):
    set_clock(datetime(2026, 11, 27, 10, 0, tzinfo=timezone.utc))  # a Friday
    red = _raise(db, circuit.patient, "red", "fever")
    orange = _raise(db, circuit.patient_no_team, "orange", "diarrhoea_g2")
    assert red.due_at == datetime(2026, 11, 27, 10, 30, tzinfo=timezone.utc)
    # Orange: 8 working hours (8:00-18:00 Paris): 7 h on Friday from 11:00, then Monday 8:00 + 1 h.
    assert orange.due_at == datetime(2026, 11, 30, 8, 0, tzinfo=timezone.utc)
    set_clock(datetime(2026, 11, 27, 11, 0, tzinfo=timezone.utc))
    line = queries.queue(circuit.site.id).lines[0]
    assert line.alert.id == red.id and line.overdue


def test_an_alert_cannot_be_closed_without_a_note(circuit, db):
    alert = _raise(db, circuit.patient)
    for note in ("", "   "):
        with pytest.raises(ValidationFailed) as exc:
            services.resolve(alert, actor=circuit.nurse, note=note)
        assert "note" in exc.value.errors
    db.session.rollback()
    assert db.session.get(Alert, alert.id).status == "open"


def test_the_database_refuses_a_resolved_alert_without_a_note(circuit, db):
    import sqlalchemy.exc

    alert = _raise(db, circuit.patient)
    alert.status = "resolved"
    with pytest.raises(sqlalchemy.exc.IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_nurse_acknowledges_records_and_resolves_through_the_pages(circuit, login, csrf_of, db):
    alert = _raise(db, circuit.patient, "red", "fever")
    client = login(circuit.nurse)
    html = client.get("/triage").get_data(as_text=True)
    assert f'data-alert="{alert.id}"' in html
    page = client.get(f"/alerts/{alert.id}").get_data(as_text=True)
    assert "fever" in page
    csrf = csrf_of(page)
    assert client.post(f"/alerts/{alert.id}/acknowledge", data={"csrf_token": csrf}).status_code == 302
    client.post(f"/alerts/{alert.id}/actions", data={"csrf_token": csrf, "kind": "call", "note": "called, 38.9"})
    resp = client.post(f"/alerts/{alert.id}/resolve", data={"csrf_token": csrf, "note": ""})
    assert db.session.get(Alert, alert.id).status == "acknowledged"  # no note, not closed
    client.post(f"/alerts/{alert.id}/resolve", data={"csrf_token": csrf, "note": "sent to ED, admitted"})
    alert = db.session.get(Alert, alert.id)
    assert alert.status == "resolved" and alert.resolved_by_id == circuit.nurse.id
    kinds = [a.kind for a in db.session.scalars(select(AlertAction).where(AlertAction.alert_id == alert.id))]
    assert kinds == ["created", "paged", "acknowledged", "call", "resolved"]  # red: the on-call team is paged
    audited = set(db.session.scalars(select(AuditEvent.action).where(AuditEvent.patient_id == circuit.patient.id)))
    assert {"alert_raised", "alert_acknowledged", "alert_action", "alert_resolved", "read"} <= audited


def test_counts_endpoint_does_not_keep_an_idle_session_alive(app, circuit, login):
    client = login(circuit.nurse)
    with client.session_transaction() as s:
        seen = s["seen_at"]
    assert client.get("/triage/counts").status_code == 200
    with client.session_transaction() as s:
        assert s["seen_at"] == seen


def test_idle_session_expires(app, circuit, login):
    client = login(circuit.nurse)
    set_clock(datetime.now(timezone.utc) + timedelta(minutes=app.config["SESSION_IDLE_MINUTES"] + 1))
    resp = client.get("/triage")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def test_other_site_nurse_cannot_open_the_alert(circuit, login, db):
    alert = _raise(db, circuit.patient, "red", "fever")
    client = login(circuit.other_nurse)
    assert client.get(f"/alerts/{alert.id}").status_code == 404
    assert f'data-alert="{alert.id}"' not in client.get("/triage").get_data(as_text=True)


def test_queue_lists_non_responders_failed_messages_and_rota_gaps(circuit, login, db):
    from app.notifications.outbox import enqueue_sms
    from app.pathways.checkins.models import CheckIn
    from app.notifications.models import OutboxEntry

    now = datetime.now(timezone.utc)
    db.session.add(CheckIn(patient_id=circuit.patient.id, period_key="2026-W40", sequence="S2",
                           scheduled_at=now - timedelta(days=2), closes_at=now + timedelta(days=5), channel="sms",
                           status="sent", started_at=now - timedelta(days=2)))
    entry = enqueue_sms(to=circuit.patient_no_team.phone, body="Bonjour", idempotency_key="t:1", purpose="checkin",
                        patient_id=circuit.patient_no_team.id)
    entry.state, entry.last_error_code = "dead", "30003"
    db.session.commit()
    html = login(circuit.nurse).get("/triage").get_data(as_text=True)
    listed = html.split('id="non-responder-list"')[1].split("</table>")[0]
    assert "DURAND" in listed and "LEFEVRE" not in listed
    assert "30003" in html.split('id="undelivered-list"')[1]
    # No one is on call at this site: the gap is announced before red alerts fall into it.
    assert 'id="rota-gaps"' in html
    assert db.session.get(OutboxEntry, entry.id).state == "dead"


def test_deadlines_follow_each_sites_policy(circuit, db):
    from app.triage.oncall import save_policy

    save_policy(circuit.site, ack_minutes=15, fallback_phone="04 78 00 00 00", fallback_label="Standard",
                orange_working_hours=4, yellow_days=3, workday_start=9, workday_end=17)
    db.session.commit()
    set_clock(datetime(2026, 11, 26, 15, 0, tzinfo=timezone.utc))  # Thursday 16:00 in Paris
    red = _raise(db, circuit.patient, "red", "fever")
    orange = _raise(db, circuit.patient_no_team, "orange", "diarrhoea_grade_2")
    yellow = _raise(db, circuit.other_patient, "yellow", "fatigue_grade_1")  # other site: defaults
    assert red.due_at == datetime(2026, 11, 26, 15, 15, tzinfo=timezone.utc)
    # 1 h left on Thursday (until 17:00), then 3 h from 9:00 on Friday: 12:00 Paris.
    assert orange.due_at == datetime(2026, 11, 27, 11, 0, tzinfo=timezone.utc)
    assert yellow.due_at == datetime(2026, 12, 3, 15, 0, tzinfo=timezone.utc)


def test_working_hours_cross_a_daylight_saving_weekend():
    from app.triage.services import add_working_hours

    friday = datetime(2027, 3, 26, 16, 0, tzinfo=timezone.utc)  # 17:00 Paris (UTC+1)
    due = add_working_hours(friday, 8, "Europe/Paris", 8, 18)
    assert due == datetime(2027, 3, 29, 13, 0, tzinfo=timezone.utc)  # Monday 15:00 Paris (UTC+2)


def _bulk_scenario(db, circuit, bulk: bool) -> list[tuple]:
    """Earlier alerts, then new ones raised with ``raise_alerts`` or one by one with
    ``raise_alert``; the new alerts, their actions and audit rows, ids replaced by labels."""
    from tests import factories

    start = datetime(2026, 11, 27, 9, 0, tzinfo=timezone.utc)  # a Friday
    recent = factories.create_patient(circuit.site)  # an open alert 3 h ago: joins its group
    closed = factories.create_patient(circuit.site)  # only a resolved alert: a new group
    old = factories.create_patient(circuit.site)  # an open alert 2 days ago: a new group
    fresh = factories.create_patient(circuit.site)  # nothing yet, two new alerts: one group
    away = factories.create_patient(circuit.other_site)  # the other site's deadlines
    labels = {}
    set_clock(start - timedelta(days=2))
    labels[_raise(db, old, "yellow", "fatigue_g1").id] = "old"
    set_clock(start - timedelta(hours=5))
    first = _raise(db, recent, "yellow", "fatigue_g1")
    labels[first.id] = "recent-1"
    set_clock(start - timedelta(hours=3))
    labels[_raise(db, recent, "orange", "mouth_g2").id] = "recent-2"
    done = _raise(db, closed, "yellow", "nausea_g1")
    labels[done.id] = "closed"
    services.resolve(done, actor=circuit.nurse, note="called back")
    db.session.commit()
    set_clock(start)
    wanted = ((recent, "orange", "adherence_pdc_low"), (closed, "yellow", "adherence_pdc_watch"),
              (old, "orange", "adherence_pdc_low"), (fresh, "yellow", "adherence_pdc_watch"),
              (fresh, "orange", "adherence_above_prescription"), (away, "orange", "adherence_pdc_low"))
    new = [services.NewAlert(p.id, severity, "adherence", reason, f"{reason} summary", {"pdc": 0.5})
           for p, severity, reason in wanted]
    if bulk:
        ids = services.raise_alerts(new)
    else:
        ids = [services.raise_alert(patient_id=a.patient_id, severity=a.severity, source=a.source,
                                    reason_code=a.reason_code, summary=a.summary, detail=a.detail).id for a in new]
    db.session.commit()
    db.session.expire_all()
    names = {recent.id: "recent", closed.id: "closed", old.id: "old", fresh.id: "fresh", away.id: "away"}
    labels.update({alert_id: f"new-{k}" for k, alert_id in enumerate(ids)})
    out = []
    for alert_id in ids:
        a = db.session.get(Alert, alert_id)
        actions = [(x.kind, x.note, x.at, x.actor_id) for x in a.actions]
        audits = [(e.action, names[e.patient_id], e.object_type, e.detail, e.at, e.actor_label)
                  for e in db.session.scalars(select(AuditEvent).where(AuditEvent.object_type == "Alert",
                                                                       AuditEvent.object_id == str(alert_id)))]
        out.append((names[a.patient_id], a.site_id, a.severity, a.source, a.reason_code, a.summary, a.detail,
                    a.status, a.created_at, a.due_at, labels[a.group_id], a.escalation_level, actions, audits))
    return out


def test_raising_many_alerts_at_once_writes_what_raising_them_one_by_one_does(circuit, db):
    bulk = _bulk_scenario(db, circuit, bulk=True)
    one_by_one = _bulk_scenario(db, circuit, bulk=False)
    assert bulk == one_by_one
    groups = [row[10] for row in bulk]
    assert groups == ["recent-1", "new-1", "new-2", "new-3", "new-3", "new-5"]
    # Orange on a Friday at 10:00 Paris: 8 working hours end at 18:00 Paris.
    assert bulk[0][9] == datetime(2026, 11, 27, 17, 0, tzinfo=timezone.utc)
    assert all(len(row[12]) == 1 and len(row[13]) == 1 for row in bulk)


def test_raising_many_alerts_refuses_an_unknown_patient_or_severity(circuit, db):
    with pytest.raises(ValueError):
        services.raise_alerts([services.NewAlert(10**9, "orange", "adherence", "x", "x")])
    with pytest.raises(ValueError):
        services.raise_alerts([services.NewAlert(circuit.patient.id, "purple", "adherence", "x", "x")])
    assert services.raise_alerts([]) == []
