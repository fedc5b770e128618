"""The outbox ledger: one row per outbound transaction, plus an audit row per attempt.

``ops.outbox`` is the single source of truth for what the pipeline wants a target system to
hold (``payload``, versioned by ``payload_hash``) and what it knows the target holds
(``posted_*``). Keys are deterministic (``<system>:<record>:<external id>``) and every target
write is an upsert by that external id, so a row sent twice is one record in the target.

States: ``pending`` (to send), ``posted``, ``failed_retryable`` (transient failure; retried
after a backoff), ``dead`` (rejected by the target, or out of attempts; replayed on request),
``invalid`` (failed our contract, never sent; re-evaluated on every enqueue) and
``cancelled`` (never sent and no longer wanted by the outbound model).

``ops.outbox_attempts`` has a row per attempt, opened before its call. An attempt to create a
record the target cannot deduplicate (no idempotency key) carries a lease (``lease_until``):
until then its create may still land, so the row waits (``last_error`` = "waiting for
in-flight attempt N of run R until T") instead of being tried again. Outcomes: ``posted``,
``adopted`` (found what an earlier attempt created), ``failed_retryable``, ``in_doubt`` (the
call may have been applied and was not repeated), ``dead`` and ``abandoned`` (its run ended
without a result; closed by the next run, once its lease had passed).

Only one thread writes the ledger; every function here takes the caller's connection.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from hashlib import sha256
from typing import Any

import duckdb
import orjson
import pandas as pd

PENDING, POSTED, FAILED_RETRYABLE, DEAD, INVALID, CANCELLED = (
    "pending", "posted", "failed_retryable", "dead", "invalid", "cancelled")
# Attempt outcomes besides the states above.
ADOPTED, IN_DOUBT, ABANDONED = "adopted", "in_doubt", "abandoned"
# How ``last_error`` starts while a row waits for an earlier attempt's lease (the dead-letter
# asset lists such rows).
WAITING_FOR_IN_FLIGHT = "waiting for in-flight attempt"
UNSENT_STATES = (PENDING, FAILED_RETRYABLE, DEAD, INVALID)
# Failures a person must look at: the run summary, the failure alert and the dead-letter asset list them.
NEEDS_ATTENTION = (DEAD, INVALID, FAILED_RETRYABLE)
FLOWS = ("project_activation", "billing")
# The ledger's tables (its own database: ``ledger_store``); the warehouse holds a mirror of them.
LEDGER_TABLES = ("ops.outbox", "ops.outbox_attempts", "ops.duplicate_records")

OUTBOX_DDL = """
CREATE SCHEMA IF NOT EXISTS ops;
CREATE TABLE IF NOT EXISTS ops.outbox (
    outbox_key VARCHAR PRIMARY KEY,
    flow VARCHAR NOT NULL,
    target_system VARCHAR NOT NULL,
    record_type VARCHAR NOT NULL,
    external_id VARCHAR NOT NULL,
    version INTEGER NOT NULL,
    payload JSON NOT NULL,
    payload_hash VARCHAR NOT NULL,
    depends_on JSON,
    known_refs JSON,
    state VARCHAR NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error VARCHAR,
    next_attempt_at TIMESTAMPTZ,
    target_id VARCHAR,
    subsidiary_id VARCHAR,
    currency VARCHAR,
    billing_period VARCHAR,
    amount DECIMAL(18, 2),
    line_count INTEGER,
    first_seen_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    posted_at TIMESTAMPTZ,
    posted_version INTEGER,
    posted_payload JSON,
    posted_run_id VARCHAR,
    last_run_id VARCHAR
);
CREATE TABLE IF NOT EXISTS ops.outbox_attempts (
    outbox_key VARCHAR NOT NULL,
    version INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    run_id VARCHAR,
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    outcome VARCHAR,
    http_status INTEGER,
    error VARCHAR,
    target_id VARCHAR,
    lease_until TIMESTAMPTZ
);
-- Warehouses created before attempts had leases.
ALTER TABLE ops.outbox_attempts ADD COLUMN IF NOT EXISTS lease_until TIMESTAMPTZ;
-- Platform records that carry our external reference but are not the ledger's target (a create
-- that landed twice), and what the duplicate sweep did about each.
CREATE TABLE IF NOT EXISTS ops.duplicate_records (
    target_system VARCHAR NOT NULL,
    record_type VARCHAR NOT NULL,
    duplicate_id VARCHAR NOT NULL,
    outbox_key VARCHAR NOT NULL,
    external_id VARCHAR NOT NULL,
    kept_id VARCHAR NOT NULL,
    found_at TIMESTAMPTZ NOT NULL,
    found_run_id VARCHAR,
    resolution VARCHAR NOT NULL,
    resolved_at TIMESTAMPTZ,
    detail VARCHAR,
    PRIMARY KEY (target_system, record_type, duplicate_id)
);
CREATE VIEW IF NOT EXISTS ops.outbox_invoice_lines AS
SELECT o.outbox_key, o.external_id AS invoice_external_id, o.target_id AS erp_invoice_id,
       o.posted_version, o.posted_run_id, o.posted_at, o.subsidiary_id, o.currency, o.billing_period,
       CAST(line.key AS INTEGER) + 1 AS line_number,
       line.value ->> 'custcol_ps_line_key' AS line_external_id,
       line.value ->> 'description' AS description,
       CAST(line.value ->> 'quantity' AS DOUBLE) AS quantity,
       CAST(line.value ->> 'rate' AS DECIMAL(18, 2)) AS rate,
       CAST(line.value ->> 'amount' AS DECIMAL(18, 2)) AS amount
