"""The write-back as assets: post what the outbound models say is missing, then show what failed.

Both posting assets read a dbt outbound model, upsert the desired transactions into the outbox
ledger (``ops.outbox``) and post what is due with at most ``max_in_flight`` calls in flight
(``lib/writeback``). The ledger is its own DuckDB file (``ledger_store``), which the event path
posts to as well; a posting holds the warehouse (to read its outbound model and refresh the
warehouse's mirror of the ledger for the dbt models downstream) and, inside it, the ledger.
Whatever only reads or keeps the ledger (the dead letters, the checks) takes the ledger alone:
the warehouse's mirror may lag the event path's postings.
"""

from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    DataVersion,
    MaterializeResult,
    MetadataValue,
    asset,
    asset_check,
)

from ps_pipelines.defs.writeback.config import BillingConfig, PostingConfig
from ps_pipelines.estate import DEFAULT_ESTATE, Estate
from ps_pipelines.lib.dbt_project import dbt_var
from ps_pipelines.lib.warehouse.lock import WAREHOUSE_POOL
from ps_pipelines.lib.writeback.activation import ACTIVATION_FLOW, activation_systems
from ps_pipelines.lib.writeback.flows import run_activation, run_billing
from ps_pipelines.lib.writeback.ledger_store import posting_ledger
from ps_pipelines.lib.writeback.outbox import (
    NEEDS_ATTENTION,
    ledger_frame,
    ledger_version,
    waiting_frame,
)
from ps_pipelines.lib.writeback.payloads import BILLING_FLOW
from ps_pipelines.lib.writeback.poster import PostSummary
from ps_pipelines.lib.writeback.readback import attempted_record_types
from ps_pipelines.lib.writeback.reconcile import ERP_NAMES, reconcile_invoices, sweep_duplicates
from ps_pipelines.lib.writeback.senders import Targets
from ps_pipelines.resources import WarehouseResource

WRITEBACK_GROUP = "writeback"
# Each posting sits in the Dagster group of its flow, with the outbound model it posts and the
# ledger read that follows it (dbt meta.dagster.group), so the group graph has no cycle:
# project_activation -> billing (billing falls back on the ERP ids the activations made).
ACTIVATION_GROUP = "project_activation"
BILLING_GROUP = "billing"
WRITEBACK_OWNER = "team:finance-systems"
ACTIVATIONS_KEY = AssetKey(["writeback", "erp_project_activations"])
INVOICES_KEY = AssetKey(["writeback", "erp_invoices"])
DEAD_LETTERS_KEY = AssetKey(["writeback", "dead_letters"])
ACTIVATION_REQUESTS_KEY = AssetKey(["outbound", "erp_project_activation_requests"])
BILLING_TRANSACTIONS_KEY = AssetKey(["outbound", "erp_billing_transactions"])
RECONCILIATION_CHECK = "reconciled_with_erp"
DUPLICATES_CHECK = "no_duplicate_records"
# Metadata of a posting: the kinds of write it attempted (``netsuite:invoice`` ...), which say
# what must be read back from the platforms before the marts are current again.
WRITTEN_RECORD_TYPES = "written_record_types"
# What the dead-letter asset lists: rows that will not reach the target without someone acting.
ATTENTION_STATES = NEEDS_ATTENTION
WAITING = "waiting"  # not a ledger state: an unsent row held by an earlier attempt's lease
LISTED_STATES = (*ATTENTION_STATES, WAITING)
PREVIEW_ROWS = 50


# The billing limits (dbt vars, enforced by outbound.erp_billing_transactions): shown on every
# posting, so whoever reads an `invalid` invoice sees the limits it was held against.
BILLING_LIMIT_VARS = ("billing_max_hourly_rate", "billing_max_hours_per_entry", "billing_max_hours_per_worker_day",
                      "billing_max_line_amount", "billing_max_invoice_amount", "billing_max_rate_card_multiple")


