"""The HTTP side of posting: one sender per (target system, record type), run on worker threads.

Every sender is safe to repeat after a crash:
- NetSuite customer, job and invoice: ``PUT /record/v1/<type>/eid:<externalId>`` (upsert);
- Salesforce opportunity: ``PATCH`` of absolute field values;
- Kantata workspace: create is a ``POST`` (not idempotent), so when an earlier attempt of the
  row exists the sender first looks for a workspace carrying the deal's
  ``salesforce_opportunity_id`` changed since that attempt, and adopts it instead of creating.

Senders never touch the ledger: they return an ``Outcome`` and the poster's single writer
thread records it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import requests

from ps_pipelines.lib.contracts.kantata import PROJECTS
from ps_pipelines.lib.http import ApiError, AuthError, ValidationError
from ps_pipelines.lib.http.errors import scrub_text
from ps_pipelines.lib.sources.kantata import KantataClient
from ps_pipelines.lib.sources.netsuite import NetSuiteClient
from ps_pipelines.lib.sources.salesforce import SalesforceClient
from ps_pipelines.lib.writeback.outbox import OutboxRow

# Clock skew between this machine and the PSA, plus the time a create takes to land.
DEFAULT_ADOPT_MARGIN = timedelta(minutes=10)


@dataclass
class Targets:
    """The target systems' clients; a flow only needs the ones its rows go to."""

    netsuite: NetSuiteClient | None = None
    kantata: KantataClient | None = None
    salesforce: SalesforceClient | None = None

    def client(self, system: str) -> Any:
        client = getattr(self, system, None)
        if client is None:
            raise RuntimeError(f"no {system} client configured for the write-back")
        return client

    def stats(self) -> dict[str, int]:
        """Requests, retries and 429s summed over the configured clients."""
        totals = {"requests": 0, "retries": 0, "throttled": 0}
        for client in (self.netsuite, self.kantata, self.salesforce):
            if client is not None:
                stats = client.stats()
                for name in totals:
                    totals[name] += int(stats.get(name, 0))
        return totals


class TransientError(Exception):
    """A failure worth retrying on a later run (e.g. a referenced record is not there yet)."""


@dataclass
class Outcome:
    """What one call achieved: ``kind`` is posted, adopted, retryable or rejected."""

    kind: str
    target_id: str | None = None
    http_status: int | None = None
    error: str | None = None
    sent: dict[str, Any] | None = None


# -- references -------------------------------------------------------------------------------
def resolve_refs(payload: Any, ids: Mapping[str, str | None], lookup: Callable[[str], str]) -> Any:
    """``payload`` with every ``{"$ref": key}`` replaced by that record's target id.

    ``ids`` holds what the ledger (or the outbound model) already knows; a missing id is asked
    of the target system through ``lookup``.
    """
    if isinstance(payload, dict):
        if set(payload) == {"$ref"}:
            key = payload["$ref"]
            return ids.get(key) or lookup(key)
        return {name: resolve_refs(value, ids, lookup) for name, value in payload.items()}
    if isinstance(payload, list):
        return [resolve_refs(value, ids, lookup) for value in payload]
    return payload


def _lookup(targets: Targets) -> Callable[[str], str]:
    def find(key: str) -> str:
        system, record, external_id = key.split(":", 2)
        if system != "netsuite":
            raise TransientError(f"{key} is not posted yet")
        found = targets.client("netsuite").get_record(record, f"eid:{external_id}")
        if not found or not found.get("id"):
            raise TransientError(f"{key} does not exist in NetSuite yet")
        return str(found["id"])

    return find


# -- senders ----------------------------------------------------------------------------------
# Sublists a payload carries in full: a new version's lines replace the posted ones.
REPLACED_SUBLISTS: dict[str, tuple[str, ...]] = {"invoice": ("item",)}


def _netsuite(targets: Targets, row: OutboxRow, body: dict[str, Any], margin: timedelta) -> tuple[str, str]:
    client: NetSuiteClient = targets.client("netsuite")
    replace = REPLACED_SUBLISTS.get(row.record_type, ())
    return client.upsert_by_external_id(row.record_type, row.external_id, body, replace=replace), "posted"


def _salesforce_opportunity(
    targets: Targets, row: OutboxRow, body: dict[str, Any], margin: timedelta
) -> tuple[str, str]:
    client: SalesforceClient = targets.client("salesforce")
    client.update("Opportunity", row.external_id, body)
    return row.external_id, "posted"


def find_workspace(client: KantataClient, opportunity_id: str, changed_since: datetime) -> str | None:
    """The id of a workspace for ``opportunity_id`` changed since ``changed_since`` (oldest first)."""
    found = [record for page in client.extract(PROJECTS, since=changed_since) for record in page
             if str(record.get("salesforce_opportunity_id") or "") == opportunity_id]
    return min((str(r["id"]) for r in found), key=lambda i: (len(i), i)) if found else None


def _kantata_workspace(targets: Targets, row: OutboxRow, body: dict[str, Any], margin: timedelta) -> tuple[str, str]:
    client: KantataClient = targets.client("kantata")
    if row.target_id:  # a new version of a workspace we made: update it
        return str(client.update_workspace(row.target_id, body)["id"]), "posted"
    if row.first_attempt_at is not None:  # an earlier attempt may have created it unacknowledged
        existing = find_workspace(client, row.external_id, row.first_attempt_at - margin)
        if existing is not None:
            return existing, "adopted"
    return str(client.create_workspace(body)["id"]), "posted"


Sender = Callable[[Targets, OutboxRow, dict[str, Any], timedelta], tuple[str, str]]
SENDERS: dict[tuple[str, str], Sender] = {
    ("netsuite", "customer"): _netsuite,
    ("netsuite", "job"): _netsuite,
    ("netsuite", "invoice"): _netsuite,
    ("kantata", "workspace"): _kantata_workspace,
    ("salesforce", "opportunity"): _salesforce_opportunity,
}


def send(
    targets: Targets,
    row: OutboxRow,
    known_ids: Mapping[str, str | None],
    adopt_margin: timedelta = DEFAULT_ADOPT_MARGIN,
) -> Outcome:
    """Post one ledger row; never raises for a failure of the call itself."""
    sender = SENDERS.get((row.target_system, row.record_type))
    if sender is None:
        return Outcome("rejected", error=f"no sender for {row.target_system} {row.record_type}")
    try:
        body = resolve_refs(row.payload, known_ids, _lookup(targets))
        target_id, kind = sender(targets, row, body, adopt_margin)
    except ValidationError as exc:  # the target judged the request itself: re-sending cannot help
        return Outcome("rejected", http_status=exc.status, error=str(exc))
    except AuthError as exc:  # credentials, not the record: worth another run once fixed
        return Outcome("retryable", http_status=exc.status, error=str(exc))
    except ApiError as exc:  # retries exhausted, malformed answers, unexpected statuses
        return Outcome("retryable", http_status=exc.status, error=str(exc))
    except (TransientError, requests.RequestException) as exc:
        return Outcome("retryable", error=scrub_text(f"{type(exc).__name__}: {exc}"))
    return Outcome(kind, target_id=target_id, sent=body)
