"""The last line of defence: a record that carries a deal's reference but is not the ledger's
target is found, kept apart (flagged in the platform, never deleted) and recorded.

Also: the lease fence is the sender registry's, not the Kantata sender's: any sender that
declares a create without an idempotency key is fenced the same way.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pytest

from ps_pipelines.lib.contracts.kantata import OPPORTUNITY_REFERENCE
from ps_pipelines.lib.http import ApiClient, StaticBearer
from ps_pipelines.lib.writeback import POSTED, PostSettings, Targets, run_activation, run_billing
from ps_pipelines.lib.writeback import senders as senders_module
from ps_pipelines.lib.writeback.outbox import OutboxRow
from ps_pipelines.lib.writeback.payloads import ACTIVATION_TABLE, BILLING_TABLE
from ps_pipelines.lib.writeback.reconcile import FLAGGED, sweep_duplicates
from ps_pipelines.lib.writeback.senders import Outcome, Sender
from tests.conftest import RunningSandbox, opportunity_of_workspaces
from tests.lib.writeback.conftest import (
    NO_BACKOFF,
    NsProject,
    attempts_of,
    billing_lines,
    invoice_id,
    ledger_row,
    workspaces_for,
    write_outbound,
)
from tests.lib.writeback.test_activation import won_deal

NOW = datetime.now(UTC)


def activate(sandbox: RunningSandbox, con: duckdb.DuckDBPyConnection, targets: Targets) -> tuple[str, str]:
    """Win and activate a deal; its opportunity id and the workspace the ledger posted."""
    request = won_deal(sandbox)
    write_outbound(con, ACTIVATION_TABLE, request)
    assert run_activation(con, targets, run_id="activate").posted == 4
    opportunity = request.at[0, "opportunity_id"]
    return opportunity, ledger_row(con, f"kantata:workspace:{opportunity}")["target_id"]


def plant_duplicate(targets: Targets, opportunity: str) -> str:
    """A second workspace for the deal, as a killed run's late create would have made it."""
    [kept] = workspaces_for(targets, opportunity)
    copy = {name: kept[name] for name in ("title", "currency", "start_date", "due_date")}
    reference = OPPORTUNITY_REFERENCE.for_opportunity(opportunity)
    return str(targets.kantata.create_workspace({**copy, "external_reference": reference})["id"])


def workspace(sandbox: RunningSandbox, workspace_id: str) -> dict[str, Any]:
    return sandbox.ctx.store.get("kantata", "workspaces", workspace_id)


def test_a_planted_duplicate_workspace_is_reported_with_both_ids_flagged_and_kept(
    sandbox: RunningSandbox, con: duckdb.DuckDBPyConnection, targets: Targets
) -> None:
    opportunity, kept = activate(sandbox, con, targets)
    title = workspace(sandbox, kept)["title"]
    planted = plant_duplicate(targets, opportunity)

    sweep = sweep_duplicates(con, targets, run_id="check-1", now=NOW)
    assert not sweep.passed
    [found] = sweep.duplicates
    assert (found.external_id, found.kept_id, found.duplicate_id, found.new) == (opportunity, kept, planted, True)
    assert found.resolution == FLAGGED and kept in sweep.describe() and planted in sweep.describe()

    # The policy: the ledger's workspace is untouched; the other is marked and archived, not deleted.
    assert (workspace(sandbox, kept)["title"], workspace(sandbox, kept)["archived"]) == (title, False)
    duplicate = workspace(sandbox, planted)
    assert duplicate["archived"] is True and opportunity_of_workspaces(sandbox.ctx.store)[planted] == opportunity
    assert opportunity in duplicate["description"]  # the mark names the deal, read from the reference
    assert duplicate["title"] == f"[DUPLICATE of workspace {kept}] {title}"
    assert con.execute("SELECT outbox_key, kept_id, duplicate_id, resolution, found_run_id "
                       "FROM ops.duplicate_records").fetchall() == [
        (f"kantata:workspace:{opportunity}", kept, planted, FLAGGED, "check-1")]

    # The next sweep knows it: nothing new, the check passes, the platform is not written again.
    before = targets.kantata.stats()["requests"]
    again = sweep_duplicates(con, targets, run_id="check-2", now=NOW)
    assert again.passed and [d.new for d in again.duplicates] == [False]
    assert workspace(sandbox, planted)["title"] == duplicate["title"]
    assert targets.kantata.stats()["requests"] - before == 1  # one page of workspaces read, no update


def test_a_duplicate_someone_already_logged_time_in_is_marked_but_not_archived(
    sandbox: RunningSandbox, con: duckdb.DuckDBPyConnection, targets: Targets
) -> None:
    opportunity, kept = activate(sandbox, con, targets)
    planted = plant_duplicate(targets, opportunity)
    entry = {**next(iter(sandbox.ctx.store.scan("kantata", "time_entries", limit=1))), "workspace_id": planted}
    sandbox.control("POST", "records/kantata/time_entries", json={"id": "99999001", "body": entry})

    [found] = sweep_duplicates(con, targets, run_id="check", now=NOW).duplicates
    assert found.resolution == FLAGGED and "not archived" in (found.detail or "")
    duplicate = workspace(sandbox, planted)
    assert duplicate["archived"] is False and duplicate["title"].startswith(f"[DUPLICATE of workspace {kept}] ")


