"""Salesforce REST API client: SOQL ``queryAll`` extraction, ``getDeleted``, record writeback,
sObject Describe for schema drift, and Salesforce's request limits.

``queryAll`` (not ``query``) so records in the recycle bin arrive with ``IsDeleted = true``:
soft deletes flow through the normal incremental path. Hard deletes (emptied recycle bin,
merges) only show in the ``getDeleted`` feed, read by ``deleted()``.

Request limits ("API Request Limits and Allocations", Salesforce Developer Limits Quick
Reference; "Status Codes and Error Responses", REST API Developer Guide): Salesforce answers an
exceeded limit with 403 ``REQUEST_LIMIT_EXCEEDED``, never 429. The concurrent long-running
request limit frees up as other requests finish, so it is waited out with backoff; the org's
total (daily, rolling 24-hour) allocation does not free up within a run, so it stops the run
with ``QuotaExhaustedError`` at once. ``classify_error`` is the one place that tells them apart.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import orjson
import requests

from ps_pipelines.lib.contracts.base import EntityContract
from ps_pipelines.lib.http import ApiClient, OAuth2ClientCredentials, QuotaExhausted, Throttled, follow_next_url
from ps_pipelines.lib.sources.base import (
    FieldDrift,
    MissingFieldsError,
    Page,
    as_utc,
    chunked,
    parse_timestamp,
    source_field,
)

# getDeleted answers at most ~600k ids per call and only for recent days: ask in windows.
DELETED_WINDOW = timedelta(days=30)
# Keeps a SOQL ``Id IN (...)`` well under the 100k-character query limit.
IDS_PER_QUERY = 300
_LIMIT_INFO = re.compile(r"api-usage=(\d+)/(\d+)")


def soql_datetime(moment: datetime) -> str:
    """A SOQL dateTime literal (unquoted), e.g. ``2026-10-01T00:00:00.000Z``."""
    moment = as_utc(moment)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def soql_string(value: str) -> str:
    """A quoted SOQL string literal (SOQL escapes with backslashes)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def build_soql(contract: EntityContract, since: datetime | None, ids: Sequence[str] | None = None) -> str:
    change = source_field(contract, contract.change_column or "systemmodstamp")
    # ANDed as written: a filter with an OR brings its own parentheses.
    conditions = [contract.source_filter] if contract.source_filter else []
    if since is not None:
        conditions.append(f"{change} >= {soql_datetime(since)}")
    if ids is not None:
        conditions.append(f"Id IN ({', '.join(soql_string(i) for i in ids)})")
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    fields = ", ".join(contract.source_fields)
    return f"SELECT {fields} FROM {contract.source_object}{where} ORDER BY {change} ASC, Id ASC"


def classify_error(response: requests.Response, detail: str | None = None) -> Throttled | QuotaExhausted | None:
    """Salesforce's request-limit refusals: 403 with ``errorCode`` ``REQUEST_LIMIT_EXCEEDED``.

    The message names the limit: ``ConcurrentPerOrgLongTxn Limit exceeded.`` (or
    ``ConcurrentRequests ...``) for the concurrent long-running request limit, which frees up as
    requests finish (wait and retry); ``TotalRequests Limit exceeded.`` for the org's total
    allocation, which does not within a run (stop). Any other REQUEST_LIMIT_EXCEEDED is a quota
    too: stopping is the safe reading, as retrying a spent quota only spends more of it.
    """
    if response.status_code != 403:
        return None
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None
    for error in body if isinstance(body, list) else []:
        if isinstance(error, dict) and error.get("errorCode") == "REQUEST_LIMIT_EXCEEDED":
            message = str(error.get("message") or "REQUEST_LIMIT_EXCEEDED")
            if message.lower().startswith("concurrent"):
                return Throttled(message)
            return QuotaExhausted(message)
    return None


