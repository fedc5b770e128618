"""Certinia PSA's records for a firm that runs Certinia, generated beside the rest of the estate.

The firm's business is the same whichever PSA records it: the projects are those of the won
deals. Each ``pse__Proj__c`` names the deal it delivers in the firm's External ID field
``CRM_Deal_Id__c`` (what the activation write-back upserts on) and its customer's Account in
``pse__Account__c``: sold in the org (``psa_crm="salesforce"``) the deal is a Salesforce
Opportunity, also linked by ``pse__Opportunity__c``; sold in HubSpot (``psa_crm="hubspot"``)
it is the HubSpot deal (``hubspot_data.delivered_ids``), which no Salesforce record stands
for, so ``pse__Opportunity__c`` stays empty (the Account is the org's record of the same
customer: Certinia's resources, rate cards and projects live in the org). The team is the
Workday workforce (each worker a resource: a Contact with ``pse__Is_Resource__c``), and the time
and expenses are the very hours and amounts generated for the week, recorded the Certinia way:
one weekly timecard (``pse__Timecard_Header__c``) per resource, project, status and billable flag,
with the hours on its day fields, and one ``pse__Expense__c`` per expense. So the same seed gives
the same utilization and billing on either PSA.

Draws only from its own random streams, so turning Certinia on changes nothing else generated.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ps_sandbox.catalog import certinia as pse
from ps_sandbox.catalog.salesforce import SObjectSpec
from ps_sandbox.generate import (
    _COST_RATE_USD,
    _PRICE_FACTORS,
    Milestone,
    Project,
    Worker,
    _business_moment,
    _midnight,
    sf_id,
)

if TYPE_CHECKING:  # the generator imports this module when the org runs Certinia
    from ps_sandbox.generate import _Activity, _Generator, _Line

# How the firm groups its offerings into Certinia practices (by the kind of project sold).
PRACTICES = {
    "Strategy": ("Target Operating Model", "Pricing Strategy", "Digital Roadmap"),
    "Finance & Operations": ("Finance Transformation", "Supply Chain Optimisation", "Post-Merger Integration",
                             "Regulatory Compliance Programme"),
    "Technology": (),  # everything else
}
REGIONS = {"NA": "North America", "EMEA": "EMEA", "APAC": "APAC"}
_TOP_REGION = "Global"
_STATUS = {"draft": "Saved", "submitted": "Submitted", "approved": "Approved", "rejected": "Rejected"}
_EXPENSE_STATUS = {"draft": "Draft", "submitted": "Submitted", "approved": "Approved", "rejected": "Rejected"}
_EXPENSE_TYPES = {"Airfare": "Airfare", "Lodging": "Lodging (Room and Tax)", "Meals": "Business Meals",
                  "Mileage": "Auto Mileage", "Ground Transportation": "Taxi", "Software": "IT Equipment and Services"}
_BILLING_TYPES = {"Time and Materials": "Time and Materials", "Fixed Fee": "Fixed Price", "Milestone": "Fixed Price"}
_FIRM_ACCOUNT = "PS Consulting (internal)"  # resources' contacts belong to the firm's own account


def practice_of(project_name: str) -> str:
    kind = project_name.rsplit(" - ", 1)[-1]
    return next((name for name, kinds in PRACTICES.items() if kind in kinds), "Technology")


class CertiniaWriter:
    """Writes the Certinia records through the generator's sink, as Salesforce records."""

    def __init__(self, gen: _Generator) -> None:
        self.gen = gen
        self.regions: dict[str, str] = {}
        self.practices: dict[str, str] = {}
        self.contacts: dict[str, str] = {}  # Kantata user id -> Contact id (the same person)
        self.cost_rates: dict[str, float] = {}  # Contact id -> default cost rate
        self.projects: dict[str, str] = {}  # Kantata workspace id -> pse__Proj__c id
        self.assignments: dict[tuple[str, str], str] = {}  # (workspace id, user id) -> assignment id
        self.auto_numbers: dict[str, int] = defaultdict(int)
        self.crm_deal_ids: dict[str, str] = {}  # sold deal id -> the CRM deal id CRM_Deal_Id__c holds

    # -- helpers ---------------------------------------------------------------------------
    def _id(self, spec: SObjectSpec) -> str:
        return sf_id(spec.key_prefix, self.gen.next_id(f"sf.{spec.key_prefix}"))

    def _auto_name(self, sobject: str) -> str:
        self.auto_numbers[sobject] += 1
        return pse.AUTO_NUMBERS[sobject].format(self.auto_numbers[sobject])

    def _write(self, spec: SObjectSpec, record_id: str, created: datetime, updated: datetime, fields: dict) -> None:
        self.gen._sf(spec.name, record_id, created, updated, fields)

    # -- reference data, resources, projects ---------------------------------------------
    def write_setup(self) -> None:
        """Everything but the weekly time and expenses (``week`` streams those)."""
        since = _midnight(date(2019, 1, 7)) + timedelta(hours=10)
        self._write_regions(since)
        for name in PRACTICES:
            self.practices[name] = self._id(pse.PRACTICE)
            self._write(pse.PRACTICE, self.practices[name], since, since, {"Name": name})
        self._write_rate_cards()
        self._write_resources(since)
        if self.gen.psa_crm == "hubspot":  # imported here: hubspot_data builds on the generator module
            from ps_sandbox.hubspot_data import delivered_ids

            self.crm_deal_ids = delivered_ids(self.gen.projects)[1]
        for project in self.gen.projects:
            self._write_project(project)

    def _write_regions(self, since: datetime) -> None:
        top = self.regions[_TOP_REGION] = self._id(pse.REGION)
        self._write(pse.REGION, top, since, since, {"Name": _TOP_REGION, "pse__Parent_Region__c": None})
        for code, name in REGIONS.items():
            self.regions[code] = self._id(pse.REGION)
            self._write(pse.REGION, self.regions[code], since, since, {"Name": name, "pse__Parent_Region__c": top})

    def _write_rate_cards(self) -> None:
        """One rate card per region, currency, year and role (the year as its start and end dates)."""
        for card in self.gen.cards:
            created = datetime(card.year - 1, 12, 1, 10, tzinfo=UTC)
            for role, cents in card.rates.items():
                record_id = self._id(pse.RATE_CARD)
                self._write(pse.RATE_CARD, record_id, created, created, {
                    "Name": self._auto_name(pse.RATE_CARD.name), "pse__Role__c": role,
                    "pse__Region__c": self.regions[card.region], "CurrencyIsoCode": card.currency,
                    "pse__Suggested_Bill_Rate__c": cents / 100,
                    "pse__Average_Cost_Rate__c": round(_COST_RATE_USD[role] * _PRICE_FACTORS[card.currency], 2),
                    "pse__Start_Date__c": f"{card.year}-01-01", "pse__End_Date__c": f"{card.year}-12-31",
                    "pse__Cascading_Role__c": False})

    def _write_resources(self, since: datetime) -> None:
        gen = self.gen
        rng = gen.rng("certinia-resources")
        firm = sf_id("001", gen.next_id("sf.001"))
        gen._sf("Account", firm, since, since, {"Name": _FIRM_ACCOUNT, "Type": "Other", "Industry": "Consulting",
                                               "BillingCountry": "United States", "CurrencyIsoCode": "USD"})
        practices = list(self.practices.values())
        for index, worker in enumerate(gen.workers):
            contact_id = sf_id("003", gen.next_id("sf.003"))
            self.contacts[worker.user_id] = contact_id
            currency = worker.location[2]
            cost = round(_COST_RATE_USD[worker.role] * _PRICE_FACTORS[currency] * rng.uniform(0.9, 1.1), 2)
            self.cost_rates[contact_id] = cost
            created = _business_moment(rng, max(worker.hire, since.date()))
            updated = _business_moment(rng, worker.termination) if worker.termination else created
            gen._sf("Contact", contact_id, created, updated, {
                "AccountId": firm, "FirstName": worker.first, "LastName": worker.last, "Name": worker.name,
                "Email": worker.email, "Title": worker.role, "Department": "Professional Services",
                "CurrencyIsoCode": currency, "pse__Is_Resource__c": True,
                "pse__Is_Resource_Active__c": worker.termination is None,
                "pse__Salesforce_User__c": sf_id("005", 1_000 + index),
                "pse__Default_Cost_Rate__c": cost, "pse__Resource_Role__c": worker.role,
                "pse__Region__c": self.regions[worker.region], "pse__Practice__c": practices[index % len(practices)],
                "pse__Start_Date__c": worker.hire.isoformat(),
                "pse__Last_Date__c": worker.termination.isoformat() if worker.termination else None,
                "pse__Exclude_from_Resource_Planner__c": False, "pse__Utilization_Target__c": 75.0})

    def _write_project(self, project: Project) -> None:
        gen, deal = self.gen, project.deal
        finished = deal.end < gen.asof_day
        record_id = self.projects[project.id] = self._id(pse.PROJECT)
        updated = project.created
        if finished:
            updated = max(updated, _midnight(deal.end) + timedelta(days=1, hours=17))
        self._write(pse.PROJECT, record_id, project.created, updated, {
            "Name": deal.name[:80], "pse__Account__c": deal.account.id,
            "pse__Opportunity__c": None if self.crm_deal_ids else deal.id,
            pse.DEAL_ID_FIELD: self.crm_deal_ids.get(deal.id, deal.id),
            "pse__Region__c": self.regions[deal.account.market.subsidiary.region],
            "pse__Practice__c": self.practices[practice_of(deal.name)],
            "pse__Project_Manager__c": self.contacts.get(project.team[0].user_id) if project.team else None,
            "pse__Start_Date__c": deal.start.isoformat(), "pse__End_Date__c": deal.end.isoformat(),
            "pse__Stage__c": "Completed" if finished else "In Progress", "pse__Project_Status__c": "Green",
            "pse__Billing_Type__c": _BILLING_TYPES[deal.billing_model], "pse__Project_Type__c": "Customer Project",
            "pse__Is_Active__c": not finished, "pse__Is_Billable__c": True,
            "pse__Closed_for_Time_Entry__c": finished, "pse__Closed_for_Expense_Entry__c": finished,
            "pse__Allow_Timecards_Without_Assignment__c": False, "pse__Bookings__c": float(deal.amount),
            "CurrencyIsoCode": deal.account.market.currency, "pse__Description__c": deal.name})
        for milestone in project.milestones:
            self._write_milestone(project, record_id, milestone)
        for worker in project.team:
            self._write_assignment(project, record_id, worker, finished)

    def _write_milestone(self, project: Project, project_id: str, milestone: Milestone) -> None:
        done = milestone.completed_at is not None
        status = "Approved" if done else "Open" if milestone.state == "started" else "Planned"
        updated = max(milestone.completed_at, project.created) if done else project.created
        self._write(pse.MILESTONE, self._id(pse.MILESTONE), project.created, updated, {
            "Name": milestone.title, "pse__Project__c": project_id, "pse__Target_Date__c": milestone.due.isoformat(),
            "pse__Actual_Date__c": milestone.completed_at.date().isoformat() if done else None,
            "pse__Status__c": status, "pse__Milestone_Amount__c": milestone.budget_cents / 100,
            "pse__Approved__c": done, "pse__Approved_for_Billing__c": done, "pse__Include_In_Financials__c": done,
            "pse__Billed__c": False, "pse__Closed_for_Time_Entry__c": done, "pse__Closed_for_Expense_Entry__c": done,
            "CurrencyIsoCode": project.deal.account.market.currency})

    def _write_assignment(self, project: Project, project_id: str, worker: Worker, finished: bool) -> None:
        deal, resource = project.deal, self.contacts[worker.user_id]
        record_id = self.assignments[(project.id, worker.user_id)] = self._id(pse.ASSIGNMENT)
        role = worker.role_on(project.first_day)
        self._write(pse.ASSIGNMENT, record_id, project.created, project.created, {
            "Name": f"{worker.name} - {deal.name}"[:80], "pse__Project__c": project_id, "pse__Resource__c": resource,
            "pse__Role__c": role, "pse__Status__c": "Closed" if finished else "Scheduled",
            "pse__Bill_Rate__c": project.card.rates[role] / 100, "pse__Cost_Rate_Amount__c": self.cost_rates[resource],
            "pse__Is_Billable__c": True, "pse__Start_Date__c": deal.start.isoformat(),
            "pse__End_Date__c": deal.end.isoformat(), "pse__Closed_for_Time_Entry__c": finished,
            "pse__Closed_for_Expense_Entry__c": finished, "CurrencyIsoCode": deal.account.market.currency})

    # -- the week's time and expenses ------------------------------------------------------
    def week(self, activity: _Activity, obj: str, project: Project, monday: int, lines: list[_Line]) -> None:
        """The week's Kantata lines of one project as Certinia records: timecards or expenses."""
        if obj == "time_entries":
            groups: dict[tuple[str, str, bool], list[_Line]] = defaultdict(list)
            for line in lines:
                groups[(line.body["user_id"], line.status, bool(line.body["billable"]))].append(line)
            for (user_id, status, billable), members in groups.items():
                self._write_timecard(activity, project, monday, user_id, status, billable, members)
        else:
            for line in lines:
                self._write_expense(activity, project, line)

    @staticmethod
    def _moments(activity: _Activity, status: str, members: list[_Line]) -> tuple[datetime, datetime]:
        """(created, last changed): saved when logged, changed when submitted, then when decided."""
        created = min(line.created for line in members)
        if status == "draft":
            changed = max(line.created for line in members)
        elif status in ("approved", "rejected"):
            changed = max(line.decided or line.submitted for line in members)
        else:
            changed = max(line.submitted for line in members)
        return activity.as_datetime(created), activity.as_datetime(changed)

    def _write_timecard(self, activity: _Activity, project: Project, monday: int, user_id: str, status: str,
                        billable: bool, members: list[_Line]) -> None:
        hours = [0] * 7
        for line in members:
            hours[date.fromisoformat(line.body["date_performed"]).toordinal() - monday] += line.body["time_in_minutes"]
        resource = self.contacts[user_id]
        created, changed = self._moments(activity, status, members)
        approved = status == "approved"
        fields: dict[str, Any] = {
            "Name": self._auto_name(pse.TIMECARD.name), "pse__Resource__c": resource,
            "pse__Project__c": self.projects[project.id],
            "pse__Assignment__c": self.assignments.get((project.id, user_id)),
            "pse__Start_Date__c": activity.day_text(monday), "pse__End_Date__c": activity.day_text(monday + 6),
            **{f"pse__{day}_Hours__c": minutes / 60 for day, minutes in zip(pse.WEEKDAYS, hours, strict=True)},
            "pse__Status__c": _STATUS[status], "pse__Billable__c": billable, "pse__Submitted__c": status != "draft",
            "pse__Approved__c": approved, "pse__Include_In_Financials__c": approved, "pse__Billed__c": False,
            "pse__Bill_Rate__c": members[0].body["rate_in_cents"] / 100,
            "pse__Cost_Rate_Amount__c": self.cost_rates[resource],
            "pse__Timecard_Notes__c": members[0].body["notes"], "CurrencyIsoCode": members[0].body["currency"]}
        pse.derive(pse.TIMECARD.name, fields)
        self._write(pse.TIMECARD, self._id(pse.TIMECARD), created, changed, fields)

    def _write_expense(self, activity: _Activity, project: Project, line: _Line) -> None:
        body, resource = line.body, self.contacts[line.body["user_id"]]
        created, changed = self._moments(activity, line.status, [line])
        approved = line.status == "approved"
        self._write(pse.EXPENSE, self._id(pse.EXPENSE), created, changed, {
            "Name": self._auto_name(pse.EXPENSE.name), "pse__Resource__c": resource,
            "pse__Project__c": self.projects[project.id],
            "pse__Assignment__c": self.assignments.get((project.id, body["user_id"])),
            "pse__Expense_Date__c": body["date"], "pse__Type__c": _EXPENSE_TYPES[body["category"]],
            "pse__Amount__c": body["amount_in_cents"] / 100, "pse__Status__c": _EXPENSE_STATUS[line.status],
            "pse__Billable__c": body["is_billable"], "pse__Submitted__c": line.status != "draft",
            "pse__Approved__c": approved, "pse__Include_In_Financials__c": approved, "pse__Billed__c": False,
            "pse__Non_Reimbursible__c": not body["reimbursable"], "pse__Description__c": body["notes"],
            "CurrencyIsoCode": body["currency"]})

    def finish(self) -> dict[str, int]:
        """The auto-number counters reached, for the org to continue from (object -> last number)."""
        return dict(self.auto_numbers)
