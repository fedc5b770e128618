"""The main job's progress for a person watching: one line when an asset group of a stage is
done, one when the stage is, from what the assets reported (their materialization metadata).

A stage (a pass of the main job, publishing) runs its assets in one or more runs; a group is
done once each of its assets in the stage ran (materialized or not: an asset may have nothing
to write) or was found up to date. Knows nothing of Dagster: keys are anything hashable.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field

# What an asset moved, from its metadata, in the order shown: ingestion's rows, then postings'
# transactions (a group holds one kind or the other).
MOVED = (("rows_fetched", "fetched"), ("rows_inserted", "inserted"), ("rows_updated", "updated"),
         ("rows_deleted", "deleted"), ("rows_quarantined", "quarantined"),
         ("posted", "posted"), ("invalid", "invalid"), ("failed_retryable", "failed"), ("dead", "dead"),
         ("waiting", "waiting"))
# The rows of a table an asset built: shown for the groups that report nothing of MOVED (models).
ROW_COUNT = "dagster/row_count"


@dataclass
class GroupProgress:
    name: str
    pending: set[Hashable]
    ran: int = 0
    materialized: int = 0
    up_to_date: int = 0
    moved: Counter[str] = field(default_factory=Counter)
    rows: int = 0
    started: float | None = None

    def describe(self) -> str:
        """What the group did, e.g. ``8 materialized, fetched 1,170, inserted 1,168, quarantined 1``."""
        done = f"{self.materialized} materialized" if self.materialized == self.ran \
            else f"{self.materialized}/{self.ran} materialized"
        parts = [done] + ([f"{self.up_to_date} up to date"] if self.up_to_date else [])
        shown = [(label, self.moved[name]) for name, label in MOVED if name in self.moved]
        # The first counter always (it says what kind of thing moved), the others when not zero.
        parts += [f"{label} {count:,}" for i, (label, count) in enumerate(shown) if i == 0 or count]
        if not shown and self.rows:
            parts.append(f"{self.rows:,} rows")
        return ", ".join(parts)


class StageProgress:
    """One stage's groups; every method returns the lines to show (none while a group is unfinished)."""

    def __init__(self, label: str, groups: Mapping[Hashable, str], clock: Callable[[], float] = time.perf_counter):
        self.label, self.clock = label, clock
        self.started = clock()
        self.group_of = dict(groups)
        self.groups: dict[str, GroupProgress] = {}
        for key, name in sorted(self.group_of.items(), key=lambda item: item[1]):
            self.groups.setdefault(name, GroupProgress(name, set())).pending.add(key)
        self.runs = 0

    @property
    def finished_groups(self) -> int:
        return sum(not group.pending for group in self.groups.values())

    def up_to_date(self, keys: Iterable[Hashable]) -> list[str]:
        return self._settle(keys, lambda group: setattr(group, "up_to_date", group.up_to_date + 1))

    def step_started(self, keys: Iterable[Hashable]) -> None:
        for key in keys:
            group = self._group(key)
            if group is not None and group.started is None:
                group.started = self.clock()

    def materialized(self, key: Hashable, metadata: Mapping[str, object]) -> list[str]:
        group = self._group(key)
        if group is None or key not in group.pending:
            return []
        for name, _ in MOVED:
            if isinstance(metadata.get(name), int):
                group.moved[name] += metadata[name]
        if isinstance(metadata.get(ROW_COUNT), int):
            group.rows += metadata[ROW_COUNT]
        group.materialized += 1
        return self.ran([key])

    def ran(self, keys: Iterable[Hashable]) -> list[str]:
        """``keys`` ran (their step ended, whether it materialized them or not)."""
        return self._settle(keys, lambda group: setattr(group, "ran", group.ran + 1))

    def finish(self) -> str:
        seconds = self.clock() - self.started
        ran = sum(group.ran for group in self.groups.values())
        fresh = sum(group.up_to_date for group in self.groups.values())
        runs = f"{self.runs} run" + ("s" if self.runs != 1 else "")
        return f"{self.label} done in {seconds:.1f}s: {ran} assets ran in {runs}, {fresh} up to date"

    def _group(self, key: Hashable) -> GroupProgress | None:
        name = self.group_of.get(key)
        return self.groups[name] if name is not None else None

    def _settle(self, keys: Iterable[Hashable], count: Callable[[GroupProgress], None]) -> list[str]:
        lines = []
        for key in keys:
            group = self._group(key)
            if group is None or key not in group.pending:
                continue
            group.pending.discard(key)
            count(group)
            if not group.pending and group.ran:
                lines.append(self._line(group))
        return lines

    def _line(self, group: GroupProgress) -> str:
        seconds = self.clock() - (group.started if group.started is not None else self.started)
        return (f"  {self.label} | {group.name}: {group.describe()} "
                f"({seconds:.1f}s; {self.finished_groups}/{len(self.groups)} groups)")


ENTITY_COLUMNS = ("entity", "mode", "fetched", "inserted", "updated", "unchanged", "deleted", "quarantined", "seconds")


def entity_table(rows: Iterable[tuple], *, brief: bool = False) -> list[str]:
    """What the runs moved per entity (rows as ``ENTITY_COLUMNS``, one per entity), and a total.

    ``brief`` (the console's): the entities that only added rows or found them unchanged share
    one line, and those with an update, a delete or a quarantine keep theirs, so a fresh load or
    an unchanged estate is summed up in a few lines rather than one per entity.
    """
    rows = list(rows)
    notable = [row for row in rows if not brief or any(row[i] for i in (4, 6, 7))]
    routine = [row for row in rows if row not in notable]
    lines = []
    if notable:
        widths = [max(len(str(v)) for v in col) for col in zip(ENTITY_COLUMNS, *notable, strict=False)]
        lines = ["  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
                 for row in [ENTITY_COLUMNS, *notable]]
    if routine:
        lines.append(f"{'other ' if notable else ''}{len(routine)} {'entity' if len(routine) == 1 else 'entities'}, "
                     f"nothing updated, deleted or quarantined: fetched {sum(row[2] for row in routine):,}, "
                     f"inserted {sum(row[3] for row in routine):,}, unchanged {sum(row[5] for row in routine):,} "
                     "(each in ops.ingest_runs)")
    totals = [sum(row[i] for row in rows) for i in range(2, 8)]
    lines.append(f"total: fetched {totals[0]}, inserted {totals[1]}, updated {totals[2]}, unchanged {totals[3]}, "
                 f"deleted {totals[4]}, quarantined {totals[5]}")
    return lines
