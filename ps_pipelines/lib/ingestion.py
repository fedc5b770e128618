"""Incremental ingestion of one source entity into its raw table, with no Dagster in sight.

The loop streams pages from a source client, validates them in bounded batches, upserts
good rows, quarantines bad ones, records deletes and only then moves the high-water mark,
so a run that dies half-way is simply repeated by the next one (upserts are idempotent).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd

from ps_pipelines.lib.contracts import CONTRACTS_BY_KEY
from ps_pipelines.lib.contracts.base import EntityContract, Record
from ps_pipelines.lib.contracts.validate import validate_records
from ps_pipelines.lib.warehouse import warehouse as wh

if TYPE_CHECKING:
    from ps_pipelines.lib.sources.base import SourceClient


@dataclass(frozen=True)
class IngestOptions:
    full_refresh: bool = False
    # Re-read this much before the high-water mark: a row committed late with a change
    # time at or just below the mark would otherwise never be seen.
    overlap: timedelta = timedelta(minutes=10)
    batch_rows: int = 10_000
    max_examples: int = 5


@dataclass
class IngestResult:
    entity_key: str
    mode: str
    started_at: datetime
    finished_at: datetime | None = None
    fetched: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    quarantined: int = 0
    held: int = 0  # raw rows put on hold: their record's newer version was quarantined
    released: int = 0  # held rows whose record has a valid current version again
    # The entity's unresolved quarantine after the run, from every run (not only this batch).
    open_quarantine: wh.OpenQuarantine = field(default_factory=wh.OpenQuarantine)
    high_water_mark_before: datetime | None = None
    high_water_mark_after: datetime | None = None
    rule_counts: Counter = field(default_factory=Counter)
    examples: list[dict[str, Any]] = field(default_factory=list)
    unexpected_columns: set[str] = field(default_factory=set)
    api_stats: dict[str, int] = field(default_factory=dict)
    duration_seconds: float = 0.0

    @property
    def rows_per_second(self) -> float:
        return self.fetched / self.duration_seconds if self.duration_seconds else 0.0


def _max_change(contract: EntityContract, frame: pd.DataFrame, rejected: list[Record]) -> datetime | None:
    """Highest change time in the batch, including rejected rows (they are kept in quarantine)."""
    if not contract.change_column:
        return None
    flat = [contract.normalize(r).get(contract.change_column) for r in rejected]
    candidates = [
        frame[contract.change_column].max() if not frame.empty else pd.NaT,
        pd.to_datetime(pd.Series(flat, dtype=object), errors="coerce", utc=True, format="ISO8601").max(),
    ]
    present = [c for c in candidates if not pd.isna(c)]
    return max(present).to_pydatetime() if present else None


class _EntityLoad:
    """State of one entity's run: counters, the batch being filled, the new mark."""

    def __init__(self, con: Any, contract: EntityContract, run_id: str, options: IngestOptions,
                 result: IngestResult, track_seen: bool) -> None:
        self.con, self.contract, self.run_id = con, contract, run_id
        self.options, self.result, self.track_seen = options, result, track_seen
        self.new_mark: datetime | None = None

    def flush(self, records: list[Record]) -> None:
        if not records:
            return
        batch = validate_records(self.contract, records)
        loaded_at = datetime.now(UTC)
        con = self.con
        counts = wh.upsert_rows(con, self.contract, batch.valid, batch.valid_records, self.run_id, loaded_at)
        held = wh.quarantine(con, self.contract, batch.rejects, self.run_id, loaded_at)
        if self.track_seen:
            seen = ["|".join(str(v) for v in row) for row in
                    zip(*(batch.valid[c] for c in self.contract.id_columns), strict=True)]
            wh.record_seen(con, self.contract, self.run_id, seen + [r.source_id for r in batch.rejects])
        result = self.result
        result.fetched += len(records)
        result.inserted += counts.inserted
        result.updated += counts.updated
        result.unchanged += counts.unchanged
        result.quarantined += len(batch.rejects)
        result.held += held
        result.released += counts.released
        result.unexpected_columns |= batch.unexpected_columns
        for reject in batch.rejects:
            result.rule_counts.update(rule.split(" (value=")[0] for rule in reject.rules)
            if len(result.examples) < self.options.max_examples:
                result.examples.append({"source_id": reject.source_id, "reason": reject.reason})
        mark = _max_change(self.contract, batch.valid, [r.record for r in batch.rejects])
        if mark is not None and (self.new_mark is None or mark > self.new_mark):
            self.new_mark = mark


def ingest_entity(
    source: SourceClient,
    warehouse: wh.Warehouse,
    contract: EntityContract,
    run_id: str,
    options: IngestOptions | None = None,
) -> IngestResult:
    """Load one entity from ``source`` into its raw table and return what moved."""
    options = options or IngestOptions()
    started = datetime.now(UTC)
    clock = time.perf_counter()
    # One connection (and so one hold of the single-writer lock) for the whole entity:
    # reopening DuckDB per batch costs a checkpoint each time.
    with warehouse.connect() as con:
        wh.ensure_raw_table(con, contract)
        mark_before = wh.get_high_water_mark(con, contract.key)
        parent_ids = _changed_parent_ids(con, contract, None if options.full_refresh else mark_before)

        incremental = bool(contract.change_column) and not options.full_refresh and mark_before is not None
        since = mark_before - options.overlap if incremental else None
        mode = "incremental" if incremental else ("snapshot" if not contract.change_column else "full")
        result = IngestResult(entity_key=contract.key, mode=mode, started_at=started,
                              high_water_mark_before=mark_before)
        # Without a change filter, the listing is complete: whatever it lacks was deleted.
        load = _EntityLoad(con, contract, run_id, options, result, track_seen=not incremental)

        pending: list[Record] = []
        for page in source.extract(contract, since=since, ids=parent_ids):
            pending.extend(page)
            if len(pending) >= options.batch_rows:
                load.flush(pending)
                pending = []
        load.flush(pending)

        if incremental:
            result.deleted = wh.mark_deleted(con, contract, source.deleted(contract, since=since), run_id)
        else:
            result.deleted = wh.mark_unseen_deleted(con, contract, run_id, started, parent_ids)
            wh.clear_seen(con, contract, run_id)
        # A child entity's mark is the parents' load time it has caught up with.
        new_mark = started if contract.parent_entity else load.new_mark
        result.high_water_mark_after = max(filter(None, (mark_before, new_mark)), default=None)
        wh.set_high_water_mark(con, contract.key, result.high_water_mark_after, run_id, datetime.now(UTC))
        result.open_quarantine = wh.open_quarantine(con, contract, options.max_examples)
        result.api_stats = dict(source.stats())
        result.finished_at = datetime.now(UTC)
        result.duration_seconds = time.perf_counter() - clock
        _log_run(con, run_id, result)
    return result


def _changed_parent_ids(con: Any, contract: EntityContract, loaded_since: datetime | None) -> list[str] | None:
    if not contract.parent_entity:
        return None
    parent = CONTRACTS_BY_KEY[f"{contract.platform}__{contract.parent_entity}"]
    if not wh.table_exists(con, parent.raw_table):
        return []
    return wh.changed_parent_ids(con, parent, loaded_since)


def _log_run(con: Any, run_id: str, r: IngestResult) -> None:
    con.execute(
        "INSERT INTO ops.ingest_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [run_id, r.entity_key, r.mode, r.started_at, r.finished_at, r.fetched, r.inserted, r.updated,
         r.unchanged, r.deleted, r.quarantined, r.high_water_mark_before, r.high_water_mark_after,
         r.api_stats.get("requests", 0), r.api_stats.get("retries", 0)],
    )
