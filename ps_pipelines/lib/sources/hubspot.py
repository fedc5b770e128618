"""HubSpot CRM API v3 client: list paging for full reads, the search endpoint for incremental
reads (re-anchored at its 10,000-result cap), archived records as deletes, and HubSpot's limits.

Wire rules (developers.hubspot.com):

* Auth: a private app's access token as ``Authorization: Bearer`` ("use your app's access token
  if you're building a private app", api/usage-details).
* Full reads: ``GET /crm/v3/objects/{type}`` with ``limit`` (at most 100), ``properties`` and the
  ``after`` cursor answered as ``paging.next.after``.
* Incremental reads: ``POST /crm/v3/objects/{type}/search`` filtered ``GTE`` on the object's
  last-modified property and sorted ascending by it, 200 per page. "The search endpoints are
  limited to 10,000 total results for any given query. Attempting to page beyond 10,000 will
  result in a 400 error" (search-the-crm, "Limitations"): at the cap a new query starts from the
  last modification time seen, skipping the records at that time already read.
* A contract's ``source_filter`` narrows every read to the records it selects, written as
  HubSpot's own filter triples, ``<propertyName> <operator> <value>`` joined by `` AND ``
  (e.g. ``hs_is_closed_won EQ true``): the filters of one ``filterGroups`` group, which HubSpot
  ANDs (search-the-crm, "Filter search results"). Only the search endpoint filters, so a
  filtered contract is always read through search, a full read included.
* Newest change: one search sorted ``DESCENDING`` on the change property, ``limit`` 1
  (search-the-crm, "Sort search results"): where a change feed starts.
* Deletes: archived records are listed only with ``archived=true``; search never finds them.
* Associations (a deal's company, a line item's deal): read per page of records, full or
  incremental alike, with one ``POST /crm/v4/associations/{fromObjectType}/{toObjectType}/batch/read``
  (developers.hubspot.com/docs/api-reference/legacy/crm/associations/associate-records/batch/get-associations;
  at most 1,000 ids, changelog "Bug Fix: Batch Read Limit for HubSpot Associations API"). Search
  results carry no associations, so the v3 ``associations=`` parameter of the list endpoint
  would serve full reads only; v4 also answers each pair's association types, which name the
  Primary company (HUBSPOT_DEFINED, the contract's ``primary_type_id``). A record with more
  associations than one answer holds is asked again with its ``paging.next.after``, until its
  primary is found.
* Writes (the write-back): ``PATCH /crm/v3/objects/{type}/{id}`` with ``{"properties": {...}}``
  sets only the properties named (api-reference/crm-deals-v3/basic/patch-crm-v3-objects-0-3-dealId);
  absolute values, so repeating it is harmless.
* Limits: a per-token burst of requests per 10 seconds (190 for private apps on Professional and
  Enterprise, changelog "Increasing our API limits") and the search endpoints' own per-second
  limit (5 per second, search-the-crm "Limitations"). Both are paced client-side; a 429
  (``errorType: RATE_LIMIT``) is retried with backoff by the shared client.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

import requests

from ps_pipelines.lib.contracts.base import EntityContract
from ps_pipelines.lib.contracts.hubspot import ASSOCIATIONS, Association
from ps_pipelines.lib.http import ApiClient, StaticBearer, TokenBucket
from ps_pipelines.lib.sources.base import Page, as_utc, chunked, parse_timestamp

LIST_MAX = 100
SEARCH_MAX = 200
SEARCH_CAP = 10_000
OWNERS_MAX = 500
# "IN" filters take at most 100 values (search-the-crm, "Filter search results").
IDS_PER_SEARCH = 100
ASSOCIATION_READ_MAX = 1_000
REQUESTS_PER_SECOND = 19.0  # 190 per 10 seconds
SEARCH_REQUESTS_PER_SECOND = 4.0  # under the documented 5, so a clock skew never trips it


def source_filters(contract: EntityContract) -> list[dict[str, Any]]:
    """The contract's ``source_filter`` as search filters: ``name OPERATOR value`` triples joined by AND."""
    if not contract.source_filter:
        return []
    filters = []
    for condition in contract.source_filter.split(" AND "):
        name, operator, value = condition.strip().split(" ", 2)
        filters.append({"propertyName": name, "operator": operator.upper(), "value": value})
    return filters


