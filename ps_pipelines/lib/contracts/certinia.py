"""Data contracts for Certinia PSA (the ``pse__`` managed package), read through SOQL ``queryAll``.

Certinia runs inside a Salesforce org: its objects are the org's custom objects, read by the one
``SalesforceClient`` (same auth, SOQL, paging, ``getDeleted`` and limits). The contracts carry a
platform name of their own, ``certinia``, so its raw tables (``raw_certinia.*``) and assets stand
beside the CRM's and a resource (a Contact flagged ``pse__Is_Resource__c``) never mixes with the
CRM's customer contacts; the ``certinia`` resource is a Salesforce connection to the org that runs
the package (often the CRM's own org).

Field meanings follow Certinia's "Professional Services Automation Data Dictionary" and the PSA
help's field pages (Timecard, Milestone, Rate Card, PSA Resource Fields).
"""

from __future__ import annotations

from ps_pipelines.lib.contracts import columns as c
from ps_pipelines.lib.contracts.base import EntityContract
from ps_pipelines.lib.contracts.salesforce import sobject_contract

PLATFORM = "certinia"
# The firm's External ID + Unique text field on pse__Proj__c holding the CRM deal a project was
# activated for (ps_sandbox.catalog.certinia): the write-back upserts projects by it. Not in the
# ingestion contract: an org that activates elsewhere need not have it.
DEAL_ID_FIELD = "CRM_Deal_Id__c"
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
TIMECARD_STATUSES = ("Saved", "Submitted", "Approved", "Rejected")
EXPENSE_STATUSES = ("Draft", "Submitted", "Approved", "Rejected")
MILESTONE_STATUSES = ("Planned", "Open", "Approved", "Canceled")
ASSIGNMENT_STATUSES = ("Tentative", "Scheduled", "Closed")
BILLING_TYPES = ("Time and Materials", "Fixed Price", "Mixed")
# Hours on one day of a timecard: a day has 24 of them, and negative time is no work done.
MAX_HOURS_PER_DAY = 24


def _contract(entity: str, sobject: str, fields: tuple[str, ...], cols: dict, description: str,
              source_filter: str | None = None) -> EntityContract:
    return sobject_contract(entity, sobject, fields, cols, description, platform=PLATFORM,
                            source_filter=source_filter)


def _currency(what: str) -> dict:
    return {"currencyisocode": c.currency(description=f"ISO 4217 code of the currency of the {what}'s amounts.")}


def _flags(**meanings: str) -> dict:
    return {f"pse__{name.lower()}__c": c.flag(description=meaning) for name, meaning in meanings.items()}


def _closed_flags(what: str) -> dict:
    return _flags(Closed_for_Time_Entry=f"Checked when no more timecards may be logged on the {what}.",
                  Closed_for_Expense_Entry=f"Checked when no more expenses may be logged on the {what}.")


def _approval_flags(what: str) -> dict:
    return _flags(
        Submitted=f"Checked once the {what} is submitted for approval.",
        Approved=f"Checked once the {what} is approved.",
        Include_In_Financials=f"Checked when the {what} counts in the project's actuals and billing "
                              "(set on approval).",
        Billed=f"Checked once billing has invoiced the {what}.",
    )


