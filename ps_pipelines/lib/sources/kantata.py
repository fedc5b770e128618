"""Kantata OX (Mavenlink API v1) client: side-loaded envelopes, keyset paging, workspace writeback.

Kantata has no delete feed: a deleted workspace, time entry or expense simply stops being
listed, so ``deleted()`` yields nothing and deletions can only be found by comparing a
full snapshot with what is stored.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from ps_pipelines.lib.contracts.base import EntityContract
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
# Extra index filters per resource: milestones are the stories whose story_type is "milestone".
RESOURCE_FILTERS: dict[str, dict[str, str]] = {"stories": {"story_type": "milestone"}}


def unpack_envelope(body: Mapping[str, Any]) -> Page:
    """Records in ``results`` order from Kantata's id-keyed side-loaded maps."""
    try:
        return [body[ref["key"]][str(ref["id"])] for ref in body["results"]]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"results reference a record the answer does not include: {exc}") from None


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
        params = {
            "per_page": self.per_page,
            "order": "updated_at:asc",
            **RESOURCE_FILTERS.get(contract.source_object, {}),
        }
        if ids is not None:
            yield from self._by_ids(path, params, ids, since)
            return

        def fetch(cursor: datetime | None, page: int) -> Page:
            window = {"updated_after": updated_after(cursor)} if cursor is not None else {}
            return self._page(path, {**params, **window, "page": page})[0]

        yield from change_keyset_pages(
            fetch, lambda r: parse_timestamp(r["updated_at"]), lambda r: r["id"], since, self.per_page
        )

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

    def count(self, resource: str, **filters: str) -> int:
        """How many ``resource`` records match ``filters`` (e.g. time entries of one workspace)."""
        body = self.client.get_json(f"{API}/{resource}", params={**filters, "per_page": 1}, required_keys=("results",))
        return int(body.get("count") or 0)

    # -- internals -------------------------------------------------------------------------
    def _by_ids(self, path: str, params: dict[str, Any], ids: Sequence[str], since: datetime | None) -> Iterator[Page]:
        window = {"updated_after": updated_after(since)} if since is not None else {}
        for chunk in chunked(list(ids), self.per_page):
            only = {**params, **window, "only": ",".join(chunk)}
            yield from page_number_pages(lambda page, only=only: self._page(path, {**only, "page": page}))

    def _page(self, path: str, params: dict[str, Any]) -> tuple[Page, int]:
        body = self.client.get_json(path, params=params, required_keys=("results",))
        records = self._unpack(body, "GET", path)
        meta = body.get("meta") or {}
        page_count = int(meta.get("page_count") or -(-int(body.get("count") or 0) // self.per_page))
        return records, page_count

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
