"""Shared fixtures: a real sandbox over real HTTP on a free port, fresh for every test.

The sandbox data is generated once per session into a template file and copied for each
test, so every test starts from the same deterministic state without paying generation.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from ps_sandbox.app import open_sandbox, start_server
from ps_sandbox.context import SandboxConfig, SandboxContext

TEST_SEED = 7
TEST_SCALE = 0.1
# The same firm with Certinia PSA installed in its Salesforce org (the ``pse__`` package).
CERTINIA = SandboxConfig(seed=TEST_SEED, scale=TEST_SCALE, salesforce_packages=("certinia",))
# That firm selling in HubSpot what its Certinia org delivers (a HubSpot + Certinia estate): the
# delivered deals are HubSpot deals, and each Certinia project names its deal in CRM_Deal_Id__c.
CERTINIA_SOLD_IN_HUBSPOT = SandboxConfig(seed=TEST_SEED, scale=TEST_SCALE, salesforce_packages=("certinia",),
                                         psa_crm="hubspot")


def pytest_configure(config: pytest.Config) -> None:
    """Parse the dbt project before collection: the Dagster definitions read its manifest when
    they load, and parse only a missing one. It parses only when a model, macro or config
    changed, once across xdist workers."""
    from ps_pipelines.transform.project import prepare_manifest

    prepare_manifest()


@dataclass
class RunningSandbox:
    url: str
    ctx: SandboxContext
    state_path: Path

    def control(self, method: str, path: str, json: Any = None) -> Any:
        """Call the sandbox control API (``/_sandbox/...``) and return its JSON answer."""
        response = requests.request(method, f"{self.url}/_sandbox/{path.lstrip('/')}", json=json, timeout=30)
        response.raise_for_status()
        return response.json() if response.content else None


def _template(tmp_path_factory: pytest.TempPathFactory, name: str, config: SandboxConfig) -> Path:
    """A generated sandbox database, made once per session and copied for each test."""
    path = tmp_path_factory.mktemp(name) / "sandbox.sqlite"
    ctx = open_sandbox(path, config)
    ctx.store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


@pytest.fixture(scope="session")
def sandbox_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _template(tmp_path_factory, "sandbox-template", SandboxConfig(seed=TEST_SEED, scale=TEST_SCALE))


def _serve(template: Path, tmp_path: Path, config: SandboxConfig) -> Iterator[RunningSandbox]:
    state = tmp_path / "sandbox.sqlite"
    shutil.copyfile(template, state)
    ctx = open_sandbox(state, config)
    server = start_server(ctx, port=0)
    try:
        yield RunningSandbox(url=f"http://127.0.0.1:{server.server_port}", ctx=ctx, state_path=state)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def sandbox(sandbox_template: Path, tmp_path: Path) -> Iterator[RunningSandbox]:
    yield from _serve(sandbox_template, tmp_path, SandboxConfig(seed=TEST_SEED, scale=TEST_SCALE))


@pytest.fixture(scope="session")
def certinia_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _template(tmp_path_factory, "certinia-template", CERTINIA)


@pytest.fixture
def certinia_sandbox(certinia_template: Path, tmp_path: Path) -> Iterator[RunningSandbox]:
    """A fresh sandbox whose Salesforce org runs Certinia PSA."""
    yield from _serve(certinia_template, tmp_path, CERTINIA)


@pytest.fixture(scope="session")
def certinia_hubspot_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _template(tmp_path_factory, "certinia-hubspot-template", CERTINIA_SOLD_IN_HUBSPOT)


@pytest.fixture
def certinia_hubspot_sandbox(certinia_hubspot_template: Path, tmp_path: Path) -> Iterator[RunningSandbox]:
    """A fresh sandbox whose Certinia org delivers the deals the firm sold in HubSpot."""
    yield from _serve(certinia_hubspot_template, tmp_path, CERTINIA_SOLD_IN_HUBSPOT)


def opportunity_of_workspaces(store: Any) -> dict[str, str]:
    """Sandbox workspace id -> the Salesforce opportunity its external reference names (how Kantata
    links a workspace to an external object: developer.kantata.com, External References)."""
    return {
        str(reference["subject_id"]): reference["service_model_ref"]
        for reference in store.scan("kantata", "external_references", equals={"subject_type": "Workspace"})
        if (reference["service_name"], reference["service_model"]) == ("Salesforce", "Opportunity")
    }


def workspaces_of_opportunity(store: Any, opportunity_id: str) -> list[dict[str, Any]]:
    """The sandbox's workspaces whose external reference names ``opportunity_id``."""
    opportunities = opportunity_of_workspaces(store)
    return [
        workspace
        for workspace in store.scan("kantata", "workspaces", order="id")
        if opportunities.get(str(workspace["id"])) == opportunity_id
    ]
