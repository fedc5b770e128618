"""The same work launched two ways, on one machine: ``ps-pipelines run`` (in process) against
a launch from the Dagster UI (a real ``dagster-webserver`` + ``dagster-daemon`` pair, the run
sent through GraphQL ``launchRun`` and followed with ``runOrError`` until it ends).

Like with like: the CLI's main job is several passes (ingest and build, then read back what it
posted, then publish), each a few runs; one ``refresh_all`` launch is one run, and the
daemon's sensors may add runs of their own (read-back after a posting, automation). So the CLI
is reported both in total and for its first pass (the runs labelled ``pass 1.*``, from its
Dagster instance), which is the work of one ``refresh_all`` run; the daemon's own runs are
listed beside the UI figures. Each side starts from a fresh warehouse and its own copy of the
same generated sandbox.

The repository's ``workspace.yaml`` loads ``ps_pipelines.definitions``, whose resources point
at the sandbox on the fixed port 8765, which ``ps-pipelines dev`` of anyone on the machine may
hold: the UI here loads the same ``build_definitions("local", ...)`` from a workspace of its
own, with its own sandbox's URL and a fresh warehouse file.

    .venv/bin/python bench/bench_ui_launch.py --scale 1
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import requests

from ps_pipelines.local_sandbox import SandboxProcess, free_port

REPO = Path(__file__).resolve().parents[1]
LOCATION = "ps_pipelines"
REPOSITORY = "__repository__"
ASSET_JOB = "__ASSET_JOB"  # the job the UI launches when assets are materialized from the graph
GROUP = "psa_kantata"
SINGLE_ASSET = ["raw", "kantata", "time_entries"]
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}

LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}"""
RUN = """
query Run($runId: ID!) {
  runOrError(runId: $runId) { __typename ... on Run { status creationTime startTime endTime } }
}"""
RUNS = """
query Runs { runsOrError(limit: 200) { ... on Runs { results { runId jobName status creationTime startTime endTime
  tags { key value } } } } }"""
LOCATION_LOADED = """
query { workspaceOrError { ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { __typename ... on PythonError { message } } } } } }"""


@dataclass
class Figure:
    label: str
    wall: float
    cpu: float
    note: str = ""

    def line(self) -> str:
        return f"  {self.label:<48} wall {self.wall:7.1f}s  cpu {self.cpu:7.1f}s  {self.note}"


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def tree_cpu(roots: list[psutil.Process]) -> float:
    """CPU seconds of live processes under ``roots`` and of the descendants they have reaped."""
    total = 0.0
    seen: set[int] = set()
    for root in roots:
        with contextlib.suppress(psutil.NoSuchProcess):
            for member in [root, *root.children(recursive=True)]:
                if member.pid in seen:
                    continue
                seen.add(member.pid)
                with contextlib.suppress(psutil.NoSuchProcess):
                    t = member.cpu_times()
                    total += t.user + t.system + t.children_user + t.children_system
    return total


# -- the CLI -----------------------------------------------------------------------------------

def run_cli(home: Path, sandbox_url: str) -> tuple[Figure, Figure]:
    """``ps-pipelines run`` in total, and its first pass (the runs of one refresh_all's work)."""
    command = [sys.executable, "-m", "ps_pipelines.cli", "run", "--home", str(home), "--sandbox-url", sandbox_url]
    cpu, started = children_cpu(), time.perf_counter()
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - started, children_cpu() - cpu
    if result.returncode != 0:
        print(result.stdout[-3000:], result.stderr[-3000:], sep="\n")
    status = "succeeded" if result.returncode == 0 else f"FAILED ({result.returncode})"
    passes = run_durations_by_pass(home / "dagster_home")
    total_runs = sum(len(v) for v in passes.values())
    first = passes.get("pass 1", [])
    everything = Figure("CLI ps-pipelines run (all passes)", wall, cpu, f"{status}, {total_runs} runs")
    pass_one = Figure("CLI pass 1 only (runs' own durations)", sum(first), float("nan"),
                      f"{len(first)} runs; passes: " + ", ".join(f"{k} {sum(v):.0f}s" for k, v in passes.items()))
    return everything, pass_one


