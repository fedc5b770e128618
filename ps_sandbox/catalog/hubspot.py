"""HubSpot CRM objects as HubSpot documents them (CRM API v3, associations v4, pipelines).

Sources:

* [OBJECTS] developers.hubspot.com/docs/guides/crm/using-object-apis and the per-object list
  reference (developers.hubspot.com/docs/api-reference/latest/crm/objects/companies/get-companies):
  a record is ``{id, properties, createdAt, updatedAt, archived[, archivedAt]}``, every property
  value a string; ``limit`` (default 10), ``after`` ("The paging cursor token of the last
  successfully read resource will be returned as the paging.next.after JSON property"),
  ``properties``, ``archived`` ("Whether to return only results that have been archived").
* [SEARCH] developers.hubspot.com/docs/api-reference/2026-03/crm/search-the-crm: the default
  properties each object's search returns ("For contacts, a search will return createdate, email,
  firstname, hs_object_id, lastmodifieddate, and lastname"), filter groups and operators.
* [LINE_ITEMS] developers.hubspot.com/docs/api-reference/latest/crm/objects/line-items/guide:
  ``hs_product_id``, ``quantity``, ``price``, and the recurring billing properties
  ``recurringbillingfrequency``, ``hs_recurring_billing_period`` (an ISO 8601 duration, the term)
  and ``hs_recurring_billing_start_date``.
* [PIPELINES] developers.hubspot.com/docs/api-reference/latest/crm/pipelines/guide: every account
  has the default deal pipeline ``default`` whose stages are appointmentscheduled ...
  closedwon, closedlost, each with ``metadata.isClosed`` and ``metadata.probability``.
* [ASSOC] developers.hubspot.com/docs/api-reference/latest/crm/associations/associate-records/guide:
  HUBSPOT_DEFINED association type ids per direction (deal to company 341, primary 5; company to
  deal 342, primary 6; deal to line item 19, line item to deal 20; contact to company 279,
  primary 1; company to contact 280, primary 2).

[TENANT] marks the firm's own custom properties (a real portal carries them as custom
properties): ``ps_external_id`` (a unique-value property, the write-back's ``idProperty``; on a
deal, the ERP project the activation created), ``ps_legal_entity``, ``ps_billing_model`` and
``ps_tax_code`` (the deal's contracting entity, billing model and tax code: what a Salesforce org
keeps in its Legal_Entity__c, Billing_Model__c and Tax_Code__c fields; HubSpot has no contract
object, so a firm selling from HubSpot keeps the terms on the deal) and ``ps_activation_status`` (the write-back sets it
on a won deal: ``Complete`` or ``Needs attention: <rules>``, free text, so a single-line text
property, ``type: string``, ``fieldType: text``; an enumeration only takes its options' values).
Custom properties are defined through the properties API (developers.hubspot.com/docs/
api-reference/latest/crm/properties/guide: ``POST /crm/v3/properties/{objectType}`` with
``name``, ``label``, ``type``, ``fieldType``, ``groupName`` and, for unique values,
``hasUniqueValue``) and written like any other property: ``PATCH /crm/v3/objects/deals/{dealId}``
with ``{"properties": {...}}`` (developers.hubspot.com/docs/api-reference/crm-deals-v3/basic/
patch-crm-v3-objects-0-3-dealId).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

STRING, NUMBER, DATETIME, DATE, BOOL, ENUM = "string", "number", "datetime", "date", "bool", "enumeration"

# Read-only on every object: HubSpot sets them itself [OBJECTS].
READ_ONLY = frozenset({"hs_object_id", "createdate", "hs_lastmodifieddate", "lastmodifieddate"})
EXTERNAL_ID = "ps_external_id"  # [TENANT] unique values: an idProperty for batch upsert


@dataclass(frozen=True)
class HubSpotObject:
    name: str
    type_id: str  # objectTypeId [OBJECTS], e.g. 0-3 for deals
    modified: str  # the property holding the last change time
    defaults: tuple[str, ...]  # returned when a request names no properties [SEARCH]
    properties: dict[str, str] = field(default_factory=dict)  # name -> type
    unique: frozenset[str] = frozenset({"hs_object_id"})  # properties idProperty may name

    def type_of(self, name: str) -> str | None:
        return self.properties.get(name)


def _object(name: str, type_id: str, modified: str, defaults: tuple[str, ...], extra: dict[str, str],
            unique: tuple[str, ...] = ()) -> HubSpotObject:
    base = {"hs_object_id": NUMBER, "createdate": DATETIME, modified: DATETIME, EXTERNAL_ID: STRING}
    return HubSpotObject(name, type_id, modified, defaults, {**base, **extra},
                         frozenset({"hs_object_id", EXTERNAL_ID, *unique}))


OBJECTS: dict[str, HubSpotObject] = {obj.name: obj for obj in (
    _object("companies", "0-2", "hs_lastmodifieddate",
            ("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"),
            {"name": STRING, "domain": STRING, "industry": ENUM, "country": STRING, "city": STRING,
             "phone": STRING, "hubspot_owner_id": ENUM, "numberofemployees": NUMBER, "annualrevenue": NUMBER}),
    _object("contacts", "0-1", "lastmodifieddate",
            ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"),
            {"email": STRING, "firstname": STRING, "lastname": STRING, "jobtitle": STRING, "phone": STRING,
             "country": STRING, "hubspot_owner_id": ENUM, "associatedcompanyid": NUMBER},
            unique=("email",)),  # contacts upsert by email [OBJECTS]
    _object("deals", "0-3", "hs_lastmodifieddate",
            ("amount", "closedate", "createdate", "dealname", "dealstage", "hs_lastmodifieddate", "hs_object_id",
             "pipeline"),
            {"dealname": STRING, "amount": NUMBER, "closedate": DATETIME, "pipeline": ENUM, "dealstage": ENUM,
             "dealtype": ENUM, "deal_currency_code": ENUM, "hubspot_owner_id": ENUM, "description": STRING,
             "hs_is_closed": BOOL, "hs_is_closed_won": BOOL, "hs_deal_stage_probability": NUMBER,
             "ps_activation_status": STRING, "ps_legal_entity": STRING, "ps_billing_model": ENUM,
             "ps_tax_code": STRING}),
    _object("line_items", "0-8", "hs_lastmodifieddate",
            ("amount", "createdate", "hs_lastmodifieddate", "hs_object_id", "hs_product_id", "name", "price",
             "quantity"),
            {"name": STRING, "hs_product_id": NUMBER, "quantity": NUMBER, "price": NUMBER, "amount": NUMBER,
             "hs_sku": STRING, "hs_line_item_currency_code": ENUM, "recurringbillingfrequency": ENUM,
             "hs_recurring_billing_period": STRING, "hs_recurring_billing_start_date": DATE,
             "hs_recurring_billing_number_of_payments": NUMBER}),
    _object("products", "0-7", "hs_lastmodifieddate",
            ("createdate", "description", "hs_lastmodifieddate", "hs_object_id", "name", "price"),
            {"name": STRING, "description": STRING, "price": NUMBER, "hs_sku": STRING,
             "recurringbillingfrequency": ENUM, "hs_recurring_billing_period": STRING}),
)}
# Every basic-API answer carries these beside the requested ones [OBJECTS].
ALWAYS = ("createdate", "hs_object_id")

# recurringbillingfrequency values [LINE_ITEMS] -> months per billing period.
BILLING_FREQUENCIES = {"weekly": None, "biweekly": None, "monthly": 1, "quarterly": 3, "per_six_months": 6,
                       "annually": 12, "per_two_years": 24, "per_three_years": 36}

# [ASSOC] (from, to) -> [(typeId, label)]; the first is the unlabeled default, a second the primary.
ASSOCIATION_TYPES: dict[tuple[str, str], tuple[tuple[int, str | None], ...]] = {
    ("deals", "companies"): ((341, None), (5, "Primary")),
    ("companies", "deals"): ((342, None), (6, "Primary")),
    ("deals", "line_items"): ((19, None),),
    ("line_items", "deals"): ((20, None),),
    ("contacts", "companies"): ((279, None), (1, "Primary")),
    ("companies", "contacts"): ((280, None), (2, "Primary")),
}

# [PIPELINES] the default sales pipeline, plus the firm's renewals pipeline for managed services
# (a second deal pipeline, as Sales Hub Professional allows).
PIPELINES: dict[str, tuple[str, tuple[tuple[str, str, float, bool], ...]]] = {
    "default": ("Sales Pipeline", (
        ("appointmentscheduled", "Appointment Scheduled", 0.2, False),
        ("qualifiedtobuy", "Qualified To Buy", 0.4, False),
        ("presentationscheduled", "Presentation Scheduled", 0.6, False),
        ("decisionmakerboughtin", "Decision Maker Bought-In", 0.8, False),
        ("contractsent", "Contract Sent", 0.9, False),
        ("closedwon", "Closed Won", 1.0, True),
        ("closedlost", "Closed Lost", 0.0, True),
    )),
    "renewals": ("Managed Services Renewals", (
        ("renewal_due", "Renewal Due", 0.5, False),
        ("renewal_quoted", "Renewal Quoted", 0.8, False),
        ("renewal_won", "Renewed", 1.0, True),
        ("renewal_lost", "Churned", 0.0, True),
    )),
}
WON_STAGES = {"closedwon", "renewal_won"}


# -- error answers [ERRORS] ---------------------------------------------------------------------
# developers.hubspot.com/docs/api/usage-details ("the 429 response will have the following
# format": status, message, errorType RATE_LIMIT, correlationId, policyName; "The message and
# policyName will indicate which limit you hit") and the v3 error shape (status, message,
# correlationId, category; community.hubspot.com "Improvements to authentication errors for V3
# endpoints": a request without valid credentials is INVALID_AUTHENTICATION).
UNAUTHORIZED_MESSAGE = ("Authentication credentials not found. This API supports OAuth 2.0 authentication and you "
                        "can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview")
RATE_LIMIT_POLICIES = {"TEN_SECONDLY_ROLLING": "You have reached your ten_secondly_rolling limit.",
                       "SECONDLY": "You have reached your secondly limit."}


def error_body(message: str, category: str, **extra: object) -> dict[str, object]:
    # A fresh correlation id per answer: HubSpot's support asks for it to trace a request.
    return {"status": "error", "message": message, "correlationId": str(uuid.uuid4()), "category": category,
            **extra}


def rate_limit_body(policy: str) -> dict[str, object]:
    # The documented 429 carries errorType and policyName, not a category.
    return {"status": "error", "message": RATE_LIMIT_POLICIES[policy], "errorType": "RATE_LIMIT",
            "correlationId": str(uuid.uuid4()), "policyName": policy}
