"""The HTTP side of posting: one sender per (target system, record type), run on worker threads.

Every sender is safe to repeat after a crash:
- NetSuite customer, job and invoice: ``PUT /record/v1/<type>/eid:<externalId>`` (upsert);
- Salesforce opportunity, HubSpot deal: ``PATCH`` of absolute field/property values;
- Certinia project: ``PATCH /sobjects/pse__Proj__c/<DEAL_ID_FIELD>/<deal id>`` (upsert by the
  firm's unique external-id field): a retry after a lost answer finds the project it made;
- Kantata workspace: a create is a ``POST`` with no idempotency key on the platform side.

A sender of the last kind declares it in the registry (``create_without_key``) with a lookup
(``find``) and what the duplicate sweep needs (``find_all``, ``flag_duplicate``); the fence is
then the registry's, not the sender's: the poster gives each such create a lease and waits
while an earlier attempt's lease runs (its create may still land), ``send`` looks the record
up again before creating whenever an earlier attempt exists and adopts what it finds, and
the create is never sent past the point where it could land after its lease
(``send_deadline``). Dynamics 365 free-text invoices (server-assigned ``InvoiceIdentifier``)
are registered the same way; D365 customers and projects have keys we derive, so a lost
create is found, not repeated (``writeback.d365``).

Senders never touch the ledger: they return an ``Outcome`` and the poster's single writer
thread records it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

import requests

from ps_pipelines.lib.contracts.certinia import DEAL_ID_FIELD
from ps_pipelines.lib.contracts.certinia import PROJECTS as CERTINIA_PROJECTS
from ps_pipelines.lib.http import (
    ApiClient,
    ApiError,
    AuthError,
    NotSentError,
    RetryExhaustedError,
    ValidationError,
    send_deadline,
)
from ps_pipelines.lib.http.errors import scrub_text
from ps_pipelines.lib.sources.d365 import D365Client
from ps_pipelines.lib.sources.hubspot import HubSpotClient
from ps_pipelines.lib.sources.kantata import KantataClient
from ps_pipelines.lib.sources.netsuite import NetSuiteClient
from ps_pipelines.lib.sources.salesforce import SalesforceClient
from ps_pipelines.lib.writeback import d365
from ps_pipelines.lib.writeback.outbox import OutboxRow

# Clock skew between this machine and the PSA, plus the time a create takes to land.
DEFAULT_ADOPT_MARGIN = timedelta(minutes=10)


@dataclass
class Targets:
    """The target systems' clients; a flow only needs the ones its rows go to."""

    netsuite: NetSuiteClient | None = None
    d365: D365Client | None = None
    kantata: KantataClient | None = None
    salesforce: SalesforceClient | None = None
    hubspot: HubSpotClient | None = None
    # The org running Certinia PSA: a Salesforce connection (often to the CRM's own org).
    certinia: SalesforceClient | None = None

    def client(self, system: str) -> Any:
        client = getattr(self, system, None)
        if client is None:
            raise RuntimeError(f"no {system} client configured for the write-back")
        return client

    def api_client(self, system: str) -> ApiClient:
        """The HTTP client under ``system``'s connector (its timeouts, retries and backoff)."""
        return self.client(system).client

    def stats(self) -> dict[str, int]:
        """Requests, retries and 429s summed over the configured clients."""
        totals = {"requests": 0, "retries": 0, "throttled": 0}
        for system in fields(self):
            client = getattr(self, system.name)
            if client is not None:
                stats = client.stats()
                for name in totals:
                    totals[name] += int(stats.get(name, 0))
        return totals


class TransientError(Exception):
    """A failure worth retrying on a later run (e.g. a referenced record is not there yet)."""


