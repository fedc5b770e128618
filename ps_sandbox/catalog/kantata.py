"""Kantata OX (Mavenlink API v1) objects as Kantata documents them.

Sources (cited per object below):

* [SPEC] Mavenlink's own API specification, published with its Ruby client:
  github.com/mavenlink/mavenlink_gem, ``lib/config/specification.yml`` (read at commit
  b7e37a8f1003f74b8a3fb1caf367b3ad62e1a3d6; per collection: readable ``attributes``,
  ``create_attributes``, ``update_attributes``, ``associations`` with their foreign keys, and
  ``validations``).
* [DEV] developer.kantata.com/kantata/specification, the OX API reference (object schemas,
  each index's query parameters and includes), e.g. .../external-references/get-external-references,
  .../timesheet-submissions, .../expense-report-submissions, .../story-state-changes,
  .../rate-cards-multiple-currencies, .../rate-card-role-rate-for-a-role, .../time-entries and
  .../workspaces (read through the OpenAPI copies of those pages in
  github.com/api-evangelist/mavenlink, ``openapi/mavenlink-*-api-openapi.yml``).
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
    """``include=<name>`` side-loads ``collection`` records referenced by ``foreign_key`` [SPEC].

    ``by_subject``: the related records point back at the primary one instead (external
    references carry ``subject_type``/``subject_id``); the primary record then answers
    ``foreign_key`` (``external_reference_ids``) only when the association is included [DEV].
    """

    foreign_key: str
    collection: str
    by_subject: bool = False


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
    # The class name other objects use for it (external references' ``subject_type``) [DEV].
    subject_type: str = ""
    # Documented index filters: equality on an attribute of the same name ...
    filters: tuple[str, ...] = ()
    # ... and comma-separated lists (query parameter -> attribute), e.g. ``statuses`` -> ``status``.
    list_filters: Mapping[str, str] = field(default_factory=dict)
    # Query parameters an index refuses to answer without [DEV].
    required_filters: tuple[str, ...] = ()
    # The attribute carrying the record's change time, if the object documents one.
    change_field: str | None = "updated_at"
    # Served by the sandbox although Kantata does not document them: name -> (type, why).
    extensions: Mapping[str, tuple[str, str]] = field(default_factory=dict)

    def served(self) -> dict[str, str]:
        """Every attribute the sandbox may answer: documented ones plus the flagged extensions."""
        return {**self.attributes, **{name: kind for name, (kind, _) in self.extensions.items()}}

    def type_of(self, name: str) -> str | None:
        return self.served().get(name)


def flattened(obj: KantataObject, *, documented_only: bool = False, prefix: str = "") -> set[str]:
    """Attribute names as a raw layer flattens them (``status`` -> ``status_color`` ...).

    With ``prefix``: the names of ``obj`` nested into another record under that key (a
    connector that folds an included object into the record it belongs to).
    """
    names = obj.attributes if documented_only else obj.served()
    return {f"{prefix}_{name}" if prefix else name for name in _flatten(obj, names)}


def _flatten(obj: KantataObject, names: Mapping[str, str]) -> Iterator[str]:
    for name, kind in names.items():
        yield name
        if kind == OBJECT:
            yield from (f"{name}_{sub}" for sub in obj.subfields.get(name, ()))


_AUDIT = {"created_at": DATETIME, "updated_at": DATETIME}
_CURRENCY = {"currency": STRING, "currency_symbol": STRING, "currency_base_unit": INTEGER}
# [DEV] Many objects answer this only when ``external_references`` is included.
_EXTERNAL_REFERENCES = Association("external_reference_ids", "external_references", by_subject=True)

# [SPEC] external_references; [DEV] External References (the ExternalReference schema adds
# ``updated_at``; ``GET /external_references`` requires ``subject_type`` and
# filters on ``subject_id``, ``service_name``, ``service_model``, ``service_model_ref``, ``status``,
# ``external_status`` and ``external_message``; ``POST /external_references/create_or_update``).
# An object documenting ``external_reference`` among its create/update attributes takes one
# inline: ``{"service_name", "service_model", "service_model_ref", "status", ...}`` ([DEV],
# e.g. Create a Timesheet Submission: "connects objects in an external system with objects in
# Kantata OX"; ``service_name``, ``service_model`` and ``service_model_ref`` required, and
# "if you are adding multiple external references to the same object, the service_name must
# be unique").
EXTERNAL_REFERENCES = KantataObject(
    collection="external_references",
    singular="external_reference",
    attributes={
        "id": ID, "service_name": STRING, "service_model": STRING, "service_model_ref": STRING,
        "subject_id": ID, "subject_type": STRING, "status": STRING, "external_link": STRING,
        "external_message": STRING, "external_status": STRING, "locked": BOOLEAN, "created_at": DATETIME,
        "last_synced_at": DATETIME, "updated_at": DATETIME,
    },
    create=frozenset({"service_name", "service_model", "service_model_ref", "subject_id", "subject_type",
                      "status", "external_link", "external_message", "external_status", "locked"}),
    update=frozenset({"service_name", "service_model", "service_model_ref", "status", "external_link",
                      "external_message", "external_status", "locked"}),
    required=("service_model_ref", "service_model", "service_name", "subject_id", "subject_type"),
    inclusions={"status": (None, "pending", "successful", "failed")},
    filters=("subject_type", "subject_id", "service_name", "service_model", "service_model_ref", "status",
             "external_status", "external_message"),
    required_filters=("subject_type",),
)
# The inline ``external_reference`` needs these (the subject is the object being written) [DEV].
INLINE_REFERENCE_REQUIRED = ("service_name", "service_model", "service_model_ref")

# [SPEC] workspaces, [WS]; [DEV] Workspaces: filters ``external_reference_service_name``,
# ``external_reference_service_model``, ``external_reference_service_model_ref(s)`` (up to 200
# comma-separated ids) and ``include=external_references``.
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
        "rate_card_id": ID, "primary_maven_id": ID, "custom_field_value_ids": ARRAY,
        "external_reference_ids": ARRAY, **_CURRENCY, **_AUDIT,
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
        "external_references": _EXTERNAL_REFERENCES,
    },
    subfields={"status": ("color", "key", "message")},
    subject_type="Workspace",
)

# [SPEC] time_entries (b7e37a8f: ``recent_submission_id``, ``is_invoiced``, ``invoice_id``), [TE];
# [DEV] Time Entries: ``approved`` "Specifies whether the time entry has been approved";
# ``include=active_submission`` "the active timesheet (i.e. approved or pending) the time entry
# was submitted on", ``include=recent_submission`` "the most recent timesheet ... including any
# rejected or cancelled timesheets"; filter ``workspace_id``.
TIME_ENTRIES = KantataObject(
    collection="time_entries",
    singular="time_entry",
    attributes={
        "id": ID, "date_performed": DATE, "story_id": ID, "time_in_minutes": INTEGER, "billable": BOOLEAN,
        "notes": STRING, "rate_in_cents": INTEGER, "cost_rate_in_cents": INTEGER, "user_can_edit": BOOLEAN,
        "workspace_id": ID, "user_id": ID, "approved": BOOLEAN, "role_id": ID, "location": STRING,
        "taxable": BOOLEAN, "is_invoiced": BOOLEAN, "active_submission_id": ID, "recent_submission_id": ID,
        "invoice_id": ID, "external_reference_ids": ARRAY, **_CURRENCY, **_AUDIT,
    },
    create=frozenset({
        "workspace_id", "date_performed", "time_in_minutes", "billable", "notes", "rate_in_cents",
        "cost_rate_in_cents", "role_id", "story_id", "user_id", "external_reference", "location",
    }),
    update=frozenset({
        "workspace_id", "date_performed", "time_in_minutes", "billable", "notes", "rate_in_cents",
        "cost_rate_in_cents", "role_id", "story_id", "user_id", "external_reference", "location",
    }),
    required=("workspace_id", "date_performed", "time_in_minutes"),
    associations={
        "workspace": Association("workspace_id", "workspaces"),
        "user": Association("user_id", "users"),
        "story": Association("story_id", "stories"),
        "role": Association("role_id", "roles"),
        "active_submission": Association("active_submission_id", "timesheet_submissions"),
        "recent_submission": Association("recent_submission_id", "timesheet_submissions"),
        "invoice": Association("invoice_id", "invoices"),
        "external_references": _EXTERNAL_REFERENCES,
    },
    subject_type="TimeEntry",
    filters=("workspace_id",),
)

# [SPEC] expenses (b7e37a8f: ``recent_submission_id``, ``recent_submission``). The readable
# billable flag is ``is_billable``; ``billable`` is the write name. Approval lives on the expense
# report submission ([DEV] Expense Report Submissions: "These expenses must be approved through
# an expense report submission").
EXPENSES = KantataObject(
    collection="expenses",
    singular="expense",
    attributes={
        "id": ID, "date": DATE, "notes": STRING, "category": STRING, "amount_in_cents": INTEGER,
        "user_can_edit": BOOLEAN, "is_invoiced": BOOLEAN, "is_billable": BOOLEAN, "taxable": BOOLEAN,
        "reimbursable": BOOLEAN, "workspace_id": ID, "user_id": ID, "story_id": ID, "receipt_id": ID,
        "expense_category_id": ID, "active_submission_id": ID, "recent_submission_id": ID,
        "external_reference_ids": ARRAY, **_CURRENCY, **_AUDIT,
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
        "recent_submission": Association("recent_submission_id", "expense_report_submissions"),
        "external_references": _EXTERNAL_REFERENCES,
    },
    subject_type="Expense",
    filters=("workspace_id",),
)

_SUBMISSION = {
    "id": ID, "created_at": DATETIME, "updated_at": DATETIME, "status": STRING, "title": STRING,
    "comment": STRING, "type": STRING, "resolution_description": STRING, "line_item_total_formatted": STRING,
    "line_item_total_in_cents": INTEGER, **_CURRENCY, "current_resolution_description": STRING,
    "current_resolution_creator_id": ID, "current_resolution_created_at_date": DATETIME,
    "resolution_ids": ARRAY, "user_id": ID, "workspace_id": ID,
}
# [DEV] the submission's ``status``: "The current status of the submission ('approved', 'rejected',
# 'cancelled', 'pending')"; ``current_resolution_created_at_date``: "The date and time that the
# submission's current resolution was created" (the approval, rejection or cancellation).
SUBMISSION_STATUSES = ("pending", "approved", "rejected", "cancelled")

# [SPEC] timesheet_submissions; [DEV] Timesheet Submissions ("hold a set of time entries for a
# specified week, and can be approved, rejected, or canceled"; one project each; filters
# ``workspace_id``, ``statuses``, ``updated_after``; ``include=time_entries``).
TIMESHEET_SUBMISSIONS = KantataObject(
    collection="timesheet_submissions",
    singular="timesheet_submission",
    attributes={**_SUBMISSION, "start_date": DATE, "end_date": DATE, "time_entry_ids": ARRAY,
                "external_reference_ids": ARRAY},
    create=frozenset({"title", "comment", "workspace_id", "user_id", "line_item_ids", "external_reference"}),
    associations={
        "user": Association("user_id", "users"),
        "workspace": Association("workspace_id", "workspaces"),
        "time_entries": Association("time_entry_ids", "time_entries"),
        "resolutions": Association("resolution_ids", "resolutions"),
        "external_references": _EXTERNAL_REFERENCES,
    },
    subject_type="Submission",
    filters=("workspace_id",),
    list_filters={"statuses": "status"},
)

# [SPEC] expense_report_submissions; [DEV] Expense Report Submissions (filters ``workspace_id``,
# ``statuses``, ``updated_after``; ``include=expenses``).
EXPENSE_REPORT_SUBMISSIONS = KantataObject(
    collection="expense_report_submissions",
    singular="expense_report_submission",
    attributes={**_SUBMISSION, "expense_ids": ARRAY, "external_reference_ids": ARRAY},
    create=frozenset({"title", "comment", "workspace_id", "user_id", "line_item_ids"}),
    associations={
        "user": Association("user_id", "users"),
        "workspace": Association("workspace_id", "workspaces"),
        "expenses": Association("expense_ids", "expenses"),
        "resolutions": Association("resolution_ids", "resolutions"),
        "external_references": _EXTERNAL_REFERENCES,
    },
    subject_type="Submission",
    filters=("workspace_id",),
    list_filters={"statuses": "status"},
)

# [SPEC] stories ("tasks"): story_type is task, deliverable or milestone; state not started,
# started or completed; b7e37a8f adds ``story_state_change_ids`` and the ``story_state_changes``
# association.
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
        "story_state_change_ids": ARRAY, "creator_id": ID,
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
        "story_state_changes": Association("story_state_change_ids", "story_state_changes"),
        "external_references": _EXTERNAL_REFERENCES,
    },
    subject_type="Story",
    filters=("workspace_id", "story_type"),
)

# [SPEC] story_state_changes (b7e37a8f); [DEV] Story State Changes: "act as an audit trail for
# changes to the state of a Story ... created for you automatically when you set the state of a
# Story"; they cannot be modified or deleted.
STORY_STATE_CHANGES = KantataObject(
    collection="story_state_changes",
    singular="story_state_change",
    attributes={"id": ID, "state": STRING, "formatted_state": STRING, "user_id": ID, "story_id": ID, **_AUDIT},
    associations={"user": Association("user_id", "users"), "story": Association("story_id", "stories")},
    filters=("story_id",),
)

# [SPEC] users (b7e37a8f adds ``role_id`` and ``custom_field_value_ids``). Neither [SPEC] nor the
# [DEV] User schema has a created or updated time, and ``GET /users`` orders only alphabetically:
# a user has no change field to read incrementally.
USERS = KantataObject(
    collection="users",
    singular="user",
    attributes={
        "id": ID, "full_name": STRING, "photo_path": STRING, "email_address": STRING, "headline": STRING,
        "disabled": BOOLEAN, "account_id": ID, "role_id": ID, "custom_field_value_ids": ARRAY,
        "external_reference_ids": ARRAY,
    },
    update=frozenset({"full_name", "headline", "email_address", "external_reference"}),
    associations={
        "role": Association("role_id", "roles"),
        "account_membership": Association("account_membership_id", "account_memberships"),
        "external_references": _EXTERNAL_REFERENCES,
    },
    subject_type="User",
    change_field=None,
)

# [SPEC] roles; the ``name`` is what a rate card role prices ([DEV] Rate Card Role: "The account
# Role that this Rate Card Role represents").
ROLES = KantataObject(
    collection="roles",
    singular="role",
    attributes={"id": ID, "name": STRING},
    create=frozenset({"name"}),
    update=frozenset({"name"}),
    required=("name",),
    subject_type="Role",
    change_field=None,
)

# Rate cards, [SPEC] and [DEV] "Rate Cards": a Rate Card Set groups Rate Cards, one per currency;
# a set has Rate Card Set Versions, "each representing the effective version for a specified
# date"; a Rate Card has one Rate Card Version per set version, and a version's Rate Card Roles
# are "the bill rate, in cents per hour, for a specific Role". A workspace's ``rate_card_id`` is
# "The ID of the rate card for the project" [DEV Workspaces].
RATE_CARD_SETS = KantataObject(
    collection="rate_card_sets",
    singular="rate_card_set",
    attributes={
        "id": ID, "title": STRING, "account_default": BOOLEAN, "active_currencies": ARRAY,
        "default_currencies": ARRAY, "destroyable": BOOLEAN, "rate_card_ids": ARRAY,
        "rate_card_set_version_ids": ARRAY, **_AUDIT,
    },
    create=frozenset({"clone_version_id", "title"}),
    update=frozenset({"title"}),
    associations={
        "rate_cards": Association("rate_card_ids", "rate_cards"),
        "rate_card_set_versions": Association("rate_card_set_version_ids", "rate_card_set_versions"),
    },
)

RATE_CARD_SET_VERSIONS = KantataObject(
    collection="rate_card_set_versions",
    singular="rate_card_set_version",
    attributes={
        "id": ID, "active": BOOLEAN, "effective_date": DATE, "used_currencies": ARRAY, "rate_card_set_id": ID,
        "rate_card_version_ids": ARRAY,
    },
    create=frozenset({"clone_id", "rate_card_set_id", "effective_date"}),
    update=frozenset({"effective_date"}),
    associations={
        "rate_card_set": Association("rate_card_set_id", "rate_card_sets"),
        "rate_card_versions": Association("rate_card_version_ids", "rate_card_versions"),
    },
    filters=("rate_card_set_id",),
    change_field=None,
)

# [SPEC] rate_cards; [DEV] adds ``created_at``, ``updated_at``, ``rate_card_set_title`` ("The Rate
# Card Set and Currency") and ``removable``; filter ``rate_card_set_id``.
RATE_CARDS = KantataObject(
    collection="rate_cards",
    singular="rate_card",
    attributes={
        "id": ID, "currency": STRING, "uses": INTEGER, "rate_card_set_id": ID, "rate_card_version_ids": ARRAY,
        "rate_card_set_title": STRING, "removable": BOOLEAN, **_AUDIT,
    },
    create=frozenset({"rate_card_set_id", "rate_card_set_version_id", "currency"}),
    update=frozenset({"currency"}),
    associations={
        "rate_card_set": Association("rate_card_set_id", "rate_card_sets"),
        "rate_card_versions": Association("rate_card_version_ids", "rate_card_versions"),
        "effective_rate_card_version": Association("effective_rate_card_version_id", "rate_card_versions"),
        "external_references": _EXTERNAL_REFERENCES,
    },
    subject_type="RateCard",
    filters=("rate_card_set_id",),
)

# [SPEC] rate_card_versions; [DEV] adds ``created_at``, ``updated_at`` and the foreign keys.
RATE_CARD_VERSIONS = KantataObject(
    collection="rate_card_versions",
    singular="rate_card_version",
    attributes={
        "id": ID, "default_rate": INTEGER, "rate_card_id": ID, "rate_card_set_version_id": ID,
        "rate_card_role_ids": ARRAY, **_AUDIT,
    },
    create=frozenset({"default_rate"}),
    update=frozenset({"default_rate"}),
    associations={
        "rate_card": Association("rate_card_id", "rate_cards"),
        "rate_card_set_version": Association("rate_card_set_version_id", "rate_card_set_versions"),
        "rate_card_roles": Association("rate_card_role_ids", "rate_card_roles"),
    },
)

# [SPEC] rate_card_roles; [DEV] Rate Card Role: ``rate`` is "The bill rate, in cents per hour, for the
# associated role"; filter ``rate_card_version_id``; ``include=role``.
RATE_CARD_ROLES = KantataObject(
    collection="rate_card_roles",
    singular="rate_card_role",
    attributes={"id": ID, "rate": INTEGER, "role_id": ID, "rate_card_version_id": ID},
    create=frozenset({"rate_card_version_id", "role_id", "rate"}),
    update=frozenset({"rate"}),
    required=("rate_card_version_id", "role_id", "rate"),
    associations={
        "role": Association("role_id", "roles"),
        "rate_card_version": Association("rate_card_version_id", "rate_card_versions"),
    },
    filters=("rate_card_version_id",),
    change_field=None,
)

OBJECTS: dict[str, KantataObject] = {
    obj.collection: obj for obj in (
        WORKSPACES, TIME_ENTRIES, EXPENSES, STORIES, USERS, RATE_CARDS, EXTERNAL_REFERENCES,
        TIMESHEET_SUBMISSIONS, EXPENSE_REPORT_SUBMISSIONS, STORY_STATE_CHANGES, ROLES, RATE_CARD_SETS,
        RATE_CARD_SET_VERSIONS, RATE_CARD_VERSIONS, RATE_CARD_ROLES,
    )
}
