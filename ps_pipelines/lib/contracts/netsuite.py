"""Data contracts for NetSuite (ERP) records, read through SuiteQL.

SuiteQL answers every value as a string and booleans as ``"T"``/``"F"``; ``normalize``
turns those into real booleans before validation, since ``bool("F")`` is true.
"""

from __future__ import annotations

from typing import Any

from ps_pipelines.lib.contracts import columns as c
from ps_pipelines.lib.contracts.base import EntityContract, Record, flatten_record

_BOOLEANS = {"T": True, "F": False}


def normalize_suiteql(record: dict[str, Any]) -> Record:
    flat = flatten_record(record)
    return {k: _BOOLEANS.get(v, v) if isinstance(v, str) else v for k, v in flat.items()}


_ID_DESCRIPTIONS = {
    "id": "NetSuite internal id of the record (of the line, for transaction lines).",
    "transaction": "Internal id of the transaction (invoice) the line belongs to.",
}


def _contract(entity: str, table: str, cols: dict, description: str, change: str = "lastmodifieddate",
              ids: tuple[str, ...] = ("id",), parent: tuple[str, str] | None = None) -> EntityContract:
    modified = c.timestamp(required=True, description="When the record was last modified (UTC).")
    audit = {change: modified} if change else {}
    return EntityContract(
        platform="netsuite",
        entity=entity,
        id_columns=ids,
        change_column=change or None,
        schema=c.schema(f"netsuite.{entity}", {**{i: c.identifier(_ID_DESCRIPTIONS[i]) for i in ids}, **cols, **audit}),
        description=description,
        source_object=table,
        source_fields=(*ids, *cols, *((change,) if change else ())),
        normalize=normalize_suiteql,
        parent_entity=parent[0] if parent else None,
        parent_key_column=parent[1] if parent else None,
    )


SUBSIDIARIES = _contract(
    "subsidiaries",
    "subsidiary",
    {
        "name": c.text(required=True, description="Subsidiary name."),
        "country": c.text(description="Country of the subsidiary's address."),
        "currency": c.text(required=True, description="Internal id of the subsidiary's base (functional) currency."),
        "isinactive": c.flag(description="True when the subsidiary is inactive."),
    },
    "NetSuite subsidiaries: the legal entities that invoice and own projects.",
)

CURRENCIES = _contract(
    "currencies",
    "currency",
    {
        "symbol": c.currency(description="ISO 4217 currency code."),
        "name": c.text(description="Currency name."),
        "isbasecurrency": c.flag(description="True for the base currency of the account's root subsidiary."),
        "exchangerate": c.number(min_value=0, description="Default exchange rate to the base currency."),
    },
    "NetSuite currencies.",
)

EXCHANGE_RATES = _contract(
    "exchange_rates",
    "currencyrate",
    {
        "basecurrency": c.text(required=True, description="Internal id of the currency the rate converts to."),
        "transactioncurrency": c.text(required=True, description="Internal id of the currency the rate converts from."),
        "exchangerate": c.number(
            required=True, min_value=0, description="Units of the base currency per unit of the transaction currency."),
        "effectivedate": c.date(required=True, description="Day from which the rate applies."),
    },
    "NetSuite daily exchange rates between currencies (by currency id).",
)

CUSTOMERS = _contract(
    "customers",
    "customer",
    {
        "entityid": c.text(required=True, description="Customer id shown in the UI (name or auto-generated number)."),
        "companyname": c.text(required=True, description="Company name."),
        "externalid": c.text(description="External id set by integrations: the Salesforce account Id."),
        "subsidiary": c.text(required=True, description="Internal id of the customer's primary subsidiary."),
        "currency": c.text(required=True, description="Internal id of the customer's primary currency."),
        "isinactive": c.flag(description="True when the customer is inactive."),
        "datecreated": c.timestamp(description="When the record was created (UTC)."),
    },
    "NetSuite customers: the ERP customer master, keyed to CRM accounts by external id.",
)

PROJECTS = _contract(
    "projects",
    "job",
    {
        "entityid": c.text(required=True, description="Project id shown in the UI."),
        "companyname": c.text(required=True, description="Project name."),
        "externalid": c.text(description="External id set by integrations: the Salesforce opportunity Id."),
        "parent": c.text(required=True, description="Internal id of the customer the project belongs to."),
        "subsidiary": c.text(required=True, description="Internal id of the project's subsidiary."),
        "currency": c.text(description="Internal id of the project's currency."),
        "entitystatus": c.text(description="Internal id of the project status (e.g. In Progress)."),
        "startdate": c.date(description="Project start date."),
        "projectedenddate": c.date(description="Projected end date."),
        "datecreated": c.timestamp(description="When the record was created (UTC)."),
    },
    "NetSuite projects (job records), keyed to CRM opportunities by external id.",
)

INVOICES = _contract(
    "invoices",
    "transaction",
    {
        "tranid": c.text(description="Document number of the invoice."),
        "externalid": c.text(description="External id set by the pipeline: its idempotency key."),
        "type": c.text(required=True, isin=("CustInvc",), description="Transaction type (CustInvc: invoice)."),
        "entity": c.text(required=True, description="Internal id of the customer invoiced."),
        "job": c.text(description="Internal id of the project invoiced."),
        "subsidiary": c.text(required=True, description="Internal id of the invoicing subsidiary."),
        "currency": c.text(required=True, description="Internal id of the invoice currency."),
        "trandate": c.date(required=True, description="Invoice (posting) date."),
        "duedate": c.date(description="Payment due date."),
        "status": c.text(description="Invoice status (e.g. Open, Paid In Full)."),
        "foreigntotal": c.number(required=True, description="Invoice total in the invoice currency."),
        "memo": c.text(description="Memo on the invoice."),
        "createddate": c.timestamp(description="When the invoice was created (UTC)."),
    },
    "NetSuite customer invoices (transactions of type CustInvc).",
)

# Transaction lines carry no modification date of their own: they are read for the
# invoices that changed, so their freshness follows the invoices' high-water mark.
INVOICE_LINES = _contract(
    "invoice_lines",
    "transactionline",
    {
        "linesequencenumber": c.number(description="Position of the line on the invoice."),
        "item": c.text(description="Internal id of the item billed."),
        "memo": c.text(description="Line memo."),
        "quantity": c.number(description="Quantity billed."),
        "rate": c.number(description="Price per unit, in the invoice currency."),
        "foreignamount": c.number(required=True, description="Line amount in the invoice currency."),
        "custcol_ps_line_key": c.text(
            description="Custom column: the billable item key the pipeline posted the line for."),
    },
    "NetSuite invoice lines, read for the invoices that changed.",
    change="",
    ids=("transaction", "id"),
    parent=("invoices", "transaction"),
)

ALL = (SUBSIDIARIES, CURRENCIES, EXCHANGE_RATES, CUSTOMERS, PROJECTS, INVOICES, INVOICE_LINES)
