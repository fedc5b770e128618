"""The Salesforce org the sandbox emulates: its sObjects and their fields.

Standard objects and fields come from Salesforce's "Object Reference for the Salesforce
Platform" (developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/):
``sforce_api_objects_account.htm``, ``..._contact.htm``, ``..._opportunity.htm``,
``..._contract.htm``, and "System Fields" (``system_fields.htm``: Id, IsDeleted, CreatedDate,
CreatedById, LastModifiedDate, LastModifiedById, SystemModstamp on every object). Field types
are the ``type`` values an sObject Describe answers (REST API Developer Guide, "sObject
Describe", ``resources_sobject_describe.htm``; the list of types is "Field Types",
``field_types.htm``). The catalogue holds a realistic subset of each object's standard fields,
including many the pipeline never reads, as a real org has them.

``CurrencyIsoCode`` exists on these objects only in orgs with multiple currencies enabled
(Object Reference, "CurrencyIsoCode"); the firm's org has it turned on.

The ``__c`` fields are the firm's own customizations of its org. A real org defines each of
them in Setup (Object Manager > object > Fields & Relationships); the sandbox's org has them
declared here, with the types an admin would have chosen. Nothing in this module may come from
the pipeline's contracts: they are what the emulator checks the contracts against.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# describe ``type`` -> SOAP type (describe's ``soapType``), per "Field Types".
SOAP_TYPES = {
    "id": "tns:ID", "reference": "tns:ID", "string": "xsd:string", "textarea": "xsd:string",
    "picklist": "xsd:string", "multipicklist": "xsd:string", "email": "xsd:string", "phone": "xsd:string",
    "url": "xsd:string", "currency": "xsd:double", "double": "xsd:double", "percent": "xsd:double",
    "int": "xsd:int", "boolean": "xsd:boolean", "date": "xsd:date", "datetime": "xsd:dateTime",
}

# The user the client-credentials flow runs as (the connected app's "Run As" user) and the
# org's id: the token endpoint names both in its ``id`` URL.
ORG_ID = "00D5X0000000001EAA"
RUN_AS_USER_ID = "0055X0000000001AAA"
# The store key holding the last number an object's auto-number field handed out.
AUTO_NUMBER_KEY = "salesforce_auto_number:{}"


@dataclass(frozen=True)
class FieldSpec:
    """One field as an sObject Describe reports it."""

    name: str
    type: str  # describe ``type``: id, string, picklist, reference, currency, date, datetime, ...
    label: str
    length: int = 0
    nillable: bool = True
    createable: bool = True
    updateable: bool = True
    defaulted_on_create: bool = False
    calculated: bool = False  # formula / roll-up / auto-number / compound: never writable
    external_id: bool = False
    unique: bool = False
    custom: bool = False
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    picklist: tuple[str, ...] = ()

    @property
    def required_on_create(self) -> bool:
        """Describe's rule for a required field: not nillable, createable, not defaulted."""
        return not self.nillable and self.createable and not self.defaulted_on_create


@dataclass(frozen=True)
class SObjectSpec:
    name: str
    label: str
    label_plural: str
    key_prefix: str
    fields: tuple[FieldSpec, ...]
    custom: bool = False
    by_lower: dict[str, FieldSpec] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_lower", {f.name.lower(): f for f in self.fields})

    def field(self, name: str) -> FieldSpec | None:
        return self.by_lower.get(name.lower())


# -- field builders ---------------------------------------------------------------------------------


def _text(name: str, label: str, length: int = 255, **kw: object) -> FieldSpec:
    return FieldSpec(name, "string", label, length=length, **kw)  # type: ignore[arg-type]


def _area(name: str, label: str, length: int = 32000) -> FieldSpec:
    return FieldSpec(name, "textarea", label, length=length)


def _pick(name: str, label: str, values: tuple[str, ...] = (), **kw: object) -> FieldSpec:
    return FieldSpec(name, "picklist", label, length=255, picklist=values, **kw)  # type: ignore[arg-type]


