"""The ledger's own file: posted to while a rebuild holds the warehouse, mirrored into the
warehouse for dbt, and adopted once from a warehouse that held the ledger before it existed."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from ps_pipelines.lib.warehouse.lock import WarehouseBusyError
from ps_pipelines.lib.warehouse.warehouse import Warehouse
from ps_pipelines.lib.writeback import POSTED, Targets, run_billing
from ps_pipelines.lib.writeback.event_path import LedgerNotAdoptedError, ensure_ledger_adopted
from ps_pipelines.lib.writeback.ledger_store import (
    LedgerStore,
    adopt_warehouse_ledger,
    is_adopted,
    mirror_ledger,
    posting_ledger,
)
from ps_pipelines.lib.writeback.outbox import LEDGER_TABLES, OutboxItem, enqueue, ensure_outbox_tables
from ps_pipelines.lib.writeback.payloads import BILLING_FLOW, BILLING_TABLE
from tests.lib.writeback.conftest import NsProject, billing_lines, erp_invoices, invoice_id, ledger_row, write_outbound

NOW = datetime(2026, 11, 23, tzinfo=UTC)
# Holds the warehouse's writer connection, as a full rebuild does, until told to let go.
HOLDER = """
import sys, time
from pathlib import Path
from ps_pipelines.lib.warehouse.warehouse import Warehouse
warehouse, release = sys.argv[1], Path(sys.argv[2])
with Warehouse(warehouse).connect():
    print("held", flush=True)
    deadline = time.monotonic() + 120  # never outlive a failed test for long
    while not release.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
