"""Data contracts for Salesforce (CRM) objects, read through SOQL ``query``/``queryAll``."""

from __future__ import annotations

from ps_pipelines.lib.contracts import columns as c
from ps_pipelines.lib.contracts.base import EntityContract

OPPORTUNITY_STAGES = (
    "Prospecting",
    "Qualification",
    "Needs Analysis",
    "Proposal/Price Quote",
    "Negotiation/Review",
    "Closed Won",
    "Closed Lost",
)
BILLING_MODELS = ("Time and Materials", "Fixed Fee", "Milestone")
CONTRACT_STATUSES = ("Draft", "In Approval Process", "Activated", "Expired", "Terminated")

_AUDIT = ("IsDeleted", "CreatedDate", "SystemModstamp")


def _contract(entity: str, sobject: str, fields: tuple[str, ...], cols: dict, description: str) -> EntityContract:
    audit = {"isdeleted": c.flag(), "createddate": c.timestamp(), "systemmodstamp": c.timestamp(required=True)}
    return EntityContract(
        platform="salesforce",
        entity=entity,
        id_columns=("id",),
        change_column="systemmodstamp",
        schema=c.schema(f"salesforce.{entity}", {"id": c.identifier(), **cols, **audit}),
        description=description,
        source_object=sobject,
        source_fields=("Id", *fields, *_AUDIT),
    )


ACCOUNTS = _contract(
    "accounts",
    "Account",
    ("Name", "Type", "Industry", "BillingCountry", "CurrencyIsoCode", "ERP_Customer_Id__c",
     "Legal_Entity__c", "OwnerId", "LastModifiedDate"),
    {
        "name": c.text(required=True),
        "type": c.text(),
        "industry": c.text(),
        "billingcountry": c.text(),
        "currencyisocode": c.currency(),
        "erp_customer_id__c": c.text(),
        "legal_entity__c": c.text(),
        "ownerid": c.text(),
        "lastmodifieddate": c.timestamp(),
    },
    "Salesforce Accounts: the CRM customer master.",
)

CONTACTS = _contract(
    "contacts",
    "Contact",
    ("AccountId", "FirstName", "LastName", "Email", "Title"),
    {
        "accountid": c.text(),
        "firstname": c.text(),
        "lastname": c.text(required=True),
        "email": c.text(regex=c.EMAIL),
        "title": c.text(),
    },
    "Salesforce Contacts: people at customer accounts.",
)

OPPORTUNITIES = _contract(
    "opportunities",
    "Opportunity",
    ("AccountId", "Name", "StageName", "Amount", "CurrencyIsoCode", "CloseDate", "IsWon", "IsClosed",
     "Probability", "Type", "ContractId", "Billing_Model__c", "Legal_Entity__c", "Tax_Code__c",
     "ERP_Project_Id__c", "Activation_Status__c"),
    {
        "accountid": c.text(required=True),
        "name": c.text(required=True),
        "stagename": c.text(required=True, isin=OPPORTUNITY_STAGES),
        "amount": c.number(min_value=0),
        "currencyisocode": c.currency(),
        "closedate": c.date(),
        "iswon": c.flag(),
        "isclosed": c.flag(),
        "probability": c.number(min_value=0, max_value=100),
        "type": c.text(),
        "contractid": c.text(),
        "billing_model__c": c.text(isin=BILLING_MODELS),
        "legal_entity__c": c.text(),
        "tax_code__c": c.text(),
        "erp_project_id__c": c.text(),
        "activation_status__c": c.text(),
    },
    "Salesforce Opportunities through the stage funnel; won deals start project activation.",
)

CONTRACTS = _contract(
    "contracts",
    "Contract",
    ("AccountId", "ContractNumber", "Status", "StartDate", "EndDate", "ContractTerm", "CurrencyIsoCode",
     "Billing_Model__c", "Opportunity__c", "Legal_Entity__c", "Payment_Terms__c", "Tax_Code__c",
     "Contract_Value__c"),
    {
        "accountid": c.text(required=True),
        "contractnumber": c.text(),
        "status": c.text(required=True, isin=CONTRACT_STATUSES),
        "startdate": c.date(),
        "enddate": c.date(),
        "contractterm": c.number(min_value=0),
        "currencyisocode": c.currency(),
        "billing_model__c": c.text(isin=BILLING_MODELS),
        "opportunity__c": c.text(),
        "legal_entity__c": c.text(),
        "payment_terms__c": c.text(),
        "tax_code__c": c.text(),
        "contract_value__c": c.number(min_value=0),
    },
    "Salesforce Contracts: billing model, currency, legal entity and terms of a deal.",
)

ALL = (ACCOUNTS, CONTACTS, OPPORTUNITIES, CONTRACTS)