PROJECTS = _contract(
    "projects",
    "pse__Proj__c",
    ("Name", "OwnerId", "CurrencyIsoCode", "pse__Account__c", "pse__Opportunity__c", "pse__Region__c",
     "pse__Practice__c", "pse__Project_Manager__c", "pse__Parent_Project__c", "pse__Start_Date__c",
     "pse__End_Date__c", "pse__Stage__c", "pse__Project_Status__c", "pse__Billing_Type__c",
     "pse__Project_Type__c", "pse__Is_Active__c", "pse__Is_Billable__c", "pse__Closed_for_Time_Entry__c",
     "pse__Closed_for_Expense_Entry__c", "pse__Allow_Timecards_Without_Assignment__c", "pse__Bookings__c",
     "pse__Billings__c", "pse__Planned_Hours__c", "pse__Description__c", DEAL_ID_FIELD),
    {
        "name": c.text(required=True, description="Project name."),
        "ownerid": c.text(description="Id of the user who owns the project record."),
        **_currency("project"),
        "pse__account__c": c.text(description="Id of the Salesforce Account (customer) the project is for."),
        "pse__opportunity__c": c.text(description="Id of the Salesforce Opportunity the project was sold as."),
        "pse__region__c": c.text(description="Id of the PSA region (pse__Region__c) that delivers the project."),
        "pse__practice__c": c.text(description="Id of the PSA practice (pse__Practice__c) the project belongs to."),
        "pse__project_manager__c": c.text(description="Contact Id of the resource who manages the project."),
        "pse__parent_project__c": c.text(description="Id of the parent project, for a sub-project."),
        "pse__start_date__c": c.date(description="Planned first day of the project."),
        "pse__end_date__c": c.date(description="Planned last day of the project."),
        "pse__stage__c": c.text(description="Project stage picklist (e.g. Draft, Planned, In Progress, Completed)."),
        "pse__project_status__c": c.text(description="Health of the project (Green, Yellow, Red)."),
        "pse__billing_type__c": c.text(
            isin=BILLING_TYPES, description="How the project bills: Time and Materials, Fixed Price or Mixed."),
        "pse__project_type__c": c.text(description="Project type picklist (e.g. Customer Project, Internal)."),
        **_flags(Is_Active="Checked while the project is active; time and expenses can be logged only then.",
                 Is_Billable="Checked when the project's work is billable to the customer.",
                 Allow_Timecards_Without_Assignment="Checked when resources may log time without being assigned."),
        **_closed_flags("project"),
        "pse__bookings__c": c.number(
            min_value=0, description="Total booked (sold) value of the project, in its currency."),
        "pse__billings__c": c.number(description="Total billed on the project so far, in its currency."),
        "pse__planned_hours__c": c.number(min_value=0, description="Hours planned for the whole project."),
        "pse__description__c": c.text(description="Free-text description of the project."),
        DEAL_ID_FIELD.lower(): c.text(description="The firm's External ID field: the CRM deal the activation "
                                                  "created the project for (a HubSpot deal id, or an Opportunity Id)."),
    },
    "Certinia PSA projects (pse__Proj__c): delivery of a won opportunity, with its region, practice and "
    "billing type.",
)

MILESTONES = _contract(
    "milestones",
    "pse__Milestone__c",
    ("Name", "CurrencyIsoCode", "pse__Project__c", "pse__Target_Date__c", "pse__Actual_Date__c",
     "pse__Status__c", "pse__Milestone_Amount__c", "pse__Approved__c", "pse__Approved_for_Billing__c",
     "pse__Include_In_Financials__c", "pse__Billed__c", "pse__Closed_for_Time_Entry__c",
     "pse__Closed_for_Expense_Entry__c", "pse__Planned_Hours__c", "pse__Description__c"),
    {
        "name": c.text(required=True, description="Milestone name."),
        **_currency("milestone"),
        "pse__project__c": c.text(
            required=True, description="Id of the project the milestone belongs to (master-detail)."),
        "pse__target_date__c": c.date(required=True, description="Date the milestone is due."),
        "pse__actual_date__c": c.date(description="Date the milestone was actually reached."),
        "pse__status__c": c.text(
            isin=MILESTONE_STATUSES, description="Milestone status picklist (Planned, Open, Approved, Canceled)."),
        "pse__milestone_amount__c": c.number(
            min_value=0, description="Amount billed when the milestone is reached, in its currency."),
        **_flags(Approved="Checked once the milestone is approved as complete.",
                 Approved_for_Billing="Checked when the milestone's amount may be invoiced.",
                 Include_In_Financials="Checked when the milestone counts in the project's actuals and billing.",
                 Billed="Checked once billing has invoiced the milestone."),
        **_closed_flags("milestone"),
        "pse__planned_hours__c": c.number(min_value=0, description="Hours planned to reach the milestone."),
        "pse__description__c": c.text(description="Free-text description of the deliverable."),
    },
    "Certinia PSA milestones (pse__Milestone__c): fixed-price deliverables of a project, billable once approved.",
)

