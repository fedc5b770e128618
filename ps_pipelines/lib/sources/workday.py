"""Workday client: the workers REST API (OAuth2 bearer) and RaaS custom reports (basic auth).

The workers API has no modified-since filter, so workers are always a full snapshot
(offset paging until ``total``). RaaS reports answer in one piece; the ``Updated_From``
prompt narrows them to recent changes and the rows are handed on in chunks, ordered by
their change field so the caller's high-water mark only ever moves forward.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from ps_pipelines.lib.contracts.base import EntityContract
from ps_pipelines.lib.http import ApiClient, BasicAuth, OAuth2RefreshToken, offset_pages
from ps_pipelines.lib.sources.base import Page, as_utc, chunked, parse_timestamp

WORKERS = "workers"
WORKERS_PAGE = 100  # the workers API's maximum limit
REPORT_CHUNK = 1000


class WorkdayClient:
    platform = "workday"

    def __init__(
        self,
        base_url: str,
        tenant: str,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        username: str,
        password: str,
        report_owner: str,
        workers_page_size: int = WORKERS_PAGE,
        **client_kw: Any,
    ) -> None:
        self.tenant = tenant
        self.workers_page_size = min(workers_page_size, WORKERS_PAGE)
        self.report_owner = report_owner
        token_url = f"{base_url.rstrip('/')}/ccx/oauth2/{tenant}/token"
        bearer = OAuth2RefreshToken(token_url, client_id, client_secret, refresh_token)
        self.client = ApiClient(self.platform, base_url, bearer, **client_kw)
        # RaaS authenticates the integration system user, not the API client.
        self._report_auth = BasicAuth(username, password)

    # -- protocol --------------------------------------------------------------------------
    def extract(
        self, contract: EntityContract, *, since: datetime | None, ids: Sequence[str] | None = None
    ) -> Iterator[Page]:
        if contract.source_object == WORKERS:
            return self._workers(ids)
        return self._report(contract, since, ids)

    def deleted(self, contract: EntityContract, *, since: datetime) -> Iterator[tuple[str, datetime]]:
        # Neither API has a delete feed: a worker missing from the full snapshot is the signal.
        return iter(())

    def stats(self) -> dict[str, int]:
        return self.client.stats()

    # -- workers ---------------------------------------------------------------------------
    def _workers(self, ids: Sequence[str] | None) -> Iterator[Page]:
        path = f"/ccx/api/v1/{self.tenant}/workers"
        if ids is not None:
            for chunk in chunked(list(ids), self.workers_page_size):
                page = [worker for worker_id in chunk if (worker := self._worker(path, worker_id)) is not None]
                if page:
                    yield page
            return

        def fetch(offset: int, limit: int) -> tuple[Page, int]:
            body = self.client.get_json(
                path, params={"limit": limit, "offset": offset}, required_keys=("data", "total")
            )
            return body["data"], int(body["total"])

        yield from offset_pages(fetch, self.workers_page_size)

    def _worker(self, path: str, worker_id: str) -> dict | None:
        response, body = self.client.json_request(
            "GET",
            f"{path}/{quote(worker_id, safe='')}",
            record_id=worker_id,
            expected=(200, 404),
            required_keys=("id",),
        )
        return body if response.status_code == 200 else None

    # -- RaaS ------------------------------------------------------------------------------
    def _report(self, contract: EntityContract, since: datetime | None, ids: Sequence[str] | None) -> Iterator[Page]:
        path = f"/ccx/service/customreport2/{self.tenant}/{self.report_owner}/{contract.source_object}"
        params = {"format": "json"}
        if since is not None:
            params["Updated_From"] = as_utc(since).isoformat(timespec="milliseconds")
        body = self.client.get_json(path, params=params, auth=self._report_auth, required_keys=("Report_Entry",))
        rows = body["Report_Entry"] or []
        if ids is not None:
            wanted = set(ids)
            rows = [row for row in rows if _row_id(contract, row) in wanted]
        rows.sort(key=lambda row: _report_order(contract, row))
        yield from (list(chunk) for chunk in chunked(rows, REPORT_CHUNK))


def _field(row: dict[str, Any], column: str) -> Any:
    """A RaaS field by its flattened (lower-cased) column name: ``worker_id`` -> ``Worker_ID``."""
    for key, value in row.items():
        if key.lower() == column:
            return value
    return None


def _row_id(contract: EntityContract, row: dict[str, Any]) -> str:
    return "|".join(str(_field(row, column)) for column in contract.id_columns)


_UNDATED = datetime.min.replace(tzinfo=UTC)


def _report_order(contract: EntityContract, row: dict[str, Any]) -> tuple[datetime, str]:
    change = _field(row, contract.change_column) if contract.change_column else None
    return (parse_timestamp(change) if change else _UNDATED, _row_id(contract, row))
