"""The sandbox control API (``/_sandbox/...``): business events, raw records, clock, limits, faults.

Tests, demos and benchmarks drive the sandbox through it over plain JSON (no auth). A
business event changes records the way the real platform would: every mutation sets
the platform's change field in the body and the store's updated_at to the sandbox clock,
so incremental reads see it. Each event answers with the ids it touched.
"""

from __future__ import annotations

import bisect
import contextlib
import random
import threading
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import orjson

from ps_sandbox import d365_data, faults, hubspot_data
from ps_sandbox.catalog import hubspot as hubspot_catalog
from ps_sandbox.certinia_events import CertiniaEvents
from ps_sandbox.generate import (
    CONTACT_TITLES,
    INDUSTRIES,
    MARKETS_BY_COUNTRY,
    NOTES,
    OPPORTUNITY_TYPES,
    PAYMENT_TERMS,
    SF_ADMIN_USER,
    TASK_NAMES,
    add_months,
    change_fields,
    format_timestamp,
    record_counts,
    sf_id,
    sf_id_number,
    stamp,
)
from ps_sandbox.http import Request, Response, Router, json_response
from ps_sandbox.store import SandboxStore, from_iso, to_iso

if TYPE_CHECKING:
    from ps_sandbox.context import SandboxContext

PLATFORM = "control"
PREFIX = "/_sandbox"
LIMIT_KEYS = ("salesforce_daily_api_limit", "netsuite_concurrency_limit", "kantata_requests_per_minute",
              "workday_requests_per_minute", "hubspot_requests_per_10_seconds", "hubspot_search_requests_per_second",
              "d365_requests_per_5_minutes", "d365_concurrency_limit", "d365_token_ttl_seconds")
_SF_CONTROL_SEQUENCE = "control_id_seq:salesforce"
_SF_CONTROL_FIRST = 10_000_000  # far above any generated counter, so control ids never collide
_FETCH_CHUNK = 500
_SAMPLE_BATCH = 50_000

# The field a "touch" rewrites per object (from a vocabulary), so a touched record really
# differs; objects not listed only get their change timestamps bumped.
TOUCH_FIELDS: dict[tuple[str, str], tuple[str, tuple[str, ...]]] = {
    ("salesforce", "Account"): ("Industry", INDUSTRIES),
    ("salesforce", "Contact"): ("Title", CONTACT_TITLES),
    ("salesforce", "Opportunity"): ("Type", OPPORTUNITY_TYPES),
    ("salesforce", "Contract"): ("Payment_Terms__c", tuple(dict.fromkeys(PAYMENT_TERMS))),
    ("kantata", "time_entries"): ("notes", NOTES),
    ("kantata", "expenses"): ("notes", NOTES),
    ("kantata", "stories"): ("title", TASK_NAMES),
    ("netsuite", "transaction"): ("memo", NOTES),
    ("workday", "workers"): ("businessTitle", ("Consultant", "Senior Consultant", "Manager")),
    ("salesforce", "pse__Timecard_Header__c"): ("pse__Timecard_Notes__c", NOTES),
    ("salesforce", "pse__Expense__c"): ("pse__Description__c", NOTES),
    ("salesforce", "pse__Milestone__c"): ("pse__Description__c", NOTES),
    ("salesforce", "pse__Proj__c"): ("pse__Project_Status__c", ("Green", "Yellow", "Red")),
    # HubSpot fields live in the record's properties (a dotted path).
    ("hubspot", "companies"): ("properties.industry", INDUSTRIES),
    ("hubspot", "contacts"): ("properties.jobtitle", CONTACT_TITLES),
    ("hubspot", "deals"): ("properties.description", NOTES),
    ("hubspot", "line_items"): ("properties.hs_sku", ("PS-IMPL", "PS-ADV-DAY", "MS-SILVER")),
    # Dynamics 365 entities carry no modified timestamp (ps_sandbox.catalog.d365): a touch shows
    # only in the values, which is how a full-snapshot reader must notice it.
    ("d365", "CustomersV3"): ("PaymentTerms", ("Net30", "Net45", "Net60")),
    ("d365", "Projects"): ("ProjectStage", ("InProcess", "Finished")),
}


def _field_parent(body: dict[str, Any], path: str) -> tuple[dict[str, Any], str]:
    """The object holding a (dotted) field and the field's own name."""
    *parents, name = path.split(".")
    for parent in parents:
        body = body.setdefault(parent, {})
    return body, name


class ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _require(condition: Any, message: str, status: int = 400) -> None:
    if not condition:
        raise ControlError(status, message)


