"""Errors raised by the HTTP client, and the redaction that keeps secrets out of them.

Every error names the platform, the request and (when known) the record, and carries the
platform's own error code/message parsed from its error body, so an operator can act on
it from the run log alone. Nothing here may ever echo a credential: URLs are redacted by
query-parameter name, and free text is scrubbed of ``name=value`` pairs and bearer tokens.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson

REDACTED = "***"
# Query/form names that may carry a credential (access_token, client_secret, api_key, ...).
_SECRET_NAME = re.compile(r"token|secret|password|passwd|key|assertion|signature|credential", re.I)
_SECRET_WORDS = r"[\w.-]*(?:token|secret|password|passwd|key|assertion|signature|credential)[\w.-]*"
# ``name=value`` (URLs, form bodies) and ``"name": "value"`` (echoed JSON). A bare ``name: value``
# is left alone: error codes such as ``INVALID_KEY_OR_REF: ...`` must survive.
_SECRET_ASSIGNMENT = re.compile(rf"(?i)\b({_SECRET_WORDS})=([^&\s\"',;]+)")
_SECRET_JSON = re.compile(rf'(?i)"({_SECRET_WORDS})"\s*:\s*"[^"]*"')
_AUTH_SCHEME = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")  # 8+: not "Basic realm"
_MAX_DETAIL = 500


def is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


def redact_url(url: str) -> str:
    """``url`` with the values of secret-looking query parameters (and any userinfo) masked."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    query = urlencode(
        [(k, REDACTED if is_secret_name(k) else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)],
        safe="*",
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_mapping(values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of form fields / headers with secret-looking entries masked (for logging)."""
    return {k: REDACTED if is_secret_name(k) or k.lower() == "authorization" else v for k, v in values.items()}


def scrub_text(text: str) -> str:
    """Mask ``secret_name=value``, ``"secret_name": "value"`` and ``Bearer``/``Basic`` credentials."""
    text = _AUTH_SCHEME.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    text = _SECRET_JSON.sub(lambda m: f'"{m.group(1)}": "{REDACTED}"', text)
    return _SECRET_ASSIGNMENT.sub(lambda m: f"{m.group(1)}={REDACTED}", text)


def _join(parts: list[str]) -> str | None:
    parts = [p for p in parts if p]
    return "; ".join(parts) if parts else None


def _coded(code: Any, message: Any, field: Any = None) -> str:
    text = ": ".join(str(p) for p in (code, message) if p not in (None, ""))
    if field:
        text += f" (field {', '.join(field) if isinstance(field, list) else field})"
    return text


def _salesforce(body: list) -> str | None:
    return _join([_coded(e.get("errorCode"), e.get("message"), e.get("fields")) for e in body if isinstance(e, dict)])


def _kantata(errors: list) -> str | None:
    return _join([_coded(e.get("type"), e.get("message"), e.get("field")) for e in errors if isinstance(e, dict)])


def _netsuite(body: dict) -> str | None:
    details = body.get("o:errorDetails") or []
    return _join([_coded(d.get("o:errorCode"), d.get("detail")) for d in details if isinstance(d, dict)]) or (
        _coded(body.get("status"), body.get("title")) or None
    )


def _odata(error: dict) -> str | None:
    # OData v4 JSON errors: {"error": {"code", "message", "innererror": {"message"}}}; Dynamics 365
    # puts the infolog (which field or record was refused) in the inner message.
    inner = error.get("innererror")
    return _join([_coded(error.get("code"), error.get("message")),
                  _coded(None, inner.get("message")) if isinstance(inner, dict) else ""])


def _workday_or_oauth(body: dict) -> str | None:
    # Workday REST: {"error": "...", "errors": [{"error": "...", "field"/"location": ...}]};
    # OAuth token endpoints: {"error": "invalid_client", "error_description": "..."}.
    nested = [
        _coded(None, e.get("error") or e.get("message"), e.get("field") or e.get("location"))
        for e in body.get("errors") or []
        if isinstance(e, dict)
    ]
    head = _coded(body.get("error"), body.get("error_description") or body.get("message"))
    return _join([head, *nested])


def parse_error_detail(body: bytes | str | None) -> str | None:
    """The platform's own error code and message from an error response body, if any.

    Understands Salesforce ``[{"errorCode","message","fields"}]``, Kantata ``{"errors":[{"type",
    "message","field"}]}``, Workday ``{"error","errors":[...]}``, NetSuite ``{"title","status",
    "o:errorDetails":[{"detail","o:errorCode"}]}``, OData ``{"error":{"code","message"}}`` and
    OAuth ``{"error","error_description"}``;
    anything else is returned as (truncated) text.
    """
    if not body:
        return None
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        text = body.decode(errors="replace") if isinstance(body, bytes) else body
        return scrub_text(text.strip()[:_MAX_DETAIL]) or None
    detail: str | None = None
    if isinstance(parsed, list):
        detail = _salesforce(parsed)
    elif isinstance(parsed, dict):
        if "o:errorDetails" in parsed or "title" in parsed:
            detail = _netsuite(parsed)
        elif isinstance(parsed.get("errors"), list) and "error" not in parsed:
            detail = _kantata(parsed["errors"])
        elif isinstance(parsed.get("error"), dict):
            detail = _odata(parsed["error"])
        else:
            detail = _workday_or_oauth(parsed)
    if detail is None:
        detail = orjson.dumps(parsed).decode()
    return scrub_text(detail[:_MAX_DETAIL])


def _request_text(method: str, url: str) -> str:
    """``METHOD /path?query`` of a (redacted) URL; the host is noise in a run log."""
    parts = urlsplit(url)
    query = parts.query if len(parts.query) <= 300 else parts.query[:300] + "..."
    return f"{method} {parts.path}{'?' + query if query else ''}"


class ApiError(Exception):
    """A request to a platform API failed; ``str()`` is safe to log (no credentials)."""

    def __init__(
        self,
        platform: str,
        method: str,
        url: str,
        status: int | None = None,
        detail: str | None = None,
        record_id: str | None = None,
    ) -> None:
        self.platform = platform
        self.method = method.upper()
        self.url = redact_url(url)
        self.status = status
        self.detail = scrub_text(detail) if detail else None
        self.record_id = record_id
        super().__init__(self._message())

    def _message(self) -> str:
        outcome = str(self.status) if self.status is not None else "failed"
        text = f"{self.platform} {_request_text(self.method, self.url)} -> {outcome}"
        if self.detail:
            text += f" {self.detail}"
        if self.record_id:
            text += f" (record {self.record_id})"
        return text


class AuthError(ApiError):
    """Credentials rejected (401 even after a token refresh, or the token endpoint refused)."""


class ValidationError(ApiError):
    """The platform rejected the request itself (4xx other than 401/408/429); never retried."""


class RetryExhaustedError(ApiError):
    """A transient failure (429, 5xx, connection error) outlasted the retry budget.

    ``in_doubt``: the last send may have been applied by the server and was not repeated (a
    request that is not idempotent, answered by a 5xx, a lost connection, a timeout or a
    garbled 2xx), so the record may exist, or may still be created by a server that is slow.
    """

    def __init__(
        self,
        *args: Any,
        attempts: int = 0,
        last_cause: BaseException | None = None,
        in_doubt: bool = False,
        **kw: Any,
    ) -> None:
        self.attempts = attempts
        self.last_cause = last_cause
        self.in_doubt = in_doubt
        super().__init__(*args, **kw)

    def _message(self) -> str:
        return f"{super()._message()} [gave up after {self.attempts} attempt(s)]"


class QuotaExhaustedError(ApiError):
    """The platform refused because a quota that does not free up within a run is spent (e.g.
    Salesforce's daily API request allocation); never retried, so a run stops at once instead
    of spending its retries (and the quota of every other integration) on certain refusals."""

    def _message(self) -> str:
        return f"{super()._message()} [quota exhausted: not retried]"


class MalformedResponseError(ApiError):
    """The response was not the JSON shape the endpoint promises (bad JSON, missing keys)."""


class NotSentError(ApiError):
    """The request was never sent: its send deadline (``send_deadline``) had passed.

    Safe to try again later: the server cannot have seen it.
    """
