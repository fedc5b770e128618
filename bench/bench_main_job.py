"""The main job (`ps-pipelines run`) at scale: wall time, CPU time and peak memory of the
pipeline, for a first run and for a rerun on the unchanged sandbox (which should rebuild,
post and republish nothing).

The sandbox runs as its own process and is not counted; the pipeline process and all of its
children (dbt included) are sampled every 100 ms and their resident memory summed.

    .venv/bin/python bench/bench_main_job.py --scale 100      # 1 million time entries
    .venv/bin/python bench/bench_main_job.py --scale 1 --reruns 1
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from ps_pipelines.local_sandbox import SandboxProcess


def tree_rss(process: psutil.Process) -> int:
    total = 0
    for member in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += member.memory_info().rss
    return total


def run_once(run_home: Path, sandbox_url: str) -> tuple[int, str, float, float, int]:
    """One `ps-pipelines run`: exit code, output, wall seconds, CPU seconds, peak RSS bytes."""
    command = [sys.executable, "-m", "ps_pipelines.cli", "run", "--home", str(run_home), "--sandbox-url", sandbox_url]
    started = time.perf_counter()
    pipeline = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    watched, peak, cpu = psutil.Process(pipeline.pid), 0, 0.0
    while pipeline.poll() is None:
        with contextlib.suppress(psutil.NoSuchProcess):
            peak = max(peak, tree_rss(watched))
            times = watched.cpu_times()
            cpu = times.user + times.system + times.children_user + times.children_system
        time.sleep(0.1)
    output = pipeline.stdout.read() if pipeline.stdout else ""
    return pipeline.returncode, output, time.perf_counter() - started, cpu, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=100.0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--reruns", type=int, default=1, help="Runs after the first on the unchanged sandbox.")
    parser.add_argument("--sandbox-home", default=None, help="Reuse a generated sandbox database from here.")
    args = parser.parse_args()

    sandbox_home = Path(args.sandbox_home or tempfile.mkdtemp(prefix="ps-bench-sandbox-"))
    run_home = Path(tempfile.mkdtemp(prefix="ps-bench-run-"))
    state = sandbox_home / f"sandbox-scale{args.scale:g}-seed{args.seed}.sqlite"
    results = []
    with SandboxProcess(state, scale=args.scale, seed=args.seed) as sandbox:
        for number in range(1 + args.reruns):
            code, output, wall, cpu, peak = run_once(run_home, sandbox.url)
            if number == 0:
                print(output)
            results.append((code, wall, cpu, peak))
    first_wall = results[0][1]
    for number, (code, wall, cpu, peak) in enumerate(results):
        label = "first run" if number == 0 else f"rerun {number}"
        print(f"main job at scale {args.scale:g}, {label}: exit {code}, wall {wall:.1f}s "
              f"({wall / first_wall:.2f} of the first), CPU {cpu:.1f}s, "
              f"peak RSS of the pipeline process tree {peak / 2**20:,.0f} MiB")
    sys.exit(max(code for code, *_ in results))


if __name__ == "__main__":
    main()
