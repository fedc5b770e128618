"""Kantata OX (Mavenlink API v1) client: side-loaded envelopes, keyset paging, workspace writeback.

Kantata has no delete feed: a deleted workspace, time entry or expense simply stops being
listed, so ``deleted()`` yields nothing and deletions can only be found by comparing a
full snapshot with what is stored.

Related objects a contract needs (``contracts.kantata.NESTED``) are requested with ``include=``
and folded into the record they belong to under the association's name, so the raw layer
flattens them with the API's own names (developer.kantata.com, "Includes": the side-loaded
objects come under their own top-level key, found through the record's ``<association>_id(s)``).
Objects without a documented change time (users, rate card versions) are read whole.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from ps_pipelines.lib.contracts.base import EntityContract, flatten_record
from ps_pipelines.lib.contracts.kantata import NESTED, OPPORTUNITY_REFERENCE, PROJECTS, SUBMITTED_ON, Nested
from ps_pipelines.lib.http import (
    ApiClient,
    MalformedResponseError,
    StaticBearer,
    change_keyset_pages,
    page_number_pages,
)
from ps_pipelines.lib.sources.base import Page, chunked, parse_timestamp

API = "/api/v1"
MAX_PER_PAGE = 200  # Kantata clamps per_page to 200
CREATOR_ROLE = "maven"  # the firm creates workspaces as the provider (consultant) side
MAX_REFERENCE_IDS = 200  # external_reference_service_model_refs: "up to 200 external IDs"
# Extra index filters per resource: milestones are the stories whose story_type is "milestone";
# expense report submissions list the requester's own unless ``all_on_account`` (developer.kantata.com,
# Expense Report Submissions: "When all_on_account filter is set to true, the endpoint returns all
# expense report submissions on the account").
RESOURCE_FILTERS: dict[str, dict[str, str]] = {
    "stories": {"story_type": "milestone"},
    "expense_report_submissions": {"all_on_account": "true"},
}


def unpack_envelope(body: Mapping[str, Any]) -> Page:
    """Records in ``results`` order from Kantata's id-keyed side-loaded maps."""
    try:
        return [body[ref["key"]][str(ref["id"])] for ref in body["results"]]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"results reference a record the answer does not include: {exc}") from None


def fold_related(record: Mapping[str, Any], side_loaded: Mapping[str, Any], nest: Nested) -> Any:
    """The related object(s) of ``record`` under ``nest``, from an answer's side-loaded ``side_loaded``
    map: a list when ``nest.many``, else the one object (the latest of several), or ``None``."""
    ids = record.get(nest.foreign_key)
    ids = ids if isinstance(ids, list) else [ids]
    related = [side_loaded[str(i)] for i in ids if i not in (None, "") and str(i) in side_loaded]
    related = [obj for obj in related if all(str(obj.get(k)) == v for k, v in nest.match.items())]
    if nest.many:
        return related
    if not related:
        return None
    if nest.latest_by:
        return max(related, key=lambda obj: (str(obj.get(nest.latest_by) or ""), str(obj.get("id"))))
    return related[0]


def updated_after(moment: datetime) -> str:
    """``updated_after`` is exclusive and Kantata stamps whole seconds, so asking for "after one
    second earlier" returns every record changed at or after ``moment``."""
    return (moment.replace(microsecond=0) - timedelta(seconds=1)).isoformat()


