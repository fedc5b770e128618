"""Assembles the sandbox: one store, one router carrying every platform, one server."""

from __future__ import annotations

from pathlib import Path

from ps_sandbox import control, faults, generate
from ps_sandbox.context import SandboxConfig, SandboxContext, TokenRegistry
from ps_sandbox.http import Router, SandboxHTTPServer
from ps_sandbox.platforms import d365, hubspot, kantata, netsuite, salesforce, workday
from ps_sandbox.store import SandboxStore

PLATFORM_MODULES = (salesforce, kantata, workday, netsuite, hubspot, d365)


def build_router(ctx: SandboxContext) -> Router:
    router = Router()
    faults.install(router, ctx)
    for platform in PLATFORM_MODULES:
        platform.register(router, ctx)
    control.register(router, ctx)
    return router


def open_sandbox(state: str | Path, config: SandboxConfig | None = None) -> SandboxContext:
    """Open (and on first use generate) the sandbox database at ``state``."""
    config = config or SandboxConfig()
    store = SandboxStore(state)
    if store.is_empty():
        generate.populate(store, seed=config.seed, scale=config.scale,
                          salesforce_packages=tuple(config.salesforce_packages), bad_rows=config.bad_rows,
                          psa_crm=config.psa_crm)
    return SandboxContext(store=store, config=config, tokens=TokenRegistry(config.token_ttl_seconds))


def start_server(ctx: SandboxContext, host: str = "127.0.0.1", port: int = 0) -> SandboxHTTPServer:
    """Start serving in a background thread; ``port=0`` picks a free port (see ``server_port``)."""
    server = SandboxHTTPServer((host, port), build_router(ctx))
    server.serve_in_thread()
    return server