class SalesforceClient:
    platform = "salesforce"

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        api_version: str = "v61.0",
        batch_size: int = 2000,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        **client_kw: Any,
    ) -> None:
        self.api_version = api_version
        self.batch_size = batch_size
        self._clock = clock
        self._auth = OAuth2ClientCredentials(f"{base_url.rstrip('/')}/services/oauth2/token", client_id, client_secret)
        client_kw.setdefault("classify_error", classify_error)
        self.client = ApiClient(self.platform, base_url, self._auth, **client_kw)
        self._describes: dict[str, dict[str, Any]] = {}
        self.client.response_hooks.append(self._read_limit_info)
        self._api_usage: tuple[int, int] | None = None

    # -- protocol --------------------------------------------------------------------------
    def extract(
        self, contract: EntityContract, *, since: datetime | None, ids: Sequence[str] | None = None
    ) -> Iterator[Page]:
        headers = {"Sforce-Query-Options": f"batchSize={self.batch_size}"}
        # With ids the order holds within each chunk of ids, which is all an id lookup needs.
        for id_chunk in chunked(list(ids), IDS_PER_QUERY) if ids is not None else [None]:
            soql = build_soql(contract, since, id_chunk)
            yield from follow_next_url(
                self.client,
                self._data_url("queryAll"),
                {"q": soql},
                "records",
                "nextRecordsUrl",
                headers=headers,
            )

    def deleted(self, contract: EntityContract, *, since: datetime) -> Iterator[tuple[str, datetime]]:
        path = f"sobjects/{contract.source_object}/deleted/"
        seen: set[str] = set()
        # Whole seconds on the wire; the end rounds up so a delete in the current second counts.
        start = as_utc(since).replace(microsecond=0)
        end = self._clock().replace(microsecond=0) + timedelta(seconds=1)
        while start < end:
            window_end = min(start + DELETED_WINDOW, end)
            params = {
                "start": start.isoformat(timespec="seconds"),
                "end": window_end.isoformat(timespec="seconds"),
            }
            body = self.client.get_json(self._data_url(path), params=params, required_keys=("deletedRecords",))
            for entry in body["deletedRecords"]:
                if entry["id"] not in seen:  # windows share their boundary instant
                    seen.add(entry["id"])
                    yield entry["id"], parse_timestamp(entry["deletedDate"])
            start = window_end

    def stats(self) -> dict[str, int]:
        stats = self.client.stats()
        if self._api_usage is not None:
            stats["api_usage"], stats["api_limit"] = self._api_usage
        return stats

    # -- schema ----------------------------------------------------------------------------
    def describe(self, sobject: str) -> dict[str, Any]:
        """The object's sObject Describe (REST API Developer Guide, "sObject Describe"), fetched
        once per client: one request per object and run."""
        if sobject not in self._describes:
            self._describes[sobject] = self.client.get_json(
                self._data_url(f"sobjects/{quote(sobject, safe='')}/describe"), required_keys=("fields",))
        return self._describes[sobject]

    def field_drift(self, contract: EntityContract) -> FieldDrift:
        """The contract's fields against the org's: missing ones, custom fields it does not read."""
        org = {str(f["name"]).lower(): f for f in self.describe(contract.source_object)["fields"]}
        wanted = {name.lower(): name for name in contract.source_fields}
        return FieldDrift(
            sobject=contract.source_object,
            missing=tuple(name for key, name in wanted.items() if key not in org),
            unknown=tuple(sorted(str(f["name"]) for key, f in org.items() if f.get("custom") and key not in wanted)),
            unread=sum(1 for key, f in org.items() if not f.get("custom") and key not in wanted),
        )

    def check_fields(self, contract: EntityContract) -> FieldDrift:
        """``field_drift``, raising ``MissingFieldsError`` (naming every missing field) before
        any query does, instead of Salesforce's INVALID_FIELD for the first one only."""
        drift = self.field_drift(contract)
        if drift.missing:
            raise MissingFieldsError(self.platform, contract.key, drift)
        return drift

    # -- writeback -------------------------------------------------------------------------
    def upsert(self, sobject: str, ext_id_field: str, value: str, fields: Mapping[str, Any]) -> dict:
        """Create or update the record whose ``ext_id_field`` is ``value``.

        Returns ``{"id", "created", "success", "errors"}``; Salesforce answers an update with
        204 and no body, so the id is then read back by external id.
        """
        path = self._data_url(f"sobjects/{sobject}/{ext_id_field}/{quote(value, safe='')}")
        _, body = self.client.json_request("PATCH", path, json=dict(fields), record_id=value)
        if body:
            return body
        record = self.client.get_json(path, record_id=value, required_keys=("Id",))
        return {"id": record["Id"], "created": False, "success": True, "errors": []}

    def update(self, sobject: str, record_id: str, fields: Mapping[str, Any]) -> None:
        path = self._data_url(f"sobjects/{sobject}/{quote(record_id, safe='')}")
        self.client.request("PATCH", path, json=dict(fields), record_id=record_id)

    def get(self, sobject: str, record_id: str) -> dict:
        path = self._data_url(f"sobjects/{sobject}/{quote(record_id, safe='')}")
        return self.client.get_json(path, record_id=record_id, required_keys=("Id",))

    def integration_user_id(self) -> str | None:
        """The id of the user our API calls run as (the connected app's integration user).

        Salesforce names it in the token answer's ``id``, the identity URL
        ``https://login.salesforce.com/id/<orgId>/<userId>`` ("Identity URLs",
        help.salesforce.com/s/articleView?id=xcloud.remoteaccess_using_openid.htm; the client
        credentials flow issues the token "on behalf of the integration user you assigned",
        id=xcloud.remoteaccess_oauth_client_credentials_flow.htm). Every record we write then
        carries that id as ``LastModifiedById`` (Object Reference, "System Fields").
        """
        self._auth.ensure()
        identity = self._auth.token_response.get("id")
        if not isinstance(identity, str) or "/id/" not in identity:
            return None
        return identity.rstrip("/").rsplit("/", 1)[-1] or None

    # -- internals -------------------------------------------------------------------------
    def _data_url(self, path: str) -> str:
        # Data lives on the org's instance, which the token answer names; fall back to the
        # login host for orgs (and the sandbox) that serve both from one address.
        self._auth.ensure()
        base = (self._auth.instance_url or self.client.base_url).rstrip("/")
        return f"{base}/services/data/{self.api_version}/{path}"

    def _read_limit_info(self, response: requests.Response) -> None:
        match = _LIMIT_INFO.search(response.headers.get("Sforce-Limit-Info", ""))
        if match:
            self._api_usage = (int(match.group(1)), int(match.group(2)))
