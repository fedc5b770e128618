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


def _contract(entity: str, table: str, cols: dict, description: str, change: str = "lastmodifieddate",
              ids: tuple[str, ...] = ("id",), parent: tuple[str, str] | None = None) -> EntityContract:
    audit = {change: c.timestamp(required=True)} if change else {}
    return EntityContract(
        platform="netsuite",
        entity=entity,
        id_columns=ids,
        change_column=change or None,
        schema=c.schema(f"netsuite.{entity}", {**{i: c.identifier() for i in ids}, **cols, **audit}),
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
    {"name": c.text(required=True), "country": c.text(), "currency": c.text(required=True),
     "isinactive": c.flag()},
    "NetSuite subsidiaries: the legal entities that invoice and own projects.",
)

CURRENCIES = _contract(
    "currencies",
    "currency",
    {"symbol": c.currency(), "name": c.text(), "isbasecurrency": c.flag(), "exchangerate": c.number(min_value=0)},
    "NetSuite currencies.",
)

EXCHANGE_RATES = _contract(
    "exchange_rates",
    "currencyrate",
    {"basecurrency": c.text(required=True), "transactioncurrency": c.text(required=True),
     "exchangerate": c.number(required=True, min_value=0), "effectivedate": c.date(required=True)},
    "NetSuite daily exchange rates between currencies (by currency id).",
)

CUSTOMERS = _contract(
    "customers",
    "customer",
    {"entityid": c.text(required=True), "companyname": c.text(required=True), "externalid": c.text(),
     "subsidiary": c.text(required=True), "currency": c.text(required=True), "isinactive": c.flag(),
     "datecreated": c.timestamp()},
    "NetSuite customers: the ERP customer master, keyed to CRM accounts by external id.",
)

PROJECTS = _contract(
    "projects",
    "job",
    {"entityid": c.text(required=True), "companyname": c.text(required=True), "externalid": c.text(),
     "parent": c.text(required=True), "subsidiary": c.text(required=True), "currency": c.text(),
     "entitystatus": c.text(), "startdate": c.date(), "projectedenddate": c.date(), "datecreated": c.timestamp()},
    "NetSuite projects (job records), keyed to CRM opportunities by external id.",
)

INVOICES = _contract(
    "invoices",
    "transaction",
    {"tranid": c.text(), "externalid": c.text(), "type": c.text(required=True, isin=("CustInvc",)),
     "entity": c.text(required=True), "job": c.text(), "subsidiary": c.text(required=True),
     "currency": c.text(required=True), "trandate": c.date(required=True), "duedate": c.date(),
     "status": c.text(), "foreigntotal": c.number(required=True), "memo": c.text(), "createddate": c.timestamp()},
    "NetSuite customer invoices (transactions of type CustInvc).",
)

# Transaction lines carry no modification date of their own: they are read for the
# invoices that changed, so their freshness follows the invoices' high-water mark.
INVOICE_LINES = _contract(
    "invoice_lines",
    "transactionline",
    {"linesequencenumber": c.number(), "item": c.text(), "memo": c.text(), "quantity": c.number(),
     "rate": c.number(), "foreignamount": c.number(required=True), "custcol_ps_line_key": c.text()},
    "NetSuite invoice lines, read for the invoices that changed.",
    change="",
    ids=("transaction", "id"),
    parent=("invoices", "transaction"),
)

ALL = (SUBSIDIARIES, CURRENCIES, EXCHANGE_RATES, CUSTOMERS, PROJECTS, INVOICES, INVOICE_LINES)