def billing_limits() -> dict[str, float]:
    return {name: float(dbt_var(name)) for name in BILLING_LIMIT_VARS}


def _result(context: AssetExecutionContext, summary: PostSummary, written: list[str], ledger: str,
            extra: dict[str, object] | None = None) -> MaterializeResult:
    """The posting's materialization; its data version is the ledger's (``ledger_version``), so
    the models that read the ledger rebuild only after a posting changed it."""
    metadata = summary.as_metadata()
    failing = metadata.pop("failing")
    waiting_for = metadata.pop("waiting_for")
    enqueue = metadata.pop("enqueue") or {}
    context.log.info(
        f"{summary.flow}: posted {summary.posted}, updated {summary.updated}, unchanged {summary.unchanged}, "
        f"invalid {summary.invalid}, failed {summary.failed_retryable}, dead {summary.dead}, "
        f"blocked {summary.blocked}, waiting {summary.waiting} in {summary.seconds:.1f}s "
        f"({summary.posted_per_second:.1f}/s)")
    for key, reason in list({**failing, **waiting_for}.items())[:PREVIEW_ROWS]:
        context.log.warning(f"{key}: {reason}")
    return MaterializeResult(data_version=DataVersion(ledger), metadata={
        **{name: value for name, value in metadata.items() if name not in ("flow", "run_id")},
        "enqueued": MetadataValue.json(enqueue),
        "failing": MetadataValue.json(dict(list(failing.items())[:PREVIEW_ROWS])),
        "failing_count": len(failing),
        "waiting_for": MetadataValue.json(dict(list(waiting_for.items())[:PREVIEW_ROWS])),
        WRITTEN_RECORD_TYPES: MetadataValue.json(written),
        **(extra or {}),
    })


def erp_systems(estate: Estate) -> tuple[str, ...]:
    """The estate's ERP(s): each a resource key and a ``Targets`` field; an outbound row's own
    ``erp_platform`` picks among them."""
    return estate.for_role("erp")


def build_billing_posting(estate: Estate = DEFAULT_ESTATE) -> tuple[AssetsDefinition, AssetChecksDefinition]:
    """The invoice posting and its reconciliation check, on ``estate``'s ERP(s) (resources of
    the same names): a Dynamics 365 estate needs no NetSuite settings."""
    erps = erp_systems(estate)
    names = " and ".join(ERP_NAMES.get(erp, erp) for erp in erps)

    @asset(
        key=INVOICES_KEY,
        deps=[BILLING_TRANSACTIONS_KEY],
        group_name=BILLING_GROUP,
        owners=[WRITEBACK_OWNER],
        kinds=set(erps),
        pool=WAREHOUSE_POOL,
        required_resource_keys={"warehouse", *erps},
        description=f"Invoices (header and lines) posted to {names} (NetSuite: upserted by external id; Dynamics "
                    "365: a free-text invoice, header and lines in one change set), one per project, legal "
                    "entity, currency and billing period, from approved time, approved expenses and completed "
                    "milestones. A change after posting is posted as a new version of the same invoice. An invoice "
                    "with a line whose source record's newest version is in quarantine, or beyond a billing limit "
                    "(dbt vars billing_max_*) or the rate-card anomaly rule, waits as `invalid` with the rule.",
    )
    def erp_invoices(context: AssetExecutionContext, config: BillingConfig) -> MaterializeResult:
        targets = activation_targets(context.resources, erps)
        warehouse: WarehouseResource = context.resources.warehouse
        with warehouse.warehouse().connect() as con, posting_ledger(con, warehouse.ledger()) as ledger:
            summary = run_billing(con, targets, run_id=context.run_id, closed_through=config.closed_through_date(),
                                  settings=config.settings(), ledger=ledger)
            written, version = attempted_record_types(ledger, context.run_id), ledger_version(ledger, BILLING_FLOW)
        limits = {**billing_limits(), "currency": dbt_var("reporting_currency")}
        return _result(context, summary, written, version, {"billing_limits": MetadataValue.json(limits)})

    @asset_check(
        asset=INVOICES_KEY,
        name=RECONCILIATION_CHECK,
        required_resource_keys={"warehouse", *erps},
        description=f"The ledger and {names} agree from the billing go-live (dbt var billing_start_date): count and "
                    "total per subsidiary, currency and period; no invoice with our external-id prefix unknown to "
                    "the ledger; no posted invoice missing in the ERP; each invoice's total and lines as posted.",
    )
    def reconciled_with_erp(context: AssetCheckExecutionContext) -> AssetCheckResult:
        # Invoices before the billing go-live were keyed by hand in the ERP: not the ledger's.
        go_live = date.fromisoformat(str(dbt_var("billing_start_date")))
        warehouse: WarehouseResource = context.resources.warehouse
        results = []
        # The ledger stays held while the ERP is read: an invoice posted in between would show as
        # unknown to the ledger.
        with warehouse.ledger().connect() as ledger:
            for erp in erps:
                results.append(reconcile_invoices(ledger, getattr(context.resources, erp).client(), from_date=go_live))
        passed = all(result.passed for result in results)
        if not passed:
            context.log.error("reconciliation failed: " + " | ".join(r.describe() for r in results if not r.passed))
        return AssetCheckResult(
            passed=passed,
            severity=AssetCheckSeverity.ERROR,
            description=" | ".join(result.describe() for result in results),
            metadata={
                "ledger_invoices": sum(result.ledger_invoices for result in results),
                "erp_invoices": sum(result.erp_invoices for result in results),
                "differences": MetadataValue.json(results[0].as_metadata() if len(results) == 1
                                                  else [result.as_metadata() for result in results]),
            },
        )

    return erp_invoices, reconciled_with_erp


