"""Dynamics 365 Finance and Operations client: OData v4 data entities under ``/data``.

Login: an app registration in the firm's Microsoft Entra tenant, OAuth 2.0 client credentials
with ``scope=<environment URL>/.default`` ("Service endpoints overview", learn.microsoft.com/
en-us/dynamics365/fin-ops-core/dev-itpro/data-entities/services-home-page). Retries, 429
``Retry-After`` waits and the one token refresh after a 401 live in ``ApiClient``.

Reads: a company-specific entity answers only the user's default company unless the query says
``cross-company=true``, so every read says it; ``$select`` names the contract's fields; the
server pages by ``@odata.nextLink`` at ``Prefer: odata.maxpagesize`` (10,000 at most)
(learn.microsoft.com/en-us/dynamics365/fin-ops-core/dev-itpro/data-entities/odata).

No public entity read here exposes a modified timestamp, so ``extract`` always reads the whole
entity (the ingestion loop takes a snapshot and marks unlisted rows deleted) and ``deleted``
answers nothing: there is no delete feed.
"""

from __future__ import annotations

import email.parser
import email.policy
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

from ps_pipelines.lib.contracts.base import EntityContract
from ps_pipelines.lib.http import ApiClient, ApiError, OAuth2ClientCredentials, ValidationError, follow_next_url
from ps_pipelines.lib.sources.base import Page

DATA = "/data"
LOGIN_URL = "https://login.microsoftonline.com"
MAX_PAGE = 10_000  # the server's largest page, whatever the preference asks
CROSS_COMPANY = {"cross-company": "true"}
IDS_PER_FILTER = 50  # keys per ``$filter`` of ``or``-ed equalities (F&O has no ``in`` operator)


def odata_literal(value: Any) -> str:
    """A value in a ``$filter`` or key predicate: numbers bare, text quoted (``'`` doubled)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def key_predicate(key: Mapping[str, Any]) -> str:
    """``(dataAreaId='usmf',CustomerAccount='US-001')``: every key field, named."""
    return "(" + ",".join(f"{name}={odata_literal(value)}" for name, value in key.items()) + ")"


def ids_filter(contract: EntityContract, ids: Sequence[str]) -> str:
    """Rows whose source id (key values joined by ``|``, see ``EntityContract.source_id``) is one
    of ``ids``: an ``or`` of key equalities, since F&O's ``$filter`` has no ``in`` operator."""
    fields = [next(f for f in contract.source_fields if f.lower() == column) for column in contract.id_columns]
    numeric = {name for name, column in contract.schema.columns.items() if str(column.dtype).startswith("float")}

    def literal(column: str, text: str) -> str:
        if column not in numeric:
            return odata_literal(text)
        number = Decimal(text)  # "1000.0" from a float column: 1000, never the exponent form 1E+3
        return str(int(number)) if number == number.to_integral_value() else format(number.normalize(), "f")

    def one(source_id: str) -> str:
        parts = source_id.split("|")
        terms = [f"{f} eq {literal(c, v)}" for f, c, v in zip(fields, contract.id_columns, parts, strict=True)]
        return terms[0] if len(terms) == 1 else "(" + " and ".join(terms) + ")"

    return " or ".join(one(i) for i in ids)


@dataclass(frozen=True)
class ChangeRequest:
    """One request of a ``$batch`` change set. ``url`` is relative to the service root
    (``FreeTextInvoiceHeaders``) or starts with an earlier request's Content-ID (``$1/...``);
    ``content_id`` names this one for the later requests."""

    method: str
    url: str
    body: Mapping[str, Any] | None = None
    content_id: str | None = None


@dataclass
class ChangeAnswer:
    status: int
    body: dict[str, Any] | None = field(default=None)


def _change_set_body(requests: Sequence[ChangeRequest]) -> tuple[str, bytes]:
    """A ``multipart/mixed`` batch holding one change set (OData 4.0 Part 1 section 11.7.2)."""
    batch, change_set = f"batch_{uuid.uuid4()}", f"changeset_{uuid.uuid4()}"
    parts = []
    for request in requests:
        head = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
        if request.content_id:
            head.append(f"Content-ID: {request.content_id}")
        body = orjson.dumps(dict(request.body)) if request.body is not None else b""
        inner = [f"{request.method} {request.url} HTTP/1.1", "Content-Type: application/json",
                 "Accept: application/json"]
        parts.append(f"--{change_set}\r\n" + "\r\n".join(head) + "\r\n\r\n" + "\r\n".join(inner) + "\r\n\r\n"
                     + body.decode() + "\r\n")
    text = (f"--{batch}\r\nContent-Type: multipart/mixed; boundary={change_set}\r\n\r\n" + "".join(parts)
            + f"--{change_set}--\r\n--{batch}--\r\n")
    return f"multipart/mixed; boundary={batch}", text.encode()


