"""NetSuite client: SuiteQL extraction, the ``deletedrecord`` feed and REST record writeback.

Logins (``auth_mode``): OAuth 2.0 client credentials with a JWT client assertion signed by the
private key of the certificate mapped in the account's OAuth 2.0 Client Credentials (M2M)
Setup (``m2m``), or Token-Based Authentication, OAuth 1.0a signed with HMAC-SHA256 (``tba``).
NetSuite accepts no client id + secret pair for machine-to-machine logins.

SuiteQL answers dates and datetimes in the account's display format (``5/15/2026``, a datetime
cut to its date), so every date and timestamp the contracts need is selected as
``TO_CHAR(col, 'YYYY-MM-DD')`` or ``TO_CHAR(col, 'YYYY-MM-DD"T"HH24:MI:SS')`` under its own
name (salto-io/salto PR #3308 does the same). A formatted datetime is in the integration user's
time zone (``time_zone``), and is passed on as ISO 8601 UTC (``...Z``).

SuiteQL through REST answers at most the first 100,000 rows of a query (NetSuite help,
"Collection Paging", section_156414087576), and offset paging drifts when rows change between
pages, so whole tables are read with keyset restarts (``lastmodifieddate >= last seen``, or
``transaction >= last seen`` for invoice lines) instead of deep offsets: no query ever runs
into the cap. Every value SuiteQL answers is a string; records are passed on as answered
(``links`` included), dates as above.

Two SuiteQL facts the contracts' field list does not show:

- ``transaction`` does not expose ``subsidiary`` (``NOT_EXPOSED``); an invoice's subsidiary is
  read from its main line (``transactionline`` with ``mainline = 'T'``) and merged in.
- ``transactionline`` holds each transaction's main line (and tax lines) besides its item
  lines, so invoice lines are read ``WHERE mainline = 'F' AND taxline = 'F'``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import requests

from ps_pipelines.lib.contracts.base import EntityContract
from ps_pipelines.lib.http import (
    ApiClient,
    MalformedResponseError,
    change_keyset_pages,
    offset_pages,
)
from ps_pipelines.lib.http.signed_auth import OAuth1Signature, OAuth2ClientAssertion, realm_of
from ps_pipelines.lib.sources.base import Page, as_utc, chunked, parse_timestamp

SUITEQL = "/services/rest/query/v1/suiteql"
RECORDS = "/services/rest/record/v1"
TOKEN_PATH = "/services/rest/auth/oauth2/v1/token"
MAX_PAGE = 1000  # SuiteQL's largest page
IDS_PER_QUERY = 500
AUTH_MODES = ("m2m", "tba")
# Rows of a SuiteQL table that a contract covers (the transaction table holds every type; the
# transactionline table holds main and tax lines besides item lines).
TABLE_FILTERS: dict[str, tuple[str, ...]] = {
    "transaction": ("type = 'CustInvc'",),
    "transactionline": ("mainline = 'F'", "taxline = 'F'"),
}
# Contract fields a SuiteQL table does not expose, read from the transaction's main line instead.
MAIN_LINE_FIELDS: dict[str, tuple[str, ...]] = {"transaction": ("subsidiary",)}
# deletedrecord.type of each table's records.
DELETED_TYPES: dict[str, str] = {"customer": "customer", "job": "job", "transaction": "invoice"}
DATE_FORMAT = "YYYY-MM-DD"
DATETIME_FORMAT = 'YYYY-MM-DD"T"HH24:MI:SS'


def suiteql_timestamp(moment: datetime, time_zone: str = "UTC") -> str:
    text = as_utc(moment).astimezone(ZoneInfo(time_zone)).strftime("%Y-%m-%d %H:%M:%S")
    return f"TO_TIMESTAMP('{text}', 'YYYY-MM-DD HH24:MI:SS')"


def suiteql_literal(value: str) -> str:
    """Internal ids as numbers (what the columns hold); anything else as an Oracle string."""
    text = str(value)
    return text if text.isdigit() else "'" + text.replace("'", "''") + "'"


def column_kinds(contract: EntityContract) -> dict[str, str]:
    """``date`` or ``timestamp`` for the contract's date-typed columns (from its schema)."""
    kinds = {}
    for name, column in contract.schema.columns.items():
        dtype = str(column.dtype)
        if dtype.startswith("datetime64") and "UTC" in dtype:
            kinds[name] = "timestamp"
        elif dtype.startswith("datetime64"):
            kinds[name] = "date"
    return kinds


