"""One posting in a process of its own, for tests that SIGKILL it mid-call.

``python -m tests.lib.writeback.posting_child '<json>'`` with ``flow`` (``activation`` or
``billing``), ``warehouse`` (path), ``url`` (the sandbox), ``run_id``, ``clients`` (options of
one system's client, e.g. ``{"d365": {"read_timeout": 7.0}}``) and ``settings`` (``PostSettings``
fields; durations in seconds). The parent writes the outbound table first and must not hold the
warehouse while this runs.
"""

from __future__ import annotations

import json
import sys
from dataclasses import fields
from datetime import timedelta
from pathlib import Path
from typing import Any

from ps_pipelines.lib.warehouse.warehouse import Warehouse
from ps_pipelines.lib.writeback import PostSettings, run_activation, run_billing
from tests.lib.writeback.conftest import close_targets, make_targets

FLOWS = {"activation": run_activation, "billing": run_billing}


def post_settings(wanted: dict[str, Any]) -> PostSettings:
    """``PostSettings`` from JSON: durations as seconds. Fields this checkout does not know are
    left out, so the same trial also runs on code from before the lease fence (that is how the
    duplicate was shown on main)."""
    known = {f.name: f for f in fields(PostSettings)}
    values: dict[str, Any] = {}
    for name, value in wanted.items():
        if name in known:
            values[name] = timedelta(seconds=value) if isinstance(known[name].default, timedelta) else value
    return PostSettings(**values)


def main(spec: dict[str, Any]) -> int:
    run = FLOWS[spec["flow"]]
    targets = make_targets(spec["url"], overrides=spec.get("clients"))
    try:
        with Warehouse(Path(spec["warehouse"])).connect() as con:
            summary = run(con, targets, run_id=spec["run_id"], settings=post_settings(spec.get("settings", {})))
    finally:
        close_targets(targets)
    print(json.dumps(summary.as_metadata(), default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(json.loads(sys.argv[1])))
