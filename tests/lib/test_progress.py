"""The main job's progress lines: one per asset group when it is done, one per stage."""

from __future__ import annotations

from ps_pipelines.lib.progress import StageProgress, entity_table


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


GROUPS = {"raw/kantata/projects": "psa_kantata", "raw/kantata/time_entries": "psa_kantata",
          "stg_projects": "staging", "stg_time": "staging", "fct_time": "marts_core",
          "writeback/activations": "writeback"}


def stage(clock: Clock) -> StageProgress:
    return StageProgress("pass 1", GROUPS, clock=clock)


def test_a_group_is_reported_once_all_its_assets_ran_with_what_they_moved_and_how_many_groups_are_done() -> None:
    clock = Clock()
    progress = stage(clock)
    progress.step_started(["raw/kantata/projects"])
    clock.now = 102.0
    assert progress.materialized("raw/kantata/projects", {"rows_fetched": 8, "rows_inserted": 8, "rows_updated": 0,
                                                          "rows_deleted": 0, "rows_quarantined": 0}) == []
    clock.now = 104.5
    lines = progress.materialized("raw/kantata/time_entries", {
        "rows_fetched": 1000, "rows_inserted": 999, "rows_updated": 0, "rows_deleted": 0, "rows_quarantined": 1,
        "dagster/row_count": 999, "mode": "incremental"})
    assert lines == ["  pass 1 | psa_kantata: 2 materialized, fetched 1,008, inserted 1,007, quarantined 1 "
                     "(4.5s; 1/4 groups)"]


def test_models_report_their_rows_and_an_asset_that_wrote_nothing_counts_as_ran() -> None:
    clock = Clock()
    progress = stage(clock)
    progress.step_started(["stg_projects", "stg_time", "fct_time"])
    assert progress.materialized("stg_projects", {"dagster/row_count": 8}) == []
    clock.now = 103.0
    [line] = progress.materialized("stg_time", {"dagster/row_count": 1200})
    assert line == "  pass 1 | staging: 2 materialized, 1,208 rows (3.0s; 1/4 groups)"
    # The step ended without materializing fct_time (it failed, or had nothing to write).
    clock.now = 110.0
    assert progress.ran(["stg_projects", "stg_time", "fct_time"]) == [
        "  pass 1 | marts_core: 0/1 materialized (10.0s; 2/4 groups)"]


def test_postings_report_what_they_posted_and_groups_found_up_to_date_say_nothing_but_count() -> None:
    clock = Clock()
    progress = stage(clock)
    assert progress.up_to_date(["stg_projects", "stg_time"]) == []  # nothing of the group ran: no line
    clock.now = 101.0
    [line] = progress.materialized("writeback/activations", {"posted": 3, "invalid": 0, "dead": 1, "waiting": 0})
    assert line == "  pass 1 | writeback: 1 materialized, posted 3, dead 1 (1.0s; 2/4 groups)"
    assert progress.materialized("writeback/activations", {"posted": 3}) == [], "reported once"


def test_a_stage_line_says_how_long_it_took_what_ran_and_what_was_up_to_date() -> None:
    clock = Clock()
    progress = stage(clock)
    progress.up_to_date(["fct_time"])
    progress.ran(["raw/kantata/projects", "raw/kantata/time_entries", "stg_projects", "stg_time", "fct_time"])
    progress.runs = 2
    clock.now = 160.25
    assert progress.finish() == "pass 1 done in 60.2s: 4 assets ran in 2 runs, 1 up to date"


def test_a_group_with_assets_up_to_date_says_so() -> None:
    progress = stage(Clock())
    progress.up_to_date(["stg_projects"])
    [line] = progress.ran(["stg_time"])
    assert line.startswith("  pass 1 | staging: 0/1 materialized, 1 up to date (")


def test_the_brief_entity_table_keeps_what_needs_a_look_and_sums_up_the_rest_in_one_line() -> None:
    rows = [("kantata__projects", "full", 8, 8, 0, 0, 0, 0, 0.5),
            ("kantata__time_entries", "full", 1000, 990, 0, 0, 0, 10, 2.5),
            ("kantata__users", "incremental", 10, 0, 0, 10, 0, 0, 0.25),
            ("netsuite__invoices", "full+incremental", 30, 27, 1, 2, 0, 0, 1.5)]
    total = "total: fetched 1048, inserted 1025, updated 1, unchanged 12, deleted 0, quarantined 10"
    assert entity_table(rows, brief=True) == [
        "entity                 mode              fetched  inserted  updated  unchanged  deleted  quarantined  seconds",
        "kantata__time_entries  full              1000     990       0        0          0        10           2.5",
        "netsuite__invoices     full+incremental  30       27        1        2          0        0            1.5",
        "other 2 entities, nothing updated, deleted or quarantined: fetched 18, inserted 8, unchanged 10 "
        "(each in ops.ingest_runs)",
        total]
    assert len(entity_table(rows)) == len(rows) + 2 and entity_table(rows)[-1] == total
    assert entity_table(rows[2:3], brief=True) == [
        "1 entity, nothing updated, deleted or quarantined: fetched 10, inserted 0, unchanged 10 "
        "(each in ops.ingest_runs)",
        "total: fetched 10, inserted 0, updated 0, unchanged 10, deleted 0, quarantined 0"]
