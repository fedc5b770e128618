"""A throwaway PostgreSQL server for tests: its own cluster in a temp folder, on a free port.

The server binaries come from the machine (Debian: ``/usr/lib/postgresql/<version>/bin``).
When they are missing and we are root with apt-get, ``postgresql`` is installed once, under
a machine-wide file lock so parallel test workers and sessions never run apt together.
PostgreSQL refuses to run as root, so as root the cluster belongs to the ``postgres`` user
(or ``nobody``) and every server command runs through ``runuser``.

Every way this can fail raises :class:`PostgresUnavailable` with the exact reason, which
the test turns into a skip message (or a failure where the server is required).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import pwd
import re
import secrets
import shlex
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg2
from psycopg2.extensions import connection as PgConnection

from ps_pipelines.lib.warehouse.lock import WarehouseBusyError, exclusive_lock

INSTALL_LOCK = Path(tempfile.gettempdir()) / "ps-pipelines-postgres-install.lock"
APT_UPDATE_TIMEOUT_SECONDS = 600
APT_INSTALL_TIMEOUT_SECONDS = 1200
COMMAND_TIMEOUT_SECONDS = 120
START_ATTEMPTS = 3  # a free port can be taken between choosing it and the server binding it
DATABASE = "ps_pipelines"
USER = "ps_pipelines"
# A throwaway cluster needs no durability: these make initdb, DDL and COPY much faster.
SERVER_OPTIONS = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server could be started here; the message says exactly why."""