# -- project activation: its targets are the estate's ------------------------------------------
# Dagster kinds shown for a target system (Certinia is a Salesforce org); an asset shows at most three.
_KINDS = {"certinia": "salesforce"}
_MAX_KINDS = 3


def activation_targets(resources: Any, systems: tuple[str, ...]) -> Targets:
    return Targets(**{system: getattr(resources, system).client() for system in systems})


def build_activation_posting(estate: Estate = DEFAULT_ESTATE) -> tuple[AssetsDefinition, AssetChecksDefinition]:
    """The activation posting and its duplicate check, on ``estate``'s target systems (resources
    of the same names; the default estate's are netsuite, kantata and salesforce)."""
    systems = activation_systems(estate)
    kinds = list(dict.fromkeys(_KINDS.get(system, system) for system in systems))[:_MAX_KINDS]

    @asset(
        key=ACTIVATIONS_KEY,
        deps=[ACTIVATION_REQUESTS_KEY],
        group_name=ACTIVATION_GROUP,
        owners=[WRITEBACK_OWNER],
        kinds=set(kinds),
        pool=WAREHOUSE_POOL,
        required_resource_keys={"warehouse", *systems},
        description="Won deals set up downstream: the ERP customer and project (NetSuite upsert by external id), "
                    "the PSA project when missing (a Kantata workspace, or a Certinia project upserted by its "
                    "deal id), and the ERP project id and activation status written back to the CRM (Salesforce "
                    "opportunity or HubSpot deal), each deal on the platforms its request row names. A deal that "
                    "fails validation waits in the ledger as `invalid` with its reasons (and its CRM status says "
                    "so) until its data changes.",
    )
    def erp_project_activations(context: AssetExecutionContext, config: PostingConfig) -> MaterializeResult:
        targets = activation_targets(context.resources, systems)
        warehouse: WarehouseResource = context.resources.warehouse
        with warehouse.warehouse().connect() as con, posting_ledger(con, warehouse.ledger()) as ledger:
            summary = run_activation(con, targets, run_id=context.run_id, settings=config.settings(), ledger=ledger)
            written, version = attempted_record_types(ledger, context.run_id), ledger_version(ledger, ACTIVATION_FLOW)
        return _result(context, summary, written, version)

    @asset_check(
        asset=ACTIVATIONS_KEY,
        name=DUPLICATES_CHECK,
        required_resource_keys={"warehouse", *systems},
        description="No platform record carries a deal's reference besides the one the ledger posted (e.g. two "
                    "Kantata workspaces for one deal: a create that landed after a rerun had created its own; a "
                    "Certinia project is upserted by its unique deal id field, so it cannot have one). Each one "
                    "found is resolved by policy: the ledger's record is kept, the other is flagged in the platform "
                    "(a workspace is marked and archived, never deleted) and recorded in `ops.duplicate_records`. "
                    "Fails (warning) when it found new ones, (error) when one could not be resolved.",
    )
    def no_duplicate_records(context: AssetCheckExecutionContext) -> AssetCheckResult:
        targets = activation_targets(context.resources, systems)
        with context.resources.warehouse.ledger().connect() as ledger:
            sweep = sweep_duplicates(ledger, targets, run_id=context.op_execution_context.run_id,
                                     now=datetime.now(UTC))
        if not sweep.passed:
            context.log.error(f"duplicate records: {sweep.describe()}")
        severity = AssetCheckSeverity.ERROR if (sweep.unresolved or sweep.unconfirmed) else AssetCheckSeverity.WARN
        return AssetCheckResult(
            passed=sweep.passed,
            severity=severity,
            description=sweep.describe(),
            metadata={
                "checked": sweep.checked,
                "new_duplicates": len(sweep.new),
                "duplicates": MetadataValue.json(sweep.as_metadata()["duplicates"]),
                "unconfirmed": MetadataValue.json(sweep.unconfirmed),
            },
        )

    return erp_project_activations, no_duplicate_records


