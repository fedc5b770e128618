"""The fence and the duplicate sweep as Dagster shows them: the activation posting counts the
creates that wait for a lease, the dead-letter asset lists them with what they wait for, and
the `no_duplicate_records` check on the activation posting names a duplicate's ids and
resolves it. The assets and the check are invoked directly on the local resources (sandbox +
a warehouse in tmp), after postings to the ledger alone (as the event path makes them, the
warehouse's mirror behind); the library behaviour is tested in ``tests/lib/writeback``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from dagster import AssetCheckSeverity, build_asset_check_context, build_asset_context

from ps_pipelines.definitions import build_definitions
from ps_pipelines.defs.writeback.assets import (
    ACTIVATIONS_KEY,
    DUPLICATES_CHECK,
    PostingConfig,
    build_activation_posting,
    dead_letters,
)
from ps_pipelines.defs.writeback.jobs import posting_selection
from ps_pipelines.lib.contracts.kantata import OPPORTUNITY_REFERENCE
from ps_pipelines.lib.writeback import Targets, run_activation
from ps_pipelines.lib.writeback.outbox import OutboxRow
from ps_pipelines.lib.writeback.payloads import ACTIVATION_TABLE
from ps_pipelines.lib.writeback.senders import Outcome
from ps_pipelines.resources import build_resources
from tests.conftest import RunningSandbox
from tests.lib.writeback.conftest import make_targets, workspaces_for, write_outbound
from tests.lib.writeback.test_activation import won_deal

RESOURCE_KEYS = ("warehouse", "netsuite", "kantata", "salesforce")
# The default estate's posting and check (netsuite, kantata, salesforce).
erp_project_activations, no_duplicate_records = build_activation_posting()


@pytest.fixture
def resources(sandbox: RunningSandbox, tmp_path: Path) -> dict[str, Any]:
    built = build_resources("local", sandbox_url=sandbox.url, warehouse_path=str(tmp_path / "warehouse.duckdb"))
    return {key: built[key] for key in RESOURCE_KEYS}


@pytest.fixture
def targets(sandbox: RunningSandbox) -> Iterator[Targets]:
    built = make_targets(sandbox.url)
    yield built
    for client in (built.netsuite, built.kantata, built.salesforce):
        client.client.close()


def mirrored(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    return con.execute("SELECT outbox_key, state, attempts, updated_at FROM ops.outbox ORDER BY 1").fetchall()


def values(metadata: dict[str, Any]) -> dict[str, Any]:
    return {name: getattr(value, "value", getattr(value, "data", value)) for name, value in metadata.items()}


class Crash(Exception):
    pass


def _crash_after_workspace(row: OutboxRow, outcome: Outcome) -> None:
    if row.target_system == "kantata":
        raise Crash(row.outbox_key)


def test_a_create_waiting_for_its_lease_is_counted_by_the_posting_and_listed_as_a_dead_letter(
    sandbox: RunningSandbox, resources: dict[str, Any], targets: Targets
) -> None:
    request = won_deal(sandbox)
    store = resources["warehouse"].ledger()
    # Posted to the ledger alone, as the event path does: the warehouse's mirror knows nothing of it.
    with resources["warehouse"].warehouse().connect() as con, store.connect() as ledger:
        write_outbound(con, ACTIVATION_TABLE, request)
        with pytest.raises(Crash):  # the workspace was created; the run died before recording it
            run_activation(con, targets, run_id="killed-run", after_call=_crash_after_workspace, ledger=ledger)

    posting = erp_project_activations(build_asset_context(resources=resources), PostingConfig())
    with resources["warehouse"].warehouse().connect() as con, store.connect() as ledger:
        assert mirrored(con) == mirrored(ledger) != []  # the posting left dbt the ledger as it is
    metadata = values(posting.metadata)
    key = f"kantata:workspace:{request.at[0, 'opportunity_id']}"
    assert (metadata["waiting"], metadata["blocked"], metadata["failed_retryable"]) == (1, 1, 0)
    assert metadata["waiting_for"][key].startswith("waiting for in-flight attempt 1 of run killed-run until ")

    listed = values(dead_letters(build_asset_context(), warehouse=resources["warehouse"]).metadata)
    assert listed["by_state"]["waiting"] == 1 and listed["dagster/row_count"] == 1
    assert key in listed["preview"] and "waiting for in-flight attempt 1 of run killed-run" in listed["preview"]
    assert len(workspaces_for(targets, request.at[0, "opportunity_id"])) == 1


def test_the_duplicate_check_on_the_activation_posting_names_both_ids_and_resolves_them(
    sandbox: RunningSandbox, resources: dict[str, Any], targets: Targets
) -> None:
    graph = build_definitions("local").resolve_asset_graph()
    assert DUPLICATES_CHECK in {key.name for key in posting_selection(ACTIVATIONS_KEY).resolve_checks(graph)}

    request = won_deal(sandbox)
    opportunity = request.at[0, "opportunity_id"]
    with resources["warehouse"].warehouse().connect() as con, resources["warehouse"].ledger().connect() as ledger:
        write_outbound(con, ACTIVATION_TABLE, request)
        assert run_activation(con, targets, run_id="activate", ledger=ledger).posted == 4
    [kept] = workspaces_for(targets, opportunity)
    # A second workspace for the deal: what a killed run's late create made before the fence.
    reference = OPPORTUNITY_REFERENCE.for_opportunity(opportunity)
    planted = str(targets.kantata.create_workspace({"title": kept["title"], "external_reference": reference})["id"])

    check = no_duplicate_records(build_asset_check_context(resources=resources))
    assert not check.passed and check.severity == AssetCheckSeverity.WARN  # found, and resolved by policy
    [duplicate] = values(check.metadata)["duplicates"]
    assert (duplicate["kept_id"], duplicate["duplicate_id"], duplicate["resolution"]) == (kept["id"], planted,
                                                                                          "flagged")
    assert kept["id"] in (check.description or "") and planted in (check.description or "")
    flagged = sandbox.ctx.store.get("kantata", "workspaces", planted)
    assert flagged["archived"] is True and flagged["title"].startswith(f"[DUPLICATE of workspace {kept['id']}]")
    as_read = {name: value for name, value in kept.items() if not name.startswith("external_reference")}
    assert sandbox.ctx.store.get("kantata", "workspaces", kept["id"]) == as_read  # the ledger's one, untouched

    again = no_duplicate_records(build_asset_check_context(resources=resources))
    assert again.passed and values(again.metadata)["new_duplicates"] == 0
