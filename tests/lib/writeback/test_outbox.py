"""The outbox ledger on its own (no HTTP): versions, verdicts, cancellation, attempts, trace view."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb

from ps_pipelines.lib.warehouse.warehouse import Warehouse
from ps_pipelines.lib.writeback import (
    CANCELLED,
    INVALID,
    PENDING,
    POSTED,
    OutboxItem,
    enqueue,
    ensure_outbox_tables,
    outbox_key,
)
from ps_pipelines.lib.writeback.outbox import AttemptResult, eligible_rows, record_attempts, record_results, ref
from tests.lib.writeback.conftest import ledger_row

NOW = datetime(2026, 10, 31, 12, 0, tzinfo=UTC)


def _invoice(external_id: str, amount: float = 100.0, errors: list[str] | None = None) -> OutboxItem:
    payload = {"externalId": external_id, "item": {"items": [
        {"item": {"id": "X"}, "quantity": 1.0, "rate": amount, "amount": amount, "custcol_ps_line_key": "L1"}]}}
    return OutboxItem(flow="billing", target_system="netsuite", record_type="invoice", external_id=external_id,
                      payload=payload, errors=errors or [], amount=amount, line_count=1)


def _post_all(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """What a successful poster run writes, without the HTTP."""
    rows = eligible_rows(con, "billing", NOW, replay_dead=False)
    record_attempts(con, rows, run_id, NOW)
    record_results(con, [AttemptResult(r, POSTED, "posted", target_id=f"9{i}", http_status=204, sent=r.payload)
                         for i, r in enumerate(rows)], run_id, NOW)


def test_keys_are_deterministic_per_system_record_and_external_id() -> None:
    assert outbox_key("netsuite", "invoice", "psp:inv:1:2:EUR:2026-10") == "netsuite:invoice:psp:inv:1:2:EUR:2026-10"
    assert outbox_key("kantata", "workspace", "006A") == "kantata:workspace:006A"


def test_identical_payload_changes_nothing_and_a_new_one_is_a_new_version(con: duckdb.DuckDBPyConnection) -> None:
    first = enqueue(con, "billing", [_invoice("psp:inv:a"), _invoice("psp:inv:b")], run_id="r1", now=NOW)
    assert (first.new, first.unchanged) == (2, 0)
    _post_all(con, "r1")
    key = "netsuite:invoice:psp:inv:a"
    posted = ledger_row(con, key)
    assert (posted["state"], posted["version"], posted["posted_version"], posted["target_id"]) == (POSTED, 1, 1, "90")

    later = NOW + timedelta(hours=1)
    again = enqueue(con, "billing", [_invoice("psp:inv:a"), _invoice("psp:inv:b")], run_id="r2", now=later)
    assert (again.new, again.new_version, again.unchanged) == (0, 0, 2)
    assert ledger_row(con, key)["updated_at"] == posted["updated_at"]  # not even touched

    changed = enqueue(con, "billing", [_invoice("psp:inv:a", 120.0), _invoice("psp:inv:b")], run_id="r3", now=later)
    assert (changed.new_version, changed.unchanged) == (1, 1)
    row = ledger_row(con, key)
    # An update of the same target record: the target id and the posted version are kept.
    assert (row["state"], row["version"], row["posted_version"], row["target_id"], row["attempts"]) == (
        PENDING, 2, 1, "90", 0)
    assert float(row["amount"]) == 120.0


def test_invalid_rows_wait_and_come_back_once_they_validate(con: duckdb.DuckDBPyConnection) -> None:
    key = "netsuite:invoice:psp:inv:a"
    counts = enqueue(con, "billing", [_invoice("psp:inv:a", errors=["erp_customer: erp_customer_id is missing"])],
                     run_id="r1", now=NOW)
    assert counts.invalid == 1 and counts.invalid_keys == {key: "erp_customer: erp_customer_id is missing"}
    row = ledger_row(con, key)
    assert (row["state"], row["last_error"]) == (INVALID, "erp_customer: erp_customer_id is missing")
    assert eligible_rows(con, "billing", NOW, replay_dead=True) == []  # never sent, not even on replay

    # Same payload, verdict changed (e.g. the closed period was reopened): pending again.
    again = enqueue(con, "billing", [_invoice("psp:inv:a")], run_id="r2", now=NOW)
    assert again.revalidated == 1
    row = ledger_row(con, key)
    assert (row["state"], row["last_error"], row["version"]) == (PENDING, None, 1)


def test_a_snapshot_cancels_unsent_rows_it_no_longer_holds_but_never_posted_ones(
    con: duckdb.DuckDBPyConnection,
) -> None:
    enqueue(con, "billing", [_invoice("psp:inv:a")], run_id="r1", now=NOW)
    _post_all(con, "r1")
    enqueue(con, "billing", [_invoice("psp:inv:a"), _invoice("psp:inv:b")], run_id="r2", now=NOW)
    counts = enqueue(con, "billing", [], run_id="r3", now=NOW)
    assert counts.cancelled == 1
    assert ledger_row(con, "netsuite:invoice:psp:inv:b")["state"] == CANCELLED
    assert ledger_row(con, "netsuite:invoice:psp:inv:a")["state"] == POSTED
    # Wanted again: back to pending.
    enqueue(con, "billing", [_invoice("psp:inv:b")], run_id="r4", now=NOW, prune_missing=False)
    assert ledger_row(con, "netsuite:invoice:psp:inv:b")["state"] == PENDING


def test_references_are_hashed_as_placeholders(con: duckdb.DuckDBPyConnection) -> None:
    customer = outbox_key("netsuite", "customer", "001A")
    job = OutboxItem(flow="project_activation", target_system="netsuite", record_type="job", external_id="006A",
                     payload={"parent": {"id": ref(customer)}}, depends_on=[customer])
    enqueue(con, "project_activation", [job], run_id="r1", now=NOW)
    known = OutboxItem(**{**job.__dict__, "known_refs": {customer: "100001"}})
    counts = enqueue(con, "project_activation", [known], run_id="r2", now=NOW)
    assert counts.unchanged == 1  # learning the customer's id is not a new version of the job
    assert ledger_row(con, job.key)["known_refs"] == '{"netsuite:customer:001A":"100001"}'


def test_attempts_are_committed_before_results_and_traced_per_line(warehouse: Warehouse) -> None:
    with warehouse.connect() as con:
        enqueue(con, "billing", [_invoice("psp:inv:a")], run_id="r1", now=NOW)
        rows = eligible_rows(con, "billing", NOW, replay_dead=False)
        record_attempts(con, rows, "r1", NOW)
    # A crash here: the attempt survives, without a result, and the row is still due.
    with warehouse.connect() as con:
        assert con.execute("SELECT attempt, outcome, finished_at FROM ops.outbox_attempts").fetchall() == [
            (1, None, None)]
        rows = eligible_rows(con, "billing", NOW, replay_dead=False)
        assert [r.outbox_key for r in rows] == ["netsuite:invoice:psp:inv:a"] and rows[0].first_attempt_at == NOW
        record_attempts(con, rows, "r2", NOW)
        record_results(con, [AttemptResult(rows[0], POSTED, "posted", "9001", 204, sent=rows[0].payload)], "r2", NOW)
        assert con.execute("SELECT attempt, outcome FROM ops.outbox_attempts ORDER BY attempt").fetchall() == [
            (1, None), (2, "posted")]
        trace = con.execute("""SELECT invoice_external_id, erp_invoice_id, posted_version, posted_run_id,
                                      line_number, line_external_id, amount::DOUBLE
                               FROM ops.outbox_invoice_lines""").fetchall()
        assert trace == [("psp:inv:a", "9001", 1, "r2", 1, "L1", 100.0)]


def test_ddl_is_idempotent() -> None:
    con = duckdb.connect()
    ensure_outbox_tables(con)
    ensure_outbox_tables(con)
    assert con.execute("SELECT count(*) FROM ops.outbox").fetchone() == (0,)


def test_a_warehouse_from_before_leases_gets_the_column_and_keeps_its_attempts() -> None:
    con = duckdb.connect()
    con.execute("""
        CREATE SCHEMA ops;
        CREATE TABLE ops.outbox_attempts (outbox_key VARCHAR NOT NULL, version INTEGER NOT NULL,
            attempt INTEGER NOT NULL, run_id VARCHAR, started_at TIMESTAMPTZ NOT NULL, finished_at TIMESTAMPTZ,
            outcome VARCHAR, http_status INTEGER, error VARCHAR, target_id VARCHAR);
        INSERT INTO ops.outbox_attempts (outbox_key, version, attempt, run_id, started_at)
        VALUES ('kantata:workspace:006A', 1, 1, 'old-run', '2026-10-31 12:00:00+00');
    """)
    ensure_outbox_tables(con)
    ensure_outbox_tables(con)
    assert con.execute("SELECT run_id, lease_until FROM ops.outbox_attempts").fetchall() == [("old-run", None)]
    assert con.execute("SELECT count(*) FROM ops.duplicate_records").fetchone() == (0,)
