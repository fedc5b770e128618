"""Invoice ledger items, built from the ``outbound.erp_billing_transactions`` lines.

One ledger row per invoice (``<erp>:invoice:<invoice external id>``), its payload built by the
ERP adapter the lines' ``erp_platform`` names (``erp.ERP_ADAPTERS``; NetSuite when the outbound
model predates the column): a NetSuite invoice record body, or a Dynamics 365 free-text invoice.
Every line carries its line key, so each ERP line traces back to its source row.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal

import duckdb
import pandas as pd

from ps_pipelines.lib.writeback.contracts import check_invoice_lines, round_money
from ps_pipelines.lib.writeback.erp import DEFAULT_ERP, erp_adapter
from ps_pipelines.lib.writeback.netsuite import invoice_payload
from ps_pipelines.lib.writeback.outbox import OutboxItem
from ps_pipelines.lib.writeback.values import Line, money

__all__ = ["invoice_payload"]  # NetSuite's, kept importable from here

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
           {validation_detail} AS validation_detail, coalesce({erp_platform}, '{default_erp}') AS erp_platform
    FROM {table}
    ORDER BY invoice_external_id, line_number, line_external_id
"""


def read_billing_lines(con: duckdb.DuckDBPyConnection, table: str = BILLING_TABLE) -> pd.DataFrame:
    """The outbound invoice lines, amounts as floats and dates as ISO text."""
    detail = optional_column(con, table, "validation_detail")
    erp = optional_column(con, table, "erp_platform")
    return con.execute(_BILLING_SELECT.format(table=table, validation_detail=detail, erp_platform=erp,
                                              default_erp=DEFAULT_ERP)).df()


def optional_column(con: duckdb.DuckDBPyConnection, table: str, column: str, sql_type: str = "VARCHAR") -> str:
    """``column``, or a typed null when ``table`` lacks it: an outbound table built before the
    column existed (the write-back ran before dbt rebuilt it) still posts what it says."""
    schema_name, name = table.split(".")
    present = con.execute(
        "SELECT count(*) FROM information_schema.columns WHERE table_schema = ? AND table_name = ? AND column_name = ?",
        [schema_name, name, column]).fetchone()[0]
    return column if present else f"CAST(NULL AS {sql_type})"


def _records(lines: pd.DataFrame) -> list[Line]:
    # Plain dicts, not pandas rows: building thousands of payloads row by row through pandas
    # indexing costs seconds per 10k lines.
    plain = lines.astype(object).where(lines.notna(), None)
    return plain.to_dict("records")


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
        adapter = erp_adapter(head.get("erp_platform"), f"invoice {invoice_id}")
        amounts = [line["amount"] for line in group if line["amount"] is not None]
        items.append(OutboxItem(
            flow=BILLING_FLOW,
            target_system=adapter.system,
            record_type=adapter.invoice_record,
            external_id=invoice_id,
            payload=adapter.invoice_payload(group, item_ids),
            errors=reasons.get(invoice_id, []),
            subsidiary_id=head["erp_subsidiary_id"],
            currency=head["currency_code"],
            billing_period=head["billing_period"],
            amount=money(sum((round_money(a, head["currency_code"]) for a in amounts), Decimal(0)),
                          head["currency_code"]) if amounts else None,
            line_count=len(group),
        ))
    return items
