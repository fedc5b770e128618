"""The ingestion loop against an in-memory source: upserts, reruns, quarantine, deletes, marks."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest

from ps_pipelines.lib.contracts import kantata, netsuite, workday
from ps_pipelines.lib.contracts.base import EntityContract
from ps_pipelines.lib.ingestion import IngestOptions, ingest_entity
from ps_pipelines.lib.warehouse.warehouse import Warehouse

T0 = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def time_entry(entry_id: int, updated: datetime, minutes: float = 60, **overrides) -> dict:
    record = {
        "id": str(entry_id), "workspace_id": "10", "user_id": "20", "story_id": None,
        "date_performed": "2026-09-30", "time_in_minutes": minutes, "billable": True, "approved": True,
        "rate_in_cents": 15000, "notes": "work", "created_at": _iso(T0), "updated_at": _iso(updated),
        "recent_submission": {"id": "7", "status": "approved", "current_resolution_created_at_date": _iso(updated)},
    }
    return {**record, **overrides}


class FakeSource:
    """Answers like a real connector: change-ordered pages filtered by ``since``."""

    platform = "kantata"

    def __init__(self, records: list[dict], page_size: int = 3) -> None:
        self.records = records
        self.page_size = page_size
        self.calls: list[datetime | None] = []
        self.hard_deletes: list[tuple[str, datetime]] = []

    def extract(self, contract: EntityContract, *, since: datetime | None,
                ids: Sequence[str] | None = None) -> Iterator[list[dict]]:
        self.calls.append(since)
        rows = [r for r in self.records if ids is None or r.get("transaction") in ids]
        if since is not None:
            rows = [r for r in rows if datetime.fromisoformat(r[contract.change_column]) >= since]
        for start in range(0, len(rows), self.page_size):
            yield rows[start:start + self.page_size]

    def deleted(self, contract: EntityContract, *, since: datetime) -> Iterator[tuple[str, datetime]]:
        yield from self.hard_deletes

    def stats(self) -> dict[str, int]:
        return {"requests": len(self.calls), "retries": 0}


@pytest.fixture
def warehouse(tmp_path) -> Warehouse:
    return Warehouse(tmp_path / "warehouse.duckdb")


def test_first_load_inserts_and_rerun_changes_nothing(warehouse: Warehouse) -> None:
    source = FakeSource([time_entry(i, T0 + timedelta(minutes=i)) for i in range(10)])
    first = ingest_entity(source, warehouse, kantata.TIME_ENTRIES, "run-1", IngestOptions(batch_rows=4))
    assert (first.mode, first.fetched, first.inserted, first.updated) == ("full", 10, 10, 0)
    assert first.high_water_mark_after == T0 + timedelta(minutes=9)

    again = ingest_entity(source, warehouse, kantata.TIME_ENTRIES, "run-2")
    assert again.mode == "incremental"
    assert source.calls[-1] == T0 + timedelta(minutes=9) - IngestOptions().overlap
    assert (again.inserted, again.updated, again.deleted, again.quarantined) == (0, 0, 0, 0)
    assert again.unchanged == again.fetched > 0
    with warehouse.connect() as con:
        assert con.execute("SELECT count(*) FROM raw_kantata.time_entries").fetchone()[0] == 10


def test_incremental_picks_up_changes_and_late_rows_inside_the_overlap(warehouse: Warehouse) -> None:
    records = [time_entry(i, T0 + timedelta(minutes=i)) for i in range(5)]
    source = FakeSource(records)
    ingest_entity(source, warehouse, kantata.TIME_ENTRIES, "run-1")
    # A row committed late carrying a change time just below the mark, and a real update.
    records.append(time_entry(99, T0 + timedelta(minutes=3)))
    records[1] = time_entry(1, T0 + timedelta(hours=1), minutes=90)
    result = ingest_entity(source, warehouse, kantata.TIME_ENTRIES, "run-2")
    assert (result.inserted, result.updated) == (1, 1)
    with warehouse.connect() as con:
        minutes = con.execute("SELECT time_in_minutes FROM raw_kantata.time_entries WHERE id = '1'").fetchone()[0]
    assert minutes == 90


def test_older_version_never_overwrites_a_newer_one(warehouse: Warehouse) -> None:
    source = FakeSource([time_entry(1, T0 + timedelta(hours=2), minutes=120)])
    ingest_entity(source, warehouse, kantata.TIME_ENTRIES, "run-1")
    source.records = [time_entry(1, T0, minutes=30)]
    result = ingest_entity(source, warehouse, kantata.TIME_ENTRIES, "run-2", IngestOptions(full_refresh=True))
    assert result.updated == 0
    with warehouse.connect() as con:
        assert con.execute("SELECT time_in_minutes FROM raw_kantata.time_entries").fetchone()[0] == 120


def test_bad_rows_are_quarantined_with_the_rule_and_good_rows_still_load(warehouse: Warehouse) -> None:
    source = FakeSource([
        time_entry(1, T0),
        time_entry(2, T0, minutes=-30),
        time_entry(3, T0, minutes="ninety"),
        time_entry(4, T0, recent_submission={"id": "8", "status": "submitted"}),  # Kantata says pending
        time_entry(5, T0),
    ])
    result = ingest_entity(source, warehouse, kantata.TIME_ENTRIES, "run-1")
    assert (result.inserted, result.quarantined) == (2, 3)
    reasons = {example["source_id"]: example["reason"] for example in result.examples}
    assert "time_in_minutes: greater_than_or_equal_to(0)" in reasons["2"]
    assert "time_in_minutes: not a valid float64 (value='ninety')" in reasons["3"]
    assert "recent_submission_status: isin" in reasons["4"]
    with warehouse.connect() as con:
        rows = con.execute(
            "SELECT source_id, rule, payload->>'$.recent_submission.status' FROM ops.quarantine ORDER BY source_id"
        ).fetchall()
    assert [r[0] for r in rows] == ["2", "3", "4"]
    assert rows[2][2] == "submitted"  # the payload is kept whole, nothing is lost


def test_quarantine_entry_is_resolved_when_a_fixed_version_arrives(warehouse: Warehouse) -> None:
    source = FakeSource([time_entry(1, T0, minutes=-30)])
    ingest_entity(source, warehouse, kantata.TIME_ENTRIES, "run-1")
    source.records = [time_entry(1, T0 + timedelta(hours=1), minutes=30)]
    ingest_entity(source, warehouse, kantata.TIME_ENTRIES, "run-2")
    with warehouse.connect() as con:
        assert con.execute("SELECT count(*) FROM ops.quarantine WHERE resolved_at IS NULL").fetchone()[0] == 0


def test_hard_deletes_from_the_feed_and_from_a_full_snapshot_are_recorded(warehouse: Warehouse) -> None:
    source = FakeSource([time_entry(i, T0) for i in range(4)])
    ingest_entity(source, warehouse, kantata.TIME_ENTRIES, "run-1")
    source.hard_deletes = [("0", T0 + timedelta(days=1))]
    assert ingest_entity(source, warehouse, kantata.TIME_ENTRIES, "run-2").deleted == 1
    source.records = source.records[1:2]  # 0 was hard-deleted; 2 and 3 vanished without a feed entry
    full = ingest_entity(source, warehouse, kantata.TIME_ENTRIES, "run-3", IngestOptions(full_refresh=True))
    assert full.deleted == 2
    with warehouse.connect() as con:
        flags = dict(con.execute("SELECT id, _is_deleted FROM raw_kantata.time_entries").fetchall())
    assert flags == {"0": True, "1": False, "2": True, "3": True}


def test_snapshot_entity_without_change_field_rewrites_only_changed_rows(warehouse: Warehouse) -> None:
    worker = {"id": "w1", "workerId": "E1", "descriptor": "Ada Lovelace", "primaryWorkEmail": "ada@example.com",
              "jobProfile": {"id": "j", "descriptor": "Consultant"}, "isActive": True}
    source = FakeSource([worker, {**worker, "id": "w2", "workerId": "E2"}])
    assert ingest_entity(source, warehouse, workday.WORKERS, "run-1").inserted == 2
    source.records[1] = {**source.records[1], "isActive": False}
    second = ingest_entity(source, warehouse, workday.WORKERS, "run-2")
    assert (second.mode, second.inserted, second.updated, second.unchanged) == ("snapshot", 0, 1, 1)
    with warehouse.connect() as con:
        profile = con.execute("SELECT jobprofile_descriptor FROM raw_workday.workers LIMIT 1").fetchone()[0]
    assert profile == "Consultant"


def test_child_entity_is_read_for_changed_parents_only(warehouse: Warehouse) -> None:
    invoice = {"id": "7", "tranid": "INV-7", "type": "CustInvc", "entity": "1", "subsidiary": "1", "currency": "1",
               "trandate": "2026-09-30", "foreigntotal": "200.00", "lastmodifieddate": "2026-10-01T12:00:00Z"}
    lines = [{"transaction": "7", "id": str(n), "foreignamount": "100.00", "quantity": "1", "rate": "100"}
             for n in (1, 2)]
    ingest_entity(FakeSource([invoice]), warehouse, netsuite.INVOICES, "run-1")
    line_source = FakeSource(lines)
    assert ingest_entity(line_source, warehouse, netsuite.INVOICE_LINES, "run-1").inserted == 2
    # No invoice changed since: the lines are not read again.
    line_source.records = lines[:1]
    assert ingest_entity(line_source, warehouse, netsuite.INVOICE_LINES, "run-2").fetched == 0
    # The invoice changes and loses a line: the missing line is recorded as deleted.
    ingest_entity(FakeSource([{**invoice, "lastmodifieddate": "2026-10-02T12:00:00Z"}]), warehouse,
                  netsuite.INVOICES, "run-3")
    result = ingest_entity(line_source, warehouse, netsuite.INVOICE_LINES, "run-3")
    assert (result.fetched, result.deleted) == (1, 1)


def _hold(warehouse: Warehouse, entry_id: str = "1") -> tuple:
    with warehouse.connect() as con:
        return con.execute("SELECT time_in_minutes, _quarantined_at IS NOT NULL, _quarantine_rule "
                           "FROM raw_kantata.time_entries WHERE id = ?", [entry_id]).fetchone()


def test_a_quarantined_new_version_holds_the_older_one_until_a_valid_version_arrives(warehouse: Warehouse) -> None:
    source = FakeSource([time_entry(1, T0, minutes=405), time_entry(2, T0)])
    ingest_entity(source, warehouse, kantata.TIME_ENTRIES, "run-1")
    source.records = [time_entry(1, T0 + timedelta(hours=1), minutes=-480), time_entry(2, T0)]
    bad = ingest_entity(source, warehouse, kantata.TIME_ENTRIES, "run-2")
    minutes, held, rule = _hold(warehouse)
    assert (minutes, held, bad.held) == (405, True, 1)  # the old version stays, on hold
    assert rule.startswith("time_in_minutes: greater_than_or_equal_to(0)")
    assert (bad.open_quarantine.rows, bad.open_quarantine.holding_previous_version) == (1, 1)
    assert bad.open_quarantine.rules == {"time_in_minutes: greater_than_or_equal_to(0)": 1}
    assert bad.open_quarantine.examples[0]["source_id"] == "1"

    # Re-reading the same failure keeps the hold (and when it began); an older valid version
    # (a late page, a replay) does not lift it.
    ingest_entity(source, warehouse, kantata.TIME_ENTRIES, "run-3")
    source.records = [time_entry(1, T0 + timedelta(minutes=30), minutes=300)]
    ingest_entity(source, warehouse, kantata.TIME_ENTRIES, "run-4", IngestOptions(full_refresh=True))
    assert _hold(warehouse)[1] is True
    with warehouse.connect() as con:
        first, latest = con.execute("SELECT first_quarantined_at, quarantined_at FROM ops.quarantine "
                                    "WHERE resolved_at IS NULL").fetchone()
    assert first < latest

    # The source is fixed: the hold lifts by itself, even when the fix equals the held version.
    source.records = [time_entry(1, T0 + timedelta(hours=2), minutes=405), time_entry(2, T0)]
    fixed = ingest_entity(source, warehouse, kantata.TIME_ENTRIES, "run-5")
    assert _hold(warehouse) == (405, False, None)
    assert (fixed.released, fixed.open_quarantine.rows) == (1, 0)


def test_a_record_never_valid_is_quarantined_without_a_hold(warehouse: Warehouse) -> None:
    result = ingest_entity(FakeSource([time_entry(1, T0, minutes=-1)]), warehouse, kantata.TIME_ENTRIES, "run-1")
    assert (result.held, result.open_quarantine.rows, result.open_quarantine.holding_previous_version) == (0, 1, 0)