@dataclass(frozen=True)
class PostgresServer:
    """A running throwaway cluster: connection parameters, and ``stop()`` to remove it."""

    host: str
    port: int
    user: str
    password: str
    database: str
    root: Path
    bin_dir: Path
    os_user: str | None  # the account the server runs as; None = the current user

    def dbt_env(self) -> dict[str, str]:
        """Environment selecting the profile's ``postgres`` target against this server."""
        return {
            "PS_DBT_TARGET": "postgres",
            "PS_PG_HOST": self.host,
            "PS_PG_PORT": str(self.port),
            "PS_PG_USER": self.user,
            "PS_PG_PASSWORD": self.password,
            "PS_PG_DATABASE": self.database,
            "PS_PG_SSLMODE": "disable",
        }

    def connect(self, database: str | None = None) -> PgConnection:
        return psycopg2.connect(host=self.host, port=self.port, user=self.user, password=self.password,
                                dbname=database or self.database, connect_timeout=10)

    def stop(self) -> None:
        """Stop the server (no shutdown checkpoint: the data is thrown away) and delete the cluster."""
        try:
            _run_as(self.os_user, [str(self.bin_dir / "pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate",
                                   "-w", "stop"])
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


# -- binaries ----------------------------------------------------------------------------------
def _version_key(bin_dir: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", bin_dir.parent.name))


def find_pg_bin() -> Path | None:
    """The newest folder holding initdb, pg_ctl and postgres: Debian's layout first, then PATH."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    for bin_dir in candidates:
        if all(os.access(bin_dir / tool, os.X_OK) for tool in ("initdb", "pg_ctl", "postgres")):
            return bin_dir
    return None


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _apt_get(args: list[str], timeout: int) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Wait for a dpkg lock held by another apt (e.g. unattended upgrades) instead of failing at once.
    command = ["apt-get", "-o", "DPkg::Lock::Timeout=300", *args]
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise PostgresUnavailable(f"`{shlex.join(command)}` did not finish within {timeout}s") from None
    if done.returncode != 0:
        raise PostgresUnavailable(f"`{shlex.join(command)}` failed ({done.returncode}): {_tail(done.stderr)}")


def _install_postgres() -> None:
    if os.geteuid() != 0:
        raise PostgresUnavailable("not running as root, so cannot install it (run: sudo apt-get install postgresql)")
    if shutil.which("apt-get") is None:
        raise PostgresUnavailable("apt-get is not available to install it (install a PostgreSQL server)")
    waited = APT_UPDATE_TIMEOUT_SECONDS + APT_INSTALL_TIMEOUT_SECONDS
    try:
        with exclusive_lock(INSTALL_LOCK, timeout_seconds=waited):
            # Another worker may have installed it while this one waited for the lock.
            if find_pg_bin() is None:
                _apt_get(["update"], APT_UPDATE_TIMEOUT_SECONDS)
                _apt_get(["install", "-y", "--no-install-recommends", "postgresql"], APT_INSTALL_TIMEOUT_SECONDS)
    except WarehouseBusyError:
        raise PostgresUnavailable(f"another process held {INSTALL_LOCK} (installing it) for over {waited}s") from None


@functools.cache
def _locate_or_install() -> Path | PostgresUnavailable:
    # Cached, failure included: one attempt per process, never an apt run per test.
    bin_dir = find_pg_bin()
    if bin_dir is not None:
        return bin_dir
    try:
        _install_postgres()
    except PostgresUnavailable as why:
        return PostgresUnavailable(f"PostgreSQL server (initdb, pg_ctl) not found and cannot install: {why}")
    return find_pg_bin() or PostgresUnavailable(
        "installed postgresql but found no initdb/pg_ctl/postgres under /usr/lib/postgresql/*/bin or on PATH")


def ensure_pg_bin() -> Path:
    """The server binaries' folder, installing PostgreSQL if needed and possible."""
    outcome = _locate_or_install()
    if isinstance(outcome, PostgresUnavailable):
        raise outcome
    return outcome


# -- running as a non-root user ------------------------------------------------------------------
def _server_os_user() -> str | None:
    """Who runs the server: ourselves unless we are root, which postgres refuses."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise PostgresUnavailable("running as root and there is neither a 'postgres' nor a 'nobody' user to run it as")


def _run_as(os_user: str | None, argv: list[str]) -> subprocess.CompletedProcess[str]:
    if os_user is not None:
        argv = (["runuser", "-u", os_user, "--", *argv] if shutil.which("runuser")
                else ["su", "-s", "/bin/sh", os_user, "-c", shlex.join(argv)])
    # cwd: the server user may not be allowed into ours.
    return subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_SECONDS, check=False,
                          cwd="/")


def _make_root(os_user: str | None) -> Path:
    # Under the system temp folder, not pytest's: pytest's root-owned 0700 folders would
    # keep the server user out.
    root = Path(tempfile.mkdtemp(prefix="ps-pg-"))
    if os_user is not None:
        account = pwd.getpwnam(os_user)
        os.chown(root, account.pw_uid, account.pw_gid)
    return root


# -- cluster lifecycle ---------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _initdb(server: PostgresServer) -> None:
    password_file = server.root / "password"
    password_file.write_text(server.password)
    if server.os_user is not None:
        account = pwd.getpwnam(server.os_user)
        os.chown(password_file, account.pw_uid, account.pw_gid)
    password_file.chmod(0o600)
    done = _run_as(server.os_user, [
        str(server.bin_dir / "initdb"), "-D", str(server.root / "data"), "-U", server.user,
        f"--pwfile={password_file}", "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-sync"])
    password_file.unlink()
    if done.returncode != 0:
        raise PostgresUnavailable(f"initdb failed: {_tail(done.stderr or done.stdout)}")


def _start(server: PostgresServer) -> PostgresServer:
    """Start on a free port, retrying when another process took the port first."""
    log = server.root / "server.log"
    for _ in range(START_ATTEMPTS):
        candidate = dataclasses.replace(server, port=_free_port())
        options = f"-p {candidate.port} -k {server.root} -c listen_addresses=127.0.0.1 {SERVER_OPTIONS}"
        done = _run_as(server.os_user, [str(server.bin_dir / "pg_ctl"), "-D", str(server.root / "data"),
                                        "-l", str(log), "-o", options, "-w", "-t", "60", "start"])
        if done.returncode == 0:
            return candidate
        server_log = log.read_text(errors="replace") if log.exists() else ""
        if "could not bind" not in server_log:
            break
    raise PostgresUnavailable(f"pg_ctl start failed: {_tail(done.stderr + server_log)}")


def _create_database(server: PostgresServer) -> None:
    admin = server.connect(database="postgres")
    try:
        admin.autocommit = True  # CREATE DATABASE cannot run in a transaction
        with admin.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {server.database}")
    finally:
        admin.close()


def start_postgres() -> PostgresServer:
    """Create and start a throwaway cluster with a password-authenticated user and database.

    Call ``stop()`` on the result to remove it. Raises PostgresUnavailable with the reason.
    """
    bin_dir = ensure_pg_bin()
    os_user = _server_os_user()
    server = PostgresServer(host="127.0.0.1", port=0, user=USER, password=secrets.token_urlsafe(18),
                            database=DATABASE, root=_make_root(os_user), bin_dir=bin_dir, os_user=os_user)
    try:
        _initdb(server)
        server = _start(server)
        _create_database(server)
    except (PostgresUnavailable, psycopg2.Error, subprocess.TimeoutExpired, OSError) as why:
        _discard(server)
        if isinstance(why, PostgresUnavailable):
            raise
        raise PostgresUnavailable(f"cluster set-up failed: {why}") from why
    return server


def _discard(server: PostgresServer) -> None:
    """Remove a half-built cluster; the set-up error matters, not a stop error."""
    try:
        server.stop()
    except (subprocess.TimeoutExpired, OSError):
        shutil.rmtree(server.root, ignore_errors=True)
