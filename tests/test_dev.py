"""``ps-pipelines dev``: ports checked before anything starts, its code location on its own
sandbox, and nothing left running once it is stopped."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import requests

from ps_pipelines.events import EVENTS_LOCATION
from ps_pipelines.local_sandbox import free_port, port_is_free
from ps_pipelines.resources import SANDBOX_URL_ENV, WAREHOUSE_PATH_ENV

# Generous: the sandbox generates its data and the code server imports the whole graph, on a
# shared machine.
STARTUP_TIMEOUT_SECONDS = 600
STOP_TIMEOUT_SECONDS = 300
RESOURCE_QUERY = """query ($name: String!) { topLevelResourceDetailsOrError(resourceSelector: {
    repositoryLocationName: "ps_pipelines", repositoryName: "__repository__", resourceName: $name}) {
    ... on ResourceDetails { configuredValues { key value type } } } }"""


EVENT_LOCATION_QUERY = """{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus
    locationOrLoadError { ... on RepositoryLocation { repositories { jobs { name } sensors { name } } } } } } } }"""


def event_location(ui_url: str) -> tuple[str, set[str], set[str]]:
    """(load status, job names, sensor names) of the write-back events' code location."""
    entries = requests.post(f"{ui_url}/graphql", json={"query": EVENT_LOCATION_QUERY}, timeout=30).json()[
        "data"]["workspaceOrError"]["locationEntries"]
    [entry] = [e for e in entries if e["name"] == EVENTS_LOCATION]
    [repository] = entry["locationOrLoadError"]["repositories"]
    return (entry["loadStatus"], {job["name"] for job in repository["jobs"]} - {"__ASSET_JOB"},
            {sensor["name"] for sensor in repository["sensors"]})


def dev_command(home: Path, ui_port: int, sandbox_port: int) -> list[str]:
    return [sys.executable, "-m", "ps_pipelines.cli", "dev", "--home", str(home), "--ui-port", str(ui_port),
            "--sandbox-port", str(sandbox_port), "--scale", "0.05"]


