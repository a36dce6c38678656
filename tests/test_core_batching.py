"""Batch scopes: reference data read once per batch, follow-up work run once, set-based, with
the same result as doing it at once (here: the adherence recompute after doses-missed answers)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event, select

from app.adherence.models import AdherenceSnapshot
from app.core import batching
from app.core.time import utcnow
from app.extensions import db as ext_db
from app.pathways.checkins.questionnaire import items_by_code
from app.pathways.checkins.signals import answer_recorded
from app.triage.grading import current_rules
from tests import factories
from tests.test_adherence_recompute import _answer


def test_cached_loads_once_in_a_scope_and_every_time_outside():
    calls = []

    def load():
        calls.append(1)
        return len(calls)

    assert batching.cached("k", load) == 1 and batching.cached("k", load) == 2  # no scope: fresh each time
    with batching.batch_scope():
        assert [batching.cached("k", load) for _ in range(3)] == [3, 3, 3]
        assert batching.in_scope()
    assert not batching.in_scope()


def test_deferred_work_runs_once_with_every_item_and_must_not_be_forgotten():
    seen = []
    assert batching.defer("kind", 1, seen.append) is False  # no scope: the caller does it now
    with batching.batch_scope() as scope:
        for item in (3, 1, 3, 2):
            assert batching.defer("kind", item, seen.append)
        scope.run_deferred()
    assert seen == [[3, 1, 2]]

    with pytest.raises(RuntimeError, match="run_deferred"):
        with batching.batch_scope():
            batching.defer("kind", 1, seen.append)
    with pytest.raises(ZeroDivisionError):  # a failing batch drops its deferred work with it
        with batching.batch_scope():
            batching.defer("kind", 1, seen.append)
            1 / 0
    assert seen == [[3, 1, 2]]


def _count_statements(fn) -> int:
    seen = []

    def listener(conn, cursor, statement, *args):
        seen.append(statement)

    event.listen(ext_db.engine, "before_cursor_execute", listener)
    try:
        fn()
    finally:
        event.remove(ext_db.engine, "before_cursor_execute", listener)
    return len(seen)


def test_questionnaire_items_and_rules_are_read_once_per_scope_with_the_same_answers(circuit, db):
    codes = ["temperature", "diarrhoea", "no_such_item"]
    fresh_items, fresh_rules = items_by_code(codes), current_rules(["temperature", "diarrhoea"])
    assert fresh_rules
    with batching.batch_scope():
        n = _count_statements(lambda: [(items_by_code(codes), current_rules(["temperature", "diarrhoea"]))
                                       for _ in range(5)])
        assert items_by_code(codes).keys() == fresh_items.keys() == {"temperature", "diarrhoea"}
        assert {r.id for r in current_rules(["temperature", "diarrhoea"])} == {r.id for r in fresh_rules}
        assert {r.id for r in current_rules()} >= {r.id for r in fresh_rules}
    assert n == 2
    assert _count_statements(lambda: [items_by_code(codes) for _ in range(3)]) == 3


def test_recompute_deferred_to_the_end_of_a_batch_gives_the_snapshots_of_doing_it_at_once(circuit, db):
    now = utcnow()
    second = factories.create_patient(circuit.site)

    def snapshots(patient_ids):
        rows = db.session.scalars(select(AdherenceSnapshot).where(AdherenceSnapshot.patient_id.in_(patient_ids))
                                  .order_by(AdherenceSnapshot.patient_id, AdherenceSnapshot.window))
        return [(r.patient_id, r.window, r.pdc, r.self_report) for r in rows]

    patients = [circuit.patient, second]
    for p in patients:
        _answer(db, p, now - timedelta(days=7), "doses_missed", 0)
    answers = [_answer(db, p, now, "doses_missed", 2) for p in patients]
    for checkin, answer in answers:  # one at a time, as outside a batch
        answer_recorded.send(answer, checkin=checkin)
    db.session.flush()
    at_once = snapshots([p.id for p in patients])
    assert {row[0] for row in at_once} == {p.id for p in patients}

    db.session.execute(AdherenceSnapshot.__table__.delete())
    with batching.batch_scope() as scope:
        for checkin, answer in answers:
            answer_recorded.send(answer, checkin=checkin)
        assert snapshots([p.id for p in patients]) == []  # noted, not yet done
        scope.run_deferred()
    assert snapshots([p.id for p in patients]) == at_once