@asset(
    key=DEAD_LETTERS_KEY,
    deps=[ACTIVATIONS_KEY, INVOICES_KEY],
    group_name=WRITEBACK_GROUP,
    owners=[WRITEBACK_OWNER],
    kinds={"duckdb"},
    description="Transactions that need someone: `dead` (the target rejected them, or retries ran out; replay "
                "with `replay_dead: true` once fixed), `invalid` (failed our validation, never sent; they come "
                "back by themselves when their data changes) and `failed_retryable` (retried by the next run). "
                "Also the creates waiting for an earlier attempt's lease (`waiting`: a killed or timed-out "
                "create may still land; the first run after the lease looks it up before creating). "
                "Query `ops.outbox` for the full ledger and `ops.outbox_attempts` for every attempt, in the "
                "ledger's file beside the warehouse (`<warehouse>.ledger.duckdb`; the warehouse mirrors it as of "
                "its last batch posting).",
)
def dead_letters(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    with warehouse.ledger().connect() as ledger:
        frame = ledger_frame(ledger, states=ATTENTION_STATES)
        waiting = waiting_frame(ledger)
    # A waiting row is listed once, as waiting, whatever its state (pending or failed_retryable).
    frame = frame[~frame["outbox_key"].isin(waiting["outbox_key"])]
    waiting = waiting.assign(state=WAITING)
    frame = waiting if frame.empty else frame if waiting.empty else pd.concat([frame, waiting], ignore_index=True)
    columns = ["outbox_key", "flow", "state", "attempts", "last_error", "updated_at", "last_run_id"]
    preview = frame[columns].head(PREVIEW_ROWS)
    by_state = frame.groupby("state").size().to_dict() if len(frame) else {}
    if len(frame):
        context.log.warning(f"{len(frame)} transaction(s) need attention: {by_state}")
    return MaterializeResult(metadata={
        "dagster/row_count": len(frame),
        "by_state": MetadataValue.json({state: int(by_state.get(state, 0)) for state in LISTED_STATES}),
        "by_flow": MetadataValue.json({k: int(v) for k, v in frame.groupby("flow").size().items()}
                                      if len(frame) else {}),
        "preview": MetadataValue.md(preview.to_markdown(index=False) if len(preview) else "nothing needs attention"),
    })
