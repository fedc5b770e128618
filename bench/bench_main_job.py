"""The main job (`ps-pipelines run`) at scale: wall time and peak memory of the pipeline.

The sandbox runs as its own process and is not counted; the pipeline process and all of its
children (dbt included) are sampled every 100 ms and their resident memory summed.

    .venv/bin/python bench/bench_main_job.py --scale 100      # 1 million time entries
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=100.0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--sandbox-home", default=None, help="Reuse a generated sandbox database from here.")
    args = parser.parse_args()

    sandbox_home = Path(args.sandbox_home or tempfile.mkdtemp(prefix="ps-bench-sandbox-"))
    run_home = Path(tempfile.mkdtemp(prefix="ps-bench-run-"))
    state = sandbox_home / f"sandbox-scale{args.scale:g}-seed{args.seed}.sqlite"
    with SandboxProcess(state, scale=args.scale, seed=args.seed) as sandbox:
        command = [sys.executable, "-m", "ps_pipelines.cli", "run", "--home", str(run_home),
                   "--sandbox-url", sandbox.url]
        started = time.perf_counter()
        pipeline = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        watched, peak = psutil.Process(pipeline.pid), 0
        while pipeline.poll() is None:
            peak = max(peak, tree_rss(watched))
            time.sleep(0.1)
        output = pipeline.stdout.read() if pipeline.stdout else ""
        elapsed = time.perf_counter() - started
    print(output)
    print(f"main job at scale {args.scale:g}: exit {pipeline.returncode}, {elapsed:.1f}s, "
          f"peak RSS of the pipeline process tree {peak / 2**20:,.0f} MiB")
    sys.exit(pipeline.returncode)


if __name__ == "__main__":
    main()
