"""Kantata OX (Mavenlink API v1) objects as Kantata documents them.

Sources (cited per object below):

* [SPEC] Mavenlink's own API specification, published with its Ruby client:
  github.com/mavenlink/mavenlink_gem, ``lib/config/specification.yml`` (per collection:
  readable ``attributes``, ``create_attributes``, ``update_attributes``, ``associations``
  with their foreign keys, and ``validations``).
* [TE] developer.mavenlink.com/time_entries and developer.kantata.com/kantata/specification/Time-Entries
  (readable attributes incl. ``approved`` and ``taxable``; ``include=user,story`` side-loads
  the ``users`` and ``stories`` top-level keys referenced by ``user_id``/``story_id``).
* [WS] developer.mavenlink.com/workspaces (readable workspace attributes, ``status`` hash).
* [FORMAT] developer.mavenlink.com, "Response Format": ``count``, ``results`` of
  ``{key, id}`` in sorted order and one id-keyed top-level object per returned type.

Types are the wire's JSON types: ``id`` (numeric string), ``string``, ``integer``,
``number``, ``boolean``, ``date`` (``YYYY-MM-DD``), ``datetime`` (ISO 8601), ``object``,
``array``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

ID, STRING, INTEGER, NUMBER, BOOLEAN = "id", "string", "integer", "number", "boolean"
DATE, DATETIME, OBJECT, ARRAY = "date", "datetime", "object", "array"


@dataclass(frozen=True)
class Association:
    """``include=<name>`` side-loads ``collection`` records referenced by ``foreign_key`` [SPEC]."""

    foreign_key: str
    collection: str


@dataclass(frozen=True)
class KantataObject:
    collection: str  # the top-level key and path: /api/v1/<collection>
    singular: str  # the request body's wrapper key: {"<singular>": {...}}
    attributes: Mapping[str, str]  # documented readable attribute -> type
    create: frozenset[str] = frozenset()
    update: frozenset[str] = frozenset()
    required: tuple[str, ...] = ()  # [SPEC] validations: presence
    inclusions: Mapping[str, tuple[object, ...]] = field(default_factory=dict)  # on create
    associations: Mapping[str, Association] = field(default_factory=dict)
    subfields: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # keys of object attributes
    # Served by the sandbox although Kantata does not document them: name -> (type, why).
    extensions: Mapping[str, tuple[str, str]] = field(default_factory=dict)

    def served(self) -> dict[str, str]:
        """Every attribute the sandbox may answer: documented ones plus the flagged extensions."""
        return {**self.attributes, **{name: kind for name, (kind, _) in self.extensions.items()}}

    def type_of(self, name: str) -> str | None:
        return self.served().get(name)


def flattened(obj: KantataObject, *, documented_only: bool = False) -> set[str]:
    """Attribute names as a raw layer flattens them (``status`` -> ``status_color`` ...)."""
    names = obj.attributes if documented_only else obj.served()
    return set(_flatten(obj, names))


def _flatten(obj: KantataObject, names: Mapping[str, str]) -> Iterator[str]:
    for name, kind in names.items():
        yield name
        if kind == OBJECT:
            yield from (f"{name}_{sub}" for sub in obj.subfields.get(name, ()))


_AUDIT = {"created_at": DATETIME, "updated_at": DATETIME}
_CURRENCY = {"currency": STRING, "currency_symbol": STRING, "currency_base_unit": INTEGER}
_NOT_DOCUMENTED_AUDIT = "the pipeline's high-water mark; [SPEC] lists no created_at/updated_at for this object"

# [SPEC] workspaces, [WS]. ``rate_card_id`` is documented as a create/update attribute.
WORKSPACES = KantataObject(
    collection="workspaces",
    singular="workspace",
    attributes={
        "id": ID, "title": STRING, "archived": BOOLEAN, "description": STRING, "due_date": DATE,
        "effective_due_date": DATE, "budgeted": BOOLEAN, "change_orders_enabled": BOOLEAN,
        "consultant_role_name": STRING, "client_role_name": STRING, "can_create_line_items": BOOLEAN,
        "default_rate": STRING, "can_invite": BOOLEAN, "has_budget_access": BOOLEAN, "price": STRING,
        "price_in_cents": INTEGER, "budget_used": STRING, "over_budget": BOOLEAN, "start_date": DATE,
        "status": OBJECT, "stories_are_fixed_fee_by_default": BOOLEAN, "workspace_invoice_preference_id": ID,
        "require_expense_approvals": BOOLEAN, "require_time_approvals": BOOLEAN, "percentage_complete": INTEGER,
        "access_level": STRING, "status_key": INTEGER, "workspace_group_ids": ARRAY, "target_margin": NUMBER,
        "rate_card_id": ID, **_CURRENCY, **_AUDIT,
    },
    create=frozenset({
        "title", "creator_role", "budgeted", "description", "currency", "price", "start_date", "due_date",
        "change_orders", "consultant_role_name", "client_role_name", "access_level", "project_tracker_template_id",
        "change_orders_enabled", "expenses_in_burn_rate", "posts_require_privacy_decision",
        "stories_are_fixed_fee_by_default", "rate_card_id", "custom_fields", "require_expense_approvals",
        "require_time_approvals", "status_key", "external_reference", "workspace_group_ids", "approver_id",
        "target_margin", "tasks_default_non_billable",
    }),
    update=frozenset({
        "title", "budgeted", "description", "archived", "access_level", "price", "start_date", "due_date",
        "posts_require_privacy_decision", "tasks_default_non_billable", "expenses_in_burn_rate", "rate_card_id",
        "client_role_name", "consultant_role_name", "stories_are_fixed_fee_by_default", "currency",
        "target_margin", "approver_id", "change_orders_enabled", "status_key", "external_reference",
        "workspace_group_ids",
    }),
    # [SPEC] workspaces.validations: title presence; creator_role in [maven, buyer] on create.
    required=("title",),
    inclusions={"creator_role": ("maven", "buyer")},
    associations={
        "primary_counterpart": Association("primary_counterpart_id", "users"),
        "participants": Association("participant_ids", "users"),
        "creator": Association("creator_id", "users"),
        "primary_maven": Association("primary_maven_id", "users"),
        "approver": Association("approver_id", "users"),
        "workspace_groups": Association("workspace_group_ids", "workspace_groups"),
        "status_reports": Association("status_report_ids", "status_reports"),
    },
    subfields={"status": ("color", "key", "message")},
    extensions={
        "salesforce_opportunity_id": (
            STRING, "the pipeline's CRM link; Kantata keeps such links in custom field values or "
                    "external references, never as a workspace attribute (open gap)"),
    },
)

# [SPEC] time_entries, [TE].
TIME_ENTRIES = KantataObject(
    collection="time_entries",
    singular="time_entry",
    attributes={
        "id": ID, "date_performed": DATE, "story_id": ID, "time_in_minutes": INTEGER, "billable": BOOLEAN,
        "notes": STRING, "rate_in_cents": INTEGER, "cost_rate_in_cents": INTEGER, "user_can_edit": BOOLEAN,
        "workspace_id": ID, "user_id": ID, "approved": BOOLEAN, "role_id": ID, "external_reference": OBJECT,
        "location": STRING, "taxable": BOOLEAN, "active_submission_id": ID,
        **_CURRENCY, **_AUDIT,
    },
    create=frozenset({
        "workspace_id", "date_performed", "time_in_minutes", "billable", "notes", "rate_in_cents",
        "cost_rate_in_cents", "story_id", "user_id", "external_reference", "location",
    }),
    update=frozenset({
        "date_performed", "time_in_minutes", "billable", "notes", "rate_in_cents", "cost_rate_in_cents",
        "story_id", "user_id", "external_reference",
    }),
    required=("workspace_id", "date_performed", "time_in_minutes"),
    associations={
        "workspace": Association("workspace_id", "workspaces"),
        "user": Association("user_id", "users"),
        "story": Association("story_id", "stories"),
        "role": Association("role_id", "roles"),
        "active_submission": Association("active_submission_id", "timesheet_submissions"),
    },
    extensions={
        "status": (STRING, "approval status; Kantata documents only the approved flag and the timesheet "
                           "submission's status (include=active_submission) (open gap)"),
        "approved_at": (DATETIME, "approval time; Kantata documents it on no time entry (open gap)"),
    },
)

# [SPEC] expenses. The readable billable flag is ``is_billable``; ``billable`` is the write name.
EXPENSES = KantataObject(
    collection="expenses",
    singular="expense",
    attributes={
        "id": ID, "date": DATE, "notes": STRING, "category": STRING, "amount_in_cents": INTEGER,
        "user_can_edit": BOOLEAN, "is_invoiced": BOOLEAN, "is_billable": BOOLEAN, "taxable": BOOLEAN,
        "reimbursable": BOOLEAN, "workspace_id": ID, "user_id": ID, "story_id": ID, "receipt_id": ID,
        "expense_category_id": ID, "active_submission_id": ID, **_CURRENCY, **_AUDIT,
    },
    create=frozenset({
        "workspace_id", "date", "category", "amount_in_cents", "notes", "user_id", "receipt_id", "billable",
        "story_id", "expense_category_id", "reimbursable", "vendor_id", "external_reference",
    }),
    update=frozenset({
        "date", "category", "amount_in_cents", "notes", "user_id", "receipt_id", "billable", "story_id",
        "expense_category_id", "external_reference",
    }),
    required=("workspace_id", "date", "category", "amount_in_cents"),
    associations={
        "workspace": Association("workspace_id", "workspaces"),
        "user": Association("user_id", "users"),
        "story": Association("story_id", "stories"),
        "receipt": Association("receipt_id", "attachments"),
        "expense_category": Association("expense_category_id", "expense_categories"),
        "active_submission": Association("active_submission_id", "expense_report_submissions"),
    },
    extensions={
        "status": (STRING, "approval status; Kantata documents it on the expense report submission "
                           "(include=active_submission), not on the expense (open gap)"),
        "approved_at": (DATETIME, "approval time; not documented on expenses (open gap)"),
    },
)

# [SPEC] stories ("tasks"): story_type is task, deliverable or milestone; state not started,
# started or completed.
STORIES = KantataObject(
    collection="stories",
    singular="story",
    attributes={
        "id": ID, "workspace_id": ID, "parent_id": ID, "billable": BOOLEAN, "title": STRING,
        "assignee_ids": ARRAY, "description": STRING, "story_type": STRING, "priority": INTEGER, "state": STRING,
        "position": INTEGER, "archived": BOOLEAN, "deleted_at": DATETIME, "due_date": DATE, "start_date": DATE,
        "sub_story_count": INTEGER, "budget_estimate_in_cents": INTEGER,
        "sub_stories_budget_estimate_in_cents": INTEGER, "budget_used_in_cents": INTEGER,
        "sub_stories_budget_used_in_cents": INTEGER, "time_estimate_in_minutes": INTEGER,
        "sub_stories_time_estimate_in_minutes": INTEGER, "logged_billable_time_in_minutes": INTEGER,
        "sub_stories_billable_time_in_minutes": INTEGER, "logged_nonbillable_time_in_minutes": INTEGER,
        "fixed_fee": BOOLEAN, "root_id": ID, "descendant_ids": ARRAY, "custom_field_value_ids": ARRAY,
        "percentage_complete": INTEGER, "checklist": ARRAY, "weight": INTEGER, "external_reference_ids": ARRAY,
        **_AUDIT,
    },
    create=frozenset({
        "title", "story_type", "workspace_id", "description", "parent_id", "start_date", "archived", "due_date",
        "assignee_ids", "budget_estimate_in_cents", "time_estimate_in_minutes", "tag_list", "billable",
        "percentage_complete", "state", "fixed_fee", "checklist", "weight", "priority", "external_reference",
    }),
    required=("title", "story_type", "workspace_id"),
    inclusions={"story_type": ("task", "deliverable", "milestone"),
                "state": ("not started", "started", "completed")},
    associations={
        "workspace": Association("workspace_id", "workspaces"),
        "parent": Association("parent_id", "stories"),
        "root": Association("root_id", "stories"),
        "assignees": Association("assignee_ids", "users"),
    },
    extensions={
        "completed_at": (DATETIME, "milestone sign-off time the pipeline bills on; [SPEC] documents "
                                   "completed_at only on story_tasks (open gap)"),
    },
)

# [SPEC] users.
USERS = KantataObject(
    collection="users",
    singular="user",
    attributes={
        "id": ID, "full_name": STRING, "photo_path": STRING, "email_address": STRING, "headline": STRING,
        "disabled": BOOLEAN, "account_id": ID,
    },
    update=frozenset({"full_name", "headline", "email_address", "external_reference"}),
    associations={
        "role": Association("role_id", "roles"),
        "account_membership": Association("account_membership_id", "account_memberships"),
    },
    extensions={"created_at": (DATETIME, _NOT_DOCUMENTED_AUDIT), "updated_at": (DATETIME, _NOT_DOCUMENTED_AUDIT)},
)

# [SPEC] rate_cards: a currency's card inside a rate card set; titles live on rate_card_sets,
# effective dates on rate_card_set_versions, rates on rate_card_roles.
RATE_CARDS = KantataObject(
    collection="rate_cards",
    singular="rate_card",
    attributes={"id": ID, "currency": STRING, "uses": INTEGER, "rate_card_set_id": ID, "rate_card_version_ids": ARRAY},
    create=frozenset({"rate_card_set_id", "rate_card_set_version_id", "currency"}),
    update=frozenset({"currency"}),
    associations={
        "rate_card_set": Association("rate_card_set_id", "rate_card_sets"),
        "rate_card_versions": Association("rate_card_version_ids", "rate_card_versions"),
    },
    extensions={
        **{name: (kind, "a flattened rate card (set title, version dates, role rates) the pipeline reads in one "
                        "object; Kantata splits it over rate_card_sets/_set_versions/_roles (open gap)")
           for name, kind in (("title", STRING), ("region", STRING), ("effective_from", DATE),
                              ("effective_to", DATE), ("rates", ARRAY))},
        "created_at": (DATETIME, _NOT_DOCUMENTED_AUDIT), "updated_at": (DATETIME, _NOT_DOCUMENTED_AUDIT),
    },
)

OBJECTS: dict[str, KantataObject] = {
    obj.collection: obj for obj in (WORKSPACES, TIME_ENTRIES, EXPENSES, STORIES, USERS, RATE_CARDS)
}
