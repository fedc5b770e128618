"""Operational alerts: a JSON message to a webhook, or its text for the log when none is set.

The payload carries a ``text`` field (what Slack, Teams and Mattermost incoming webhooks
display) next to structured fields for tools that parse them. Every string in an alert is
scrubbed of credentials before it leaves the process, and a webhook URL is never logged
beyond its host: incoming-webhook URLs carry their secret in the path or the query.
No Dagster imports.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

from ps_pipelines.lib.http.auth import NO_AUTH
from ps_pipelines.lib.http.client import ApiClient
from ps_pipelines.lib.http.errors import REDACTED, ApiError, RetryExhaustedError, scrub_text

DEFAULT_TIMEOUT_SECONDS = 10.0
DEFAULT_RETRIES = 2
BACKOFF_SECONDS = 0.5
MAX_RETRY_AFTER_SECONDS = 5.0


class AlertDeliveryError(Exception):
    """The webhook did not accept the alert; ``str()`` names the host only, never the full URL."""


@dataclass(frozen=True)
class Alert:
    """A short alert: a title, a few lines a person reads, and fields a tool reads."""

    title: str
    lines: Sequence[str] = ()
    fields: Mapping[str, Any] = field(default_factory=dict)

    def text(self) -> str:
        return scrub_text("\n".join([self.title, *self.lines]))

    def payload(self) -> dict[str, Any]:
        return {"text": self.text(), "title": scrub_text(self.title), **_scrubbed(dict(self.fields))}


def send_alert(
    alert: Alert,
    webhook_url: str = "",
    *,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    retries: int = DEFAULT_RETRIES,
    session: requests.Session | None = None,
    sleep: Callable[[float], Any] = time.sleep,
) -> str | None:
    """Post ``alert`` as JSON to ``webhook_url``; ``None`` once delivered.

    Without a URL nothing is sent and the alert's text is returned for the caller to log.
    The HTTP client's retry policy applies: connection errors, timeouts, 429 and 5xx are
    retried ``retries`` times with backoff (``Retry-After`` capped); any other answer fails
    at once (a wrong URL does not heal). Raises ``AlertDeliveryError``.
    """
    if not webhook_url:
        return alert.text()
    target = safe_url(webhook_url)
    client = ApiClient("alert webhook", webhook_url, NO_AUTH, connect_timeout=timeout_seconds,
                       read_timeout=timeout_seconds, max_retries=retries, backoff_base=BACKOFF_SECONDS,
                       backoff_max=MAX_RETRY_AFTER_SECONDS, session=session, sleep=sleep)
    try:
        # A repeated alert is harmless, a lost one is not: re-sent even if it may have arrived.
        client.request("POST", webhook_url, json=alert.payload(), expected=range(200, 300), idempotent=True,
                       shown_url=target)
    except ApiError as exc:
        raise AlertDeliveryError(_failure(target, exc)) from None
    finally:
        client.close()
    return None


def safe_url(url: str) -> str:
    """What of a webhook URL may be logged: scheme and host; path and query are secrets."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return f"{parts.scheme}://{host}/{REDACTED}" if parts.path.strip("/") or parts.query else f"{parts.scheme}://{host}"


def _failure(target: str, error: ApiError) -> str:
    """Why the alert was not delivered, naming the host only (exception texts repeat the URL)."""
    cause = getattr(error, "last_cause", None)
    outcome = f"HTTP {error.status}" if error.status else type(cause or error).__name__
    if isinstance(error, RetryExhaustedError):
        return f"alert webhook {target} failed after {error.attempts} attempt(s): {outcome}"
    return f"alert webhook {target} refused the alert: {outcome}"


def _scrubbed(value: Any) -> Any:
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, Mapping):
        return {key: _scrubbed(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrubbed(item) for item in value]
    return value
