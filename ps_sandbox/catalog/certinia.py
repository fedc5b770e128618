"""Certinia PSA (the ``pse__`` managed package) as the Salesforce org carries it once installed.

Certinia's Professional Services Automation is a managed package on the Salesforce platform: its
objects are custom objects of the org (namespace ``pse__``), read through the same REST API,
SOQL, describe and limits as the org's standard objects. So the sandbox serves them from its one
Salesforce emulation (``ps_sandbox.platforms.salesforce``), which adds this module's objects and
the package's Contact fields when the org has the package installed.

Objects and fields come from Certinia's "Professional Services Automation Data Dictionary"
(help.certinia.com/TechnicalReference/2025.3/ProfessionalServicesAutomation/Schema/): the pages
``pse__Proj__c.htm`` (Project), ``pse__Milestone__c.htm``, ``pse__Assignment__c.htm``,
``pse__Timecard_Header__c.htm`` (Timecard; per-day hours, status, billable, resource, project,
assignment, start and end date), ``pse__Expense__c.htm``, ``pse__Rate_Card__c.htm`` (resource role,
region/practice, suggested bill rate, average cost rate, start/end date), ``pse__Region__c.htm``,
``pse__Practice__c.htm`` and ``Contact.htm`` (the package's resource fields: Is Resource, Is
Resource Active, Salesforce User, Default Cost Rate, Resource Role, Region, Practice, Start and
Last Date); and the field pages of the PSA help (help.certinia.com/main/2025.1/Content/PSA/
Features/...: Timecard Fields, Milestone Fields, Rate Card Fields, PSA Resource Fields). As with
the standard objects, each object holds a realistic subset of its fields.

The firm's own field on Project (a subscriber's custom field on a package object carries no
namespace): ``CRM_Deal_Id__c``, text(40) with the External ID and Unique attributes, holding the
CRM deal the project was activated for. Salesforce's "Custom Field Attributes" (help.salesforce.com,
id=sf.custom_field_attributes.htm: "External ID ... the field can be used ... as a key in upsert")
and the REST API's "Insert or Update (Upsert) a Record Using an External ID"
(developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api/dome_upsert.htm) make such a field
the key of ``PATCH /sobjects/pse__Proj__c/CRM_Deal_Id__c/<deal id>``: the write-back's create
is an upsert, so a retry after a lost answer updates the project instead of making a second one.
A HubSpot deal has no Salesforce record ``pse__Opportunity__c`` could name; this field works for
either CRM.

Picklist values are the org's to edit in Setup; the ones here are the package's shipped values
where the data dictionary lists them, and the firm's own role names for ``Resource Role``. Key
prefixes of custom objects are assigned per org when the package is installed: these are this
org's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ps_sandbox.catalog.salesforce import (
    FieldSpec,
    SObjectSpec,
    _area,
    _currency_iso_code,
    _custom,
    _owner,
    _pick,
    _read_only,
    _ref,
    _system_fields,
    _text,
)

PACKAGE = "certinia"
NAMESPACE = "pse__"
DEAL_ID_FIELD = "CRM_Deal_Id__c"  # the firm's external-id field on Project (module docstring)
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# The firm's resource roles (the Resource Role picklist is edited per org; Certinia ships
# Consultant, Project Manager, ... as examples).
RESOURCE_ROLES = ("Partner", "Director", "Senior Manager", "Manager", "Senior Consultant", "Consultant", "Analyst")
# Timecard Status: Saved (draft), Submitted, Approved, Rejected (PSA help, "Timecard Fields").
TIMECARD_STATUSES = ("Saved", "Submitted", "Approved", "Rejected")
EXPENSE_STATUSES = ("Draft", "Submitted", "Approved", "Rejected")
MILESTONE_STATUSES = ("Planned", "Open", "Approved", "Canceled")
PROJECT_STAGES = ("Draft", "Planned", "In Progress", "Completed", "Canceled")
BILLING_TYPES = ("Time and Materials", "Fixed Price", "Mixed")
ASSIGNMENT_STATUSES = ("Tentative", "Scheduled", "Closed")
# Expense Type as the data dictionary lists it (Expense Limit / Rate and Expense pages).
EXPENSE_TYPES = ("Airfare", "Auto Mileage", "Business Meals", "Car Rental", "IT Equipment and Services",
                 "Lodging (Room and Tax)", "Miscellaneous", "Personal Meals", "Phone", "Taxi")


def _pse(spec: FieldSpec) -> FieldSpec:
    """A package field: namespaced, custom, and (for lookups) with a namespaced ``__r`` relationship."""
    relationship = spec.relationship_name
    if relationship is not None and not relationship.endswith("__r"):
        relationship = f"{NAMESPACE}{relationship}__r"
    return FieldSpec(**{**spec.__dict__, "name": NAMESPACE + spec.name, "custom": True,
                        "relationship_name": relationship,
                        "reference_to": tuple(_object_name(t) for t in spec.reference_to)})


def _object_name(name: str) -> str:
    return name if name in ("Account", "Contact", "Opportunity", "User") else NAMESPACE + name


def _number(name: str, label: str, **kw: Any) -> FieldSpec:
    return FieldSpec(name, "double", label, **kw)


def _money(name: str, label: str, **kw: Any) -> FieldSpec:
    return FieldSpec(name, "currency", label, **kw)


def _flag(name: str, label: str) -> FieldSpec:
    # Checkboxes are never null and default to false (Field Types, "checkbox").
    return FieldSpec(name, "boolean", label, nillable=False, defaulted_on_create=True)


def _day(name: str, label: str, **kw: Any) -> FieldSpec:
    return FieldSpec(name, "date", label, **kw)


def _lookup(name: str, label: str, target: str, **kw: Any) -> FieldSpec:
    return _ref(name, label, target, name.removesuffix("__c"), **kw)


def _object(name: str, label: str, plural: str, prefix: str, fields: tuple[FieldSpec, ...],
            name_field: FieldSpec, owned: bool = True, tenant: tuple[FieldSpec, ...] = ()) -> SObjectSpec:
    """A package object: system fields, its Name, owner (unless master-detail) and currency,
    then the package's fields and the firm's own (``tenant``, not namespaced)."""
    standard = (*_system_fields(), name_field, *((_owner(),) if owned else ()), _currency_iso_code())
    return SObjectSpec(NAMESPACE + name, label, plural, prefix,
                       (*standard, *(_pse(f) for f in fields), *(_custom(f) for f in tenant)), custom=True)


def _auto_number(label: str) -> FieldSpec:
    # An auto-number Name: Salesforce assigns it on create, nobody writes it.
    return _read_only(_text("Name", label, 80), calculated=True, nillable=False)


REGION = _object("Region__c", "Region", "Regions", "aA1", (
    _lookup("Parent_Region__c", "Parent Region", "Region__c"),
    _lookup("Region_Head__c", "Region Head", "Contact"),
    _area("Notes__c", "Notes", 255),
    _text("Region_ID_Chain__c", "Region ID Chain", 255),
    _text("Hierarchy_Depth__c", "Hierarchy Depth", 10),
), _text("Name", "Region Name", 80, nillable=False))

PRACTICE = _object("Practice__c", "Practice", "Practices", "aA2", (
    _lookup("Parent_Practice__c", "Parent Practice", "Practice__c"),
    _lookup("Practice_Head__c", "Practice Head", "Contact"),
    _area("Notes__c", "Notes", 255),
), _text("Name", "Practice Name", 80, nillable=False))

PROJECT = _object("Proj__c", "Project", "Projects", "aA3", (
    _lookup("Account__c", "Account", "Account"),
    _lookup("Opportunity__c", "Opportunity", "Opportunity"),
    _lookup("Region__c", "Region", "Region__c"),
    _lookup("Practice__c", "Practice", "Practice__c"),
    _lookup("Project_Manager__c", "Project Manager", "Contact"),
    _lookup("Parent_Project__c", "Parent Project", "Proj__c"),
    _day("Start_Date__c", "Start Date"),
    _day("End_Date__c", "End Date"),
    _pick("Stage__c", "Stage", PROJECT_STAGES),
    _pick("Project_Status__c", "Project Status", ("Green", "Yellow", "Red")),
    _pick("Billing_Type__c", "Billing Type", BILLING_TYPES),
    _pick("Project_Type__c", "Project Type", ("Customer Project", "Internal")),
    _flag("Is_Active__c", "Active"),
    _flag("Is_Billable__c", "Billable"),
    _flag("Closed_for_Time_Entry__c", "Closed for Time Entry"),
    _flag("Closed_for_Expense_Entry__c", "Closed for Expense Entry"),
    _flag("Allow_Timecards_Without_Assignment__c", "Allow Timecards Without Assignment"),
    _money("Bookings__c", "Bookings"),
    _money("Billings__c", "Billings"),
    _number("Planned_Hours__c", "Planned Hours"),
    _area("Description__c", "Description", 255),
), _text("Name", "Project Name", 80, nillable=False),
    tenant=(_text(DEAL_ID_FIELD, "CRM Deal ID", 40, external_id=True, unique=True),))

MILESTONE = _object("Milestone__c", "Milestone", "Milestones", "aA4", (
    _lookup("Project__c", "Project", "Proj__c", nillable=False),  # master-detail: the project owns it
    _day("Target_Date__c", "Target Date", nillable=False),
    _day("Actual_Date__c", "Actual Date"),
    _pick("Status__c", "Status", MILESTONE_STATUSES),
    _money("Milestone_Amount__c", "Milestone Amount"),
    _flag("Approved__c", "Approved"),
    _flag("Approved_for_Billing__c", "Approved for Billing"),
    _flag("Include_In_Financials__c", "Include In Financials"),
    _flag("Billed__c", "Billed"),
    _flag("Closed_for_Time_Entry__c", "Closed for Time Entry"),
    _flag("Closed_for_Expense_Entry__c", "Closed for Expense Entry"),
    _number("Planned_Hours__c", "Planned Hours"),
    _area("Description__c", "Description", 255),
), _text("Name", "Milestone Name", 80, nillable=False), owned=False)

ASSIGNMENT = _object("Assignment__c", "Assignment", "Assignments", "aA5", (
    _lookup("Project__c", "Project", "Proj__c", nillable=False),
    _lookup("Resource__c", "Resource", "Contact", nillable=False),
    _lookup("Milestone__c", "Milestone", "Milestone__c"),
    _pick("Role__c", "Role", RESOURCE_ROLES),
    _pick("Status__c", "Status", ASSIGNMENT_STATUSES),
    _money("Bill_Rate__c", "Bill Rate"),
    _money("Cost_Rate_Amount__c", "Cost Rate Amount"),
    _flag("Is_Billable__c", "Billable"),
    _day("Start_Date__c", "Start Date"),
    _day("End_Date__c", "End Date"),
    _number("Planned_Hours__c", "Planned Hours"),
    _flag("Closed_for_Time_Entry__c", "Closed for Time Entry"),
    _flag("Closed_for_Expense_Entry__c", "Closed for Expense Entry"),
), _text("Name", "Assignment Name", 80, nillable=False))

TIMECARD = _object("Timecard_Header__c", "Timecard", "Timecards", "aA6", (
    _lookup("Resource__c", "Resource", "Contact", nillable=False),
    _lookup("Project__c", "Project", "Proj__c", nillable=False),
    _lookup("Assignment__c", "Assignment", "Assignment__c"),
    _lookup("Milestone__c", "Milestone", "Milestone__c"),
    _day("Start_Date__c", "Start Date", nillable=False),
    _day("End_Date__c", "End Date", nillable=False),
    *(_number(f"{day}_Hours__c", f"{day} Hours", nillable=False, defaulted_on_create=True) for day in WEEKDAYS),
    *(_area(f"{day}_Notes__c", f"{day} Notes", 255) for day in WEEKDAYS),
    # Roll-up of the seven days (a formula: never written).
    _read_only(_number("Total_Hours__c", "Total Hours"), calculated=True),
    _pick("Status__c", "Status", TIMECARD_STATUSES, nillable=False, defaulted_on_create=True),
    _flag("Billable__c", "Billable"),
    _flag("Submitted__c", "Submitted"),
    _flag("Approved__c", "Approved"),
    _flag("Include_In_Financials__c", "Include In Financials"),
    _flag("Billed__c", "Billed"),
    _money("Bill_Rate__c", "Bill Rate"),
    _money("Cost_Rate_Amount__c", "Cost Rate Amount"),
    _read_only(_money("Total_Billable_Amount__c", "Total Billable Amount"), calculated=True),
    _lookup("Approver__c", "Approver", "User"),
    _area("Timecard_Notes__c", "Timecard Notes", 255),
), _auto_number("Timecard ID"))

EXPENSE = _object("Expense__c", "Expense", "Expenses", "aA7", (
    _lookup("Resource__c", "Resource", "Contact", nillable=False),
    _lookup("Project__c", "Project", "Proj__c"),
    _lookup("Assignment__c", "Assignment", "Assignment__c"),
    _lookup("Milestone__c", "Milestone", "Milestone__c"),
    _day("Expense_Date__c", "Expense Date", nillable=False),
    _pick("Type__c", "Type", EXPENSE_TYPES, nillable=False),
    _money("Amount__c", "Amount"),
    _pick("Status__c", "Status", EXPENSE_STATUSES, nillable=False, defaulted_on_create=True),
    _flag("Billable__c", "Billable"),
    _flag("Submitted__c", "Submitted"),
    _flag("Approved__c", "Approved"),
    _flag("Include_In_Financials__c", "Include In Financials"),
    _flag("Billed__c", "Billed"),
    _flag("Non_Reimbursible__c", "Non-Reimbursable"),
    _area("Description__c", "Description", 255),
), _auto_number("Expense Number"))

RATE_CARD = _object("Rate_Card__c", "Rate Card", "Rate Cards", "aA8", (
    _pick("Role__c", "Resource Role", RESOURCE_ROLES),
    _lookup("Region__c", "Region", "Region__c"),
    _lookup("Practice__c", "Practice", "Practice__c"),
    _lookup("Account__c", "Account", "Account"),
    _money("Suggested_Bill_Rate__c", "Suggested Bill Rate", nillable=False, defaulted_on_create=True),
    _money("Average_Cost_Rate__c", "Average Cost Rate", nillable=False, defaulted_on_create=True),
    _day("Start_Date__c", "Start Date"),
    _day("End_Date__c", "End Date"),
    _flag("Cascading_Role__c", "Cascading Role"),
), _auto_number("Rate Card Number"))

# The package's fields on the standard Contact: a resource is a contact flagged as one
# (Data Dictionary, "Contact"; PSA help, "PSA Resource Fields").
CONTACT_FIELDS: tuple[FieldSpec, ...] = tuple(_pse(f) for f in (
    _flag("Is_Resource__c", "Is Resource"),
    _flag("Is_Resource_Active__c", "Is Resource Active"),
    _lookup("Salesforce_User__c", "Salesforce User", "User"),
    _money("Default_Cost_Rate__c", "Default Cost Rate"),
    _pick("Resource_Role__c", "Resource Role", RESOURCE_ROLES),
    _lookup("Region__c", "Region", "Region__c"),
    _lookup("Practice__c", "Practice", "Practice__c"),
    _day("Start_Date__c", "Start Date"),
    _day("Last_Date__c", "Last Date"),
    _flag("Exclude_from_Resource_Planner__c", "Exclude from Resource Planner"),
    _number("Utilization_Target__c", "Utilization Target"),
))

OBJECTS: tuple[SObjectSpec, ...] = (REGION, PRACTICE, PROJECT, MILESTONE, ASSIGNMENT, TIMECARD, EXPENSE, RATE_CARD)
# Auto-number Names: the display format Salesforce fills in on create (object -> format).
AUTO_NUMBERS = {TIMECARD.name: "TC-{:07d}", EXPENSE.name: "EX-{:07d}", RATE_CARD.name: "RC-{:05d}"}


def create_defaults(spec: SObjectSpec) -> dict[str, Any]:
    """What Salesforce fills in on create for the package's fields a request leaves out: unchecked
    checkboxes, zero hours on a timecard's days, and the first status of a timecard or expense."""
    defaults: dict[str, Any] = {f.name: False for f in spec.fields
                                if f.custom and f.type == "boolean" and f.defaulted_on_create}
    if spec.name == TIMECARD.name:
        defaults.update({f"{NAMESPACE}{day}_Hours__c": 0.0 for day in WEEKDAYS}, pse__Status__c="Saved")
    elif spec.name == EXPENSE.name:
        defaults["pse__Status__c"] = "Draft"
    return defaults