"""


def table_rows(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    return {table: con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall() for table in LEDGER_TABLES}


def invoice_item(number: int, amount: float = 100.0) -> OutboxItem:
    return OutboxItem(flow=BILLING_FLOW, target_system="netsuite", record_type="invoice",
                      external_id=f"psp:inv:{number}", payload={"number": number, "amount": amount})


def fill_ledger(con: duckdb.DuckDBPyConnection, items: list[OutboxItem], run_id: str) -> None:
    """Rows in every ledger table: the items, an attempt of the first, a duplicate record."""
    ensure_outbox_tables(con)
    enqueue(con, BILLING_FLOW, items, run_id=run_id, now=NOW)
    con.execute("INSERT INTO ops.outbox_attempts (outbox_key, version, attempt, run_id, started_at) "
                "VALUES (?, 1, 1, ?, ?)", [items[0].key, run_id, NOW])
    con.execute("""INSERT INTO ops.duplicate_records (target_system, record_type, duplicate_id, outbox_key,
                       external_id, kept_id, found_at, resolution)
                   VALUES ('netsuite', 'invoice', ?, ?, ?, '1', ?, 'flagged')""",
                [f"dup-{run_id}", items[0].key, items[0].external_id, NOW])


@pytest.fixture
def holder(warehouse: Warehouse, tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    release = tmp_path / "release"
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(warehouse.path), str(release)],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "held"
        yield process
    finally:
        release.touch()
        process.wait(timeout=60)


def test_an_invoice_is_posted_through_the_ledger_while_another_process_holds_the_warehouse(
    warehouse: Warehouse, holder: subprocess.Popen[str], project: NsProject, targets: Targets
) -> None:
    # The holder really has the warehouse.
    with pytest.raises(WarehouseBusyError), Warehouse(warehouse.path, lock_timeout_seconds=0.2).connect():
        pass
    # The event path's outbound rows live outside the warehouse.
    with duckdb.connect() as outbound, warehouse.ledger.connect() as ledger:
        write_outbound(outbound, BILLING_TABLE, billing_lines(project))
        summary = run_billing(outbound, targets, run_id="event-1", ledger=ledger)
        row = ledger_row(ledger, f"netsuite:invoice:{invoice_id(project)}")
    assert holder.poll() is None, "the posting finished only after the warehouse was released"
    assert summary.posted == 1 and row["state"] == POSTED
    [erp] = erp_invoices(targets, invoice_id(project))
    assert str(erp["id"]) == row["target_id"]


def test_the_mirror_is_the_ledger_after_every_posting(warehouse: Warehouse) -> None:
    with warehouse.connect() as con, warehouse.ledger.connect() as ledger:
        fill_ledger(con, [invoice_item(9)], "stale")  # what the warehouse held before
        fill_ledger(ledger, [invoice_item(1), invoice_item(2)], "r1")
        mirror_ledger(con, ledger)
        assert table_rows(con) == table_rows(ledger)
        # The ledger moves on (a new version, a cancelled row); the next mirror follows it.
        enqueue(ledger, BILLING_FLOW, [invoice_item(1, amount=120.0)], run_id="r2", now=NOW)
        mirror_ledger(con, ledger)
        assert table_rows(con) == table_rows(ledger)
        assert con.execute("SELECT outbox_key, version, state FROM ops.outbox ORDER BY 1").fetchall() == [
            (invoice_item(1).key, 2, "pending"), (invoice_item(2).key, 1, "cancelled")]


def test_a_warehouse_from_before_the_ledger_store_hands_its_ledger_over_once_and_loses_nothing(
    warehouse: Warehouse,
) -> None:
    with warehouse.connect() as con:
        fill_ledger(con, [invoice_item(1), invoice_item(2)], "before")
        before = table_rows(con)
    with warehouse.connect() as con:
        with posting_ledger(con, warehouse.ledger) as ledger:
            assert table_rows(ledger) == before
            enqueue(ledger, BILLING_FLOW, [invoice_item(1), invoice_item(2), invoice_item(3)], run_id="after",
                    now=NOW)
        assert table_rows(con)["ops.outbox"][:2] == before["ops.outbox"]  # mirrored back, with the new row
        assert len(table_rows(con)["ops.outbox"]) == 3
    # Once only: the mirror is never copied back over the ledger, even after the ledger emptied.
    with warehouse.connect() as con, warehouse.ledger.connect() as ledger:
        ledger.execute("DELETE FROM ops.outbox")
        assert adopt_warehouse_ledger(con, ledger) is None
        assert ledger.execute("SELECT count(*) FROM ops.outbox").fetchone() == (0,)


def test_rows_an_event_posted_before_the_first_batch_posting_are_kept_over_the_warehouse_copy(
    warehouse: Warehouse,
) -> None:
    with warehouse.connect() as con:
        fill_ledger(con, [invoice_item(1), invoice_item(2)], "before")
    with warehouse.ledger.connect() as ledger:  # the event path, before any batch posting
        enqueue(ledger, BILLING_FLOW, [invoice_item(2, amount=250.0)], run_id="event", now=NOW, prune_missing=False)
    with warehouse.connect() as con, warehouse.ledger.connect() as ledger:
        assert adopt_warehouse_ledger(con, ledger) == 1  # invoice 1 only: invoice 2 is the ledger's
        rows = dict(ledger.execute("SELECT outbox_key, payload ->> 'amount' FROM ops.outbox").fetchall())
        assert rows == {invoice_item(1).key: "100.0", invoice_item(2).key: "250.0"}
        assert ledger.execute("SELECT outbox_key FROM ops.outbox_attempts").fetchall() == [(invoice_item(1).key,)]
        assert ledger.execute("SELECT count(*) FROM ops.duplicate_records").fetchone() == (1,)


def test_the_first_posting_of_an_old_home_resends_nothing(
    warehouse: Warehouse, project: NsProject, targets: Targets
) -> None:
    with warehouse.connect() as con:  # posted the way it was before: the ledger in the warehouse
        write_outbound(con, BILLING_TABLE, billing_lines(project))
        assert run_billing(con, targets, run_id="before").posted == 1
    with warehouse.connect() as con, posting_ledger(con, warehouse.ledger) as ledger:
        again = run_billing(con, targets, run_id="after", ledger=ledger)
    assert (again.posted, again.updated, again.requests, again.enqueue.unchanged) == (0, 0, 0, 1)
    assert len(erp_invoices(targets, invoice_id(project))) == 1


def test_the_first_event_posting_of_an_old_home_takes_the_ledger_over_or_waits_for_the_warehouse(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    with warehouse.connect() as con:
        fill_ledger(con, [invoice_item(1)], "before")
    held, release = threading.Event(), threading.Event()

    def rebuild() -> None:
        with warehouse.connect():
            held.set()
            release.wait(timeout=60)

    thread = threading.Thread(target=rebuild)
    thread.start()
    assert held.wait(timeout=30)
    try:
        with pytest.raises(LedgerNotAdoptedError, match=re.escape(str(warehouse.path))):
            ensure_ledger_adopted(warehouse.ledger, warehouse.path)
    finally:
        release.set()
        thread.join()
    ensure_ledger_adopted(warehouse.ledger, warehouse.path)
    with warehouse.ledger.read() as ledger:
        assert ledger.execute("SELECT outbox_key FROM ops.outbox").fetchall() == [(invoice_item(1).key,)]
    # A home without a warehouse has nothing to take over, and says so once.
    fresh = LedgerStore(tmp_path / "fresh.ledger.duckdb")
    ensure_ledger_adopted(fresh, tmp_path / "no-warehouse.duckdb")
    with fresh.connect() as ledger:
        assert is_adopted(ledger)
