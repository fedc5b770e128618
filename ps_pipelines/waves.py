"""What a main-job pass executes, wave by wave: only what changed, and every posting.

A pass ingests its raw tables, then runs the models whose code or inputs' data changed
(``transform/staleness.py``) and the postings, which always run: they send whatever is due.
A model that is up to date is left out of the run altogether, not skipped inside it: Dagster
skips every step below an output a step did not yield, and a posting below an unchanged
model must still run.

A posting's data version (the ledger's, ``ledger_version``) is only known once it ran, so
what lies below a posting is decided in the next wave: a wave ends at the postings, and the
next one starts from what they left. The models of a wave that are downstream of a rebuilt
model are rebuilt with it (their inputs change with it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from dagster import AssetKey, DagsterInstance

from ps_pipelines.transform.staleness import LatestVersions, topological_order, why_stale

Execute = Callable[[set[AssetKey], str], str]  # (assets, label) -> run id
UpToDate = Callable[[set[AssetKey]], None]  # told of the assets found up to date, as they are found


@dataclass
class WavePlan:
    """The pass's assets and how they behave: ``effects`` (postings) always run once their
    inputs are settled; ``always`` (the raw tables read this pass) run in the first wave. What
    is below either is decided after they ran, from the data versions they reported."""

    keys: set[AssetKey]
    parents: Mapping[AssetKey, Iterable[AssetKey]]
    code_versions: Mapping[AssetKey, str | None]
    effects: set[AssetKey] = field(default_factory=set)
    always: set[AssetKey] = field(default_factory=set)
    rebuild_all: bool = False


def next_wave(plan: WavePlan, settled: set[AssetKey], instance: DagsterInstance) -> tuple[set[AssetKey], set[AssetKey]]:
    """(assets to run now, assets found up to date) among those not settled yet.

    An asset is decided once its parents inside the pass are settled or run in this wave; one
    that must know what a posting or a raw table reports waits for the next wave. Postings and
    the pass's raw tables always run.
    """
    versions = LatestVersions(instance)
    wave: set[AssetKey] = set()
    fresh: set[AssetKey] = set()
    for key in topological_order(plan.keys - settled, plan.parents):
        inside = [parent for parent in plan.parents.get(key, ()) if parent in plan.keys]
        runs_anyway = key in plan.effects or key in plan.always or plan.rebuild_all
        if any(_undecided(plan, parent, settled | fresh, wave, runs_anyway) for parent in inside):
            continue
        if runs_anyway or _must_run(plan, key, inside, wave, versions):
            wave.add(key)
        else:
            fresh.add(key)
    return wave, fresh


def _undecided(plan: WavePlan, parent: AssetKey, settled: set[AssetKey], wave: set[AssetKey],
               runs_anyway: bool) -> bool:
    """Whether ``parent`` keeps its child out of this wave: it is not settled and not in the wave,
    or the child's fate depends on the data version it will report (a posting or a raw table)."""
    if parent in settled:
        return False
    if parent not in wave:
        return True
    return not runs_anyway and (parent in plan.effects or parent in plan.always)


def _must_run(plan: WavePlan, key: AssetKey, inside: list[AssetKey], wave: set[AssetKey],
              versions: LatestVersions) -> bool:
    if any(parent in wave for parent in inside):  # its inputs change with them
        return True
    return why_stale(key, plan.parents.get(key, ()), plan.code_versions.get(key), versions, set()) is not None


def run_in_waves(plan: WavePlan, instance: DagsterInstance, execute: Execute, label: str,
                 on_up_to_date: UpToDate | None = None) -> tuple[list[str], int]:
    """Execute the pass wave by wave; returns the run ids and how many assets were up to date."""
    settled: set[AssetKey] = set()
    run_ids: list[str] = []
    up_to_date = 0
    number = 1
    while settled != plan.keys:
        wave, fresh = next_wave(plan, settled, instance)
        settled |= fresh
        up_to_date += len(fresh)
        if fresh and on_up_to_date is not None:
            on_up_to_date(fresh)
        if wave:
            run_ids.append(execute(wave, f"{label}.{number}"))
            settled |= wave
            number += 1
        elif not fresh:
            raise RuntimeError(f"{label}: cannot order {sorted(k.to_user_string() for k in plan.keys - settled)}")
    return run_ids, up_to_date
