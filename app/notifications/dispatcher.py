"""The outbox dispatcher: sends committed outbox rows once, at the provider's rate.

One pass:

1. Claim a few due rows in a short transaction (``FOR UPDATE SKIP LOCKED`` on
   PostgreSQL; ``BEGIN IMMEDIATE`` serialises claimers on SQLite): ``sending``,
   ``attempts + 1``, a lease (``claimed_until``); commit.
2. Rows tried before, with no transaction open and nothing of ours in flight: ask the
   provider whether an earlier attempt got through (reconciliation).
3. The others (and those not found) are sent by ``OUTBOX_SEND_WORKERS`` threads, which only
   call the provider: one chain per recipient, in claim order, each send paced by the
   ``SendPacer`` (never more than the rate in any second as the provider counts).
4. The main thread records what came back, all that has come back in one transaction (a
   group commit), fenced on ``attempts`` so a dispatcher that lost its lease cannot
   overwrite a newer claim. The next batch is claimed as soon as this one's last chain has
   left, and joins it unless it holds a row tried before or a message to a recipient still
   in flight (then it waits until this batch is recorded): at a strict rate, idle time is
   never caught up.

Two lanes. Rows are claimed in the order (priority, due time, id): urgent rows (priority 0:
safety replies to patients, pages to professionals) before any routine row. While a batch is
being sent, the main thread also looks for new urgent rows every ``urgent_poll_s`` and sends
them at once on threads kept for them (``urgent_workers``), so an urgent row never waits behind
a claimed routine batch; the pacer gives urgent sends the next free slot and keeps
``urgent_reserve`` of the rate out of the routine lane's reach. Routine rows still leave in
their order, one recipient's messages never overtake each other within a lane (an urgent one
to a patient overtakes that patient's routine ones still waiting, never one in flight), and
an urgent row tried before is left to the next batch's claim (reconciled first, as any other).
A row the provider refuses for good (``failed``) or gave up on (``dead``) is announced with the
``outbox_failed`` signal inside the transaction that records it (e.g. a failed page moves its
alert to the next person at once).

Why a row is never sent twice: a row is only resent after a reconciliation that found
no unattributed provider message with the same recipient and body since its first attempt.
A process killed between the provider's answer and the commit leaves the row ``sending``;
once its lease runs out the next claim reconciles and adopts the provider's message.

Recovery at takeover: every claim records its claimer (``claimed_by``: the scheduler's lease
holder id when the scheduler runs the dispatcher, else the dispatcher's own id). A scheduler
that takes the lease over from a holder that is gone runs ``run(recover_from=[that holder])``
at once: the rows that holder left ``sending`` are claimed again whatever their outbox lease
(``reclaim``, in ``RECOVERY_ORDER``) and go through the same reconciliation before any
resend, instead of waiting ``OUTBOX_LEASE_SECONDS``. The old holder stopped sending at its
renew deadline, before its scheduler lease could expire (``keep_going``), so nothing of its
own is started after the takeover; only a provider call already under way when it died or
froze can still land, and is then found by the reconciliation if the provider lists it.

Residual risk: a retried row goes out twice when an earlier attempt did reach the provider
but the reconciliation cannot see it: the provider's list lags behind its accepted
messages, the provider rewrote the body (e.g. "smart encoding" of a messaging service
replacing typographic quotes), or the two clocks differ by more than
``OUTBOX_RECONCILE_SKEW_SECONDS``. Calls carry no body: an orphaned call is matched on
recipient and time only, so another unattributed call to the same number in that window
would be taken for it (the row is then marked sent although its own call never started).
A row given up as ``dead`` after an ambiguous failure (timeout) may in fact have been
delivered. The console provider keeps no record: in development a crash can print twice.
"""
from __future__ import annotations

import logging
import os
import random
import secrets
import socket
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, literal, or_, select, tuple_, update
from sqlalchemy.exc import IntegrityError

from app.core.db import UTCDateTime, is_postgres, sqlite_immediate_transactions
from app.core.time import utcnow
from app.extensions import db
from config import ConfigError