@dataclass
class Outcome:
    """What one call achieved: ``kind`` is posted, adopted, retryable or rejected.

    ``in_doubt``: a create without an idempotency key failed in a way that may have applied
    it (timeout, lost connection, 5xx, garbled answer): it may exist, or still land.
    """

    kind: str
    target_id: str | None = None
    http_status: int | None = None
    error: str | None = None
    sent: dict[str, Any] | None = None
    in_doubt: bool = False


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
        if system == "netsuite":
            found = targets.client("netsuite").get_record(record, f"eid:{external_id}")
            if not found or not found.get("id"):
                raise TransientError(f"{key} does not exist in NetSuite yet")
            return str(found["id"])
        if system == d365.SYSTEM and record in d365.LOOKUPS:
            target_id = d365.LOOKUPS[record](targets.client(d365.SYSTEM), external_id)
            if target_id is None:
                raise TransientError(f"{key} does not exist in Dynamics 365 yet")
            return target_id
        raise TransientError(f"{key} is not posted yet")

    return find


# -- senders ----------------------------------------------------------------------------------
# Sublists a payload carries in full: a new version's lines replace the posted ones.
REPLACED_SUBLISTS: dict[str, tuple[str, ...]] = {"invoice": ("item",)}

# Writes ``body`` for ``row`` (upsert, create, or update of ``row.target_id``); returns the target id.
PostFn = Callable[[Targets, OutboxRow, dict[str, Any]], str]
# The id of a record of ``row`` made since ``changed_since`` (by an attempt whose answer was lost).
FindFn = Callable[[Targets, OutboxRow, datetime], str | None]
# Every record carrying one of ``external_ids`` as its reference (changed since, if given).
FindAllFn = Callable[[Targets, Sequence[str], datetime | None], dict[str, list[dict[str, Any]]]]
# Flags ``duplicate`` in the platform as a copy of ``kept_id`` (never deletes); returns what was done.
FlagFn = Callable[[Targets, dict[str, Any], str], str]


@dataclass(frozen=True)
class Sender:
    """How one (target system, record type) is written, and how a crash is repaired."""

    post: PostFn
    # The create is a POST the platform cannot deduplicate: the poster fences it by lease, and
    # the duplicate sweep checks what slipped through. Such a sender must say how to find its
    # records (``find``, ``find_all``) and how to flag a duplicate (``flag_duplicate``).
    create_without_key: bool = False
    find: FindFn | None = None
    find_all: FindAllFn | None = None
    flag_duplicate: FlagFn | None = None

    def __post_init__(self) -> None:
        if self.create_without_key and not (self.find and self.find_all and self.flag_duplicate):
            raise ValueError("a sender that creates without an idempotency key needs find, find_all and "
                             "flag_duplicate")


def _netsuite(targets: Targets, row: OutboxRow, body: dict[str, Any]) -> str:
    client: NetSuiteClient = targets.client("netsuite")
    replace = REPLACED_SUBLISTS.get(row.record_type, ())
    return client.upsert_by_external_id(row.record_type, row.external_id, body, replace=replace)


def _salesforce_opportunity(targets: Targets, row: OutboxRow, body: dict[str, Any]) -> str:
    client: SalesforceClient = targets.client("salesforce")
    client.update("Opportunity", row.external_id, body)
    return row.external_id


def _hubspot_deal(targets: Targets, row: OutboxRow, body: dict[str, Any]) -> str:
    client: HubSpotClient = targets.client("hubspot")
    client.update("deals", row.external_id, body)
    return row.external_id


def _certinia_project(targets: Targets, row: OutboxRow, body: dict[str, Any]) -> str:
    client: SalesforceClient = targets.client("certinia")
    return str(client.upsert(CERTINIA_PROJECTS.source_object, DEAL_ID_FIELD, row.external_id, body)["id"])


# -- Kantata workspaces -------------------------------------------------------------------------
def _workspace_order(record: Mapping[str, Any]) -> tuple[bool, int, str]:
    # A live workspace before an archived one, then the oldest (ids grow).
    return bool(record.get("archived")), len(str(record["id"])), str(record["id"])


