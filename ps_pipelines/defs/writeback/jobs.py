"""The write-back jobs the sensors start, and the replay job for dead letters.

A posting job refreshes only what its outbound model reads: the raw tables upstream of it
(incremental ingestion, with their contract checks) and the dbt models between them, then
posts and lists what needs attention. dbt's data tests are left to the main job and to
automation: in the posting path the pandera payload contracts guard every transaction, and
skipping hundreds of tests keeps an event's latency in seconds.

The jobs run in one process: every step is in the one-slot warehouse pool, so steps run one
after another anyway, and a process per step would add seconds of start-up to each.
"""

from collections.abc import Iterable

from dagster import AssetKey, AssetSelection, define_asset_job, in_process_executor

from ps_pipelines.defs.writeback.assets import ACTIVATIONS_KEY, DEAD_LETTERS_KEY, INVOICES_KEY
from ps_pipelines.ingest.factory import raw_asset_key
from ps_pipelines.lib.contracts import CONTRACTS_BY_KEY
from ps_pipelines.lib.writeback.readback import WRITTEN_ENTITIES

ACTIVATE_PROJECTS_JOB = "activate_projects"
POST_INVOICES_JOB = "post_invoices"
REPLAY_DEAD_LETTERS_JOB = "replay_dead_letters"
REFRESH_AFTER_POSTING_JOB = "refresh_after_posting"
# The checks of the dbt models (their data tests), named without the manifest: it is read
# only when the definitions load.
DBT_TESTS = AssetSelection.kind("dbt") - AssetSelection.kind("dbt").without_checks()
ALL_WRITTEN_ENTITIES = sorted({key for keys in WRITTEN_ENTITIES.values() for key in keys})


def posting_selection(posting_key: AssetKey) -> AssetSelection:
    """The posting asset with its checks, what it reads back to the raw tables (with their
    contract checks, which the ingestion step yields), minus the dbt tests; then the dead letters."""
    upstream = AssetSelection.assets(posting_key).upstream()
    return (upstream - DBT_TESTS) | AssetSelection.assets(DEAD_LETTERS_KEY)


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



def read_back_selection(entity_keys: Iterable[str] = ALL_WRITTEN_ENTITIES) -> AssetSelection:
    """The raw tables that postings landed in (``entity_keys``, contract keys) and everything
    downstream of them: the models rebuilt on what the platforms now hold, any posting that
    became due because of it, and the published marts.

    Selected by key prefix (the full key), which selects nothing for a raw table the graph lacks:
    the estate decides which platforms are ingested, and the write-back posts only to those
    (a default estate has no HubSpot deals to read back, a HubSpot one no Salesforce opportunities).
    """
    return AssetSelection.key_prefixes(*(raw_asset_key(CONTRACTS_BY_KEY[key]).path for key in entity_keys)).downstream()


refresh_after_posting_job = define_asset_job(
    REFRESH_AFTER_POSTING_JOB,
    selection=read_back_selection(),
    executor_def=in_process_executor,
    description="After a posting: read back (incrementally) the ERP, PSA and CRM tables the write-back wrote to, "
                "rebuild what is downstream, post what became due, and republish, so the marts show what the "
                "platforms hold after the posting (started by read_back_after_posting; the main job does the same "
                "before it publishes).",
)

writeback_jobs = [activate_projects_job, post_invoices_job, replay_dead_letters_job, refresh_after_posting_job]