FROM ops.outbox AS o, json_each(o.posted_payload, '$.item.items') AS line
WHERE o.record_type = 'invoice' AND o.posted_payload IS NOT NULL;
"""
# ``ops.outbox_invoice_lines`` is the traceability hook: a mart joins an invoice line's
# ``line_external_id`` (= outbound line key = NetSuite custcol_ps_line_key) to the ledger row,
# its posted version and the run that posted it.


def ensure_outbox_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the ledger tables and views (idempotent; called by ``Warehouse.connect``)."""
    con.execute(OUTBOX_DDL)


def outbox_key(system: str, record: str, external_id: str) -> str:
    """The idempotency key, e.g. ``netsuite:invoice:psp:inv:...`` or ``kantata:workspace:006...``."""
    return f"{system}:{record}:{external_id}"


def canonical_json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def payload_hash(payload: Mapping[str, Any]) -> str:
    return sha256(canonical_json(payload).encode()).hexdigest()


def ref(key: str) -> dict[str, str]:
    """A placeholder for the target id of another ledger row, resolved when the row is posted.

    Payloads hash the placeholder, not the id, so a dependent row does not get a new version
    just because the record it points to was created in the meantime.
    """
    return {"$ref": key}


@dataclass
class OutboxItem:
    """One desired outbound transaction, as the payload builders produce it."""

    flow: str
    target_system: str
    record_type: str
    external_id: str
    payload: dict[str, Any]
    errors: list[str] = field(default_factory=list)  # contract failures: the row is not sent
    depends_on: list[str] = field(default_factory=list)  # keys that must be posted first
    known_refs: dict[str, str] = field(default_factory=dict)  # target ids already known (not hashed)
    subsidiary_id: str | None = None
    currency: str | None = None
    billing_period: str | None = None
    amount: float | None = None
    line_count: int | None = None

    @property
    def key(self) -> str:
        return outbox_key(self.target_system, self.record_type, self.external_id)


@dataclass
class EnqueueCounts:
    new: int = 0
    new_version: int = 0
    unchanged: int = 0
    revalidated: int = 0  # invalid rows whose payload now passes
    invalid: int = 0  # rows of this snapshot that fail their contract
    cancelled: int = 0
    invalid_keys: dict[str, str] = field(default_factory=dict)  # key -> reasons

    def as_dict(self) -> dict[str, Any]:
        return {"new": self.new, "new_version": self.new_version, "unchanged": self.unchanged,
                "revalidated": self.revalidated, "invalid": self.invalid, "cancelled": self.cancelled}