from . import models
from .models import PRIORITY_URGENT, MessageChannel, OutboxEntry, OutboxState
from .optout import mark_unsubscribed
from .pacing import SendPacer, backoff_delay
from .providers import (
    ERROR_UNSUBSCRIBED,
    PermanentProviderError,
    ProviderError,
    ProviderResult,
    SentRecord,
    SmsProvider,
    TemporaryProviderError,
)
from .signals import FailedSend, outbox_failed
from .status import insert_outbound_messages, record_outbound

log = logging.getLogger("oncolink.notifications")

STATUS_CALLBACK_PATH = "/webhooks/twilio/status"

# The order in which rows left in flight by a scheduler that is gone are recovered at takeover:
# the urgent lane first (pages and safety replies), then the others in the order they were written.
RECOVERY_ORDER = (OutboxEntry.priority, OutboxEntry.id)


def new_claimer_id() -> str:
    """host:pid:nonce, the shape of a scheduler lease holder id, for a dispatcher run on its own."""
    return f"{socket.gethostname()[:200]}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass(frozen=True)
class DispatchSettings:
    public_base_url: str
    rate_per_second: float = 1.0
    rate_burst: float = 0.0  # 0: a tenth of a second's worth (at least 1)
    batch_size: int = 50
    time_budget_s: float = 50.0
    lease_s: float = 120.0
    max_attempts: int = 8
    backoff_base_s: float = 30.0
    backoff_max_s: float = 3600.0
    backoff_jitter: float = 0.2
    reconcile_skew_s: float = 120.0
    provider_timeout_s: float = 10.0
    send_workers: int = 4  # provider calls in flight at once (threads)
    urgent_reserve: float = 0.1  # fraction of the rate the routine lane never uses
    urgent_workers: int = 2  # more threads, for urgent sends only
    urgent_poll_s: float = 0.5  # how often a busy dispatcher looks for new urgent rows

    def __post_init__(self) -> None:
        if self.lease_s <= 2 * self.provider_timeout_s + 1:
            raise ConfigError("OUTBOX_LEASE_SECONDS must exceed twice TWILIO_TIMEOUT_SECONDS plus 1 s")
        if self.max_attempts < 1:
            raise ConfigError("OUTBOX_MAX_ATTEMPTS must be at least 1")
        if self.send_workers < 1:
            raise ConfigError("OUTBOX_SEND_WORKERS must be at least 1")
        if not 0.0 <= self.urgent_reserve < 1.0:
            raise ConfigError("OUTBOX_URGENT_RESERVE is a fraction of the rate, from 0 to below 1")
        if self.urgent_workers < 1 or self.urgent_poll_s <= 0:
            raise ConfigError("OUTBOX_URGENT_WORKERS must be at least 1 and OUTBOX_URGENT_POLL_SECONDS above 0")

    @classmethod
    def from_config(cls, config: Any) -> DispatchSettings:
        return cls(
            public_base_url=config["PUBLIC_BASE_URL"].rstrip("/"),
            rate_per_second=float(config["OUTBOX_RATE_PER_SECOND"]),
            rate_burst=float(config.get("OUTBOX_RATE_BURST", 0.0)),
            batch_size=int(config["OUTBOX_BATCH_SIZE"]),
            time_budget_s=float(config["OUTBOX_TIME_BUDGET_SECONDS"]),
            lease_s=float(config["OUTBOX_LEASE_SECONDS"]),
            max_attempts=int(config["OUTBOX_MAX_ATTEMPTS"]),
            backoff_base_s=float(config["OUTBOX_BACKOFF_BASE_SECONDS"]),
            backoff_max_s=float(config["OUTBOX_BACKOFF_MAX_SECONDS"]),
            backoff_jitter=float(config["OUTBOX_BACKOFF_JITTER"]),
            reconcile_skew_s=float(config["OUTBOX_RECONCILE_SKEW_SECONDS"]),
            provider_timeout_s=float(config.get("TWILIO_TIMEOUT_SECONDS", 10.0)),
            send_workers=int(config.get("OUTBOX_SEND_WORKERS") or 4),
            urgent_reserve=float(config.get("OUTBOX_URGENT_RESERVE", 0.1)),
            urgent_workers=int(config.get("OUTBOX_URGENT_WORKERS") or 2),
            urgent_poll_s=float(config.get("OUTBOX_URGENT_POLL_SECONDS") or 0.5),
        )

    @property
    def status_callback_url(self) -> str:
        return self.public_base_url + STATUS_CALLBACK_PATH


