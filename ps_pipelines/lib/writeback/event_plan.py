"""The outbound models' SQL, compiled once by dbt, run without dbt on the event path.

An event must reach the ERP in seconds, and dbt cannot start, parse and build forty models in
that time. Yet the mapping from source records to ERP transactions must have one definition:
the dbt models (staging -> intermediate -> marts -> outbound). So the event path asks dbt once
(per change of the project) to compile the outbound models and their ancestors against the
event store, keeps that SQL in a plan file, and runs the plan statement by statement in DuckDB:
about one second for the whole chain at scale 1. The batch path builds the same SQL with dbt.

Compiled with ``--full-refresh`` so incremental models are their complete ``select``; enforced
contracts are kept by casting to the declared types, as dbt's contract DDL does. A plan is
compiled for one estate (``PS_ESTATE`` pinned for dbt, and part of the fingerprint): its
staging reads only the declared platforms' raw tables, as the batch path's manifest does.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from ps_pipelines.estate import DEFAULT_ESTATE, ESTATE_ENV, Estate
from ps_pipelines.lib.dbt_project import DBT_PROJECT_DIR, DBT_TARGET, dbt_executable

ACTIVATION_MODEL = "erp_project_activation_requests"
BILLING_MODEL = "erp_billing_transactions"
OUTBOUND_MODELS = (ACTIVATION_MODEL, BILLING_MODEL)
PLAN_VERSION = 1
PLAN_FILE = "event_plan.json"
# What dbt reads to compile: a change to any of them makes a new plan.
_PLAN_INPUTS = ("dbt_project.yml", "profiles.yml", "models", "macros", "seeds")


class PlanCompileError(RuntimeError):
    pass


@dataclass(frozen=True)
class PlanStep:
    """One model: the relation it creates and the compiled ``select`` that fills it."""

    name: str
    relation: str
    materialized: str
    sql: str
    contract: tuple[tuple[str, str], ...] = ()  # (column, data type) of an enforced contract

    def statement(self) -> str:
        if self.materialized == "view":
            return f"CREATE OR REPLACE VIEW {self.relation} AS {self.sql}"
        if not self.contract:
            return f"CREATE OR REPLACE TABLE {self.relation} AS {self.sql}"
        columns = ", ".join(f'CAST("{name}" AS {data_type}) AS "{name}"' for name, data_type in self.contract)
        return f"CREATE OR REPLACE TABLE {self.relation} AS SELECT {columns} FROM ({self.sql}) AS compiled"


@dataclass(frozen=True)
class EventPlan:
    """Per outbound model: its ancestors in build order, and the raw tables they read."""

    fingerprint: str
    steps: dict[str, tuple[PlanStep, ...]]
    sources: dict[str, tuple[str, ...]]  # outbound model -> raw tables (schema.table)
    seeds: tuple[str, ...] = ()  # relations dbt seeded into the database when it compiled the plan

    def run(self, con: duckdb.DuckDBPyConnection, model: str) -> None:
        """Build ``model`` and its ancestors in ``con`` (the database the plan was compiled for)."""
        for step in self.steps[model]:
            schema = step.relation.rsplit(".", 2)[-2]
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            con.execute(step.statement())

    def to_json(self) -> dict:
        return {"version": PLAN_VERSION, "fingerprint": self.fingerprint,
                "steps": {m: [vars(s) | {"contract": list(s.contract)} for s in steps]
                          for m, steps in self.steps.items()},
                "sources": {m: list(tables) for m, tables in self.sources.items()}, "seeds": list(self.seeds)}

    @classmethod
    def from_json(cls, data: Mapping) -> EventPlan:
        steps = {m: tuple(PlanStep(**{**s, "contract": tuple(tuple(c) for c in s["contract"])}) for s in items)
                 for m, items in data["steps"].items()}
        return cls(data["fingerprint"], steps, {m: tuple(t) for m, t in data["sources"].items()},
                   tuple(data.get("seeds", ())))


def project_fingerprint(project_dir: Path = DBT_PROJECT_DIR, estate: Estate = DEFAULT_ESTATE) -> str:
    """A hash of every file dbt compiles from (content, not mtime: a checkout must not recompile)
    and of the estate it compiles for."""
    digest = hashlib.sha256(str(PLAN_VERSION).encode())
    if estate != DEFAULT_ESTATE:  # the default estate's plans keep their fingerprint
        digest.update(f"estate={estate}".encode())
    for name in _PLAN_INPUTS:
        path = project_dir / name
        files = [path] if path.is_file() else sorted(path.rglob("*")) if path.is_dir() else []
        for file in (f for f in files if f.is_file()):
            digest.update(str(file.relative_to(project_dir)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def stored_plan(database: Path, plan_dir: Path, project_dir: Path = DBT_PROJECT_DIR,
                estate: Estate = DEFAULT_ESTATE) -> EventPlan | None:
    """The stored plan when it was compiled from the project as it is and ``database`` has its
    seeds; None when it must be compiled again. The caller holds ``database``'s lock."""
    stored = plan_dir / PLAN_FILE
    if not stored.exists():
        return None
    data = json.loads(stored.read_text())
    if data.get("version") != PLAN_VERSION or data.get("fingerprint") != project_fingerprint(project_dir, estate):
        return None
    plan = EventPlan.from_json(data)
    return plan if _has_relations(database, plan.seeds) else None


