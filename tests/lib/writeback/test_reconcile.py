"""Reconciliation of the ledger with NetSuite over real HTTP: passes when they agree, fails
loudly on tampering, on postings behind the ledger's back and on lost postings."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import duckdb
import pandas as pd
import pytest

from ps_pipelines.lib.writeback import Targets, reconcile_invoices, run_billing
from ps_pipelines.lib.writeback.outbox import OutboxRow
from ps_pipelines.lib.writeback.payloads import BILLING_TABLE
from ps_pipelines.lib.writeback.senders import Outcome
from tests.conftest import RunningSandbox
from tests.lib.writeback.conftest import ErpBook, billing_lines, erp_invoices, invoice_id, ns_projects, write_outbound

GO_LIVE = date(2026, 9, 1)  # dbt var billing_start_date


@pytest.fixture
def posted(sandbox: RunningSandbox, con: duckdb.DuckDBPyConnection, targets: Targets) -> list[str]:
    """Three posted invoices (two projects, two periods); their external ids."""
    first, second = ns_projects(sandbox, 2)
    lines = [billing_lines(first, period="2026-09"), billing_lines(first, period="2026-10"),
             billing_lines(second, [(3.0, 99.5)], workspace="7002")]
    write_outbound(con, BILLING_TABLE, pd.concat(lines, ignore_index=True))
    assert run_billing(con, targets, run_id="r1").posted == 3
    return [invoice_id(first, "2026-09"), invoice_id(first, "2026-10"), invoice_id(second, workspace="7002")]


def test_ledger_and_erp_agree_after_posting(con: duckdb.DuckDBPyConnection, targets: Targets,
                                            posted: list[str]) -> None:
    result = reconcile_invoices(con, targets.netsuite, from_date=GO_LIVE)
    assert result.passed, result.describe()
    assert (result.ledger_invoices, result.erp_invoices) == (3, 3)
    assert result.describe() == "ledger and NetSuite agree on 3 invoice(s)"


def test_a_tampered_invoice_fails_the_reconciliation(con: duckdb.DuckDBPyConnection, targets: Targets,
                                                     posted: list[str]) -> None:
    [invoice] = erp_invoices(targets, posted[0])
    lines = {"items": [{"item": {"id": "Professional Services - Consultant"}, "quantity": 1, "rate": 10,
                        "amount": 10, "custcol_ps_line_key": "psp:inl:time_entry:forged"}]}
    targets.netsuite.client.request("PATCH", f"/services/rest/record/v1/invoice/{invoice['id']}",
                                    json={"item": lines})
    result = reconcile_invoices(con, targets.netsuite, from_date=GO_LIVE)
    assert not result.passed
    assert {(d.external_id, d.field) for d in result.mismatched} == {(posted[0], "total"), (posted[0], "line_count")}
    [group] = result.groups
    assert (group.period, group.ledger_count, group.erp_count, group.erp_total) == ("2026-09", 1, 1, "10.00")
    assert "mismatched: " + posted[0] in result.describe()


def test_an_invoice_posted_behind_the_ledgers_back_is_reported(
    con: duckdb.DuckDBPyConnection, targets: Targets, posted: list[str]
) -> None:
    rogue = "psp:inv:7999:1:USD:2026-10"
    body = {"externalId": rogue, "entity": {"id": "100001"}, "subsidiary": {"id": "1"}, "currency": {"id": "1"},
            "tranDate": "2026-10-31", "item": {"items": [{"item": {"id": "X"}, "quantity": 1, "rate": 5}]}}
    targets.netsuite.upsert_by_external_id("invoice", rogue, body)
    result = reconcile_invoices(con, targets.netsuite, from_date=GO_LIVE)
    assert not result.passed
    assert result.unknown_in_erp == [rogue] and result.missing_in_erp == [] and result.mismatched == []


def test_a_lost_posting_and_an_unacknowledged_one_are_reported(
    sandbox: RunningSandbox, con: duckdb.DuckDBPyConnection, targets: Targets, posted: list[str]
) -> None:
    [invoice] = erp_invoices(targets, posted[2])
    sandbox.control("POST", "events/delete", json={"platform": "netsuite", "object": "transaction",
                                                   "id": invoice["id"], "hard": True})
    project = ns_projects(sandbox, 3)[2]
    write_outbound(con, BILLING_TABLE, billing_lines(project, workspace="7003"))

    def crash(row: OutboxRow, outcome: Outcome) -> None:
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        run_billing(con, targets, run_id="r2", after_call=crash)
    result = reconcile_invoices(con, targets.netsuite, from_date=GO_LIVE)
    assert result.missing_in_erp == [posted[2]]
    assert result.unconfirmed_in_erp == [invoice_id(project, workspace="7003")]
    assert not result.passed


def test_invoices_before_go_live_are_out_of_scope(con: duckdb.DuckDBPyConnection, targets: Targets,
                                                  posted: list[str]) -> None:
    # The sandbox holds invoices an earlier pipeline posted before this ledger existed.
    unscoped = reconcile_invoices(con, targets.netsuite)
    assert unscoped.unknown_in_erp and all(eid.startswith("psp:inv:") for eid in unscoped.unknown_in_erp)
    assert reconcile_invoices(con, targets.netsuite, from_date=GO_LIVE).passed


def test_ledger_and_each_erp_agree_after_posting_and_a_tampered_line_fails(
    sandbox: RunningSandbox, con: duckdb.DuckDBPyConnection, targets: Targets, erp: ErpBook
) -> None:
    first, second = erp.projects(sandbox, targets, 2)
    lines = [erp.lines(first, period="2026-09"), erp.lines(first, period="2026-10"),
             erp.lines(second, [(3.0, 99.5)], workspace="7002")]
    write_outbound(con, BILLING_TABLE, pd.concat(lines, ignore_index=True))
    assert run_billing(con, targets, run_id="r1").posted == 3
    client = targets.client(erp.name)
    result = reconcile_invoices(con, client, from_date=GO_LIVE)
    assert result.passed, result.describe()
    assert (result.ledger_invoices, result.erp_invoices) == (3, 3)
    name = {"netsuite": "NetSuite", "d365": "Dynamics 365"}[erp.name]
    assert result.describe() == f"ledger and {name} agree on 3 invoice(s)"
    if erp.name != "d365":
        return  # NetSuite tampering: test_a_tampered_invoice_fails_the_reconciliation
    # Someone changes a line's price in Dynamics 365 (the invoice is not posted yet).
    [invoice] = erp.invoices(targets, invoice_id(second, workspace="7002"))
    [line] = client.find("FreeTextInvoiceLines", f"ParentRecId eq {invoice['id']}")
    client.update("FreeTextInvoiceLines", {"dataAreaId": line["dataAreaId"], "LineNumber": line["LineNumber"],
                                           "ParentRecId": line["ParentRecId"]},
                  {"UnitPrice": 100, "TransactionCurrencyAmount": 300})
    tampered = reconcile_invoices(con, client, from_date=GO_LIVE)
    assert not tampered.passed
    assert {(d.external_id, d.field) for d in tampered.mismatched} == {(invoice_id(second, workspace="7002"), "total")}
    assert Decimal(tampered.mismatched[0].erp) - Decimal(tampered.mismatched[0].ledger) == Decimal("1.50")