def _ref(name: str, label: str, target: str, relationship: str, **kw: object) -> FieldSpec:
    return FieldSpec(name, "reference", label, length=18, reference_to=(target,),  # type: ignore[arg-type]
                     relationship_name=relationship, **kw)


def _read_only(spec: FieldSpec, *, calculated: bool = False, nillable: bool | None = None) -> FieldSpec:
    return FieldSpec(**{**spec.__dict__, "createable": False, "updateable": False, "calculated": calculated,
                        "nillable": spec.nillable if nillable is None else nillable})


def _custom(spec: FieldSpec) -> FieldSpec:
    return FieldSpec(**{**spec.__dict__, "custom": True})


def _system_fields() -> tuple[FieldSpec, ...]:
    """Object Reference, "System Fields": on every object, none writable through the API."""
    return (
        FieldSpec("Id", "id", "Record ID", length=18, nillable=False, createable=False, updateable=False,
                  defaulted_on_create=True),
        FieldSpec("IsDeleted", "boolean", "Deleted", nillable=False, createable=False, updateable=False,
                  defaulted_on_create=True),
        FieldSpec("CreatedDate", "datetime", "Created Date", nillable=False, createable=False, updateable=False,
                  defaulted_on_create=True),
        _ref("CreatedById", "Created By ID", "User", "CreatedBy", nillable=False, createable=False,
             updateable=False, defaulted_on_create=True),
        FieldSpec("LastModifiedDate", "datetime", "Last Modified Date", nillable=False, createable=False,
                  updateable=False, defaulted_on_create=True),
        _ref("LastModifiedById", "Last Modified By ID", "User", "LastModifiedBy", nillable=False,
             createable=False, updateable=False, defaulted_on_create=True),
        FieldSpec("SystemModstamp", "datetime", "System Modstamp", nillable=False, createable=False,
                  updateable=False, defaulted_on_create=True),
    )


def _owner() -> FieldSpec:
    # OwnerId defaults to the user who creates the record (here: the integration's run-as user).
    return _ref("OwnerId", "Owner ID", "User", "Owner", nillable=False, defaulted_on_create=True)


def _currency_iso_code() -> FieldSpec:
    # Multi-currency orgs only; defaults to the creating user's currency (the corporate one here).
    return _pick("CurrencyIsoCode", "Currency ISO Code", ("USD", "CAD", "GBP", "EUR", "AUD"),
                 nillable=False, defaulted_on_create=True)


# -- the org's picklists (standard values, as shipped, and the firm's own) --------------------------

# Opportunity.StageName's default values in a new org (Object Reference, Opportunity: StageName).
OPPORTUNITY_STAGES = ("Prospecting", "Qualification", "Needs Analysis", "Value Proposition",
                      "Id. Decision Makers", "Perception Analysis", "Proposal/Price Quote",
                      "Negotiation/Review", "Closed Won", "Closed Lost")
# Contract.Status: the standard values plus the firm's two extra ones (set up in Setup).
CONTRACT_STATUSES = ("Draft", "In Approval Process", "Activated", "Expired", "Terminated")
BILLING_MODELS = ("Time and Materials", "Fixed Fee", "Milestone")
# Account.Industry: the standard values plus the firm's "Financial Services".
INDUSTRIES = ("Agriculture", "Apparel", "Banking", "Biotechnology", "Chemicals", "Communications", "Construction",
              "Consulting", "Education", "Electronics", "Energy", "Engineering", "Entertainment", "Environmental",
              "Finance", "Financial Services", "Food & Beverage", "Government", "Healthcare", "Hospitality",
              "Insurance", "Machinery", "Manufacturing", "Media", "Not For Profit", "Other", "Recreation", "Retail",
              "Shipping", "Technology", "Telecommunications", "Transportation", "Utilities")


# -- the objects --------------------------------------------------------------------------------------

