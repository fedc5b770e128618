"""One writer of the warehouse at a time: across processes, and between holders in one process."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from ps_pipelines.lib.warehouse.lock import WarehouseBusyError, exclusive_lock

TRY_LOCK = """
import sys
from pathlib import Path
from ps_pipelines.lib.warehouse.lock import WarehouseBusyError, exclusive_lock
try:
    with exclusive_lock(Path(sys.argv[1]), timeout_seconds=0.3):
        print("acquired")
except WarehouseBusyError as error:
    print(f"busy: {error}")
"""


def _try_in_another_process(path: Path) -> str:
    return subprocess.run([sys.executable, "-c", TRY_LOCK, str(path)], capture_output=True, text=True,
                          check=True, timeout=120).stdout.strip()


def test_another_process_waits_while_the_lock_is_held_and_gets_it_after(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb.lock"
    with exclusive_lock(path):
        assert _try_in_another_process(path).startswith("busy: warehouse ")
    assert _try_in_another_process(path) == "acquired"
    assert path.exists()  # kept: a waiter never holds a file unlinked under it


def test_two_holders_in_one_process_exclude_each_other(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "warehouse.duckdb.lock"
    outcome: list[str] = []

    def second_writer() -> None:
        try:
            with exclusive_lock(path, timeout_seconds=0.3):
                outcome.append("acquired")
        except WarehouseBusyError:
            outcome.append("busy")

    with exclusive_lock(path):
        thread = threading.Thread(target=second_writer)
        thread.start()
        thread.join()
        with pytest.raises(WarehouseBusyError), exclusive_lock(path, timeout_seconds=0.2):
            pass
    second_writer()
    assert outcome == ["busy", "acquired"]
