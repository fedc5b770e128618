"""Deterministic HubSpot CRM data: the managed-services firm's portal, at any scale.

``write(store, seed=, scale=)`` stores, in HubSpot's wire shape (``ps_sandbox.catalog.hubspot``):
owners (``5 x scale``, min 5), a product catalogue of one-off services and recurring managed
services, ``30 x scale`` companies (min 5) in the estate's markets (country, currency), 1-3
contacts each, 1-4 deals each in the default pipeline (~40% ``closedwon``), 1-3 line items per
deal priced in the deal's currency (recurring ones carry a billing frequency, a term and a start
date), and for every won deal with recurring lines whose term has ended or ends within 90 days,
a renewal deal in the renewals pipeline with the recurring lines carried over. Associations
(deal-company, deal-line item, contact-company) are stored in both directions.

Delivered deals (``delivered=``, when the firm sells in HubSpot what its PSA delivers:
``populate(psa_crm="hubspot")``): each delivery project's won deal and its customer, as a firm
keeps them in HubSpot: a company per customer, a ``closedwon`` deal per project with the deal's
amount, currency, close date and terms (``ps_billing_model``, ``ps_legal_entity``,
``ps_tax_code``), and the ERP ids the activation write-back set (``ps_external_id``: the
deal's NetSuite job, the company's NetSuite customer) where the ERP has them. Their ids are a
block of their own (``DELIVERED_ID_OFFSET``): the portal's own records keep theirs, and the PSA,
generated first, names a deal by ``delivered_ids`` before it is stored.

Every random choice comes from ``random.Random(f"{seed}:hubspot:<domain>")`` and every time is
relative to ``generate.AS_OF``, so the same ``(seed, scale)`` gives byte-identical bodies; the
other platforms' data is untouched (their generators use other seeds).
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ps_sandbox.catalog import hubspot as catalog
from ps_sandbox.generate import (
    _PRICE_FACTORS,
    AS_OF,
    FIRST_NAMES,
    HISTORY_START,
    INDUSTRIES,
    LAST_NAMES,
    MARKETS,
    Account,
    Project,
    _company_name,
    _midnight,
    _short_name,
    _Sink,
    add_months,
    format_timestamp,
)
from ps_sandbox.store import SandboxStore

PLATFORM = "hubspot"
# Fixed-width numeric ids per object, so the store's text order is numeric order (paging by id).
ID_BASE = {"owners": 100_000_000, "products": 1_000_000_000, "companies": 2_000_000_000,
           "contacts": 3_000_000_000, "deals": 4_000_000_000, "line_items": 5_000_000_000}
# The delivered deals' ids start this far past their object's base: the same width, clear of
# the portal's generated records at any scale (30 x scale companies), in numeric order after them.
DELIVERED_ID_OFFSET = 900_000_000
ASSOCIATIONS = "associations"
PIPELINES = "pipelines"
OWNERS = "owners"
PORTAL_CREATED = datetime(2019, 3, 4, 9, 0, tzinfo=UTC)
# (sku, name, USD list price, recurringbillingfrequency or None, term in months)
PRODUCTS = (
    ("PS-IMPL", "Implementation Services", 25_000, None, 0),
    ("PS-ADV-DAY", "Advisory Day", 1_800, None, 0),
    ("PS-MIGR", "Data Migration Package", 12_000, None, 0),
    ("PS-TRAIN", "Training Workshop", 4_500, None, 0),
    ("MS-BRONZE", "Managed Service - Bronze", 2_500, "monthly", 12),
    ("MS-SILVER", "Managed Service - Silver", 5_000, "monthly", 12),
    ("MS-GOLD", "Managed Service - Gold", 9_500, "monthly", 24),
    ("MS-SUPPORT", "Support Retainer", 6_000, "quarterly", 12),
    ("MS-LICENCE", "Platform Licence", 30_000, "annually", 36),
)
_OPEN_STAGES = ("appointmentscheduled", "qualifiedtobuy", "presentationscheduled", "decisionmakerboughtin",
                "contractsent")
_STAGE_PROBABILITY = {stage: probability for _, stages in catalog.PIPELINES.values()
                      for stage, _, probability, _ in stages}
_CLOSED_STAGES = {stage for _, stages in catalog.PIPELINES.values() for stage, _, _, closed in stages if closed}
_JOB_TITLES = ("CFO", "CIO", "IT Director", "Head of Operations", "Service Delivery Manager", "Procurement Manager")


def ts(moment: datetime) -> str:
    return format_timestamp(PLATFORM, moment)


def _id(obj: str, number: int) -> str:
    return str(ID_BASE[obj] + number)


def hubspot_record(obj: str, record_id: str, created: datetime, updated: datetime,
                   properties: dict[str, Any]) -> dict[str, Any]:
    """A record in HubSpot's shape: every property value a string (or null) [OBJECTS]."""
    modified = catalog.OBJECTS[obj].modified
    values = {name: None if value is None else str(value) for name, value in properties.items()}
    values.update({"hs_object_id": record_id, "createdate": ts(created), modified: ts(updated)})
    return {"id": record_id, "properties": values, "createdAt": ts(created), "updatedAt": ts(updated),
            "archived": False}