class KantataClient:
    platform = "kantata"

    def __init__(self, base_url: str, token: str, per_page: int = MAX_PER_PAGE, **client_kw: Any) -> None:
        self.per_page = min(per_page, MAX_PER_PAGE)
        self.client = ApiClient(self.platform, base_url, StaticBearer(token), **client_kw)

    # -- protocol --------------------------------------------------------------------------
    def extract(
        self, contract: EntityContract, *, since: datetime | None, ids: Sequence[str] | None = None
    ) -> Iterator[Page]:
        path = f"{API}/{contract.source_object}"
        nests = NESTED.get(contract.entity, ())
        params: dict[str, Any] = {"per_page": self.per_page, **RESOURCE_FILTERS.get(contract.source_object, {})}
        if contract.change_column:
            params["order"] = "updated_at:asc"
        if nests:
            params["include"] = ",".join(nest.association for nest in nests)
        if ids is not None:
            yield from self._by_ids(path, params, ids, since, nests)
            return
        if not contract.change_column:  # no change time: the whole listing, by page number
            yield from page_number_pages(lambda page: self._page(path, {**params, "page": page}, nests))
            return

        def fetch(cursor: datetime | None, page: int) -> Page:
            window = {"updated_after": updated_after(cursor)} if cursor is not None else {}
            return self._page(path, {**params, **window, "page": page}, nests)[0]

        read: set[str] | None = set() if since is not None and contract.entity in SUBMITTED_ON else None
        for page in change_keyset_pages(
            fetch, lambda r: parse_timestamp(r["updated_at"]), lambda r: r["id"], since, self.per_page
        ):
            if read is not None:
                read.update(str(record["id"]) for record in page)
            yield page
        if read is not None:
            yield from self._resubmitted(contract, path, params, since, read, nests)

    def _resubmitted(
        self,
        contract: EntityContract,
        path: str,
        params: dict[str, Any],
        since: datetime,
        read: set[str],
        nests: Sequence[Nested],
    ) -> Iterator[Page]:
        """Records on submissions changed since ``since`` that the change-time read did not return.

        Approving, rejecting or cancelling a submission changes the submission (its ``status``
        and current resolution, developer.kantata.com Timesheet / Expense Report Submissions,
        ``updated_after`` filter); Kantata documents no change of the records on it, so they
        are re-read by id (with their submission folded in) whatever their own ``updated_at``.
        """
        collection, include, foreign_key = SUBMITTED_ON[contract.entity]
        submissions_path = f"{API}/{collection}"
        query = {
            "per_page": self.per_page,
            "updated_after": updated_after(since),
            "include": include,
            **RESOURCE_FILTERS.get(collection, {}),
        }
        wanted: list[str] = []
        for page in page_number_pages(lambda page: self._page(submissions_path, {**query, "page": page})):
            for submission in page:
                wanted += [str(i) for i in submission.get(foreign_key) or () if str(i) not in read]
        if wanted:
            unordered = {key: value for key, value in params.items() if key != "order"}
            yield from self._by_ids(path, unordered, list(dict.fromkeys(wanted)), None, nests)

    def deleted(self, contract: EntityContract, *, since: datetime) -> Iterator[tuple[str, datetime]]:
        return iter(())  # no delete feed in the Kantata API (see the module docstring)

    def stats(self) -> dict[str, int]:
        return self.client.stats()

    # -- writeback -------------------------------------------------------------------------
    def create_workspace(self, fields: Mapping[str, Any]) -> dict:
        path = f"{API}/workspaces"
        # Kantata requires the creator's side of a new workspace: "maven" (the provider) or "buyer"
        # (mavenlink_gem lib/config/specification.yml, workspaces.validations: creator_role on create).
        workspace = {"creator_role": CREATOR_ROLE, **fields}
        body = self.client.post_json(path, json={"workspace": workspace}, required_keys=("results",))
        return self._single(body, "POST", path)

    def update_workspace(self, workspace_id: str, fields: Mapping[str, Any]) -> dict:
        path = f"{API}/workspaces/{workspace_id}"
        _, body = self.client.json_request(
            "PUT", path, json={"workspace": dict(fields)}, record_id=workspace_id, required_keys=("results",)
        )
        return self._single(body, "PUT", path)

    def workspaces_by_reference(self, opportunity_ids: Sequence[str]) -> Iterator[dict]:
        """Every workspace whose external reference names one of ``opportunity_ids``, with that
        reference folded in as ``external_reference`` (``GET /workspaces`` filtered by
        ``external_reference_service_name`` / ``_service_model`` / ``_service_model_refs``, at most
        200 ids a request, developer.kantata.com Workspaces; archived ones included)."""
        path = f"{API}/workspaces"
        nests = NESTED[PROJECTS.entity]
        for chunk in chunked(list(dict.fromkeys(opportunity_ids)), MAX_REFERENCE_IDS):
            params = {
                "per_page": self.per_page,
                "include": ",".join(nest.association for nest in nests),
                "order": "id:asc",
                **OPPORTUNITY_REFERENCE.filters(list(chunk)),
            }
            for page in page_number_pages(
                lambda page, params=params: self._page(path, {**params, "page": page}, nests)
            ):
                yield from page

    def count(self, resource: str, **filters: str) -> int:
        """How many ``resource`` records match ``filters`` (e.g. time entries of one workspace)."""
        body = self.client.get_json(f"{API}/{resource}", params={**filters, "per_page": 1}, required_keys=("results",))
        return int(body.get("count") or 0)

    # -- internals -------------------------------------------------------------------------
    def _by_ids(
        self,
        path: str,
        params: dict[str, Any],
        ids: Sequence[str],
        since: datetime | None,
        nests: Sequence[Nested] = (),
    ) -> Iterator[Page]:
        window = {"updated_after": updated_after(since)} if since is not None else {}
        for chunk in chunked(list(ids), self.per_page):
            only = {**params, **window, "only": ",".join(chunk)}
            yield from page_number_pages(lambda page, only=only: self._page(path, {**only, "page": page}, nests))

    def _page(self, path: str, params: dict[str, Any], nests: Sequence[Nested] = ()) -> tuple[Page, int]:
        body = self.client.get_json(path, params=params, required_keys=("results",))
        records = self._unpack(body, "GET", path)
        if nests:
            self._fold(records, body, nests)
        meta = body.get("meta") or {}
        page_count = int(meta.get("page_count") or -(-int(body.get("count") or 0) // self.per_page))
        return records, page_count

    def _fold(self, records: Page, body: Mapping[str, Any], nests: Sequence[Nested]) -> None:
        """Fold each nest's side-loaded objects into ``records`` (in place), then read what they include."""
        for nest in nests:
            side_loaded = body.get(nest.collection) or {}
            folded: list[dict] = []
            for record in records:
                related = fold_related(record, side_loaded, nest)
                if related is None:
                    continue
                if nest.many:  # a list stays one value: its objects are flattened one by one
                    related = [flatten_record(item) for item in related]
                record[nest.name] = related
                folded += related if nest.many else [related]
            if nest.then and folded:
                self._read_included(nest, folded)

    def _read_included(self, nest: Nested, objects: list[dict]) -> None:
        """``GET /<collection>?only=...&include=...`` for ``objects`` (side-loaded already), folding what
        the second request includes into them: an include of an include."""
        path = f"{API}/{nest.collection}"
        by_id: dict[str, list[dict]] = {}
        for obj in objects:
            by_id.setdefault(str(obj["id"]), []).append(obj)
        include = ",".join(sub.association for sub in nest.then)
        for chunk in chunked(list(by_id), self.per_page):
            params = {"only": ",".join(chunk), "per_page": self.per_page, "include": include}
            body = self.client.get_json(path, params=params, required_keys=("results",))
            fresh = self._unpack(body, "GET", path)
            self._fold(fresh, body, nest.then)
            for record in fresh:
                for obj in by_id.get(str(record["id"]), ()):
                    for sub in nest.then:
                        if sub.name in record:
                            value = record[sub.name]
                            # A listed object was flattened when folded; flatten what it now includes too.
                            obj.update(flatten_record({sub.name: value}) if nest.many else {sub.name: value})

    def _unpack(self, body: Mapping[str, Any], method: str, path: str) -> Page:
        try:
            return unpack_envelope(body)
        except ValueError as exc:
            raise MalformedResponseError(self.platform, method, self.client.url_for(path), 200, str(exc)) from None

    def _single(self, body: Mapping[str, Any], method: str, path: str) -> dict:
        records = self._unpack(body, method, path)
        if len(records) != 1:
            raise MalformedResponseError(self.platform, method, self.client.url_for(path), 200, "expected one record")
        return records[0]
