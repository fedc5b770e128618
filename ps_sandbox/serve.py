"""Run the sandbox as a standalone server until Ctrl-C (behind ``ps-pipelines sandbox serve``)."""

from __future__ import annotations

import time
from pathlib import Path

from ps_sandbox.app import build_router, open_sandbox
from ps_sandbox.context import SandboxConfig
from ps_sandbox.control import PREFIX
from ps_sandbox.generate import GENERATION_KV_KEY, record_counts
from ps_sandbox.http import SandboxHTTPServer
from ps_sandbox.store import SandboxStore


def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    scale: float = 1.0,
    seed: int = 42,
    state: str | Path = ".ps_pipelines/sandbox.sqlite",
    salesforce_packages: tuple[str, ...] = (),
    psa_crm: str = "salesforce",
) -> None:
    """Open (generating on first use) the sandbox at ``state`` and serve it; blocks until Ctrl-C."""
    path = Path(state)
    fresh = not path.exists() or SandboxStore(path).is_empty()
    started = time.perf_counter()
    ctx = open_sandbox(path, SandboxConfig(seed=seed, scale=scale, salesforce_packages=salesforce_packages,
                                            psa_crm=psa_crm))
    if fresh:
        print(f"Generated sandbox data (seed {seed}, scale {scale}) in {time.perf_counter() - started:.1f}s "
              f"into {path}", flush=True)
    else:
        _describe_existing(ctx.store, path, seed, scale)
    for key, count in record_counts(ctx.store).items():
        print(f"  {key:<32} {count:>12,}")
    server = SandboxHTTPServer((host, port), build_router(ctx))
    base = f"http://{host}:{server.server_port}"
    print(f"Sandbox listening on {base}", flush=True)
    print(f"Control API: {base}{PREFIX}/ (health, stats, events/..., faults/..., clock)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("Stopping the sandbox.", flush=True)
    finally:
        server.server_close()


def _describe_existing(store: SandboxStore, path: Path, seed: int, scale: float) -> None:
    meta = store.kv_get(GENERATION_KV_KEY) or {}
    print(f"Reusing sandbox state {path} (seed {meta.get('seed')}, scale {meta.get('scale')})", flush=True)
    if meta and (meta.get("seed"), meta.get("scale")) != (seed, scale):
        # The state file wins: regenerating silently would throw away its changes.
        print(f"  note: asked for seed {seed}, scale {scale}; delete {path} to regenerate with those.", flush=True)
