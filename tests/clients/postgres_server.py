"""A throwaway local PostgreSQL cluster for tests that must also pass against real Postgres.

The client-matrix tests run the same client scripts against this server and against Basin, so
what they assert is Postgres's behaviour, not Basin's own idea of it. The cluster is made with
`initdb` in a temporary directory and started with `pg_ctl` on a free 127.0.0.1 port, with the
same trusted user and database names as Basin (`basin`/`basin`). `scripts/setup.sh` installs
Debian's `postgresql` package when the binaries are missing.

PostgreSQL refuses to run as root: when the tests run as root, the server runs as the `postgres`
system user (which Debian's package creates) through `runuser`.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

STARTUP_TIMEOUT = 60.0
USER = "basin"
DATABASE = "basin"
SYSTEM_USER = "postgres"


def postgres_bindir() -> Path:
    """The directory holding `initdb` and `pg_ctl`: $PG_BINDIR, else PATH, else Debian's
    /usr/lib/postgresql/<version>/bin (newest version)."""
    override = os.environ.get("PG_BINDIR")
    if override:
        return Path(override)
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).resolve().parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda path: int(Path(path).parts[-3]) if Path(path).parts[-3].isdigit() else 0,
    )
    if not candidates:
        raise RuntimeError("initdb not found: run scripts/setup.sh (installs Debian's postgresql)")
    return Path(candidates[-1]).parent


@dataclass
class Postgres:
    """One PostgreSQL cluster in its own temporary directory."""

    root: Path
    port: int
    bindir: Path

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        return self.root / "postgres.log"

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user={USER} dbname={DATABASE} connect_timeout=10"

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        command = list(args)
        if os.geteuid() == 0:
            command = ["runuser", "-u", SYSTEM_USER, "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=STARTUP_TIMEOUT, check=False)

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, user=SYSTEM_USER, group=SYSTEM_USER)
        done = self._run(
            str(self.bindir / "initdb"), "-D", str(self.data_dir), "-U", USER, "--auth=trust",
            "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync",
        )
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        # Settings the clients see must match Basin's defaults: UTC and ISO dates.
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.root} "
            "-c fsync=off -c TimeZone=UTC -c DateStyle='ISO, MDY' -c max_connections=50"
        )
        done = self._run(
            str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_path), "-o", options,
            "-w", "-t", str(int(STARTUP_TIMEOUT)), "start",
        )
        if done.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed ({done.returncode}):\n{done.stdout}\n{done.stderr}\n{self.log_tail()}")
        self._wait_ready()
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user={USER} dbname=postgres", autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        last = "no attempt made"
        while time.monotonic() < deadline:
            try:
                with psycopg.connect(f"host=127.0.0.1 port={self.port} user={USER} dbname=postgres connect_timeout=5"):
                    return
            except psycopg.Error as err:
                last = str(err).strip()
            time.sleep(0.1)
        raise RuntimeError(f"postgres was not ready within {STARTUP_TIMEOUT:.0f}s: {last}\n{self.log_tail()}")

    def stop(self) -> None:
        if self.data_dir.exists():
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "-w", "stop")

    def connect(self, **kwargs) -> psycopg.Connection:
        kwargs.setdefault("autocommit", True)
        return psycopg.connect(self.dsn, **kwargs)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return f"--- last {min(lines, len(text))} lines of {self.log_path} ---\n" + "\n".join(text[-lines:])


def start_postgres(port: int) -> Postgres:
    root = Path(tempfile.mkdtemp(prefix="basin-pg-oracle-"))
    server = Postgres(root, port, postgres_bindir())
    try:
        server.start()
    except BaseException:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
        raise
    return server