_ITEM_COLUMNS = ("outbox_key", "flow", "target_system", "record_type", "external_id", "payload", "payload_hash",
                 "depends_on", "known_refs", "errors", "subsidiary_id", "currency", "billing_period", "amount",
                 "line_count")


def _desired_frame(items: Sequence[OutboxItem]) -> pd.DataFrame:
    rows = []
    seen: set[str] = set()
    for item in items:
        if item.key in seen:  # one row per key: the first item wins (builders order deterministically)
            continue
        seen.add(item.key)
        rows.append((item.key, item.flow, item.target_system, item.record_type, item.external_id,
                     canonical_json(item.payload), payload_hash(item.payload), canonical_json(item.depends_on),
                     canonical_json(item.known_refs), "; ".join(item.errors) or None, item.subsidiary_id,
                     item.currency, item.billing_period, item.amount, item.line_count))
    frame = pd.DataFrame(rows, columns=list(_ITEM_COLUMNS))
    return _typed(frame).astype({"amount": "float64", "line_count": "Int64"})


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns as pandas strings: an all-null object column would reach DuckDB as INTEGER."""
    text = [name for name, dtype in frame.dtypes.items() if pd.api.types.is_object_dtype(dtype)]
    return frame.astype(dict.fromkeys(text, "string"))


def enqueue(
    con: duckdb.DuckDBPyConnection,
    flow: str,
    items: Sequence[OutboxItem],
    *,
    run_id: str,
    now: datetime,
    prune_missing: bool = True,
) -> EnqueueCounts:
    """Upsert the desired payloads of ``flow`` into the ledger, in one transaction.

    Same hash: nothing changes (an ``invalid`` row that now passes becomes ``pending``; an
    unsent row that now fails becomes ``invalid``). Changed hash: ``version + 1`` and state
    ``pending`` (or ``invalid``) with fresh attempts, also for a ``posted`` row, whose next
    posting is then an update of the same target record. With ``prune_missing`` (the items
    are the flow's complete snapshot) unsent rows absent from it are ``cancelled``.
    """
    if flow not in FLOWS:
        raise ValueError(f"unknown flow {flow!r}; expected one of {FLOWS}")
    strays = sorted({item.flow for item in items} - {flow})
    if strays:
        raise ValueError(f"items of flow(s) {strays} enqueued as {flow!r}")
    desired = _desired_frame(items)
    con.begin()
    try:
        con.register("_desired", desired)
        counts = _classify(con)
        _apply_changes(con, run_id, now)
        _insert_new(con, run_id, now)
        if prune_missing:
            counts.cancelled = _cancel_missing(con, flow, run_id, now)
        con.unregister("_desired")
        con.commit()
    except BaseException:
        con.rollback()
        raise
    counts.invalid_keys = dict(zip(desired.loc[desired["errors"].notna(), "outbox_key"],
                                   desired.loc[desired["errors"].notna(), "errors"], strict=True))
    return counts


def _classify(con: duckdb.DuckDBPyConnection) -> EnqueueCounts:
    # new_state applies to an unchanged payload: only the verdict of an unsent row may move
    # (a dead row that now fails the contract must not be replayed as it is).
    unsent = ", ".join(f"'{s}'" for s in (*UNSENT_STATES, CANCELLED))
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _merge AS
        SELECT d.*, o.outbox_key IS NULL AS is_new, o.payload_hash <> d.payload_hash AS is_changed,
               o.state AS old_state,
               CASE WHEN d.errors IS NOT NULL AND o.state IN ({unsent}) THEN '{INVALID}'
                    WHEN d.errors IS NULL AND o.state IN ('{INVALID}', '{CANCELLED}') THEN '{PENDING}'
                    ELSE o.state END AS new_state
        FROM _desired d LEFT JOIN ops.outbox o USING (outbox_key)
    """)
    new, changed, unchanged, revalidated, invalid = con.execute(f"""
        SELECT count(*) FILTER (WHERE is_new),
               count(*) FILTER (WHERE is_changed),
               count(*) FILTER (WHERE NOT is_new AND NOT is_changed),
               count(*) FILTER (WHERE NOT is_new AND NOT is_changed AND old_state = '{INVALID}'
                                AND new_state = '{PENDING}'),
               count(*) FILTER (WHERE errors IS NOT NULL)
        FROM _merge
    """).fetchone()
    return EnqueueCounts(new=new, new_version=changed, unchanged=unchanged, revalidated=revalidated,
                         invalid=invalid)