def archive(body: dict[str, Any], moment: datetime) -> None:
    """Mark a record archived the way HubSpot answers it with ``archived=true`` [OBJECTS]."""
    body["archived"] = True
    body["archivedAt"] = ts(moment)


def association_id(from_obj: str, from_id: str, to_obj: str) -> str:
    return f"{from_obj}:{from_id}:{to_obj}"


def association_body(from_obj: str, from_id: str, to_obj: str, to_ids: list[str], moment: datetime) -> dict:
    return {"from": from_id, "fromObjectType": from_obj, "toObjectType": to_obj, "to": list(to_ids),
            "updatedAt": ts(moment)}


def primary_of(body: dict[str, Any]) -> str | None:
    """The associated company labelled Primary: ``primary`` when the body names it (None: no
    primary, as for a record associated only unlabeled), else the first, as generated records
    have one company each."""
    to_ids = body.get("to") or []
    return body.get("primary", to_ids[0] if to_ids else None)


def _money(value: float) -> str:
    return f"{value:.2f}"


def delivered_ids(projects: list[Project]) -> tuple[dict[str, str], dict[str, str]]:
    """The HubSpot ids of the firm's delivered deals: (customer account id -> company id,
    sold deal id -> deal id), numbered in project order (each customer at its first project)."""
    companies: dict[str, str] = {}
    deals: dict[str, str] = {}
    for project in projects:
        account = project.deal.account
        companies.setdefault(account.id, _id("companies", DELIVERED_ID_OFFSET + len(companies) + 1))
        deals.setdefault(project.deal.id, _id("deals", DELIVERED_ID_OFFSET + len(deals) + 1))
    return companies, deals


def _deal_type(sold_as: str) -> str:
    """HubSpot's dealtype for a deal type as the firm's Salesforce org names it."""
    return "newbusiness" if sold_as == "New Business" else "existingbusiness"


