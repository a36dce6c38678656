"""The nightly adherence recompute: every active patient in a handful of statements.

1. Read, in one consistent snapshot and without the write lock: the active patients and their
   prescriptions, the PDC of every simple course (SQL, ``bulk``), the answers' aggregates, the
   reports, and the rows of the few patients whose course needs the Python measures.
2. Compute in Python (``compute.evaluate``): the dispensing measures of everyone, then the rest
   batch by batch, each batch in a worker thread while the previous one is being written.
3. Write in batches, each its own short transaction: lock the batch's patients, leave out any
   patient recomputed since the read (a dispensing or an answer committed meanwhile: its own
   recompute saw more than we did), upsert the snapshots, raise the new findings.
"""
from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from sqlalchemy import text

from app.core import audit
from app.core.db import (
    sqlite_deferred_transactions,
    sqlite_immediate_transactions,
    unit_of_work,
)
from app.core.time import utcnow
from app.extensions import db

from .bulk import read_population, simple_coverage, snapshot_stamps
from .compute import PatientInputs, PatientMeasures, finish, measure_supply
from .findings import Settings
from .queries import answer_stats, load_inputs, lock_patients, recent_adherence_alerts
from .services import raise_findings, settings, upsert_snapshots

log = logging.getLogger("oncolink.adherence")


_SNAPSHOT_ID = re.compile(r"^[0-9A-F]+-[0-9A-F]+(-[0-9]+)?$")


def _tune_postgres() -> None:
    """A few large aggregates: memory to sort and hash them, no JIT compile of them."""
    work_mem = str(current_app.config.get("ADHERENCE_PG_WORK_MEM", "64MB"))
    db.session.execute(text("SELECT set_config('work_mem', :v, true), set_config('jit', 'off', true)"),
                       {"v": work_mem})


@contextmanager
def consistent_read() -> Iterator[str | None]:
    """One snapshot for every read (PostgreSQL REPEATABLE READ, read only; SQLite: a deferred
    transaction in WAL mode), holding no lock that would stop the web from writing. On
    PostgreSQL yields the exported snapshot, for a second connection to read the same data."""
    db.session.commit()
    with sqlite_deferred_transactions():
        snapshot = None
        if db.session.get_bind().dialect.name == "postgresql":
            db.session.connection(execution_options={"isolation_level": "REPEATABLE READ",
                                                     "postgresql_readonly": True})
            snapshot = db.session.execute(text("SELECT pg_export_snapshot()")).scalar()
            _tune_postgres()
        try:
            yield snapshot
        finally:
            db.session.rollback()


def _answers_in(app, snapshot: str, as_of):
    """``answer_stats`` on another connection, in the snapshot of the main read."""
    with app.app_context():
        try:
            if not _SNAPSHOT_ID.match(snapshot):
                raise ValueError("unexpected snapshot id")
            db.session.connection(execution_options={"isolation_level": "REPEATABLE READ",
                                                     "postgresql_readonly": True})
            db.session.execute(text(f"SET TRANSACTION SNAPSHOT '{snapshot}'"))
            _tune_postgres()
            # One scan of the answers, no parallel workers: one core is left for the main
            # connection's reads.
            db.session.execute(text("SELECT set_config('max_parallel_workers_per_gather', '0', true)"))
            return answer_stats(as_of)
        finally:
            db.session.rollback()
            db.session.remove()


