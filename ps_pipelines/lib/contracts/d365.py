"""Data contracts for Dynamics 365 Finance and Operations (ERP) data entities, read through OData v4.

No entity here exposes a modified date-time (Microsoft maps ``ModifiedDateTime`` on few public
entities), so every contract has no change column: each run reads a full snapshot and the
records it no longer lists are marked deleted.

Company-specific entities (customers, projects, invoices) are keyed by ``dataAreaId`` (the legal
entity) plus their own key, read across every company with ``cross-company=true``; shared ones
(legal entities, currencies, exchange rates) by their own key alone.

On the wire a date-only property is the day at ``T12:00:00Z``, an ``Edm.Decimal`` a JSON number
and an enum its member name (``Yes``/``No``); every row carries an ``@odata.etag``.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

import pandera.pandas as pa

from ps_pipelines.lib.contracts import columns as c
from ps_pipelines.lib.contracts.base import EntityContract, Record, flatten_record

COMPANY = "dataAreaId"


def date_columns(schema: pa.DataFrameSchema) -> frozenset[str]:
    """The contract's calendar-date columns (``datetime64[ns]`` without a zone)."""
    return frozenset(name for name, column in schema.columns.items() if str(column.dtype) == "datetime64[ns]")


def normalize_odata(record: Mapping[str, Any], dates: frozenset[str] = frozenset()) -> Record:
    """Flatten a row without its OData annotations (``@odata.etag``), dates as ``YYYY-MM-DD``
    (F&O answers a date as the day at noon UTC, which would otherwise parse as a timestamp)."""
    flat = flatten_record({k: v for k, v in record.items() if not k.startswith("@")})
    for name in dates & flat.keys():
        if isinstance(flat[name], str):
            flat[name] = flat[name][:10]
    return flat


def _contract(entity: str, entity_set: str, ids: tuple[str, ...], cols: dict[str, pa.Column],
              description: str) -> EntityContract:
    """``ids`` and ``cols`` in F&O's spelling (the ``$select``); the raw columns are lower-cased."""
    id_descriptions = {COMPANY: "Legal entity (company) the record belongs to."}
    columns = {name.lower(): column for name, column in cols.items()}
    schema = c.schema(f"d365.{entity}", {
        **{i.lower(): c.identifier(id_descriptions.get(i, f"{i}: part of the entity's key in {entity_set}."))
           for i in ids if i not in cols},
        **columns,
    })
    return EntityContract(
        platform="d365",
        entity=entity,
        id_columns=tuple(i.lower() for i in ids),
        change_column=None,
        schema=schema,
        description=description,
        source_object=entity_set,
        source_fields=tuple(dict.fromkeys((*ids, *cols))),
        normalize=partial(normalize_odata, dates=date_columns(schema)),
    )


LEGAL_ENTITIES = _contract(
    "legal_entities", "LegalEntities", ("LegalEntityId",),
    {
        "LegalEntityId": c.identifier("Legal entity id, the dataAreaId of its company-specific records."),
        "Name": c.text(required=True, description="Legal entity name."),
        "AddressCountryRegionIsoCode": c.text(description="ISO country code of the legal entity's address."),
    },
    "Dynamics 365 legal entities (companies): the entities that invoice and own projects.",
)

LEDGERS = _contract(
    "ledgers", "Ledgers", ("LegalEntityId",),
    {
        "LegalEntityId": c.identifier("Legal entity the ledger belongs to (one ledger per legal entity)."),
        "AccountingCurrency": c.currency(description="The legal entity's accounting (functional) currency."),
        "ReportingCurrency": c.currency(required=False, description="The ledger's reporting currency."),
    },
    "Dynamics 365 ledgers: each legal entity's accounting currency.",
)

CURRENCIES = _contract(
    "currencies", "Currencies", ("CurrencyCode",),
    {
        "CurrencyCode": c.currency(description="ISO 4217 currency code."),
        "Name": c.text(description="Currency name."),
        "ReferenceCurrencyForTriangulation": c.text(
            isin=("Yes", "No"), description="Yes for the reference currency used to triangulate rates."),
    },
    "Dynamics 365 currencies (shared across legal entities).",
)

EXCHANGE_RATES = _contract(
    "exchange_rates", "ExchangeRates", ("RateTypeName", "FromCurrency", "ToCurrency", "StartDate"),
    {
        "RateTypeName": c.identifier("Exchange rate type (e.g. Default)."),
        "FromCurrency": c.currency(description="Currency the rate converts from."),
        "ToCurrency": c.currency(description="Currency the rate converts to."),
        "StartDate": c.date(required=True, description="First day the rate applies."),
        "EndDate": c.date(description="Last day the rate applies (2154-12-31: open-ended)."),
        "Rate": c.number(required=True, min_value=0,
                         description="Units of ToCurrency per ConversionFactor units of FromCurrency."),
        "ConversionFactor": c.text(description="Units of FromCurrency the rate is quoted per (e.g. Hundred)."),
    },
    "Dynamics 365 exchange rates per rate type, currency pair and start date.",
)

CUSTOMERS = _contract(
    "customers", "CustomersV3", (COMPANY, "CustomerAccount"),
    {
        "CustomerAccount": c.identifier("Customer account number, unique within its legal entity."),
        "OrganizationName": c.text(required=True, description="Customer (organization) name."),
        "CustomerGroupId": c.text(required=True, description="Customer group."),
        "SalesCurrencyCode": c.currency(required=False, description="Customer's default sales currency."),
        "InvoiceAccount": c.text(description="Account invoiced for this customer's sales."),
        "PaymentTerms": c.text(description="Terms of payment (e.g. Net30)."),
        "PsCrmAccountId": c.text(description="The firm's extension field: the CRM account id."),
    },
    "Dynamics 365 customers (CustomersV3) of every legal entity, keyed to CRM accounts by PsCrmAccountId.",
)