def _apply_changes(con: duckdb.DuckDBPyConnection, run_id: str, now: datetime) -> None:
    # Same payload: the verdict may move (see ``_classify``); references known since are
    # refreshed. Rows where nothing moved are not rewritten.
    con.execute(f"""
        UPDATE ops.outbox o SET
            state = m.new_state,
            last_error = CASE WHEN m.new_state = '{INVALID}' THEN m.errors
                              WHEN m.new_state <> o.state THEN NULL ELSE o.last_error END,
            known_refs = m.known_refs, depends_on = m.depends_on, updated_at = ?
        FROM _merge m
        WHERE o.outbox_key = m.outbox_key AND NOT m.is_new AND NOT m.is_changed
          AND (m.new_state <> o.state OR o.known_refs IS DISTINCT FROM m.known_refs
               OR o.depends_on IS DISTINCT FROM m.depends_on
               OR (m.new_state = '{INVALID}' AND o.last_error IS DISTINCT FROM m.errors))
    """, [now])
    # A new payload: a new version, sent afresh (attempts count per version).
    con.execute(f"""
        UPDATE ops.outbox o SET
            version = o.version + 1, payload = m.payload, payload_hash = m.payload_hash,
            depends_on = m.depends_on, known_refs = m.known_refs,
            state = CASE WHEN m.errors IS NULL THEN '{PENDING}' ELSE '{INVALID}' END,
            last_error = m.errors, attempts = 0, next_attempt_at = NULL,
            subsidiary_id = m.subsidiary_id, currency = m.currency, billing_period = m.billing_period,
            amount = m.amount, line_count = m.line_count, updated_at = ?, last_run_id = ?
        FROM _merge m
        WHERE o.outbox_key = m.outbox_key AND m.is_changed
    """, [now, run_id])


def _insert_new(con: duckdb.DuckDBPyConnection, run_id: str, now: datetime) -> None:
    con.execute(f"""
        INSERT INTO ops.outbox (outbox_key, flow, target_system, record_type, external_id, version, payload,
            payload_hash, depends_on, known_refs, state, attempts, last_error, subsidiary_id, currency,
            billing_period, amount, line_count, first_seen_at, updated_at, last_run_id)
        SELECT outbox_key, flow, target_system, record_type, external_id, 1, payload, payload_hash, depends_on,
               known_refs, CASE WHEN errors IS NULL THEN '{PENDING}' ELSE '{INVALID}' END, 0, errors,
               subsidiary_id, currency, billing_period, amount, line_count, ?, ?, ?
        FROM _merge WHERE is_new
    """, [now, now, run_id])


def _cancel_missing(con: duckdb.DuckDBPyConnection, flow: str, run_id: str, now: datetime) -> int:
    states = ", ".join(f"'{s}'" for s in UNSENT_STATES)
    return con.execute(f"""
        UPDATE ops.outbox SET state = '{CANCELLED}', last_error = 'no longer requested by the outbound model',
               updated_at = ?, last_run_id = ?
        WHERE flow = ? AND state IN ({states}) AND outbox_key NOT IN (SELECT outbox_key FROM _desired)
    """, [now, run_id, flow]).fetchone()[0]