ASSIGNMENTS = _contract(
    "assignments",
    "pse__Assignment__c",
    ("Name", "CurrencyIsoCode", "pse__Project__c", "pse__Resource__c", "pse__Milestone__c", "pse__Role__c",
     "pse__Status__c", "pse__Bill_Rate__c", "pse__Cost_Rate_Amount__c", "pse__Is_Billable__c",
     "pse__Start_Date__c", "pse__End_Date__c", "pse__Planned_Hours__c", "pse__Closed_for_Time_Entry__c",
     "pse__Closed_for_Expense_Entry__c"),
    {
        "name": c.text(required=True, description="Assignment name."),
        **_currency("assignment"),
        "pse__project__c": c.text(required=True, description="Id of the project the resource is staffed on."),
        "pse__resource__c": c.text(required=True, description="Contact Id of the staffed resource."),
        "pse__milestone__c": c.text(description="Id of the milestone the assignment works towards, if any."),
        "pse__role__c": c.text(description="Resource role the resource plays on the project (e.g. Consultant)."),
        "pse__status__c": c.text(
            isin=ASSIGNMENT_STATUSES, description="Assignment status picklist (Tentative, Scheduled, Closed)."),
        "pse__bill_rate__c": c.number(min_value=0, description="Hourly rate billed for the resource's time."),
        "pse__cost_rate_amount__c": c.number(min_value=0, description="Hourly cost of the resource's time."),
        **_flags(Is_Billable="Checked when time logged on the assignment is billable."),
        "pse__start_date__c": c.date(description="First day of the assignment."),
        "pse__end_date__c": c.date(description="Last day of the assignment."),
        "pse__planned_hours__c": c.number(min_value=0, description="Hours the resource is scheduled for."),
        **_closed_flags("assignment"),
    },
    "Certinia PSA assignments (pse__Assignment__c): a resource staffed on a project, with role and rates.",
)

_DAY_HOURS = {
    f"pse__{day.lower()}_hours__c": c.number(
        required=True, min_value=0, max_value=MAX_HOURS_PER_DAY,
        description=f"Hours worked on the {day} of the timecard's week (0-24).")
    for day in WEEKDAYS
}

TIMECARDS = _contract(
    "timecards",
    "pse__Timecard_Header__c",
    ("Name", "CurrencyIsoCode", "pse__Resource__c", "pse__Project__c", "pse__Assignment__c", "pse__Milestone__c",
     "pse__Start_Date__c", "pse__End_Date__c", *(f"pse__{day}_Hours__c" for day in WEEKDAYS),
     "pse__Total_Hours__c", "pse__Status__c", "pse__Billable__c", "pse__Submitted__c", "pse__Approved__c",
     "pse__Include_In_Financials__c", "pse__Billed__c", "pse__Bill_Rate__c", "pse__Cost_Rate_Amount__c",
     "pse__Total_Billable_Amount__c", "pse__Approver__c", "pse__Timecard_Notes__c",
     *(f"pse__{day}_Notes__c" for day in WEEKDAYS)),
    {
        "name": c.text(required=True, description="Timecard ID, auto-numbered by Salesforce (e.g. TC-0000001)."),
        **_currency("timecard"),
        "pse__resource__c": c.text(required=True, description="Contact Id of the resource whose time it is."),
        "pse__project__c": c.text(required=True, description="Id of the project the time is logged on."),
        "pse__assignment__c": c.text(description="Id of the assignment the time is logged against."),
        "pse__milestone__c": c.text(description="Id of the milestone the time is logged against, if any."),
        "pse__start_date__c": c.date(required=True, description="First day of the timecard's week."),
        "pse__end_date__c": c.date(required=True, description="Last day of the timecard's week."),
        **_DAY_HOURS,
        "pse__total_hours__c": c.number(
            min_value=0, max_value=7 * MAX_HOURS_PER_DAY,
            description="Sum of the seven day fields (a formula Salesforce computes)."),
        "pse__status__c": c.text(
            required=True, isin=TIMECARD_STATUSES,
            description="Timecard status picklist: Saved (draft), Submitted, Approved or Rejected."),
        **_flags(Billable="Checked when the timecard's hours are billable to the customer."),
        **_approval_flags("timecard"),
        "pse__bill_rate__c": c.number(min_value=0, description="Hourly rate billed for the hours."),
        "pse__cost_rate_amount__c": c.number(min_value=0, description="Hourly cost of the resource's time."),
        "pse__total_billable_amount__c": c.number(
            min_value=0, description="Total hours times bill rate when billable, else 0 (a formula)."),
        "pse__approver__c": c.text(description="Id of the user who approves the timecard."),
        "pse__timecard_notes__c": c.text(description="The resource's notes on the week's work."),
        **{f"pse__{day.lower()}_notes__c": c.text(description=f"The resource's notes on the {day}'s work.")
           for day in WEEKDAYS},
    },
    "Certinia PSA timecards (pse__Timecard_Header__c): one resource's week on one project, hours per day, "
    "status and billable flag.",
)

