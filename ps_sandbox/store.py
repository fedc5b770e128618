"""The sandbox's state: one SQLite file holding every platform's records as JSON documents.

Each record is stored in the platform's own wire shape (``body``), with its change
timestamp lifted into an indexed column so incremental reads by change time stay fast at
millions of rows. A restart loses nothing; a write is visible to the next read.
"""

from __future__ import annotations

import bisect
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    platform   TEXT NOT NULL,
    object     TEXT NOT NULL,
    id         TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    deleted    INTEGER NOT NULL DEFAULT 0,
    deleted_at TEXT,
    body       TEXT NOT NULL,
    PRIMARY KEY (platform, object, id)
) WITHOUT ROWID;
-- "deleted" sits before the change time so live-row counts and pages are index-only.
CREATE INDEX IF NOT EXISTS records_live_by_change ON records (platform, object, deleted, updated_at, id);
CREATE TABLE IF NOT EXISTS tombstones (
    platform   TEXT NOT NULL,
    object     TEXT NOT NULL,
    id         TEXT NOT NULL,
    deleted_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tombstones_by_time ON tombstones (platform, object, deleted_at);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def to_iso(moment: datetime) -> str:
    """Normalized UTC text whose lexical order is time order (the index relies on it)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


class SandboxStore:
    """Thread-safe access to the sandbox database (one SQLite connection per thread)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._write_lock = threading.Lock()
        # Sorted change times per (platform, object, include_deleted), so the counts every
        # page answer carries (Kantata's meta.count) cost a bisection instead of an index
        # walk over a million rows. Any record write invalidates them.
        self._records_version = 0
        self._change_times: dict[tuple[str, str, bool], tuple[int, list[str]]] = {}
        # executescript commits on its own, so it runs outside transaction().
        with self._write_lock:
            self.conn.executescript(_SCHEMA)

    # -- connections -------------------------------------------------------------------
    @property
    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    @property
    def records_version(self) -> int:
        """Bumped after every committed record write, so a cache built from records knows it is stale."""
        return self._records_version

    @contextmanager
    def _records_transaction(self) -> Iterator[sqlite3.Connection]:
        with self.transaction() as conn:
            yield conn
        self._records_version += 1

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        # One writer at a time inside the process; SQLite's own lock covers other processes.
        with self._write_lock:
            conn = self.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # -- clock and settings ----------------------------------------------------------
    def kv_get(self, key: str, default: Any = None) -> Any:
        row = self.conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def kv_set(self, key: str, value: Any) -> None:
        with self.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", (key, json.dumps(value)))

    def now(self) -> datetime:
        """The sandbox clock: wall-clock time plus whatever the control API advanced it by."""
        return datetime.now(UTC) + timedelta(seconds=float(self.kv_get("clock_offset_seconds", 0.0)))

    def advance_clock(self, seconds: float) -> datetime:
        self.kv_set("clock_offset_seconds", float(self.kv_get("clock_offset_seconds", 0.0)) + seconds)
        return self.now()

    # -- writes ----------------------------------------------------------------------
    def put(self, platform: str, obj: str, record_id: str, body: Mapping[str, Any], updated_at: datetime) -> None:
        self.put_many(platform, obj, [(record_id, updated_at, body)])

    def put_many(self, platform: str, obj: str, rows: Iterable[tuple[str, datetime, Mapping[str, Any]]]) -> int:
        return self.put_together((platform, obj, rid, upd, body) for rid, upd, body in rows)

    def put_together(
        self,
        rows: Iterable[tuple[str, str, str, datetime, Mapping[str, Any]]],
        deletes: Iterable[tuple[str, str, str, datetime]] = (),
    ) -> int:
        """Store ``(platform, object, id, updated_at, body)`` rows of several objects in one
        transaction: a record and what is written with it (an inline reference) land together.
        ``deletes`` (``(platform, object, id, at)``) are hard-deleted in the same transaction."""
        params = [
            (platform, obj, rid, to_iso(upd), orjson.dumps(body, default=str).decode())
            for platform, obj, rid, upd, body in rows
        ]
        with self._records_transaction() as conn:
            conn.executemany(
                "INSERT INTO records (platform, object, id, updated_at, body) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (platform, object, id) DO UPDATE SET updated_at = excluded.updated_at, "
                "body = excluded.body, deleted = 0, deleted_at = NULL",
                params,
            )
            for platform, obj, rid, at in deletes:
                cur = conn.execute("DELETE FROM records WHERE platform = ? AND object = ? AND id = ?",
                                   (platform, obj, rid))
                if cur.rowcount:
                    conn.execute("INSERT INTO tombstones (platform, object, id, deleted_at) VALUES (?, ?, ?, ?)",
                                 (platform, obj, rid, to_iso(at)))
        return len(params)

    def soft_delete(self, platform: str, obj: str, record_id: str, body: Mapping[str, Any], at: datetime) -> None:
        """Mark deleted but keep readable (Salesforce recycle bin: visible to ``queryAll``)."""
        with self._records_transaction() as conn:
            conn.execute(
                "UPDATE records SET deleted = 1, deleted_at = ?, updated_at = ?, body = ? "
                "WHERE platform = ? AND object = ? AND id = ?",
                (to_iso(at), to_iso(at), json.dumps(body, default=str), platform, obj, record_id),
            )

    def hard_delete(self, platform: str, obj: str, record_id: str, at: datetime) -> bool:
        with self._records_transaction() as conn:
            cur = conn.execute(
                "DELETE FROM records WHERE platform = ? AND object = ? AND id = ?", (platform, obj, record_id)
            )
            if cur.rowcount:
                conn.execute(
                    "INSERT INTO tombstones (platform, object, id, deleted_at) VALUES (?, ?, ?, ?)",
                    (platform, obj, record_id, to_iso(at)),
                )
        return bool(cur.rowcount)

    # -- reads -----------------------------------------------------------------------
    def get(self, platform: str, obj: str, record_id: str, include_deleted: bool = False) -> dict | None:
        sql = "SELECT body FROM records WHERE platform = ? AND object = ? AND id = ?"
        if not include_deleted:
            sql += " AND deleted = 0"
        row = self.conn.execute(sql, (platform, obj, record_id)).fetchone()
        return orjson.loads(row[0]) if row else None

    def _where(
        self,
        platform: str,
        obj: str,
        since: datetime | None,
        since_inclusive: bool,
        until: datetime | None,
        include_deleted: bool,
        equals: Mapping[str, Any] | None,
        ids: Sequence[str] | None,
        id_from: str | None = None,
    ) -> tuple[str, list[Any]]:
        clauses, params = ["platform = ?", "object = ?"], [platform, obj]
        if since is not None:
            clauses.append("updated_at >= ?" if since_inclusive else "updated_at > ?")
            params.append(to_iso(since))
        if until is not None:
            clauses.append("updated_at <= ?")
            params.append(to_iso(until))
        if not include_deleted:
            clauses.append("deleted = 0")
        for field, value in (equals or {}).items():
            if isinstance(value, (list, tuple, set, frozenset)):  # any of several values
                values = list(value)
                clauses.append(f"json_extract(body, '$.{field}') IN ({','.join('?' * len(values))})" if values else "0")
                params.extend(values)
                continue
            clauses.append(f"json_extract(body, '$.{field}') = ?")
            params.append(value)
        if ids is not None:
            clauses.append(f"id IN ({','.join('?' * len(ids))})")
            params.extend(ids)
        if id_from is not None:  # a cursor over ids (HubSpot's ``after``)
            clauses.append("id >= ?")
            params.append(id_from)
        return " AND ".join(clauses), params

    def scan(
        self,
        platform: str,
        obj: str,
        *,
        since: datetime | None = None,
        since_inclusive: bool = True,
        until: datetime | None = None,
        include_deleted: bool = False,
        equals: Mapping[str, Any] | None = None,
        ids: Sequence[str] | None = None,
        order: str = "updated_at",
        descending: bool = False,
        limit: int | None = None,
        offset: int = 0,
        id_from: str | None = None,
    ) -> list[dict]:
        """Records of one object, filtered and ordered; ``order`` is ``updated_at`` or ``id``.

        Ties on the change time are broken by id so paging never skips or repeats a row.
        """
        where, params = self._where(platform, obj, since, since_inclusive, until, include_deleted, equals, ids,
                                    id_from)
        direction = "DESC" if descending else "ASC"
        keys = ("updated_at", "id") if order == "updated_at" else ("id",)
        order_sql = ", ".join(f"{key} {direction}" for key in keys)
        if limit is None:
            sql = f"SELECT body FROM records WHERE {where} ORDER BY {order_sql}"
            return [orjson.loads(row[0]) for row in self.conn.execute(sql, params)]
        # Page on the index first, then read only that page's bodies: with OFFSET, SQLite
        # would otherwise load the body of every skipped row.
        sql = (
            f"SELECT r.body FROM (SELECT id, updated_at FROM records WHERE {where} ORDER BY {order_sql} "
            f"LIMIT ? OFFSET ?) AS page JOIN records AS r ON r.platform = ? AND r.object = ? AND r.id = page.id "
            f"ORDER BY {', '.join(f'page.{key} {direction}' for key in keys)}"
        )
        params.extend([limit, offset, platform, obj])
        return [orjson.loads(row[0]) for row in self.conn.execute(sql, params)]

    def count(
        self,
        platform: str,
        obj: str,
        *,
        since: datetime | None = None,
        since_inclusive: bool = True,
        until: datetime | None = None,
        include_deleted: bool = False,
        equals: Mapping[str, Any] | None = None,
        ids: Sequence[str] | None = None,
    ) -> int:
        if equals is None and ids is None and until is None:
            times = self._sorted_change_times(platform, obj, include_deleted)
            if since is None:
                return len(times)
            cut = (bisect.bisect_left if since_inclusive else bisect.bisect_right)(times, to_iso(since))
            return len(times) - cut
        where, params = self._where(platform, obj, since, since_inclusive, until, include_deleted, equals, ids)
        return self.conn.execute(f"SELECT count(*) FROM records WHERE {where}", params).fetchone()[0]

    def _sorted_change_times(self, platform: str, obj: str, include_deleted: bool) -> list[str]:
        key = (platform, obj, include_deleted)
        cached = self._change_times.get(key)
        if cached is not None and cached[0] == self._records_version:
            return cached[1]
        version = self._records_version
        where = "" if include_deleted else " AND deleted = 0"
        times = [
            row[0]
            for row in self.conn.execute(
                f"SELECT updated_at FROM records WHERE platform = ? AND object = ?{where} ORDER BY updated_at",
                (platform, obj),
            )
        ]
        self._change_times[key] = (version, times)
        return times

    def deleted_between(self, platform: str, obj: str, start: datetime, end: datetime) -> list[tuple[str, str]]:
        """Hard deletes (id, deleted_at ISO) in a window, for Salesforce's ``getDeleted``."""
        return self.conn.execute(
            "SELECT id, deleted_at FROM tombstones WHERE platform = ? AND object = ? "
            "AND deleted_at >= ? AND deleted_at <= ? ORDER BY deleted_at",
            (platform, obj, to_iso(start), to_iso(end)),
        ).fetchall()

    def soft_deleted_between(self, platform: str, obj: str, start: datetime, end: datetime) -> list[tuple[str, str]]:
        """Soft deletes (id, deleted_at ISO) in a window: records still readable as deleted."""
        return self.conn.execute(
            "SELECT id, deleted_at FROM records WHERE platform = ? AND object = ? AND deleted = 1 "
            "AND deleted_at >= ? AND deleted_at <= ? ORDER BY deleted_at",
            (platform, obj, to_iso(start), to_iso(end)),
        ).fetchall()

    def ids_changed_between(self, platform: str, obj: str, start: datetime, end: datetime) -> list[str]:
        """Live records changed in a window, by id, read off the change index (no bodies)."""
        return [row[0] for row in self.conn.execute(
            "SELECT id FROM records WHERE platform = ? AND object = ? AND deleted = 0 "
            "AND updated_at >= ? AND updated_at <= ? ORDER BY updated_at, id",
            (platform, obj, to_iso(start), to_iso(end)))]

    def is_empty(self) -> bool:
        return self.conn.execute("SELECT 1 FROM records LIMIT 1").fetchone() is None
