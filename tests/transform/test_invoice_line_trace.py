"""The traceability mart on real data: ingested sandbox, dbt build, invoices posted by the write-back.

Starts from the session's built warehouse (``test_dbt_marts``), copied. The write-back library
posts the outbound invoices to the sandbox's NetSuite over HTTP while the outbound model is
briefly altered (one time line one hour longer, one line missing), then the model is restored
and enqueued again: one invoice then holds an older version of a line in ERP, another lacks a
line, the rest are posted as they are. ``dbt build`` of the ledger staging and the mart must
pass its tests and trace every line to its source, rate, contract, deal, ledger row and run.
A second copy without any ledger table must still build (an empty ledger).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from ps_pipelines.lib.warehouse.warehouse import Warehouse
from ps_pipelines.lib.writeback.flows import run_billing
from ps_pipelines.lib.writeback.outbox import enqueue
from ps_pipelines.lib.writeback.payloads import BILLING_FLOW, invoice_items, read_billing_lines
from ps_pipelines.lib.writeback.senders import Targets
from ps_pipelines.resources import build_resources
from ps_sandbox.app import open_sandbox, start_server
from ps_sandbox.context import SandboxConfig, SandboxContext
from tests.conftest import TEST_SCALE, TEST_SEED
from tests.transform.test_dbt_foundation import BuiltWarehouse, dbt_or_fail
from tests.transform.test_dbt_marts import marts  # noqa: F401 (the session's built warehouse)

POST_RUN, ENQUEUE_RUN = "trace-post-1", "trace-enqueue-2"
TRACE_MODELS = ["stg_ops__outbox", "invoice_line_trace"]
BILLING = "outbound.erp_billing_transactions"


def _file_of(built: BuiltWarehouse) -> Path:
    return Path(built.con.execute(
        "SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchone()[0])


def _pick_lines(con: duckdb.DuckDBPyConnection) -> tuple[str, str]:
    """A time line of one valid invoice (to lengthen) and a line of another (to leave out)."""
    invoices = [row[0] for row in con.execute(f"""
        SELECT invoice_external_id FROM {BILLING} WHERE is_invoice_valid
        GROUP BY invoice_external_id HAVING count(*) >= 2 AND count(*) FILTER (WHERE source_type = 'time_entry') > 0
        ORDER BY invoice_external_id LIMIT 2""").fetchall()]
    assert len(invoices) == 2, "the build has too few valid invoices to trace"
    changed = con.execute(f"SELECT min(line_external_id) FROM {BILLING} WHERE invoice_external_id = ? "
                          "AND source_type = 'time_entry'", [invoices[0]]).fetchone()[0]
    dropped = con.execute(f"SELECT max(line_external_id) FROM {BILLING} WHERE invoice_external_id = ?",
                          [invoices[1]]).fetchone()[0]
    return changed, dropped


def _alter_outbound(con: duckdb.DuckDBPyConnection, changed: str, dropped: str) -> None:
    """An hour more on one line (header total kept equal to its lines) and one line removed."""
    invoice_of = f"(SELECT invoice_external_id FROM {BILLING} WHERE line_external_id = $line)"
    for sql, line in (
        (f"UPDATE {BILLING} SET invoice_amount = invoice_amount + (SELECT unit_rate FROM {BILLING} "
         f"WHERE line_external_id = $line) WHERE invoice_external_id = {invoice_of}", changed),
        (f"UPDATE {BILLING} SET quantity = quantity + 1, amount = amount + unit_rate WHERE line_external_id = $line",
         changed),
        (f"UPDATE {BILLING} SET invoice_amount = invoice_amount - (SELECT amount FROM {BILLING} "
         f"WHERE line_external_id = $line), invoice_line_count = invoice_line_count - 1 "
         f"WHERE invoice_external_id = {invoice_of}", dropped),
        (f"DELETE FROM {BILLING} WHERE line_external_id = $line", dropped),
    ):
        con.execute(sql, {"line": line})


def _post_then_change(warehouse: Path, sandbox_url: str) -> dict[str, Any]:
    netsuite = build_resources("local", sandbox_url=sandbox_url)["netsuite"].client()
    with Warehouse(warehouse).connect() as con:
        changed, dropped = _pick_lines(con)
        con.execute(f"CREATE TABLE outbound.billing_as_built AS SELECT * FROM {BILLING}")
        _alter_outbound(con, changed, dropped)
        summary = run_billing(con, Targets(netsuite=netsuite), run_id=POST_RUN)
        assert summary.ok and summary.posted > 0, summary.as_metadata()
        posted_amount = con.execute(f"SELECT amount::DOUBLE FROM {BILLING} WHERE line_external_id = ?",
                                    [changed]).fetchone()[0]
        con.execute(f"DELETE FROM {BILLING}; INSERT INTO {BILLING} SELECT * FROM outbound.billing_as_built;"
                    "DROP TABLE outbound.billing_as_built")
        enqueue(con, BILLING_FLOW, invoice_items(read_billing_lines(con)), run_id=ENQUEUE_RUN, now=datetime.now(UTC))
    return {"changed": changed, "dropped": dropped, "posted_amount": posted_amount}


def _erp_lines(ctx: SandboxContext) -> dict[str, tuple[str, str, float]]:
    """line key -> (NetSuite invoice id, invoice external id, amount) of the posted invoices."""
    invoices = {t["id"]: t["externalid"] for t in ctx.store.scan("netsuite", "transaction")
                if str(t.get("externalid") or "").startswith("psp:inv:")}
    return {line["custcol_ps_line_key"]: (line["transaction"], invoices[line["transaction"]],
                                          float(line["foreignamount"]))
            for line in ctx.store.scan("netsuite", "transactionline", equals={"mainline": "F"})
            if line["transaction"] in invoices}


def _trace_rows(warehouse: Path) -> dict[str, dict[str, Any]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        frame = con.execute("SELECT * FROM marts.invoice_line_trace").df()
    return {row["line_external_id"]: row for row in frame.to_dict("records")}


@pytest.fixture(scope="module")
def traced(marts: BuiltWarehouse, sandbox_template: Path,  # noqa: F811
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    work = tmp_path_factory.mktemp("trace")
    warehouse, state = work / "warehouse.duckdb", work / "sandbox.sqlite"
    shutil.copyfile(_file_of(marts), warehouse)
    shutil.copyfile(sandbox_template, state)
    ctx = open_sandbox(state, SandboxConfig(seed=TEST_SEED, scale=TEST_SCALE))
    server = start_server(ctx, port=0)
    try:
        picked = _post_then_change(warehouse, f"http://127.0.0.1:{server.server_port}")
        erp = _erp_lines(ctx)
    finally:
        server.shutdown()
        server.server_close()
    results = dbt_or_fail(["build", "--select", *TRACE_MODELS], warehouse, work)
    yield {"warehouse": warehouse, "work": work, "results": results, "erp": erp, "rows": _trace_rows(warehouse),
           **picked}


def _scalar(warehouse: Path, sql: str) -> Any:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchone()[0]


def test_the_mart_builds_contracted_with_every_test_passing(traced: dict[str, Any]) -> None:
    statuses = {r["unique_id"]: r["status"] for r in traced["results"]["results"]}
    assert {"model.ps_pipelines.stg_ops__outbox", "model.ps_pipelines.invoice_line_trace"} <= set(statuses)
    assert sum(uid.startswith("test.") for uid in statuses) >= 20
    assert set(statuses.values()) <= {"success", "pass"}
    assert _scalar(traced["warehouse"], """
        SELECT count(*) FROM information_schema.tables
        WHERE table_schema = 'marts' AND table_name = 'invoice_line_trace' AND table_type = 'BASE TABLE'""") == 1


def test_every_outbound_line_is_traced_once(traced: dict[str, Any]) -> None:
    outbound = _scalar(traced["warehouse"], f"SELECT list(line_external_id ORDER BY line_external_id) FROM {BILLING}")
    assert sorted(traced["rows"]) == outbound


def test_posted_lines_name_the_erp_invoice_that_holds_them_and_the_run_that_posted_it(
    traced: dict[str, Any]
) -> None:
    untouched = {k: r for k, r in traced["rows"].items() if k not in (traced["changed"], traced["dropped"])
                 and r["ledger_state"] == "posted"}
    assert untouched
    for key, row in untouched.items():
        erp_invoice, invoice_external_id, erp_amount = traced["erp"][key]
        assert (row["line_posting_status"], row["erp_invoice_id"], row["invoice_external_id"]) == (
            "posted", erp_invoice, invoice_external_id)
        assert float(row["amount"]) == float(row["posted_amount"]) == erp_amount
        assert (row["posted_version"], row["ledger_version"], row["posted_run_id"]) == (1, 1, POST_RUN)
        assert row["outbox_key"] == f"netsuite:invoice:{invoice_external_id}"


def test_a_line_changed_after_posting_shows_the_older_version_in_erp(traced: dict[str, Any]) -> None:
    row = traced["rows"][traced["changed"]]
    assert row["line_posting_status"] == "posted_older_version"
    assert float(row["posted_amount"]) == traced["posted_amount"] == traced["erp"][traced["changed"]][2]
    assert float(row["amount"]) != traced["posted_amount"]
    assert (row["ledger_state"], row["ledger_version"], row["posted_version"]) == ("pending", 2, 1)
    assert (row["posted_run_id"], row["last_run_id"]) == (POST_RUN, ENQUEUE_RUN)


def test_a_line_added_after_posting_is_not_posted_on_its_posted_invoice(traced: dict[str, Any]) -> None:
    row = traced["rows"][traced["dropped"]]
    assert traced["dropped"] not in traced["erp"]
    assert (row["line_posting_status"], row["is_in_posted_payload"]) == ("not_posted", False)
    assert row["ledger_state"] == "pending" and row["erp_invoice_id"] is not None
    assert pd.isna(row["posted_amount"])


def test_each_line_traces_to_its_source_row_rate_contract_and_deal(traced: dict[str, Any]) -> None:
    checks = {
        # Time lines: the Kantata entry's hours, person and day, as the API sent them.
        "time": """
            SELECT count(*), count(*) FILTER (WHERE t.hours = r.time_in_minutes / 60.0 AND t.quantity = t.hours
                                              AND t.kantata_user_id = r.user_id AND t.service_date = r.date_performed
                                              AND t.worker_name IS NOT NULL)
            FROM marts.invoice_line_trace t JOIN raw_kantata.time_entries r ON r.id = t.time_entry_id""",
        # The deal and the contract, as Salesforce holds them.
        "deal": """
            SELECT count(*), count(*) FILTER (WHERE t.opportunity_name = o.name AND t.deal_close_date = o.closedate)
            FROM marts.invoice_line_trace t JOIN raw_salesforce.opportunities o ON o.id = t.crm_opportunity_id""",
        "contract": """
            SELECT count(*), count(*) FILTER (WHERE t.contract_number = c.contractnumber)
            FROM marts.invoice_line_trace t JOIN raw_salesforce.contracts c ON c.id = t.crm_contract_id""",
        # The rate applied is the outbound line's, with where it came from.
        "rate": f"""
            SELECT count(*), count(*) FILTER (WHERE t.unit_rate = b.unit_rate AND t.pricing_source = b.pricing_source
                                              AND t.pricing_source IS NOT NULL)
            FROM marts.invoice_line_trace t JOIN {BILLING} b USING (line_external_id)""",
    }
    for name, sql in checks.items():
        total, matching = _scalar_row(traced["warehouse"], sql)
        assert total > 0 and matching == total, name
    assert _scalar(traced["warehouse"], "SELECT count(*) FROM marts.invoice_line_trace "
                                        "WHERE source_type = 'time_entry' AND rate_card_id IS NULL") == 0


def _scalar_row(warehouse: Path, sql: str) -> tuple[Any, ...]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchone()


def test_a_warehouse_without_a_ledger_builds_an_empty_ledger(traced: dict[str, Any]) -> None:
    work = traced["work"] / "no_ledger"
    work.mkdir()
    warehouse = work / "warehouse.duckdb"
    shutil.copyfile(traced["warehouse"], warehouse)
    with duckdb.connect(str(warehouse)) as con:
        con.execute("DROP VIEW IF EXISTS ops.outbox_invoice_lines; DROP TABLE ops.outbox")
    dbt_or_fail(["run", "--select", *TRACE_MODELS], warehouse, work)
    assert _scalar(warehouse, "SELECT count(*) FROM staging.stg_ops__outbox") == 0
    assert _scalar(warehouse, """
        SELECT count(*) FILTER (WHERE line_posting_status = 'not_posted' AND outbox_key IS NULL)
               = count(*) FROM marts.invoice_line_trace""") is True
    assert _scalar(warehouse, "SELECT count(*) FROM marts.invoice_line_trace") == len(traced["rows"])
