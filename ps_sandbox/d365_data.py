"""Dynamics 365 Finance and Operations data: the firm's ERP records when its ERP is Dynamics 365.

The firm is the same whichever ERP it runs, so its Dynamics 365 records are the NetSuite ERP
records the generator wrote (``ps_sandbox.generate``: subsidiaries, currencies and daily rates,
customers, projects, posted invoices with lines), re-keyed into the Finance and Operations
entities of ``ps_sandbox.catalog.d365``: a subsidiary becomes a legal entity (``dataAreaId``), a
customer a ``CustomersV3`` row in its legal entity, a project a ``Projects`` row with a
``ProjectContracts`` row, an invoice a posted free-text invoice (``FreeTextInvoiceHeaders`` /
``FreeTextInvoiceLines``, ``IsPosted = Yes``) and its journal (``SalesInvoiceHeadersV2`` /
``SalesInvoiceLines``).

Derivation is lazy: ``ensure`` runs on the first Dynamics 365 request against a state file, so a
sandbox whose estate does not use Dynamics 365 never pays for it (generation cost and state size
stay as before). It reads the NetSuite records as they are at that moment, so on a fresh state
the result is deterministic for ``(seed, scale)``; the derivation is recorded in the kv
(``GENERATION_KEY``) and never repeated.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson

from ps_sandbox.catalog import d365 as catalog
from ps_sandbox.store import SandboxStore

PLATFORM = "d365"
GENERATION_KEY = "d365_generation"
RECID_KEY = "d365_recid"
# Record ids in F&O are Int64 values from one sequence; demo data starts around 5637144576.
RECID_BASE = 5_637_144_576
# NetSuite subsidiary id -> legal entity id (dataAreaId) and country.
LEGAL_ENTITIES = {"1": ("usmf", "US"), "2": ("gbsi", "GB"), "3": ("demf", "DE"), "4": ("ausi", "AU")}
RATE_TYPE = "Default"
# F&O's largest date (dateMax), the end of an exchange rate with no successor.
DATE_MAX = date(2154, 12, 31)
CUSTOMER_GROUP = "PSCUST"
_CHUNK = 20_000
_LOCK = threading.Lock()


# -- wire helpers shared with the API -----------------------------------------------------------


def wire_date(day: date) -> str:
    """A date-only property as F&O answers it: the day at 12:00:00Z (catalog [SAMPLE])."""
    return f"{day.isoformat()}T12:00:00Z"


def wire_datetime(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def wire_decimal(value: Decimal | str | float) -> float | int:
    """Edm.Decimal as a JSON number (F&O answers numbers, not IEEE754-compatible strings)."""
    number = Decimal(str(value))
    return int(number) if number == number.to_integral_value() else float(number)


def _key_part(kind: str, value: Any) -> str:
    if kind in (catalog.DATE, catalog.DATETIME):  # a key predicate's date-time or the stored text
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        return wire_date(moment.date()) if kind == catalog.DATE else wire_datetime(moment)
    if kind in (catalog.INT64, catalog.INT32):
        return f"{int(value):020d}"
    if kind == catalog.DECIMAL:
        return f"{Decimal(str(value)):016.4f}"
    return str(value).casefold()  # F&O keys compare case-insensitively


def store_id(entity: catalog.EntitySet, record: Mapping[str, Any]) -> str:
    """The store id of a record: its key values, in key order, sortable as the key sorts."""
    return "|".join(_key_part(entity.fields[name], record[name]) for name in entity.keys)


def next_recid(store: SandboxStore) -> int:
    value = int(store.kv_get(RECID_KEY, RECID_BASE)) + 1
    store.kv_set(RECID_KEY, value)
    return value


# -- derivation -----------------------------------------------------------------------------------


def ensure(store: SandboxStore) -> bool:
    """Derive the Dynamics 365 records unless the state already holds them; True if it did."""
    if store.kv_get(GENERATION_KEY) is not None:
        return False
    with _LOCK:
        if store.kv_get(GENERATION_KEY) is not None:
            return False
        counts = _Derivation(store).run()
        store.kv_set(GENERATION_KEY, {"source": "netsuite", "counts": counts})
        return True


def _rows(store: SandboxStore, obj: str) -> Iterator[dict[str, Any]]:
    cursor = store.conn.execute(
        "SELECT body FROM records WHERE platform = 'netsuite' AND object = ? AND deleted = 0 ORDER BY id", (obj,))
    while batch := cursor.fetchmany(_CHUNK):
        yield from (orjson.loads(body) for (body,) in batch)


def _moment(text: str | None) -> datetime:
    if not text:
        return datetime(2019, 1, 15, 10, tzinfo=UTC)
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


class _Derivation:
    def __init__(self, store: SandboxStore) -> None:
        self.store = store
        self.counts: dict[str, int] = {}
        self.currency_codes: dict[str, str] = {}
        self.customers: dict[str, tuple[str, str]] = {}  # ns id -> (dataAreaId, CustomerAccount)
        self.projects: dict[str, str] = {}  # ns job id -> ProjectID
        self.recid = RECID_BASE

    def put(self, name: str, rows: list[tuple[datetime, dict[str, Any]]]) -> None:
        entity = catalog.ENTITY_SETS[name]
        for start in range(0, len(rows), _CHUNK):
            chunk = rows[start:start + _CHUNK]
            self.store.put_many(PLATFORM, name, ((store_id(entity, body), moment, body) for moment, body in chunk))
        self.counts[f"{PLATFORM}.{name}"] = self.counts.get(f"{PLATFORM}.{name}", 0) + len(rows)

    def run(self) -> dict[str, int]:
        self.reference()
        self.masters()
        self.invoices()
        self.store.kv_set(RECID_KEY, self.recid)  # the API's record ids continue after these
        return self.counts

    def reference(self) -> None:
        for currency in _rows(self.store, "currency"):
            self.currency_codes[currency["id"]] = currency["symbol"]
        entities = []
        for sub in _rows(self.store, "subsidiary"):
            le_id, country = LEGAL_ENTITIES.get(sub["id"], (f"le{sub['id']}", sub.get("country", "")))
            entities.append((_moment(sub.get("lastmodifieddate")), {
                "LegalEntityId": le_id, "Name": sub["name"], "CompanyName": sub["name"],
                "AddressCountryRegionIsoCode": country, "NameAlias": sub["name"][:20]}))
        self.put("LegalEntities", entities)
        self.put("Ledgers", [(moment, _without_none({
            "LegalEntityId": entity["LegalEntityId"], "Name": entity["LegalEntityId"], "Description": entity["Name"],
            "AccountingCurrency": accounting, "ReportingCurrency": reporting, "DefaultExchangeRateType": RATE_TYPE}))
            for moment, entity, accounting, reporting in self.ledgers(entities)])
        currencies = []
        for currency in _rows(self.store, "currency"):
            currencies.append((_moment(currency.get("lastmodifieddate")), {
                "CurrencyCode": currency["symbol"], "Name": currency["name"], "Symbol": currency["symbol"],
                "ReferenceCurrencyForTriangulation": "Yes" if currency.get("isbasecurrency") == "T" else "No"}))
        self.put("Currencies", currencies)
        self.put("ExchangeRates", self.exchange_rates())

    def ledgers(self, entities: list[tuple[datetime, dict[str, Any]]]) -> Iterator[tuple]:
        """Each legal entity's ledger: the subsidiary's currency is its accounting currency, the
        base currency (isbasecurrency) the reporting one."""
        subsidiaries = {LEGAL_ENTITIES.get(sub["id"], (f"le{sub['id']}",))[0]: sub
                        for sub in _rows(self.store, "subsidiary")}
        base = next((self.currency_codes[c["id"]] for c in _rows(self.store, "currency")
                     if c.get("isbasecurrency") == "T"), None)
        for moment, entity in entities:
            sub = subsidiaries[entity["LegalEntityId"]]
            yield moment, entity, self.currency_codes.get(sub.get("currency", "")), base

    def exchange_rates(self) -> list[tuple[datetime, dict[str, Any]]]:
        """Daily rates into the accounting currency, quoted per 100 units (ConversionFactor)."""
        by_pair: dict[tuple[str, str], list[tuple[date, Decimal, datetime]]] = {}
        for rate in _rows(self.store, "currencyrate"):
            pair = (self.currency_codes[rate["transactioncurrency"]], self.currency_codes[rate["basecurrency"]])
            by_pair.setdefault(pair, []).append((date.fromisoformat(rate["effectivedate"]),
                                                 Decimal(rate["exchangerate"]), _moment(rate.get("lastmodifieddate"))))
        rows = []
        for (source, target), rates in by_pair.items():
            rates.sort()
            for index, (start, rate, moment) in enumerate(rates):
                end = rates[index + 1][0] - timedelta(days=1) if index + 1 < len(rates) else DATE_MAX
                rows.append((moment, {
                    "RateTypeName": RATE_TYPE, "RateTypeDescription": "Default exchange rates",
                    "FromCurrency": source, "ToCurrency": target, "StartDate": wire_date(start),
                    "EndDate": wire_date(end), "Rate": wire_decimal((rate * 100).quantize(Decimal("0.000001"))),
                    "ConversionFactor": "Hundred"}))
        return rows

    def masters(self) -> None:
        customers = []
        for customer in _rows(self.store, "customer"):
            company, country = LEGAL_ENTITIES.get(customer["subsidiary"], ("usmf", "US"))
            account = f"{country}-{int(customer['id']) % 100_000:05d}"
            self.customers[customer["id"]] = (company, account)
            customers.append((_moment(customer.get("lastmodifieddate")), _without_none({
                "dataAreaId": company, "CustomerAccount": account, "OrganizationName": customer["companyname"],
                "NameAlias": customer["companyname"][:20], "PartyType": "Organization",
                "CustomerGroupId": CUSTOMER_GROUP, "SalesCurrencyCode": self.currency_codes.get(customer["currency"]),
                "InvoiceAccount": account, "PsCrmAccountId": customer.get("externalid")})))
        self.put("CustomersV3", customers)
        contracts, projects = [], []
        for job in _rows(self.store, "job"):
            company, customer = self.customers.get(job.get("parent", ""), (None, None))
            if company is None:
                continue
            number = int(job["id"]) % 100_000
            project_id, contract_id = f"PRJ-{number:06d}", f"PC-{number:06d}"
            self.projects[job["id"]] = project_id
            moment = _moment(job.get("lastmodifieddate"))
            contracts.append((moment, _without_none({
                "dataAreaId": company, "ProjectContractID": contract_id, "Name": job["companyname"],
                "SalesCurrency": self.currency_codes.get(job.get("currency", "")),
                "ContractDate": wire_datetime(_moment(job.get("datecreated")))})))
            projects.append((moment, _without_none({
                "dataAreaId": company, "ProjectID": project_id, "ProjectName": job["companyname"],
                "CustomerAccount": customer, "ProjectContractID": contract_id, "ProjectType": "TimeMaterial",
                "ProjectStage": "Finished" if job.get("entitystatus") == "Closed" else "InProcess",
                "ProjectedStartDate": _date_or_none(job.get("startdate")),
                "ProjectedEndDate": _date_or_none(job.get("projectedenddate")),
                "PsCrmOpportunityId": job.get("externalid")})))
        self.put("ProjectContracts", contracts)
        self.put("Projects", projects)

    def invoices(self) -> None:
        headers: dict[str, dict[str, Any]] = {}
        rows: dict[str, list] = {"FreeTextInvoiceHeaders": [], "SalesInvoiceHeadersV2": []}
        for invoice in _rows(self.store, "transaction"):
            if invoice.get("type") != "CustInvc" or invoice.get("entity") not in self.customers:
                continue
            company, account = self.customers[invoice["entity"]]
            self.recid += 1
            number = f"FTI-{invoice.get('tranid', invoice['id']).removeprefix('INV-')}"
            issued = date.fromisoformat(invoice["trandate"])
            header = _without_none({
                "dataAreaId": company, "InvoiceIdentifier": self.recid, "CustomerAccount": account,
                "InvoiceAccount": account, "CurrencyCode": self.currency_codes.get(invoice.get("currency", "")),
                "InvoiceDate": wire_date(issued), "DocumentDate": wire_date(issued),
                "DueDate": _date_or_none(invoice.get("duedate")), "IsPosted": "Yes", "InvoiceId": number,
                "ExternalInvoiceId": invoice.get("externalid")})
            moment = _moment(invoice.get("lastmodifieddate"))
            headers[invoice["id"]] = {**header, "_project": self.projects.get(invoice.get("job", "")),
                                      "_moment": moment}
            rows["FreeTextInvoiceHeaders"].append((moment, header))
            rows["SalesInvoiceHeadersV2"].append((moment, _without_none({
                "dataAreaId": company, "InvoiceNumber": number, "InvoiceCustomerAccountNumber": account,
                "CurrencyCode": header.get("CurrencyCode"), "InvoiceDate": header["InvoiceDate"],
                "TotalInvoiceAmount": wire_decimal(invoice.get("foreigntotal") or 0), "TotalTaxAmount": 0,
                "TotalChargeAmount": 0})))
        for name, found in rows.items():
            self.put(name, found)
        self.invoice_lines(headers)

    def invoice_lines(self, headers: Mapping[str, dict[str, Any]]) -> None:
        lines: list = []
        journal: list = []
        for line in _rows(self.store, "transactionline"):
            header = headers.get(line.get("transaction", ""))
            if header is None or line.get("mainline") != "F" or line.get("taxline") == "T":
                continue
            number = int(line["id"])
            values = {"Quantity": wire_decimal(line.get("quantity") or 1),
                      "UnitPrice": wire_decimal(line.get("rate") or line.get("foreignamount") or 0),
                      "TransactionCurrencyAmount": wire_decimal(line.get("foreignamount") or 0)}
            lines.append((header["_moment"], _without_none({
                "dataAreaId": header["dataAreaId"], "LineNumber": number, "ParentRecId": header["InvoiceIdentifier"],
                "Description": line.get("memo"), "ProjectId": header["_project"],
                # The firm's line key travels in the free-text line's text, as the billing
                # write-back sets it (NetSuite's custcol_ps_line_key on the same line).
                "InvoiceText": line.get("custcol_ps_line_key"),
                "CurrencyCode": header.get("CurrencyCode"), "SalesTaxAmount": 0, **values})))
            journal.append((header["_moment"], _without_none({
                "dataAreaId": header["dataAreaId"], "InvoiceNumber": header["InvoiceId"], "LineNumber": number,
                "ProductDescription": line.get("memo"), "InvoicedQuantity": values["Quantity"],
                "SalesPrice": values["UnitPrice"], "LineAmount": values["TransactionCurrencyAmount"],
                "CurrencyCode": header.get("CurrencyCode"), "InvoiceDate": header["InvoiceDate"],
                "ProjectId": header["_project"]})))
            if len(lines) >= _CHUNK:
                self.put("FreeTextInvoiceLines", lines)
                self.put("SalesInvoiceLines", journal)
                lines, journal = [], []
        self.put("FreeTextInvoiceLines", lines)
        self.put("SalesInvoiceLines", journal)


def _date_or_none(text: str | None) -> str | None:
    return wire_date(date.fromisoformat(text[:10])) if text else None


def _without_none(body: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in body.items() if value is not None}


# -- business events ---------------------------------------------------------------------------------

INVOICE_SEQUENCE_KEY = "d365_invoice_seq:{company}"
FIRST_POSTED_NUMBER = 500_000  # above the derived invoices' numbers


def post_free_text_invoices(store: SandboxStore, now: datetime, company: str | None = None,
                            identifiers: list[int] | None = None) -> list[dict[str, Any]]:
    """Post the unposted free-text invoices (of ``company``, or those ``identifiers``), as an
    accountant does in the client: each gets its invoice number and ``IsPosted = Yes``, and its
    customer invoice journal (``SalesInvoiceHeadersV2`` / ``SalesInvoiceLines``) is written, all in
    one transaction. Returns the posted headers."""
    ensure(store)
    headers = [h for h in store.scan(PLATFORM, "FreeTextInvoiceHeaders", equals={"IsPosted": "No"}, order="id")
               if (company is None or h["dataAreaId"] == company)
               and (identifiers is None or h["InvoiceIdentifier"] in identifiers)]
    sets = catalog.ENTITY_SETS
    rows: list[tuple[str, str, str, datetime, dict[str, Any]]] = []
    for header in headers:
        number = _next_invoice_number(store, header["dataAreaId"])
        lines = store.scan(PLATFORM, "FreeTextInvoiceLines", order="id",
                           equals={"dataAreaId": header["dataAreaId"], "ParentRecId": header["InvoiceIdentifier"]})
        total = sum((Decimal(str(line.get("TransactionCurrencyAmount", 0))) for line in lines), Decimal(0))
        header.update(IsPosted="Yes", InvoiceId=number)
        rows.append((PLATFORM, "FreeTextInvoiceHeaders", store_id(sets["FreeTextInvoiceHeaders"], header), now, header))
        journal = _without_none({
            "dataAreaId": header["dataAreaId"], "InvoiceNumber": number,
            "InvoiceCustomerAccountNumber": header.get("InvoiceAccount") or header["CustomerAccount"],
            "CurrencyCode": header.get("CurrencyCode"), "InvoiceDate": header.get("InvoiceDate"),
            "CustomersOrderReference": header.get("CustomerReference"), "TotalInvoiceAmount": wire_decimal(total),
            "TotalTaxAmount": 0, "TotalChargeAmount": 0})
        rows.append((PLATFORM, "SalesInvoiceHeadersV2", store_id(sets["SalesInvoiceHeadersV2"], journal), now, journal))
        for line in lines:
            posted = _without_none({
                "dataAreaId": header["dataAreaId"], "InvoiceNumber": number, "LineNumber": line["LineNumber"],
                "ProductDescription": line.get("Description"), "InvoicedQuantity": line.get("Quantity"),
                "SalesPrice": line.get("UnitPrice"), "LineAmount": line.get("TransactionCurrencyAmount"),
                "CurrencyCode": header.get("CurrencyCode"), "InvoiceDate": header.get("InvoiceDate"),
                "ProjectId": line.get("ProjectId")})
            rows.append((PLATFORM, "SalesInvoiceLines", store_id(sets["SalesInvoiceLines"], posted), now, posted))
    store.put_together(rows)
    return headers


def billable_projects(store: SandboxStore) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """Each ``Projects`` row (by store id) with its customer (``CustomersV3`` in the project's legal
    entity), when that customer has a sales currency: the projects an invoice can be made for."""
    customers = {(c[catalog.COMPANY], c["CustomerAccount"]): c for c in store.scan(PLATFORM, "CustomersV3")}
    for project in store.scan(PLATFORM, "Projects", order="id"):
        customer = customers.get((project[catalog.COMPANY], project.get("CustomerAccount")))
        if customer and customer.get("SalesCurrencyCode"):
            yield project, customer


def _next_invoice_number(store: SandboxStore, company: str) -> str:
    key = INVOICE_SEQUENCE_KEY.format(company=company)
    entity = catalog.ENTITY_SETS["SalesInvoiceHeadersV2"]
    while True:  # never reuse a number the derived journal holds
        value = int(store.kv_get(key, FIRST_POSTED_NUMBER)) + 1
        store.kv_set(key, value)
        number = f"FTI-{value:06d}"
        if store.get(PLATFORM, entity.name, store_id(entity, {"dataAreaId": company, "InvoiceNumber": number})) is None:
            return number