EXPENSES = _contract(
    "expenses",
    "pse__Expense__c",
    ("Name", "CurrencyIsoCode", "pse__Resource__c", "pse__Project__c", "pse__Assignment__c", "pse__Milestone__c",
     "pse__Expense_Date__c", "pse__Type__c", "pse__Amount__c", "pse__Status__c", "pse__Billable__c",
     "pse__Submitted__c", "pse__Approved__c", "pse__Include_In_Financials__c", "pse__Billed__c",
     "pse__Non_Reimbursible__c", "pse__Description__c"),
    {
        "name": c.text(required=True, description="Expense number, auto-numbered by Salesforce (e.g. EX-0000001)."),
        **_currency("expense"),
        "pse__resource__c": c.text(required=True, description="Contact Id of the resource who spent it."),
        "pse__project__c": c.text(description="Id of the project the expense is charged to."),
        "pse__assignment__c": c.text(description="Id of the assignment the expense is charged to."),
        "pse__milestone__c": c.text(description="Id of the milestone the expense is charged to, if any."),
        "pse__expense_date__c": c.date(required=True, description="Date the expense was incurred."),
        "pse__type__c": c.text(required=True, description="Expense type picklist (e.g. Airfare, Lodging, Taxi)."),
        "pse__amount__c": c.number(description="Amount of the expense, in its currency."),
        "pse__status__c": c.text(
            required=True, isin=EXPENSE_STATUSES,
            description="Expense status picklist: Draft, Submitted, Approved or Rejected."),
        **_flags(Billable="Checked when the expense is re-billed to the customer.",
                 Non_Reimbursible="Checked when the firm does not reimburse the resource (paid by the firm)."),
        **_approval_flags("expense"),
        "pse__description__c": c.text(description="What the expense was for."),
    },
    "Certinia PSA expenses (pse__Expense__c): a resource's expense on a project, billable or not.",
)

RATE_CARDS = _contract(
    "rate_cards",
    "pse__Rate_Card__c",
    ("Name", "CurrencyIsoCode", "pse__Role__c", "pse__Region__c", "pse__Practice__c", "pse__Account__c",
     "pse__Suggested_Bill_Rate__c", "pse__Average_Cost_Rate__c", "pse__Start_Date__c", "pse__End_Date__c",
     "pse__Cascading_Role__c"),
    {
        "name": c.text(required=True, description="Rate card number, auto-numbered by Salesforce."),
        **_currency("rate card"),
        "pse__role__c": c.text(required=True, description="Resource role the rates are for (e.g. Consultant)."),
        "pse__region__c": c.text(description="Id of the region the rates apply in."),
        "pse__practice__c": c.text(description="Id of the practice the rates apply in."),
        "pse__account__c": c.text(description="Id of the Account the rates are negotiated with, if customer-specific."),
        "pse__suggested_bill_rate__c": c.number(
            required=True, min_value=0, description="Hourly rate suggested when staffing the role."),
        "pse__average_cost_rate__c": c.number(
            required=True, min_value=0, description="Average hourly cost of the role."),
        "pse__start_date__c": c.date(description="First day the rates are in effect."),
        "pse__end_date__c": c.date(description="Last day the rates are in effect."),
        **_flags(Cascading_Role="Checked when the rates also apply to the region's and practice's children."),
    },
    "Certinia PSA rate cards (pse__Rate_Card__c): bill and cost rates per role, region or practice and period.",
)

