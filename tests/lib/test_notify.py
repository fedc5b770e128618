"""Webhook alerts over real HTTP: a tiny local server stands in for the chat webhook."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from ps_pipelines.lib.notify import Alert, AlertDeliveryError, safe_url, send_alert

SECRET = "s3cr3t-t0ken-value"


@dataclass
class WebhookServer:
    """Records every POST; answers with the queued statuses, then 200."""

    url: str
    received: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    delay_seconds: float = 0.0


@pytest.fixture
def webhook() -> Iterator[WebhookServer]:
    state = WebhookServer(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            state.received.append({"path": self.path, "json": json.loads(body or b"null"),
                                   "content_type": self.headers.get("Content-Type")})
            time.sleep(state.delay_seconds)  # a slow webhook, for the timeout test
            status = state.statuses.pop(0) if state.statuses else 200
            try:
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
            except BrokenPipeError:  # the client gave up waiting (the timeout test)
                pass

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}/hooks/T0/B0/{SECRET}?token={SECRET}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def _alert() -> Alert:
    return Alert(title="Run failed: post_invoices", lines=["Step post: ERP said no: client_secret=abc123 rejected"],
                 fields={"run_id": "r-1", "steps": [{"error": "Authorization: Bearer abcdefghijklmnop"}]})


def test_an_alert_is_posted_as_json_with_text_and_fields(webhook: WebhookServer) -> None:
    assert send_alert(_alert(), webhook.url, sleep=lambda _: None) is None
    [request] = webhook.received
    assert request["content_type"] == "application/json"
    body = request["json"]
    assert body["title"] == "Run failed: post_invoices"
    assert body["text"].startswith("Run failed: post_invoices\nStep post: ERP said no")
    assert body["run_id"] == "r-1"


def test_secrets_in_an_alert_never_leave_the_process(webhook: WebhookServer) -> None:
    send_alert(_alert(), webhook.url, sleep=lambda _: None)
    sent = json.dumps(webhook.received[0]["json"])
    assert "abc123" not in sent and "abcdefghijklmnop" not in sent
    assert "client_secret=***" in sent


def test_without_a_url_nothing_is_sent_and_the_text_is_returned(webhook: WebhookServer) -> None:
    text = send_alert(_alert(), "")
    assert text == "Run failed: post_invoices\nStep post: ERP said no: client_secret=*** rejected"
    assert webhook.received == []


def test_transient_failures_are_retried_twice(webhook: WebhookServer) -> None:
    webhook.statuses = [503, 429]
    waits: list[float] = []
    assert send_alert(_alert(), webhook.url, sleep=waits.append) is None
    assert len(webhook.received) == 3 and len(waits) == 2


def test_a_webhook_that_stays_down_fails_without_showing_its_url(
    webhook: WebhookServer, caplog: pytest.LogCaptureFixture
) -> None:
    webhook.statuses = [500, 500, 500, 500]
    with caplog.at_level(logging.WARNING), pytest.raises(AlertDeliveryError) as failure:
        send_alert(_alert(), webhook.url, sleep=lambda _: None)
    assert len(webhook.received) == 3
    assert "HTTP 500" in str(failure.value)
    assert SECRET not in str(failure.value) and SECRET not in caplog.text
    assert "127.0.0.1" in str(failure.value)


def test_a_refused_alert_is_not_retried(webhook: WebhookServer) -> None:
    webhook.statuses = [404]
    with pytest.raises(AlertDeliveryError, match="refused"):
        send_alert(_alert(), webhook.url, sleep=lambda _: None)
    assert len(webhook.received) == 1


def test_a_slow_webhook_times_out_and_is_retried(webhook: WebhookServer) -> None:
    webhook.delay_seconds = 1.0
    with pytest.raises(AlertDeliveryError, match="Timeout") as failure:
        send_alert(_alert(), webhook.url, timeout_seconds=0.2, sleep=lambda _: None)
    assert len(webhook.received) == 3
    assert SECRET not in str(failure.value)


def test_an_unreachable_webhook_fails_cleanly(caplog: pytest.LogCaptureFixture) -> None:
    # requests repeats the URL's path and query in a connection error's text: neither is logged.
    with caplog.at_level(logging.WARNING), pytest.raises(AlertDeliveryError, match="ConnectionError") as failure:
        send_alert(_alert(), f"http://127.0.0.1:9/hooks/{SECRET}?key={SECRET}", sleep=lambda _: None)
    assert SECRET not in str(failure.value)
    assert "ConnectionError" in caplog.text and SECRET not in caplog.text


@pytest.mark.parametrize(("url", "logged"), [
    (f"https://hooks.example.com/services/T0/B0/{SECRET}", "https://hooks.example.com/***"),
    (f"https://user:{SECRET}@alerts.example.com/?token={SECRET}", "https://alerts.example.com/***"),
    ("https://alerts.example.com", "https://alerts.example.com"),
])
def test_only_the_host_of_a_webhook_url_is_logged(url: str, logged: str) -> None:
    assert safe_url(url) == logged