# -- the poster's reads and writes ------------------------------------------------------------
@dataclass
class OutboxRow:
    """A ledger row claimed for posting."""

    outbox_key: str
    flow: str
    target_system: str
    record_type: str
    external_id: str
    version: int
    payload: dict[str, Any]
    depends_on: list[str]
    known_refs: dict[str, str]
    state: str
    attempts: int
    target_id: str | None
    posted_version: int | None
    first_attempt_at: datetime | None  # earliest attempt of any version: a create may have landed since
    # Set by the poster when it opens an attempt to create without an idempotency key: the
    # attempt's lease, and the moment (time.monotonic()) after which its create is not sent.
    lease_until: datetime | None = None
    send_by: float | None = None


def eligible_rows(
    con: duckdb.DuckDBPyConnection, flow: str, now: datetime, *, replay_dead: bool, exclude: Iterable[str] = ()
) -> list[OutboxRow]:
    """Rows to post: pending, retryable whose backoff elapsed, and dead ones on replay."""
    states = [PENDING] + ([DEAD] if replay_dead else [])
    rows = con.execute(f"""
        SELECT o.outbox_key, o.flow, o.target_system, o.record_type, o.external_id, o.version, o.payload,
               o.depends_on, o.known_refs, o.state, o.attempts, o.target_id, o.posted_version,
               (SELECT min(a.started_at) FROM ops.outbox_attempts a
                WHERE a.outbox_key = o.outbox_key) AS first_attempt_at
        FROM ops.outbox o
        WHERE o.flow = ? AND (o.state IN (SELECT unnest(?::VARCHAR[]))
              OR (o.state = '{FAILED_RETRYABLE}' AND coalesce(o.next_attempt_at <= ?, true)))
        ORDER BY o.outbox_key
    """, [flow, states, now]).fetchall()
    skip = set(exclude)
    return [OutboxRow(key, flow_, system, record, external_id, version, orjson.loads(payload),
                      orjson.loads(depends or "[]"), orjson.loads(known or "{}"), state, attempts, target_id,
                      posted_version, first_attempt)
            for (key, flow_, system, record, external_id, version, payload, depends, known, state, attempts,
                 target_id, posted_version, first_attempt) in rows if key not in skip]


def states_of(con: duckdb.DuckDBPyConnection, keys: Iterable[str]) -> dict[str, tuple[str, str | None]]:
    """``key -> (state, target_id)`` of the ledger rows among ``keys``."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    rows = con.execute(
        "SELECT outbox_key, state, target_id FROM ops.outbox WHERE outbox_key IN (SELECT unnest(?::VARCHAR[]))",
        [wanted],
    ).fetchall()
    return {key: (state, target_id) for key, state, target_id in rows}


@dataclass
class AttemptResult:
    """What one call achieved; ``state`` is the row's next state."""

    row: OutboxRow
    state: str  # posted | failed_retryable | dead
    outcome: str  # posted | adopted | failed_retryable | dead
    target_id: str | None = None
    http_status: int | None = None
    error: str | None = None
    sent: dict[str, Any] | None = None  # the body the target accepted
    next_attempt_at: datetime | None = None


def record_progress(
    con: duckdb.DuckDBPyConnection,
    results: Sequence[AttemptResult],
    starting: Sequence[OutboxRow],
    run_id: str,
    now: datetime,
) -> None:
    """One commit: the outcomes of finished calls, and an attempt for each call about to start.

    An attempt is committed *before* its call, so a crash leaves it open (no result) and the
    row still due. Sharing the commit halves the ledger's write cost per posting.
    """
    if not results and not starting:
        return
    con.begin()
    try:
        if results:
            _write_results(con, results, run_id, now)
        if starting:
            _write_attempts(con, starting, run_id, now)
        con.commit()
    except BaseException:
        con.rollback()
        raise
    for row in starting:
        row.attempts += 1


def record_attempts(con: duckdb.DuckDBPyConnection, rows: Sequence[OutboxRow], run_id: str, now: datetime) -> None:
    record_progress(con, [], rows, run_id, now)