ACCOUNT = SObjectSpec("Account", "Account", "Accounts", "001", (
    *_system_fields(),
    _text("Name", "Account Name", nillable=False),
    _text("AccountNumber", "Account Number", 40),
    # Picklist values are the org's to edit; these are the firm's (standard ones renamed).
    _pick("Type", "Account Type", ("Prospect", "Customer", "Channel Partner / Reseller", "Installation Partner",
                                   "Technology Partner", "Other")),
    _pick("Industry", "Industry", INDUSTRIES),
    _ref("ParentId", "Parent Account ID", "Account", "Parent"),
    _area("BillingStreet", "Billing Street", 255),
    _text("BillingCity", "Billing City", 40),
    _text("BillingState", "Billing State/Province", 80),
    _text("BillingPostalCode", "Billing Zip/Postal Code", 20),
    _text("BillingCountry", "Billing Country", 80),
    FieldSpec("Phone", "phone", "Account Phone", length=40),
    FieldSpec("Website", "url", "Website", length=255),
    FieldSpec("AnnualRevenue", "currency", "Annual Revenue"),
    FieldSpec("NumberOfEmployees", "int", "Employees"),
    _pick("Rating", "Account Rating", ("Hot", "Warm", "Cold")),
    _area("Description", "Account Description"),
    _owner(),
    _currency_iso_code(),
    _read_only(FieldSpec("LastActivityDate", "date", "Last Activity")),
    # The firm's customizations (a real org defines them in Setup > Object Manager > Account).
    _custom(_text("ERP_Customer_Id__c", "ERP Customer ID", 40, external_id=True, unique=True)),
    _custom(_text("Legal_Entity__c", "Legal Entity", 80)),
))

CONTACT = SObjectSpec("Contact", "Contact", "Contacts", "003", (
    *_system_fields(),
    _ref("AccountId", "Account ID", "Account", "Account"),
    _pick("Salutation", "Salutation", ("Mr.", "Ms.", "Mrs.", "Dr.", "Prof.")),
    _text("FirstName", "First Name", 40),
    _text("LastName", "Last Name", 80, nillable=False),
    # The compound full name Salesforce derives from the name parts.
    _read_only(_text("Name", "Full Name", 121), calculated=True, nillable=False),
    FieldSpec("Email", "email", "Email", length=80),
    FieldSpec("Phone", "phone", "Business Phone", length=40),
    FieldSpec("MobilePhone", "phone", "Mobile Phone", length=40),
    _text("Title", "Title", 128),
    _text("Department", "Department", 80),
    _text("MailingCity", "Mailing City", 40),
    _text("MailingCountry", "Mailing Country", 80),
    _pick("LeadSource", "Lead Source", ("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other")),
    FieldSpec("Birthdate", "date", "Birthdate"),
    FieldSpec("HasOptedOutOfEmail", "boolean", "Email Opt Out", nillable=False, defaulted_on_create=True),
    _owner(),
    _currency_iso_code(),
))