def install(objects: Mapping[str, SObjectSpec]) -> dict[str, SObjectSpec]:
    """The org's objects with the package installed: its objects added, its fields on Contact."""
    contact = objects["Contact"]
    with_package = dict(objects)
    with_package["Contact"] = SObjectSpec(contact.name, contact.label, contact.label_plural, contact.key_prefix,
                                          (*contact.fields, *CONTACT_FIELDS), custom=contact.custom)
    with_package.update({spec.name: spec for spec in OBJECTS})
    return with_package


def total_hours(record: Mapping[str, Any]) -> float:
    """A timecard's Total Hours: the sum of its seven day fields."""
    return round(sum(float(record.get(f"{NAMESPACE}{day}_Hours__c") or 0) for day in WEEKDAYS), 2)


def derive(sobject: str, record: dict[str, Any]) -> None:
    """The package's formula fields, recomputed on every save as Salesforce does."""
    if sobject == TIMECARD.name:
        hours = total_hours(record)
        record[f"{NAMESPACE}Total_Hours__c"] = hours
        billable = record.get(f"{NAMESPACE}Billable__c")
        rate = float(record.get(f"{NAMESPACE}Bill_Rate__c") or 0)
        record[f"{NAMESPACE}Total_Billable_Amount__c"] = round(hours * rate, 2) if billable else 0.0