@dataclass(frozen=True)
class Claim:
    """A claimed row as plain values: no ORM object lives across the provider call."""

    id: int
    channel: str
    to_number: str
    body: str | None
    twiml_path: str | None
    patient_id: int | None
    ref: str | None
    attempts: int  # including this one: the fencing token of this claim
    first_attempt_at: datetime
    claimed_until: datetime
    tried_before: bool
    priority: int = 1

    @property
    def urgent(self) -> bool:
        return self.priority == PRIORITY_URGENT


@dataclass
class DispatchStats:
    claimed: int = 0
    sent: int = 0
    reconciled: int = 0  # found already sent by an earlier attempt, not sent again
    retried: int = 0  # temporary failure, back to pending
    failed: int = 0  # permanent failure
    dead: int = 0  # too many attempts
    released: int = 0  # claimed, then handed back unsent (time budget or short lease)
    lost: int = 0  # outcome could not be recorded: left for the next reconciliation
    recovered: int = 0  # rows a scheduler that is gone left in flight, claimed again at takeover
    elapsed_s: float = field(default=0.0)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _chains(claims: list[Claim]) -> list[list[Claim]]:
    """The claims grouped by recipient, each group in claim order."""
    chains: dict[str, list[Claim]] = {}
    for claim in claims:
        chains.setdefault(claim.to_number, []).append(claim)
    return list(chains.values())


@dataclass(frozen=True)
class Outcome:
    """What became of one claim in a sending thread (which never touches the database)."""

    claim: Claim
    result: ProviderResult | None = None
    error: ProviderError | None = None
    released: bool = False  # not sent: the time budget or the lease ran out first


