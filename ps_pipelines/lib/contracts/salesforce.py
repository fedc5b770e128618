"""Data contracts for Salesforce (CRM) objects, read through SOQL ``query``/``queryAll``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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
# "System Fields" (Object Reference): the user who last updated the record. Set by Salesforce
# on every change a user (or an API client, as its user) makes.
LAST_MODIFIED_BY = "LastModifiedById"
_ID15 = 15


def last_modified_by(record: Mapping[str, Any], user_id: str) -> bool:
    """Whether ``user_id`` made the record's last change.

    Ids compare on their case-sensitive 15-character form: an 18-character id is that plus a
    case-safe checksum, and the identity URL may carry either form.
    """
    changed_by = record.get(LAST_MODIFIED_BY)
    return bool(changed_by and user_id) and str(changed_by)[:_ID15] == user_id[:_ID15]


def sobject_contract(entity: str, sobject: str, fields: tuple[str, ...], cols: dict, description: str, *,
                     platform: str = "salesforce", source_filter: str | None = None) -> EntityContract:
    """A contract over one SObject read by SOQL: its Id, the given fields and the system audit
    fields, incremental on SystemModstamp. Any app on the Salesforce platform (e.g. Certinia)
    builds its contracts here under its own ``platform`` name."""
    audit = {
        "isdeleted": c.flag(description="True when the record is in the Recycle Bin (queryAll returns deleted ones)."),
        "createddate": c.timestamp(description="When the record was created (UTC)."),
        "systemmodstamp": c.timestamp(
            required=True, description="When the record was last changed by a user or by an automated process (UTC)."),
    }
    record_id = c.identifier("Salesforce record Id (18-character, case-safe).")
    return EntityContract(
        platform=platform,
        entity=entity,
        id_columns=("id",),
        change_column="systemmodstamp",
        schema=c.schema(f"{platform}.{entity}", {"id": record_id, **cols, **audit}),
        description=description,
        source_object=sobject,
        source_fields=("Id", *fields, *_AUDIT),
        source_filter=source_filter,
    )


ACCOUNTS = sobject_contract(
    "accounts",
    "Account",
    ("Name", "Type", "Industry", "BillingCountry", "CurrencyIsoCode", "ERP_Customer_Id__c",
     "Legal_Entity__c", "OwnerId", "LastModifiedDate"),
    {
        "name": c.text(required=True, description="Account name."),
        "type": c.text(description="Account type picklist (e.g. Customer, Prospect, Partner)."),
        "industry": c.text(description="Industry picklist of the account."),
        "billingcountry": c.text(description="Country of the billing address."),
        "currencyisocode": c.currency(description="ISO 4217 code of the account's currency (multi-currency orgs)."),
        "erp_customer_id__c": c.text(
            description="Custom field: the NetSuite customer id this account was activated as."),
        "legal_entity__c": c.text(
            description="Custom field: the firm's legal entity (NetSuite subsidiary) that contracts with the account."),
        "ownerid": c.text(description="Id of the user who owns the account."),
        "lastmodifieddate": c.timestamp(
            description="When a user last changed the record (UTC); automated changes move only SystemModstamp."),
    },
    "Salesforce Accounts: the CRM customer master.",
)

CONTACTS = sobject_contract(
    "contacts",
    "Contact",
    ("AccountId", "FirstName", "LastName", "Email", "Title"),
    {
        "accountid": c.text(description="Id of the account the contact works at."),
        "firstname": c.text(description="First name."),
        "lastname": c.text(required=True, description="Last name."),
        "email": c.text(regex=c.EMAIL, description="Email address."),
        "title": c.text(description="Job title."),
    },
    "Salesforce Contacts: people at customer accounts.",
)

OPPORTUNITIES = sobject_contract(
    "opportunities",
    "Opportunity",
    ("AccountId", "Name", "StageName", "Amount", "CurrencyIsoCode", "CloseDate", "IsWon", "IsClosed",
     "Probability", "Type", "ContractId", "Billing_Model__c", "Legal_Entity__c", "Tax_Code__c",
     "ERP_Project_Id__c", "Activation_Status__c"),
    {
        "accountid": c.text(required=True, description="Id of the account the deal is with."),
        "name": c.text(required=True, description="Opportunity name."),
        "stagename": c.text(
            required=True, isin=OPPORTUNITY_STAGES, description="Sales stage picklist; setting it also sets IsClosed, "
            "IsWon and the default Probability."),
        "amount": c.number(min_value=0, description="Estimated total deal value, in the opportunity's currency."),
        "currencyisocode": c.currency(description="ISO 4217 code of the opportunity's currency."),
        "closedate": c.date(description="Expected (or actual, once closed) close date."),
        "iswon": c.flag(description="True when the stage is a won stage (set by Salesforce from StageName)."),
        "isclosed": c.flag(
            description="True when the stage is a closed stage, won or lost (set by Salesforce from StageName)."),
        "probability": c.number(min_value=0, max_value=100, description="Likelihood of closing, in percent (0-100)."),
        "type": c.text(description="Opportunity type picklist (e.g. New Business)."),
        "contractid": c.text(description="Id of the contract the opportunity was converted into."),
        "billing_model__c": c.text(
            isin=BILLING_MODELS, description="Custom field: how the work is billed (Time and Materials, Fixed Fee or "
            "Milestone)."),
        "legal_entity__c": c.text(
            description="Custom field: the firm's legal entity (NetSuite subsidiary) that delivers and invoices."),
        "tax_code__c": c.text(description="Custom field: the tax code the ERP applies to the invoices."),
        "erp_project_id__c": c.text(
            description="Custom field: the NetSuite project (job) id the won deal was activated as."),
        "activation_status__c": c.text(
            description="Custom field: where project activation of the won deal stands, written back by the pipeline."),
    },
    "Salesforce Opportunities through the stage funnel; won deals start project activation.",
)

CONTRACTS = sobject_contract(
    "contracts",
    "Contract",
    ("AccountId", "ContractNumber", "Status", "StartDate", "EndDate", "ContractTerm", "CurrencyIsoCode",
     "Billing_Model__c", "Opportunity__c", "Legal_Entity__c", "Payment_Terms__c", "Tax_Code__c",
     "Contract_Value__c"),
    {
        "accountid": c.text(required=True, description="Id of the account the contract is with."),
        "contractnumber": c.text(description="Auto-numbered contract number."),
        "status": c.text(
            required=True, isin=CONTRACT_STATUSES, description="Contract status picklist (Draft, In Approval Process, "
            "Activated, Expired, Terminated)."),
        "startdate": c.date(description="First day the contract is in effect."),
        "enddate": c.date(description="Last day the contract is in effect (from StartDate and ContractTerm)."),
        "contractterm": c.number(min_value=0, description="Length of the contract, in months."),
        "currencyisocode": c.currency(description="ISO 4217 code of the contract's currency."),
        "billing_model__c": c.text(
            isin=BILLING_MODELS, description="Custom field: how the work is billed (Time and Materials, Fixed Fee or "
            "Milestone)."),
        "opportunity__c": c.text(description="Custom field: Id of the opportunity the contract closes."),
        "legal_entity__c": c.text(
            description="Custom field: the firm's legal entity (NetSuite subsidiary) party to the contract."),
        "payment_terms__c": c.text(description="Custom field: payment terms of the invoices (e.g. Net 30)."),
        "tax_code__c": c.text(description="Custom field: the tax code the ERP applies to the invoices."),
        "contract_value__c": c.number(
            min_value=0, description="Custom field: total contracted value, in the contract's currency."),
    },
    "Salesforce Contracts: billing model, currency, legal entity and terms of a deal.",
)

ALL = (ACCOUNTS, CONTACTS, OPPORTUNITIES, CONTRACTS)
