"""The poster: sends a flow's due ledger rows with a capped number of calls in flight.

Worker threads only make HTTP calls; the calling thread is the ledger's single writer. For
each batch it first commits an attempt per row, then hands the rows to the workers, then
commits their results as they finish. A crash between a call and its result leaves an
open attempt and the row still due, so the next run sends it again, which every sender
makes harmless (upserts by external id; Kantata workspaces are looked up before a create).

Rows are posted in waves so that a row waits for the rows it depends on (a deal's customer
before its project, the project before the CRM update); a row whose dependency failed is
left for a later run and reported as blocked.
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

from ps_pipelines.lib.writeback.outbox import (
    CANCELLED,
    DEAD,
    FAILED_RETRYABLE,
    POSTED,
    AttemptResult,
    EnqueueCounts,
    OutboxRow,
    eligible_rows,
    record_progress,
    states_of,
)
from ps_pipelines.lib.writeback.senders import DEFAULT_ADOPT_MARGIN, Outcome, Targets, send

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

    def backoff(self, attempts: int) -> timedelta:
        seconds = self.retry_backoff_seconds * 2 ** max(attempts - 1, 0)
        return timedelta(seconds=min(seconds, self.retry_backoff_max_seconds))


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
    requests: int = 0
    retries: int = 0
    throttled: int = 0
    seconds: float = 0.0
    failures: dict[str, str] = field(default_factory=dict)  # outbox key -> reason
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
            "dead": self.dead, "blocked": self.blocked, "requests": self.requests, "retries": self.retries,
            "throttled": self.throttled, "seconds": round(self.seconds, 3),
            "posted_per_second": round(self.posted_per_second, 2),
            "enqueue": self.enqueue.as_dict() if self.enqueue else None,
            "failing": failing,
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
            while True:
                rows = eligible_rows(self.con, flow, self.clock(), replay_dead=self.settings.replay_dead,
                                     exclude=attempted)
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
                # The last results and the next attempts share a commit; attempts land before their calls.
                record_progress(self.con, results, batch, run_id, self.clock())
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
        if outcome.kind == "retryable" and row.attempts < self.settings.max_attempts:
            return AttemptResult(row, FAILED_RETRYABLE, FAILED_RETRYABLE, None, outcome.http_status, outcome.error,
                                 next_attempt_at=self.clock() + self.settings.backoff(row.attempts))
        error = outcome.error or "rejected"
        if outcome.kind == "retryable":
            error += f" [dead after {row.attempts} attempt(s)]"
        return AttemptResult(row, DEAD, DEAD, None, outcome.http_status, error)

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
