"""The CLI's log: the whole stream into the file, to the console only progress, warnings and
errors (a failed step with its cause), and everything with --verbose. On a tiny job in process."""

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    DagsterInstance,
    Definitions,
    MaterializeResult,
    asset,
    define_asset_job,
    multi_asset,
)

from ps_pipelines.run_log import RunLog, console_line, stage_of


@asset(group_name="raw_demo")
def fetched(context: AssetExecutionContext) -> MaterializeResult:
    context.log.info("fetching the demo rows")
    return MaterializeResult(metadata={"rows_fetched": 5, "rows_inserted": 4, "rows_quarantined": 1})


@asset(group_name="marts_demo", deps=[fetched])
def broken() -> None:
    print("a dbt line on stdout")
    raise ValueError("the ERP said no")


@asset(group_name="marts_demo", deps=[broken])
def below() -> None:
    pass


@multi_asset(specs=[AssetSpec("stg", group_name="staging_demo", skippable=True),
                     AssetSpec("mart", group_name="marts_demo", deps=["stg"], skippable=True)], can_subset=True)
def models(context: AssetExecutionContext) -> Iterator[MaterializeResult]:
    """One step holding models of two groups, like dbt's: a run may select some of them."""
    for key in sorted(context.selected_asset_keys, key=lambda key: key.path != ["stg"]):
        yield MaterializeResult(asset_key=key, metadata={"dagster/row_count": 7})


DEFS = Definitions(assets=[fetched, broken, below, models], jobs=[define_asset_job("demo"),
                                                                  define_asset_job("models", selection=[models])])


def run_demo(log: RunLog) -> bool:
    job, graph = DEFS.resolve_job_def("demo"), DEFS.resolve_asset_graph()
    keys = {fetched.key, broken.key, below.key}
    logged, config = log.with_loggers(job)
    with DagsterInstance.ephemeral() as instance, stage_of(log, graph, "pass 1", keys), log.run(keys):
        result = logged.execute_in_process(instance=instance, run_config=config, raise_on_error=False,
                                           asset_selection=sorted(keys))
    log.close()
    return result.success


@pytest.fixture
def console() -> io.StringIO:
    return io.StringIO()


def test_the_console_shows_progress_and_the_failed_step_and_the_file_holds_everything(
        tmp_path: Path, console: io.StringIO) -> None:
    log = RunLog(tmp_path / "logs" / "run.log", console=console)
    assert not run_demo(log)
    shown, written = console.getvalue(), log.path.read_text()

    assert "  pass 1 | raw_demo: 1 materialized, fetched 5, inserted 4, quarantined 1 (" in shown
    [failure] = [line for line in shown.splitlines() if line.startswith("ERROR broken:")]
    assert "ValueError: the ERP said no" in failure and str(log.path) in failure
    assert "  pass 1 | marts_demo: 0/2 materialized (" in shown
    assert "pass 1 done in " in shown
    assert len(shown.splitlines()) <= 6, shown

    for detail in (" - DEBUG - ", "STEP_START", "fetching the demo rows", "a dbt line on stdout", "Stack Trace"):
        assert detail in written and detail not in shown, detail
    assert "pass 1 | raw_demo" in written


def test_verbose_puts_the_whole_stream_on_the_console_and_still_writes_the_file(
        tmp_path: Path, console: io.StringIO, capsys: pytest.CaptureFixture[str]) -> None:
    log = RunLog(tmp_path / "run.log", console=console, verbose=True)
    run_demo(log)
    captured = capsys.readouterr()  # the streams the run wrote to stay where they were
    streamed = console.getvalue() + captured.out + captured.err
    for detail in (" - DEBUG - ", "fetching the demo rows", "a dbt line on stdout", "pass 1 | raw_demo"):
        assert detail in streamed and detail in log.path.read_text(), detail


def test_a_step_of_several_groups_settles_only_what_its_run_selected(tmp_path: Path, console: io.StringIO) -> None:
    job, graph = DEFS.resolve_job_def("models"), DEFS.resolve_asset_graph()
    log = RunLog(tmp_path / "run.log", console=console)
    logged, config = log.with_loggers(job)
    with DagsterInstance.ephemeral() as instance, stage_of(log, graph, "pass 1", models.keys):
        for key in (AssetKey("stg"), AssetKey("mart")):
            with log.run([key]):
                assert logged.execute_in_process(instance=instance, run_config=config, asset_selection=[key]).success
            shown = console.getvalue()
            assert ("marts_demo:" in shown) == (key == AssetKey("mart")), shown
    shown = console.getvalue()
    assert "  pass 1 | staging_demo: 1 materialized, 7 rows (" in shown
    assert "  pass 1 | marts_demo: 1 materialized, 7 rows (" in shown
    assert "pass 1 done in " in shown and "2 assets ran in 2 runs" in shown


def test_a_warning_reaches_the_console_once(tmp_path: Path, console: io.StringIO) -> None:
    log = RunLog(tmp_path / "run.log", console=console)
    for _ in range(2):  # two passes meet the same invalid posting
        log.on_record(logging.LogRecord("dagster", logging.WARNING, __file__, 1, "invoice 7: no subsidiary", None,
                                        None))
    assert console.getvalue() == "WARNING dagster: invoice 7: no subsidiary\n"


def test_below_a_warning_nothing_reaches_the_console() -> None:
    record = logging.LogRecord("dagster", logging.INFO, __file__, 1, "fetched 5", None, None)
    assert console_line(record, "run.log") is None
    record.levelno = logging.WARNING
    assert console_line(record, "run.log") == "WARNING dagster: fetched 5"