def run_durations_by_pass(dagster_home: Path) -> dict[str, list[float]]:
    """Seconds of each run of the main job, by pass (tag ``ps/main_job_pass`` = ``pass 2.1``...)."""
    code = ("import json,os;from dagster import DagsterInstance;i=DagsterInstance.get();"
            "print(json.dumps([[r.dagster_run.tags.get('ps/main_job_pass',''),r.end_time-r.start_time]"
            " for r in i.get_run_records() if r.start_time and r.end_time]))")
    import json

    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "DAGSTER_HOME": str(dagster_home)},
                         capture_output=True, text=True, check=True).stdout
    passes: dict[str, list[float]] = {}
    for label, seconds in json.loads(out):
        passes.setdefault(label.rsplit(".", 1)[0], []).append(seconds)
    return dict(sorted(passes.items()))


# -- the UI ------------------------------------------------------------------------------------

class Ui:
    """dagster-webserver + dagster-daemon on the repository's workspace, in a fresh folder."""

    def __init__(self, folder: Path, sandbox_url: str) -> None:
        from ps_pipelines.dagster_home import prepare_dagster_home

        self.folder = folder
        self.workspace = write_workspace(folder, sandbox_url)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/graphql"
        previous = os.environ.get("DAGSTER_HOME")
        self.env = {**os.environ, "DAGSTER_HOME": str(prepare_dagster_home(folder))}
        if previous is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = previous
        self.processes: list[subprocess.Popen] = []

    @contextlib.contextmanager
    def running(self) -> Iterator[Ui]:
        bindir = Path(sys.executable).parent
        workspace = str(self.workspace)
        log = (self.folder / "ui.log").open("w")
        try:
            self.processes = [
                subprocess.Popen([str(bindir / "dagster-webserver"), "-w", workspace, "-h", "127.0.0.1",
                                  "-p", str(self.port)], cwd=self.folder, env=self.env, stdout=log, stderr=log),
                subprocess.Popen([str(bindir / "dagster-daemon"), "run", "-w", workspace], cwd=self.folder,
                                 env=self.env, stdout=log, stderr=log),
            ]
            self.wait_until_loaded()
            yield self
        finally:
            stop(self.processes)
            log.close()

    def query(self, text: str, variables: dict | None = None) -> dict:
        response = requests.post(self.url, json={"query": text, "variables": variables or {}}, timeout=900)
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise RuntimeError(body["errors"])
        return body["data"]

    def wait_until_loaded(self, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self.processes):
                raise RuntimeError(f"webserver or daemon exited; see {self.folder / 'ui.log'}")
            with contextlib.suppress(requests.RequestException, RuntimeError, KeyError, TypeError):
                entries = self.query(LOCATION_LOADED)["workspaceOrError"]["locationEntries"]
                if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                    error = entries[0]["locationOrLoadError"]
                    if error["__typename"] == "PythonError":
                        raise SystemExit(f"code location failed to load: {error['message']}")
                    return
            time.sleep(1)
        raise TimeoutError("the code location did not load")

    def launch(self, job: str, assets: list[list[str]] | None = None) -> str:
        selector = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "jobName": job}
        if assets is not None:
            selector["assetSelection"] = [{"path": path} for path in assets]
        answer = self.query(LAUNCH, {"params": {"selector": selector, "runConfigData": {}}})["launchRun"]
        if answer["__typename"] != "LaunchRunSuccess":
            raise RuntimeError(answer)
        return answer["run"]["runId"]

    def wait(self, run_id: str) -> dict:
        while True:
            run = self.query(RUN, {"runId": run_id})["runOrError"]
            if run.get("status") in FINISHED:
                return run
            time.sleep(0.5)

    def wait_for_quiet(self, timeout: float = 1200) -> None:
        """Until no run is queued or going (the daemon's sensors may have started some)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(r["status"] in FINISHED for r in self.runs()):
                return
            time.sleep(2)

    def runs(self) -> list[dict]:
        return self.query(RUNS)["runsOrError"]["results"]

    def timed(self, label: str, job: str, assets: list[list[str]] | None = None) -> Figure:
        before = {r["runId"] for r in self.runs()}
        roots = [psutil.Process(p.pid) for p in self.processes]
        cpu, started = tree_cpu(roots), time.perf_counter()
        run_id = self.launch(job, assets)
        run = self.wait(run_id)
        wall, cpu = time.perf_counter() - started, tree_cpu(roots) - cpu
        queued = (run["startTime"] or run["creationTime"]) - run["creationTime"]
        executing = (run["endTime"] or 0) - (run["startTime"] or 0)
        others = [f"{r['jobName']}:{r['status']}" for r in self.runs()
                  if r["runId"] not in before and r["runId"] != run_id]
        note = (f"{run['status']}; queued {queued:.1f}s, run {executing:.1f}s"
                + (f"; daemon started meanwhile: {', '.join(others)}" if others else ""))
        return Figure(label, wall, cpu, note)


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(psutil.NoSuchProcess):
                for child in psutil.Process(process.pid).children(recursive=True):
                    child.kill()
            process.kill()
            process.wait()


def write_workspace(folder: Path, sandbox_url: str) -> Path:
    module = folder / "bench_definitions.py"
    module.write_text("from ps_pipelines.definitions import build_definitions\n\n"
                      f"defs = build_definitions('local', sandbox_url={sandbox_url!r}, "
                      f"warehouse_path={str(folder / 'warehouse.duckdb')!r})\n")
    workspace = folder / "workspace.yaml"
    workspace.write_text(f"load_from:\n  - python_file:\n      relative_path: {module.name}\n"
                         f"      location_name: {LOCATION}\n")
    return workspace


def group_keys(group: str) -> list[list[str]]:
    from ps_pipelines.definitions import defs

    graph = defs().resolve_asset_graph()
    return sorted(k.path for k in graph.get_all_asset_keys()
                  if graph.get(k).group_name == group and graph.get(k).is_executable)


def generate_sandbox(folder: Path, scale: float, seed: int) -> Path:
    state = folder / "template.sqlite"
    with SandboxProcess(state, scale=scale, seed=seed):
        pass
    return state


def copy_state(template: Path, target: Path) -> Path:
    shutil.copyfile(template, target)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--skip-cli", action="store_true", help="Time only the UI side.")
    parser.add_argument("--keep", action="store_true", help="Keep the work folder (Dagster homes, logs) to inspect.")
    args = parser.parse_args()

    from ps_pipelines.transform.project import prepare_manifest

    prepare_manifest()
    work = Path(tempfile.mkdtemp(prefix="ps-bench-ui-"))
    figures: list[Figure] = []
    try:
        template = generate_sandbox(work, args.scale, args.seed)
        if not args.skip_cli:
            with SandboxProcess(copy_state(template, work / "cli.sqlite"), scale=args.scale, seed=args.seed) as sb:
                figures += run_cli(work / "cli", sb.url)
            for figure in figures:
                print(figure.line(), flush=True)
        ui_folder = work / "ui"
        ui_folder.mkdir()
        with SandboxProcess(copy_state(template, work / "ui.sqlite"), scale=args.scale, seed=args.seed) as sb, \
                Ui(ui_folder, sb.url).running() as ui:
            for label, job, assets in [
                ("UI launchRun refresh_all (one run)", "refresh_all", None),
                (f"UI launchRun group {GROUP}", ASSET_JOB, group_keys(GROUP)),
                (f"UI launchRun asset {'/'.join(SINGLE_ASSET)}", ASSET_JOB, [SINGLE_ASSET]),
            ]:
                ui.wait_for_quiet()
                figures.append(ui.timed(label, job, assets))
                print(figures[-1].line(), flush=True)
    finally:
        if args.keep:
            print(f"work folder kept: {work}", flush=True)
        else:
            shutil.rmtree(work, ignore_errors=True)
    by_label = {f.label: f for f in figures}
    ui_all = by_label.get("UI launchRun refresh_all (one run)")
    print(f"\nscale {args.scale:g}, {os.cpu_count()} cores; CPU of the UI side = webserver, daemon, code servers, "
          "run workers, dbt (the sandbox is not counted on either side)")
    for figure in figures:
        print(figure.line())
    cli_all = by_label.get("CLI ps-pipelines run (all passes)")
    cli_one = by_label.get("CLI pass 1 only (runs' own durations)")
    if ui_all and cli_all and cli_one:
        print(f"ratio UI refresh_all / CLI all passes: {ui_all.wall / cli_all.wall:.2f}")
        print(f"ratio UI refresh_all / CLI pass 1 (same work, one pass): {ui_all.wall / cli_one.wall:.2f}")


if __name__ == "__main__":
    main()