def load_or_compile(database: Path, plan_dir: Path, project_dir: Path = DBT_PROJECT_DIR,
                    estate: Estate = DEFAULT_ESTATE) -> EventPlan:
    """The plan for ``database``, compiled (and the seeds loaded) when the project changed since
    the stored plan, or the database lacks a seed.

    The caller holds ``database``'s lock and has no connection open to it: dbt opens the file."""
    plan = stored_plan(database, plan_dir, project_dir, estate)
    if plan is not None:
        return plan
    fingerprint = project_fingerprint(project_dir, estate)
    plan = build_plan(compile_manifest(database, plan_dir / "dbt_target", project_dir, estate), fingerprint)
    plan_dir.mkdir(parents=True, exist_ok=True)
    stored = plan_dir / PLAN_FILE
    temporary = stored.with_suffix(".tmp")
    temporary.write_text(json.dumps(plan.to_json()))
    temporary.replace(stored)
    return plan


def compile_manifest(database: Path, target_path: Path, project_dir: Path = DBT_PROJECT_DIR,
                     estate: Estate = DEFAULT_ESTATE) -> dict:
    """``dbt seed`` and ``dbt compile`` of the outbound models and their ancestors against
    ``database`` for ``estate`` (the seeds are data: loaded by dbt, so their types are dbt's)."""
    for command in ("seed", "compile"):
        _dbt(command, database, target_path, project_dir, estate)
    return json.loads((target_path / "manifest.json").read_text())


def _dbt(command: str, database: Path, target_path: Path, project_dir: Path, estate: Estate) -> None:
    selection = [f"+{model}" for model in OUTBOUND_MODELS]
    arguments = [dbt_executable(), command, "--quiet", "--full-refresh", "--select", *selection,
                 "--project-dir", str(project_dir), "--profiles-dir", str(project_dir), "--target", DBT_TARGET,
                 "--target-path", str(target_path)]
    # The estate pinned, like the database: the caller's environment never decides what is compiled.
    environment = {**os.environ, "PS_WAREHOUSE_PATH": str(database), "PS_DBT_TARGET": DBT_TARGET,
                   ESTATE_ENV: str(estate)}
    done = subprocess.run(arguments, env=environment, cwd=project_dir, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-20:])
        raise PlanCompileError(f"dbt {command} of the outbound models failed (exit {done.returncode}):\n{tail}")


def _has_relations(database: Path, relations: Sequence[str]) -> bool:
    with duckdb.connect(str(database)) as con:
        present = {f"{schema}.{name}" for schema, name in con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables").fetchall()}
    return all(".".join(relation.replace('"', "").split(".")[-2:]) in present for relation in relations)


def build_plan(manifest: Mapping, fingerprint: str) -> EventPlan:
    nodes, sources = manifest["nodes"], manifest["sources"]
    by_name = {node["name"]: uid for uid, node in nodes.items() if node["resource_type"] == "model"}
    steps: dict[str, tuple[PlanStep, ...]] = {}
    raw: dict[str, tuple[str, ...]] = {}
    for model in OUTBOUND_MODELS:
        order = _build_order(nodes, by_name[model])
        steps[model] = tuple(_step(nodes[uid]) for uid in order if _materializes(nodes[uid]))
        used = {dep for uid in order for dep in nodes[uid]["depends_on"].get("nodes", []) if dep in sources}
        raw[model] = tuple(sorted(f"{sources[uid]['schema']}.{sources[uid]['name']}" for uid in used))
    ancestors = {uid for model in OUTBOUND_MODELS for uid in _build_order(nodes, by_name[model])}
    seeds = sorted(nodes[uid]["relation_name"] for uid in ancestors if nodes[uid]["resource_type"] == "seed")
    return EventPlan(fingerprint, steps, raw, tuple(seeds))


def _build_order(nodes: Mapping, root: str) -> list[str]:
    order: list[str] = []
    seen: set[str] = set()

    def visit(uid: str) -> None:
        if uid in seen:
            return
        seen.add(uid)
        for dependency in _model_dependencies(nodes, uid):
            visit(dependency)
        order.append(uid)

    visit(root)
    return order


def _model_dependencies(nodes: Mapping, uid: str) -> Iterable[str]:
    return sorted(d for d in nodes[uid].get("depends_on", {}).get("nodes", [])
                  if nodes.get(d, {}).get("resource_type") in ("model", "seed"))


def _materializes(node: Mapping) -> bool:
    # An ephemeral model has no relation: dbt inlined it into its dependents' compiled SQL.
    # A seed is loaded by dbt when the plan is compiled.
    return node["resource_type"] == "model" and node["config"]["materialized"] != "ephemeral"


def _step(node: Mapping) -> PlanStep:
    if not node.get("compiled_code"):
        raise PlanCompileError(f"model {node['name']} has no compiled SQL in the manifest")
    contract: Sequence[tuple[str, str]] = ()
    if node["config"].get("contract", {}).get("enforced"):
        contract = tuple((name, column["data_type"]) for name, column in node["columns"].items())
    materialized = "view" if node["config"]["materialized"] == "view" else "table"
    return PlanStep(node["name"], node["relation_name"], materialized, node["compiled_code"], tuple(contract))
