"""NetSuite client: SuiteQL extraction, the ``deletedrecord`` feed and REST record writeback.

SuiteQL offset paging is capped (NetSuite refuses offsets past 100k rows of one query) and
drifts when rows change between pages, so change-tracked tables are read with keyset
restarts (``lastmodifieddate >= last seen``) instead of deep offsets. Every value SuiteQL
answers is a string; records are passed on as answered (``links`` included).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

import requests

from ps_pipelines.lib.contracts.base import EntityContract
from ps_pipelines.lib.http import (
    ApiClient,
    MalformedResponseError,
    OAuth2ClientCredentials,
    change_keyset_pages,
    offset_pages,
)
from ps_pipelines.lib.sources.base import Page, as_utc, chunked, parse_timestamp

SUITEQL = "/services/rest/query/v1/suiteql"
RECORDS = "/services/rest/record/v1"
MAX_PAGE = 1000  # SuiteQL's largest page
IDS_PER_QUERY = 500
# Rows of a SuiteQL table that a contract covers (the transaction table holds every type).
TABLE_FILTERS: dict[str, tuple[str, ...]] = {"transaction": ("type = 'CustInvc'",)}
# deletedrecord.type of each table's records.
DELETED_TYPES: dict[str, str] = {"customer": "customer", "job": "job", "transaction": "invoice"}


def suiteql_timestamp(moment: datetime) -> str:
    text = as_utc(moment).strftime("%Y-%m-%d %H:%M:%S")
    return f"TO_TIMESTAMP('{text}', 'YYYY-MM-DD HH24:MI:SS')"


def suiteql_literal(value: str) -> str:
    """Internal ids as numbers (what the columns hold); anything else as an Oracle string."""
    text = str(value)
    return text if text.isdigit() else "'" + text.replace("'", "''") + "'"


def build_suiteql(contract: EntityContract, since: datetime | None = None, keys: Sequence[str] | None = None) -> str:
    """The SuiteQL for a contract: its fields, its rows, changed since ``since``, for ``keys``.

    ``keys`` are ids of the entity itself, or of the parent for a child entity (invoice
    lines are selected by ``transaction``).
    """
    change = contract.change_column
    conditions = list(TABLE_FILTERS.get(contract.source_object, ()))
    if since is not None and change:
        conditions.append(f"{change} >= {suiteql_timestamp(since)}")
    if keys is not None:
        column = contract.parent_key_column or contract.id_columns[0]
        conditions.append(f"{column} IN ({', '.join(suiteql_literal(k) for k in keys)})")
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    order = ", ".join(f"{column} ASC" for column in ((change,) if change else ()) + contract.id_columns)
    return f"SELECT {', '.join(contract.source_fields)} FROM {contract.source_object}{where} ORDER BY {order}"


def _location_id(response: requests.Response) -> str | None:
    """The internal id at the end of a ``Location: .../record/v1/customer/123`` header."""
    location = response.headers.get("Location", "").rstrip("/")
    tail = location.rsplit("/", 1)[-1] if location else ""
    return tail or None


class NetSuiteClient:
    platform = "netsuite"

    def __init__(
        self,
        base_url: str,
        account_id: str,
        client_id: str,
        client_secret: str,
        max_in_flight: int = 5,
        page_size: int = MAX_PAGE,
        **client_kw: Any,
    ) -> None:
        self.account_id = account_id
        self.page_size = min(page_size, MAX_PAGE)
        token_url = f"{base_url.rstrip('/')}/services/rest/auth/oauth2/v1/token"
        auth = OAuth2ClientCredentials(token_url, client_id, client_secret)
        # NetSuite's account-wide concurrency governance answers 429 past its limit: stay under it.
        self.client = ApiClient(self.platform, base_url, auth, max_in_flight=max_in_flight, **client_kw)

    # -- protocol --------------------------------------------------------------------------
    def extract(
        self, contract: EntityContract, *, since: datetime | None, ids: Sequence[str] | None = None
    ) -> Iterator[Page]:
        if ids is not None:
            for chunk in chunked(list(ids), IDS_PER_QUERY):
                yield from self.suiteql(build_suiteql(contract, since, chunk))
        elif contract.change_column is None:
            yield from self.suiteql(build_suiteql(contract))
        else:
            yield from self._keyset(contract, since)

    def deleted(self, contract: EntityContract, *, since: datetime) -> Iterator[tuple[str, datetime]]:
        record_type = DELETED_TYPES.get(contract.source_object)
        if record_type is None:
            return
        query = (
            f"SELECT recordid, type, deleteddate FROM deletedrecord WHERE type = '{record_type}' "
            f"AND deleteddate >= {suiteql_timestamp(since)} ORDER BY deleteddate ASC"
        )
        for page in self.suiteql(query):
            for row in page:
                yield str(row["recordid"]), parse_timestamp(row["deleteddate"])

    def stats(self) -> dict[str, int]:
        return self.client.stats()

    # -- SuiteQL ---------------------------------------------------------------------------
    def suiteql(self, query: str) -> Iterator[Page]:
        """Pages of any SuiteQL query, by offset until ``hasMore`` is false."""
        yield from offset_pages(lambda offset, limit: self._suiteql_page(query, offset, limit), self.page_size)

    def _suiteql_page(self, query: str, offset: int, limit: int) -> tuple[Page, bool]:
        body = self.client.post_json(
            SUITEQL,
            params={"limit": limit, "offset": offset},
            json={"q": query},
            headers={"Prefer": "transient"},
            idempotent=True,  # a query changes nothing, so re-sending it is safe
            required_keys=("items",),
        )
        return body["items"] or [], bool(body.get("hasMore"))

    def _keyset(self, contract: EntityContract, since: datetime | None) -> Iterator[Page]:
        change = contract.change_column or ""

        def fetch(cursor: datetime | None, page: int) -> Page:
            return self._suiteql_page(build_suiteql(contract, cursor), (page - 1) * self.page_size, self.page_size)[0]

        yield from change_keyset_pages(
            fetch, lambda row: parse_timestamp(row[change]), lambda row: row["id"], since, self.page_size
        )

    # -- writeback -------------------------------------------------------------------------
    def upsert_by_external_id(
        self, record: str, external_id: str, body: Mapping[str, Any], *, replace: Sequence[str] = ()
    ) -> str:
        """Create or update ``record`` by external id; returns its internal id.

        ``replace`` names sublists (e.g. ``item``) whose lines the body replaces; without it
        NetSuite merges the body's lines into the existing ones.
        """
        eid = f"eid:{external_id}"
        params = {"replace": ",".join(replace)} if replace else None
        response = self.client.request("PUT", self._record_path(record, eid), json=dict(body), record_id=eid,
                                       params=params)
        internal_id = _location_id(response)
        if internal_id is None:
            found = self.get_record(record, eid)
            internal_id = str(found["id"]) if found and found.get("id") else None
        if internal_id is None:
            raise MalformedResponseError(
                self.platform,
                "PUT",
                self._record_path(record, eid),
                response.status_code,
                "no internal id",
                eid,
            )
        return internal_id

    def get_record(self, record: str, id_or_eid: str) -> dict | None:
        response, body = self.client.json_request(
            "GET",
            self._record_path(record, id_or_eid),
            record_id=id_or_eid,
            expected=(200, 404),
            required_keys=("id",),
        )
        return body if response.status_code == 200 else None

    def create(self, record: str, body: Mapping[str, Any]) -> str:
        """Create a record; returns its internal id (from the ``Location`` header).

        A create is not re-sent once it may have reached NetSuite (a second send would make a
        second record); prefer ``upsert_by_external_id``, which is safe to repeat.
        """
        path = f"{RECORDS}/{record}"
        response = self.client.request("POST", path, json=dict(body))
        internal_id = _location_id(response)
        if internal_id is None:
            raise MalformedResponseError(self.platform, "POST", path, response.status_code, "no Location header")
        return internal_id

    def _record_path(self, record: str, id_or_eid: str) -> str:
        return f"{RECORDS}/{record}/{quote(id_or_eid, safe=':')}"
