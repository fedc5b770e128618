"""Recurring HubSpot line items bill as the recurring invoice lines of managed-services contracts
(issue 13): the main job on a HubSpot + Certinia estate activates the won deals, reads their
projects back, and bills every started period of each recurring line item once, at quantity x
price, through the same outbound model, ledger and NetSuite invoices as time, expenses and
milestones.

The expected periods are worked out here from the line items' own properties, read from the
sandbox's HubSpot API (recurringbillingfrequency, hs_recurring_billing_period,
hs_recurring_billing_start_date, quantity, price), and compared as ``decimal.Decimal``.
"""

from __future__ import annotations

import calendar
import json
import re
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import duckdb
import pytest
import yaml

from ps_pipelines.lib.sources import NetSuiteClient
from ps_sandbox.context import DEFAULT_CREDENTIALS
from tests.conftest import RunningSandbox
from tests.lib.writeback.conftest import close_targets, make_targets
from tests.test_runner import erp_invoices
from tests.test_runner_estate import activated_deals, run_estate
from tests.transform.test_dbt_foundation import DBT_PROJECT, dbt_or_fail

ESTATE = "hubspot,certinia,workday,netsuite"
# recurringbillingfrequency -> months per period (weekly and biweekly are not billed by month).
MONTHS = {"monthly": 1, "quarterly": 3, "per_six_months": 6, "annually": 12, "per_two_years": 24,
          "per_three_years": 36}
PROPERTIES = ["recurringbillingfrequency", "hs_recurring_billing_period", "hs_recurring_billing_start_date",
              "hs_recurring_billing_number_of_payments", "quantity", "price"]
CENT = Decimal("0.01")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    return tmp_path / "home"


def project_vars() -> dict:
    return yaml.safe_load((DBT_PROJECT / "dbt_project.yml").read_text())["vars"]


def add_months(start: date, months: int) -> date:
    """``start`` moved ``months`` calendar months on, on the last day of a shorter month."""
    year, month = divmod(start.month - 1 + months, 12)
    year, month = start.year + year, month + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def term_months(term: str | None) -> int:
    """The whole months of an ISO 8601 period (PnYnMnD; PnW has none)."""
    found = re.fullmatch(r"P(?:(\d+)Y)?(?:(\d+)M)?(?:\d+[WD])?", term or "")
    return int(found.group(1) or 0) * 12 + int(found.group(2) or 0) if found else 0


def expected_fees(line_id: str, properties: dict, as_of: date) -> dict[str, tuple[date, Decimal]]:
    """``<line item id>-<n>`` -> (period start, amount) for each period started by ``as_of``."""
    frequency = properties.get("recurringbillingfrequency")
    if frequency not in MONTHS or not properties.get("hs_recurring_billing_start_date"):
        return {}
    start = date.fromisoformat(properties["hs_recurring_billing_start_date"][:10])
    step = MONTHS[frequency]
    count = term_months(properties.get("hs_recurring_billing_period")) // step \
        or int(Decimal(properties.get("hs_recurring_billing_number_of_payments") or 0))
    amount = (Decimal(properties["quantity"]) * Decimal(properties["price"]).quantize(CENT, ROUND_HALF_UP)) \
        .quantize(CENT, ROUND_HALF_UP)
    periods = {f"{line_id}-{n + 1}": add_months(start, n * step) for n in range(count)}
    return {fee: (begins, amount) for fee, begins in periods.items() if begins <= as_of}


def rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple]:
    return con.execute(sql).fetchall()


def test_recurring_line_items_bill_one_line_per_period_once(certinia_sandbox: RunningSandbox, home: Path) -> None:
    settings = project_vars()
    as_of = date.fromisoformat(settings["as_of_date"])
    billing_start = date.fromisoformat(settings["billing_start_date"])
    with run_estate(ESTATE, certinia_sandbox, home) as con:
        deal_lines = rows(con, "SELECT deal_id, line_item_id FROM staging.stg_hubspot__line_items "
                               "WHERE is_recurring AND NOT is_deleted")
        items = {source_id: (service_date, Decimal(str(amount)), billing_period_start)
                 for source_id, service_date, amount, billing_period_start in rows(con, """
            SELECT source_id, service_date, CAST(amount AS VARCHAR), billing_period_start
            FROM marts.fct_billable_items WHERE source_type = 'recurring_fee'""")}
        outbound = rows(con, """
            SELECT line_external_id, CAST(amount AS VARCHAR), is_invoice_valid, invoice_external_id
            FROM outbound.erp_billing_transactions WHERE source_type = 'recurring_fee'""")
        [(amount_type,)] = rows(con, "SELECT data_type FROM information_schema.columns WHERE table_schema = 'marts' "
                                     "AND table_name = 'fct_billable_items' AND column_name = 'billing_amount'")
    assert amount_type == "DECIMAL(18,2)"

    # What each activated won deal's recurring line items should bill, from HubSpot itself.
    deals = activated_deals(home)
    targets = make_targets(certinia_sandbox.url)
    try:
        expected: dict[str, tuple[date, Decimal]] = {}
        for deal, line_id in deal_lines:
            if deal in deals:
                properties = targets.hubspot.get("line_items", line_id, PROPERTIES)["properties"]
                expected.update(expected_fees(line_id, properties, as_of))
    finally:
        close_targets(targets)
    assert expected, "no activated deal has a started recurring period: the test proves nothing"

    # One billable item per started period, at quantity x price, dated the period's start.
    assert {fee: (service_date, amount) for fee, (service_date, amount, _) in items.items()} == expected

    # The outbound model carries each period billed from billing_start_date on, once, at its amount.
    due = {f"psp:inl:recurring_fee:{fee}": amount for fee, (service_date, amount, period) in items.items()
           if period >= billing_start}
    keys = [key for key, *_ in outbound]
    assert due and sorted(keys) == sorted(due)
    assert {key: Decimal(amount) for key, amount, *_ in outbound} == due
    assert all(invoice.startswith("psp:inv:") and ":_:" not in invoice for *_, invoice in outbound)

    # The valid invoices are in NetSuite: each recurring line once, at its amount (the converging
    # passes re-read what they posted, so a second posting of a line would show here).
    wanted = {key for key, _, valid, _ in outbound if valid}
    assert wanted, outbound[:5]
    netsuite = NetSuiteClient(certinia_sandbox.url, **DEFAULT_CREDENTIALS["netsuite"])
    try:
        _, lines = erp_invoices(netsuite)
    finally:
        netsuite.client.close()
    on_erp = [line for invoice_lines in lines.values() for line in invoice_lines
              if str(line.get("custcol_ps_line_key") or "").startswith("psp:inl:recurring_fee:")]
    assert sorted(line["custcol_ps_line_key"] for line in on_erp) == sorted(wanted)
    assert {line["custcol_ps_line_key"]: abs(Decimal(str(line["foreignamount"]))) for line in on_erp} \
        == {key: due[key] for key in wanted}

    # The period expansion's unit test runs on this estate (it mocks HubSpot's staging).
    work = home.parent / "unit"
    work.mkdir()
    unit = ["test", "--select", "int_recurring_fee_items,test_type:unit", "--vars", json.dumps({"estate": ESTATE})]
    results = dbt_or_fail(unit, home / "warehouse.duckdb", work)
    assert [r["status"] for r in results["results"]] == ["pass"]
