"""A cross-process lock guarding the warehouse file.

DuckDB allows one read-write process per database file. Dagster's pool limits writers
inside one instance, but runs launched by the CLI, the UI, a sensor and a benchmark can
still meet: an OS-level lock beside the file makes them queue instead of failing with
"Could not set lock on file".
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class WarehouseBusyError(TimeoutError):
    pass


@contextmanager
def exclusive_lock(path: Path, timeout_seconds: float = 600.0, poll_seconds: float = 0.05) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + timeout_seconds
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise WarehouseBusyError(
                        f"warehouse {path.with_suffix('')} is held by another writer for over {timeout_seconds:.0f}s"
                    ) from None
                time.sleep(poll_seconds)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