PROJECT_CONTRACTS = _contract(
    "project_contracts", "ProjectContracts", (COMPANY, "ProjectContractID"),
    {
        "ProjectContractID": c.identifier("Project contract id, unique within its legal entity."),
        "Name": c.text(description="Project contract name."),
        "SalesCurrency": c.currency(required=False, description="Contract's sales currency."),
        "ContractDate": c.timestamp(description="When the contract was made (UTC)."),
    },
    "Dynamics 365 project contracts: the funding agreement projects invoice under.",
)

PROJECTS = _contract(
    "projects", "Projects", (COMPANY, "ProjectID"),
    {
        "ProjectID": c.identifier("Project id, unique within its legal entity."),
        "ProjectName": c.text(required=True, description="Project name."),
        "CustomerAccount": c.text(required=True, description="Account of the customer the project is for."),
        "ProjectContractID": c.text(description="Project contract the project invoices under."),
        "ProjectType": c.text(description="Project type (e.g. TimeMaterial)."),
        "ProjectStage": c.text(description="Project stage (e.g. InProcess, Finished)."),
        "ProjectedStartDate": c.date(description="Projected start date."),
        "ProjectedEndDate": c.date(description="Projected end date."),
        "PsCrmOpportunityId": c.text(description="The firm's extension field: the CRM opportunity id."),
    },
    "Dynamics 365 projects of every legal entity, keyed to CRM opportunities by PsCrmOpportunityId.",
)

FREE_TEXT_INVOICES = _contract(
    "free_text_invoices", "FreeTextInvoiceHeaders", (COMPANY, "InvoiceIdentifier"),
    {
        "InvoiceIdentifier": c.identifier("Record id of the free-text invoice: its lines' ParentRecId."),
        "InvoiceId": c.text(description="Invoice number F&O gives when posting: the journal's InvoiceNumber."),
        "CustomerAccount": c.text(required=True, description="Account of the customer invoiced."),
        "CurrencyCode": c.currency(required=False, description="Invoice currency."),
        "InvoiceDate": c.date(description="Invoice date."),
        "DueDate": c.date(description="Payment due date."),
        "IsPosted": c.text(isin=("Yes", "No"), description="Yes once posted (it then has an InvoiceId)."),
        "ExternalInvoiceId": c.text(description="The firm's invoice id (psp:inv:...) the billing write-back sets."),
    },
    "Dynamics 365 free-text invoices, posted or not: the firm's own invoice id (ExternalInvoiceId) "
    "for the posted invoice of the same InvoiceId.",
)

FREE_TEXT_INVOICE_LINES = _contract(
    "free_text_invoice_lines", "FreeTextInvoiceLines", (COMPANY, "ParentRecId", "LineNumber"),
    {
        "ParentRecId": c.identifier("InvoiceIdentifier of the free-text invoice the line belongs to."),
        "LineNumber": c.number(required=True, description="Line number (the posted journal line's LineNumber)."),
        "Description": c.text(description="Line description."),
        "InvoiceText": c.text(description="The firm's line key (psp:...) the billing write-back sets."),
        "ProjectId": c.text(description="Project the line bills."),
        "TransactionCurrencyAmount": c.number(description="Line amount in the invoice currency."),
    },
    "Dynamics 365 free-text invoice lines: the firm's line key (InvoiceText) for the posted journal line.",
)

INVOICES = _contract(
    "invoices", "SalesInvoiceHeadersV2", (COMPANY, "InvoiceNumber"),
    {
        "InvoiceNumber": c.identifier("Posted invoice number, unique within its legal entity."),
        "InvoiceCustomerAccountNumber": c.text(required=True, description="Account of the customer invoiced."),
        "CurrencyCode": c.currency(description="Invoice currency."),
        "InvoiceDate": c.date(required=True, description="Invoice (posting) date."),
        "TotalInvoiceAmount": c.number(required=True, description="Invoice total in the invoice currency."),
        "TotalTaxAmount": c.number(description="Sales tax on the invoice, in the invoice currency."),
    },
    "Dynamics 365 posted customer invoices (the customer invoice journal), free-text ones included.",
)

INVOICE_LINES = _contract(
    "invoice_lines", "SalesInvoiceLines", (COMPANY, "InvoiceNumber", "LineNumber"),
    {
        "InvoiceNumber": c.identifier("Posted invoice number the line belongs to."),
        "LineNumber": c.number(required=True, description="Line number on the invoice (part of the key)."),
        "ProductDescription": c.text(description="Line description."),
        "ProjectId": c.text(description="Project the line bills."),
        "InvoicedQuantity": c.number(description="Quantity invoiced."),
        "SalesPrice": c.number(description="Price per unit, in the invoice currency."),
        "LineAmount": c.number(required=True, description="Line amount in the invoice currency."),
        "CurrencyCode": c.currency(required=False, description="Invoice currency."),
        "InvoiceDate": c.date(description="Invoice date."),
    },
    "Dynamics 365 posted customer invoice lines.",
)

ALL = (LEGAL_ENTITIES, LEDGERS, CURRENCIES, EXCHANGE_RATES, CUSTOMERS, PROJECT_CONTRACTS, PROJECTS, FREE_TEXT_INVOICES,
       FREE_TEXT_INVOICE_LINES, INVOICES, INVOICE_LINES)