OPPORTUNITY = SObjectSpec("Opportunity", "Opportunity", "Opportunities", "006", (
    *_system_fields(),
    _ref("AccountId", "Account ID", "Account", "Account"),
    _text("Name", "Name", 120, nillable=False),
    _pick("StageName", "Stage", OPPORTUNITY_STAGES, nillable=False),
    FieldSpec("Amount", "currency", "Amount"),
    FieldSpec("CloseDate", "date", "Close Date", nillable=False),
    FieldSpec("Probability", "percent", "Probability (%)", defaulted_on_create=True),
    _read_only(FieldSpec("ExpectedRevenue", "currency", "Expected Amount"), calculated=True),
    _pick("Type", "Opportunity Type", ("Existing Business", "New Business", "Renewal")),
    _pick("LeadSource", "Lead Source", ("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other")),
    _text("NextStep", "Next Step"),
    _area("Description", "Description"),
    _pick("ForecastCategoryName", "Forecast Category", ("Omitted", "Pipeline", "Best Case", "Commit", "Closed"),
          defaulted_on_create=True),
    _read_only(FieldSpec("IsClosed", "boolean", "Closed", nillable=False, defaulted_on_create=True)),
    _read_only(FieldSpec("IsWon", "boolean", "Won", nillable=False, defaulted_on_create=True)),
    _read_only(FieldSpec("FiscalYear", "int", "Fiscal Year")),
    _read_only(FieldSpec("FiscalQuarter", "int", "Fiscal Quarter")),
    _read_only(FieldSpec("HasOpportunityLineItem", "boolean", "Has Line Item", nillable=False,
                         defaulted_on_create=True)),
    _ref("ContractId", "Contract ID", "Contract", "Contract"),
    _ref("Pricebook2Id", "Price Book ID", "Pricebook2", "Pricebook2"),
    _owner(),
    _currency_iso_code(),
    # The firm's customizations (Setup > Object Manager > Opportunity).
    _custom(_pick("Billing_Model__c", "Billing Model", BILLING_MODELS)),
    _custom(_text("Legal_Entity__c", "Legal Entity", 80)),
    _custom(_text("Tax_Code__c", "Tax Code", 40)),
    _custom(_text("ERP_Project_Id__c", "ERP Project ID", 40, external_id=True, unique=True)),
    # Free text: the activation flow writes its progress and any problem it needs a person for.
    _custom(_text("Activation_Status__c", "Activation Status", 255)),
))

CONTRACT = SObjectSpec("Contract", "Contract", "Contracts", "800", (
    *_system_fields(),
    _ref("AccountId", "Account ID", "Account", "Account", nillable=False),
    _read_only(_text("ContractNumber", "Contract Number", 30), calculated=True, nillable=False),  # auto-number
    _pick("Status", "Status", CONTRACT_STATUSES, nillable=False, defaulted_on_create=True),
    _read_only(_pick("StatusCode", "Status Category", ("Draft", "InApproval", "Activated", "Terminated",
                                                       "Expired")), nillable=False),
    FieldSpec("StartDate", "date", "Contract Start Date"),
    # "Calculated end date of the contract": StartDate plus ContractTerm months (Object Reference).
    _read_only(FieldSpec("EndDate", "date", "Contract End Date"), calculated=True),
    FieldSpec("ContractTerm", "int", "Contract Term"),
    _pick("OwnerExpirationNotice", "Owner Expiration Notice", ("15", "30", "45", "60", "90", "120")),
    FieldSpec("CompanySignedDate", "date", "Company Signed Date"),
    FieldSpec("CustomerSignedDate", "date", "Customer Signed Date"),
    _read_only(FieldSpec("ActivatedDate", "datetime", "Activated Date")),
    _area("SpecialTerms", "Special Terms", 4000),
    _area("Description", "Description"),
    _text("BillingCity", "Billing City", 40),
    _text("BillingCountry", "Billing Country", 80),
    _ref("Pricebook2Id", "Price Book ID", "Pricebook2", "Pricebook2"),
    _owner(),
    _currency_iso_code(),
    # The firm's customizations (Setup > Object Manager > Contract).
    _custom(_pick("Billing_Model__c", "Billing Model", BILLING_MODELS)),
    _custom(_ref("Opportunity__c", "Opportunity", "Opportunity", "Opportunity__r")),
    _custom(_text("Legal_Entity__c", "Legal Entity", 80)),
    _custom(_pick("Payment_Terms__c", "Payment Terms", ("Net 15", "Net 30", "Net 45", "Net 60"))),
    _custom(_text("Tax_Code__c", "Tax Code", 40)),
    _custom(FieldSpec("Contract_Value__c", "currency", "Contract Value")),
))

# The sObjects the org serves through the REST API, by their API name.
SOBJECTS: dict[str, SObjectSpec] = {spec.name: spec for spec in (ACCOUNT, CONTACT, OPPORTUNITY, CONTRACT)}


def sobject(name: str) -> SObjectSpec | None:
    """The object called ``name`` (API names are case-insensitive), if the org has it."""
    return next((spec for key, spec in SOBJECTS.items() if key.lower() == name.lower()), None)
