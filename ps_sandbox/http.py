"""A small HTTP toolkit for the sandbox: request/response types, a router and the server.

Standard library only, so the sandbox starts anywhere the package is installed. Each
platform module registers its routes on a ``Router``; cross-cutting behaviour (faults,
rate and concurrency limits) wraps dispatch through ``Middleware`` callables.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)
    platform: str = ""
    raw_query: str = ""

    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else None

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)

    @property
    def bearer_token(self) -> str | None:
        value = self.header("authorization")
        return value[7:] if value.lower().startswith("bearer ") else None

    @property
    def basic_credentials(self) -> tuple[str, str] | None:
        """``(username, password)`` from an ``Authorization: Basic`` header, if well formed."""
        value = self.header("authorization")
        if not value.lower().startswith("basic "):
            return None
        try:
            decoded = base64.b64decode(value[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        username, colon, password = decoded.partition(":")
        return (username, password) if colon else None


@dataclass
class Response:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    # Set by fault injection: the server closes the socket without answering.
    drop_connection: bool = False

    def encode(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return orjson.dumps(self.body)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(status=status, body=body, headers={"Content-Type": "application/json", **(headers or {})})


Handler = Callable[[Request], Response]
Middleware = Callable[[Request, Handler], Response]
# Answers a request no route matched (404) or matched by path only (405), in a platform's own format.
Fallback = Callable[[Request, int], Response]


@dataclass
class Route:
    method: str
    pattern: re.Pattern[str]
    platform: str
    handler: Handler


class Router:
    """Maps ``METHOD /path/{name}`` patterns to handlers; ``{name}`` matches one segment."""

    def __init__(self) -> None:
        self.routes: list[Route] = []
        self.middleware: list[Middleware] = []
        # path prefix -> (platform, answer, through middleware) for requests no route serves
        self.fallbacks: dict[str, tuple[str | None, Fallback, bool]] = {}

    def fallback(self, prefix: str, answer: Fallback, platform: str | None = None,
                 through_middleware: bool = False) -> None:
        """Answer unmatched requests under ``prefix`` in the platform's own error format: ``answer``
        gets the status (404, or 405 when the path exists for another method); the longest
        prefix wins. ``through_middleware``: the platform authenticates (and the fault injector
        sees) such a request like any other before saying it does not exist."""
        self.fallbacks[prefix] = (platform, answer, through_middleware)

    def add(self, method: str, template: str, platform: str, handler: Handler) -> None:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template.rstrip("/"))
        self.routes.append(Route(method.upper(), re.compile(f"^{regex}/?$"), platform, handler))

    def route(self, method: str, template: str, platform: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.add(method, template, platform, handler)
            return handler

        return register

    def dispatch(self, request: Request) -> Response:
        path_matched = False
        for route in self.routes:
            match = route.pattern.match(request.path)
            if not match:
                continue
            path_matched = True
            if route.method != request.method:
                continue
            request.params = match.groupdict()
            request.platform = route.platform
            handler: Handler = route.handler
            for middleware in reversed(self.middleware):
                handler = _bind(middleware, handler)
            return handler(request)
        status = 405 if path_matched else 404
        prefixes = [prefix for prefix in self.fallbacks if request.path.startswith(prefix)]
        if prefixes:
            platform, answer, through_middleware = self.fallbacks[max(prefixes, key=len)]
            if platform is not None:
                request.platform = platform
            handler: Handler = functools.partial(_answer_with_status, answer, status)
            if through_middleware:
                for middleware in reversed(self.middleware):
                    handler = _bind(middleware, handler)
            return handler(request)
        return json_response({"error": "method not allowed" if path_matched else "not found",
                              "path": request.path}, status)


def _answer_with_status(answer: Fallback, status: int, request: Request) -> Response:
    return answer(request, status)


def _bind(middleware: Middleware, inner: Handler) -> Handler:
    return lambda request: middleware(request, inner)


class _RequestHandler(BaseHTTPRequestHandler):
    router: Router
    protocol_version = "HTTP/1.1"
    # Without this every keep-alive answer waits ~40 ms for the client's delayed ACK.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass  # request logs would drown the test output; faults are logged by the control API

    def _handle(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(
            method=self.command,
            path=parts.path,
            query={k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()},
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            raw_query=parts.query,
        )
        try:
            response = self.router.dispatch(request)
        except Exception as exc:  # a sandbox bug must answer 500, not hang the client
            response = json_response({"error": "sandbox internal error", "detail": repr(exc)}, 500)
        if response.drop_connection:
            self.close_connection = True
            self.connection.close()
            return
        payload = response.encode()
        try:
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            # The client left (timed out, or was killed) while a slow request was handled: the
            # write is committed all the same, as on a real platform; there is no one to answer.
            self.close_connection = True

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle


class SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], router: Router) -> None:
        handler = type("BoundHandler", (_RequestHandler,), {"router": router})
        super().__init__(address, handler)

    def serve_in_thread(self) -> threading.Thread:
        # A short poll interval keeps shutdown() quick (tests start and stop many servers).
        thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05},
                                  name="sandbox-http", daemon=True)
        thread.start()
        return thread
