"""The read-back sensor: a run that posted starts one read-back of what it wrote; a run that
posted nothing starts none, so the chain of read-backs ends."""

from __future__ import annotations

from dagster import DagsterEventType, RunRequest, SkipReason, build_run_status_sensor_context

from ps_pipelines.defs.writeback.jobs import ACTIVATE_PROJECTS_JOB, REFRESH_AFTER_POSTING_JOB, read_back_selection
from ps_pipelines.defs.writeback.read_back import read_back_after_posting, written_record_types
from ps_pipelines.events.jobs import EVENT_ACTIVATION_JOB
from tests.defs.writeback.conftest import Pipeline


def evaluate(pipeline: Pipeline, run_id: str) -> RunRequest | SkipReason:
    run = pipeline.instance.get_run_by_id(run_id)
    [success] = pipeline.instance.get_records_for_run(run_id, of_type=DagsterEventType.RUN_SUCCESS).records
    context = build_run_status_sensor_context(
        sensor_name=read_back_after_posting.name, dagster_instance=pipeline.instance, dagster_run=run,
        dagster_event=success.event_log_entry.dagster_event)
    return read_back_after_posting(context)


def test_a_posting_run_is_read_back_once_and_a_quiet_run_is_not(pipeline: Pipeline) -> None:
    posting = pipeline.run(ACTIVATE_PROJECTS_JOB)
    written = written_record_types(pipeline.instance, posting.run_id)
    assert {"netsuite:job", "salesforce:opportunity"} <= set(written)
    request = evaluate(pipeline, posting.run_id)
    assert isinstance(request, RunRequest)
    assert request.run_key == f"read_back_after_posting:{posting.run_id}"  # one read-back per posting run

    # A run that finds nothing to post (the read-back's own posting step, usually) starts nothing more.
    quiet = pipeline.run(ACTIVATE_PROJECTS_JOB)
    assert written_record_types(pipeline.instance, quiet.run_id) == []
    assert isinstance(evaluate(pipeline, quiet.run_id), SkipReason)


def test_an_event_run_that_posted_is_read_back_and_a_quiet_one_is_not(pipeline: Pipeline) -> None:
    pipeline.run(ACTIVATE_PROJECTS_JOB)
    won = pipeline.sandbox.control("POST", "events/deal-won", json={})
    posting = pipeline.run_event(EVENT_ACTIVATION_JOB)
    assert {"netsuite:job", "salesforce:opportunity"} <= set(
        written_record_types(pipeline.instance, posting.run_id)), won
    request = evaluate(pipeline, posting.run_id)
    assert isinstance(request, RunRequest) and request.tags["ps/after_run"] == posting.run_id

    quiet = pipeline.run_event(EVENT_ACTIVATION_JOB)
    assert written_record_types(pipeline.instance, quiet.run_id) == []
    assert isinstance(evaluate(pipeline, quiet.run_id), SkipReason)


def test_the_read_back_job_reads_the_written_tables_and_rebuilds_and_republishes_downstream() -> None:
    from ps_pipelines.definitions import build_definitions
    from ps_pipelines.defs.transform.publish import PUBLISHED_MARTS_KEY
    from ps_pipelines.defs.writeback.assets import INVOICES_KEY

    defs = build_definitions("local")
    keys = read_back_selection().resolve(defs.resolve_asset_graph())
    raw = {key for key in keys if key.path[0] == "raw"}
    assert {key.to_user_string() for key in raw} == {
        "raw/netsuite/customers", "raw/netsuite/projects", "raw/netsuite/invoices", "raw/netsuite/invoice_lines",
        "raw/kantata/projects", "raw/salesforce/opportunities"}
    assert {INVOICES_KEY, PUBLISHED_MARTS_KEY} <= keys
    assert defs.resolve_job_def(REFRESH_AFTER_POSTING_JOB).executor_def.name == "in_process"
