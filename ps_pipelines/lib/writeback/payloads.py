"""Invoice payloads for NetSuite, built from the ``outbound.erp_billing_transactions`` lines.

One ledger row per invoice (``netsuite:invoice:<invoice external id>``); its payload is the
NetSuite invoice record body (``PUT /record/v1/invoice/eid:<externalId>``), every line carrying
its ``custcol_ps_line_key`` so each ERP line traces back to its source row.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

import duckdb
import pandas as pd

from ps_pipelines.lib.writeback.contracts import check_invoice_lines, round_money
from ps_pipelines.lib.writeback.outbox import OutboxItem

BILLING_TABLE = "outbound.erp_billing_transactions"
ACTIVATION_TABLE = "outbound.erp_project_activation_requests"
BILLING_FLOW = "billing"
INVOICE_PREFIX = "psp:inv:"

BILLING_COLUMNS = (
    "line_external_id", "invoice_external_id", "line_number", "source_type", "source_id", "psa_project_id",
    "crm_opportunity_id", "billing_model", "billing_period", "invoice_date", "erp_customer_id", "erp_project_id",
    "erp_subsidiary_id", "erp_currency_id", "currency_code", "item_name", "memo", "quantity", "unit_rate", "amount",
    "invoice_amount", "validation_errors", "validation_detail",
)
# Amounts travel as floats (the contracts check floats); the payload's cents are taken back
# from them exactly (round_money reads a float by its 15 significant digits), which holds for
# any decimal(18,2) below 10^13.
_BILLING_SELECT = """
    SELECT line_external_id, invoice_external_id, line_number, source_type, source_id, psa_project_id,
           crm_opportunity_id, billing_model, billing_period, CAST(invoice_date AS VARCHAR) AS invoice_date,
           erp_customer_id, erp_project_id, erp_subsidiary_id, erp_currency_id, currency_code, item_name, memo,
           CAST(quantity AS DOUBLE) AS quantity, CAST(unit_rate AS DOUBLE) AS unit_rate,
           CAST(amount AS DOUBLE) AS amount, CAST(invoice_amount AS DOUBLE) AS invoice_amount, validation_errors,
           {validation_detail} AS validation_detail
    FROM {table}
    ORDER BY invoice_external_id, line_number, line_external_id
"""


def read_billing_lines(con: duckdb.DuckDBPyConnection, table: str = BILLING_TABLE) -> pd.DataFrame:
    """The outbound invoice lines, amounts as floats and dates as ISO text."""
    detail = optional_column(con, table, "validation_detail")
    return con.execute(_BILLING_SELECT.format(table=table, validation_detail=detail)).df()


def optional_column(con: duckdb.DuckDBPyConnection, table: str, column: str, sql_type: str = "VARCHAR") -> str:
    """``column``, or a typed null when ``table`` lacks it: an outbound table built before the
    column existed (the write-back ran before dbt rebuilt it) still posts what it says."""
    schema_name, name = table.split(".")
    present = con.execute(
        "SELECT count(*) FROM information_schema.columns WHERE table_schema = ? AND table_name = ? AND column_name = ?",
        [schema_name, name, column]).fetchone()[0]
    return column if present else f"CAST(NULL AS {sql_type})"


def _value(value: Any) -> Any:
    """``None`` for pandas' missing markers, plain Python scalars otherwise (JSON-safe)."""
    if value is None or (not isinstance(value, str | list | dict) and pd.isna(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def _ref(value: Any) -> dict[str, Any] | None:
    value = _value(value)
    return None if value is None else {"id": str(value)}


def _money(value: Any, currency: str | None) -> float | None:
    # JSON carries a float; the cents come from the exact decimal (round_money), so the float
    # is the one nearest to them and prints as them.
    value = _value(value)
    return None if value is None else float(round_money(value, currency))


Line = dict[str, Any]  # one row of the billing lines, as plain Python values


def _records(lines: pd.DataFrame) -> list[Line]:
    # Plain dicts, not pandas rows: building thousands of payloads row by row through pandas
    # indexing costs seconds per 10k lines.
    plain = lines.astype(object).where(lines.notna(), None)
    return plain.to_dict("records")


def invoice_payload(lines: list[Line], item_ids: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The NetSuite invoice body of one invoice's lines (header fields from the first line).

    ``item_ids`` maps service item names to NetSuite item internal ids; without it the name is
    the item reference (what the sandbox's item list uses).
    """
    head = lines[0]
    currency = head["currency_code"]
    items = [{
        "item": {"id": (item_ids or {}).get(line["item_name"], line["item_name"])},
        "description": line["memo"],
        "quantity": line["quantity"],
        "rate": line["unit_rate"],
        "amount": _money(line["amount"], currency),
        "custcol_ps_line_key": line["line_external_id"],
    } for line in lines]
    return {
        "externalId": head["invoice_external_id"],
        "entity": _ref(head["erp_customer_id"]),
        "job": _ref(head["erp_project_id"]),
        "subsidiary": _ref(head["erp_subsidiary_id"]),
        "currency": _ref(head["erp_currency_id"]),
        "tranDate": head["invoice_date"],
        # A project with no PSA project (invoiced on its ERP job only) is named by the job.
        "memo": f"{head['billing_model']} {head['billing_period']}, "
                f"project {head['psa_project_id'] or head['erp_project_id']}",
        "item": {"items": items},
    }


def invoice_items(
    lines: pd.DataFrame, *, closed_through: date | None = None, item_ids: Mapping[str, str] | None = None
) -> list[OutboxItem]:
    """One ledger item per invoice; invoices failing their contract carry the reasons."""
    lines = lines[lines["invoice_external_id"].notna()]
    reasons = check_invoice_lines(lines, closed_through)
    invoices: dict[str, list[Line]] = {}
    for line in _records(lines):
        invoices.setdefault(str(line["invoice_external_id"]), []).append(line)
    items = []
    for invoice_id in sorted(invoices):
        group = invoices[invoice_id]
        head = group[0]
        amounts = [line["amount"] for line in group if line["amount"] is not None]
        items.append(OutboxItem(
            flow=BILLING_FLOW,
            target_system="netsuite",
            record_type="invoice",
            external_id=invoice_id,
            payload=invoice_payload(group, item_ids),
            errors=reasons.get(invoice_id, []),
            subsidiary_id=head["erp_subsidiary_id"],
            currency=head["currency_code"],
            billing_period=head["billing_period"],
            amount=_money(sum((round_money(a, head["currency_code"]) for a in amounts), Decimal(0)),
                          head["currency_code"]) if amounts else None,
            line_count=len(group),
        ))
    return items