class SearchCapError(RuntimeError):
    """More records share one modification time than one search query may return: no filter on
    that time can page past them."""


def epoch_millis(moment: datetime) -> int:
    """A search filter value for a datetime property: epoch milliseconds (search-the-crm)."""
    return int(as_utc(moment).timestamp() * 1000)


class HubSpotClient:
    platform = "hubspot"

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        page_size: int = LIST_MAX,
        search_page_size: int = SEARCH_MAX,
        search_cap: int = SEARCH_CAP,
        requests_per_second: float = REQUESTS_PER_SECOND,
        search_requests_per_second: float = SEARCH_REQUESTS_PER_SECOND,
        **client_kw: Any,
    ) -> None:
        self.page_size = min(page_size, LIST_MAX)
        self.search_page_size = min(search_page_size, SEARCH_MAX)
        # HubSpot documents 10,000; a setting so a change of that limit needs no code change.
        self.search_cap = search_cap
        client_kw.setdefault("requests_per_second", requests_per_second)
        self.client = ApiClient(self.platform, base_url, StaticBearer(token), **client_kw)
        # Search calls count against the burst too (the shared client's bucket) and, on top,
        # against their own per-second limit: paced here, in real time.
        self._search_pace = TokenBucket(search_requests_per_second, capacity=1.0, sleep=time.sleep)
        self._search_queries = 0
        self._association_reads = 0
        self.client.response_hooks.append(self._read_limit_headers)

    # -- protocol --------------------------------------------------------------------------
    def extract(
        self, contract: EntityContract, *, since: datetime | None, ids: Sequence[str] | None = None
    ) -> Iterator[Page]:
        association = ASSOCIATIONS.get(contract.source_object)
        for page in self._pages(contract, since, ids):
            yield page if association is None else self._fold(contract.source_object, association, page)

    def _pages(self, contract: EntityContract, since: datetime | None, ids: Sequence[str] | None) -> Iterator[Page]:
        if contract.source_object == "owners":
            yield from self._owners(contract, since)
            return
        if ids is not None:
            for chunk in chunked(list(ids), IDS_PER_SEARCH):
                yield from self._search(contract, since, list(chunk))
            return
        if since is None and not contract.source_filter:
            yield from self._list(contract, archived=False)
            return
        yield from self._search(contract, since, None)

    def deleted(self, contract: EntityContract, *, since: datetime) -> Iterator[tuple[str, datetime]]:
        """Records archived since ``since``: the ``archived=true`` listing has no time filter, so
        it is read whole and filtered on ``archivedAt``."""
        floor = as_utc(since)
        for page in self._list(contract, archived=True):
            for record in page:
                moment = parse_timestamp(str(record.get("archivedAt") or record["updatedAt"]))
                if moment >= floor:
                    yield str(record["id"]), moment

    def newest_change(self, contract: EntityContract) -> datetime | None:
        """The latest change time among the records ``contract`` selects (``None`` when there are none)."""
        change = contract.change_column or "hs_lastmodifieddate"
        filters = source_filters(contract)
        body = {"filterGroups": [{"filters": filters}] if filters else [],
                "sorts": [{"propertyName": change, "direction": "DESCENDING"}], "properties": [change], "limit": 1}
        self._search_queries += 1
        self._search_pace.acquire()
        answer = self.client.post_json(f"/crm/v3/objects/{contract.source_object}/search", json=body,
                                       idempotent=True, required_keys=("results",))
        value = next((_property(r, change) for r in answer["results"] or []), None)
        return parse_timestamp(value) if value else None

    def stats(self) -> dict[str, int]:
        return {**self.client.stats(), "search_queries": self._search_queries,
                "association_reads": self._association_reads}

    # -- writeback -------------------------------------------------------------------------
    def update(self, object_type: str, record_id: str, properties: Mapping[str, Any]) -> dict[str, Any]:
        """Set ``properties`` on one record; returns the record as HubSpot answers it."""
        path = f"/crm/v3/objects/{object_type}/{quote(record_id, safe='')}"
        _, body = self.client.json_request("PATCH", path, json={"properties": dict(properties)},
                                           record_id=record_id, required_keys=("id",))
        return body

    def get(self, object_type: str, record_id: str, properties: Sequence[str]) -> dict[str, Any]:
        """One record with the named ``properties`` (unset ones as null)."""
        path = f"/crm/v3/objects/{object_type}/{quote(record_id, safe='')}"
        return self.client.get_json(path, params={"properties": ",".join(properties)}, record_id=record_id,
                                    required_keys=("id", "properties"))

    def _read_limit_headers(self, response: requests.Response) -> None:
        """The burst limit's headers (every answer but search's): how much of the window is left,
        for run metadata, so a run that nearly exhausts the app's limit shows it."""
        for header, name in (("X-HubSpot-RateLimit-Max", "rate_limit_max"),
                             ("X-HubSpot-RateLimit-Remaining", "rate_limit_remaining")):
            value = response.headers.get(header)
            if value is not None and value.isdigit():
                self.client.counters.set(name, int(value))

    # -- reads -----------------------------------------------------------------------------
    def _list(self, contract: EntityContract, *, archived: bool) -> Iterator[Page]:
        """Every record of the entity's list endpoint, following ``paging.next.after``."""
        owners = contract.source_object == "owners"
        path = "/crm/v3/owners" if owners else f"/crm/v3/objects/{contract.source_object}"
        params: dict[str, Any] = {"limit": OWNERS_MAX if owners else self.page_size}
        if contract.source_fields:
            params["properties"] = ",".join(contract.source_fields)
        if archived:
            params["archived"] = "true"
        after: str | None = None
        while True:
            body = self.client.get_json(path, params={**params, **({"after": after} if after else {})},
                                        required_keys=("results",))
            if body["results"]:
                yield body["results"]
            after = _next_after(body)
            if after is None:
                return

    def _owners(self, contract: EntityContract, since: datetime | None) -> Iterator[Page]:
        """Owners have no search endpoint and no change filter; a portal has as many as it has
        users, so the list is read whole and filtered on ``updatedAt`` here."""
        records = [record for page in self._list(contract, archived=False) for record in page]
        if since is not None:
            floor = as_utc(since)
            records = [r for r in records if parse_timestamp(str(r["updatedAt"])) >= floor]
        records.sort(key=lambda r: (parse_timestamp(str(r["updatedAt"])), str(r["id"])))
        for page in chunked(records, OWNERS_MAX):
            yield list(page)

    def _search(self, contract: EntityContract, since: datetime | None, ids: list[str] | None) -> Iterator[Page]:
        """Records changed at or after ``since`` (and among ``ids``), change time ascending.

        One query pages with ``after`` until HubSpot's result cap; then a new query starts from
        the last change time read. Records at exactly that time come again and are skipped by id.
        """
        change = contract.change_column or "hs_lastmodifieddate"
        anchor = epoch_millis(since) if since is not None else None
        read_at_anchor: set[str] = set()
        while True:
            last_time, read_at_last = anchor, set(read_at_anchor)
            reached_cap = False
            for records, at_cap in self._search_query(contract, change, anchor, ids):
                fresh = [r for r in records if not (_millis(r, change) == anchor and str(r["id"]) in read_at_anchor)]
                if fresh:
                    yield fresh
                for record in records:
                    moment = _millis(record, change)
                    if moment != last_time:
                        last_time, read_at_last = moment, set()
                    read_at_last.add(str(record["id"]))
                reached_cap = at_cap
            if not reached_cap:
                return
            if last_time == anchor:
                raise SearchCapError(
                    f"hubspot {contract.source_object}: more than {self.search_cap:,} records changed at "
                    f"{last_time} ms; a search filter on {change} cannot page past them")
            anchor, read_at_anchor = last_time, read_at_last

    def _search_query(
        self, contract: EntityContract, change: str, anchor: int | None, ids: list[str] | None
    ) -> Iterator[tuple[Page, bool]]:
        """Pages of one search query, each with whether the query stops at the result cap there."""
        filters = source_filters(contract)
        if anchor is not None:
            filters.append({"propertyName": change, "operator": "GTE", "value": str(anchor)})
        if ids is not None:
            filters.append({"propertyName": "hs_object_id", "operator": "IN", "values": ids})
        body: dict[str, Any] = {
            "filterGroups": [{"filters": filters}] if filters else [],
            "sorts": [{"propertyName": change, "direction": "ASCENDING"}],
            "properties": list(contract.source_fields),
            "limit": self.search_page_size,
        }
        path = f"/crm/v3/objects/{contract.source_object}/search"
        self._search_queries += 1
        after: str | None = None
        while True:
            self._search_pace.acquire()
            answer = self.client.post_json(path, json={**body, **({"after": after} if after else {})},
                                           idempotent=True,  # a search only reads
                                           required_keys=("results",))
            after = _next_after(answer)
            at_cap = after is not None and int(after) >= self.search_cap
            yield answer["results"] or [], at_cap
            if after is None or at_cap:
                return

    # -- associations ------------------------------------------------------------------------
    def _fold(self, from_object: str, association: Association, page: Page) -> Page:
        """The page's records, each with the id its association names under ``association.column``."""
        chosen = self._associated(from_object, association, [str(record["id"]) for record in page])
        return [{**record, association.column: chosen.get(str(record["id"]))} for record in page]

    def _associated(self, from_object: str, association: Association, ids: list[str]) -> dict[str, str]:
        """Record id -> the associated id: the Primary-labelled one, else the first answered."""
        path = f"/crm/v4/associations/{from_object}/{association.to_object}/batch/read"
        chosen: dict[str, str] = {}
        pending: dict[str, str | None] = dict.fromkeys(ids)  # id -> its next page's cursor
        while pending:
            asked, pending = pending, {}
            for chunk in chunked(list(asked.items()), ASSOCIATION_READ_MAX):
                self._association_reads += 1
                answer = self.client.post_json(
                    path, json={"inputs": [{"id": i, **({"after": after} if after else {})} for i, after in chunk]},
                    idempotent=True,  # a batch read only reads
                    required_keys=("results",))
                for result in answer["results"]:
                    record_id = str(result["from"]["id"])
                    primary = _pick(result.get("to") or [], association.primary_type_id)
                    if primary is not None:
                        chosen[record_id] = primary
                    elif result.get("to"):
                        chosen.setdefault(record_id, str(result["to"][0]["toObjectId"]))
                    after = _next_after(result)
                    # Only a primary on a later page could change the choice.
                    if after and primary is None and association.primary_type_id is not None:
                        pending[record_id] = after
        return chosen


def _pick(targets: list[dict[str, Any]], primary_type_id: int | None) -> str | None:
    """The id of the target labelled with the HUBSPOT_DEFINED Primary type, if any."""
    if primary_type_id is None:
        return None
    for target in targets:
        for kind in target.get("associationTypes") or []:
            if kind.get("category") == "HUBSPOT_DEFINED" and kind.get("typeId") == primary_type_id:
                return str(target["toObjectId"])
    return None


def _next_after(body: dict[str, Any]) -> str | None:
    return ((body.get("paging") or {}).get("next") or {}).get("after") or None


def _property(record: dict[str, Any], name: str) -> str | None:
    value = (record.get("properties") or {}).get(name)
    return str(value) if value else None


def _millis(record: dict[str, Any], change: str) -> int | None:
    value = _property(record, change)
    return epoch_millis(parse_timestamp(str(value))) if value else None