class Dispatcher:
    def __init__(self, provider: SmsProvider, settings: DispatchSettings, *,
                 monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None,
                 claimer: str | None = None, keep_going: Callable[[], bool] | None = None):
        self.provider = provider
        self.settings = settings
        self.claimer = claimer or new_claimer_id()  # recorded on every row this dispatcher claims
        # Asked before each claim and each provider call: False stops the run at once (unsent claims
        # handed back), e.g. when the scheduler running it stops or nears the end of its lease.
        self._keep_going = keep_going
        self._monotonic = monotonic
        burst = settings.rate_burst or settings.rate_per_second / 10
        self.pacer = SendPacer(settings.rate_per_second, burst=burst, monotonic=monotonic, sleep=sleep,
                               reserve=settings.urgent_reserve)
        self.rng = rng or random.Random()

    # ------------------------------------------------------------------ the loop

    def run(self, *, batch_size: int | None = None, time_budget_s: float | None = None,
            urgent_only: bool = False, recover_from: Sequence[str] = ()) -> DispatchStats:
        """Send due rows until none is due or the time budget is spent (0: no budget).

        ``urgent_only``: the urgent lane alone (e.g. the platform watcher, from another process,
        sends its own fault reports, and any page or safety reply waiting, when the scheduler is
        down). ``recover_from``: claimers known to be gone (a scheduler whose lease was taken
        over); the rows they left ``sending`` are claimed again first and reconciled, then sent if
        the provider has no trace of them."""
        stats = DispatchStats()
        started = self._monotonic()
        budget = self.settings.time_budget_s if time_budget_s is None else time_budget_s
        deadline = started + budget if budget and budget > 0 else None
        if db.session.new or db.session.dirty or db.session.deleted:
            raise RuntimeError("the dispatcher commits on its own: commit or roll back first")
        db.session.rollback()  # start from no open transaction
        self._urgent_only = urgent_only
        self._next_poll = time.monotonic() + self.settings.urgent_poll_s
        with sqlite_immediate_transactions(), ThreadPoolExecutor(
                self.settings.send_workers + self.settings.urgent_workers,
                thread_name_prefix="outbox-send") as pool:
            recovered = self.reclaim(recover_from) if recover_from else []
            stats.claimed += len(recovered)
            stats.recovered += len(recovered)
            self._loop(stats, self._batch_limit(batch_size), deadline, pool, recovered)
        stats.elapsed_s = round(self._monotonic() - started, 3)
        return stats

    def _batch_limit(self, batch_size: int | None) -> int:
        limit = batch_size or self.settings.batch_size
        if self.settings.rate_per_second > 0:
            # Claim no more than can be sent in a quarter of the lease at this rate.
            limit = min(limit, max(1, int(self.settings.rate_per_second * self.settings.lease_s / 4)))
        return max(1, limit)

    def _loop(self, stats: DispatchStats, limit: int, deadline: float | None, pool: Executor,
              held: list[Claim]) -> None:
        # held: claimed ahead by the previous batch (or recovered at takeover), to dispatch now
        while deadline is None or self._monotonic() < deadline:
            if self._halted():
                break
            claims = held
            if not claims:
                claims = self.claim(limit, urgent_only=self._urgent_only)
                stats.claimed += len(claims)
            if not claims:
                return
            done, held = self._dispatch(claims, stats, deadline, pool, limit)
            if not done:
                break
        if held:
            stats.released += self.release(held)

    def _stop_before(self, claim: Claim, deadline: float | None) -> bool:
        """True when the time budget is spent or the claim's lease is too short for another call."""
        return ((deadline is not None and self._monotonic() >= deadline) or not self._lease_ok(claim)
                or self._halted())

    def _halted(self) -> bool:
        return self._keep_going is not None and not self._keep_going()

    def _lease_ok(self, claim: Claim) -> bool:
        # Room for a reconciliation and a send, each bounded by the provider timeout.
        needed = timedelta(seconds=2 * self.settings.provider_timeout_s + 1)
        return claim.claimed_until - utcnow() > needed

    def _dispatch(self, claims: list[Claim], stats: DispatchStats, deadline: float | None,
                  pool: Executor, limit: int) -> tuple[bool, list[Claim]]:
        """Send one claimed batch and record every outcome: (False when claims were handed back,
        claims made ahead that could not join this batch).

        1. Rows tried before are first looked for at the provider, here, while none of this
           dispatcher's sends is in flight or unrecorded (so none can be taken for theirs).
        2. The rest go through the sending threads: one chain per recipient, in claim order, so
           two messages to one patient never overtake each other.
        """
        handled: set[int] = set()
        for claim in claims:
            if not claim.tried_before:
                continue
            if self._stop_before(claim, deadline):
                stats.released += self.release([c for c in claims if c.id not in handled])
                return False, []
            handled.add(claim.id)
            try:
                found = self.reconcile(claim)
            except ProviderError as exc:
                self._record_failure(claim, exc, stats)
                continue
            if found is None:
                handled.discard(claim.id)  # not at the provider: send it (below)
            else:
                self._record_sent(claim, ProviderResult(found.sid, found.status or "queued"), stats,
                                  reconciled=True)
        return self._send_chains(_chains([c for c in claims if c.id not in handled]), stats, deadline,
                                 pool, limit)

    def _send_chains(self, chains: list[list[Claim]], stats: DispatchStats, deadline: float | None,
                     pool: Executor, limit: int) -> tuple[bool, list[Claim]]:
        """``send_workers`` chains in flight; whatever has come back is recorded together, in one
        transaction, while the threads go on sending (a group commit). So at most twice
        ``send_workers`` chains are sent and not yet recorded: what a crash leaves to reconcile.

        When every chain has been handed to a thread, the next batch is claimed at once, so the
        threads never wait for a claim (at a strict rate, time lost is never caught up). It joins
        this one unless it holds a row tried before (reconciled only when nothing of ours is in
        flight) or a message to a recipient whose send is in flight (order): then it is returned,
        to be dispatched once this batch is recorded.

        Meanwhile new urgent rows are claimed every ``urgent_poll_s`` and sent on the threads
        kept for them; no chain starts while a send to its recipient is in flight."""
        waiting: deque[list[Claim]] = deque(c for c in chains if not c[0].urgent)
        urgent: deque[list[Claim]] = deque(c for c in chains if c[0].urgent)
        in_flight: dict[Future, tuple[str, bool]] = {}  # -> (recipient, urgent lane)
        released, held, claim_ahead = 0, [], True

        def start(queue: deque[list[Claim]], lane_urgent: bool, cap: int) -> None:
            skipped: list[list[Claim]] = []
            while queue and sum(1 for _to, u in in_flight.values() if u == lane_urgent) < cap:
                chain = queue.popleft()
                if chain[0].to_number in {to for to, _u in in_flight.values()}:
                    skipped.append(chain)  # one send at a time to one recipient
                    continue
                future = pool.submit(self._send_chain, chain, deadline)
                in_flight[future] = (chain[0].to_number, lane_urgent)
            queue.extendleft(reversed(skipped))

        def refill() -> None:
            start(urgent, True, self.settings.urgent_workers)
            start(waiting, False, self.settings.send_workers)

        refill()
        while in_flight:
            if not waiting and not urgent and claim_ahead and not released and not self._urgent_only:
                ahead = self.claim(limit)
                stats.claimed += len(ahead)
                busy = {to for to, _u in in_flight.values()}
                if ahead and not any(c.tried_before or c.to_number in busy for c in ahead):
                    for chain in _chains(ahead):
                        (urgent if chain[0].urgent else waiting).append(chain)
                    refill()
                else:
                    held, claim_ahead = ahead, False
            done, _running = wait(in_flight, timeout=self._poll_in(), return_when=FIRST_COMPLETED)
            for future in done:
                del in_flight[future]
            if not released:  # past the time budget a poll's claims come back released: nothing lost
                urgent.extend(self._poll_urgent(stats))
            refill()
            released += self._record([outcome for future in done for outcome in future.result()], stats)
        leftover = [c for chain in (*urgent, *waiting) for c in chain]
        if leftover:  # only when sends were handed back (time budget): none of these started
            stats.released += self.release(leftover)
        if released and held:
            stats.released += self.release(held)
            held = []
        return released == 0, held

    def _poll_in(self) -> float:
        return max(0.0, self._next_poll - time.monotonic())

    def _poll_urgent(self, stats: DispatchStats) -> list[list[Claim]]:
        """New urgent rows (never tried: those are reconciled first, by a batch's claim), when the
        poll interval has passed."""
        if time.monotonic() < self._next_poll:
            return []
        self._next_poll = time.monotonic() + self.settings.urgent_poll_s
        claims = self.claim(self.settings.urgent_workers * 4, urgent_only=True, fresh_only=True)
        stats.claimed += len(claims)
        return _chains(claims)

    def _send_chain(self, chain: list[Claim], deadline: float | None) -> list[Outcome]:
        """In a sending thread: one recipient's claims, in order, each paced."""
        outcomes = []
        for index, claim in enumerate(chain):
            if self._stop_before(claim, deadline):
                outcomes.extend(Outcome(c, released=True) for c in chain[index:])
                break
            ticket = self.pacer.acquire(urgent=claim.urgent)
            try:
                outcomes.append(Outcome(claim, result=self._send(claim)))
            except ProviderError as exc:
                outcomes.append(Outcome(claim, error=exc))
            finally:
                self.pacer.done(ticket)
        return outcomes

    # ------------------------------------------------------------------ claim / release

    def claim(self, limit: int, *, urgent_only: bool = False, fresh_only: bool = False) -> list[Claim]:
        """Mark up to ``limit`` due rows ``sending`` and commit; returns them as plain values.

        Urgent rows first, then by due time (the partial index ``ix_outbox_entry_claim``, read in
        order). ``urgent_only``: the urgent lane alone; ``fresh_only``: rows never tried."""
        now = utcnow()
        until = now + timedelta(seconds=self.settings.lease_s)
        due = or_(
            OutboxEntry.state == OutboxState.PENDING,
            and_(OutboxEntry.state == OutboxState.SENDING,
                 or_(OutboxEntry.claimed_until.is_(None), OutboxEntry.claimed_until < now)),
        )
        # The index's own predicate, word for word, so both databases use it.
        to_send = models.to_send()
        lane = [OutboxEntry.priority == PRIORITY_URGENT] if urgent_only else []
        if fresh_only:
            lane.append(OutboxEntry.first_attempt_at.is_(None))
        query = (select(OutboxEntry.id, OutboxEntry.channel, OutboxEntry.to_number, OutboxEntry.body,
                        OutboxEntry.twiml_path, OutboxEntry.patient_id, OutboxEntry.ref,
                        OutboxEntry.attempts, OutboxEntry.first_attempt_at, OutboxEntry.priority)
                 .where(to_send, due, OutboxEntry.next_attempt_at <= now, *lane)
                 .order_by(OutboxEntry.priority, OutboxEntry.next_attempt_at, OutboxEntry.id)
                 .limit(limit))
        if is_postgres():
            query = query.with_for_update(skip_locked=True)
        try:
            rows = db.session.execute(query).all()
            if rows:
                db.session.execute(
                    update(OutboxEntry)
                    .where(OutboxEntry.id.in_([row.id for row in rows]))
                    .values(state=OutboxState.SENDING, attempts=OutboxEntry.attempts + 1,
                            claimed_until=until, claimed_by=self.claimer,
                            first_attempt_at=func.coalesce(OutboxEntry.first_attempt_at,
                                                           literal(now, UTCDateTime())))
                    .execution_options(synchronize_session=False))
            db.session.commit()
        except BaseException:
            db.session.rollback()
            raise
        return [Claim(id=row.id, channel=row.channel, to_number=row.to_number, body=row.body,
                      twiml_path=row.twiml_path, patient_id=row.patient_id, ref=row.ref,
                      attempts=row.attempts + 1, first_attempt_at=row.first_attempt_at or now,
                      claimed_until=until, tried_before=row.first_attempt_at is not None,
                      priority=row.priority)
                for row in rows]

    def reclaim(self, claimers: Sequence[str]) -> list[Claim]:
        """Claim again, at once and whatever their outbox lease, every row that ``claimers`` (known
        to be gone) left ``sending``; in ``RECOVERY_ORDER``. Each is reconciled before any resend."""
        now = utcnow()
        until = now + timedelta(seconds=self.settings.lease_s)
        query = (select(OutboxEntry.id, OutboxEntry.channel, OutboxEntry.to_number, OutboxEntry.body,
                        OutboxEntry.twiml_path, OutboxEntry.patient_id, OutboxEntry.ref,
                        OutboxEntry.attempts, OutboxEntry.first_attempt_at, OutboxEntry.priority)
                 .where(OutboxEntry.state == OutboxState.SENDING, OutboxEntry.claimed_by.in_(list(claimers)))
                 .order_by(*RECOVERY_ORDER))
        if is_postgres():
            query = query.with_for_update(skip_locked=True)
        try:
            rows = db.session.execute(query).all()
            if rows:
                db.session.execute(
                    update(OutboxEntry)
                    .where(OutboxEntry.id.in_([row.id for row in rows]))
                    .values(attempts=OutboxEntry.attempts + 1, claimed_until=until, claimed_by=self.claimer,
                            first_attempt_at=func.coalesce(OutboxEntry.first_attempt_at,
                                                           literal(now, UTCDateTime())))
                    .execution_options(synchronize_session=False))
            db.session.commit()
        except BaseException:
            db.session.rollback()
            raise
        if rows:
            log.warning("outbox: %d row(s) left in flight by %s recovered", len(rows), ", ".join(claimers))
        return [Claim(id=row.id, channel=row.channel, to_number=row.to_number, body=row.body,
                      twiml_path=row.twiml_path, patient_id=row.patient_id, ref=row.ref,
                      attempts=row.attempts + 1, first_attempt_at=row.first_attempt_at or now,
                      claimed_until=until, tried_before=True, priority=row.priority)
                for row in rows]

    def release(self, claims: list[Claim]) -> int:
        """Hand unsent claims back as they were (not counted as an attempt)."""
        released = 0
        for claim in claims:
            values: dict[str, Any] = {"state": OutboxState.PENDING, "attempts": claim.attempts - 1,
                                      "claimed_until": None}
            if not claim.tried_before:
                values["first_attempt_at"] = None
            released += self._fenced_update(claim, values)
        db.session.commit()
        return released

    def _fenced_update(self, claim: Claim, values: dict[str, Any]) -> int:
        result = db.session.execute(
            update(OutboxEntry)
            .where(OutboxEntry.id == claim.id, OutboxEntry.state == OutboxState.SENDING,
                   OutboxEntry.attempts == claim.attempts)
            .values(**values)
            .execution_options(synchronize_session=False))
        return result.rowcount

    # ------------------------------------------------------------------ one row

    def _send(self, claim: Claim) -> ProviderResult:
        callback = self.settings.status_callback_url
        if claim.channel == MessageChannel.VOICE:
            url = self.settings.public_base_url + (claim.twiml_path or "")
            return self.provider.start_call(claim.to_number, url, callback)
        return self.provider.send_sms(claim.to_number, claim.body or "", callback)

    def reconcile(self, claim: Claim) -> SentRecord | None:
        """The provider's record of an earlier attempt of this row, if one got through."""
        since = claim.first_attempt_at - timedelta(seconds=self.settings.reconcile_skew_s)
        if claim.channel == MessageChannel.VOICE:
            records = self.provider.recent_calls(claim.to_number, since)
        else:
            records = [r for r in self.provider.recent_messages(claim.to_number, since)
                       if r.body == claim.body]
        candidates = [r for r in records if r.created_at is None or r.created_at >= since]
        if not candidates:
            return None
        try:
            taken = set(db.session.scalars(select(OutboxEntry.provider_sid).where(
                OutboxEntry.provider_sid.in_([r.sid for r in candidates]))))
        finally:
            db.session.rollback()  # a read: release SQLite's lock before anything else
        free = [r for r in candidates if r.sid not in taken]
        if not free:
            return None
        return min(free, key=lambda r: (r.created_at is None, r.created_at or utcnow(), r.sid))

    # ------------------------------------------------------------------ outcomes

    def _record(self, outcomes: list[Outcome], stats: DispatchStats) -> int:
        """Record what came back from the sending threads; returns how many claims were handed back."""
        sent = [(o.claim, o.result) for o in outcomes if o.result is not None]
        if sent:
            self._record_sent_group(sent, stats)
        for outcome in outcomes:
            if outcome.error is not None:
                self._record_failure(outcome.claim, outcome.error, stats)
        released = [o.claim for o in outcomes if o.released]
        if released:
            stats.released += self.release(released)
        return len(released)

    def _record_failure(self, claim: Claim, error: ProviderError, stats: DispatchStats) -> None:
        if isinstance(error, PermanentProviderError):
            self._record_permanent(claim, error, stats)
        else:
            self._record_temporary(claim, error, stats)

    def _record_sent_group(self, sent: list[tuple[Claim, ProviderResult]], stats: DispatchStats) -> None:
        """Several sends in one transaction of three statements: one fenced UPDATE, one INSERT of
        their Messages, the commit (a round trip per send would make the recording, not the
        provider, the bottleneck).

        When a status callback stored one of these SIDs first, the insert fails: the group is
        rolled back and recorded one send at a time (merging with that callback's row)."""
        if len(sent) == 1:
            self._record_sent(*sent[0], stats)
            return
        try:
            recorded = self._mark_sent(sent)
            insert_outbound_messages([
                dict(sid=result.sid, status=result.status, channel=claim.channel, body=claim.body,
                     to_number=claim.to_number, from_number=self.provider.sender,
                     patient_id=claim.patient_id, outbox_id=claim.id, ref=claim.ref)
                for claim, result in sent if claim.id in recorded])
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            for claim, result in sent:
                self._record_sent(claim, result, stats)
            return
        except BaseException:
            db.session.rollback()
            raise
        for claim, _result in sent:
            if claim.id not in recorded:
                log.warning("outbox %s: claim lost before its result was recorded", claim.id)
        stats.lost += len(sent) - len(recorded)
        stats.sent += len(recorded)

    def _mark_sent(self, sent: list[tuple[Claim, ProviderResult]]) -> set[int]:
        """``sent`` with its SID, each row fenced on its own claim's ``attempts``; the ids changed."""
        sids = {claim.id: result.sid for claim, result in sent}
        return set(db.session.scalars(
            update(OutboxEntry)
            .where(tuple_(OutboxEntry.id, OutboxEntry.attempts).in_([(c.id, c.attempts) for c, _r in sent]),
                   OutboxEntry.state == OutboxState.SENDING)
            .values(state=OutboxState.SENT, provider_sid=case(sids, value=OutboxEntry.id),
                    sent_at=utcnow(), claimed_until=None)
            .returning(OutboxEntry.id)
            .execution_options(synchronize_session=False)))

    def _record_sent(self, claim: Claim, result: ProviderResult, stats: DispatchStats, *,
                     reconciled: bool = False) -> None:
        for attempt in (1, 2):
            try:
                changed = self._fenced_update(claim, {
                    "state": OutboxState.SENT, "provider_sid": result.sid, "sent_at": utcnow(),
                    "claimed_until": None,
                })
                if not changed:
                    db.session.rollback()
                    stats.lost += 1
                    log.warning("outbox %s: claim lost before its result was recorded", claim.id)
                    return
                record_outbound(sid=result.sid, status=result.status, channel=claim.channel,
                                body=claim.body, to_number=claim.to_number,
                                from_number=self.provider.sender, patient_id=claim.patient_id,
                                outbox_id=claim.id, ref=claim.ref, optimistic=attempt == 1)
                db.session.commit()
                break
            except IntegrityError:
                # A status callback stored this SID first (merge with it on the second try),
                # or another reconciliation adopted this SID (leave the row to the next one).
                db.session.rollback()
                if attempt == 2:
                    stats.lost += 1
                    log.error("outbox %s: provider SID already attributed", claim.id)
                    return
        if reconciled:
            stats.reconciled += 1
        else:
            stats.sent += 1

    def _record_temporary(self, claim: Claim, error: ProviderError, stats: DispatchStats) -> None:
        values: dict[str, Any] = {"claimed_until": None, "last_error_code": error.code,
                                  "last_error": error.description}
        if claim.attempts >= self.settings.max_attempts:
            values["state"] = OutboxState.DEAD
        else:
            values["state"] = OutboxState.PENDING
            values["next_attempt_at"] = utcnow() + backoff_delay(
                claim.attempts, base_s=self.settings.backoff_base_s, max_s=self.settings.backoff_max_s,
                jitter=self.settings.backoff_jitter, rng=self.rng)
        if self._fenced_update(claim, values):
            if values["state"] == OutboxState.DEAD:
                self._announce_failure(claim, OutboxState.DEAD, error)
            db.session.commit()
            if values["state"] == OutboxState.DEAD:
                stats.dead += 1
                log.warning("outbox %s: dead after %s attempts (%s)", claim.id, claim.attempts,
                            error.description)
            else:
                stats.retried += 1
        else:
            db.session.rollback()
            stats.lost += 1

    def _record_permanent(self, claim: Claim, error: PermanentProviderError, stats: DispatchStats) -> None:
        changed = self._fenced_update(claim, {
            "state": OutboxState.FAILED, "claimed_until": None, "last_error_code": error.code,
            "last_error": error.description,
        })
        if not changed:
            db.session.rollback()
            stats.lost += 1
            return
        if error.code == ERROR_UNSUBSCRIBED:
            mark_unsubscribed(claim.to_number, source=f"provider error {error.code}")
        self._announce_failure(claim, OutboxState.FAILED, error)
        db.session.commit()
        stats.failed += 1
        log.info("outbox %s: refused by the provider (%s)", claim.id, error.description)

    def _announce_failure(self, claim: Claim, state: str, error: ProviderError) -> None:
        """``outbox_failed`` in this transaction; a listener's failure never loses the record."""
        if not outbox_failed.receivers:
            return
        failed = FailedSend(id=claim.id, channel=claim.channel, ref=claim.ref, state=str(state),
                            error_code=error.code, urgent=claim.urgent)
        try:
            with db.session.begin_nested():
                outbox_failed.send(failed)
        except Exception as exc:  # noqa: BLE001 - the failure itself is recorded; listeners catch up
            log.error("outbox %s: a listener of its failure failed (%s)", claim.id, type(exc).__name__)
