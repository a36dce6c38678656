"""The nightly adherence recompute: every active patient in a handful of statements.

1. Read, in one consistent snapshot and without the write lock: the active patients and their
   prescriptions, the PDC of every simple course (SQL, ``bulk``), the answers' aggregates, the
   reports, and the rows of the few patients whose course needs the Python measures. On
   PostgreSQL the PDC statement and the answers' aggregate run on two more connections, side by
   side, while the main one reads the rest.
2. Compute in Python, batch by batch, each batch in a worker thread while the previous one is
   being written: patients whose every drug has one prescription and no dated event (nearly
   all) from their SQL measures in integers (``compute.simple_night``); the others through the
   general measures (``compute.measure_supply``, measured while the big reads run, then
   ``finish``). Both give the same rows and findings as ``compute.evaluate``.
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
from .compute import PatientMeasures, finish, measure_supply, simple_night
from .findings import Finding, Settings
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


def _in_snapshot(app, snapshot: str, work_mem: str | None, read, *args):
    """``read(*args)`` on a connection of its own, in the snapshot of the main read (PostgreSQL:
    the nightly job's big reads run side by side, each in one server process)."""
    with app.app_context():
        try:
            if not _SNAPSHOT_ID.match(snapshot):
                raise ValueError("unexpected snapshot id")
            db.session.connection(execution_options={"isolation_level": "REPEATABLE READ",
                                                     "postgresql_readonly": True})
            db.session.execute(text(f"SET TRANSACTION SNAPSHOT '{snapshot}'"))
            _tune_postgres()
            # No parallel workers: the two big reads and the Python process share the cores.
            db.session.execute(text("SELECT set_config('max_parallel_workers_per_gather', '0', true)"))
            if work_mem:
                db.session.execute(text("SELECT set_config('work_mem', :v, true)"), {"v": work_mem})
            return read(*args)
        finally:
            db.session.rollback()
            db.session.remove()


def _batches(ids: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


@dataclass
class Measured:
    """Every active patient's dispensing measures and the rest of their inputs: ``finish``
    gives a batch's snapshot rows and findings (pure Python, no database: it runs in a worker
    thread while the previous batch is written)."""

    partial: dict[int, PatientMeasures]  # the patients measured by the Python measures
    simple: dict[int, tuple[list, dict]]  # the others: (prescriptions, SQL measures per drug)
    answers: dict[int, dict]
    reports: dict[int, list]
    cfg: Settings
    now: datetime

    def finish(self, patient_ids: list[int]) -> tuple[dict[int, list[Finding]], dict[int, list[tuple]]]:
        empty: dict = {}
        found, rows = {}, {}
        as_of = self.now.date()
        for pid in patient_ids:
            partial = self.partial.get(pid)
            if partial is None:
                prescriptions, measured = self.simple[pid]
                rows[pid], found[pid] = simple_night(pid, prescriptions, measured, self.answers.get(pid, empty),
                                                     self.reports.get(pid, ()), as_of, self.cfg, self.now)
            else:
                result = finish(partial, self.answers.get(pid, empty), self.reports.get(pid, ()), self.cfg)
                rows[pid], found[pid] = result.snapshot_rows(pid, self.now), result.findings
        return found, rows


def compute_all(now: datetime, cfg) -> tuple[Measured, dict]:
    """Read everything needed and measure every active patient's dispensings. On PostgreSQL the
    two big reads (the answers' aggregate and the PDC statement) run on two more connections,
    in the same snapshot, while this one reads the rest and measures the courses that need the
    Python measures."""
    as_of = now.date()
    size = max(1, int(current_app.config.get("ADHERENCE_BATCH_SIZE", 5000)))
    with consistent_read() as snapshot, ThreadPoolExecutor(max_workers=2) as pool:
        answers_ahead = pdc_ahead = None
        if snapshot:
            app = current_app._get_current_object()
            answers_ahead = pool.submit(_in_snapshot, app, snapshot, None, answer_stats, as_of)
            # The PDC statement sorts every dispensing of the simple courses (1.2 million rows,
            # about 180 MB, at 50,000 patients over two years): in memory rather than on disk.
            pdc_ahead = pool.submit(_in_snapshot, app, snapshot,
                                    str(current_app.config.get("ADHERENCE_PG_SORT_MEM", "256MB")),
                                    simple_coverage, as_of)
        population = read_population(as_of)
        partial = {}
        if population.complex_ids:
            # Their answers come with the rest (below), not from a statement of their own.
            for chunk in _batches(sorted(population.complex_ids), size):
                for pid, inputs in load_inputs(chunk, as_of, answers={}).items():
                    partial[pid] = measure_supply(inputs, as_of)
        simple = pdc_ahead.result() if pdc_ahead is not None else simple_coverage(as_of)
        by_patient: dict[int, dict] = {}
        for (pid, drug_id), measured in simple.items():
            by_patient.setdefault(pid, {})[drug_id] = measured
        no_rx: list = []
        simple_inputs = {pid: (population.prescriptions.get(pid, no_rx), by_patient.get(pid, {}))
                         for pid in population.patient_ids if pid not in partial}
        answers = answers_ahead.result() if answers_ahead is not None else answer_stats(as_of)
    return Measured(partial, simple_inputs, answers, population.reports, cfg, now), {
        "ids": population.patient_ids, "stamps": population.snapshot_stamps,
        "python_path": len(population.complex_ids)}


def recompute_adherence(now: datetime | None = None) -> dict:
    """Store today's snapshots (30 days, 90 days, since start) of every active patient and raise
    the new findings. Safe to rerun: snapshots are upserted, alerts deduplicated."""
    started = time.perf_counter()
    now = now or utcnow()
    as_of = now.date()
    cfg = settings()
    size = max(1, int(current_app.config.get("ADHERENCE_BATCH_SIZE", 5000)))
    measured, read = compute_all(now, cfg)
    counts = {"patients": 0, "snapshots": 0, "alerts": 0, "batches": 0, "skipped": 0,
              "python_path": read["python_path"]}
    chunks = list(_batches(read["ids"], size))
    with ThreadPoolExecutor(max_workers=1) as pool:
        # The next batch is computed while this one waits on the database.
        ahead = pool.submit(measured.finish, chunks[0]) if chunks else None
        for k, chunk in enumerate(chunks):
            found, rows_of = ahead.result()
            ahead = pool.submit(measured.finish, chunks[k + 1]) if k + 1 < len(chunks) else None
            with sqlite_immediate_transactions(), unit_of_work():
                lock_patients(chunk)
                stamps = snapshot_stamps(as_of, chunk)
                fresh = [pid for pid in chunk if stamps.get(pid) == read["stamps"].get(pid)]
                blocked = recent_adherence_alerts(chunk, now, cfg.alert_cooldown_days)
                rows = [row for pid in fresh for row in rows_of[pid]]
                upsert_snapshots(rows)
                counts["alerts"] += raise_findings(((pid, found[pid]) for pid in fresh), blocked)
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
