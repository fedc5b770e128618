"""Data contracts for Kantata (Mavenlink API v1) PSA objects.

Kantata answers ids as strings and money in integer cents (``*_in_cents``); both are kept
as the API gives them and converted in dbt staging.
"""

from __future__ import annotations

from ps_pipelines.lib.contracts import columns as c
from ps_pipelines.lib.contracts.base import EntityContract

APPROVAL_STATUSES = ("draft", "submitted", "approved", "rejected")
STORY_STATES = ("not started", "started", "completed")


def _contract(entity: str, path: str, cols: dict, description: str, ignored: str = "") -> EntityContract:
    audit = {"created_at": c.timestamp(), "updated_at": c.timestamp(required=True)}
    return EntityContract(
        platform="kantata",
        entity=entity,
        id_columns=("id",),
        change_column="updated_at",
        schema=c.schema(f"kantata.{entity}", {"id": c.identifier(), **cols, **audit}),
        description=description,
        source_object=path,
        ignored_fields=tuple(ignored.split()),
    )


PROJECTS = _contract(
    "projects",
    "workspaces",
    {
        "title": c.text(required=True),
        "currency": c.currency(),
        "price_in_cents": c.number(min_value=0),
        "start_date": c.date(),
        "due_date": c.date(),
        "status_color": c.text(),
        "status_key": c.number(),
        "status_message": c.text(),
        "archived": c.flag(),
        "rate_card_id": c.text(),
        "salesforce_opportunity_id": c.text(),
    },
    "Kantata workspaces: delivery projects, linked to the CRM opportunity they came from.",
    # Documented workspace attributes the pipeline does not load (Kantata API v1 specification).
    "description effective_due_date budgeted change_orders_enabled consultant_role_name client_role_name "
    "can_create_line_items default_rate currency_symbol currency_base_unit can_invite has_budget_access price "
    "budget_used over_budget stories_are_fixed_fee_by_default workspace_invoice_preference_id "
    "require_expense_approvals require_time_approvals percentage_complete access_level workspace_group_ids "
    "target_margin",
)

TIME_ENTRIES = _contract(
    "time_entries",
    "time_entries",
    {
        "workspace_id": c.text(required=True),
        "user_id": c.text(required=True),
        "story_id": c.text(),
        "date_performed": c.date(required=True),
        "time_in_minutes": c.number(required=True, min_value=0, max_value=24 * 60),
        "billable": c.flag(required=True),
        "status": c.text(required=True, isin=APPROVAL_STATUSES),
        "approved_at": c.timestamp(),
        "rate_in_cents": c.number(min_value=0),
        "notes": c.text(),
    },
    "Kantata time entries with approval status; the source of time-and-materials billing.",
    "cost_rate_in_cents currency currency_symbol currency_base_unit user_can_edit approved role_id "
    "external_reference location taxable active_submission_id",
)

EXPENSES = _contract(
    "expenses",
    "expenses",
    {
        "workspace_id": c.text(required=True),
        "user_id": c.text(required=True),
        "date": c.date(required=True),
        "category": c.text(),
        "amount_in_cents": c.number(required=True, min_value=0),
        "currency": c.currency(),
        "is_billable": c.flag(required=True),  # Kantata's readable name; "billable" is only the write name
        "status": c.text(required=True, isin=APPROVAL_STATUSES),
        "approved_at": c.timestamp(),
        "notes": c.text(),
    },
    "Kantata expenses with approval status; billable ones are passed through to invoices.",
    "currency_symbol currency_base_unit user_can_edit is_invoiced taxable reimbursable story_id receipt_id "
    "expense_category_id active_submission_id",
)

MILESTONES = _contract(
    "milestones",
    "stories",
    {
        "workspace_id": c.text(required=True),
        "title": c.text(required=True),
        "story_type": c.text(required=True, isin=("milestone",)),
        "state": c.text(required=True, isin=STORY_STATES),
        "due_date": c.date(),
        "completed_at": c.timestamp(),
        "budget_estimate_in_cents": c.number(min_value=0),
    },
    "Kantata milestones (stories of type milestone); completed ones bill fixed-fee contracts.",
    "parent_id billable assignee_ids description priority position archived deleted_at start_date "
    "sub_story_count sub_stories_budget_estimate_in_cents budget_used_in_cents sub_stories_budget_used_in_cents "
    "time_estimate_in_minutes sub_stories_time_estimate_in_minutes logged_billable_time_in_minutes "
    "sub_stories_billable_time_in_minutes logged_nonbillable_time_in_minutes fixed_fee root_id descendant_ids "
    "custom_field_value_ids percentage_complete checklist weight external_reference_ids",
)

USERS = _contract(
    "users",
    "users",
    {
        "full_name": c.text(required=True),
        "email_address": c.text(regex=c.EMAIL),
        "headline": c.text(),
        "disabled": c.flag(),
    },
    "Kantata users: the people who log time, matched to HR workers by e-mail.",
    "photo_path account_id",
)

RATE_CARDS = _contract(
    "rate_cards",
    "rate_cards",
    {
        "title": c.text(required=True),
        "currency": c.currency(),
        "region": c.text(required=True),
        "effective_from": c.date(required=True),
        "effective_to": c.date(),
        "rates": c.json_list(required=True),
    },
    "Kantata rate cards: bill rates by role for a region and currency over an effective period.",
    "uses rate_card_set_id rate_card_version_ids",
)

ALL = (PROJECTS, TIME_ENTRIES, EXPENSES, MILESTONES, USERS, RATE_CARDS)
