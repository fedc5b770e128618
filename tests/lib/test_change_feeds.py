"""Change feeds of the write-back sensors, over real HTTP against the sandbox.

Business events go through the sandbox control API; the feeds read them back through the
public Salesforce and Kantata clients. The cursor rules (start at the source's newest change,
keyset plus overlap, dedupe by id and change time) are also checked on hand-placed records
that share or precede a timestamp.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ps_pipelines.lib.change_feeds import (
    APPROVED_TIME,
    MAX_SEEN,
    WON_DEALS,
    ChangeEvent,
    FeedCursor,
    advance,
    approved_work,
    newest_change_time,
    won_opportunities,
)
from ps_pipelines.lib.contracts.salesforce import last_modified_by
from ps_pipelines.lib.sources import KantataClient, SalesforceClient
from ps_pipelines.lib.sources.base import parse_timestamp
from ps_pipelines.resources import build_resources
from ps_sandbox.catalog.salesforce import RUN_AS_USER_ID
from ps_sandbox.generate import SF_ADMIN_USER
from tests.conftest import RunningSandbox

OVERLAP = timedelta(seconds=60)


@pytest.fixture
def salesforce(sandbox: RunningSandbox) -> SalesforceClient:
    return build_resources("local", sandbox_url=sandbox.url)["salesforce"].client()


@pytest.fixture
def kantata(sandbox: RunningSandbox) -> KantataClient:
    return build_resources("local", sandbox_url=sandbox.url)["kantata"].client()


def _opportunity(sandbox: RunningSandbox, opportunity_id: str) -> dict[str, Any]:
    return sandbox.control("GET", f"records/salesforce/Opportunity/{opportunity_id}")


def _newest(sandbox: RunningSandbox, platform: str, obj: str) -> dict[str, Any]:
    return sandbox.ctx.store.scan(platform, obj, include_deleted=True, descending=True, limit=1)[0]


# -- won deals --------------------------------------------------------------------------------
def test_the_first_read_starts_at_the_newest_change_and_replays_no_history(
    sandbox: RunningSandbox, salesforce: SalesforceClient
) -> None:
    batch = won_opportunities(salesforce, None)
    newest = _newest(sandbox, "salesforce", "Opportunity")
    cursor = batch.cursors["opportunity"]
    assert batch.events == []
    assert (cursor.changed_at, cursor.record_id) == (parse_timestamp(newest["SystemModstamp"]), newest["Id"])
    # Nothing that already happened comes back on the next read either.
    assert won_opportunities(salesforce, cursor).events == []


def test_a_won_deal_is_reported_once_with_its_change_time(
    sandbox: RunningSandbox, salesforce: SalesforceClient
) -> None:
    start = won_opportunities(salesforce, None).cursors["opportunity"]
    won = sandbox.control("POST", "events/deal-won", {})
    stamp = parse_timestamp(_opportunity(sandbox, won["opportunity_id"])["SystemModstamp"])

    first = won_opportunities(salesforce, start)
    assert first.events == [ChangeEvent(stamp, "opportunity", won["opportunity_id"])]
    again = won_opportunities(salesforce, first.cursors["opportunity"])
    assert again.events == []


def test_our_own_activation_writeback_and_unwon_deals_do_not_trigger(
    sandbox: RunningSandbox, salesforce: SalesforceClient
) -> None:
    start = won_opportunities(salesforce, None).cursors["opportunity"]
    won = sandbox.control("POST", "events/deal-won", {})["opportunity_id"]
    after_win = won_opportunities(salesforce, start).cursors["opportunity"]
    # What the activation flow writes back once the ERP project exists.
    salesforce.update("Opportunity", won, {"ERP_Project_Id__c": "4242", "Activation_Status__c": "Complete"})
    open_deal = sandbox.ctx.store.scan("salesforce", "Opportunity", equals={"IsClosed": False}, limit=1)[0]
    salesforce.update("Opportunity", open_deal["Id"], {"Type": "Existing Business"})

    batch = won_opportunities(salesforce, after_win)
    assert batch.events == []
    # The cursor still moved past both changes, so they are not read again and again.
    cursor = batch.cursors["opportunity"]
    changed = max(parse_timestamp(_opportunity(sandbox, i)["SystemModstamp"]) for i in (won, open_deal["Id"]))
    assert cursor.changed_at == changed


def test_the_start_follows_the_source_clock_not_ours(sandbox: RunningSandbox, salesforce: SalesforceClient) -> None:
    """A source clock far ahead of ours (the sandbox's can be advanced) must not replay its changes."""
    sandbox.control("POST", "clock/advance", {"seconds": 400 * 86400})
    ahead = sandbox.control("POST", "events/deal-won", {})["opportunity_id"]
    start = won_opportunities(salesforce, None).cursors["opportunity"]
    assert start.record_id == ahead
    assert start.changed_at > datetime.now(UTC) + timedelta(days=399)

    won = sandbox.control("POST", "events/deal-won", {})["opportunity_id"]
    assert [e.record_id for e in won_opportunities(salesforce, start).events] == [won]


# -- approved work ----------------------------------------------------------------------------
def test_an_approved_week_reports_each_approved_billable_entry_once(
    sandbox: RunningSandbox, kantata: KantataClient
) -> None:
    start = approved_work(kantata, {})
    assert start.events == [] and set(start.cursors) == {"time_entry", "expense", "milestone"}
    week = sandbox.control("POST", "events/approve-week", {})
    approved = week["approved"] + week["created"]
    billable = {i for i in approved if sandbox.ctx.store.get("kantata", "time_entries", i)["billable"]}
    assert billable, "the approved week has no billable entry to report"

    batch = approved_work(kantata, start.cursors)
    assert {(e.kind, e.record_id) for e in batch.events} == {("time_entry", i) for i in billable}
    assert approved_work(kantata, batch.cursors).events == []


def test_a_completed_milestone_is_reported(sandbox: RunningSandbox, kantata: KantataClient) -> None:
    start = approved_work(kantata, {})
    story = sandbox.control("POST", "events/complete-milestone", {})["story_id"]
    batch = approved_work(kantata, start.cursors)
    assert [(e.kind, e.record_id) for e in batch.events] == [("milestone", story)]


# -- cursor rules on hand-placed records -------------------------------------------------------
class _Entries:
    """Unapproved time entries rewritten as approved and billable at a chosen change time."""

    def __init__(self, sandbox: RunningSandbox) -> None:
        self.sandbox = sandbox
        rows = sandbox.ctx.store.scan("kantata", "time_entries", equals={"approved": False}, limit=10)
        self.unused: Iterator[dict[str, Any]] = iter(rows)

    def approve_at(self, moment: datetime) -> str:
        body = next(self.unused)
        stamp = moment.strftime("%Y-%m-%dT%H:%M:%S+00:00")
        body.update({"approved": True, "billable": True, "updated_at": stamp})
        self.sandbox.control("POST", "records/kantata/time_entries", {"id": body["id"], "body": body})
        return body["id"]


def _approve_submission_only(sandbox: RunningSandbox, collection: str, items: str, flag: str) -> tuple[str, list[str]]:
    """Approve a pending submission with billable work by changing the submission alone (its status and
    resolution), as Kantata documents an approval; the records on it are left untouched."""
    store = sandbox.ctx.store
    obj = "time_entries" if items == "time_entry_ids" else "expenses"
    submission = next(found for found in store.scan("kantata", collection, equals={"status": "pending"})
                      if any(store.get("kantata", obj, i)[flag] for i in found[items]))
    moment = sandbox.ctx.store.now().replace(microsecond=0) + timedelta(seconds=5)
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    submission.update({"status": "approved", "current_resolution_created_at_date": stamp, "updated_at": stamp})
    sandbox.control("POST", f"records/kantata/{collection}", {"id": submission["id"], "body": submission})
    return stamp, submission[items]


@pytest.mark.parametrize(("collection", "items", "kind", "flag"), [
    ("timesheet_submissions", "time_entry_ids", "time_entry", "billable"),
    ("expense_report_submissions", "expense_ids", "expense", "is_billable"),
])
def test_an_approval_that_changes_only_the_submission_is_reported(
    sandbox: RunningSandbox, kantata: KantataClient, collection: str, items: str, kind: str, flag: str
) -> None:
    """Approval is read from what Kantata documents: the submission's status and its ``updated_at``
    (``updated_after`` on timesheet / expense report submissions). An approval that leaves the time
    entries or expenses themselves unchanged is still an event for each billable one, at the
    submission's change time."""
    start = approved_work(kantata, {})
    stamp, ids = _approve_submission_only(sandbox, collection, items, flag)
    records = {i: sandbox.ctx.store.get("kantata", "time_entries" if kind == "time_entry" else "expenses", i)
               for i in ids}
    billable = sorted(i for i, record in records.items() if record[flag])
    assert billable and all(not record.get("approved") for record in records.values())
    batch = approved_work(kantata, start.cursors)
    assert sorted(e.record_id for e in batch.events if e.kind == kind) == billable
    assert {e.changed_at for e in batch.events} <= {parse_timestamp(stamp)}
    assert approved_work(kantata, batch.cursors).events == []


def test_records_sharing_a_timestamp_or_arriving_late_are_neither_lost_nor_repeated(
    sandbox: RunningSandbox, kantata: KantataClient
) -> None:
    entries = _Entries(sandbox)
    moment = sandbox.ctx.store.now().replace(microsecond=0) + timedelta(seconds=5)
    start = approved_work(kantata, {}).cursors
    first = entries.approve_at(moment)
    step1 = approved_work(kantata, start, overlap=OVERLAP)
    assert [e.record_id for e in step1.events] == [first]

    # Committed after that read: one at the very same second, one a little earlier (inside the
    # overlap), one older than the overlap window, which no cursor can promise to see.
    same_second = entries.approve_at(moment)
    late = entries.approve_at(moment - timedelta(seconds=10))
    entries.approve_at(moment - OVERLAP - timedelta(seconds=5))
    step2 = approved_work(kantata, step1.cursors, overlap=OVERLAP)
    assert sorted(e.record_id for e in step2.events) == sorted([same_second, late])
    assert approved_work(kantata, step2.cursors, overlap=OVERLAP).events == []


def test_a_cursor_survives_its_json_form() -> None:
    cursor = FeedCursor(datetime(2026, 11, 1, 12, 0, 0, 123000, tzinfo=UTC), "006A", datetime(2026, 11, 1, 11, 59,
                        tzinfo=UTC), frozenset({("006A", "2026-11-01T12:00:00.123000+00:00")}))
    assert FeedCursor.from_json(cursor.to_json()) == cursor


def test_the_remembered_window_is_bounded_without_forgetting_the_newest_timestamp() -> None:
    base = datetime(2026, 11, 1, tzinfo=UTC)
    start = FeedCursor(base, "", base)
    spread = [ChangeEvent(base + timedelta(milliseconds=i), "time_entry", f"a{i}") for i in range(MAX_SEEN)]
    newest = base + timedelta(seconds=5)
    burst = [ChangeEvent(newest, "time_entry", f"b{i}") for i in range(10)]
    events = spread + burst
    cursor = advance(start, [(e.changed_at, e.record_id, True) for e in events], events, OVERLAP)
    assert len(cursor.seen) == MAX_SEEN
    assert {("b3", newest.isoformat())} <= cursor.seen
    assert cursor.floor > base and (cursor.changed_at, cursor.record_id) == (newest, "b9")


# -- the newest-change search ------------------------------------------------------------------
class _Timeline:
    """A source client over fixed change times, counting the requests a search makes."""

    def __init__(self, moments: list[datetime]) -> None:
        self.moments = moments
        self.requests = 0

    def extract(self, contract: Any, *, since: datetime | None, ids: Any = None) -> Iterator[list[dict]]:
        self.requests += 1
        changed = sorted(m for m in self.moments if since is None or m >= since)
        if changed:
            yield [{"at": m} for m in changed]


@pytest.mark.parametrize("distance", [timedelta(0), timedelta(days=-21), timedelta(days=400), timedelta(seconds=3)])
def test_the_newest_change_is_found_within_a_second_in_few_requests(distance: timedelta) -> None:
    around = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    newest = around + distance
    source = _Timeline([newest - timedelta(days=30), newest - timedelta(seconds=1), newest])
    found = newest_change_time(source, WON_DEALS.contract, around=around)
    assert found is not None and newest - timedelta(seconds=1) <= found <= newest
    assert source.requests <= 2 * int(max(abs(distance.total_seconds()), 1)).bit_length() + 4


def test_an_empty_source_has_no_newest_change() -> None:
    assert newest_change_time(_Timeline([]), APPROVED_TIME.contract, around=datetime.now(UTC)) is None


def test_our_integration_user_is_the_one_the_token_identity_url_names(salesforce: SalesforceClient) -> None:
    assert salesforce.integration_user_id() == RUN_AS_USER_ID
    # The identity URL may carry the 15-character form of the id; it names the same user.
    assert last_modified_by({"LastModifiedById": RUN_AS_USER_ID}, RUN_AS_USER_ID[:15])
    assert not last_modified_by({"LastModifiedById": SF_ADMIN_USER}, RUN_AS_USER_ID)
    assert not last_modified_by({}, RUN_AS_USER_ID)