def _http_answers(content_type: str, body: bytes) -> list[ChangeAnswer]:
    """The ``application/http`` answers of a batch response, in order, change sets flattened."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    answers = []
    for part in message.walk():
        if part.get_content_type() != "application/http":
            continue
        payload = part.get_payload(decode=True) or b""
        head, _, rest = payload.replace(b"\r\n", b"\n").partition(b"\n\n")
        status = int(head.split(b"\n", 1)[0].split()[1])
        rest = rest.strip()
        answers.append(ChangeAnswer(status, orjson.loads(rest) if rest.startswith(b"{") else None))
    return answers


def _error_text(body: dict[str, Any] | None) -> str:
    error = (body or {}).get("error") or {}
    inner = (error.get("innererror") or {}).get("message")
    return " ".join(str(text) for text in (error.get("message"), inner) if text) or "change set failed"


class D365Client:
    platform = "d365"

    def __init__(
        self,
        base_url: str,
        tenant: str,
        client_id: str,
        client_secret: str,
        *,
        login_url: str = LOGIN_URL,
        page_size: int = MAX_PAGE,
        **client_kw: Any,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.page_size = min(page_size, MAX_PAGE)
        auth = OAuth2ClientCredentials(f"{login_url.rstrip('/')}/{tenant}/oauth2/v2.0/token", client_id, client_secret,
                                       scope=f"{self.base_url}/.default")
        self.client = ApiClient(self.platform, self.base_url, auth, **client_kw)

    # -- protocol --------------------------------------------------------------------------
    def extract(
        self, contract: EntityContract, *, since: datetime | None, ids: Sequence[str] | None = None
    ) -> Iterator[Page]:
        """Every row of the entity (``since`` has nothing to filter on), or those of ``ids``."""
        select = ",".join(contract.source_fields)
        if ids is None:
            yield from self.pages(contract.source_object, select=select)
            return
        for start in range(0, len(ids), IDS_PER_FILTER):
            chunk = ids[start : start + IDS_PER_FILTER]
            yield from self.pages(contract.source_object, select=select, filter=ids_filter(contract, chunk))

    def deleted(self, contract: EntityContract, *, since: datetime) -> Iterator[tuple[str, datetime]]:
        return iter(())  # no delete feed: snapshots find deletions

    def stats(self) -> dict[str, int]:
        return self.client.stats()

    # -- OData -----------------------------------------------------------------------------
    def pages(self, entity: str, *, select: str | None = None, filter: str | None = None) -> Iterator[Page]:
        """Pages of ``entity`` across every company, following ``@odata.nextLink``."""
        params = dict(CROSS_COMPANY)
        if select:
            params["$select"] = select
        if filter:
            params["$filter"] = filter
        # The preference goes on every request: the next link carries the position, not the size.
        headers = {"Prefer": f"odata.maxpagesize={self.page_size}"}
        yield from follow_next_url(self.client, f"{DATA}/{entity}", params, "value", "@odata.nextLink",
                                   headers=headers)

    def find(self, entity: str, filter: str) -> list[dict[str, Any]]:
        """Every record of ``entity`` (any company) matching the OData ``filter``, e.g. a
        write-back looking up ``ExternalInvoiceId eq '...'`` before it creates again."""
        return [row for page in self.pages(entity, filter=filter) for row in page]

    def create(self, entity: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST a new record; the created record as the server answers it (generated keys
        included). Not re-sent after a failure that may have reached the server: ``find`` first."""
        return self.client.post_json(f"{DATA}/{entity}", json=dict(body), expected=(201,), idempotent=False) or {}

    def update(self, entity: str, key: Mapping[str, Any], body: Mapping[str, Any]) -> None:
        """PATCH the fields in ``body`` of the record with ``key`` (every key field, named);
        a repeat sets the same values, so it is retried like a read."""
        record = ",".join(f"{k}={v}" for k, v in key.items())
        self.client.request("PATCH", f"{DATA}/{entity}{key_predicate(key)}", json=dict(body), expected=(204,),
                            idempotent=True, record_id=record)

    def delete(self, entity: str, key: Mapping[str, Any]) -> None:
        """DELETE the record with ``key``."""
        record = ",".join(f"{k}={v}" for k, v in key.items())
        self.client.request("DELETE", f"{DATA}/{entity}{key_predicate(key)}", expected=(204,), idempotent=True,
                            record_id=record)

    def change_set(
        self, requests: Sequence[ChangeRequest], *, idempotent: bool = False, record_id: str | None = None
    ) -> list[ChangeAnswer]:
        """Send ``requests`` as one ``$batch`` change set: all applied, or none ("either all the
        requests are run successfully or, if any request fails, none of the requests are run",
        learn.microsoft.com/en-us/dynamics365/fin-ops-core/dev-itpro/data-entities/odata). The
        batch itself answers 200 whatever its change set did; a failed change set answers one
        response (OData 4.0 Part 1 section 11.7.4), raised here as ``ValidationError`` for a 4xx
        (nothing was applied: the request itself was refused) or ``ApiError`` otherwise.

        A change set with creates is not idempotent: only ``idempotent=True`` lets the client
        re-send it after a failure that may have reached the server.
        """
        content_type, body = _change_set_body(requests)
        response = self.client.request("POST", f"{DATA}/$batch", data=body, headers={"Content-Type": content_type},
                                       expected=(200,), idempotent=idempotent, record_id=record_id)
        answers = _http_answers(response.headers.get("Content-Type", ""), response.content)
        failed = next((answer for answer in answers if answer.status >= 400), None)
        if failed is not None:
            error = ValidationError if 400 <= failed.status < 500 and failed.status not in (408, 429) else ApiError
            raise error(self.platform, "POST", f"{self.base_url}{DATA}/$batch", failed.status,
                        _error_text(failed.body), record_id)
        if len(answers) != len(requests):
            raise ApiError(self.platform, "POST", f"{self.base_url}{DATA}/$batch", response.status_code,
                           f"the change set answered {len(answers)} of {len(requests)} requests", record_id)
        return answers