def workspaces_by_opportunity(
    client: KantataClient, opportunity_ids: Sequence[str], changed_since: datetime | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Workspaces whose external reference names one of ``opportunity_ids``, oldest first.

    Kantata filters workspaces by their external references (``OPPORTUNITY_REFERENCE``), so this
    asks for exactly those workspaces, archived ones included; ``changed_since`` is not needed
    to narrow the read and is ignored. Each workspace carries its reference as
    ``external_reference``.
    """
    wanted = set(opportunity_ids)
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in client.workspaces_by_reference(sorted(wanted)):
        reference = str((record.get("external_reference") or {}).get("service_model_ref") or "")
        if reference in wanted:
            found[reference].append(record)
    return {reference: sorted(records, key=_workspace_order) for reference, records in found.items()}


def find_workspace(client: KantataClient, opportunity_id: str, changed_since: datetime | None = None) -> str | None:
    """The id of a workspace for ``opportunity_id`` (the oldest live one)."""
    found = workspaces_by_opportunity(client, [opportunity_id], changed_since).get(opportunity_id)
    return str(found[0]["id"]) if found else None


def _kantata_workspace(targets: Targets, row: OutboxRow, body: dict[str, Any]) -> str:
    client: KantataClient = targets.client("kantata")
    if row.target_id:  # a new version of a workspace we made: update it
        return str(client.update_workspace(row.target_id, body)["id"])
    return str(client.create_workspace(body)["id"])


def _find_kantata_workspace(targets: Targets, row: OutboxRow, changed_since: datetime) -> str | None:
    return find_workspace(targets.client("kantata"), row.external_id, changed_since)


def _kantata_workspaces(
    targets: Targets, external_ids: Sequence[str], changed_since: datetime | None
) -> dict[str, list[dict[str, Any]]]:
    return workspaces_by_opportunity(targets.client("kantata"), external_ids, changed_since)


DUPLICATE_TITLE = "[DUPLICATE of workspace {kept}] "
_TITLE_MAX = 255


def flag_duplicate_workspace(targets: Targets, duplicate: dict[str, Any], kept_id: str) -> str:
    """Mark a second workspace of one deal as a duplicate of ``kept_id``; never delete it.

    A workspace update can set ``title``, ``description`` and ``archived`` (Kantata OX API,
    "Updating an existing Workspace", ``PUT /workspaces/{id}``,
    https://developer.kantata.com/kantata/specification/workspaces/update-workspace; the
    writable attributes are listed in Mavenlink's own client, ``update_attributes`` of
    ``workspaces`` in github.com/mavenlink/mavenlink_gem lib/config/specification.yml).
    Archiving takes it out of people's project lists and out of the API's default listing
    ("By default, archived projects are not returned", https://developer.kantata.com/tag/Workspaces),
    so no later lookup adopts it, and it is undone with one click. A workspace someone has
    already logged time or expenses in is only marked, not archived: a person moves that work.
    """
    client: KantataClient = targets.client("kantata")
    workspace_id = str(duplicate["id"])
    mark = DUPLICATE_TITLE.format(kept=kept_id)
    title = str(duplicate.get("title") or "")
    changes: dict[str, Any] = {
        "title": title if title.startswith(mark) else (mark + title)[:_TITLE_MAX],
        "description": (f"Created a second time by the ps-pipelines write-back for opportunity "
                        f"{(duplicate.get('external_reference') or {}).get('service_model_ref')}; "
                        f"workspace {kept_id} is the one in use. "
                        "Kept, not deleted: move anything logged here to it, then delete this one by hand."),
    }
    used = client.count("time_entries", workspace_id=workspace_id) + client.count("expenses", workspace_id=workspace_id)
    if not used:
        changes["archived"] = True
    client.update_workspace(workspace_id, changes)
    if used:
        return f"marked as a duplicate of {kept_id}; not archived: {used} time entries or expenses are logged in it"
    return f"archived and marked as a duplicate of {kept_id}"


# -- Dynamics 365 (the entities, keys and rules are writeback.d365's) --------------------------------
def _d365_customer(targets: Targets, row: OutboxRow, body: dict[str, Any]) -> str:
    return d365.post_customer(targets.client(d365.SYSTEM), row, body)


def _d365_project(targets: Targets, row: OutboxRow, body: dict[str, Any]) -> str:
    return d365.post_project(targets.client(d365.SYSTEM), row, body)


def _d365_invoice(targets: Targets, row: OutboxRow, body: dict[str, Any]) -> str:
    return d365.post_invoice(targets.client(d365.SYSTEM), row, body)


def _find_d365_invoice(targets: Targets, row: OutboxRow, changed_since: datetime) -> str | None:
    return d365.find_invoice(targets.client(d365.SYSTEM), row, changed_since)


def _d365_invoices(
    targets: Targets, external_ids: Sequence[str], changed_since: datetime | None
) -> dict[str, list[dict[str, Any]]]:
    return d365.invoices_by_external_id(targets.client(d365.SYSTEM), external_ids)


def _flag_d365_invoice(targets: Targets, duplicate: dict[str, Any], kept_id: str) -> str:
    return d365.flag_duplicate_invoice(targets.client(d365.SYSTEM), duplicate, kept_id)


SENDERS: dict[tuple[str, str], Sender] = {
    ("netsuite", "customer"): Sender(_netsuite),
    ("netsuite", "job"): Sender(_netsuite),
    ("netsuite", "invoice"): Sender(_netsuite),
    ("kantata", "workspace"): Sender(_kantata_workspace, create_without_key=True, find=_find_kantata_workspace,
                                     find_all=_kantata_workspaces, flag_duplicate=flag_duplicate_workspace),
    (d365.SYSTEM, d365.CUSTOMER): Sender(_d365_customer),
    (d365.SYSTEM, d365.PROJECT): Sender(_d365_project),
    # InvoiceIdentifier is server-assigned: a create the ERP cannot deduplicate, fenced by lease.
    (d365.SYSTEM, d365.INVOICE): Sender(_d365_invoice, create_without_key=True, find=_find_d365_invoice,
                                        find_all=_d365_invoices, flag_duplicate=_flag_d365_invoice),
    ("salesforce", "opportunity"): Sender(_salesforce_opportunity),
    ("hubspot", "deal"): Sender(_hubspot_deal),
    ("certinia", "project"): Sender(_certinia_project),
}


def creates_without_key(row: OutboxRow) -> bool:
    """The row's next call is a create the target cannot deduplicate (fenced by lease)."""
    sender = SENDERS.get((row.target_system, row.record_type))
    return bool(sender and sender.create_without_key and not row.target_id)


def send(
    targets: Targets,
    row: OutboxRow,
    known_ids: Mapping[str, str | None],
    adopt_margin: timedelta = DEFAULT_ADOPT_MARGIN,
) -> Outcome:
    """Post one ledger row; never raises for a failure of the call itself.

    For a create without an idempotency key: when an earlier attempt exists (the poster only
    gets here once its lease has passed, so whatever it sent has landed) the record is looked
    up first and adopted if found; the create itself is not sent after ``row.send_by``.
    """
    sender = SENDERS.get((row.target_system, row.record_type))
    if sender is None:
        return Outcome("rejected", error=f"no sender for {row.target_system} {row.record_type}")
    creating = creates_without_key(row)
    create_sent = False
    try:
        body = resolve_refs(row.payload, known_ids, _lookup(targets))
        if creating and row.first_attempt_at is not None and sender.find is not None:
            existing = sender.find(targets, row, row.first_attempt_at - adopt_margin)
            if existing is not None:
                return Outcome("adopted", target_id=existing, sent=body)
        with send_deadline(row.send_by if creating else None):
            create_sent = creating
            target_id = sender.post(targets, row, body)
    except ValidationError as exc:  # the target judged the request itself: re-sending cannot help
        return Outcome("rejected", http_status=exc.status, error=str(exc))
    except (AuthError, NotSentError) as exc:  # never applied: worth another run (credentials fixed, in time)
        return Outcome("retryable", http_status=exc.status, error=str(exc))
    except RetryExhaustedError as exc:  # retries exhausted; a create may have been applied (in doubt)
        return Outcome("retryable", http_status=exc.status, error=str(exc), in_doubt=create_sent and exc.in_doubt)
    except ApiError as exc:  # malformed answers, unexpected statuses: a create sent may exist
        return Outcome("retryable", http_status=exc.status, error=str(exc), in_doubt=create_sent)
    except (TransientError, requests.RequestException) as exc:
        return Outcome("retryable", error=scrub_text(f"{type(exc).__name__}: {exc}"),
                       in_doubt=create_sent and isinstance(exc, requests.RequestException))
    return Outcome("posted", target_id=target_id, sent=body)
