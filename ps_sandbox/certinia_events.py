"""The control API's business events for an org that runs Certinia PSA (``platform: "certinia"``).

Each changes the ``pse__`` records the way Certinia does (PSA help, "Timecard Fields", "Milestone
Fields", "Expense Fields"): approving sets the record's Status to Approved and checks Approved and
Include In Financials, the checkbox that puts a record's amounts into the project's actuals.
Records are Salesforce records, so every change stamps SystemModstamp and LastModifiedDate with
the sandbox clock and incremental SOQL reads see it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ps_sandbox.catalog import certinia as pse
from ps_sandbox.catalog.salesforce import AUTO_NUMBER_KEY
from ps_sandbox.generate import format_timestamp

if TYPE_CHECKING:
    from ps_sandbox.control import ControlAPI

PLATFORM = "certinia"
_SF = "salesforce"  # where the package's records live: the Salesforce org
_APPROVED = {"pse__Status__c": "Approved", "pse__Approved__c": True, "pse__Include_In_Financials__c": True}
_WEEK_HOURS = 8.0  # a created week: eight hours Monday to Friday


class CertiniaEvents:
    def __init__(self, api: ControlAPI) -> None:
        self.api = api
        self.store = api.store

    def _save(self, spec: pse.SObjectSpec, record: dict[str, Any], now: datetime) -> None:
        pse.derive(spec.name, record)
        self.api._save(_SF, spec.name, record["Id"], record, now)

    def approve_week(self, payload: Mapping[str, Any], monday: date | None) -> dict[str, Any]:
        """Approve a resource's timecards for the week starting ``monday``; a week with no
        timecard gets one (eight hours a day on the resource's latest assignment), approved."""
        resource_id, monday = self._approval_target(payload.get("resource_id"), monday)
        self.api._get(_SF, "Contact", resource_id)
        cards = self.store.scan(_SF, pse.TIMECARD.name, order="id", equals={
            "pse__Resource__c": resource_id, "pse__Start_Date__c": monday.isoformat()})
        now = self.api._now()
        answer: dict[str, Any] = {"platform": PLATFORM, "resource_id": resource_id, "week_start": monday.isoformat(),
                                  "approved": [], "created": [], "already_approved": []}
        if not cards:
            card = self._new_week(resource_id, monday, now)
            answer.update(approved=[card["Id"]], created=[card["Id"]])
            return answer
        for card in cards:
            if card.get("pse__Status__c") == "Approved":
                answer["already_approved"].append(card["Id"])
                continue
            card.update(_APPROVED, pse__Submitted__c=True)
            self._save(pse.TIMECARD, card, now)
            answer["approved"].append(card["Id"])
        return answer

    def _approval_target(self, resource_id: Any, monday: date | None) -> tuple[str, date]:
        """Defaults: the resource and week of the most recently changed submitted timecard."""
        if resource_id and monday:
            return str(resource_id), monday
        where, params = "json_extract(body, '$.pse__Status__c') = 'Submitted'", []
        if resource_id:
            where += " AND json_extract(body, '$.pse__Resource__c') = ?"
            params.append(str(resource_id))
        latest = self.api._first(_SF, pse.TIMECARD.name, where, params, order="updated_at DESC, id DESC")
        if latest is None:
            raise self.api.refusal(409, "no submitted Certinia timecard to approve; name resource_id and week_start")
        return str(resource_id or latest["pse__Resource__c"]), monday or date.fromisoformat(
            latest["pse__Start_Date__c"])

    def _new_week(self, resource_id: str, monday: date, now: datetime) -> dict[str, Any]:
        assignment = self.api._first(_SF, pse.ASSIGNMENT.name, "json_extract(body, '$.pse__Resource__c') = ?",
                                     [resource_id], order="updated_at DESC, id DESC")
        if assignment is None:
            raise self.api.refusal(409, f"Certinia resource {resource_id} has no assignment to log time on")
        card_id = self.api._new_sf_id(pse.TIMECARD.key_prefix, pse.TIMECARD.name)
        number = int(self.store.kv_get(AUTO_NUMBER_KEY.format(pse.TIMECARD.name), 0)) + 1
        self.store.kv_set(AUTO_NUMBER_KEY.format(pse.TIMECARD.name), number)
        card: dict[str, Any] = {
            "Id": card_id, "Name": pse.AUTO_NUMBERS[pse.TIMECARD.name].format(number),
            "pse__Resource__c": resource_id, "pse__Project__c": assignment["pse__Project__c"],
            "pse__Assignment__c": assignment["Id"], "pse__Start_Date__c": monday.isoformat(),
            "pse__End_Date__c": (monday + timedelta(days=6)).isoformat(),
            **{f"pse__{day}_Hours__c": _WEEK_HOURS if n < 5 else 0.0 for n, day in enumerate(pse.WEEKDAYS)},
            "pse__Billable__c": bool(assignment.get("pse__Is_Billable__c")), "pse__Submitted__c": True,
            "pse__Billed__c": False, "pse__Bill_Rate__c": assignment.get("pse__Bill_Rate__c"),
            "pse__Cost_Rate_Amount__c": assignment.get("pse__Cost_Rate_Amount__c"),
            "pse__Timecard_Notes__c": "Logged and approved through the sandbox control API",
            "CurrencyIsoCode": assignment.get("CurrencyIsoCode"), "OwnerId": assignment.get("OwnerId"),
            "IsDeleted": False, "CreatedDate": format_timestamp(_SF, now), **_APPROVED}
        self._save(pse.TIMECARD, card, now)
        return card

    def complete_milestone(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """A milestone is completed when it is approved with its actual date: then it counts in
        financials and can be billed (PSA help, "Milestone Fields": Actual Date, Approved)."""
        milestone = self._target(pse.MILESTONE, payload.get("milestone_id"),
                                 "json_extract(body, '$.pse__Status__c') NOT IN ('Approved', 'Canceled')",
                                 "json_extract(body, '$.pse__Target_Date__c'), id", "no open Certinia milestone")
        now = self.api._now()
        milestone.update(_APPROVED, pse__Approved_for_Billing__c=True, pse__Actual_Date__c=now.date().isoformat(),
                         pse__Closed_for_Time_Entry__c=True)
        self._save(pse.MILESTONE, milestone, now)
        return {"platform": PLATFORM, "milestone_id": milestone["Id"], "project_id": milestone.get("pse__Project__c")}

    def approve_expense(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        expense = self._target(pse.EXPENSE, payload.get("expense_id"),
                               "json_extract(body, '$.pse__Status__c') = 'Submitted'", "updated_at DESC, id DESC",
                               "no submitted Certinia expense")
        now = self.api._now()
        expense.update(_APPROVED, pse__Submitted__c=True)
        self._save(pse.EXPENSE, expense, now)
        return {"platform": PLATFORM, "expense_id": expense["Id"], "project_id": expense.get("pse__Project__c")}

    def _target(self, spec: pse.SObjectSpec, wanted: Any, where: str, order: str, none_left: str) -> dict[str, Any]:
        if wanted:
            return self.api._get(_SF, spec.name, str(wanted))
        found = self.api._first(_SF, spec.name, where, [], order=order)
        if found is None:
            raise self.api.refusal(409, f"{none_left} left")
        return found
