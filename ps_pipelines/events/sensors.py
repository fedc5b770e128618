"""Sensors that start the event jobs within seconds of a business event.

``won_deals_sensor`` watches the estate's CRM(s) for won deals not yet activated and starts
``activate_projects_on_event``; ``approved_work_sensor`` watches its PSA(s) for approved billable time
and expenses and completed milestones and starts ``post_invoices_on_event`` (``events/jobs.py``).
Each reads the change feeds of the platforms the estate declares (``lib/change_feeds``), through
the resources of the same names.
The jobs themselves post everything the outbound models say is missing, so a sensor only
decides *when* to run: one run per tick covers every new event, and its run key is derived
from those events, so a replayed tick (same events) never starts a second posting. The tags
name the events and their source change times, which is what event-to-posting latency is
measured from.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from typing import Any

import orjson
import requests
from dagster import (
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from ps_pipelines.estate import DEFAULT_ESTATE, Estate
from ps_pipelines.events.jobs import EVENT_ACTIVATION_JOB, EVENT_BILLING_JOB
from ps_pipelines.lib.change_feeds import (
    DEFAULT_OVERLAP,
    ChangeEvent,
    Feed,
    FeedBatch,
    FeedCursor,
    approved_work_feeds,
    read_platform_feeds,
    won_deal_feeds,
)
from ps_pipelines.lib.http import ApiError
from ps_pipelines.lib.sources.base import SourceClient
from ps_pipelines.resources import SourceResource

WON_DEALS_SENSOR = "won_deals_sensor"
APPROVED_WORK_SENSOR = "approved_work_sensor"
# Above the default 0: a posting waits behind no rebuild in the run queue.
WRITEBACK_PRIORITY = "10"
# Events listed one by one in the ps/events tag; the count and time range always cover all.
MAX_TAGGED_EVENTS = 100
# A tick must stay short: a platform that is down is tried again at the next tick, not by
# retrying for minutes inside this one (the runs' own clients keep their longer budget).
TICK_MAX_RETRIES = 2
TICK_BACKOFF_MAX_SECONDS = 2.0
TICK_READ_TIMEOUT_SECONDS = 10.0
_CURSOR_VERSION = 1
WAITING_STATUSES = [DagsterRunStatus.NOT_STARTED, DagsterRunStatus.QUEUED, DagsterRunStatus.STARTING]

# Local development: an event reaches the ERP within seconds. A deployment's definitions may
# pass a longer interval (each tick of a write-back sensor is one query to the platform).
WRITEBACK_SENSOR_INTERVAL_SECONDS = 5


def build_writeback_sensors(
    minimum_interval_seconds: int = WRITEBACK_SENSOR_INTERVAL_SECONDS, *,
    overlap_seconds: float = DEFAULT_OVERLAP.total_seconds(),
    estate: Estate = DEFAULT_ESTATE,
) -> list[SensorDefinition]:
    """The two write-back sensors of ``estate``, on by default, evaluated at most every
    ``minimum_interval_seconds``: won deals in its CRM(s), approved work in its PSA(s)."""
    overlap = timedelta(seconds=overlap_seconds)
    crms, psas = estate.for_role("crm"), estate.for_role("psa")
    return [
        _feed_sensor(WON_DEALS_SENSOR, EVENT_ACTIVATION_JOB, won_deal_feeds(estate), overlap,
                     minimum_interval_seconds,
                     f"Starts project activation when deals are won in {' and '.join(crms)} (not when our own "
                     "write-back marks them activated)."),
        _feed_sensor(APPROVED_WORK_SENSOR, EVENT_BILLING_JOB, approved_work_feeds(estate), overlap,
                     minimum_interval_seconds,
                     "Starts invoice posting when billable time or expenses are approved or milestones completed "
                     f"in {' and '.join(psas)}."),
    ]


def _feed_sensor(name: str, job_name: str, feeds: Sequence[Feed], overlap: timedelta,
                 minimum_interval_seconds: int, description: str) -> SensorDefinition:
    """A sensor over ``feeds``, reading each through the resource named after its platform."""
    platforms = tuple(dict.fromkeys(feed.platform for feed in feeds))

    @sensor(
        name=name,
        job_name=job_name,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=DefaultSensorStatus.RUNNING,
        required_resource_keys=set(platforms),
        description=description,
    )
    def feed_sensor(context: SensorEvaluationContext) -> SensorResult | SkipReason:
        resources = {platform: getattr(context.resources, platform) for platform in platforms}
        return evaluate_feeds(context, name, resources, feeds, overlap, job_name)

    return feed_sensor



def evaluate_feeds(
    context: SensorEvaluationContext,
    sensor_name: str,
    resources: Mapping[str, SourceResource],
    feeds: Sequence[Feed],
    overlap: timedelta,
    job_name: str,
) -> SensorResult | SkipReason:
    """One tick: read the feeds (each through its platform's resource in ``resources``) since the
    stored cursor; one run request for all new events."""
    cursors = decode_cursor(context.cursor, warn=context.log.warning)
    try:
        with ExitStack() as stack:
            clients = {platform: stack.enter_context(tick_client(resource)) for platform, resource in resources.items()}
            batch = read_platform_feeds(clients, feeds, cursors, overlap=overlap)
    except (ApiError, requests.RequestException) as exc:
        # The cursor stays where it was (every platform's), so the next tick reads the same changes again.
        context.log.warning(f"{sensor_name}: change feed not readable, cursor kept: {exc}")
        return SkipReason(f"change feed not readable: {exc}")
    cursor = encode_cursor(batch.cursors)
    if not batch.events:
        return SensorResult(skip_reason=_quiet_reason(cursors, batch), cursor=cursor)
    context.log.info(f"{sensor_name}: {len(batch.events)} new event(s), first changed at "
                     f"{batch.events[0].changed_at.isoformat()}")
    waiting = waiting_run_id(context, job_name)
    if waiting is not None:
        # That run reads the sources when it starts, after these events: it posts them too.
        # Another run behind it would only repeat its work and delay what comes next.
        return SensorResult(skip_reason=f"{len(batch.events)} new event(s) covered by run {waiting}, "
                                        "which has not started yet", cursor=cursor)
    return SensorResult(run_requests=[run_request_for(sensor_name, batch.events)], cursor=cursor)


def waiting_run_id(context: SensorEvaluationContext, job_name: str) -> str | None:
    """A run of ``job_name`` that is queued or starting, i.e. has not read the sources yet."""
    runs = context.instance.get_runs(filters=RunsFilter(job_name=job_name, statuses=WAITING_STATUSES), limit=1)
    return runs[0].run_id if runs else None


@contextmanager
def tick_client(resource: SourceResource) -> Iterator[SourceClient]:
    """The resource's client with a short retry and time budget, closed after the tick."""
    client = resource.client()
    transport = client.client  # every source client keeps its ApiClient here
    transport.max_retries = min(transport.max_retries, TICK_MAX_RETRIES)
    transport.backoff_max = min(transport.backoff_max, TICK_BACKOFF_MAX_SECONDS)
    connect_timeout, read_timeout = transport.timeout
    transport.timeout = (connect_timeout, min(read_timeout, TICK_READ_TIMEOUT_SECONDS))
    try:
        yield client
    finally:
        transport.close()


def _quiet_reason(cursors: Mapping[str, FeedCursor], batch: FeedBatch) -> str:
    started = sorted(set(batch.cursors) - set(cursors))
    if started:
        return f"started at the source's newest change ({', '.join(started)}); history is not replayed"
    return "no new events"


# -- run requests ------------------------------------------------------------------------------
def run_request_for(sensor_name: str, events: Sequence[ChangeEvent]) -> RunRequest:
    return RunRequest(run_key=run_key(sensor_name, events), tags=event_tags(sensor_name, events))


def run_key(sensor_name: str, events: Sequence[ChangeEvent]) -> str:
    """The same events (in any order) give the same key, so Dagster never launches them twice."""
    digest = hashlib.sha256("\n".join(sorted(event.key for event in events)).encode()).hexdigest()
    return f"{sensor_name}:{len(events)}:{digest[:32]}"


def event_tags(sensor_name: str, events: Sequence[ChangeEvent]) -> dict[str, str]:
    ordered = sorted(events)
    listed = [[e.kind, e.record_id, e.changed_at.isoformat()] for e in ordered[:MAX_TAGGED_EVENTS]]
    tags = {
        "ps/trigger": sensor_name,
        "ps/event_count": str(len(ordered)),
        "ps/first_event_at": ordered[0].changed_at.isoformat(),
        "ps/last_event_at": ordered[-1].changed_at.isoformat(),
        "ps/events": orjson.dumps(listed).decode(),
        "dagster/priority": WRITEBACK_PRIORITY,
    }
    if len(ordered) > MAX_TAGGED_EVENTS:
        tags["ps/events_truncated"] = "true"
    return tags


# -- cursor ------------------------------------------------------------------------------------
def encode_cursor(cursors: Mapping[str, FeedCursor]) -> str:
    feeds = {kind: cursor.to_json() for kind, cursor in sorted(cursors.items())}
    return orjson.dumps({"version": _CURSOR_VERSION, "feeds": feeds}).decode()


def decode_cursor(text: str | None, *, warn: Callable[[str], Any] = lambda _: None) -> dict[str, FeedCursor]:
    """Feed cursors by kind; an unreadable cursor restarts the feeds at the source's newest change
    (nothing is lost for good: the jobs post whatever is still missing when they next run)."""
    if not text:
        return {}
    try:
        data = orjson.loads(text)
        if data.get("version") != _CURSOR_VERSION:
            raise ValueError(f"cursor version {data.get('version')!r}")
        return {kind: FeedCursor.from_json(value) for kind, value in data["feeds"].items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        warn(f"unreadable sensor cursor ({exc}); starting again at the source's newest change")
        return {}
