"""Authentication strategies shared by every platform client.

A strategy puts credentials on a request (``apply``) and, for OAuth2, fetches its token
lazily on first use and again on ``refresh()`` after a 401. ``apply`` returns a token
*generation*; passing it back to ``refresh`` lets many threads that all saw a 401 for the
same stale token trigger exactly one token fetch between them.

Token requests go through the owning ``ApiClient`` (bound by the client itself), so they
get the same timeouts, retries, TLS settings and secret-free errors as data requests.
"""

from __future__ import annotations

import base64
import threading
from typing import TYPE_CHECKING, Any

import requests

from ps_pipelines.lib.http.errors import AuthError, MalformedResponseError, ValidationError

if TYPE_CHECKING:
    from ps_pipelines.lib.http.client import ApiClient


def _basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


class _FixedCredential:
    """A credential that never changes: the same ``Authorization`` header (or none) on every
    request, nothing to refresh, so a 401 is final."""

    refreshable = False

    def __init__(self, header: str | None) -> None:
        self._header = header

    def apply(self, headers: dict[str, str]) -> int:
        if self._header is not None:
            headers["Authorization"] = self._header
        return 0

    def refresh(self, generation: int | None = None) -> None:
        return None


class NoAuth(_FixedCredential):
    """No credentials: token endpoints and public resources."""

    def __init__(self) -> None:
        super().__init__(None)


NO_AUTH = NoAuth()


class StaticBearer(_FixedCredential):
    """A long-lived API token (Kantata personal/OAuth token)."""

    def __init__(self, token: str) -> None:
        super().__init__(f"Bearer {token}")

    def __repr__(self) -> str:
        return "StaticBearer(***)"


class BasicAuth(_FixedCredential):
    """HTTP basic credentials (Workday RaaS integration system user)."""

    def __init__(self, username: str, password: str) -> None:
        super().__init__(_basic(username, password))
        self.username = username

    def __repr__(self) -> str:
        return f"BasicAuth({self.username!r}, ***)"


class _OAuth2Token:
    """Lazily fetched, thread-safe bearer token; subclasses say how to ask for one."""

    refreshable = True

    def __init__(self, token_url: str, session: requests.Session | None = None) -> None:
        self.token_url = token_url
        self._session = session
        self._client: ApiClient | None = None
        self._lock = threading.Lock()
        self._token: str | None = None
        self._generation = 0
        self.token_response: dict[str, Any] = {}

    def bind(self, client: ApiClient) -> None:
        """Route token requests through ``client`` (retries, timeouts, TLS, redaction)."""
        self._client = client

    def _token_request(self) -> tuple[dict[str, str], dict[str, str]]:
        """(form fields, extra headers) of the token request."""
        raise NotImplementedError

    def apply(self, headers: dict[str, str]) -> int:
        with self._lock:
            if self._token is None:
                self._fetch_locked()
            headers["Authorization"] = f"Bearer {self._token}"
            return self._generation

    def refresh(self, generation: int | None = None) -> None:
        with self._lock:
            # Another thread already replaced the token that failed: use the new one.
            if generation is not None and generation != self._generation and self._token is not None:
                return
            self._fetch_locked()

    def ensure(self) -> None:
        """Fetch a token now if none is held (e.g. to learn Salesforce's ``instance_url``)."""
        self.apply({})

    def _fetch_locked(self) -> None:
        form, headers = self._token_request()
        body = self._post(form, headers)
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise MalformedResponseError(self._platform(), "POST", self.token_url, 200, "no access_token in answer")
        self._token = token
        self._generation += 1
        self._rotate(body)
        # Keep everything but the secrets (instance_url, token_type, expires_in, ...).
        self.token_response = {k: v for k, v in body.items() if "token" not in k or k == "token_type"}

    def _rotate(self, body: dict[str, Any]) -> None:
        """Hook for grants whose server may rotate a long-lived credential."""

    def _platform(self) -> str:
        return self._client.platform if self._client else "oauth2"

    def _post(self, form: dict[str, str], headers: dict[str, str]) -> dict[str, Any]:
        from ps_pipelines.lib.http.client import ApiClient

        client = self._client or ApiClient("oauth2", self.token_url, NO_AUTH, session=self._session)
        try:
            body = client.post_json(
                self.token_url,
                data=form,
                headers=headers,
                auth=NO_AUTH,
                idempotent=True,  # a grant only issues a token: asking twice is harmless
                required_keys=("access_token",),
            )
        except ValidationError as exc:
            # A refused grant is an authentication failure, whatever 4xx the server chose.
            raise AuthError(exc.platform, exc.method, exc.url, exc.status, exc.detail) from None
        if not isinstance(body, dict):
            raise MalformedResponseError(client.platform, "POST", self.token_url, 200, "token answer is not an object")
        return body


class OAuth2ClientCredentials(_OAuth2Token):
    """OAuth2 client-credentials grant, client id/secret in the form (Salesforce, Microsoft Entra ID).

    Salesforce answers with the ``instance_url`` that data requests must go to. Entra ID (Dynamics
    365) also needs ``scope``: the resource's URL with ``/.default``.
    """

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        session: requests.Session | None = None,
        *,
        scope: str | None = None,
    ) -> None:
        super().__init__(token_url, session)
        self.client_id = client_id
        self.scope = scope
        self._client_secret = client_secret

    def _token_request(self) -> tuple[dict[str, str], dict[str, str]]:
        form = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self._client_secret,
        }
        if self.scope:
            form["scope"] = self.scope
        return form, {}

    @property
    def instance_url(self) -> str | None:
        return self.token_response.get("instance_url")

    def __repr__(self) -> str:
        return f"OAuth2ClientCredentials({self.token_url!r}, {self.client_id!r}, ***)"


class OAuth2RefreshToken(_OAuth2Token):
    """OAuth2 refresh-token grant with the client authenticated by HTTP basic (Workday)."""

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        session: requests.Session | None = None,
    ) -> None:
        super().__init__(token_url, session)
        self.client_id = client_id
        self._client_header = _basic(client_id, client_secret)
        self._refresh_token = refresh_token

    def _token_request(self) -> tuple[dict[str, str], dict[str, str]]:
        form = {"grant_type": "refresh_token", "refresh_token": self._refresh_token}
        return form, {"Authorization": self._client_header}

    def _rotate(self, body: dict[str, Any]) -> None:
        # Tenants with refresh-token rotation answer a new one; the old one stops working.
        if isinstance(body.get("refresh_token"), str) and body["refresh_token"]:
            self._refresh_token = body["refresh_token"]

    def __repr__(self) -> str:
        return f"OAuth2RefreshToken({self.token_url!r}, {self.client_id!r}, ***)"
