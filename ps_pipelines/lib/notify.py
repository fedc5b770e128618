"""Operational alerts: a JSON message to a webhook, or its text for the log when none is set.

The payload carries a ``text`` field (what Slack, Teams and Mattermost incoming webhooks
display) next to structured fields for tools that parse them. Every string in an alert is
scrubbed of credentials before it leaves the process, and a webhook URL is never logged
beyond its host: incoming-webhook URLs carry their secret in the path or the query.
No Dagster imports.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

from ps_pipelines.lib.http.client import retry_after_seconds
from ps_pipelines.lib.http.errors import REDACTED, scrub_text

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 10.0
DEFAULT_RETRIES = 2
BACKOFF_SECONDS = 0.5
MAX_RETRY_AFTER_SECONDS = 5.0
_RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


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
    Connection errors, timeouts, 429 and 5xx are retried ``retries`` times with backoff; any
    other answer fails at once (a wrong URL does not heal). Raises ``AlertDeliveryError``.
    """
    if not webhook_url:
        return alert.text()
    http = session or requests.Session()
    try:
        _post_with_retries(http, webhook_url, alert.payload(), timeout_seconds, retries, sleep)
    finally:
        if session is None:
            http.close()
    return None


def safe_url(url: str) -> str:
    """What of a webhook URL may be logged: scheme and host; path and query are secrets."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return f"{parts.scheme}://{host}/{REDACTED}" if parts.path.strip("/") or parts.query else f"{parts.scheme}://{host}"


def _post_with_retries(
    http: requests.Session,
    url: str,
    payload: dict[str, Any],
    timeout_seconds: float,
    retries: int,
    sleep: Callable[[float], Any],
) -> None:
    target = safe_url(url)
    for attempt in range(retries + 1):
        wait = BACKOFF_SECONDS * 2**attempt
        try:
            response = http.post(url, json=payload, timeout=timeout_seconds)
        except (requests.ConnectionError, requests.Timeout) as exc:
            outcome = type(exc).__name__  # the exception text repeats the full URL: not logged
        else:
            if response.ok:
                return
            outcome = f"HTTP {response.status_code}"
            if response.status_code not in _RETRYABLE_STATUSES:
                raise AlertDeliveryError(f"alert webhook {target} refused the alert: {outcome}")
            hinted = retry_after_seconds(response.headers.get("Retry-After"))
            wait = min(hinted, MAX_RETRY_AFTER_SECONDS) if hinted is not None else wait
        if attempt == retries:
            raise AlertDeliveryError(f"alert webhook {target} failed after {retries + 1} attempt(s): {outcome}")
        logger.warning("alert webhook %s attempt %d failed (%s); retrying in %.1fs", target, attempt + 1, outcome, wait)
        sleep(wait)


def _scrubbed(value: Any) -> Any:
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, Mapping):
        return {key: _scrubbed(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrubbed(item) for item in value]
    return value
