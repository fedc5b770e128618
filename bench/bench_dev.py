"""Time ``ps-pipelines dev`` until its UI answers, and until SIGTERM has stopped everything.

    .venv/bin/python bench/bench_dev.py [--scale 0.05]

Prints wall seconds next to the CPU seconds of the whole process tree (a loaded machine
stretches the wall time, not the CPU time).
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from ps_pipelines.local_sandbox import free_port


def tree_cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", default="0.05")
    args = parser.parse_args()
    ui_port, sandbox_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as home:
        log = Path(home) / "dev.log"
        started = time.perf_counter()
        with log.open("w") as output:
            dev = subprocess.Popen([sys.executable, "-m", "ps_pipelines.cli", "dev", "--home", home, "--ui-port",
                                    str(ui_port), "--sandbox-port", str(sandbox_port), "--scale", args.scale],
                                   stdout=output, stderr=subprocess.STDOUT)
        while "Dagster UI:" not in log.read_text():
            if dev.poll() is not None:
                raise SystemExit(f"dev exited with {dev.returncode}:\n{log.read_text()}")
            time.sleep(0.2)
        ready = time.perf_counter() - started
        tree = [psutil.Process(dev.pid), *psutil.Process(dev.pid).children(recursive=True)]
        cpu = tree_cpu_seconds(tree)
        print(log.read_text(), end="")
        print(f"UI answering after {ready:.1f}s wall, {cpu:.1f}s CPU (all {len(tree)} processes)")
        stopping = time.perf_counter()
        dev.send_signal(signal.SIGTERM)
        dev.wait()
        _, alive = psutil.wait_procs(tree[1:], timeout=60)
        print(f"stopped by SIGTERM in {time.perf_counter() - stopping:.1f}s wall; {len(alive)} processes left")


if __name__ == "__main__":
    main()
