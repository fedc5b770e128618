"""Data contracts for Kantata (Mavenlink API v1) PSA objects.

Kantata answers ids as strings and money in integer cents (``*_in_cents``); both are kept
as the API gives them and converted in dbt staging.

The pipeline reads only attributes Kantata documents (mavenlink_gem
``lib/config/specification.yml`` and developer.kantata.com; see ``ps_sandbox/catalog/kantata.py``).
What it needs from a related object is side-loaded with ``include=`` and folded into the record
it belongs to under the association's name (``NESTED``), so the raw column keeps the API's
names: ``recent_submission_status`` is the ``status`` of the time entry's ``recent_submission``.

- The workspace's CRM opportunity is its external reference from Salesforce
  (``external_reference_service_model_ref``, ``OPPORTUNITY_REFERENCE``).
- Approval of time and expenses lives on their submissions (``approval_status``).
- A milestone's completion time is the ``created_at`` of its latest story state change to
  ``completed`` (Kantata's audit trail of a story's states).
- Rate cards are read as rate card versions (``RATE_CARD_VERSIONS``): their card, their set
  version's effective date and their rate card roles with the role names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ps_pipelines.lib.contracts import columns as c
from ps_pipelines.lib.contracts.base import EntityContract

APPROVAL_STATUSES = ("draft", "submitted", "approved", "rejected")
STORY_STATES = ("not started", "started", "completed")
# developer.kantata.com, Timesheet Submissions / Expense Report Submissions: a submission's
# ``status`` is 'approved', 'rejected', 'cancelled' or 'pending'.
SUBMISSION_STATUSES = ("pending", "approved", "rejected", "cancelled")


@dataclass(frozen=True)
class OpportunityReference:
    """How a workspace names the CRM opportunity it delivers: a Kantata external reference.

    developer.kantata.com, External References: ``service_name`` is "the provider name of the
    integration", ``service_model`` "the type of the external object", ``service_model_ref`` "the
    ID of the external object"; a workspace takes one inline when it is created
    (``external_reference`` among the workspace create attributes, mavenlink_gem specification)
    and ``GET /workspaces`` filters on ``external_reference_service_name`` /
    ``_service_model`` / ``_service_model_refs``. One reference per service name on an object.
    """

    service_name: str = "Salesforce"
    service_model: str = "Opportunity"

    def for_opportunity(self, opportunity_id: str) -> dict[str, str]:
        """The inline ``external_reference`` of a workspace created for ``opportunity_id``."""
        return {
            "service_name": self.service_name,
            "service_model": self.service_model,
            "service_model_ref": opportunity_id,
            "status": "successful",
        }

    def filters(self, opportunity_ids: list[str]) -> dict[str, str]:
        """``GET /workspaces`` filters for the workspaces of up to 200 opportunities."""
        return {
            "external_reference_service_name": self.service_name,
            "external_reference_service_model": self.service_model,
            "external_reference_service_model_refs": ",".join(opportunity_ids),
        }

    def matches(self, reference: Mapping[str, Any]) -> bool:
        return (
            reference.get("service_name") == self.service_name and reference.get("service_model") == self.service_model
        )


OPPORTUNITY_REFERENCE = OpportunityReference()


@dataclass(frozen=True)
class Nested:
    """A related object read with ``include=<association>`` and folded into its record as ``name``.

    ``foreign_key`` is the record's attribute holding the related id(s); ``match`` keeps only
    related objects with those attribute values; of several, the one with the greatest
    ``latest_by`` is kept, unless ``many`` (then the list is kept, each element flattened).
    ``then``: associations of the related object, read with one more request
    (``GET /<collection>?only=<ids>&include=...``) and folded into it the same way.
    """

    association: str
    name: str
    collection: str
    foreign_key: str
    match: Mapping[str, str] = field(default_factory=dict)
    latest_by: str | None = None
    many: bool = False
    then: tuple[Nested, ...] = ()


def _stamps(record: str, *, updated_required: bool = True) -> dict:
    """The ``created_at``/``updated_at`` Kantata documents on ``record``."""
    return {
        "created_at": c.timestamp(description=f"When the {record} was created in Kantata (UTC)."),
        "updated_at": c.timestamp(
            required=updated_required, description=f"When the {record} was last updated in Kantata (UTC)."),
    }


def _submission(kind: str, record: str) -> dict:
    """The columns folded from the latest ``kind`` submission ``record`` was on (``recent_submission``)."""
    return {
        "recent_submission_status": c.text(
            isin=SUBMISSION_STATUSES, description=f"Status of the latest {kind} submission the {record} was on, "
            "rejected and cancelled ones included (pending, approved, rejected or cancelled); null if never "
            "submitted."),
        "recent_submission_current_resolution_created_at_date": c.timestamp(
            description="When that submission's current resolution (its approval, rejection or cancellation) "
            "was made (UTC); the approval time of an approved one."),
    }


def _contract(
    entity: str,
    path: str,
    record: str,
    cols: dict,
    description: str,
    ignored: str = "",
    *,
    audit: bool = True,
    change_column: str | None = "updated_at",
) -> EntityContract:
    stamps = _stamps(record) if audit else {}
    record_id = c.identifier(f"Kantata id of the {record} (a numeric string).")
    return EntityContract(
        platform="kantata",
        entity=entity,
        id_columns=("id",),
        change_column=change_column,
        schema=c.schema(f"kantata.{entity}", {"id": record_id, **cols, **stamps}),
        description=description,
        source_object=path,
        ignored_fields=tuple(ignored.split()),
    )


PROJECTS = _contract(
    "projects",
    "workspaces",
    "workspace",
    {
        "title": c.text(required=True, description="Title of the project (the won opportunity's name when the "
                        "pipeline created it)."),
        "currency": c.currency(description="ISO 4217 code of the project's currency."),
        "price_in_cents": c.number(min_value=0, description="Project budget (price), in subunits of the project "
                                   "currency (e.g. cents for USD)."),
        "start_date": c.date(description="Start date of the project."),
        "due_date": c.date(description="Due date of the project (its planned end)."),
        "status_color": c.text(description="Colour of the project status (e.g. green, yellow, red, grey), from "
                               "the workspace's status hash."),
        "status_key": c.number(description="Numeric key of the project status (e.g. 501 for Cancelled), from the "
                               "status hash."),
        "status_message": c.text(description="Name of the project status (e.g. Active, Completed, Cancelled), from "
                                 "the status hash."),
        "archived": c.flag(description="True when the project is archived."),
        "rate_card_id": c.text(description="Id of the rate card the project's time is billed by."),
        # The opportunity id: the workspace's external reference from Salesforce (NESTED).
        "external_reference_service_model_ref": c.text(
            description="Id of the Salesforce opportunity the project delivers: service_model_ref of the "
            "workspace's external reference with service Salesforce and model Opportunity (the latest, if several)."),
    },
    "Kantata workspaces: delivery projects, linked to the CRM opportunity they came from.",
    # Documented workspace attributes the pipeline does not load (Kantata API v1 specification).
    "description effective_due_date budgeted change_orders_enabled consultant_role_name client_role_name "
    "can_create_line_items default_rate currency_symbol currency_base_unit can_invite has_budget_access price "
    "budget_used over_budget stories_are_fixed_fee_by_default workspace_invoice_preference_id "
    "require_expense_approvals require_time_approvals percentage_complete access_level workspace_group_ids "
    "target_margin primary_maven_id custom_field_value_ids external_reference_ids external_reference_*",
)

TIME_ENTRIES = _contract(
    "time_entries",
    "time_entries",
    "time entry",
    {
        "workspace_id": c.text(required=True, description="Id of the project (workspace) the time is tracked to."),
        "user_id": c.text(required=True, description="Id of the user the time entry belongs to (who did the work)."),
        "story_id": c.text(description="Id of the task (story) the time is tracked to, if any."),
        "date_performed": c.date(required=True, description="Day the work was performed (not when it was logged)."),
        "time_in_minutes": c.number(required=True, min_value=0, max_value=24 * 60,
                                    description="Time worked, in minutes."),
        "billable": c.flag(required=True, description="True when the work is billable to the client."),
        "approved": c.flag(description="Kantata's approval flag: true when the entry is on an approved timesheet "
                           "or in a project that requires no time approval."),
        # The latest timesheet submission the entry was on (NESTED): its status and the time of its
        # current resolution, the approval of an approved one.
        **_submission("timesheet", "time entry"),
        "rate_in_cents": c.number(min_value=0, description="Bill rate per hour, in subunits of the entry's currency "
                                  "(the project's when the time was logged; e.g. cents for USD)."),
        "notes": c.text(description="Notes on the work done."),
    },
    "Kantata time entries with their timesheet submission; the source of time-and-materials billing.",
    "cost_rate_in_cents currency currency_symbol currency_base_unit user_can_edit role_id location taxable "
    "is_invoiced invoice_id active_submission_id recent_submission_id external_reference_ids recent_submission_*",
)

EXPENSES = _contract(
    "expenses",
    "expenses",
    "expense",
    {
        "workspace_id": c.text(required=True, description="Id of the project (workspace) the expense is for."),
        "user_id": c.text(required=True, description="Id of the user who recorded the expense."),
        "date": c.date(required=True, description="Day the expense was incurred."),
        "category": c.text(description="Expense category, free text (e.g. Airfare, Lodging, Meals)."),
        "amount_in_cents": c.number(required=True, min_value=0, description="Amount of the expense, in subunits "
                                    "of its currency (e.g. cents for USD)."),
        "currency": c.currency(description="ISO 4217 code of the expense's currency."),
        # Kantata's readable name; "billable" is only the write name
        "is_billable": c.flag(required=True, description="True when the expense is billable to the client "
                              "(passed through on an invoice)."),
        # The latest expense report submission the expense was on (NESTED).
        **_submission("expense report", "expense"),
        "notes": c.text(description="Notes on the expense."),
    },
    "Kantata expenses with their expense report submission; billable ones are passed through to invoices.",
    "currency_symbol currency_base_unit user_can_edit is_invoiced taxable reimbursable story_id receipt_id "
    "expense_category_id active_submission_id recent_submission_id external_reference_ids recent_submission_*",
)

MILESTONES = _contract(
    "milestones",
    "stories",
    "milestone",
    {
        "workspace_id": c.text(required=True, description="Id of the project (workspace) the milestone is in."),
        "title": c.text(required=True, description="Title of the milestone."),
        "story_type": c.text(required=True, isin=("milestone",), description="Story type; always milestone (the "
                             "read asks for stories of that type only)."),
        "state": c.text(required=True, isin=STORY_STATES, description="State of the milestone: not started, "
                        "started or completed."),
        "due_date": c.date(description="Day the milestone is due."),
        # When the milestone was last set to completed: its story state change's created_at (NESTED).
        "story_state_change_created_at": c.timestamp(
            description="When the milestone was last set to completed (UTC): created_at of its latest story "
            "state change to completed; null if it never was."),
        "budget_estimate_in_cents": c.number(
            min_value=0, description="Budget of the milestone, in subunits of the project currency (e.g. cents "
            "for USD): what a fixed-fee contract bills when it completes."),
    },
    "Kantata milestones (stories of type milestone); completed ones bill fixed-fee contracts.",
    "parent_id billable assignee_ids description priority position archived deleted_at start_date "
    "sub_story_count sub_stories_budget_estimate_in_cents budget_used_in_cents sub_stories_budget_used_in_cents "
    "time_estimate_in_minutes sub_stories_time_estimate_in_minutes logged_billable_time_in_minutes "
    "sub_stories_billable_time_in_minutes logged_nonbillable_time_in_minutes fixed_fee root_id descendant_ids "
    "custom_field_value_ids percentage_complete checklist weight external_reference_ids story_state_change_ids "
    "creator_id story_state_change_*",
)

# Kantata documents no created or updated time on a user, and ``GET /users`` orders only
# alphabetically: users are read whole every run (a snapshot; users gone from it are deleted).
USERS = _contract(
    "users",
    "users",
    "user",
    {
        "full_name": c.text(required=True, description="Full name of the user."),
        "email_address": c.text(regex=c.EMAIL, description="E-mail address of the user; matched to the Workday "
                                "worker's primary work e-mail, ignoring case."),
        "headline": c.text(description="Short description of the user from their profile (usually the job "
                           "title)."),
        "disabled": c.flag(description="True when the user is disabled on the account (no longer an active "
                           "member)."),
    },
    "Kantata users: the people who log time, matched to HR workers by e-mail.",
    "photo_path account_id role_id custom_field_value_ids external_reference_ids",
    audit=False,
    change_column=None,
)

# One row per rate card version: a rate card (one currency of a rate card set) as of its set
# version's effective date, with its roles' rates in cents per hour. Tiny master data, read
# whole every run (a role's rate is a rate card role: its change moves no version's updated_at).
RATE_CARDS = _contract(
    "rate_cards",
    "rate_card_versions",
    "rate card version",
    {
        "rate_card_id": c.text(required=True, description="Id of the rate card this is a version of (one "
                               "currency of a rate card set); projects name it as their rate_card_id."),
        "rate_card_currency": c.currency(description="ISO 4217 code of the rate card's currency, the currency of "
                                         "its rates."),
        "rate_card_rate_card_set_title": c.text(required=True, description="Title of the rate card: its rate card "
                                                "set and currency (e.g. NA Standard 2025 USD)."),
        "rate_card_set_version_effective_date": c.date(
            required=True, description="Day from which the version's rates apply (its rate card set version's "
            "effective date), until the card's next version."),
        "rate_card_roles": c.json_list(
            required=True, description="The version's rate card roles, one per role: rate (the bill rate in "
            "cents per hour), role_id and role_name."),
        **_stamps("rate card version", updated_required=False),
    },
    "Kantata rate card versions: bill rates by role for a rate card (a currency of a rate card set) "
    "from an effective date.",
    "default_rate rate_card_role_ids rate_card_uses rate_card_rate_card_set_id "
    "rate_card_rate_card_version_ids rate_card_removable rate_card_created_at rate_card_updated_at "
    "rate_card_set_version_id rate_card_set_version_active rate_card_set_version_used_currencies "
    "rate_card_set_version_rate_card_set_id rate_card_set_version_rate_card_version_ids",
    audit=False,
    change_column=None,
)

# What each contract side-loads and folds into its records (see ``Nested``).
NESTED: dict[str, tuple[Nested, ...]] = {
    PROJECTS.entity: (
        Nested(
            "external_references",
            "external_reference",
            "external_references",
            "external_reference_ids",
            match={
                "service_name": OPPORTUNITY_REFERENCE.service_name,
                "service_model": OPPORTUNITY_REFERENCE.service_model,
            },
            latest_by="created_at",
        ),
    ),
    TIME_ENTRIES.entity: (
        Nested("recent_submission", "recent_submission", "timesheet_submissions", "recent_submission_id"),
    ),
    EXPENSES.entity: (
        Nested("recent_submission", "recent_submission", "expense_report_submissions", "recent_submission_id"),
    ),
    MILESTONES.entity: (
        Nested(
            "story_state_changes",
            "story_state_change",
            "story_state_changes",
            "story_state_change_ids",
            match={"state": "completed"},
            latest_by="created_at",
        ),
    ),
    RATE_CARDS.entity: (
        Nested("rate_card", "rate_card", "rate_cards", "rate_card_id"),
        Nested("rate_card_set_version", "rate_card_set_version", "rate_card_set_versions", "rate_card_set_version_id"),
        Nested(
            "rate_card_roles",
            "rate_card_roles",
            "rate_card_roles",
            "rate_card_role_ids",
            many=True,
            then=(Nested("role", "role", "roles", "role_id"),),
        ),
    ),
}

# Submissions carry the approval of the records on them: an approval changes the submission
# (its status and resolution) and need not change the record, so an incremental read also
# re-reads the records on submissions changed since (collection, records' include/foreign key).
# (submission collection, its include of the records, the submission's foreign key to them).
SUBMITTED_ON: dict[str, tuple[str, str, str]] = {
    TIME_ENTRIES.entity: ("timesheet_submissions", "time_entries", "time_entry_ids"),
    EXPENSES.entity: ("expense_report_submissions", "expenses", "expense_ids"),
}


def approval_status(record: Mapping[str, Any]) -> str:
    """draft, submitted, approved or rejected, from what Kantata documents (dbt staging mirrors it).

    A time entry's ``approved`` flag ("whether or not the time entry has been approved": on an
    approved timesheet, or in a project that requires no approval); otherwise the status of the
    latest submission the record was on (``recent_submission``): pending is submitted, and a
    cancelled submission returns the work to draft.
    """
    submission = record.get("recent_submission") or {}
    status = submission.get("status")
    if record.get("approved") is True or status == "approved":
        return "approved"
    return {"pending": "submitted", "rejected": "rejected"}.get(status, "draft")


def approved_at(record: Mapping[str, Any]) -> str | None:
    """When the record's submission was approved: its current resolution's time (developer.kantata.com,
    ``current_resolution_created_at_date``: "The date and time that the submission's current resolution
    was created"); ``None`` unless that submission is approved."""
    submission = record.get("recent_submission") or {}
    return submission.get("current_resolution_created_at_date") if submission.get("status") == "approved" else None


ALL = (PROJECTS, TIME_ENTRIES, EXPENSES, MILESTONES, USERS, RATE_CARDS)
