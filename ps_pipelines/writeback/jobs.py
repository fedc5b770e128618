"""The write-back jobs the sensors start, and the replay job for dead letters.

A posting job refreshes only what its outbound model reads: the raw tables upstream of it
(incremental ingestion, with their contract checks) and the dbt models between them, then
posts and lists what needs attention. dbt's data tests are left to the main job and to
automation: in the posting path the pandera payload contracts guard every transaction, and
skipping hundreds of tests keeps an event's latency in seconds.

The jobs run in one process: every step is in the one-slot warehouse pool, so steps run one
after another anyway, and a process per step would add seconds of start-up to each.
"""

from dagster import AssetKey, AssetSelection, define_asset_job, in_process_executor

from ps_pipelines.transform.assets import dbt_models
from ps_pipelines.writeback.assets import ACTIVATIONS_KEY, DEAD_LETTERS_KEY, INVOICES_KEY

ACTIVATE_PROJECTS_JOB = "activate_projects"
POST_INVOICES_JOB = "post_invoices"
REPLAY_DEAD_LETTERS_JOB = "replay_dead_letters"


def posting_selection(posting_key: AssetKey) -> AssetSelection:
    """The posting asset with its checks, what it reads back to the raw tables (with their
    contract checks, which the ingestion step yields), minus the dbt tests; then the dead letters."""
    upstream = AssetSelection.assets(posting_key).upstream()
    return (upstream - AssetSelection.checks_for_assets(dbt_models)) | AssetSelection.assets(DEAD_LETTERS_KEY)


activate_projects_job = define_asset_job(
    ACTIVATE_PROJECTS_JOB,
    selection=posting_selection(ACTIVATIONS_KEY),
    executor_def=in_process_executor,
    description="Won deals to ERP customer and project, PSA workspace and CRM status (started by won_deals_sensor).",
)

post_invoices_job = define_asset_job(
    POST_INVOICES_JOB,
    selection=posting_selection(INVOICES_KEY),
    executor_def=in_process_executor,
    description="Approved time, expenses and completed milestones to NetSuite invoices, then reconciliation "
                "(started by approved_work_sensor).",
)

_POSTING_OPS = [key.to_python_identifier() for key in (ACTIVATIONS_KEY, INVOICES_KEY)]
replay_dead_letters_job = define_asset_job(
    REPLAY_DEAD_LETTERS_JOB,
    selection=AssetSelection.assets(ACTIVATIONS_KEY, INVOICES_KEY, DEAD_LETTERS_KEY),
    executor_def=in_process_executor,
    config={"ops": {op: {"config": {"replay_dead": True}} for op in _POSTING_OPS}},
    description="Send the dead transactions again once their cause is fixed (the posting assets with "
                "replay_dead: true), then reconcile.",
)

writeback_jobs = [activate_projects_job, post_invoices_job, replay_dead_letters_job]
