"""A sandbox whose Salesforce org runs Certinia PSA (the ``pse__`` managed package)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from ps_sandbox.app import open_sandbox, start_server
from ps_sandbox.context import SandboxConfig
from tests.conftest import TEST_SCALE, TEST_SEED, RunningSandbox

CERTINIA = SandboxConfig(seed=TEST_SEED, scale=TEST_SCALE, salesforce_packages=("certinia",))


@pytest.fixture(scope="session")
def certinia_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("certinia-template") / "sandbox.sqlite"
    ctx = open_sandbox(path, CERTINIA)
    ctx.store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


@pytest.fixture
def certinia_sandbox(certinia_template: Path, tmp_path: Path) -> Iterator[RunningSandbox]:
    state = tmp_path / "sandbox.sqlite"
    shutil.copyfile(certinia_template, state)
    ctx = open_sandbox(state, CERTINIA)
    server = start_server(ctx, port=0)
    try:
        yield RunningSandbox(url=f"http://127.0.0.1:{server.server_port}", ctx=ctx, state_path=state)
    finally:
        server.shutdown()
        server.server_close()
