"""The payload contracts on their own: each rule names the record and the rule."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pandas as pd
import pytest

from ps_pipelines.lib.writeback import check_activation_requests, check_invoice_lines, invoice_items, minor_unit
from ps_pipelines.lib.writeback.activation import NEEDS_ATTENTION, activation_items
from tests.lib.writeback.conftest import NsProject, billing_lines, invoice_id

PROJECT = NsProject(job_id="200001", customer_id="100001", subsidiary_id="1", currency_id="1", currency_code="USD")
INVOICE = invoice_id(PROJECT)


def _set(column: str, value: object, row: int | None = None) -> Callable[[pd.DataFrame], None]:
    def change(frame: pd.DataFrame) -> None:
        if row is None:
            frame[column] = value
        else:
            frame.loc[row, column] = value
    return change


def _amount(row: int, value: float) -> Callable[[pd.DataFrame], None]:
    def change(frame: pd.DataFrame) -> None:
        frame.loc[row, ["amount", "unit_rate"]] = [value, value / frame.loc[row, "quantity"]]
        frame["invoice_amount"] = frame["amount"].sum()
    return change


RULES: dict[str, Callable[[pd.DataFrame], None]] = {
    "erp_customer": _set("erp_customer_id", None),
    "erp_project": _set("erp_project_id", None, row=1),
    "legal_entity": _set("erp_subsidiary_id", None),
    "legal_entity_consistent": _set("erp_subsidiary_id", "2", row=1),
    "currency_consistent": _set("currency_code", "EUR", row=1),
    "amount_positive": _amount(1, -900.0),
    "amount_rounding": _amount(0, 1200.001),
    "line_total": _set("amount", 1300.0, row=0),
    "header_total": _set("invoice_amount", 1.0),
    "billing_model": _set("billing_model", "Retainer"),
    "model_validation": _set("validation_errors", "rate", row=0),
    "header_consistent": _set("erp_customer_id", "100002", row=1),
}


@pytest.mark.parametrize("rule", sorted(RULES))
def test_each_invoice_rule_names_the_invoice_and_the_rule(rule: str) -> None:
    lines = billing_lines(PROJECT)
    assert check_invoice_lines(lines) == {}
    RULES[rule](lines)
    reasons = check_invoice_lines(lines)
    assert list(reasons) == [INVOICE]
    assert rule in {reason.split(":", 1)[0] for reason in reasons[INVOICE]}, reasons


def test_a_closed_period_is_rejected_through_its_last_day() -> None:
    lines = billing_lines(PROJECT, period="2026-09")
    assert check_invoice_lines(lines, closed_through=date(2026, 8, 31)) == {}
    reasons = check_invoice_lines(lines, closed_through=date(2026, 9, 30))
    assert reasons[invoice_id(PROJECT, "2026-09")] == ["period_open: invoice date 2026-09-30 is in a closed period"]


def test_amounts_round_to_the_currencys_minor_unit() -> None:
    assert (minor_unit("JPY"), minor_unit("EUR"), minor_unit("KWD"), minor_unit(None)) == (0, 2, 3, 2)
    yen = NsProject(job_id="1", customer_id="2", subsidiary_id="3", currency_id="9", currency_code="JPY")
    whole = billing_lines(yen, [(2.0, 15000.0)])
    assert check_invoice_lines(whole) == {}
    fractional = billing_lines(yen, [(1.5, 333.31)])  # 499.97 yen
    assert "amount_rounding" in check_invoice_lines(fractional)[invoice_id(yen)][0]


def test_only_the_failing_invoice_is_held_back() -> None:
    good = billing_lines(PROJECT, period="2026-09")
    bad = billing_lines(PROJECT, period="2026-10", erp_project_id=None)
    items = {item.external_id: item for item in invoice_items(pd.concat([good, bad], ignore_index=True))}
    assert items[invoice_id(PROJECT, "2026-09")].errors == []
    assert items[invoice_id(PROJECT, "2026-10")].errors == ["erp_project: erp_project_id is missing"]


def _request(**overrides: object) -> pd.DataFrame:
    row = {"opportunity_id": "006A", "customer_external_id": "001A", "company_name": "Acme", "project_name": "Acme - X",
           "erp_subsidiary_id": "1", "legal_entity_name": "PS Consulting Inc.", "currency_code": "USD",
           "erp_currency_id": "1", "billing_model": "Fixed Fee", "tax_code": "US-EXEMPT", "start_date": "2026-11-01",
           "end_date": "2027-04-30", "existing_erp_customer_id": None, "existing_erp_project_id": None,
           "existing_psa_project_id": None, "crm_activation_status": "Not Started", "needs_erp_customer": True,
           "needs_erp_project": True, "needs_psa_workspace": True, "needs_crm_update": True,
           "validation_errors": None}
    return pd.DataFrame([{**row, **overrides}])


def test_activation_rules_merge_the_models_and_the_contracts() -> None:
    assert check_activation_requests(_request()) == {}
    reasons = check_activation_requests(_request(tax_code=None, validation_errors="tax_code, contract"))
    assert [r.split(":")[0] for r in reasons["006A"]] == ["tax_code", "contract"]
    assert check_activation_requests(_request(end_date="2026-01-01"))["006A"][0].startswith("dates:")


def test_an_incomplete_deal_only_tells_the_crm() -> None:
    items = {item.key: item for item in activation_items(_request(erp_subsidiary_id=None, tax_code=" "))}
    crm = items.pop("salesforce:opportunity:006A")
    assert crm.errors == [] and crm.depends_on == []
    assert crm.payload == {"Activation_Status__c": NEEDS_ATTENTION + "legal_entity, tax_code"}
    assert set(items) == {"netsuite:customer:001A", "netsuite:job:006A", "kantata:workspace:006A"}
    assert all(item.errors for item in items.values())


def test_a_complete_deal_chains_its_steps() -> None:
    items = activation_items(_request(needs_erp_customer=False, existing_erp_customer_id="100001"))
    keys = [item.key for item in items]
    assert keys == ["netsuite:job:006A", "kantata:workspace:006A", "salesforce:opportunity:006A"]
    job, workspace, crm = items
    assert job.depends_on == ["netsuite:customer:001A"] and job.known_refs == {"netsuite:customer:001A": "100001"}
    assert job.payload["parent"] == {"id": {"$ref": "netsuite:customer:001A"}}
    assert workspace.depends_on == ["netsuite:job:006A"]
    assert crm.depends_on == ["netsuite:job:006A", "kantata:workspace:006A"]
    assert crm.payload == {"ERP_Project_Id__c": {"$ref": "netsuite:job:006A"}, "Activation_Status__c": "Complete"}


def test_holds_the_outbound_model_explains_are_reported_in_its_words() -> None:
    lines = billing_lines(PROJECT, [(6.75, 470.0), (8.0, 150.0), (2.0, 150.0), (1.0, 150.0), (1.0, 150.0)])
    lines.loc[0, ["validation_errors", "validation_detail"]] = [
        "quarantined", "quarantined: time_entry 70011 time_in_minutes: greater_than_or_equal_to(0) (value=-480.0)"]
    lines.loc[1, ["validation_errors", "validation_detail"]] = [
        "erp_project, amount_limit", "amount_limit: line time_entry 70012 amount 1200.00 USD > 1000.00 USD"]
    for row in (2, 3, 4):  # more lines failing one rule than the ledger text lists
        lines.loc[row, ["validation_errors", "validation_detail"]] = [
            "hours_limit", f"hours_limit: line time_entry 7001{row + 1} 13.00 h > 12.00 h per entry"]
    reasons = check_invoice_lines(lines)[INVOICE]
    assert reasons == [
        f"model_validation: line {lines.at[1, 'line_external_id']}: erp_project",
        "quarantined: time_entry 70011 time_in_minutes: greater_than_or_equal_to(0) (value=-480.0)",
        "amount_limit: line time_entry 70012 amount 1200.00 USD > 1000.00 USD",
        "hours_limit: line time_entry 70013 13.00 h > 12.00 h per entry",
        "hours_limit: line time_entry 70014 13.00 h > 12.00 h per entry",
        "hours_limit: line time_entry 70015 13.00 h > 12.00 h per entry",
    ]
    [item] = invoice_items(lines)
    assert item.errors == reasons  # what the ledger's last_error says


def test_a_quarantined_deal_is_reported_with_its_record_and_rule() -> None:
    detail = "quarantined: opportunity 006A stagename: isin(['Closed Won']) (value='Won?')"
    reasons = check_activation_requests(_request(validation_errors="tax_code, quarantined", validation_detail=detail))
    assert reasons["006A"] == [detail, "tax_code: flagged by the outbound model"]
