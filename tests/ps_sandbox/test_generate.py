"""The sandbox data generator: determinism, scaling, contracts, cross-system integrity, drift."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter, defaultdict
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from ps_pipelines.lib.contracts import ALL_CONTRACTS
from ps_pipelines.lib.contracts.base import flatten_record
from ps_pipelines.lib.contracts.kantata import NESTED, Nested, approval_status, approved_at
from ps_pipelines.lib.contracts.validate import validate_records
from ps_pipelines.lib.sources.kantata import fold_related
from ps_sandbox import generate
from ps_sandbox.generate import AS_OF, STAGE_PROBABILITY, bad_row_count, populate, time_entry_count
from ps_sandbox.store import SandboxStore, from_iso

SEED, SCALE = 7, 0.1

# Fields the data model adds beyond the contracts' columns (real API fields the raw layer
# does not type): Kantata's status colour and Workday's reference ids.
_SF_AUDIT = {"createdbyid", "lastmodifiedbyid"}  # standard fields on every object no contract reads
EXTRA_COLUMNS = {
    "salesforce__accounts": _SF_AUDIT,
    "salesforce__contacts": {*_SF_AUDIT, "lastmodifieddate"},
    "salesforce__opportunities": {*_SF_AUDIT, "lastmodifieddate"},
    "salesforce__contracts": {*_SF_AUDIT, "lastmodifieddate"},
    "kantata__projects": {"status_color"},
    "workday__workers": {"jobprofile_id", "location_id"},
    # NetSuite's transactionline has more columns than the contract reads.
    "netsuite__invoice_lines": {"entity", "subsidiary", "mainline", "taxline"},
}


def _generate(path: Path, seed: int = SEED, scale: float = SCALE) -> tuple[SandboxStore, dict[str, int]]:
    store = SandboxStore(path)
    return store, populate(store, seed=seed, scale=scale)


def _dump(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT platform, object, id, updated_at, deleted, body FROM records ORDER BY platform, object, id"
        ).fetchall()


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[SandboxStore, dict[str, int]]:
    return _generate(tmp_path_factory.mktemp("generated") / "sandbox.sqlite")


@pytest.fixture(scope="module")
def data(generated) -> dict[tuple[str, str], list[dict]]:
    store, counts = generated
    objects = [key.split(".", 1) for key in counts]
    return {(platform, obj): store.scan(platform, obj, order="id") for platform, obj in objects}


def _by_id(records: list[dict], key: str = "id") -> dict[str, dict]:
    return {record[key]: record for record in records}


def test_same_seed_gives_byte_identical_records(generated, tmp_path: Path) -> None:
    store, _ = generated
    _generate(tmp_path / "again.sqlite")
    assert _dump(tmp_path / "again.sqlite") == _dump(store.path)


def test_different_seed_gives_different_records(generated, tmp_path: Path) -> None:
    store, _ = generated
    other, _ = _generate(tmp_path / "other.sqlite", seed=SEED + 1)
    names = {a["Name"] for a in store.scan("salesforce", "Account")}
    other_names = {a["Name"] for a in other.scan("salesforce", "Account")}
    assert names != other_names
    assert _dump(tmp_path / "other.sqlite") != _dump(store.path)


def test_time_entries_scale_linearly(generated, tmp_path: Path) -> None:
    _, counts = generated
    _, tripled = _generate(tmp_path / "tripled.sqlite", scale=3 * SCALE)
    assert counts["kantata.time_entries"] == time_entry_count(SCALE) == 1_000
    assert tripled["kantata.time_entries"] == 3 * counts["kantata.time_entries"]
    assert tripled["kantata.expenses"] == round(0.05 * tripled["kantata.time_entries"])
    assert tripled["salesforce.Account"] > counts["salesforce.Account"]
    assert time_entry_count(200) >= 2_000_000


def test_returned_counts_match_the_store(generated) -> None:
    store, counts = generated
    assert counts == generate.record_counts(store)
    assert store.kv_get(generate.GENERATION_KV_KEY)["counts"] == counts


def _fold(records: list[dict], nests: tuple[Nested, ...], data) -> list[dict]:
    """``records`` with their related objects folded in, as the Kantata connector's ``include=`` reads
    give them (``contracts.kantata.NESTED``)."""
    records = [dict(record) for record in records]
    for nest in nests:
        related_map = {r["id"]: r for r in data[("kantata", nest.collection)]}
        if nest.collection == "external_references":  # found by subject, answered as ids on include
            for record in records:
                record["external_reference_ids"] = [r["id"] for r in related_map.values()
                                                    if r["subject_id"] == record["id"]]
        for record in records:
            related = fold_related(record, related_map, nest)
            if related is None:
                continue
            if nest.many:
                related = [flatten_record({**item, **{sub.name: fold_related(item, {r["id"]: r for r in data[
                    ("kantata", sub.collection)]}, sub) for sub in nest.then}}) for item in related]
            record[nest.name] = related
    return records


def _contract_records(contract, data) -> list[dict]:
    records = data[(contract.platform, contract.source_object)]
    if contract.key == "kantata__milestones":
        records = [r for r in records if r["story_type"] == "milestone"]
    if contract.key == "netsuite__invoice_lines":  # item lines, not the invoices' main lines
        records = [r for r in records if r["mainline"] == "F"]
    if contract.platform == "kantata":
        records = _fold(records, NESTED.get(contract.entity, ()), data)
    return records


def _opportunity_of(data) -> dict[str, str]:
    """Workspace id -> its Salesforce opportunity id (the workspace's external reference)."""
    return {r["subject_id"]: r["service_model_ref"] for r in data[("kantata", "external_references")]
            if (r["subject_type"], r["service_name"], r["service_model"]) == ("Workspace", "Salesforce", "Opportunity")}


def _approval(entry: dict, data, collection: str = "timesheet_submissions") -> tuple[str, str | None]:
    """(approval status, approved at) of a time entry or expense, from its submission."""
    submissions = data.setdefault(("_by_id", collection), _by_id(data[("kantata", collection)]))
    folded = {**entry, "recent_submission": submissions.get(entry.get("recent_submission_id"))}
    return approval_status(folded), approved_at(folded)


def _card_rates(data) -> dict[str, dict[str, int]]:
    """Rate card id -> role name -> cents per hour, through its (one) version's rate card roles."""
    roles = {r["id"]: r["name"] for r in data[("kantata", "roles")]}
    versions = _by_id(data[("kantata", "rate_card_versions")])
    rates: dict[str, dict[str, int]] = defaultdict(dict)
    for rate in data[("kantata", "rate_card_roles")]:
        rates[versions[rate["rate_card_version_id"]]["rate_card_id"]][roles[rate["role_id"]]] = rate["rate"]
    return rates


@pytest.mark.parametrize("contract", ALL_CONTRACTS, ids=lambda c: c.key)
def test_records_carry_the_contract_fields_and_validate(contract, data) -> None:
    records = _contract_records(contract, data)
    assert records, f"no records generated for {contract.key}"
    batch = validate_records(contract, records)
    assert batch.unexpected_columns <= EXTRA_COLUMNS.get(contract.key, set())
    # SuiteQL omits empty columns, every other API answers them as null.
    required = [n for n, col in contract.schema.columns.items() if col.required or contract.platform != "netsuite"]
    nests = NESTED.get(contract.entity, ()) if contract.platform == "kantata" else ()
    for record in records:
        # A related object folded in is absent when there is none (a draft entry has no submission).
        absent = tuple(f"{nest.name}_" for nest in nests if nest.name not in record)
        assert {name for name in required if not name.startswith(absent or ("\0",))} <= set(
            flatten_record(record)), record
    # Only the deliberate bad rows are rejected, each for its one planted rule.
    rejected_rules = Counter(rule.split(" (value=")[0] for reject in batch.rejects for rule in reject.rules)
    expected = {
        "kantata__time_entries": Counter({"time_in_minutes: greater_than_or_equal_to(0)": bad_row_count(1_000)}),
        "salesforce__contacts": Counter({"email: str_matches('^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$')":
                                         bad_row_count(len(records))}),
    }
    assert rejected_rules == expected.get(contract.key, Counter())


def test_change_field_equals_store_updated_at(generated) -> None:
    store, counts = generated
    checked = 0
    for key in counts:
        platform, obj = key.split(".", 1)
        for row_id, updated_at, body in store.conn.execute(
                "SELECT id, updated_at, body FROM records WHERE platform = ? AND object = ?", (platform, obj)):
            record = json.loads(body)
            for name in generate.change_fields(platform, obj, record):
                assert datetime.fromisoformat(record[name]) == from_iso(updated_at), (key, row_id, name)
                checked += 1
            assert from_iso(updated_at) <= AS_OF
    # No change field in the body: Workday workers, NetSuite lines, and the Kantata objects that
    # document no updated_at (users, roles, rate card set versions and roles).
    unstamped = counts["workday.workers"] + counts["netsuite.transactionline"] + sum(
        counts[f"kantata.{obj}"] for obj in ("users", "roles", "rate_card_set_versions", "rate_card_roles"))
    assert checked >= sum(counts.values()) - unstamped


def test_salesforce_funnel_is_consistent(data) -> None:
    opportunities = data[("salesforce", "Opportunity")]
    contracts = _by_id(data[("salesforce", "Contract")], "Id")
    accounts = _by_id(data[("salesforce", "Account")], "Id")
    for opp in opportunities:
        assert accounts[opp["AccountId"]]["CreatedDate"] < opp["CreatedDate"]
        assert opp["Probability"] == STAGE_PROBABILITY[opp["StageName"]]
        assert opp["IsWon"] == (opp["StageName"] == "Closed Won")
        assert opp["IsClosed"] == opp["StageName"].startswith("Closed")
        if opp["IsWon"]:
            contract = contracts[opp["ContractId"]]
            assert contract["Status"] == "Activated"
            assert contract["Opportunity__c"] == opp["Id"]
            assert contract["Contract_Value__c"] == opp["Amount"]
            assert contract["CurrencyIsoCode"] == accounts[opp["AccountId"]]["CurrencyIsoCode"]
        else:
            assert opp["ContractId"] is None
    assert len(contracts) == sum(o["IsWon"] for o in opportunities)
    subsidiaries = {s["name"] for s in data[("netsuite", "subsidiary")]}
    assert {a["Legal_Entity__c"] for a in accounts.values()} <= subsidiaries


def test_incomplete_won_deals_have_no_project_yet(data) -> None:
    won = [o for o in data[("salesforce", "Opportunity")] if o["IsWon"]]
    incomplete = {o["Id"] for o in won if not o["Tax_Code__c"] or not o["Legal_Entity__c"]}
    projects = set(_opportunity_of(data).values())
    assert len(projects) == len(data[("kantata", "workspaces")])  # every workspace is linked, once
    assert 1 <= len(incomplete) < len(won)
    assert not incomplete & projects
    assert projects <= {o["Id"] for o in won}


def test_kantata_references_resolve(data) -> None:
    workspaces = _by_id(data[("kantata", "workspaces")])
    users = _by_id(data[("kantata", "users")])
    stories = _by_id(data[("kantata", "stories")])
    cards = _by_id(data[("kantata", "rate_cards")])
    for workspace in workspaces.values():
        assert workspace["rate_card_id"] in cards
        assert cards[workspace["rate_card_id"]]["currency"] == workspace["currency"]
    for story in stories.values():
        assert story["workspace_id"] in workspaces
    changes = _by_id(data[("kantata", "story_state_changes")])
    for story in stories.values():  # a completed story has its completion on record, nothing else has one
        assert [changes[c]["state"] for c in story["story_state_change_ids"]] == (
            ["completed"] if story["state"] == "completed" else [])
    assert set(_opportunity_of(data)) == set(workspaces)
    for collection, key, fk in (("time_entries", "timesheet_submissions", "time_entry_ids"),
                                ("expenses", "expense_report_submissions", "expense_ids")):
        submissions = _by_id(data[("kantata", key)])
        for entry in data[("kantata", collection)]:
            assert entry["workspace_id"] in workspaces
            assert entry["user_id"] in users
            if entry.get("story_id"):
                assert stories[entry["story_id"]]["workspace_id"] == entry["workspace_id"]
            if entry["recent_submission_id"]:  # one project, one person per submission
                submission = submissions[entry["recent_submission_id"]]
                assert entry["id"] in submission[fk]
                assert (submission["workspace_id"], submission["user_id"]) == (entry["workspace_id"], entry["user_id"])
    versions = _by_id(data[("kantata", "rate_card_versions")])
    for card in cards.values():
        assert all(versions[v]["rate_card_id"] == card["id"] for v in card["rate_card_version_ids"])


def _worker_roles(data) -> dict[str, list[tuple[str, str]]]:
    """Kantata user id -> [(effective date, role)] from Workday, matched by e-mail."""
    workers = {w["primaryWorkEmail"]: w["workerID"] for w in data[("workday", "workers")]}
    history = defaultdict(list)
    for row in data[("workday", "Worker_Job_History")]:
        if row["Employment_Status"] == "Active":
            history[row["Worker_ID"]].append((row["Effective_Date"], row["Job_Profile"]))
    return {u["id"]: sorted(history[workers[u["email_address"]]]) for u in data[("kantata", "users")]
            if u["email_address"] in workers}


def test_time_entries_are_realistic(data) -> None:
    entries = data[("kantata", "time_entries")]
    workspaces = _by_id(data[("kantata", "workspaces")])
    rates_of = _card_rates(data)
    roles = _worker_roles(data)
    statuses = Counter()
    for entry in entries:
        day = date.fromisoformat(entry["date_performed"])
        workspace = workspaces[entry["workspace_id"]]
        assert day.weekday() < 5
        assert workspace["start_date"] <= entry["date_performed"] <= min(workspace["due_date"], "2026-10-31")
        assert 30 <= abs(entry["time_in_minutes"]) <= 480
        status, approved = _approval(entry, data)
        assert (approved is not None) == (status == "approved") == entry["approved"]
        if entry["user_id"] in roles:  # the role the person held that day, priced on the project's card
            role = [r for effective, r in roles[entry["user_id"]] if effective <= entry["date_performed"]][-1]
            assert entry["rate_in_cents"] == rates_of[workspace["rate_card_id"]][role]
        old = (AS_OF.date() - day).days > 21
        statuses[(old, status)] += 1
        assert old or entry["time_in_minutes"] > 0  # bad rows are history, not this week's timesheet
    old_total = sum(n for (old, _), n in statuses.items() if old)
    assert statuses[(True, "approved")] / old_total > 0.9
    assert statuses[(True, "draft")] == 0
    assert statuses[(False, "submitted")] + statuses[(False, "draft")] > 0
    assert 0.75 < sum(e["billable"] for e in entries) / len(entries) < 0.95


def test_netsuite_references_resolve_and_invoices_add_up(data) -> None:
    accounts = _by_id(data[("salesforce", "Account")], "Id")
    opportunities = _by_id(data[("salesforce", "Opportunity")], "Id")
    customers = _by_id(data[("netsuite", "customer")])
    jobs = _by_id(data[("netsuite", "job")])
    lines = defaultdict(list)
    for line in data[("netsuite", "transactionline")]:
        if line["mainline"] == "F":  # item lines; the main line (mainline = 'T') is the header's
            lines[line["transaction"]].append(line)
    for customer in customers.values():
        assert customer["externalid"] in accounts
    for job in jobs.values():
        assert job["parent"] in customers
        assert opportunities[job["externalid"]]["AccountId"] == customers[job["parent"]]["externalid"]
    invoices = data[("netsuite", "transaction")]
    assert invoices
    for invoice in invoices:
        assert invoice["type"] == "CustInvc" and invoice["tranid"].startswith("INV-")
        assert invoice["entity"] in customers and invoice["job"] in jobs
        assert lines[invoice["id"]], invoice
        for line in lines[invoice["id"]]:
            assert Decimal(line["quantity"]) * Decimal(line["rate"]) == Decimal(line["foreignamount"])
        assert sum(Decimal(line["foreignamount"]) for line in lines[invoice["id"]]) == Decimal(invoice["foreigntotal"])
    pipeline_made = [i for i in invoices if i.get("externalid", "").startswith("psp:")]
    assert 1 <= len(pipeline_made) < len(invoices)


def test_time_invoices_bill_exactly_the_approved_time(data) -> None:
    jobs = _by_id(data[("netsuite", "job")])
    workspace_of = {opportunity: workspace for workspace, opportunity in _opportunity_of(data).items()}
    approved = Counter()
    for entry in data[("kantata", "time_entries")]:
        if _approval(entry, data)[0] == "approved" and entry["billable"] and entry["time_in_minutes"] > 0:
            approved[(entry["workspace_id"], entry["date_performed"][:7])] += entry["time_in_minutes"]
    lines = defaultdict(list)
    for line in data[("netsuite", "transactionline")]:
        if line["mainline"] == "F":  # item lines; the main line (mainline = 'T') is the header's
            lines[line["transaction"]].append(line)
    billed = 0
    for invoice in data[("netsuite", "transaction")]:
        if not lines[invoice["id"]][0]["item"].endswith("Milestone"):
            workspace = workspace_of[jobs[invoice["job"]]["externalid"]]
            hours = sum(Decimal(line["quantity"]) for line in lines[invoice["id"]])
            assert hours * 60 == approved[(workspace, invoice["memo"][-7:])]
            billed += 1
    assert billed


def test_realistic_drift_between_systems(data) -> None:
    accounts = _by_id(data[("salesforce", "Account")], "Id")
    customers = data[("netsuite", "customer")]
    currency_codes = {c["id"]: c["symbol"] for c in data[("netsuite", "currency")]}
    renamed = [c for c in customers if c["companyname"] != accounts[c["externalid"]]["Name"]]
    recurrency = [c for c in customers if currency_codes[c["currency"]] != accounts[c["externalid"]]["CurrencyIsoCode"]]
    assert 1 <= len(renamed) < len(customers)
    assert 1 <= len(recurrency) < len(customers)
    emails = {w["primaryWorkEmail"] for w in data[("workday", "workers")]}
    users = data[("kantata", "users")]
    drifted = [u for u in users if u["email_address"] not in emails]
    assert 1 <= len(drifted) <= max(1, len(users) // 10)


def test_workday_reports_follow_the_workers(data) -> None:
    workers = {w["workerID"]: w for w in data[("workday", "workers")]}
    for obj in ("Worker_Cost_Rates", "Worker_Job_History"):
        per_worker = Counter(row["Worker_ID"] for row in data[("workday", obj)])
        assert set(per_worker) == set(workers)
        assert max(per_worker.values()) <= 3
    for worker in workers.values():
        assert worker["isActive"] == (worker["terminationDate"] is None)
        if not worker["isActive"]:
            statuses = [r["Employment_Status"] for r in data[("workday", "Worker_Job_History")]
                        if r["Worker_ID"] == worker["workerID"]]
            assert statuses[-1] == "Terminated"


def test_exchange_rates_cover_the_history_daily(data) -> None:
    rates = data[("netsuite", "currencyrate")]
    per_currency = Counter(r["transactioncurrency"] for r in rates)
    days = (AS_OF.date() - generate.HISTORY_START.date()).days + 1
    assert per_currency == {cid: days for cid in ("2", "3", "4", "5")}
    gbp = [float(r["exchangerate"]) for r in rates if r["transactioncurrency"] == "2"]
    assert min(gbp) > 1.0 and max(gbp) < 1.6


def test_sf_ids_have_valid_checksums() -> None:
    assert generate.sf_checksum("001A0000006Vm9r") == "IAC"  # the 15 -> 18 character example
    assert generate.sf_id("001", 1) == "0018d0000000001AAA"
    assert generate.sf_id_number(generate.sf_id("006", 123_456)) == 123_456
    ids = {generate.sf_id("003", n) for n in range(1, 5_000)}
    assert len({i.lower() for i in ids}) == len(ids)  # case-insensitively unique, as the suffix promises
