"""Billing holds on a real dbt build over real HTTP: what must never reach NetSuite.

* A new version of an approved time entry that breaks its contract is quarantined; the
  previous (valid) version is still in the raw table, and must not be invoiced: its invoice
  waits as ``invalid`` naming the record and the rule, the ingestion check reports the open
  quarantine, and once the source is fixed the invoice goes out with the new value.
* Amounts no finance controller would let through (a rate of 10^13 per hour, an expense of
  10^14, a rate far above the rate card) wait as ``invalid`` with the rule named; the limits
  are dbt vars, and changing one changes the verdict.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from dagster import AssetCheckSeverity, AssetKey, materialize

from ps_pipelines.ingest.catalog import ingest_assets
from ps_pipelines.lib.contracts import ALL_CONTRACTS
from ps_pipelines.lib.ingestion import ingest_entity
from ps_pipelines.lib.warehouse.warehouse import Warehouse
from ps_pipelines.lib.writeback import INVALID, POSTED, Targets, run_billing
from ps_pipelines.resources import build_resources
from tests.conftest import RunningSandbox, opportunity_of_workspaces
from tests.lib.writeback.conftest import erp_invoices, ledger_row, suiteql
from tests.lib.writeback.test_end_to_end import approve_time_and_materials_week
from tests.transform.test_dbt_foundation import dbt_or_fail

TIME_ENTRIES_KEY = AssetKey(["raw", "kantata", "time_entries"])


# -- helpers ------------------------------------------------------------------------------------
def _ingest(sandbox: RunningSandbox, path: Path, run_id: str) -> None:
    """Every entity, incrementally after the first run (what the raw assets run)."""
    resources = build_resources("local", sandbox_url=sandbox.url, warehouse_path=str(path))
    clients = {p: resources[p].client() for p in ("salesforce", "kantata", "workday", "netsuite")}
    for contract in ALL_CONTRACTS:
        ingest_entity(clients[contract.platform], Warehouse(path), contract, run_id=run_id)


def _build(path: Path, work_dir: Path, dbt_vars: dict[str, Any] | None = None) -> None:
    # The outbound models and everything they read, seeds included (dim_worker reads one); no tests.
    args = ["build", "--select", "+outbound", "--exclude", "resource_type:test", "resource_type:unit_test"]
    if dbt_vars:
        args += ["--vars", json.dumps(dbt_vars)]
    dbt_or_fail(args, path, work_dir)


def _post(path: Path, targets: Targets, run_id: str):
    with Warehouse(path).connect() as con:
        return run_billing(con, targets, run_id=run_id)


def _new_version(sandbox: RunningSandbox, obj: str, record_id: str, minutes_later: int = 1,
                 **changes: Any) -> dict[str, Any]:
    """Write a new version of a Kantata record, as the PSA would: changed fields, a later updated_at."""
    body = sandbox.control("GET", f"records/kantata/{obj}/{record_id}")
    now = datetime.fromisoformat(sandbox.control("GET", "clock")["now"].replace("Z", "+00:00"))
    body.update(changes)
    body["updated_at"] = (now + timedelta(minutes=minutes_later)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    sandbox.control("POST", f"records/kantata/{obj}", {"id": record_id, "body": body})
    return body


def _billable_hourly_entry(sandbox: RunningSandbox, approved: list[str]) -> str:
    """An approved entry of the week that bills by the hour (billable, on a time-and-materials project)."""
    store = sandbox.ctx.store
    for entry_id in approved:
        entry = store.get("kantata", "time_entries", entry_id)
        workspace = store.get("kantata", "workspaces", entry["workspace_id"]) or {}
        opportunity = opportunity_of_workspaces(store).get(workspace.get("id"), "")
        deal = store.get("salesforce", "Opportunity", opportunity) or {}
        if entry["billable"] and deal.get("Billing_Model__c") == "Time and Materials":
            return entry_id
    raise AssertionError(f"no billable hourly entry among {approved}")


def _erp_lines_for(targets: Targets, line_keys: list[str]) -> list[dict[str, Any]]:
    keys = ", ".join(f"'{key}'" for key in line_keys)
    return suiteql(targets, "SELECT transaction, custcol_ps_line_key, foreignamount, rate, quantity "
                            f"FROM transactionline WHERE custcol_ps_line_key IN ({keys})")


def _line(path: Path, line_key: str) -> dict[str, Any]:
    with Warehouse(path).connect() as con:
        frame = con.execute("SELECT * FROM outbound.erp_billing_transactions WHERE line_external_id = ?",
                            [line_key]).df()
    assert len(frame) == 1, f"no outbound line {line_key}"
    return frame.iloc[0].to_dict()


def _contract_check(sandbox: RunningSandbox, path: Path):
    """Materialize the time-entry raw asset (an incremental run) and return its contract check."""
    resources = build_resources("local", sandbox_url=sandbox.url, warehouse_path=str(path))
    result = materialize(ingest_assets, resources=resources, selection=[TIME_ENTRIES_KEY], raise_on_error=True)
    return next(e for e in result.get_asset_check_evaluations() if e.check_name == "contract_valid")


# -- 4. a quarantined new version is not billed at its old value -------------------------------
def test_a_quarantined_new_version_holds_its_invoice_until_the_source_is_fixed(
    sandbox: RunningSandbox, targets: Targets, tmp_path: Path
) -> None:
    path = tmp_path / "warehouse.duckdb"
    _ingest(sandbox, path, "i1")
    _build(path, tmp_path)
    first = _post(path, targets, "b1")
    assert first.posted > 0 and first.invalid == 0

    # A week of time is approved and ingested (valid, not posted yet: the posting run has not
    # started) ...
    approved = approve_time_and_materials_week(sandbox)
    _ingest(sandbox, path, "i2")
    entry_id = _billable_hourly_entry(sandbox, approved)
    line_key = f"psp:inl:time_entry:{entry_id}"
    # ... then one timesheet is edited in the PSA to a version that breaks the contract.
    _new_version(sandbox, "time_entries", entry_id, time_in_minutes=-480)
    _ingest(sandbox, path, "i3")
    _build(path, tmp_path)
    held = _post(path, targets, "b2")

    # NetSuite never receives the old value of the entry, nor its invoice's new version.
    assert _erp_lines_for(targets, [line_key]) == [], "the entry was billed from its older version"
    invoice = _line(path, line_key)["invoice_external_id"]
    with Warehouse(path).connect() as con:
        row = ledger_row(con, f"netsuite:invoice:{invoice}")
    assert row["state"] == INVALID
    assert f"quarantined: time_entry {entry_id} time_in_minutes: greater_than_or_equal_to(0)" in row["last_error"]
    assert f"netsuite:invoice:{invoice}" in held.as_metadata()["failing"]

    # The ingestion check says so even on an incremental run whose own batch is clean: one
    # more valid change later than the overlap window, read twice.
    other = next(e for e in approved if e != entry_id)
    _new_version(sandbox, "time_entries", other, minutes_later=60, notes="moved to the right task")
    _ingest(sandbox, path, "i4")
    check = _contract_check(sandbox, path)
    assert check.metadata["quarantined"].value == 0, "the batch itself had no bad row"
    assert not check.passed and check.severity == AssetCheckSeverity.WARN
    assert check.metadata["open_quarantined"].value >= 1
    assert check.metadata["open_holding_previous_version"].value == 1
    assert "time_in_minutes: greater_than_or_equal_to(0)" in check.metadata["open_rules"].value
    assert check.metadata["oldest_open_quarantine"].value
    assert entry_id in check.metadata["open_examples"].value

    # The source is fixed: the hold lifts by itself and the invoice goes out with the new value.
    _new_version(sandbox, "time_entries", entry_id, minutes_later=120, time_in_minutes=405)
    _ingest(sandbox, path, "i5")
    _build(path, tmp_path)
    released = _post(path, targets, "b3")
    assert released.invalid == 0
    fixed = _line(path, line_key)
    assert float(fixed["quantity"]) == 6.75 and fixed["validation_errors"] is None
    [erp_line] = _erp_lines_for(targets, [line_key])
    assert float(erp_line["foreignamount"]) == pytest.approx(float(fixed["amount"]))
    with Warehouse(path).connect() as con:
        assert ledger_row(con, f"netsuite:invoice:{invoice}")["state"] == POSTED
        held_rows = con.execute("SELECT count(*) FROM raw_kantata.time_entries WHERE _quarantined_at IS NOT NULL"
                                ).fetchone()[0]
    assert held_rows == 0
    assert _contract_check(sandbox, path).metadata["open_holding_previous_version"].value == 0


# -- 5. absurd amounts never reach the ERP -------------------------------------------------------
def _pick_lines(path: Path) -> dict[str, dict[str, Any]]:
    """Three valid, unposted lines on three different invoices: two time entries (priced from the
    PSA with a known rate-card rate) and one expense."""
    with Warehouse(path).connect() as con:
        lines = con.execute("""
            SELECT b.line_external_id, b.invoice_external_id, b.source_type, b.source_id, t.rate_card_id,
                   t.standard_bill_rate, t.bill_rate
            FROM outbound.erp_billing_transactions b
            LEFT JOIN marts.fct_time_entries t ON b.source_type = 'time_entry' AND t.time_entry_id = b.source_id
            WHERE b.is_invoice_valid AND NOT b.is_posted_in_erp
            ORDER BY b.invoice_external_id, b.line_number
        """).df().to_dict("records")
    picked: dict[str, dict[str, Any]] = {}
    used: set[str] = set()
    wanted = [("expense", "expense"), ("huge_rate", "time_entry"), ("anomaly", "time_entry")]
    for name, source_type in wanted:
        picked[name] = next(
            line for line in lines if line["source_type"] == source_type and line["invoice_external_id"] not in used
            and (source_type == "expense" or line["standard_bill_rate"] == line["bill_rate"] > 0))
        used.add(picked[name]["invoice_external_id"])
    return picked


def test_absurd_amounts_wait_as_invalid_with_the_rule_and_never_reach_netsuite(
    sandbox: RunningSandbox, targets: Targets, tmp_path: Path
) -> None:
    path = tmp_path / "warehouse.duckdb"
    _ingest(sandbox, path, "i1")
    _build(path, tmp_path)
    picked = _pick_lines(path)
    expense, huge, anomaly = picked["expense"], picked["huge_rate"], picked["anomaly"]

    card_cents = round(float(anomaly["standard_bill_rate"]) * 100)
    _new_version(sandbox, "time_entries", huge["source_id"], rate_in_cents=10**15)  # 10^13 per hour
    _new_version(sandbox, "time_entries", anomaly["source_id"], rate_in_cents=4 * card_cents)  # 4x the card
    _new_version(sandbox, "expenses", expense["source_id"], amount_in_cents=10**16)  # 10^14
    _ingest(sandbox, path, "i2")
    _build(path, tmp_path)
    summary = _post(path, targets, "b1")
    assert summary.posted > 0, "the other invoices still go out"

    reasons = {}
    with Warehouse(path).connect() as con:
        for name, line in picked.items():
            row = ledger_row(con, f"netsuite:invoice:{line['invoice_external_id']}")
            assert row["state"] == INVALID, (name, row["state"], row["last_error"])
            reasons[name] = row["last_error"]
    for line in picked.values():
        assert erp_invoices(targets, line["invoice_external_id"]) == []
    assert _erp_lines_for(targets, [line["line_external_id"] for line in picked.values()]) == []

    huge_id, expense_id, anomaly_id = huge["source_id"], expense["source_id"], anomaly["source_id"]
    assert f"rate_limit: line time_entry {huge_id} rate 10000000000000.00" in reasons["huge_rate"]
    assert f"amount_limit: line time_entry {huge_id} amount " in reasons["huge_rate"]
    assert f"amount_limit: line expense {expense_id} amount 100000000000000.00" in reasons["expense"]
    assert f"rate_anomaly: line time_entry {anomaly_id} rate " in reasons["anomaly"]
    assert "4.00 x the rate card" in reasons["anomaly"]

    # The limits are dbt vars: a firm that accepts up to 5x its rate card lets the third one go.
    _build(path, tmp_path, {"billing_max_rate_card_multiple": 5})
    again = _post(path, targets, "b2")
    assert again.posted == 1
    [erp_line] = _erp_lines_for(targets, [anomaly["line_external_id"]])
    assert float(erp_line["rate"]) == pytest.approx(4 * card_cents / 100)
    with Warehouse(path).connect() as con:
        assert ledger_row(con, f"netsuite:invoice:{huge['invoice_external_id']}")["state"] == INVALID
        assert ledger_row(con, f"netsuite:invoice:{expense['invoice_external_id']}")["state"] == INVALID
