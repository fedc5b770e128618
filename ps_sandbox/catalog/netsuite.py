"""What the sandbox NetSuite account exposes to SuiteQL: tables, columns and their types.

This is the vendor's catalogue, not the pipeline's contracts: the tables and columns below are
NetSuite's own (the NetSuite2.com analytics data source that SuiteQL queries), named as in
the Records Catalog (Setup > Records Catalog; the analytics record browser, e.g.
https://system.netsuite.com/help/helpcenter/en_US/srbrowser/Browser2021_1/analytics/record/transaction.html),
and include columns the pipeline never reads. A query naming a column missing here is refused
the way NetSuite refuses it (400, ``NOT_EXPOSED - Unknown identifier``), so a misspelt field in
a connector's query fails against the sandbox as it would against a tenant.

Known traps kept on purpose, because real SuiteQL has them:

- ``transaction`` has no ``subsidiary`` column: SuiteQL answers ``NOT_EXPOSED`` for it; a
  transaction's subsidiary is read from its main line (``transactionline.subsidiary`` where
  ``mainline = 'T'``).
- ``transactionline`` holds one main line (``mainline = 'T'``, the header's line, id 0) per
  transaction besides its item lines (``mainline = 'F'``) and, where tax applies, tax lines
  (``taxline = 'T'``).

Column kinds drive how values are answered: ``date`` and ``datetime`` columns come back in the
account's date format preference (``M/D/YYYY`` by default; a datetime is cut to its date)
unless the query formats them with ``TO_CHAR``; see ``ps_sandbox.suiteql``.

Custom fields are tenant customizations, not NetSuite's: the sandbox account carries the ones
the firm's account has (``CUSTOM_FIELDS``), declared as such.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

# Column kinds.
ID, TEXT, REF, BOOL, DATE, DATETIME, NUMBER = "id", "text", "ref", "bool", "date", "datetime", "number"


@dataclass(frozen=True)
class Table:
    name: str
    columns: Mapping[str, str]  # column -> kind
    custom: frozenset[str] = field(default_factory=frozenset)  # tenant customizations among them

    def kind(self, column: str) -> str | None:
        return self.columns.get(column)


def _cols(**groups: tuple[str, ...]) -> dict[str, str]:
    return {name: kind for kind, names in groups.items() for name in names}


_AUDIT = ("lastmodifieddate",)

# The firm's account customizations (Customization > Lists, Records & Fields): a transaction
# column field keyed by the billing write-back, so every invoice line traces to the work it bills.
CUSTOM_FIELDS: dict[str, dict[str, str]] = {
    "transactionline": {"custcol_ps_line_key": TEXT},
}

_STANDARD: dict[str, dict[str, str]] = {
    "customer": _cols(
        id=("id",),
        text=("entityid", "altname", "companyname", "firstname", "lastname", "email", "phone", "fax", "url",
              "externalid", "comments", "entitytitle"),
        ref=("subsidiary", "currency", "parent", "terms", "category", "salesrep", "entitystatus",
             "defaultbillingaddress", "defaultshippingaddress", "receivablesaccount"),
        bool=("isinactive", "isperson", "emailtransactions", "printtransactions", "taxable"),
        number=("creditlimit",),
        datetime=("datecreated", *_AUDIT),
    ),
    "job": _cols(
        id=("id",),
        text=("entityid", "altname", "companyname", "externalid", "comments", "entitytitle"),
        ref=("parent", "customer", "subsidiary", "currency", "entitystatus", "jobtype", "projectmanager",
             "jobbillingtype"),
        bool=("isinactive", "allowtime", "allowexpenses", "limittimetoassignees"),
        number=("percentcomplete", "estimatedcost", "estimatedrevenue"),
        date=("startdate", "projectedenddate", "enddate", "calculatedenddate"),
        datetime=("datecreated", *_AUDIT),
    ),
    "subsidiary": _cols(
        id=("id",),
        text=("name", "fullname", "legalname", "country", "state", "federalidnumber", "externalid"),
        ref=("currency", "parent"),
        bool=("isinactive", "iselimination"),
        datetime=_AUDIT,
    ),
    "currency": _cols(
        id=("id",),
        text=("name", "symbol", "displaysymbol", "externalid", "fxrateupdatetimezone"),
        bool=("isbasecurrency", "isinactive", "overridecurrencyformat", "includeinfxrateupdates"),
        number=("exchangerate", "currencyprecision", "symbolplacement"),
        datetime=_AUDIT,
    ),
    # Daily exchange rates (Lists > Accounting > Currency Exchange Rates).
    "currencyrate": _cols(
        id=("id",),
        ref=("basecurrency", "transactioncurrency"),
        number=("exchangerate",),
        date=("effectivedate",),
        datetime=_AUDIT,
    ),
    # Consolidated exchange rates between subsidiaries per posting period (not read by the pipeline).
    "consolidatedexchangerate": _cols(
        id=("id",),
        ref=("fromcurrency", "tocurrency", "fromsubsidiary", "tosubsidiary", "postingperiod", "accountingbook"),
        number=("averagerate", "currentrate", "historicalrate"),
    ),
    # Every transaction type in one table (``type`` = 'CustInvc' for invoices). No ``subsidiary``.
    # ``job`` is kept as the project reference the write-back's invoices carry.
    "transaction": _cols(
        id=("id",),
        text=("tranid", "transactionnumber", "type", "abbrevtype", "recordtype", "status", "memo", "otherrefnum",
              "externalid", "trandisplayname", "source", "approvalstatus", "billingstatus"),
        ref=("entity", "job", "currency", "postingperiod", "terms", "createdby", "employee"),
        bool=("posting", "voided", "void", "visibletocustomer", "isreversal"),
        number=("exchangerate", "foreigntotal", "foreignamountpaid", "foreignamountunpaid", "taxtotal",
                "daysopen"),
        date=("trandate", "duedate", "closedate", "shipdate"),
        datetime=("createddate", *_AUDIT),
    ),
    "transactionline": _cols(
        id=("id", "uniquekey"),
        ref=("transaction", "item", "entity", "subsidiary", "department", "class", "location", "expenseaccount",
             "units"),
        text=("memo", "itemtype", "accountinglinetype", "transactionlinetype"),
        bool=("mainline", "taxline", "isbillable", "isclosed", "iscogs", "donotdisplayline", "cleared"),
        number=("linesequencenumber", "quantity", "rate", "foreignamount", "netamount", "creditforeignamount",
                "debitforeignamount", "costestimate", "transactiondiscount"),
        date=("closedate",),
        datetime=("linecreateddate", "linelastmodifieddate"),
    ),
    "item": _cols(
        id=("id",),
        text=("itemid", "fullname", "displayname", "description", "itemtype", "externalid"),
        ref=("subsidiary", "incomeaccount", "parent"),
        bool=("isinactive",),
        datetime=("createddate", *_AUDIT),
    ),
    # Deleted records of every type (``type`` is the record type, e.g. 'customer', 'invoice').
    "deletedrecord": _cols(
        id=("recordid",),
        text=("type", "name", "context", "scriptid", "recordtypeid"),
        ref=("deletedby",),
        bool=("iscustomlist", "iscustomrecord", "iscustomtransaction"),
        datetime=("deleteddate",),
    ),
}

TABLES: dict[str, Table] = {
    name: Table(name, {**columns, **CUSTOM_FIELDS.get(name, {})}, frozenset(CUSTOM_FIELDS.get(name, {})))
    for name, columns in _STANDARD.items()
}


def columns(table: str) -> tuple[str, ...]:
    return tuple(TABLES[table].columns)


def suiteql_tables() -> dict[str, tuple[str, ...]]:
    """table -> column names, the shape ``suiteql.bind`` checks queries against."""
    return {name: tuple(table.columns) for name, table in TABLES.items()}