REGIONS = _contract(
    "regions",
    "pse__Region__c",
    ("Name", "pse__Parent_Region__c", "pse__Region_Head__c", "pse__Region_ID_Chain__c", "pse__Hierarchy_Depth__c",
     "pse__Notes__c"),
    {
        "name": c.text(required=True, description="Region name."),
        "pse__parent_region__c": c.text(description="Id of the parent region (regions form a hierarchy)."),
        "pse__region_head__c": c.text(description="Contact Id of the resource who heads the region."),
        "pse__region_id_chain__c": c.text(description="Ids of the region's ancestors, top first (set by Certinia)."),
        "pse__hierarchy_depth__c": c.text(description="Depth of the region in its hierarchy (set by Certinia)."),
        "pse__notes__c": c.text(description="Free-text notes on the region."),
    },
    "Certinia PSA regions (pse__Region__c): the geographic hierarchy resources and projects belong to.",
)

PRACTICES = _contract(
    "practices",
    "pse__Practice__c",
    ("Name", "pse__Parent_Practice__c", "pse__Practice_Head__c", "pse__Notes__c"),
    {
        "name": c.text(required=True, description="Practice name."),
        "pse__parent_practice__c": c.text(description="Id of the parent practice (practices form a hierarchy)."),
        "pse__practice_head__c": c.text(description="Contact Id of the resource who heads the practice."),
        "pse__notes__c": c.text(description="Free-text notes on the practice."),
    },
    "Certinia PSA practices (pse__Practice__c): the service-line hierarchy resources and projects belong to.",
)

RESOURCES = _contract(
    "resources",
    "Contact",
    ("AccountId", "FirstName", "LastName", "Email", "Title", "CurrencyIsoCode", "pse__Is_Resource__c",
     "pse__Is_Resource_Active__c", "pse__Salesforce_User__c", "pse__Default_Cost_Rate__c",
     "pse__Resource_Role__c", "pse__Region__c", "pse__Practice__c", "pse__Start_Date__c", "pse__Last_Date__c",
     "pse__Utilization_Target__c", "pse__Exclude_from_Resource_Planner__c"),
    {
        "accountid": c.text(description="Id of the account the resource's contact belongs to (the firm's own)."),
        "firstname": c.text(description="First name."),
        "lastname": c.text(required=True, description="Last name."),
        "email": c.text(regex=c.EMAIL, description="Email address."),
        "title": c.text(description="Job title."),
        "currencyisocode": c.currency(
            required=False, description="ISO 4217 code of the currency of the resource's cost rate."),
        **_flags(Is_Resource="Checked for a contact who is a PSA resource (always, given the query's filter).",
                 Is_Resource_Active="Checked while the resource can be staffed and log time.",
                 Exclude_from_Resource_Planner="Checked to hide the resource from the resource planner."),
        "pse__salesforce_user__c": c.text(description="Id of the Salesforce user who logs in as the resource."),
        "pse__default_cost_rate__c": c.number(min_value=0, description="The resource's hourly cost."),
        "pse__resource_role__c": c.text(description="The resource's role (e.g. Consultant, Manager)."),
        "pse__region__c": c.text(description="Id of the region the resource belongs to."),
        "pse__practice__c": c.text(description="Id of the practice the resource belongs to."),
        "pse__start_date__c": c.date(description="The resource's first day."),
        "pse__last_date__c": c.date(description="The resource's last day, once leaving."),
        "pse__utilization_target__c": c.number(
            min_value=0, max_value=100, description="Share of the resource's hours expected to be billable, in %."),
    },
    "Certinia PSA resources: the Contacts flagged pse__Is_Resource__c, the people who are staffed and log time "
    "(the CRM's customer contacts are not read here).",
    source_filter="pse__Is_Resource__c = TRUE",
)

ALL = (REGIONS, PRACTICES, RESOURCES, RATE_CARDS, PROJECTS, MILESTONES, ASSIGNMENTS, TIMECARDS, EXPENSES)