def select_item(column: str, kind: str | None) -> str:
    """A select item: dates and timestamps formatted to ISO under their own name."""
    if kind == "date":
        return f"TO_CHAR({column}, '{DATE_FORMAT}') AS {column}"
    if kind == "timestamp":
        return f"TO_CHAR({column}, '{DATETIME_FORMAT}') AS {column}"
    return column


def _where(conditions: Sequence[str]) -> str:
    return f" WHERE {' AND '.join(conditions)}" if conditions else ""


def build_suiteql(
    contract: EntityContract,
    since: datetime | None = None,
    keys: Sequence[str] | None = None,
    *,
    time_zone: str = "UTC",
    anchor: tuple[str, str] | None = None,
) -> str:
    """The SuiteQL for a contract: its fields, its rows, changed since ``since``, for ``keys``.

    ``keys`` are ids of the entity itself, or of the parent for a child entity (invoice
    lines are selected by ``transaction``). ``anchor`` is ``(column, literal)``: only rows at or
    past it (a keyset restart for tables without a change column).
    """
    change = contract.change_column
    kinds = column_kinds(contract)
    skipped = set(MAIN_LINE_FIELDS.get(contract.source_object, ()))
    fields = [select_item(f, kinds.get(f)) for f in contract.source_fields if f not in skipped]
    conditions = list(TABLE_FILTERS.get(contract.source_object, ()))
    if since is not None and change:
        conditions.append(f"{change} >= {suiteql_timestamp(since, time_zone)}")
    if keys is not None:
        column = contract.parent_key_column or contract.id_columns[0]
        conditions.append(f"{column} IN ({', '.join(suiteql_literal(k) for k in keys)})")
    if anchor is not None:
        conditions.append(f"{anchor[0]} >= {anchor[1]}")
    order = ", ".join(f"{column} ASC" for column in ((change,) if change else ()) + contract.id_columns)
    return f"SELECT {', '.join(fields)} FROM {contract.source_object}{_where(conditions)} ORDER BY {order}"


def _location_id(response: requests.Response) -> str | None:
    """The internal id at the end of a ``Location: .../record/v1/customer/123`` header."""
    location = response.headers.get("Location", "").rstrip("/")
    tail = location.rsplit("/", 1)[-1] if location else ""
    return tail or None


def netsuite_auth(
    token_url: str,
    account_id: str,
    auth_mode: str,
    *,
    client_id: str | None = None,
    certificate_id: str | None = None,
    private_key_pem: str | None = None,
    consumer_key: str | None = None,
    consumer_secret: str | None = None,
    token_id: str | None = None,
    token_secret: str | None = None,
    scopes: Sequence[str] = ("rest_webservices",),
) -> OAuth2ClientAssertion | OAuth1Signature:
    """The login strategy for ``auth_mode``; says which setting is missing, never a value."""
    if auth_mode == "m2m":
        missing = [n for n, v in (("client_id", client_id), ("certificate_id", certificate_id),
                                  ("private_key_pem", private_key_pem)) if not v]
        if missing:
            raise ValueError(f"NetSuite auth_mode 'm2m' needs {', '.join(missing)}")
        return OAuth2ClientAssertion(token_url, str(client_id), str(certificate_id), str(private_key_pem),
                                     scopes=scopes)
    if auth_mode == "tba":
        missing = [n for n, v in (("consumer_key", consumer_key), ("consumer_secret", consumer_secret),
                                  ("token_id", token_id), ("token_secret", token_secret)) if not v]
        if missing:
            raise ValueError(f"NetSuite auth_mode 'tba' needs {', '.join(missing)}")
        return OAuth1Signature(realm_of(account_id), str(consumer_key), str(consumer_secret), str(token_id),
                               str(token_secret))
    raise ValueError(f"NetSuite auth_mode must be one of {AUTH_MODES}, not {auth_mode!r}")


