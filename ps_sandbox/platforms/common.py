"""What the platform emulations share: error answers, OAuth client and bearer checks, token
answers, route registration and query-string timestamps.

Each platform keeps its own wire shapes (error bodies, challenges, grants); only the rules that
are the same everywhere live here, so a fix to one (say, constant-time secret comparison)
reaches all four platforms at once.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from functools import wraps
from typing import TYPE_CHECKING, Any

from ps_sandbox.http import Handler, Request, Response, Router, json_response
from ps_sandbox.querylang import timestamp_or_none

if TYPE_CHECKING:
    from ps_sandbox.context import TokenRegistry

RouteSpec = tuple[str, str, Handler]  # (method, path template, handler)


class ApiError(Exception):
    """An error answer in the platform's own shape, raised from anywhere inside a handler."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.response = json_response(body, status, headers)


def answers_api_errors(handler: Handler) -> Handler:
    """Turn an ``ApiError`` raised by ``handler`` into its response."""

    @wraps(handler)
    def guarded(request: Request) -> Response:
        try:
            return handler(request)
        except ApiError as error:
            return error.response

    return guarded


def add_routes(router: Router, platform: str, routes: Iterable[RouteSpec], guard: Callable[[Handler], Handler],
               prefix: str = "") -> None:
    """Register ``routes`` (paths under ``prefix``), each behind the platform's ``guard``."""
    for method, path, handler in routes:
        router.add(method, prefix + path, platform, guard(handler))


def base_url(request: Request) -> str:
    """The sandbox's own address as the client reached it, for links in answers."""
    return f"http://{request.header('host', 'localhost')}"


def same_secret(given: str | None, expected: str | None) -> bool:
    # Constant-time comparison so response timing does not leak how much of a secret matched.
    if given is None or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def client_matches(client: tuple[str, str] | None, creds: Mapping[str, str]) -> bool:
    """Whether ``(client_id, client_secret)`` are the ones in ``creds``."""
    return (
        client is not None
        and same_secret(client[0], creds.get("client_id"))
        and same_secret(client[1], creds.get("client_secret"))
    )


def client_authenticated(request: Request, form: Mapping[str, str], creds: Mapping[str, str]) -> bool:
    """OAuth client authentication against ``creds``' ``client_id``/``client_secret``.

    Accepts HTTP Basic (client_secret_basic) or form fields (client_secret_post); the form
    wins when a client sends both.
    """
    client = request.basic_credentials
    if "client_id" in form:
        client = form["client_id"], form.get("client_secret", "")
    return client_matches(client, creds)


def bearer_accepted(request: Request, tokens: TokenRegistry, platform: str,
                    personal_token: str | None = None) -> bool:
    """Whether the request's bearer token is a live one the platform's token endpoint issued
    (or the platform's configured personal access token, where it has one)."""
    token = request.bearer_token
    return same_secret(token, personal_token) or tokens.is_valid(platform, token)


def token_answer(tokens: TokenRegistry, platform: str, **extra: Any) -> Response:
    """An OAuth 2.0 token answer (RFC 6749 section 5.1) with a freshly issued access token."""
    return json_response({"access_token": tokens.issue(platform), "token_type": "Bearer", **extra})


# A "+" in an unencoded query string arrives as a space; put it back when it is a UTC offset.
_MANGLED_OFFSET = re.compile(r" (\d{2}:?\d{2})$")


def parse_timestamp(raw: str) -> datetime:
    """A query parameter's ISO 8601 date or date-time as an aware UTC datetime (naive input is
    taken as UTC). Raises ``ValueError`` for anything else."""
    moment = timestamp_or_none(_MANGLED_OFFSET.sub(r"+\1", raw.strip()))
    if moment is None:
        raise ValueError(f"not an ISO 8601 date-time: {raw!r}")
    return moment
