"""How stale each raw table may get, from how fast its entity changes at the platform.

One table, keyed by contract key, says at what rate each entity changes; a rate says how long
after the last ingestion the asset is overdue (warn) and stale (fail). Every raw asset's
``FreshnessPolicy`` comes from here, so the UI's freshness states and the expectations below
cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from dagster import FreshnessPolicy

from ps_pipelines.lib.contracts.base import EntityContract


@dataclass(frozen=True)
class ChangeRate:
    """How often an entity's records change at the source, and the freshness windows that follow."""

    name: str
    warn_window: timedelta
    fail_window: timedelta

    def summary(self) -> str:
        return f"changes {self.name}: overdue after {_span(self.warn_window)}, stale after {_span(self.fail_window)}"

    def policy(self) -> FreshnessPolicy:
        return FreshnessPolicy.time_window(fail_window=self.fail_window, warn_window=self.warn_window)


def _span(window: timedelta) -> str:
    hours = window.total_seconds() / 3600
    return f"{hours:g} h" if hours < 48 else f"{hours / 24:g} days"


# Work logged and deals moved through the business day: a raw table an hour old misses what
# consultants and sellers just did, and billing and activation act on it.
HOURLY = ChangeRate("hourly in business hours", warn_window=timedelta(hours=1), fail_window=timedelta(hours=3))
# People, rates and master data change a few times a day at most; a day-old copy is still usable.
DAILY = ChangeRate("daily", warn_window=timedelta(hours=24), fail_window=timedelta(hours=48))
# Configuration (legal entities, currencies) changes a few times a year.
WEEKLY = ChangeRate("rarely (configuration)", warn_window=timedelta(days=7), fail_window=timedelta(days=14))

CHANGE_RATES: dict[str, ChangeRate] = {
    "salesforce__accounts": DAILY,
    "salesforce__contacts": DAILY,
    "salesforce__opportunities": HOURLY,
    "salesforce__contracts": HOURLY,  # a signed contract is what activation waits for
    "kantata__projects": HOURLY,  # workspaces are opened by activation
    "kantata__time_entries": HOURLY,
    "kantata__expenses": HOURLY,
    "kantata__milestones": HOURLY,  # a completed milestone is billable at once
    "kantata__users": DAILY,
    "kantata__rate_cards": DAILY,
    "workday__workers": DAILY,
    "workday__job_history": DAILY,
    "workday__cost_rates": DAILY,
    "netsuite__subsidiaries": WEEKLY,
    "netsuite__currencies": WEEKLY,
    "netsuite__exchange_rates": DAILY,
    "netsuite__customers": HOURLY,  # created by activation, read back after posting
    "netsuite__projects": HOURLY,
    "netsuite__invoices": HOURLY,
    "netsuite__invoice_lines": HOURLY,
    # Certinia PSA: the same rhythm as Kantata's entities of the same kind.
    "certinia__projects": HOURLY,
    "certinia__milestones": HOURLY,
    "certinia__timecards": HOURLY,
    "certinia__expenses": HOURLY,
    "certinia__assignments": DAILY,
    "certinia__resources": DAILY,
    "certinia__rate_cards": DAILY,
    "certinia__regions": WEEKLY,
    "certinia__practices": WEEKLY,
    "hubspot__companies": DAILY,
    "hubspot__contacts": DAILY,
    "hubspot__deals": HOURLY,  # a won deal starts activation
    "hubspot__line_items": HOURLY,  # recurring lines are invoiced from the won deal
    "hubspot__products": WEEKLY,  # the service catalogue
    "hubspot__owners": DAILY,
    # Dynamics 365: the same rhythm as NetSuite's entities of the same kind.
    "d365__legal_entities": WEEKLY,
    "d365__ledgers": WEEKLY,
    "d365__currencies": WEEKLY,
    "d365__exchange_rates": DAILY,
    "d365__customers": HOURLY,
    "d365__project_contracts": HOURLY,
    "d365__projects": HOURLY,
    "d365__free_text_invoices": HOURLY,
    "d365__free_text_invoice_lines": HOURLY,
    "d365__invoices": HOURLY,
    "d365__invoice_lines": HOURLY,
}


def change_rate(contract: EntityContract) -> ChangeRate:
    """The entity's change rate; an entity missing from ``CHANGE_RATES`` is a definition error."""
    try:
        return CHANGE_RATES[contract.key]
    except KeyError:
        raise KeyError(f"{contract.key} has no change rate in ps_pipelines/ingest/freshness.py") from None
