"""One writer of the warehouse at a time, across processes.

DuckDB allows one read-write process per database file. Dagster's pool (``WAREHOUSE_POOL``,
one slot) limits writers inside one instance, but runs launched by the CLI, the UI, a sensor
and a benchmark can still meet: an OS-level lock beside the file (``filelock``) makes them
queue instead of failing with "Could not set lock on file".
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

# The Dagster concurrency pool of every step that writes the warehouse (one slot: the
# instance's dagster.yaml written by ps-pipelines sets the default limit to 1).
WAREHOUSE_POOL = "duckdb_warehouse"


class WarehouseBusyError(TimeoutError):
    pass


@contextmanager
def exclusive_lock(path: Path, timeout_seconds: float = 600.0, poll_seconds: float = 0.05) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    # A new lock object per holder, kept file: two holders in one process exclude each other
    # like two processes do, and a waiter never locks a file that was unlinked under it.
    lock = FileLock(path, timeout=timeout_seconds, poll_interval=poll_seconds, thread_local=False,
                    preserve_lock_file=True)
    try:
        lock.acquire()
    except Timeout:
        raise WarehouseBusyError(
            f"warehouse {path.with_suffix('')} is held by another writer for over {timeout_seconds:.0f}s"
        ) from None
    try:
        yield
    finally:
        lock.release()
