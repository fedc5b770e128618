"""Data contracts for Kantata (Mavenlink API v1) PSA objects.

Kantata answers ids as strings and money in integer cents (``*_in_cents``); both are kept
as the API gives them and converted in dbt staging.
"""

from __future__ import annotations

from ps_pipelines.lib.contracts import columns as c
from ps_pipelines.lib.contracts.base import EntityContract

APPROVAL_STATUSES = ("draft", "submitted", "approved", "rejected")
STORY_STATES = ("not started", "started", "completed")


def _contract(entity: str, path: str, cols: dict, description: str) -> EntityContract:
    audit = {"created_at": c.timestamp(), "updated_at": c.timestamp(required=True)}
    return EntityContract(
        platform="kantata",
        entity=entity,
        id_columns=("id",),
        change_column="updated_at",
        schema=c.schema(f"kantata.{entity}", {"id": c.identifier(), **cols, **audit}),
        description=description,
        source_object=path,
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
        "billable": c.flag(required=True),
        "status": c.text(required=True, isin=APPROVAL_STATUSES),
        "approved_at": c.timestamp(),
        "notes": c.text(),
    },
    "Kantata expenses with approval status; billable ones are passed through to invoices.",
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
)

ALL = (PROJECTS, TIME_ENTRIES, EXPENSES, MILESTONES, USERS, RATE_CARDS)