class _HubSpotGenerator:
    def __init__(self, store: SandboxStore, seed: int, scale: float, delivered: list[Project]) -> None:
        self.seed, self.scale = seed, scale
        self.delivered_projects = delivered
        self.sink = _Sink(store)
        self.counters: dict[str, int] = {}
        self.links: dict[tuple[str, str, str], list[str]] = {}
        self.link_times: dict[tuple[str, str, str], datetime] = {}

    def rng(self, domain: str) -> random.Random:
        return random.Random(f"{self.seed}:hubspot:{domain}")

    def next_id(self, obj: str) -> str:
        self.counters[obj] = self.counters.get(obj, 0) + 1
        return _id(obj, self.counters[obj])

    def add(self, obj: str, body: dict[str, Any]) -> None:
        self.sink.add(PLATFORM, obj, body["id"], datetime.fromisoformat(body["updatedAt"]), body)

    def link(self, from_obj: str, from_id: str, to_obj: str, to_id: str, moment: datetime) -> None:
        for a, a_id, b, b_id in ((from_obj, from_id, to_obj, to_id), (to_obj, to_id, from_obj, from_id)):
            key = (a, a_id, b)
            self.links.setdefault(key, []).append(b_id)
            self.link_times[key] = max(self.link_times.get(key, moment), moment)

    def run(self) -> dict[str, int]:
        try:
            self.pipelines()
            owners = self.owners()
            products = self.products()
            self.companies(owners, products)
            self.delivered(owners)
            for (from_obj, from_id, to_obj), to_ids in self.links.items():
                moment = self.link_times[(from_obj, from_id, to_obj)]
                body = association_body(from_obj, from_id, to_obj, to_ids, moment)
                self.sink.add(PLATFORM, ASSOCIATIONS, association_id(from_obj, from_id, to_obj), moment, body)
        except BaseException:
            self.sink.close()
            raise
        return self.sink.close()

    def pipelines(self) -> None:
        stamp = ts(PORTAL_CREATED)
        for order, (pipeline_id, (label, stages)) in enumerate(catalog.PIPELINES.items()):
            self.add(PIPELINES, {
                "id": pipeline_id, "label": label, "displayOrder": order, "archived": False,
                "createdAt": stamp, "updatedAt": stamp,
                "stages": [{"id": stage, "label": stage_label, "displayOrder": index, "archived": False,
                            "metadata": {"isClosed": str(closed).lower(), "probability": str(probability)},
                            "createdAt": stamp, "updatedAt": stamp,
                            "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT"}
                           for index, (stage, stage_label, probability, closed) in enumerate(stages)]})

    def owners(self) -> list[str]:
        rng = self.rng("owners")
        ids = []
        for index in range(max(5, round(5 * self.scale))):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            created = PORTAL_CREATED + timedelta(days=rng.randint(0, 1500))
            owner_id = self.next_id(OWNERS)
            self.add(OWNERS, {"id": owner_id, "email": f"{first}.{last}{index + 1}@psconsulting.com".lower(),
                              "type": "PERSON", "firstName": first, "lastName": last, "userId": 7_000_000 + index,
                              "createdAt": ts(created), "updatedAt": ts(created), "archived": False, "teams": []})
            ids.append(owner_id)
        return ids

    def products(self) -> list[tuple[str, tuple]]:
        out = []
        for sku, name, price, frequency, term in PRODUCTS:
            product_id = self.next_id("products")
            properties = {"name": name, "hs_sku": sku, "price": _money(price), "description": name,
                          "recurringbillingfrequency": frequency,
                          "hs_recurring_billing_period": f"P{term}M" if term else None}
            self.add("products", hubspot_record("products", product_id, PORTAL_CREATED, PORTAL_CREATED, properties))
            out.append((product_id, (sku, name, price, frequency, term)))
        return out

    def companies(self, owners: list[str], products: list[tuple[str, tuple]]) -> None:
        rng = self.rng("companies")
        names: set[str] = set()
        span = int((AS_OF - HISTORY_START).total_seconds())
        for _ in range(max(5, round(30 * self.scale))):
            market = rng.choices(MARKETS, weights=[m.weight for m in MARKETS])[0]
            name = _company_name(rng, market, names)
            created = HISTORY_START + timedelta(seconds=rng.randrange(span // 2))
            company_id = self.next_id("companies")
            domain = f"{''.join(ch for ch in name.split()[0].lower() if ch.isalnum())}{company_id[-4:]}.{market.domain}"
            self.add("companies", hubspot_record("companies", company_id, created, created, {
                "name": name, "domain": domain, "country": market.country, "industry": rng.choice(INDUSTRIES),
                "hubspot_owner_id": rng.choice(owners), "numberofemployees": rng.choice((50, 200, 1000, 5000))}))
            for _ in range(rng.randint(1, 3)):
                self.contact(rng, company_id, domain, market.country, created)
            for _ in range(rng.randint(1, 4)):
                self.deal(rng, company_id, name, market, owners, products, created)

    def delivered(self, owners: list[str]) -> None:
        """The firm's delivered deals and their customers (module docstring, "Delivered deals").
        No random draw: the portal's own records stay exactly as generated without them."""
        companies, deals = delivered_ids(self.delivered_projects)
        last_project: dict[str, datetime] = {}
        for project in self.delivered_projects:
            account = project.deal.account.id
            last_project[account] = max(last_project.get(account, project.created), project.created)
        written: set[str] = set()
        for index, project in enumerate(self.delivered_projects):
            deal, account = project.deal, project.deal.account
            company_id, owner = companies[account.id], owners[index % len(owners)]
            if company_id not in written:
                written.add(company_id)
                self.delivered_company(account, company_id, owner, min(last_project[account.id], AS_OF))
            close = _midnight(deal.close) + timedelta(hours=12)
            updated = min(max(close, project.created), AS_OF)
            properties = self._deal_properties(deal.name, deal.amount, close, "default", "closedwon",
                                               _deal_type(deal.deal_type), account.market, owner, False)
            properties.update({"ps_billing_model": deal.billing_model, "ps_external_id": project.job_id,
                               "ps_activation_status": "Complete" if project.job_id else "In Progress"})
            self.add("deals", hubspot_record("deals", deals[deal.id], deal.created, updated, properties))
            self.link("deals", deals[deal.id], "companies", company_id, deal.created)

    def delivered_company(self, account: Account, company_id: str, owner: str, updated: datetime) -> None:
        """A customer as the firm's portal holds it; ``ps_external_id`` is its NetSuite customer,
        which the activation write-back set when it made the customer (last changed then)."""
        domain = f"{_short_name(account.name).replace(' ', '')}.{account.market.domain}".lower()
        self.add("companies", hubspot_record("companies", company_id, account.created, max(updated, account.created), {
            "name": account.name, "domain": domain, "country": account.market.country, "industry": account.industry,
            "hubspot_owner_id": owner, "ps_external_id": account.customer_id}))

    def contact(self, rng: random.Random, company_id: str, domain: str, country: str, created: datetime) -> None:
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        contact_id = self.next_id("contacts")
        moment = created + timedelta(days=rng.randint(0, 60))
        self.add("contacts", hubspot_record("contacts", contact_id, moment, moment, {
            "firstname": first, "lastname": last, "email": f"{first}.{last}.{contact_id[-5:]}@{domain}".lower(),
            "jobtitle": rng.choice(_JOB_TITLES), "country": country, "associatedcompanyid": company_id}))
        self.link("contacts", contact_id, "companies", company_id, moment)

    def deal(self, rng: random.Random, company_id: str, company: str, market: Any, owners: list[str],
             products: list[tuple[str, tuple]], company_created: datetime) -> None:
        created = company_created + timedelta(days=rng.randint(1, 200))
        created = min(created, AS_OF - timedelta(days=10))
        roll = rng.random()
        stage = "closedwon" if roll < 0.4 else "closedlost" if roll < 0.55 else rng.choice(_OPEN_STAGES)
        close = created + timedelta(days=rng.randint(14, 120))
        if stage in _CLOSED_STAGES:
            close = min(close, AS_OF - timedelta(days=1))
        updated = min(max(close, created), AS_OF) if stage in _CLOSED_STAGES else created + timedelta(days=3)
        deal_id = self.next_id("deals")
        lines = [rng.choice(products) for _ in range(rng.randint(1, 3))]
        recurring = any(spec[3] for _, spec in lines)
        start = (close + timedelta(days=14)).date()
        amount = self.line_items(rng, deal_id, lines, market.currency, start, created)
        self.add("deals", hubspot_record("deals", deal_id, created, updated, self._deal_properties(
            f"{company.split()[0]} {'Managed Services' if recurring else 'Implementation'}", amount, close,
            "default", stage, "newbusiness", market, rng.choice(owners), recurring)))
        self.link("deals", deal_id, "companies", company_id, created)
        if stage == "closedwon" and recurring:
            self.renewal(rng, deal_id, company_id, company, market, owners, lines, start)

    @staticmethod
    def _deal_properties(name: str, amount: float, close: datetime, pipeline: str, stage: str, deal_type: str,
                         market: Any, owner: str, recurring: bool) -> dict[str, Any]:
        # The terms a Salesforce firm keeps on its contract: the market's entity and tax code;
        # managed services are billed a fixed fee per period, implementations on time.
        return {"dealname": name, "amount": _money(amount), "closedate": ts(close), "pipeline": pipeline,
                "dealstage": stage, "dealtype": deal_type, "deal_currency_code": market.currency,
                "ps_legal_entity": market.subsidiary.name, "ps_tax_code": market.tax_code,
                "ps_billing_model": "Fixed Fee" if recurring else "Time and Materials",
                "hubspot_owner_id": owner, "hs_is_closed": str(stage in _CLOSED_STAGES).lower(),
                "hs_is_closed_won": str(stage in catalog.WON_STAGES).lower(),
                "hs_deal_stage_probability": str(_STAGE_PROBABILITY[stage])}

    def line_items(self, rng: random.Random, deal_id: str, lines: list[tuple[str, tuple]], currency: str,
                   start: date, created: datetime) -> float:
        """Store the deal's line items; returns the deal amount (one-off totals plus each recurring
        line's whole term, as HubSpot's total contract value counts it)."""
        total = 0.0
        for product_id, (sku, name, usd_price, frequency, term) in lines:
            quantity = 1 if frequency else rng.randint(1, 5)
            price = round(usd_price * _PRICE_FACTORS[currency], 2)
            properties: dict[str, Any] = {"name": name, "hs_product_id": product_id, "hs_sku": sku,
                                          "quantity": quantity, "price": _money(price),
                                          "amount": _money(price * quantity), "hs_line_item_currency_code": currency}
            if frequency:
                payments = term // catalog.BILLING_FREQUENCIES[frequency]
                properties.update({"recurringbillingfrequency": frequency, "hs_recurring_billing_period": f"P{term}M",
                                   "hs_recurring_billing_start_date": start.isoformat(),
                                   "hs_recurring_billing_number_of_payments": payments})
                total += price * quantity * payments
            else:
                total += price * quantity
            line_id = self.next_id("line_items")
            self.add("line_items", hubspot_record("line_items", line_id, created, created, properties))
            self.link("deals", deal_id, "line_items", line_id, created)
        return total

    def renewal(self, rng: random.Random, deal_id: str, company_id: str, company: str, market: Any,
                owners: list[str], lines: list[tuple[str, tuple]], start: date) -> None:
        """A renewal deal when the shortest recurring term ends before ``AS_OF`` + 90 days."""
        recurring = [(product_id, spec) for product_id, spec in lines if spec[3]]
        term_end = add_months(start, min(spec[4] for _, spec in recurring))
        if term_end > AS_OF.date() + timedelta(days=90):
            return
        created = datetime.combine(term_end - timedelta(days=90), datetime.min.time(), UTC) + timedelta(hours=10)
        created = max(created, datetime.fromisoformat(ts(HISTORY_START)))
        settled = term_end < AS_OF.date() - timedelta(days=30)
        stage = rng.choice(("renewal_won", "renewal_won", "renewal_won", "renewal_lost")) if settled else \
            rng.choice(("renewal_due", "renewal_quoted"))
        close = datetime.combine(term_end, datetime.min.time(), UTC) + timedelta(hours=12)
        updated = min(close if settled else created + timedelta(days=2), AS_OF)
        renewal_id = self.next_id("deals")
        amount = self.line_items(rng, renewal_id, recurring, market.currency, term_end, created)
        properties = self._deal_properties(f"{company.split()[0]} Managed Services Renewal", amount, close,
                                           "renewals", stage, "existingbusiness", market, rng.choice(owners), True)
        properties["description"] = f"Renewal of deal {deal_id}"
        self.add("deals", hubspot_record("deals", renewal_id, created, updated, properties))
        self.link("deals", renewal_id, "companies", company_id, created)


def write(store: SandboxStore, *, seed: int, scale: float, delivered: list[Project] | None = None) -> dict[str, int]:
    """Generate the HubSpot portal into ``store``; returns counts per ``hubspot.<object>``.
    ``delivered``: the firm's delivery projects whose deals it sold in HubSpot (module docstring)."""
    return _HubSpotGenerator(store, seed, scale, list(delivered or ())).run()