class NetSuiteClient:
    platform = "netsuite"

    def __init__(
        self,
        base_url: str,
        account_id: str,
        *,
        auth_mode: str = "m2m",
        client_id: str | None = None,
        certificate_id: str | None = None,
        private_key_pem: str | None = None,
        consumer_key: str | None = None,
        consumer_secret: str | None = None,
        token_id: str | None = None,
        token_secret: str | None = None,
        time_zone: str = "UTC",
        max_in_flight: int = 5,
        page_size: int = MAX_PAGE,
        **client_kw: Any,
    ) -> None:
        self.account_id = account_id
        self.page_size = min(page_size, MAX_PAGE)
        self.time_zone = time_zone
        self._zone = ZoneInfo(time_zone)
        auth = netsuite_auth(f"{base_url.rstrip('/')}{TOKEN_PATH}", account_id, auth_mode, client_id=client_id,
                             certificate_id=certificate_id, private_key_pem=private_key_pem,
                             consumer_key=consumer_key, consumer_secret=consumer_secret, token_id=token_id,
                             token_secret=token_secret)
        # NetSuite's account-wide concurrency governance answers 429 past its limit: stay under it.
        self.client = ApiClient(self.platform, base_url, auth, max_in_flight=max_in_flight, **client_kw)

    # -- protocol --------------------------------------------------------------------------
    def extract(
        self, contract: EntityContract, *, since: datetime | None, ids: Sequence[str] | None = None
    ) -> Iterator[Page]:
        if ids is not None:
            pages: Iterator[Page] = (
                page for chunk in chunked(list(ids), IDS_PER_QUERY)
                for page in self.suiteql(build_suiteql(contract, since, chunk, time_zone=self.time_zone))
            )
        elif contract.change_column is None:
            pages = self._anchored_by_parent(contract)
        else:
            pages = self._keyset(contract, since)
        kinds = column_kinds(contract)
        for page in pages:
            yield self._with_main_line_fields(contract, [self._iso_dates(row, kinds) for row in page])

    def deleted(self, contract: EntityContract, *, since: datetime) -> Iterator[tuple[str, datetime]]:
        record_type = DELETED_TYPES.get(contract.source_object)
        if record_type is None:
            return

        def fetch(cursor: datetime | None, page: int) -> Page:
            query = (f"SELECT recordid, type, TO_CHAR(deleteddate, '{DATETIME_FORMAT}') AS deleteddate "
                     f"FROM deletedrecord WHERE type = '{record_type}' AND deleteddate >= "
                     f"{suiteql_timestamp(cursor or since, self.time_zone)} ORDER BY deleteddate ASC, recordid ASC")
            rows = self._suiteql_page(query, (page - 1) * self.page_size, self.page_size)[0]
            return [self._iso_dates(row, {"deleteddate": "timestamp"}) for row in rows]

        for page in change_keyset_pages(fetch, lambda row: parse_timestamp(row["deleteddate"]),
                                        lambda row: str(row["recordid"]), None, self.page_size):
            for row in page:
                yield str(row["recordid"]), parse_timestamp(row["deleteddate"])

    def stats(self) -> dict[str, int]:
        return self.client.stats()

    # -- SuiteQL ---------------------------------------------------------------------------
    def suiteql(self, query: str) -> Iterator[Page]:
        """Pages of any SuiteQL query, by offset until ``hasMore`` is false.

        NetSuite answers only the first 100,000 rows of a query: use ``suiteql_by_key`` for
        anything that may be larger."""
        yield from offset_pages(lambda offset, limit: self._suiteql_page(query, offset, limit), self.page_size)

    def suiteql_by_key(
        self, select: str, table: str, conditions: Sequence[str] = (), key: str = "id"
    ) -> Iterator[Page]:
        """Every row of ``SELECT select FROM table WHERE conditions``, ordered by the numeric
        column ``key`` (unique per row), restarting at the last key seen after each page so no
        query ever reaches SuiteQL's 100,000-row cap (salto-io/salto PR #6061 re-queries the same
        way)."""
        def fetch(cursor: int | None, page: int) -> Page:
            anchored = [*conditions, *([f"{key} >= {cursor}"] if cursor is not None else [])]
            query = f"SELECT {select} FROM {table}{_where(anchored)} ORDER BY {key} ASC"
            return self._suiteql_page(query, (page - 1) * self.page_size, self.page_size)[0]

        yield from change_keyset_pages(fetch, lambda row: int(row[key]), lambda row: str(row[key]), None,
                                       self.page_size)

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
        kinds = column_kinds(contract)

        def fetch(cursor: datetime | None, page: int) -> Page:
            query = build_suiteql(contract, cursor, time_zone=self.time_zone)
            rows = self._suiteql_page(query, (page - 1) * self.page_size, self.page_size)[0]
            return [self._iso_dates(row, kinds) for row in rows]

        yield from change_keyset_pages(
            fetch, lambda row: parse_timestamp(row[change]), lambda row: row["id"], since, self.page_size
        )

    def _anchored_by_parent(self, contract: EntityContract) -> Iterator[Page]:
        """A whole child table (invoice lines) by keyset on its parent id, then the line id."""
        parent = contract.parent_key_column or contract.id_columns[0]

        def fetch(cursor: int | None, page: int) -> Page:
            anchor = (parent, str(cursor)) if cursor is not None else None
            query = build_suiteql(contract, None, time_zone=self.time_zone, anchor=anchor)
            return self._suiteql_page(query, (page - 1) * self.page_size, self.page_size)[0]

        yield from change_keyset_pages(fetch, lambda row: int(row[parent]),
                                       lambda row: contract.source_id(row), None, self.page_size)

    def _with_main_line_fields(self, contract: EntityContract, page: Page) -> Page:
        """Merge the fields a table does not expose from each transaction's main line."""
        fields = MAIN_LINE_FIELDS.get(contract.source_object)
        if not fields or not page:
            return page
        wanted = [f for f in fields if f in contract.source_fields]
        values = self.main_line_values([str(row["id"]) for row in page], wanted)
        return [{**row, **values.get(str(row["id"]), {})} for row in page]

    def main_line_values(self, transaction_ids: Sequence[str], fields: Sequence[str]) -> dict[str, dict[str, Any]]:
        """``transaction id -> {field: value}`` read from the transactions' main lines."""
        found: dict[str, dict[str, Any]] = {}
        for chunk in chunked(list(dict.fromkeys(transaction_ids)), IDS_PER_QUERY):
            query = (f"SELECT transaction, {', '.join(fields)} FROM transactionline WHERE mainline = 'T' "
                     f"AND transaction IN ({', '.join(suiteql_literal(i) for i in chunk)}) ORDER BY transaction")
            for page in self.suiteql(query):
                for row in page:
                    found[str(row["transaction"])] = {f: row[f] for f in fields if f in row}
        return found

    def _iso_dates(self, row: dict[str, Any], kinds: Mapping[str, str]) -> dict[str, Any]:
        """TO_CHAR'd timestamps (the user's time zone, no offset) as ISO 8601 UTC ``...Z``."""
        for name, kind in kinds.items():
            value = row.get(name)
            if kind == "timestamp" and isinstance(value, str) and value and not value.endswith("Z"):
                local = datetime.fromisoformat(value)
                if local.tzinfo is None:
                    local = local.replace(tzinfo=self._zone)
                row[name] = local.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return row

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