def record_results(
    con: duckdb.DuckDBPyConnection, results: Sequence[AttemptResult], run_id: str, now: datetime
) -> None:
    record_progress(con, results, [], run_id, now)


def _write_attempts(con: duckdb.DuckDBPyConnection, rows: Sequence[OutboxRow], run_id: str, now: datetime) -> None:
    frame = pd.DataFrame({"outbox_key": [r.outbox_key for r in rows], "version": [r.version for r in rows],
                          "attempt": [r.attempts + 1 for r in rows],
                          "lease_until": pd.to_datetime([r.lease_until for r in rows], utc=True)})
    con.register("_attempts", frame)
    con.execute("""
        INSERT INTO ops.outbox_attempts (outbox_key, version, attempt, run_id, started_at, lease_until)
        SELECT outbox_key, version, attempt, ?, ?, lease_until FROM _attempts
    """, [run_id, now])
    con.execute("""
        UPDATE ops.outbox o SET attempts = a.attempt, last_run_id = ?, updated_at = ?
        FROM _attempts a WHERE o.outbox_key = a.outbox_key
    """, [run_id, now])
    con.unregister("_attempts")


def _write_results(
    con: duckdb.DuckDBPyConnection, results: Sequence[AttemptResult], run_id: str, now: datetime
) -> None:
    frame = _typed(pd.DataFrame({
        "outbox_key": [r.row.outbox_key for r in results],
        "version": [r.row.version for r in results],
        "attempt": [r.row.attempts for r in results],
        "state": [r.state for r in results],
        "outcome": [r.outcome for r in results],
        "target_id": [r.target_id for r in results],
        "http_status": pd.array([r.http_status for r in results], dtype="Int64"),
        "error": [r.error for r in results],
        "sent": [canonical_json(r.sent) if r.sent is not None else None for r in results],
        "next_attempt_at": pd.to_datetime([r.next_attempt_at for r in results], utc=True),
    }))
    con.register("_results", frame)
    con.execute(f"""
        UPDATE ops.outbox o SET
            state = r.state, last_error = r.error, updated_at = ?, last_run_id = ?,
            next_attempt_at = r.next_attempt_at,
            target_id = coalesce(r.target_id, o.target_id),
            posted_at = CASE WHEN r.state = '{POSTED}' THEN ? ELSE o.posted_at END,
            posted_version = CASE WHEN r.state = '{POSTED}' THEN o.version ELSE o.posted_version END,
            posted_payload = CASE WHEN r.state = '{POSTED}' THEN CAST(r.sent AS JSON) ELSE o.posted_payload END,
            posted_run_id = CASE WHEN r.state = '{POSTED}' THEN ? ELSE o.posted_run_id END
        FROM _results r WHERE o.outbox_key = r.outbox_key AND o.version = r.version
    """, [now, run_id, now, run_id])
    con.execute("""
        UPDATE ops.outbox_attempts a SET finished_at = ?, outcome = r.outcome, http_status = r.http_status,
               error = r.error, target_id = r.target_id
        FROM _results r
        WHERE a.outbox_key = r.outbox_key AND a.version = r.version AND a.attempt = r.attempt
          AND a.finished_at IS NULL
    """, [now])
    con.unregister("_results")


# -- attempts that may still land --------------------------------------------------------------
@dataclass
class UnfinishedAttempt:
    """An attempt without a result (its run died), or one whose create may still land."""

    outbox_key: str
    target_system: str
    record_type: str
    row_target_id: str | None  # the ledger row's target: set when the attempt was an update
    version: int
    attempt: int
    run_id: str | None
    started_at: datetime
    lease_until: datetime | None
    open: bool  # no result recorded (finished_at is null)


