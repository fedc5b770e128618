"""What the platform emulations, the control API and the server share: configuration,
credentials, issued tokens and the store. Platform modules import this, never ``app``, so
``app`` can import every platform without an import cycle."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field

from ps_sandbox import netsuite_account
from ps_sandbox.store import SandboxStore

# Credentials the sandbox accepts by default. They are sandbox-only values, published on
# purpose so the embedded defaults work out of the box; real tenants use EnvVar secrets.
DEFAULT_CREDENTIALS: dict[str, dict[str, str]] = {
    "salesforce": {"client_id": "sandbox-sf-client", "client_secret": "sandbox-sf-secret"},
    "kantata": {
        "token": "sandbox-kantata-token",
        "client_id": "sandbox-kantata-client",
        "client_secret": "sandbox-kantata-secret",
    },
    "workday": {
        "tenant": "psfirm",
        "client_id": "sandbox-wd-client",
        "client_secret": "sandbox-wd-secret",
        "refresh_token": "sandbox-wd-refresh",
        "username": "isu_raas",
        "password": "sandbox-wd-password",
        "report_owner": "isu_raas",
    },
    # NetSuite logs in by OAuth 2.0 M2M (a JWT signed with a certificate's private key) or TBA;
    # both sandbox-only key sets live in ``netsuite_account``.
    "netsuite": netsuite_account.M2M_CREDENTIALS,
    "netsuite_tba": netsuite_account.TBA_CREDENTIALS,
    # A private app's access token (HubSpot private-app tokens start "pat-<region>-").
    "hubspot": {"token": "pat-na1-sandbox-hubspot-token"},
    # An app registration in the firm's Microsoft Entra tenant (client credentials), and the
    # integration user's default company (legal entity) in Finance and Operations.
    "d365": {
        "tenant": "8f3c2d1e-5b7a-4c9e-9d21-3a6b0e7f4c55",
        "tenant_domain": "psfirm.onmicrosoft.com",
        "client_id": "0b9d4e2a-7c61-4f3b-8e5d-2a1c6f9b7d40",
        "client_secret": "sandbox-d365-secret",
        "default_company": "usmf",
    },
}


@dataclass
class SandboxConfig:
    seed: int = 42
    scale: float = 1.0
    token_ttl_seconds: int = 3600
    salesforce_daily_api_limit: int = 5_000_000
    # Managed packages installed in the Salesforce org: ("certinia",) adds Certinia PSA's pse__
    # objects (the firm runs Certinia as its PSA) to the org and to the generated data.
    salesforce_packages: tuple[str, ...] = ()
    # The CRM whose won deals the PSA's projects deliver (generate.PSA_CRMS): "salesforce", the
    # org's Opportunities; "hubspot", the firm sells in HubSpot, so its delivered deals and their
    # companies are in the HubSpot portal too and each Certinia project names its HubSpot deal.
    psa_crm: str = "salesforce"
    # The deliberately bad rows that give the quarantine work (ps_sandbox.generate); off, the
    # same data without them, e.g. to compare two estates' figures on clean records.
    bad_rows: bool = True
    netsuite_concurrency_limit: int = 5
    # Per access token; Kantata publishes no figure, so this is a configurable default (0 = off).
    kantata_requests_per_minute: int = 1200
    # Per tenant; Workday publishes its throttling limits only behind the customer login (0 = off).
    workday_requests_per_minute: int = 600
    # HubSpot private apps, Professional/Enterprise: 190 per 10 seconds; search: 5 per second
    # (ps_sandbox.platforms.hubspot cites both). 0 = off.
    hubspot_requests_per_10_seconds: int = 190
    hubspot_search_requests_per_second: int = 5
    # Dynamics 365 F&O user-based service protection limits, per user per web server: 6000
    # requests per 5-minute sliding window, 52 concurrent requests (ps_sandbox.platforms.d365
    # cites them). 0 = off.
    d365_requests_per_5_minutes: int = 6000
    d365_concurrency_limit: int = 52
    # Entra ID access tokens live 60-90 minutes (3599 s is the usual expires_in); tests shorten it.
    d365_token_ttl_seconds: int = 3599
    credentials: dict[str, dict[str, str]] = field(default_factory=lambda: DEFAULT_CREDENTIALS)


class TokenRegistry:
    """Bearer tokens issued by the sandbox's token endpoints, per platform, with expiry."""

    def __init__(self, ttl_seconds: int) -> None:
        self.ttl_seconds = ttl_seconds
        self._tokens: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def issue(self, platform: str, ttl_seconds: float | None = None) -> str:
        """A new token for ``platform``, live for ``ttl_seconds`` (default: the registry's TTL)."""
        token = f"{platform[:2]}-{secrets.token_urlsafe(24)}"
        ttl = self.ttl_seconds if ttl_seconds is None else ttl_seconds
        with self._lock:
            self._tokens[token] = (platform, time.monotonic() + ttl)
        return token

    def is_valid(self, platform: str, token: str | None) -> bool:
        if token is None:
            return False
        with self._lock:
            entry = self._tokens.get(token)
        return entry is not None and entry[0] == platform and entry[1] > time.monotonic()

    def expire_all(self, platform: str | None = None) -> int:
        with self._lock:
            doomed = [t for t, (p, _) in self._tokens.items() if platform in (None, p)]
            for token in doomed:
                del self._tokens[token]
        return len(doomed)


@dataclass
class SandboxContext:
    """What every platform module and the control API share."""

    store: SandboxStore
    config: SandboxConfig
    tokens: TokenRegistry