def _batches(ids: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


@dataclass
class Measured:
    """Every active patient's dispensing measures and the rest of their inputs: ``finish``
    gives a batch's full measures (pure Python, no database: it runs in a worker thread while
    the previous batch is written)."""

    partial: dict[int, PatientMeasures]
    answers: dict[int, dict]
    reports: dict[int, list]
    cfg: Settings

    def finish(self, patient_ids: list[int]) -> dict[int, PatientMeasures]:
        empty: dict = {}
        return {pid: finish(self.partial[pid], self.answers.get(pid, empty), self.reports.get(pid, ()),
                            self.cfg) for pid in patient_ids}


def compute_all(as_of, cfg) -> tuple[Measured, dict]:
    """Read everything needed and measure every active patient's dispensings. On PostgreSQL the
    answers' aggregate (the biggest read) runs on a second connection meanwhile."""
    size = max(1, int(current_app.config.get("ADHERENCE_BATCH_SIZE", 5000)))
    with consistent_read() as snapshot, ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(_answers_in, current_app._get_current_object(), snapshot, as_of) if snapshot else None
        population = read_population(as_of)
        if snapshot:
            # The PDC statement sorts every dispensing of the simple courses (1.2 million rows,
            # about 180 MB, at 50,000 patients over two years): in memory rather than on disk.
            sort_mem = str(current_app.config.get("ADHERENCE_PG_SORT_MEM", "256MB"))
            db.session.execute(text("SELECT set_config('work_mem', :v, true)"), {"v": sort_mem})
        simple = simple_coverage(as_of)
        detailed = {}
        if population.complex_ids:
            # Their answers come with the rest (below), not from a statement of their own.
            for chunk in _batches(sorted(population.complex_ids), size):
                detailed.update(load_inputs(chunk, as_of, answers={}))
        by_patient: dict[int, dict] = {}
        for (pid, drug_id), measured in simple.items():
            by_patient.setdefault(pid, {})[drug_id] = measured
        partial = {}
        for pid in population.patient_ids:
            if pid in detailed:
                partial[pid] = measure_supply(detailed[pid], as_of)
            else:
                inputs = PatientInputs(prescriptions=population.prescriptions.get(pid, []))
                partial[pid] = measure_supply(inputs, as_of, simple=by_patient.get(pid, {}))
        answers = pending.result() if pending is not None else answer_stats(as_of)
    return Measured(partial, answers, population.reports, cfg), {
        "ids": population.patient_ids, "stamps": population.snapshot_stamps, "python_path": len(detailed)}


def recompute_adherence(now: datetime | None = None) -> dict:
    """Store today's snapshots (30 days, 90 days, since start) of every active patient and raise
    the new findings. Safe to rerun: snapshots are upserted, alerts deduplicated."""
    started = time.perf_counter()
    now = now or utcnow()
    as_of = now.date()
    cfg = settings()
    size = max(1, int(current_app.config.get("ADHERENCE_BATCH_SIZE", 5000)))
    measured, read = compute_all(as_of, cfg)
    counts = {"patients": 0, "snapshots": 0, "alerts": 0, "batches": 0, "skipped": 0,
              "python_path": read["python_path"]}
    chunks = list(_batches(read["ids"], size))
    with ThreadPoolExecutor(max_workers=1) as pool:
        # The next batch is computed while this one waits on the database.
        ahead = pool.submit(measured.finish, chunks[0]) if chunks else None
        for k, chunk in enumerate(chunks):
            measures = ahead.result()
            ahead = pool.submit(measured.finish, chunks[k + 1]) if k + 1 < len(chunks) else None
            with sqlite_immediate_transactions(), unit_of_work():
                lock_patients(chunk)
                stamps = snapshot_stamps(as_of, chunk)
                fresh = [pid for pid in chunk if stamps.get(pid) == read["stamps"].get(pid)]
                blocked = recent_adherence_alerts(chunk, now, cfg.alert_cooldown_days)
                rows = []
                for pid in fresh:
                    rows.extend(measures[pid].snapshot_rows(pid, now))
                upsert_snapshots(rows)
                counts["alerts"] += raise_findings(((pid, measures[pid].findings) for pid in fresh), blocked)
            counts["patients"] += len(fresh)
            counts["skipped"] += len(chunk) - len(fresh)
            counts["snapshots"] += len(rows)
            counts["batches"] += 1
    with sqlite_immediate_transactions(), unit_of_work():
        audit.record("adherence_recompute", object_type="AdherenceSnapshot",
                     detail={"patients": counts["patients"], "alerts": counts["alerts"]})
    counts["seconds"] = round(time.perf_counter() - started, 3)
    log.info("adherence recompute: %(patients)s patients, %(alerts)s alerts in %(seconds)ss", counts)
    return counts