def processes_naming(path: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter():
        try:
            if any(str(path) in arg for arg in process.cmdline()):
                found.append(process)
        except psutil.Error:
            pass
    return found


@pytest.fixture
def listening_socket() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.mark.parametrize("option", ["--ui-port", "--sandbox-port"])
def test_a_busy_port_fails_at_once_naming_the_port_and_option(tmp_path: Path, listening_socket: int,
                                                              option: str) -> None:
    busy_ui = option == "--ui-port"
    ui_port, sandbox_port = (listening_socket, free_port()) if busy_ui else (free_port(), listening_socket)
    done = subprocess.run(dev_command(tmp_path, ui_port, sandbox_port), capture_output=True, text=True,
                          timeout=STARTUP_TIMEOUT_SECONDS)
    assert done.returncode != 0
    assert f"port {listening_socket}" in done.stderr and option in done.stderr
    assert processes_naming(tmp_path) == []
    assert port_is_free(sandbox_port if busy_ui else ui_port)


def resource_value(ui_url: str, resource: str, key: str) -> dict:
    answer = requests.post(f"{ui_url}/graphql", json={"query": RESOURCE_QUERY, "variables": {"name": resource}},
                           timeout=30).json()
    values = answer["data"]["topLevelResourceDetailsOrError"]["configuredValues"]
    return next(value for value in values if value["key"] == key)


def wait_for_line(log: Path, text: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while text not in log.read_text():
        assert process.poll() is None, f"ps-pipelines dev exited with {process.returncode}:\n{log.read_text()}"
        assert time.monotonic() < deadline, f"no {text!r} within {STARTUP_TIMEOUT_SECONDS}s:\n{log.read_text()}"
        time.sleep(0.5)


def test_dev_serves_on_its_own_sandbox_and_sigterm_leaves_nothing_running(tmp_path: Path) -> None:
    ui_port, sandbox_port = free_port(), free_port()
    ui_url, sandbox_url = f"http://127.0.0.1:{ui_port}", f"http://127.0.0.1:{sandbox_port}"
    log = tmp_path / "dev.log"
    with log.open("w") as output:
        dev = subprocess.Popen(dev_command(tmp_path / "home", ui_port, sandbox_port), stdout=output,
                               stderr=subprocess.STDOUT)
    try:
        wait_for_line(log, f"Dagster UI: {ui_url}  sandbox: {sandbox_url}", dev)
        assert requests.get(f"{ui_url}/server_info", timeout=30).ok
        assert requests.get(f"{sandbox_url}/_sandbox/health", timeout=30).ok
        descendants = psutil.Process(dev.pid).children(recursive=True)
        assert len(descendants) >= 4  # sandbox, dagster dev, webserver, daemon (and the code server)

        # The location's connectors read the sandbox URL from the environment dev gave its
        # services, which names this instance's sandbox, not the default port's.
        assert resource_value(ui_url, "netsuite", "base_url") == {
            "key": "base_url", "value": SANDBOX_URL_ENV, "type": "ENV_VAR"}
        assert resource_value(ui_url, "warehouse", "database_path")["value"] == WAREHOUSE_PATH_ENV
        dagster_services = [p for p in descendants if "sandbox" not in " ".join(p.cmdline())]
        assert {p.environ()[SANDBOX_URL_ENV] for p in dagster_services} == {sandbox_url}
        assert {p.environ()[WAREHOUSE_PATH_ENV] for p in dagster_services} == {
            str((tmp_path / "home" / "warehouse.duckdb").resolve())}
        # Quiet by default: no sensor tick lines at INFO, no warning.
        assert "SensorDaemon - INFO" not in log.read_text() and "dg dev" not in log.read_text()
        assert "WARNING" not in log.read_text(), log.read_text()
        # The write-back events' location loads beside the main one, with its jobs and sensors.
        assert event_location(ui_url) == ("LOADED", {"activate_projects_on_event", "post_invoices_on_event"},
                                          {"won_deals_sensor", "approved_work_sensor"})

        dev.send_signal(signal.SIGTERM)
        assert dev.wait(timeout=STOP_TIMEOUT_SECONDS) == 0
        _, alive = psutil.wait_procs(descendants, timeout=STOP_TIMEOUT_SECONDS)
        assert alive == []
        assert port_is_free(ui_port) and port_is_free(sandbox_port)
    finally:
        if dev.poll() is None:
            dev.kill()
        for process in psutil.Process().children(recursive=True):
            process.kill()


def test_the_dev_location_reads_its_sandbox_and_warehouse_at_run_time(monkeypatch: pytest.MonkeyPatch) -> None:
    from ps_pipelines.definitions_dev import defs

    location = defs()  # loaded before the variables exist
    monkeypatch.setenv(SANDBOX_URL_ENV, "http://127.0.0.1:9")
    monkeypatch.setenv(WAREHOUSE_PATH_ENV, "/somewhere/warehouse.duckdb")
    resources = location.resources or {}
    for platform in ("salesforce", "kantata", "workday", "netsuite"):
        assert resources[platform].process_config_and_initialize().base_url == "http://127.0.0.1:9"
    assert resources["warehouse"].process_config_and_initialize().database_path == "/somewhere/warehouse.duckdb"


def test_dev_takes_the_estate_to_both_locations_and_the_sandbox_its_packages(tmp_path: Path) -> None:
    from ps_pipelines.cli import build_parser
    from ps_pipelines.dev import dagster_dev_environment, sandbox_state
    from ps_pipelines.estate import DEFAULT_ESTATE, ESTATE_ENV

    args = build_parser().parse_args(["dev", "--estate", "HubSpot,certinia,workday,netsuite"])
    assert str(args.estate) == "hubspot,certinia,workday,netsuite"
    environment = dagster_dev_environment("http://127.0.0.1:9", tmp_path / "warehouse.duckdb", args.estate)
    assert environment[ESTATE_ENV] == "hubspot,certinia,workday,netsuite"
    # The org runs Certinia, which changes the generated data: a sandbox state of its own.
    assert args.estate.salesforce_packages() == ("certinia",)
    assert sandbox_state(tmp_path, args.estate) != sandbox_state(tmp_path, DEFAULT_ESTATE)
    assert sandbox_state(tmp_path, DEFAULT_ESTATE) == tmp_path / "sandbox.sqlite"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["dev", "--estate", "hubspot,workday,netsuite"])  # no PSA


def test_the_dev_event_location_serves_the_estate_in_its_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from ps_pipelines.estate import ESTATE_ENV
    from ps_pipelines.events.definitions_dev import defs

    monkeypatch.setenv(ESTATE_ENV, "hubspot,certinia,workday,netsuite")
    location = defs()  # the estate is read when the location loads, not at import
    assert {s.name: set(s.required_resource_keys) for s in location.sensors or ()} == {
        "won_deals_sensor": {"hubspot"}, "approved_work_sensor": {"certinia"}}
    monkeypatch.setenv(SANDBOX_URL_ENV, "http://127.0.0.1:9")
    assert (location.resources or {})["hubspot"].process_config_and_initialize().base_url == "http://127.0.0.1:9"