def test_two_records_for_a_row_not_posted_yet_are_reported_not_resolved(
    sandbox: RunningSandbox, con: duckdb.DuckDBPyConnection, targets: Targets
) -> None:
    opportunity, kept = activate(sandbox, con, targets)
    planted = plant_duplicate(targets, opportunity)
    con.execute("UPDATE ops.outbox SET target_id = NULL, state = 'pending' WHERE outbox_key = ?",
                [f"kantata:workspace:{opportunity}"])
    sweep = sweep_duplicates(con, targets, run_id="check", now=NOW)
    assert not sweep.passed and sweep.duplicates == []
    assert sweep.unconfirmed == {f"kantata:workspace:{opportunity}": sorted([kept, planted], key=int)}
    assert workspace(sandbox, planted)["archived"] is False  # nothing to keep yet: nothing flagged


# -- the fence belongs to the registry ----------------------------------------------------------
class FakePlatform:
    """A platform whose invoices are made by a POST without idempotency key (like a Dynamics 365
    record): creates land in ``records``; ``find`` and ``find_all`` read them."""

    def __init__(self) -> None:
        self.records: dict[str, str] = {}  # external id -> record id
        self.creates = 0

    def post(self, targets: Targets, row: OutboxRow, body: dict[str, Any]) -> str:
        self.creates += 1
        self.records[row.external_id] = f"rec-{self.creates}"
        return self.records[row.external_id]

    def find(self, targets: Targets, row: OutboxRow, changed_since: datetime) -> str | None:
        return self.records.get(row.external_id)

    def find_all(self, targets: Targets, ids: Any, since: Any) -> dict[str, list[dict[str, Any]]]:
        return {key: [{"id": value}] for key, value in self.records.items() if key in ids}

    @staticmethod
    def flag(targets: Targets, record: dict[str, Any], kept: str) -> str:
        return "flagged"


class Crash(Exception):
    pass


def _crash_after(row: OutboxRow, outcome: Outcome) -> None:
    raise Crash(row.outbox_key)


def test_any_sender_that_creates_without_a_key_is_fenced_by_its_lease(
    con: duckdb.DuckDBPyConnection, targets: Targets, project: NsProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    platform = FakePlatform()
    monkeypatch.setitem(senders_module.SENDERS, ("netsuite", "invoice"), Sender(
        platform.post, create_without_key=True, find=platform.find, find_all=platform.find_all,
        flag_duplicate=platform.flag))
    write_outbound(con, BILLING_TABLE, billing_lines(project))
    key = f"netsuite:invoice:{invoice_id(project)}"
    with pytest.raises(Crash):  # the create landed; the run died before recording it
        run_billing(con, targets, run_id="r1", after_call=_crash_after)
    [(started_at, lease_until)] = con.execute("SELECT started_at, lease_until FROM ops.outbox_attempts").fetchall()
    assert lease_until - started_at == PostSettings().lease_for(targets.netsuite.client)

    waiting = run_billing(con, targets, run_id="r2", settings=NO_BACKOFF)
    assert (waiting.waiting, platform.creates) == (1, 1)

    def past_lease() -> datetime:
        return lease_until + timedelta(seconds=1)

    resumed = run_billing(con, targets, run_id="r3", settings=NO_BACKOFF, clock=past_lease)
    assert (resumed.posted, resumed.waiting, platform.creates) == (1, 0, 1)
    assert ledger_row(con, key)["state"] == POSTED
    assert [a[2] for a in attempts_of(con, key)] == ["abandoned", "adopted"]


def test_a_sender_that_creates_without_a_key_must_say_how_to_find_its_records() -> None:
    with pytest.raises(ValueError, match="find"):
        Sender(lambda targets, row, body: "1", create_without_key=True)


def test_the_production_lease_is_the_kantata_clients_budget_plus_the_margins() -> None:
    from ps_pipelines.resources import KantataResource

    client = KantataResource(base_url="https://api.mavenlink.com", token="t").client().client
    assert client.time_budget() == 7 * (5 + 60) + 6 * 30  # 7 sends of 65 s, 6 backoffs at their 30 s cap
    assert PostSettings().lease_for(client) == timedelta(seconds=755)
    # The create is not sent later than lease - landing grace - one send: then it lands in time.
    assert PostSettings().send_window(client) == timedelta(seconds=755 - 60 - 65)
    short = ApiClient("kantata", "http://127.0.0.1:9", StaticBearer("t"), connect_timeout=1, read_timeout=7,
                      max_retries=0)
    settings = PostSettings(lease_send_slack=timedelta(seconds=3), lease_landing_grace=timedelta(seconds=1))
    assert settings.lease_for(short) == timedelta(seconds=12)