def _stamp(platform: str, obj: str, body: dict[str, Any], moment: datetime) -> datetime:
    """``stamp``, and on Salesforce the user who made the change: a business event is a person at
    work in the CRM (the org's admin), never the API's integration user, and Salesforce sets
    ``LastModifiedById`` to whoever last updated the record (Object Reference, "System Fields")."""
    if platform == "salesforce":
        body["LastModifiedById"] = SF_ADMIN_USER
    return stamp(platform, obj, body, moment)


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


class ControlAPI:
    """The handlers; each takes the parsed JSON payload (and route params) and returns JSON."""

    refusal = ControlError  # what a platform's event helpers raise to answer an error

    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx
        self.store: SandboxStore = ctx.store
        self.certinia = CertiniaEvents(self)

    # -- helpers -----------------------------------------------------------------------
    def _now(self) -> datetime:
        return self.store.now()

    def _save(self, platform: str, obj: str, record_id: str, body: dict[str, Any], moment: datetime) -> None:
        """Write a changed record with its change field(s) and updated_at at ``moment``."""
        self.store.put(platform, obj, record_id, body, _stamp(platform, obj, body, moment))

    def _get(self, platform: str, obj: str, record_id: str) -> dict[str, Any]:
        body = self.store.get(platform, obj, record_id)
        _require(body is not None, f"{platform} {obj} {record_id!r} not found", 404)
        return body

    def _first(self, platform: str, obj: str, where: str, params: list[Any],
               order: str = "id") -> dict[str, Any] | None:
        """First live record matching a SQL condition over ``body`` (json_extract)."""
        row = self.store.conn.execute(
            f"SELECT body FROM records WHERE platform = ? AND object = ? AND deleted = 0 AND ({where}) "
            f"ORDER BY {order} LIMIT 1", [platform, obj, *params]).fetchone()
        return orjson.loads(row[0]) if row else None

    def _next_kantata_id(self, obj: str) -> int:
        """Past every id used for ``obj``, hard-deleted ones included.

        Kantata ids are numeric strings of one width, so the primary key's last id is the
        highest and is found without scanning a million rows.
        """
        highest = 0
        for table in ("records", "tombstones"):
            last = self.store.conn.execute(
                f"SELECT max(id) FROM {table} WHERE platform = 'kantata' AND object = ?", (obj,)).fetchone()[0]
            if last and not last.isdigit():  # a hand-made id: fall back to a full numeric scan
                last = self.store.conn.execute(
                    f"SELECT max(CAST(id AS INTEGER)) FROM {table} WHERE platform = 'kantata' AND object = ?",
                    (obj,)).fetchone()[0]
            highest = max(highest, int(last or 0))
        candidate = highest + 1
        while self.store.get("kantata", obj, str(candidate), include_deleted=True) is not None:
            candidate += 1
        return candidate

    def _new_sf_id(self, prefix: str, obj: str) -> str:
        while True:
            number = int(self.store.kv_get(_SF_CONTROL_SEQUENCE, _SF_CONTROL_FIRST)) + 1
            self.store.kv_set(_SF_CONTROL_SEQUENCE, number)
            candidate = sf_id(prefix, number)
            if self.store.get("salesforce", obj, candidate, include_deleted=True) is None:
                return candidate

    # -- business events -------------------------------------------------------------------
    def deal_won(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        opp_id = payload.get("opportunity_id")
        if opp_id:
            opp = self._get("salesforce", "Opportunity", opp_id)
        else:
            opp = self._first("salesforce", "Opportunity", "json_extract(body, '$.IsClosed') = 0", [])
            _require(opp is not None, "no open opportunity left to win", 409)
        account = self._get("salesforce", "Account", opp["AccountId"])
        now = self._now()
        market = MARKETS_BY_COUNTRY.get(account.get("BillingCountry") or "")
        opp.update({
            "StageName": "Closed Won", "IsWon": True, "IsClosed": True, "Probability": 100,
            "CloseDate": now.date().isoformat(),
            "Billing_Model__c": opp.get("Billing_Model__c") or "Time and Materials",
            "Legal_Entity__c": opp.get("Legal_Entity__c") or account.get("Legal_Entity__c"),
            "Tax_Code__c": opp.get("Tax_Code__c") or (market.tax_code if market else None),
            "Activation_Status__c": opp.get("Activation_Status__c") or "Not Started"})
        contract = None
        if opp.get("ContractId"):
            contract = self.store.get("salesforce", "Contract", opp["ContractId"])
        created = contract is None
        if created:
            contract = self._new_contract(opp, now)
        opp["ContractId"] = contract["Id"]
        self._save("salesforce", "Opportunity", opp["Id"], opp, now)
        return {"opportunity_id": opp["Id"], "contract_id": contract["Id"], "contract_created": created}

    def _new_contract(self, opp: Mapping[str, Any], now: datetime) -> dict[str, Any]:
        contract_id = self._new_sf_id("800", "Contract")
        start = now.date() + timedelta(days=14)
        term = 6
        contract = {
            "Id": contract_id, "AccountId": opp["AccountId"],
            "ContractNumber": f"{sf_id_number(contract_id):08d}", "Status": "Activated",
            "StartDate": start.isoformat(),
            "EndDate": (add_months(start, term) - timedelta(days=1)).isoformat(), "ContractTerm": term,
            "CurrencyIsoCode": opp.get("CurrencyIsoCode"), "Billing_Model__c": opp["Billing_Model__c"],
            "Opportunity__c": opp["Id"], "Legal_Entity__c": opp.get("Legal_Entity__c"),
            "Payment_Terms__c": "Net 30", "Tax_Code__c": opp.get("Tax_Code__c"),
            "Contract_Value__c": opp.get("Amount"), "IsDeleted": False,
            "CreatedDate": format_timestamp("salesforce", now), "CreatedById": SF_ADMIN_USER, "SystemModstamp": None}
        self._save("salesforce", "Contract", contract_id, contract, now)
        return contract

    def hubspot_deal_won(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Move a HubSpot deal to its pipeline's won stage, as a rep does in the deal board: the stage,
        the closed/won flags, the stage probability and the close date change together."""
        deal_id = payload.get("deal_id")
        if deal_id:
            deal = self._get("hubspot", "deals", str(deal_id))
        else:
            deal = self._first("hubspot", "deals", "json_extract(body, '$.properties.hs_is_closed') = 'false' "
                               "AND json_extract(body, '$.properties.pipeline') = 'default'", [])
            _require(deal is not None, "no open HubSpot deal left to win", 409)
        now = self._now()
        pipeline = deal["properties"].get("pipeline") or "default"
        stage = next(s for s in hubspot_catalog.WON_STAGES
                     if any(s == known[0] for known in hubspot_catalog.PIPELINES[pipeline][1]))
        deal["properties"].update({"dealstage": stage, "hs_is_closed": "true", "hs_is_closed_won": "true",
                                   "hs_deal_stage_probability": "1.0", "closedate": hubspot_data.ts(now)})
        self._save("hubspot", "deals", deal["id"], deal, now)
        return {"deal_id": deal["id"], "dealstage": stage, "pipeline": pipeline}

    def approve_week(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Approve a person's week the way Kantata does: through timesheet submissions.

        Per project, the week's pending submission (or a new one holding the unapproved entries)
        becomes ``approved`` with its resolution time, and its time entries' ``approved`` flag
        turns true (developer.kantata.com, Timesheet Submissions: "Approve a Single Timesheet
        Submission"; Time Entries: ``approved``). A week with no time gets five approved days.
        With ``platform: "certinia"`` it approves a Certinia resource's timecards instead.
        """
        if _psa(payload) == "certinia":
            week = payload.get("week_start")
            return self.certinia.approve_week(payload, _parse_monday(week) if week else None)
        user_id, monday = self._approval_target(payload.get("user_id"), payload.get("week_start"))
        self._get("kantata", "users", user_id)
        entries = self._week_entries(user_id, monday)
        now = self._now()
        if not entries:
            created = self._create_week(user_id, monday, now)
            return {"user_id": user_id, "week_start": monday.isoformat(), "approved": created,
                    "created": created, "already_approved": []}
        already = [entry["id"] for entry in entries if entry.get("approved")]
        by_project: dict[str, list[dict[str, Any]]] = {}
        for entry in entries:
            if not entry.get("approved"):
                by_project.setdefault(str(entry["workspace_id"]), []).append(entry)
        approved = []
        for workspace_id, pending in by_project.items():
            approved += self._approve(user_id, workspace_id, monday, pending, now)
        return {"user_id": user_id, "week_start": monday.isoformat(), "approved": sorted(approved), "created": [],
                "already_approved": already}

    def _approve(self, user_id: str, workspace_id: str, monday: date, entries: list[dict[str, Any]],
                 now: datetime) -> list[str]:
        """Approve ``entries`` (one project) on their pending submission, or on a new one."""
        pending_ids = {entry.get("active_submission_id") for entry in entries} - {None}
        submission = next((found for sid in sorted(pending_ids)
                           if (found := self.store.get("kantata", "timesheet_submissions", str(sid)))
                           and found.get("status") == "pending"), None)
        if submission is None:
            submission = self._new_submission(user_id, workspace_id, monday, now)
        moment = format_timestamp("kantata", now)
        ids = [entry["id"] for entry in entries]
        submission.update({"status": "approved", "current_resolution_created_at_date": moment,
                           "time_entry_ids": sorted({*submission.get("time_entry_ids", []), *ids})})
        self._save("kantata", "timesheet_submissions", submission["id"], submission, now)
        for entry in entries:
            entry.update({"approved": True, "active_submission_id": submission["id"],
                          "recent_submission_id": submission["id"]})
            self._save("kantata", "time_entries", entry["id"], entry, now)
        return ids

    def _new_submission(self, user_id: str, workspace_id: str, monday: date, now: datetime) -> dict[str, Any]:
        moment = format_timestamp("kantata", now)
        workspace = self.store.get("kantata", "workspaces", workspace_id) or {}
        return {"id": str(self._next_kantata_id("timesheet_submissions")), "status": "pending",
                "title": f"Timesheet {monday.isoformat()}", "comment": None, "type": "TimesheetSubmission",
                "resolution_description": None, "line_item_total_in_cents": None, "line_item_total_formatted": None,
                "currency": workspace.get("currency"), "current_resolution_description": None,
                "current_resolution_creator_id": None, "current_resolution_created_at_date": None,
                "resolution_ids": [], "user_id": user_id, "workspace_id": workspace_id,
                "start_date": monday.isoformat(), "end_date": (monday + timedelta(days=6)).isoformat(),
                "time_entry_ids": [], "created_at": moment, "updated_at": moment}

    def _approval_target(self, user_id: Any, week_start: Any) -> tuple[str, date]:
        """Defaults: the user and week of the most recently changed unapproved entry."""
        monday = _parse_monday(week_start) if week_start else None
        user_id = str(user_id) if user_id else None
        if user_id and monday:
            return user_id, monday
        where = "json_extract(body, '$.approved') = 0"
        params = []
        if user_id:
            where += " AND json_extract(body, '$.user_id') = ?"
            params.append(user_id)
        latest = self._first("kantata", "time_entries", where, params, order="updated_at DESC, id DESC")
        if latest is not None:
            latest_week = _monday(date.fromisoformat(latest["date_performed"]))
            return user_id or latest["user_id"], monday or latest_week
        if user_id is None:
            user = self._first("kantata", "users", "json_extract(body, '$.disabled') = 0", [])
            _require(user is not None, "no enabled Kantata user", 409)
            user_id = user["id"]
        return user_id, monday or _monday(self._now().date()) - timedelta(days=7)

    def _week_entries(self, user_id: str, monday: date) -> list[dict[str, Any]]:
        rows = self.store.conn.execute(
            "SELECT body FROM records WHERE platform = 'kantata' AND object = 'time_entries' "
            "AND deleted = 0 AND json_extract(body, '$.user_id') = ? "
            "AND json_extract(body, '$.date_performed') BETWEEN ? AND ? ORDER BY id",
            (user_id, monday.isoformat(), (monday + timedelta(days=6)).isoformat())).fetchall()
        return [orjson.loads(row[0]) for row in rows]

    def _card_rates(self, rate_card_id: Any, day: date) -> dict[str, int]:
        """Role name -> rate in cents of the rate card version in force on ``day`` (Kantata's rate card
        set version with the latest effective date not after it)."""
        card = self.store.get("kantata", "rate_cards", str(rate_card_id)) or {}
        best: tuple[str, dict[str, Any]] | None = None
        for version_id in card.get("rate_card_version_ids", []):
            version = self.store.get("kantata", "rate_card_versions", str(version_id)) or {}
            set_version = self.store.get("kantata", "rate_card_set_versions",
                                         str(version.get("rate_card_set_version_id"))) or {}
            effective = set_version.get("effective_date") or ""
            if version and effective <= day.isoformat() and (best is None or effective > best[0]):
                best = (effective, version)
        if best is None:
            return {}
        rates = {}
        for rate_role in self.store.scan("kantata", "rate_card_roles", order="id",
                                         equals={"rate_card_version_id": str(best[1]["id"])}):
            role = self.store.get("kantata", "roles", str(rate_role.get("role_id"))) or {}
            rates[role.get("name")] = rate_role.get("rate")
        return rates

    def _create_week(self, user_id: str, monday: date, now: datetime) -> list[str]:
        """Five billable 8-hour days on the user's latest project, approved right away."""
        user = self._get("kantata", "users", user_id)
        last = self._first("kantata", "time_entries", "json_extract(body, '$.user_id') = ?", [user_id],
                           order="updated_at DESC, id DESC")
        workspace = (self.store.get("kantata", "workspaces", last["workspace_id"]) if last else None) or \
            self._first("kantata", "workspaces", "json_extract(body, '$.status.key') != 500", [])
        _require(workspace is not None, "no Kantata workspace to log time on", 409)
        rates = self._card_rates(workspace.get("rate_card_id"), monday)
        rate = rates.get(user.get("headline"), next(iter(rates.values()), 0))
        first_id, moment = self._next_kantata_id("time_entries"), format_timestamp("kantata", now)
        rows = []
        for offset in range(5):
            entry_id = str(first_id + offset)
            body = {"id": entry_id, "workspace_id": workspace["id"], "user_id": user_id, "story_id": None,
                    "date_performed": (monday + timedelta(days=offset)).isoformat(), "time_in_minutes": 480,
                    "billable": True, "approved": False, "rate_in_cents": rate,
                    "currency": workspace.get("currency"), "taxable": False, "is_invoiced": False,
                    "active_submission_id": None, "recent_submission_id": None,
                    "notes": "Logged and approved through the sandbox control API", "created_at": moment,
                    "updated_at": None}
            rows.append(body)
        self._approve(user_id, str(workspace["id"]), monday, rows, now)
        return [row["id"] for row in rows]

    def complete_milestone(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Set a milestone's state to completed; Kantata records the change as a story state change
        ("created for you automatically when you set the state of a Story", developer.kantata.com,
        Story State Changes), whose ``created_at`` is the completion time. With ``platform:
        "certinia"`` it completes a Certinia milestone instead."""
        if _psa(payload) == "certinia":
            return self.certinia.complete_milestone(payload)
        story_id = payload.get("story_id")
        if story_id:
            story = self._get("kantata", "stories", str(story_id))
        else:
            story = self._first("kantata", "stories", "json_extract(body, '$.story_type') = 'milestone' AND "
                                "json_extract(body, '$.state') != 'completed'", [],
                                order="json_extract(body, '$.due_date'), id")
            _require(story is not None, "no open milestone left to complete", 409)
        now = self._now()
        moment = format_timestamp("kantata", now)
        change_id = str(self._next_kantata_id("story_state_changes"))
        self._save("kantata", "story_state_changes", change_id, {
            "id": change_id, "state": "completed", "formatted_state": "Completed", "user_id": None,
            "story_id": story["id"], "created_at": moment, "updated_at": None}, now)
        story.update({"state": "completed",
                      "story_state_change_ids": [*story.get("story_state_change_ids", []), change_id]})
        self._save("kantata", "stories", story["id"], story, now)
        return {"story_id": story["id"], "workspace_id": story.get("workspace_id"), "story_state_change_id": change_id}

    def approve_expense(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Approve an expense; only Certinia's (``platform: "certinia"``) are approved one by one."""
        _require(_psa(payload) == "certinia", 'approve-expense needs platform "certinia"')
        return self.certinia.approve_expense(payload)

    def terminate_worker(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        wanted = payload.get("worker_id")
        if wanted:  # the WID or the employee number both identify a worker
            worker = self.store.get("workday", "workers", str(wanted)) or self._first(
                "workday", "workers", "json_extract(body, '$.workerID') = ?", [str(wanted)])
            _require(worker is not None, f"workday worker {wanted!r} not found", 404)
        else:
            worker = self._first("workday", "workers", "json_extract(body, '$.isActive') = 1", [])
            _require(worker is not None, "no active worker left to terminate", 409)
        now = self._now()
        today = now.date().isoformat()
        worker.update({"isActive": False, "terminationDate": today})
        self._save("workday", "workers", worker["id"], worker, now)
        history_id = self._terminated_history(worker, today, now)
        user = self._first("kantata", "users", "lower(json_extract(body, '$.email_address')) = lower(?)",
                           [worker.get("primaryWorkEmail") or ""])
        if user is not None:  # a drifted e-mail (typo) leaves the PSA user enabled, as in real life
            user["disabled"] = True
            self._save("kantata", "users", user["id"], user, now)
        return {"worker_id": worker["id"], "job_history_id": history_id,
                "kantata_user_id": user["id"] if user else None}

    def _terminated_history(self, worker: Mapping[str, Any], today: str, now: datetime) -> str:
        latest = self._first("workday", "Worker_Job_History", "json_extract(body, '$.Worker_ID') = ?",
                             [worker["workerID"]], order="json_extract(body, '$.Effective_Date') DESC")
        row = {**(latest or {}), "Worker_ID": worker["workerID"], "Effective_Date": today,
               "Employment_Status": "Terminated"}
        row.setdefault("Job_Profile", (worker.get("jobProfile") or {}).get("descriptor"))
        row.setdefault("Business_Title", worker.get("businessTitle"))
        row.setdefault("Location", (worker.get("location") or {}).get("descriptor"))
        # Cost center and FTE come only from the report's earlier rows (the worker resource has neither).
        row.setdefault("Cost_Center", None)
        row.setdefault("FTE", None)
        history_id = f"{worker['workerID']}|{today}"
        self._save("workday", "Worker_Job_History", history_id, row, now)
        return history_id

    def amend_contract(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        contract_id = payload.get("contract_id")
        if contract_id:
            contract = self._get("salesforce", "Contract", contract_id)
        else:
            activated = "json_extract(body, '$.Status') = 'Activated'"
            contract = self._first("salesforce", "Contract", activated, [])
            _require(contract is not None, "no activated contract to amend", 409)
        now = self._now()
        changes = payload.get("changes") or _default_amendment(contract, now.date())
        _require(isinstance(changes, Mapping), "changes must be an object of field: value")
        protected = {"Id", "CreatedDate", "SystemModstamp", "IsDeleted"} & set(changes)
        _require(not protected, f"cannot amend {', '.join(sorted(protected))}")
        contract.update(changes)
        self._save("salesforce", "Contract", contract["Id"], contract, now)
        return {"contract_id": contract["Id"], "changes": dict(changes)}

    def _platform_data(self, platform: Any) -> None:
        """Dynamics 365 records exist once derived (``d365_data``): an event on them derives first."""
        if platform == d365_data.PLATFORM:
            d365_data.ensure(self.store)

    def d365_post_invoices(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Post the unposted Dynamics 365 free-text invoices (optionally of ``company`` or only
        ``invoice_identifiers``), as the firm's accountant does in the client."""
        identifiers = payload.get("invoice_identifiers")
        _require(identifiers is None or (isinstance(identifiers, list) and all(
            isinstance(i, int) for i in identifiers)), "invoice_identifiers must be a list of integers")
        posted = d365_data.post_free_text_invoices(self.store, self._now(), payload.get("company"), identifiers)
        return {"posted": [{"dataAreaId": h["dataAreaId"], "InvoiceIdentifier": h["InvoiceIdentifier"],
                            "InvoiceId": h["InvoiceId"]} for h in posted]}

    def touch(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Change ``count`` (or ``fraction`` of) random live records at once, in batch SQL."""
        platform, obj = payload.get("platform"), payload.get("object")
        _require(platform and obj, "touch needs platform and object")
        self._platform_data(platform)
        total = self.store.count(platform, obj)
        try:
            if payload.get("count") is not None:
                wanted = int(payload["count"])
            else:
                wanted = round(float(payload.get("fraction", 0.01)) * total)
        except (TypeError, ValueError) as exc:
            raise ControlError(400, "count must be an integer and fraction a number") from exc
        _require(wanted >= 0, "count and fraction must not be negative")
        rng = random.Random(payload.get("seed", 0))
        # Written in id order: neighbouring primary-key pages make the batch update ~2x faster.
        chosen = sorted(self._sample_ids(platform, obj, rng, total, min(total, wanted)))
        bodies = self._live_bodies(platform, obj, chosen)
        now = self._now()
        field = TOUCH_FIELDS.get((platform, obj))
        rows = []
        for record_id, body in bodies:
            if field is not None:
                holder, name = _field_parent(body, field[0])
                vocabulary = field[1]
                holder[name] = rng.choice([v for v in vocabulary if v != holder.get(name)] or list(vocabulary))
            rows.append((record_id, _stamp(platform, obj, body, now), body))
        self.store.put_many(platform, obj, rows)
        return {"platform": platform, "object": obj, "touched": len(rows), "ids": [r[0] for r in rows],
                "updated_at": to_iso(rows[0][1]) if rows else None}

    def _sample_ids(self, platform: str, obj: str, rng: random.Random, total: int, size: int) -> list[str]:
        """A seeded random sample of live ids, streamed so a million ids never sit in memory.

        Positions count in change order, which the store's change index answers without
        reading any body; the same seed on the same state picks the same records.
        """
        positions = sorted(rng.sample(range(total), size))
        cursor = self.store.conn.execute(
            "SELECT id FROM records WHERE platform = ? AND object = ? AND deleted = 0 ORDER BY updated_at, id",
            (platform, obj))
        chosen: list[str] = []
        offset, next_position = 0, 0
        # Whole batches, not a Python step per row: a 1% sample of a million rows stays fast.
        while next_position < len(positions) and (batch := cursor.fetchmany(_SAMPLE_BATCH)):
            end = bisect.bisect_left(positions, offset + len(batch), lo=next_position)
            chosen += [batch[p - offset][0] for p in positions[next_position:end]]
            offset, next_position = offset + len(batch), end
        return chosen

    def _live_bodies(self, platform: str, obj: str, ids: list[str]) -> list[tuple[str, dict[str, Any]]]:
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), _FETCH_CHUNK):
            chunk = ids[start:start + _FETCH_CHUNK]
            marks = ",".join("?" * len(chunk))
            for record_id, body in self.store.conn.execute(
                    f"SELECT id, body FROM records WHERE platform = ? AND object = ? AND deleted = 0 "
                    f"AND id IN ({marks})", (platform, obj, *chunk)):
                found[record_id] = orjson.loads(body)
        return [(i, found[i]) for i in ids if i in found]

    def delete(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        platform, obj, record_id = payload.get("platform"), payload.get("object"), payload.get("id")
        _require(platform and obj and record_id, "delete needs platform, object and id")
        self._platform_data(platform)
        body = self._get(platform, obj, str(record_id))
        now = self._now()
        if payload.get("hard"):
            self.store.hard_delete(platform, obj, str(record_id), now)
            return {"platform": platform, "object": obj, "id": record_id, "hard": True}
        if platform == "salesforce":
            body["IsDeleted"] = True  # the recycle bin: still readable through queryAll
        if platform == "hubspot":
            hubspot_data.archive(body, now)  # listed with archived=true, no longer searchable
        moment = _stamp(platform, obj, body, now)
        self.store.soft_delete(platform, obj, str(record_id), body, moment)
        return {"platform": platform, "object": obj, "id": record_id, "hard": False}

    # -- raw records, clock, tokens, limits ---------------------------------------------------
    def put_record(self, payload: Mapping[str, Any], platform: str, obj: str) -> dict[str, Any]:
        record_id, body = payload.get("id"), payload.get("body")
        _require(record_id and isinstance(body, Mapping), "a raw record needs an id and a body object")
        moment = self._moment_of(platform, obj, body, payload.get("updated_at"))
        self.store.put(platform, obj, str(record_id), body, moment)
        return {"platform": platform, "object": obj, "id": record_id, "updated_at": to_iso(moment)}

    def _moment_of(self, platform: str, obj: str, body: Mapping[str, Any], explicit: str | None) -> datetime:
        """The store's change time: as given, else the body's change field, else now."""
        if explicit:
            return _parse_moment(explicit)
        for name in change_fields(platform, obj, body):
            if body.get(name):
                return _parse_moment(body[name])
        return self._now()

    def get_record(self, payload: Mapping[str, Any], platform: str, obj: str, record_id: str) -> Any:
        self._platform_data(platform)
        body = self.store.get(platform, obj, record_id, include_deleted=True)
        _require(body is not None, f"{platform} {obj} {record_id!r} not found", 404)
        return body

    def clock(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        offset = float(self.store.kv_get("clock_offset_seconds", 0.0))
        return {"now": to_iso(self._now()), "offset_seconds": offset}

    def advance_clock(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        seconds = payload.get("seconds")
        _require(isinstance(seconds, int | float) and seconds >= 0, "seconds must be a non-negative number")
        self.store.advance_clock(float(seconds))
        return self.clock(payload)

    def expire_tokens(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        platform = payload.get("platform")
        return {"platform": platform, "expired": self.ctx.tokens.expire_all(platform)}

    def limits(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        return {key: self.store.kv_get(key, getattr(self.ctx.config, key)) for key in LIMIT_KEYS}

    def set_limits(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        unknown = set(payload) - set(LIMIT_KEYS)
        _require(not unknown, f"unknown limits: {', '.join(sorted(unknown))}")
        for key, value in payload.items():
            valid = value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0)
            _require(valid, f"{key} must be an integer >= 0 (or null for the default)")
            self.store.kv_set(key, value)  # None restores the SandboxConfig default
        return self.limits(payload)

    def health(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        return {"status": "ok"}

    def stats(self, payload: Mapping[str, Any]) -> dict[str, int]:
        return record_counts(self.store)

    # -- faults --------------------------------------------------------------------------
    def put_faults(self, payload: Any, platform: str) -> dict[str, Any]:
        try:
            config = faults.set_config(self.store, platform, payload)
        except faults.FaultConfigError as exc:
            raise ControlError(400, str(exc)) from exc
        return {"platform": platform, "config": config}

    def get_faults(self, payload: Mapping[str, Any], platform: str) -> dict[str, Any]:
        return {"platform": platform, "config": faults.get_config(self.store, platform)}

    def clear_faults(self, payload: Mapping[str, Any], platform: str) -> dict[str, Any]:
        faults.clear_config(self.store, platform)
        return {"platform": platform, "config": None}

    def fault_log(self, payload: Mapping[str, Any]) -> list[dict[str, Any]]:
        return faults.read_log(self.store)

    def clear_fault_log(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        faults.clear_log(self.store)
        return {"cleared": True}

    def routes(self) -> list[tuple[str, str, Callable[..., Any]]]:
        # Fixed paths before templated ones: /faults/log must not be read as a platform.
        return [
            ("POST", "/events/deal-won", self.deal_won),
            ("POST", "/events/hubspot-deal-won", self.hubspot_deal_won),
            ("POST", "/events/approve-week", self.approve_week),
            ("POST", "/events/complete-milestone", self.complete_milestone),
            ("POST", "/events/approve-expense", self.approve_expense),
            ("POST", "/events/terminate-worker", self.terminate_worker),
            ("POST", "/events/amend-contract", self.amend_contract),
            ("POST", "/events/d365-post-invoices", self.d365_post_invoices),
            ("POST", "/events/touch", self.touch),
            ("POST", "/events/delete", self.delete),
            ("POST", "/records/{platform}/{obj}", self.put_record),
            ("GET", "/records/{platform}/{obj}/{record_id}", self.get_record),
            ("GET", "/clock", self.clock),
            ("POST", "/clock/advance", self.advance_clock),
            ("POST", "/tokens/expire", self.expire_tokens),
            ("GET", "/limits", self.limits),
            ("PUT", "/limits", self.set_limits),
            ("GET", "/health", self.health),
            ("GET", "/stats", self.stats),
            ("GET", "/faults/log", self.fault_log),
            ("DELETE", "/faults/log", self.clear_fault_log),
            ("PUT", "/faults/{platform}", self.put_faults),
            ("GET", "/faults/{platform}", self.get_faults),
            ("DELETE", "/faults/{platform}", self.clear_faults),
        ]


def _default_amendment(contract: Mapping[str, Any], today: date) -> dict[str, Any]:
    """A typical change order: three more months and 10% more value."""
    end = date.fromisoformat(contract["EndDate"]) if contract.get("EndDate") else today
    value = contract.get("Contract_Value__c") or 0
    term = int(contract.get("ContractTerm") or 0)
    return {"EndDate": add_months(end, 3).isoformat(), "ContractTerm": term + 3,
            "Contract_Value__c": round(value * 1.1, 2)}


def _psa(payload: Mapping[str, Any]) -> str:
    """The PSA an event is for: Kantata unless the payload names another."""
    psa = str(payload.get("platform") or "kantata")
    _require(psa in ("kantata", "certinia"), f"unknown PSA platform {psa!r}")
    return psa


def _parse_monday(text: Any) -> date:
    try:
        monday = date.fromisoformat(str(text))
    except ValueError as exc:
        raise ControlError(400, f"week_start {text!r} is not an ISO date") from exc
    _require(monday.weekday() == 0, f"week_start {text} is not a Monday")
    return monday


def _parse_moment(text: str) -> datetime:
    try:
        return from_iso(text)
    except ValueError as exc:
        raise ControlError(400, f"{text!r} is not an ISO timestamp") from exc


def _handler(method: Callable[..., Any], lock: threading.Lock | None) -> Callable[[Request], Response]:
    def handle(request: Request) -> Response:
        try:
            payload = request.json() if request.body else {}
        except orjson.JSONDecodeError:
            return json_response({"error": "the request body is not valid JSON"}, 400)
        # Ids like RaaS "<Worker_ID>|<date>" arrive percent-encoded in the path.
        params = {name: unquote(value) for name, value in request.params.items()}
        try:
            with lock or contextlib.nullcontext():
                return json_response(method(payload if payload is not None else {}, **params))
        except ControlError as exc:
            return json_response({"error": exc.message}, exc.status)

    return handle


def register(router: Router, ctx: SandboxContext) -> None:
    """Add the ``/_sandbox/`` routes (platform ``control``: never faulted, never authenticated)."""
    api = ControlAPI(ctx)
    # Changes run one at a time: an event reads, allocates ids and writes back, and the
    # server answers on many threads. Reads (health, stats, records) never wait.
    writes = threading.Lock()
    for method, path, handler in api.routes():
        router.add(method, PREFIX + path, PLATFORM, _handler(handler, None if method == "GET" else writes))
