"""Change feeds for the write-back sensors: what became a won deal or approved work since a cursor.

Each feed reads one entity through its public source client (``extract(contract, since=...)``)
and keeps the records that should start a write-back: won opportunities not yet activated,
approved billable time entries and expenses, completed milestones. An event is one
``(record id, change time)``: a record changed twice is two events.

Cursors are ``(change time, id)`` keysets with an overlap window. Every read starts
``overlap`` before the newest change already read, so a record committed late with an older
change time is still seen; events inside the window that were already reported are
remembered in the cursor (``seen``) and not reported again, so records sharing a timestamp
are neither lost nor repeated. No Dagster imports: the sensors wrap these functions.

Our own write-backs are not events: a feed whose records name the user who last changed them
(Salesforce's ``LastModifiedById``) drops changes made by the user the client authenticates as
(``integration_user_id``), so marking a deal activated, or "Needs attention", never starts
another activation. The cursor still moves past those changes. A HubSpot deal names no such
user, so a won deal already carrying the status our activation writes is not an event.

Which feeds a firm has follows its estate (``won_deal_feeds`` / ``approved_work_feeds``): one
per declared CRM (Salesforce opportunities, HubSpot deals) or PSA (Kantata time entries,
expenses and milestones; Certinia timecards, expenses and milestones), each read through its
platform's client (``read_platform_feeds``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from ps_pipelines.estate import Estate
from ps_pipelines.lib.contracts import certinia, hubspot, kantata, salesforce
from ps_pipelines.lib.contracts.base import EntityContract
from ps_pipelines.lib.sources.base import SourceClient, parse_timestamp
from ps_pipelines.lib.writeback.activation import CRM_TARGETS, NEEDS_ATTENTION

DEFAULT_OVERLAP = timedelta(seconds=60)
# A burst (month-end approvals) could put thousands of events in one overlap window; past
# this many the window is narrowed to the newest timestamps so the cursor stays small.
MAX_SEEN = 5000
# Statuses our activation write-back leaves on an opportunity that is fully set up; the
# sandbox's generated history marks such deals "Complete". An event showing one of them
# together with an ERP project id is our own write-back echoing, not a new deal.
ACTIVATED_STATUSES = frozenset({"Activated", "Complete"})
# Bounds of the search for the source's newest change (first tick): whole seconds are what
# Kantata stamps, and nothing in a feed is older than this.
_SEARCH_PRECISION = timedelta(seconds=1)
_SEARCH_LIMIT = timedelta(days=365 * 50)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# -- events and cursors ----------------------------------------------------------------------
@dataclass(frozen=True, order=True)
class ChangeEvent:
    """One change of one record that should start a write-back."""

    changed_at: datetime
    kind: str
    record_id: str

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.record_id}@{self.changed_at.isoformat()}"


@dataclass(frozen=True)
class FeedCursor:
    """Where a feed stopped: the newest ``(change time, id)`` read, and what was reported since ``floor``.

    The next read asks for changes at or after ``floor`` (normally ``changed_at`` minus the
    overlap) and reports those not in ``seen``.
    """

    changed_at: datetime
    record_id: str
    floor: datetime
    seen: frozenset[tuple[str, str]] = field(default_factory=frozenset)

    def to_json(self) -> dict[str, Any]:
        return {"changed_at": self.changed_at.isoformat(), "id": self.record_id, "floor": self.floor.isoformat(),
                "seen": sorted([record_id, at] for record_id, at in self.seen)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FeedCursor:
        return cls(
            changed_at=datetime.fromisoformat(data["changed_at"]),
            record_id=str(data["id"]),
            floor=datetime.fromisoformat(data["floor"]),
            seen=frozenset((str(record_id), str(at)) for record_id, at in data.get("seen", [])),
        )


@dataclass(frozen=True)
class Feed:
    """One entity's change feed: which changes are events, and where a record keeps its id and time.

    ``also_changed_by``: a related object folded into the record whose change counts as the
    record's (a Kantata submission: approving it changes the submission, not necessarily the
    time entries on it); the record's change time is then the later of the two.
    ``last_changed_by``: whether a record's last change was made by a given user; with it,
    changes made by our own integration user are not events.
    ``normalized``: the fields are read from the record in the contract's row form
    (``contract.normalize``: a HubSpot record's properties lifted beside its id).
    ``kind`` names the feed's events and its cursor: unique across every platform's feeds, as
    one sensor may read several platforms (a firm with two CRMs).
    """

    kind: str
    contract: EntityContract
    is_event: Callable[[Mapping[str, Any]], bool]
    id_field: str
    change_field: str
    also_changed_by: str | None = None
    last_changed_by: Callable[[Mapping[str, Any], str], bool] | None = None
    normalized: bool = False

    @property
    def platform(self) -> str:
        """The platform (and resource key) whose client reads the feed."""
        return self.contract.platform

    def fields(self, record: Mapping[str, Any]) -> Mapping[str, Any]:
        return self.contract.normalize(dict(record)) if self.normalized else record

    def change_of(self, record: Mapping[str, Any]) -> datetime:
        changed = parse_timestamp(record[self.change_field])
        related = record.get(self.also_changed_by) if self.also_changed_by else None
        if isinstance(related, Mapping) and related.get(self.change_field):
            changed = max(changed, parse_timestamp(related[self.change_field]))
        return changed

    def id_of(self, record: Mapping[str, Any]) -> str:
        return str(record[self.id_field])

    def reports(self, record: Mapping[str, Any], own_user: str | None) -> bool:
        """The record's change is an event: it is one by ``is_event`` and not our own write."""
        if own_user and self.last_changed_by and self.last_changed_by(record, own_user):
            return False
        return self.is_event(record)

    def changes(self, record: Mapping[str, Any], own_user: str | None) -> tuple[datetime, str, bool]:
        """``(change time, id, is an event)`` of one record as the client answered it."""
        fields = self.fields(record)
        return self.change_of(fields), self.id_of(fields), self.reports(fields, own_user)


@runtime_checkable
class KnowsOwnUser(Protocol):
    """A source client that can name the user its requests (and so our write-backs) run as."""

    def integration_user_id(self) -> str | None: ...


@runtime_checkable
class KnowsNewestChange(Protocol):
    """A source client that can answer the newest change of an entity in one request."""

    def newest_change(self, contract: EntityContract) -> datetime | None: ...


@dataclass(frozen=True)
class FeedBatch:
    """New events of one or more feeds, oldest first, and the cursors to store after them."""

    events: list[ChangeEvent]
    cursors: dict[str, FeedCursor]


# -- what counts as an event -------------------------------------------------------------------
def is_activation_trigger(record: Mapping[str, Any]) -> bool:
    """A live won opportunity that is not already activated (with an ERP project id)."""
    if not record.get("IsWon") or record.get("IsDeleted"):
        return False
    activated = record.get("Activation_Status__c") in ACTIVATED_STATUSES and bool(record.get("ERP_Project_Id__c"))
    return not activated


def is_approved_billable(record: Mapping[str, Any]) -> bool:
    """Approved billable time or expense: what time-and-materials invoices are made of.

    Approval is what Kantata documents (``kantata.approval_status``: the time entry's ``approved``
    flag, else its latest submission's status); a time entry says ``billable``, an expense
    ``is_billable``.
    """
    billable = record.get("billable") if "billable" in record else record.get("is_billable")
    return kantata.approval_status(record) == "approved" and bool(billable)


def is_completed_milestone(record: Mapping[str, Any]) -> bool:
    return record.get("story_type") == "milestone" and record.get("state") == "completed"


_HUBSPOT_DEAL = CRM_TARGETS["hubspot"]


def is_hubspot_activation_trigger(record: Mapping[str, Any]) -> bool:
    """A live won HubSpot deal (a flattened row) that our activation has not marked yet.

    A deal names no user who last changed it, so the status is the mark: once the activation
    has written ``Complete`` (with the ERP project id) or ``Needs attention: ...``, later
    changes of the deal are not events; the batch path still posts whatever they make missing.
    """
    if str(record.get("hs_is_closed_won")).lower() != "true" or str(record.get("archived")).lower() == "true":
        return False
    status = str(record.get(_HUBSPOT_DEAL.status_field) or "")
    activated = status in ACTIVATED_STATUSES and bool(record.get(_HUBSPOT_DEAL.project_field))
    return not (activated or status.startswith(NEEDS_ATTENTION))


def is_approved_certinia_billable(record: Mapping[str, Any]) -> bool:
    """An approved, billable Certinia timecard or expense (PSA help, "Timecard Fields":
    Status picklist, Billable checkbox), not in the recycle bin."""
    return (record.get("pse__Status__c") == "Approved" and bool(record.get("pse__Billable__c"))
            and not record.get("IsDeleted"))


def is_completed_certinia_milestone(record: Mapping[str, Any]) -> bool:
    """A Certinia milestone is complete once approved (PSA help, "Milestone Fields")."""
    return record.get("pse__Status__c") == "Approved" and not record.get("IsDeleted")


# The feed also selects who made each change, to tell a human's win from our write-back.
_OPPORTUNITY_CHANGES = replace(salesforce.OPPORTUNITIES, source_fields=(
    *salesforce.OPPORTUNITIES.source_fields, salesforce.LAST_MODIFIED_BY))
WON_DEALS = Feed("opportunity", _OPPORTUNITY_CHANGES, is_activation_trigger, "Id", "SystemModstamp",
                 last_changed_by=salesforce.last_modified_by)
# Kantata feeds need no such guard: our write-backs only create and update workspaces (and
# their external references), never time entries, expenses, stories or timesheet submissions.
APPROVED_TIME = Feed("time_entry", kantata.TIME_ENTRIES, is_approved_billable, "id", "updated_at",
                     also_changed_by="recent_submission")
APPROVED_EXPENSES = Feed("expense", kantata.EXPENSES, is_approved_billable, "id", "updated_at",
                         also_changed_by="recent_submission")
COMPLETED_MILESTONES = Feed("milestone", kantata.MILESTONES, is_completed_milestone, "id", "updated_at")
APPROVED_WORK = (APPROVED_TIME, APPROVED_EXPENSES, COMPLETED_MILESTONES)
# HubSpot: the search itself selects won deals (hs_is_closed_won, what the activation requests
# read as is_won: the won stage of every pipeline, renewals included), so the feed's position
# moves with won deals only; the status tells our own marks apart (is_hubspot_activation_trigger).
_WON_HUBSPOT_DEALS = replace(hubspot.DEALS, source_filter="hs_is_closed_won EQ true")
WON_HUBSPOT_DEALS = Feed("hubspot_deal", _WON_HUBSPOT_DEALS, is_hubspot_activation_trigger, "id",
                         "hs_lastmodifieddate", normalized=True)
# Certinia: our write-backs upsert projects only, never timecards, expenses or milestones.
APPROVED_TIMECARDS = Feed("certinia_timecard", certinia.TIMECARDS, is_approved_certinia_billable, "Id",
                          "SystemModstamp")
APPROVED_CERTINIA_EXPENSES = Feed("certinia_expense", certinia.EXPENSES, is_approved_certinia_billable, "Id",
                                  "SystemModstamp")
COMPLETED_CERTINIA_MILESTONES = Feed("certinia_milestone", certinia.MILESTONES, is_completed_certinia_milestone,
                                     "Id", "SystemModstamp")
# Per platform, the feeds of each flow's events.
WON_DEAL_FEEDS: dict[str, tuple[Feed, ...]] = {"salesforce": (WON_DEALS,), "hubspot": (WON_HUBSPOT_DEALS,)}
APPROVED_WORK_FEEDS: dict[str, tuple[Feed, ...]] = {
    "kantata": APPROVED_WORK,
    "certinia": (APPROVED_TIMECARDS, APPROVED_CERTINIA_EXPENSES, COMPLETED_CERTINIA_MILESTONES),
}


def won_deal_feeds(estate: Estate) -> tuple[Feed, ...]:
    """The won-deal feeds of every CRM ``estate`` declares, in declaration order."""
    return tuple(feed for platform in estate.for_role("crm") for feed in WON_DEAL_FEEDS[platform])


def approved_work_feeds(estate: Estate) -> tuple[Feed, ...]:
    """The approved-work feeds of every PSA ``estate`` declares, in declaration order."""
    return tuple(feed for platform in estate.for_role("psa") for feed in APPROVED_WORK_FEEDS[platform])


# -- reading -----------------------------------------------------------------------------------
def won_opportunities(
    client: SourceClient, cursor: FeedCursor | None, *, overlap: timedelta = DEFAULT_OVERLAP
) -> FeedBatch:
    """Won, not yet activated Salesforce opportunities changed since ``cursor`` (``None``: start now)."""
    return read_feeds(client, (WON_DEALS,), {WON_DEALS.kind: cursor} if cursor else {}, overlap=overlap)


def approved_work(
    client: SourceClient, cursors: Mapping[str, FeedCursor], *, overlap: timedelta = DEFAULT_OVERLAP
) -> FeedBatch:
    """Approved billable time entries and expenses and completed milestones changed since ``cursors``
    (one per kind: ``time_entry``, ``expense``, ``milestone``; a missing kind starts now)."""
    return read_feeds(client, APPROVED_WORK, cursors, overlap=overlap)


def read_feeds(
    client: SourceClient,
    feeds: Sequence[Feed],
    cursors: Mapping[str, FeedCursor],
    *,
    overlap: timedelta = DEFAULT_OVERLAP,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> FeedBatch:
    """New events of every feed since its cursor, all feeds read before anything is returned.

    A feed without a cursor starts at the source's newest change and reports nothing: history
    is not replayed (the write-back jobs post everything still missing on their own).
    """
    events: list[ChangeEvent] = []
    new_cursors: dict[str, FeedCursor] = {}
    own_user = own_user_of(client, feeds)
    for feed in feeds:
        cursor = cursors.get(feed.kind)
        if cursor is None:
            new_cursors[feed.kind] = start_cursor(client, feed, overlap=overlap, around=now())
            continue
        found, new_cursors[feed.kind] = read_feed(client, feed, cursor, overlap=overlap, own_user=own_user)
        events += found
    return FeedBatch(sorted(events), new_cursors)


def read_platform_feeds(
    clients: Mapping[str, SourceClient],
    feeds: Sequence[Feed],
    cursors: Mapping[str, FeedCursor],
    *,
    overlap: timedelta = DEFAULT_OVERLAP,
) -> FeedBatch:
    """``read_feeds`` of each platform's feeds through its client (``clients`` by platform), as one batch."""
    events: list[ChangeEvent] = []
    new_cursors: dict[str, FeedCursor] = {}
    for platform in dict.fromkeys(feed.platform for feed in feeds):
        batch = read_feeds(clients[platform], [f for f in feeds if f.platform == platform], cursors, overlap=overlap)
        events += batch.events
        new_cursors.update(batch.cursors)
    return FeedBatch(sorted(events), new_cursors)


def own_user_of(client: SourceClient, feeds: Sequence[Feed]) -> str | None:
    """The user our own writes to ``client``'s platform are made as, if a feed can tell them apart."""
    if not any(feed.last_changed_by for feed in feeds) or not isinstance(client, KnowsOwnUser):
        return None
    return client.integration_user_id()


def read_feed(
    client: SourceClient, feed: Feed, cursor: FeedCursor, *, overlap: timedelta = DEFAULT_OVERLAP,
    own_user: str | None = None,
) -> tuple[list[ChangeEvent], FeedCursor]:
    """Events changed at or after ``cursor.floor`` that the cursor has not reported, and the next cursor.

    Changes whose last author is ``own_user`` are not events (see ``Feed.last_changed_by``).
    """
    records = [record for page in client.extract(feed.contract, since=cursor.floor) for record in page]
    changes = [feed.changes(record, own_user) for record in records]
    fresh = {
        ChangeEvent(at, feed.kind, record_id)
        for at, record_id, is_event in changes
        if is_event and at >= cursor.floor and (record_id, at.isoformat()) not in cursor.seen
    }
    return sorted(fresh), advance(cursor, changes, fresh, overlap)


def advance(
    cursor: FeedCursor,
    changes: Iterable[tuple[datetime, str, bool]],
    reported: Iterable[ChangeEvent],
    overlap: timedelta,
) -> FeedCursor:
    """The cursor after a read: its position moves to the newest change read (events or not, so
    unrelated changes are not re-read forever), and ``seen`` keeps what is inside the new window."""
    position = max([(cursor.changed_at, cursor.record_id), *((at, record_id) for at, record_id, _ in changes)])
    floor = max(cursor.floor, position[0] - overlap)
    seen = {(record_id, datetime.fromisoformat(at)) for record_id, at in cursor.seen}
    seen |= {(event.record_id, event.changed_at) for event in reported}
    kept = sorted(((at, record_id) for record_id, at in seen if at >= floor), reverse=True)
    if len(kept) > MAX_SEEN:
        # Narrow the window to whole timestamps, newest first: an event at the new floor that
        # was reported must stay remembered, or the next read would report it again.
        floor = kept[MAX_SEEN - 1][0]
        kept = [(at, record_id) for at, record_id in kept if at >= floor]
    return FeedCursor(position[0], position[1], floor, frozenset((record_id, at.isoformat()) for at, record_id in kept))


# -- the first tick ----------------------------------------------------------------------------
def start_cursor(
    client: SourceClient, feed: Feed, *, overlap: timedelta = DEFAULT_OVERLAP, around: datetime | None = None
) -> FeedCursor:
    """A cursor at the source's newest change, with everything in its window already counted as seen.

    The source's clock, not ours, decides what "now" is: the sandbox's clock runs ahead of the
    wall clock, and a real platform's may drift, so starting at our own clock could replay (or
    skip) changes. An empty source starts at the epoch, so its first record is reported.
    """
    if isinstance(client, KnowsNewestChange):
        newest = client.newest_change(feed.contract)
    else:
        newest = newest_change_time(client, feed.contract, around=around or datetime.now(UTC))
    if newest is None:
        return FeedCursor(_EPOCH, "", _EPOCH)
    # Read the window below the newest change once, as any tick would: the position lands on
    # the newest record, and what the read reports is history, now counted as seen.
    window_start = newest - overlap
    _, cursor = read_feed(client, feed, FeedCursor(window_start, "", window_start), overlap=overlap)
    return cursor


def newest_change_time(client: SourceClient, contract: EntityContract, *, around: datetime) -> datetime | None:
    """Within a second, the newest change time of ``contract`` in the source (``None`` if it has none).

    Found with ``extract(since=t)`` alone, so it works for every source client: "is there a
    change at or after t" answers with one short request, and the answer only flips once along
    the time line. Gallop from ``around`` (our clock, usually close) to bracket the flip, then
    bisect: about 2 x log2(clock difference in seconds) requests, a few dozen at most.
    """

    def has_changes(moment: datetime) -> bool:
        pages = iter(client.extract(contract, since=moment))
        try:
            return next(pages, None) is not None
        finally:
            getattr(pages, "close", lambda: None)()  # stop the pager: the first page is enough

    bracket = _bracket(has_changes, around)
    if bracket is None:
        return None
    low, high = bracket
    while high - low > _SEARCH_PRECISION:
        middle = low + (high - low) / 2
        low, high = (middle, high) if has_changes(middle) else (low, middle)
    return low


def _bracket(has_changes: Callable[[datetime], bool], around: datetime) -> tuple[datetime, datetime] | None:
    """``(low, high)`` with changes at or after ``low`` and none at or after ``high``."""
    step = _SEARCH_PRECISION
    if has_changes(around):
        low = around
        while step < _SEARCH_LIMIT and has_changes(low + step):
            low, step = low + step, step * 2
        return low, low + step
    high = around
    while not has_changes(high - step):
        high, step = high - step, step * 2
        if step > _SEARCH_LIMIT:
            return None
    return high - step, high
