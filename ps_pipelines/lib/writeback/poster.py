"""The poster: sends a flow's due ledger rows with a capped number of calls in flight.

Worker threads only make HTTP calls; the calling thread is the ledger's single writer. For
each batch it first commits an attempt per row, then hands the rows to the workers, then
commits their results as they finish. A crash between a call and its result leaves an
open attempt and the row still due, so the next run sends it again, which every sender
makes harmless (upserts by external id; Kantata workspaces are looked up before a create).

Rows are posted in waves so that a row waits for the rows it depends on (a deal's customer
before its project, the project before the CRM update); a row whose dependency failed is
left for a later run and reported as blocked.

A create the target cannot deduplicate (``senders.Sender.create_without_key``) is fenced by
lease: its attempt records until when its call may still land (``PostSettings.lease_for``),
and its create is not sent later than that allows. A run that finds such an attempt open
(its run was killed) or in doubt (timed out) before its lease has passed leaves the row
waiting, visibly, and does not call; once the lease has passed it closes the attempt as
``abandoned`` and the sender looks the record up again before creating. Open attempts of
other senders are closed as ``abandoned`` at once: their calls are upserts.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from ps_pipelines.lib.http import ApiClient
from ps_pipelines.lib.writeback.outbox import (
    CANCELLED,
    DEAD,
    FAILED_RETRYABLE,
    IN_DOUBT,
    POSTED,
    WAITING_FOR_IN_FLIGHT,
    AttemptResult,
    EnqueueCounts,
    OutboxRow,
    UnfinishedAttempt,
    abandon_attempts,
    eligible_rows,
    mark_waiting,
    record_progress,
    states_of,
    unfinished_attempts,
)
from ps_pipelines.lib.writeback.senders import (
    DEFAULT_ADOPT_MARGIN,
    SENDERS,
    Outcome,
    Targets,
    creates_without_key,
    send,
)

Clock = Callable[[], datetime]
# Called on the writer thread after a call returned and before its result is recorded: a
# test's way to crash a run exactly between the target accepting a write and the ledger.
AfterCall = Callable[[OutboxRow, Outcome], None]


QUEUED_PER_WORKER = 8


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class PostSettings:
    max_in_flight: int = 5  # NetSuite-like concurrency governance
    max_attempts: int = 5  # a retryable row goes dead after this many attempts of one version
    replay_dead: bool = False  # also send dead rows (after their cause was fixed)
    retry_backoff_seconds: float = 60.0  # a failed row waits this long before the next run retries it ...
    retry_backoff_max_seconds: float = 3600.0  # ... doubling per attempt, up to this
    adopt_margin: timedelta = DEFAULT_ADOPT_MARGIN
    # The lease of a create without an idempotency key is the client's time budget plus these two:
    # time for the create to start after its attempt opened (queued behind other calls, the
    # lookup before it) ...
    lease_send_slack: timedelta = timedelta(seconds=60)
    # ... and time for the platform to commit a create after the client stopped waiting for it
    # (a slow server finishes what it accepted), plus clock skew between machines sharing the ledger.
    lease_landing_grace: timedelta = timedelta(seconds=60)

    def backoff(self, attempts: int) -> timedelta:
        seconds = self.retry_backoff_seconds * 2 ** max(attempts - 1, 0)
        return timedelta(seconds=min(seconds, self.retry_backoff_max_seconds))

    def lease_for(self, client: ApiClient) -> timedelta:
        """How long after its attempt opens a create through ``client`` may still land.

        ``client.time_budget()`` (every send and backoff of the call, retries included) plus
        ``lease_send_slack`` and ``lease_landing_grace``. With the production Kantata client
        (5 s connect, 60 s read, 6 retries, 30 s backoff cap): 635 + 60 + 60 = 755 s.
        """
        return timedelta(seconds=client.time_budget()) + self.lease_send_slack + self.lease_landing_grace

    def send_window(self, client: ApiClient) -> timedelta:
        """How long after its attempt opens a create may still be sent (first try or retry):
        a send that starts by then ends within the client's timeouts, and lands within the
        landing grace, so before the lease ends."""
        connect, read = client.timeout
        return self.lease_for(client) - self.lease_landing_grace - timedelta(seconds=connect + read)


@dataclass
class PostSummary:
    """What one run did, for run metadata: counts, HTTP effort, throughput and failing keys."""

    flow: str
    run_id: str
    posted: int = 0  # first postings (created, or adopted after a lost answer)
    updated: int = 0  # new versions posted over an earlier posting (same target record)
    failed_retryable: int = 0
    dead: int = 0
    blocked: int = 0  # waiting for a dependency that is not posted
    waiting: int = 0  # creates held while an earlier attempt's lease runs (its create may still land)
    abandoned: int = 0  # open attempts of dead runs closed by this one
    requests: int = 0
    retries: int = 0
    throttled: int = 0
    seconds: float = 0.0
    failures: dict[str, str] = field(default_factory=dict)  # outbox key -> reason
    waiting_for: dict[str, str] = field(default_factory=dict)  # outbox key -> the attempt it waits for
    enqueue: EnqueueCounts | None = None

    @property
    def unchanged(self) -> int:
        return self.enqueue.unchanged if self.enqueue else 0

    @property
    def invalid(self) -> int:
        return self.enqueue.invalid if self.enqueue else 0

    @property
    def posted_per_second(self) -> float:
        return (self.posted + self.updated) / self.seconds if self.seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        """Nothing failed in this run (invalid rows are the data's problem, reported apart)."""
        return not (self.failed_retryable or self.dead)

    def as_metadata(self) -> dict[str, Any]:
        failing = dict(self.failures)
        if self.enqueue is not None:
            failing.update(self.enqueue.invalid_keys)
        return {
            "flow": self.flow, "run_id": self.run_id, "posted": self.posted, "updated": self.updated,
            "unchanged": self.unchanged, "invalid": self.invalid, "failed_retryable": self.failed_retryable,
            "dead": self.dead, "blocked": self.blocked, "waiting": self.waiting, "abandoned": self.abandoned,
            "requests": self.requests, "retries": self.retries,
            "throttled": self.throttled, "seconds": round(self.seconds, 3),
            "posted_per_second": round(self.posted_per_second, 2),
            "enqueue": self.enqueue.as_dict() if self.enqueue else None,
            "failing": failing,
            "waiting_for": dict(self.waiting_for),
        }


class Poster:
    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        targets: Targets,
        settings: PostSettings | None = None,
        *,
        clock: Clock = utc_now,
        after_call: AfterCall | None = None,
    ) -> None:
        self.con = con
        self.targets = targets
        self.settings = settings or PostSettings()
        self.clock = clock
        self.after_call = after_call

    def post(self, flow: str, run_id: str) -> PostSummary:
        """Send every due row of ``flow``; returns the run's summary."""
        summary = PostSummary(flow=flow, run_id=run_id)
        before, started = self.targets.stats(), time.perf_counter()
        attempted: set[str] = set()
        try:
            in_flight = self._resume(flow, summary)
            while True:
                rows = eligible_rows(self.con, flow, self.clock(), replay_dead=self.settings.replay_dead,
                                     exclude=attempted)
                rows = self._fence(rows, in_flight, run_id, summary)
                attempted.update(summary.waiting_for)
                ready, waiting = self._partition(rows)
                if not ready:
                    summary.blocked = len(waiting)
                    summary.failures.update(waiting)
                    break
                attempted.update(row.outbox_key for row in ready)
                self._post_wave(ready, run_id, summary)
        finally:
            summary.seconds = time.perf_counter() - started
            after = self.targets.stats()
            summary.requests, summary.retries, summary.throttled = (
                after[name] - before[name] for name in ("requests", "retries", "throttled"))
        return summary

    # -- fencing ---------------------------------------------------------------------------------
    def _lease(self, system: str) -> timedelta:
        try:
            return self.settings.lease_for(self.targets.api_client(system))
        except RuntimeError:  # no client for that system here: its rows cannot be sent anyway
            return self.settings.lease_send_slack + self.settings.lease_landing_grace

    def _lease_end(self, attempt: UnfinishedAttempt) -> datetime | None:
        """Until when ``attempt``'s call may still land; None when nothing of it can land twice."""
        if attempt.lease_until is not None:
            return attempt.lease_until
        sender = SENDERS.get((attempt.target_system, attempt.record_type))
        if attempt.open and sender is not None and sender.create_without_key and not attempt.row_target_id:
            # Opened before attempts had leases: the lease it would have had.
            return attempt.started_at + self._lease(attempt.target_system)
        return None

    def _resume(self, flow: str, summary: PostSummary) -> dict[str, tuple[UnfinishedAttempt, datetime]]:
        """Close the open attempts of dead runs whose calls can no longer land (``abandoned``);
        return, per row, the attempt whose call may still land and the end of its lease.

        Every open attempt is a dead run's: this poster has opened none yet, and the warehouse
        lets one poster write at a time.
        """
        now = self.clock()
        in_flight: dict[str, tuple[UnfinishedAttempt, datetime]] = {}
        abandoned: list[tuple[UnfinishedAttempt, str]] = []
        for attempt in unfinished_attempts(self.con, flow, now):
            until = self._lease_end(attempt)
            if until is not None and until > now:
                if attempt.outbox_key not in in_flight or until > in_flight[attempt.outbox_key][1]:
                    in_flight[attempt.outbox_key] = (attempt, until)
            elif attempt.open:
                reason = f"run {attempt.run_id} ended without recording a result"
                if until is not None:
                    reason += f"; its lease ran to {_moment(until)}"
                abandoned.append((attempt, reason))
        abandon_attempts(self.con, abandoned, now)
        summary.abandoned += len(abandoned)
        return in_flight

    def _fence(
        self,
        rows: list[OutboxRow],
        in_flight: dict[str, tuple[UnfinishedAttempt, datetime]],
        run_id: str,
        summary: PostSummary,
    ) -> list[OutboxRow]:
        """``rows`` minus the creates whose earlier attempt may still land; those wait (ledger, summary)."""
        free, waits = [], {}
        for row in rows:
            held = in_flight.get(row.outbox_key) if creates_without_key(row) else None
            if held is None:
                free.append(row)
                continue
            attempt, until = held
            reason = (f"{WAITING_FOR_IN_FLIGHT} {attempt.attempt} of run {attempt.run_id} until {_moment(until)}: "
                      "its create may still land; then the record is looked up before creating")
            waits[row.outbox_key] = (reason, until)
        mark_waiting(self.con, waits, run_id, self.clock())
        summary.waiting += len(waits)
        summary.waiting_for.update({key: reason for key, (reason, _) in waits.items()})
        return free

    def _open_leases(self, rows: Sequence[OutboxRow], now: datetime) -> None:
        """Give each create without an idempotency key its lease and send deadline, from ``now``."""
        clock = time.monotonic()
        for row in rows:
            if creates_without_key(row):
                try:
                    client = self.targets.api_client(row.target_system)
                except RuntimeError:  # no client for it: the call fails and is reported as such
                    continue
                row.lease_until = now + self.settings.lease_for(client)
                row.send_by = clock + self.settings.send_window(client).total_seconds()

    # -- dependencies ----------------------------------------------------------------------------
    def _partition(self, rows: list[OutboxRow]) -> tuple[list[OutboxRow], dict[str, str]]:
        """Rows whose dependencies are all posted (or not in the ledger), and why the rest wait."""
        states = states_of(self.con, (key for row in rows for key in row.depends_on))
        ready, waiting = [], {}
        for row in rows:
            unmet = [f"{key} ({states[key][0]})" for key in row.depends_on
                     if key in states and states[key][0] not in (POSTED, CANCELLED)]
            if unmet:
                waiting[row.outbox_key] = "blocked: waiting for " + ", ".join(unmet)
            else:
                row.known_refs = {**row.known_refs, **{k: states[k][1] for k in row.depends_on
                                                      if k in states and states[k][1]}}
                ready.append(row)
        return ready, waiting

    # -- one wave ----------------------------------------------------------------------------------
    def _post_wave(self, rows: Sequence[OutboxRow], run_id: str, summary: PostSummary) -> None:
        queue = deque(rows)
        # Rows handed to the workers ahead of the cap, so no worker idles while the writer commits;
        # the slower the ledger writes, the more results each commit carries.
        window = QUEUED_PER_WORKER * self.settings.max_in_flight
        results: list[AttemptResult] = []
        with ThreadPoolExecutor(max_workers=self.settings.max_in_flight, thread_name_prefix="writeback") as pool:
            in_flight: dict[Future[Outcome], OutboxRow] = {}
            while queue or in_flight:
                batch = [queue.popleft() for _ in range(min(len(queue), window - len(in_flight)))]
                now = self.clock()
                self._open_leases(batch, now)
                # The last results and the next attempts share a commit; attempts land before their calls.
                record_progress(self.con, results, batch, run_id, now)
                for row in batch:
                    future = pool.submit(send, self.targets, row, row.known_refs, self.settings.adopt_margin)
                    in_flight[future] = row
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                results = [self._finished(in_flight.pop(future), future.result()) for future in done]
                for result in results:
                    self._tally(result, summary)
        record_progress(self.con, results, [], run_id, self.clock())

    def _finished(self, row: OutboxRow, outcome: Outcome) -> AttemptResult:
        if self.after_call is not None:
            self.after_call(row, outcome)
        if outcome.kind in ("posted", "adopted"):
            return AttemptResult(row, POSTED, outcome.kind, outcome.target_id, outcome.http_status, None,
                                 outcome.sent)
        error = outcome.error or "rejected"
        label = FAILED_RETRYABLE
        if outcome.in_doubt:  # the next run waits for the lease, then looks before creating
            label = IN_DOUBT
            error += f" [may still land until {_moment(row.lease_until)}]" if row.lease_until else " [may have landed]"
        if outcome.kind == "retryable" and row.attempts < self.settings.max_attempts:
            # Due again after the usual backoff; a run before the lease's end then waits, visibly.
            return AttemptResult(row, FAILED_RETRYABLE, label, None, outcome.http_status, error,
                                 next_attempt_at=self.clock() + self.settings.backoff(row.attempts))
        if outcome.kind == "retryable":
            error += f" [dead after {row.attempts} attempt(s)]"
        return AttemptResult(row, DEAD, DEAD if label == FAILED_RETRYABLE else label, None, outcome.http_status, error)

    @staticmethod
    def _tally(result: AttemptResult, summary: PostSummary) -> None:
        key = result.row.outbox_key
        if result.state == POSTED:
            if result.row.posted_version is None:
                summary.posted += 1
            else:
                summary.updated += 1
            summary.failures.pop(key, None)
            return
        summary.failures[key] = result.error or result.state
        if result.state == DEAD:
            summary.dead += 1
        else:
            summary.failed_retryable += 1


def _moment(value: datetime) -> str:
    """A lease end as an operator reads it in the ledger: UTC, to the second."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
