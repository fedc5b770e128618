"""Dynamics 365 Finance and Operations data entities as Microsoft documents them.

Sources (cited by tag below):

* [ODATA] "Open Data Protocol (OData)", learn.microsoft.com/en-us/dynamics365/fin-ops-core/dev-itpro/data-entities/odata
  (service root ``/data``; query options ``$filter $count $orderby $skip $top $expand $select``;
  server-driven paging "with a maximum page size of 10,000"; ``cross-company=true``; all key
  fields must be given to address an entity; change sets are atomic; enums as
  ``Microsoft.Dynamics.DataEntities.NoYes'Yes'``, with ``eq``/``ne`` only).
* [CDM] The Common Data Model copies of the entities' metadata,
  learn.microsoft.com/en-us/common-data-model/schema/core/operationscommon/entities/... (one
  page per AOT entity, named in each ``EntitySet.source``).
* [META] Entity keys, property names and Edm types as a real environment's ``/data/$metadata``
  declares them, read from the SAP Cloud SDK's generated client of that document (service
  ``d365_metadata``: ``FreeTextInvoiceHeaders``, ``FreeTextInvoiceLines``, ``Projects``,
  ``ProjectContracts``, ``LegalEntities`` classes, each with ``static _keys``).
* [CUST] "Customers V3 entity", learn.microsoft.com/en-us/dynamics365/fin-ops-core/dev-itpro/
  data-entities/entity-customers-v3-customerv3 (public collection ``CustomersV3``, key
  ``CUSTOMERACCOUNT``, ``CUSTOMERGROUPID`` required).
* [SAMPLE] Public clients reading ``SalesInvoiceHeadersV2`` and ``SalesInvoiceLines`` by the
  fields below, and rendering date-only fields as ``YYYY-MM-DDT12:00:00Z``
  (``$filter=InvoiceDate eq 2024-02-22T12:00:00Z``).

Which entities, and why:

* Customers ``CustomersV3`` (the documented create/update entity for customers [CUST]),
  ``LegalEntities``, ``Currencies``, ``ExchangeRates``, ``Projects``, ``ProjectContracts``.
* Invoices *in*: ``FreeTextInvoiceHeaders`` + ``FreeTextInvoiceLines`` (AOT
  ``FreeTextInvoiceHeaderEntity``/``FreeTextInvoiceLineEntity``, "Customer free text invoice"
  [CDM]). A free-text line carries ``ProjectId``, ``Description``, ``Quantity``, ``UnitPrice`` and
  ``TransactionCurrencyAmount`` [META], so an invoice for a project's hours, expenses or fees is
  one header plus its lines in one change set. The project-accounting route (hour/expense/fee
  journals, then an invoice proposal posted in the client) needs a posting step that no public
  OData entity performs, so it cannot be driven from an integration alone [UNVERIFIED: no entity
  found that posts a project invoice proposal].
* Idempotency: headers are keyed by the server-assigned ``InvoiceIdentifier`` (the record id,
  ``Edm.Int64`` [META]), so a client cannot choose the key; the header's free-text
  ``ExternalInvoiceId`` and ``CustomerReference`` [META] are the fields an integration can set and
  look up with ``$filter`` before it creates again. F&O enforces no uniqueness on either.
* Posted invoices: a posted free-text invoice keeps its header with ``IsPosted = Yes`` and its
  ``InvoiceId`` [META]; the posted journal is read through ``SalesInvoiceHeadersV2`` and
  ``SalesInvoiceLines`` ([CDM] SalesInvoiceHeaderV2Entity, [SAMPLE]). Whether a posted free-text
  invoice also appears in ``SalesInvoiceHeadersV2`` in a real environment is [UNVERIFIED]; here it
  does, since both read the customer invoice journal.

Modified timestamps: none of these entities exposes a modified date-time in its public metadata
(checked in [META] for FreeTextInvoiceHeaders/Lines, Projects, ProjectContracts, LegalEntities;
[UNVERIFIED] for CustomersV3, Currencies, ExchangeRates and the SalesInvoice entities, whose
attribute lists in [CDM] show none either). An entity only exposes ``ModifiedDateTime`` when its
developer maps the table's system field, so an integration reads these as full snapshots.

Tenant customizations (``CUSTOM_FIELDS``): the firm's extension fields linking ERP records to the
CRM, declared as such (F&O entities carry no CRM id by default).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

# Edm kinds (the JSON shape follows the kind; see ``ps_sandbox.platforms.d365``).
STRING, INT64, INT32, DECIMAL, DATE, DATETIME, ENUM, BOOL = (
    "Edm.String", "Edm.Int64", "Edm.Int32", "Edm.Decimal", "date", "Edm.DateTimeOffset", "enum", "Edm.Boolean")
COMPANY = "dataAreaId"


@dataclass(frozen=True)
class EntitySet:
    name: str
    keys: tuple[str, ...]
    fields: Mapping[str, str]  # property -> kind
    source: str  # the [CDM]/[META] entity it was read from
    aot: str  # the entity's AOT name, which F&O's write errors name
    writable: bool = False
    # Properties the server assigns on create (a client may not set them).
    generated: frozenset[str] = frozenset()
    # Required on create (a missing one is refused).
    required: frozenset[str] = frozenset()
    custom: frozenset[str] = field(default_factory=frozenset)
    # One-to-many navigation properties: name -> (target set, {target property: source property}).
    navigation: Mapping[str, tuple[str, Mapping[str, str]]] = field(default_factory=dict)

    @property
    def per_company(self) -> bool:
        """Company-specific entities carry ``dataAreaId`` in their key; shared ones do not [META]."""
        return COMPANY in self.keys


def _fields(**kinds: tuple[str, ...]) -> dict[str, str]:
    names = {"string": STRING, "int64": INT64, "int32": INT32, "decimal": DECIMAL, "date": DATE,
             "datetime": DATETIME, "enum": ENUM, "boolean": BOOL}
    return {name: names[kind] for kind, group in kinds.items() for name in group}


# The firm's extension fields (tenant customizations, not Microsoft's).
CUSTOM_FIELDS: dict[str, dict[str, str]] = {
    "CustomersV3": {"PsCrmAccountId": STRING},
    "Projects": {"PsCrmOpportunityId": STRING},
}

_SETS = (
    EntitySet("LegalEntities", ("LegalEntityId",), _fields(
        string=("LegalEntityId", "Name", "CompanyName", "AddressCountryRegionIsoCode", "NameAlias", "VatNum"),
    ), "LegalEntities [META]", "OMLegalEntity"),
    # A legal entity's ledger and its accounting (functional) currency: every legal entity has
    # one ledger with one accounting currency (learn.microsoft.com/en-us/previous-versions/
    # dynamics/ax-2012/reference/gg856720(v=ax.60), Ledger::accountingCurrency). Entity set name
    # and property names of LedgerEntity [UNVERIFIED].
    EntitySet("Ledgers", ("LegalEntityId",), _fields(
        string=("LegalEntityId", "Name", "Description", "AccountingCurrency", "ReportingCurrency",
                "DefaultExchangeRateType"),
    ), "LedgerEntity [UNVERIFIED]", "LedgerEntity"),
    # Currency codes and names ([CDM] CurrencyEntity); ReferenceCurrencyForTriangulation is the
    # NoYes enum [ODATA] uses in its enum example. Symbol [UNVERIFIED].
    EntitySet("Currencies", ("CurrencyCode",), _fields(
        string=("CurrencyCode", "Name", "Symbol"), enum=("ReferenceCurrencyForTriangulation",),
    ), "CurrencyEntity [CDM]", "CurrencyEntity"),
    # ExchangeRateEntity [CDM]: a rate per (rate type, from, to, start date); the rate is quoted
    # per ConversionFactor units (enum ExchangeRateDisplayFactor) [UNVERIFIED: enum member names].
    EntitySet("ExchangeRates", ("RateTypeName", "FromCurrency", "ToCurrency", "StartDate"), _fields(
        string=("RateTypeName", "RateTypeDescription", "FromCurrency", "ToCurrency"), date=("StartDate", "EndDate"),
        decimal=("Rate",), enum=("ConversionFactor",),
    ), "ExchangeRateEntity [CDM]", "ExchangeRateEntity"),
    EntitySet("CustomersV3", (COMPANY, "CustomerAccount"), _fields(
        string=(COMPANY, "CustomerAccount", "OrganizationName", "NameAlias", "KnownAs", "CustomerGroupId",
                "SalesCurrencyCode", "PaymentTerms", "AddressCountryRegionId", "PrimaryContactEmail",
                "InvoiceAccount"),
        enum=("PartyType",), decimal=("CreditLimit",),
    ), "CustCustomerV3Entity [CUST][CDM]", "CustCustomerV3Entity", writable=True,
        required=frozenset({"CustomerGroupId"})),
    EntitySet("ProjectContracts", (COMPANY, "ProjectContractID"), _fields(
        string=(COMPANY, "ProjectContractID", "Name", "SalesCurrency", "InvoicingName"),
        datetime=("ContractDate",), enum=("InvoiceFrequency",),
    ), "ProjectContracts [META]", "ProjContractEntity", writable=True),
    EntitySet("Projects", (COMPANY, "ProjectID"), _fields(
        string=(COMPANY, "ProjectID", "ProjectName", "CustomerAccount", "ProjectContractID", "ProjectGroup",
                "Description"),
        enum=("ProjectType", "ProjectStage", "Status"),
        date=("ProjectedStartDate", "ProjectedEndDate", "ActualStartDate", "ActualEndDate"),
    ), "Projects [META]", "ProjectEntity", writable=True),
    EntitySet("FreeTextInvoiceHeaders", (COMPANY, "InvoiceIdentifier"), _fields(
        string=(COMPANY, "CustomerAccount", "InvoiceAccount", "CurrencyCode", "CustomerReference",
                "CustomerRequisition", "ExternalInvoiceId", "FreeTextNumber", "InvoiceId", "InvoiceName",
                "TermsOfPayment", "DefaultDimensionDisplayValue"),
        int64=("InvoiceIdentifier",), date=("InvoiceDate", "DueDate", "DocumentDate"), enum=("IsPosted",),
    ), "FreeTextInvoiceHeaderEntity [CDM][META]", "FreeTextInvoiceHeaderEntity", writable=True,
        generated=frozenset({"InvoiceIdentifier", "IsPosted", "InvoiceId", "FreeTextNumber"}),
        required=frozenset({"CustomerAccount"}),
        # [META]: the header's one-to-many navigation to its lines.
        navigation={"CustFreeTextInvoiceHeader": ("FreeTextInvoiceLines",
                                                  {COMPANY: COMPANY, "ParentRecId": "InvoiceIdentifier"})}),
    EntitySet("FreeTextInvoiceLines", (COMPANY, "LineNumber", "ParentRecId"), _fields(
        string=(COMPANY, "Description", "ProjectId", "CurrencyCode", "MainAccountDisplayValue", "SalesUnit",
                "ExternalInvoiceId", "InvoiceText"),
        int64=("ParentRecId",), decimal=("LineNumber", "Quantity", "UnitPrice", "TransactionCurrencyAmount",
                                          "SalesTaxAmount"),
    ), "FreeTextInvoiceLineEntity [CDM][META]", "FreeTextInvoiceLineEntity", writable=True,
        generated=frozenset({"SalesTaxAmount"}),
        required=frozenset({"ParentRecId"})),
    EntitySet("SalesInvoiceHeadersV2", (COMPANY, "InvoiceNumber"), _fields(
        string=(COMPANY, "InvoiceNumber", "InvoiceCustomerAccountNumber", "CurrencyCode", "CustomersOrderReference",
                "PaymentTermsName", "SalesOrderNumber"),
        date=("InvoiceDate",), decimal=("TotalInvoiceAmount", "TotalTaxAmount", "TotalChargeAmount"),
    ), "SalesInvoiceHeaderV2Entity [CDM][SAMPLE] (key [UNVERIFIED])", "SalesInvoiceHeaderV2Entity"),
    EntitySet("SalesInvoiceLines", (COMPANY, "InvoiceNumber", "LineNumber"), _fields(
        string=(COMPANY, "InvoiceNumber", "ProductNumber", "ProductDescription", "SalesUnitSymbol", "CurrencyCode",
                "ProjectId"),
        date=("InvoiceDate",), decimal=("LineNumber", "InvoicedQuantity", "SalesPrice", "LineAmount"),
    ), "SalesInvoiceLines [SAMPLE] (key, LineNumber and ProjectId [UNVERIFIED])", "SalesInvoiceLineEntity"),
)

ENTITY_SETS: dict[str, EntitySet] = {
    s.name: EntitySet(s.name, s.keys, {**s.fields, **CUSTOM_FIELDS.get(s.name, {})}, s.source, s.aot, s.writable,
                      s.generated, s.required, frozenset(CUSTOM_FIELDS.get(s.name, {})), s.navigation)
    for s in _SETS
}