def unfinished_attempts(con: duckdb.DuckDBPyConnection, flow: str, now: datetime) -> list[UnfinishedAttempt]:
    """Open attempts of ``flow``'s rows, and in-doubt ones whose lease runs past ``now``."""
    rows = con.execute(f"""
        SELECT a.outbox_key, o.target_system, o.record_type, o.target_id, a.version, a.attempt, a.run_id,
               a.started_at, a.lease_until, a.finished_at IS NULL
        FROM ops.outbox_attempts a JOIN ops.outbox o USING (outbox_key)
        WHERE o.flow = ? AND (a.finished_at IS NULL OR (a.outcome = '{IN_DOUBT}' AND a.lease_until > ?))
        ORDER BY a.outbox_key, a.attempt
    """, [flow, now]).fetchall()
    return [UnfinishedAttempt(*row) for row in rows]


def abandon_attempts(
    con: duckdb.DuckDBPyConnection, attempts: Sequence[tuple[UnfinishedAttempt, str]], now: datetime
) -> None:
    """Close open attempts whose run ended without a result, each with the reason given."""
    if not attempts:
        return
    frame = _typed(pd.DataFrame({"outbox_key": [a.outbox_key for a, _ in attempts],
                                 "version": [a.version for a, _ in attempts],
                                 "attempt": [a.attempt for a, _ in attempts],
                                 "error": [reason for _, reason in attempts]}))
    con.register("_abandoned", frame)
    con.execute(f"""
        UPDATE ops.outbox_attempts a SET finished_at = ?, outcome = '{ABANDONED}', error = x.error
        FROM _abandoned x
        WHERE a.outbox_key = x.outbox_key AND a.version = x.version AND a.attempt = x.attempt
          AND a.finished_at IS NULL
    """, [now])
    con.unregister("_abandoned")


def mark_waiting(
    con: duckdb.DuckDBPyConnection, waits: Mapping[str, tuple[str, datetime]], run_id: str, now: datetime
) -> None:
    """Rows that wait for an earlier attempt's lease: ``key -> (reason, lease end)``.

    The state stays (``pending`` or ``failed_retryable``); ``last_error`` says what the row
    waits for and ``next_attempt_at`` until when.
    """
    if not waits:
        return
    frame = _typed(pd.DataFrame({"outbox_key": list(waits), "reason": [r for r, _ in waits.values()],
                                 "until": pd.to_datetime([u for _, u in waits.values()], utc=True)}))
    con.register("_waits", frame)
    con.execute("""
        UPDATE ops.outbox o SET last_error = w.reason, next_attempt_at = w.until, updated_at = ?, last_run_id = ?
        FROM _waits w WHERE o.outbox_key = w.outbox_key
    """, [now, run_id])
    con.unregister("_waits")


def waiting_frame(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Unsent rows whose last run left them waiting for an in-flight attempt's lease."""
    states = ", ".join(f"'{s}'" for s in UNSENT_STATES)
    return con.execute(f"""
        SELECT * FROM ops.outbox
        WHERE state IN ({states}) AND starts_with(last_error, '{WAITING_FOR_IN_FLIGHT}')
        ORDER BY outbox_key
    """).df()


def ledger_frame(con: duckdb.DuckDBPyConnection, flow: str | None = None, states: Sequence[str] = ()) -> pd.DataFrame:
    """Ledger rows (for assets and tests): optionally one flow, optionally some states."""
    sql, params = "SELECT * FROM ops.outbox WHERE true", []
    if flow is not None:
        sql, params = sql + " AND flow = ?", [*params, flow]
    if states:
        sql, params = sql + " AND state IN (SELECT unnest(?::VARCHAR[]))", [*params, list(states)]
    return con.execute(sql + " ORDER BY outbox_key", params).df()


def ledger_version(con: duckdb.DuckDBPyConnection, flow: str) -> str:
    """A fingerprint of ``flow``'s ledger rows that moves only when one of them changed.

    Every write to a row stamps ``updated_at``, and a posting with nothing to do writes none,
    so the models that read the ledger are rebuilt after postings and left alone otherwise.
    """
    rows, newest, versions = con.execute(
        "SELECT count(*), max(updated_at), sum(version) FROM ops.outbox WHERE flow = ?", [flow]).fetchone()
    return sha256(f"{flow}|{rows}|{newest}|{versions}".encode()).hexdigest()[:20]
