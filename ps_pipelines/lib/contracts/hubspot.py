"""Data contracts for HubSpot CRM objects (CRM API v3), read through the list and search endpoints.

A CRM object record is ``{id, properties: {...}, createdAt, updatedAt, archived}`` with every
property value a string (developers.hubspot.com/docs/guides/crm/using-object-apis). The raw row
lifts the properties to the top level under HubSpot's own (already lower-case) property names,
beside ``id``, ``updatedat`` and ``archived``, so a column traces back to its property.

The change column is the object's last-modified property, the one HubSpot's search filters and
sorts on: ``hs_lastmodifieddate``, except contacts, whose property is ``lastmodifieddate``
(the search guide's default contact properties). Owners are not CRM objects: the owners API
answers flat records whose change time is ``updatedAt``.

A deal's company and a line item's deal are associations, not properties: ingestion reads them
with the associations v4 batch read and folds one associated id into the row (``ASSOCIATIONS``):
``company_id`` on a deal (its primary company), ``deal_id`` on a line item.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandera.pandas as pa

from ps_pipelines.lib.contracts import columns as c
from ps_pipelines.lib.contracts.base import EntityContract, Record, flatten_record

PLATFORM = "hubspot"
# recurringbillingfrequency options (developers.hubspot.com, line items guide).
BILLING_FREQUENCIES = ("weekly", "biweekly", "monthly", "quarterly", "per_six_months", "annually",
                       "per_two_years", "per_three_years")
ISO_DURATION = r"^P(?:\d+Y)?(?:\d+M)?(?:\d+W)?(?:\d+D)?$"  # hs_recurring_billing_period, e.g. P12M
# Sent on every answer, and the same as ``id`` / ``createdate``: kept in the payload only.
_DUPLICATES = ("hs_object_id", "createdat")


def flatten_object(record: Mapping[str, Any]) -> Record:
    """A CRM object record with its properties lifted beside ``id``, ``updatedat`` and ``archived``."""
    properties = record.get("properties") or {}
    envelope = {key: value for key, value in record.items() if key != "properties"}
    return {**flatten_record(envelope), **{name.lower(): value for name, value in properties.items()}}


@dataclass(frozen=True)
class Association:
    """Records of ``to_object`` associated with the entity's record, folded into its row as
    ``column``: the one labelled with HubSpot's Primary association type ``primary_type_id``
    (category HUBSPOT_DEFINED), else the first listed; null when there is none."""

    to_object: str
    column: str
    description: str
    primary_type_id: int | None = None


# Primary deal-to-company type 5 (associations v4 guide, "HubSpot defined association types":
# developers.hubspot.com/docs/api-reference/latest/crm/associations/associate-records/guide). A
# line item belongs to one deal, so line items have no primary type to look for.
DEAL_COMPANY = Association("companies", "company_id", "Id of the deal's primary company (the association labelled "
                                                      "Primary, else the first associated company); null when the "
                                                      "deal has no company.", primary_type_id=5)
LINE_ITEM_DEAL = Association("deals", "deal_id", "Id of the deal the line item belongs to (its deal association); "
                                                 "null when it is on no deal.")


def _object(entity: str, modified: str, cols: dict[str, pa.Column], description: str,
            association: Association | None = None) -> EntityContract:
    common = {
        "ps_external_id": c.text(description="Custom unique property [tenant]: the firm's external id, the "
                                             "idProperty the write-back upserts by."),
        "createdate": c.timestamp(description="When the record was created in HubSpot (UTC)."),
        modified: c.timestamp(required=True, description="When any property of the record last changed (UTC); "
                                                         "the property the search endpoint filters and sorts on."),
        "updatedat": c.timestamp(description="The record's updatedAt (UTC): its last change, as the API envelope "
                                             "states it."),
        "archived": c.flag(description="True when the record is archived (deleted to the recycle bin); "
                                       "archived records are loaded as deletes."),
    }
    record_id = c.identifier("HubSpot record id (hs_object_id), numeric text.")
    # Not a property: read from the associations API, so never asked for by name.
    associated = {association.column: c.text(description=association.description)} if association else {}
    return EntityContract(
        platform=PLATFORM,
        entity=entity,
        id_columns=("id",),
        change_column=modified,
        schema=c.schema(f"hubspot.{entity}", {"id": record_id, **cols, **associated, **common}),
        description=description,
        source_object=entity,
        # The properties asked for by name (the API answers only a default few otherwise).
        source_fields=tuple(name for name in (*cols, *common) if name not in ("updatedat", "archived")),
        normalize=flatten_object,
        ignored_fields=(*_DUPLICATES, "archivedat"),
    )


_OWNER = c.text(description="Id of the HubSpot owner (user) the record is assigned to.")

COMPANIES = _object(
    "companies",
    "hs_lastmodifieddate",
    {
        "name": c.text(required=True, description="Company name."),
        "domain": c.text(description="The company's web domain (HubSpot's de-duplication key for companies)."),
        "industry": c.text(description="Industry (enumeration property)."),
        "country": c.text(description="Country of the company's address."),
        "city": c.text(description="City of the company's address."),
        "phone": c.text(description="Main phone number."),
        "hubspot_owner_id": _OWNER,
        "numberofemployees": c.number(min_value=0, description="Number of employees."),
        "annualrevenue": c.number(min_value=0, description="Annual revenue, in the portal's currency."),
    },
    "HubSpot companies: the CRM customer master of a HubSpot estate.",
)

CONTACTS = _object(
    "contacts",
    "lastmodifieddate",
    {
        "email": c.text(regex=c.EMAIL, description="Email address (HubSpot's unique key for contacts)."),
        "firstname": c.text(description="First name."),
        "lastname": c.text(description="Last name."),
        "jobtitle": c.text(description="Job title."),
        "phone": c.text(description="Phone number."),
        "country": c.text(description="Country."),
        "hubspot_owner_id": _OWNER,
        "associatedcompanyid": c.text(description="Id of the contact's primary company."),
    },
    "HubSpot contacts: people at customer companies.",
)

DEALS = _object(
    "deals",
    "hs_lastmodifieddate",
    {
        "dealname": c.text(required=True, description="Deal name."),
        "amount": c.number(min_value=0, description="Deal amount (total contract value), in the deal's currency."),
        "closedate": c.timestamp(description="Expected (or actual, once closed) close date and time (UTC)."),
        "pipeline": c.text(required=True, description="Id of the deal pipeline (e.g. default, renewals)."),
        "dealstage": c.text(required=True, description="Id of the deal's stage within its pipeline."),
        "dealtype": c.text(description="Deal type (newbusiness or existingbusiness: renewals)."),
        "deal_currency_code": c.currency(required=False, description="ISO 4217 code of the deal's currency."),
        "hubspot_owner_id": _OWNER,
        "description": c.text(description="Free-text description (a renewal names the deal it renews)."),
        "hs_is_closed": c.flag(description="True when the stage is a closed stage, won or lost (set by HubSpot)."),
        "hs_is_closed_won": c.flag(description="True when the stage is a won stage (set by HubSpot)."),
        "hs_deal_stage_probability": c.number(min_value=0, max_value=1,
                                              description="Likelihood of closing of the stage, 0-1."),
        "ps_activation_status": c.text(description="Custom property [tenant]: where project activation of the won "
                                                   "deal stands, written back by the pipeline."),
        "ps_legal_entity": c.text(description="Custom property [tenant]: the firm's contracting legal entity (a "
                                              "NetSuite subsidiary name); HubSpot has no contract object."),
        "ps_billing_model": c.text(description="Custom property [tenant]: how the work is billed (Time and "
                                               "Materials, Fixed Fee, Milestone)."),
        "ps_tax_code": c.text(description="Custom property [tenant]: the tax code the invoices carry."),
    },
    "HubSpot deals through their pipeline's stages; won deals start project activation.",
    DEAL_COMPANY,
)

LINE_ITEMS = _object(
    "line_items",
    "hs_lastmodifieddate",
    {
        "name": c.text(description="Line item name (the product's by default)."),
        "hs_product_id": c.text(description="Id of the product the line item was created from."),
        "hs_sku": c.text(description="The product's SKU."),
        "quantity": c.number(min_value=0, description="Quantity sold."),
        "price": c.number(min_value=0, description="Unit price, in the line item's currency."),
        "amount": c.number(min_value=0, description="Price times quantity for one billing period."),
        "hs_line_item_currency_code": c.currency(required=False, description="ISO 4217 code of the line's currency."),
        "recurringbillingfrequency": c.text(
            isin=BILLING_FREQUENCIES, description="Billing frequency of a recurring line (monthly, quarterly, "
                                                  "annually, ...); null for a one-off line."),
        "hs_recurring_billing_period": c.text(
            regex=ISO_DURATION, description="Term of a recurring line as an ISO 8601 duration (P12M: twelve months)."),
        "hs_recurring_billing_start_date": c.date(description="First day a recurring line is billed."),
        "hs_recurring_billing_number_of_payments": c.number(
            min_value=0, description="Number of billing periods in the term."),
    },
    "HubSpot line items of deals: one-off services and recurring managed services (frequency, term, start).",
    LINE_ITEM_DEAL,
)

PRODUCTS = _object(
    "products",
    "hs_lastmodifieddate",
    {
        "name": c.text(required=True, description="Product name."),
        "description": c.text(description="Product description."),
        "price": c.number(min_value=0, description="List unit price, in the portal's currency."),
        "hs_sku": c.text(description="Stock keeping unit: the firm's service code."),
        "recurringbillingfrequency": c.text(isin=BILLING_FREQUENCIES,
                                            description="Billing frequency of a recurring product."),
        "hs_recurring_billing_period": c.text(regex=ISO_DURATION,
                                              description="Default term of a recurring product (ISO 8601 duration)."),
    },
    "HubSpot products: the firm's catalogue of one-off and recurring services.",
)

OWNERS = EntityContract(
    platform=PLATFORM,
    entity="owners",
    id_columns=("id",),
    change_column="updatedat",
    schema=c.schema("hubspot.owners", {
        "id": c.identifier("HubSpot owner id, the value of hubspot_owner_id on records."),
        "email": c.text(regex=c.EMAIL, description="The owner's login email."),
        "type": c.text(description="PERSON, or QUEUE for a queue owner."),
        "firstname": c.text(description="First name."),
        "lastname": c.text(description="Last name."),
        "userid": c.text(description="Id of the HubSpot user behind the owner."),
        "createdat": c.timestamp(description="When the owner was created (UTC)."),
        "updatedat": c.timestamp(required=True, description="When the owner last changed (UTC)."),
        "archived": c.flag(description="True when the owner (user) was removed from the portal."),
    }),
    description="HubSpot owners: the sellers and account managers records are assigned to.",
    source_object="owners",
    ignored_fields=("teams",),
)

ALL = (COMPANIES, CONTACTS, DEALS, LINE_ITEMS, PRODUCTS, OWNERS)
# The association each entity's rows carry, by source object.
ASSOCIATIONS: dict[str, Association] = {DEALS.source_object: DEAL_COMPANY, LINE_ITEMS.source_object: LINE_ITEM_DEAL}
