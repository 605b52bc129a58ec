"""Fixtures for the client tests: a real Basin process per test module.

Each module gets `basin standalone` on free loopback ports with its own temporary data directory.
The binary is found as the Rust harness finds it (sql-tests/src/paths.rs): $BASIN_BIN (relative
to the repository root if relative), else $CARGO_TARGET_DIR/debug/basin, else
<repo>/target/debug/basin; build it first with `cargo build -p basin`.
Trust authentication on loopback: user `basin`, database `basin`.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

REPO = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = float(os.environ.get("BASIN_TEST_STARTUP_TIMEOUT_SECS", "120"))
SHUTDOWN_TIMEOUT = 30.0
USER = "basin"
DATABASE = "basin"


def basin_binary() -> Path:
    override = os.environ.get("BASIN_BIN")
    if override:
        path = REPO / override  # relative to the repository root, like the Rust harness
    else:
        target = os.environ.get("CARGO_TARGET_DIR")
        target_dir = Path(target) if target else REPO / "target"
        if not target_dir.is_absolute():
            target_dir = REPO / target_dir
        path = target_dir / "debug" / "basin"
    if not path.is_file():
        pytest.fail(
            f"basin binary not found at {path}: build it with `cargo build -p basin` "
            "or point BASIN_BIN at one",
            pytrace=False,
        )
    return path


def free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@dataclass
class Basin:
    """One Basin server process; restartable on the same data directory."""

    binary: Path
    root: Path
    port: int = 0
    http_port: int = 0
    control_port: int = 0
    # Executor processes `standalone` starts; startup waits until they are all live, so tables
    # created by a test place their streaming shards on them.
    executors: int = 2
    process: subprocess.Popen | None = None
    starts: int = 0
    logs: list[Path] = field(default_factory=list)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user={USER} dbname={DATABASE} connect_timeout=10"

    def connect(self, **kwargs) -> psycopg.Connection:
        kwargs.setdefault("autocommit", True)
        return psycopg.connect(self.dsn, **kwargs)

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for _attempt in range(3):
            pg, http, control = free_ports(3)
            self.starts += 1
            log_path = self.root / f"basin-{self.starts}.log"
            self.logs.append(log_path)
            env = dict(os.environ)
            # Basin's own crates at info, dependencies quieter; plain text for the quoted tail.
            env.setdefault("RUST_LOG", "warn,basin=info,basin_coordinator=info,basin_catalog=info,basin_executor=info")
            env["NO_COLOR"] = "1"
            with open(log_path, "wb") as log:
                self.process = subprocess.Popen(
                    [
                        str(self.binary),
                        "standalone",
                        "--pg-listen", f"127.0.0.1:{pg}",
                        "--http-listen", f"127.0.0.1:{http}",
                        "--control-listen", f"127.0.0.1:{control}",
                        "--data-dir", str(self.data_dir),
                        "--executors", str(self.executors),
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,  # own process group: kill -9 takes helpers along
                )
            self.port, self.http_port, self.control_port = pg, http, control
            error = self._wait_ready()
            if error is None:
                return
            self._kill_group()
            if "address already in use" not in self.log_tail().lower():
                raise RuntimeError(f"{error}\n{self.log_tail()}")
        raise RuntimeError(f"basin did not start: ports kept being taken\n{self.log_tail()}")

    def _wait_ready(self) -> str | None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        last = "no attempt made"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return f"basin exited during startup with status {self.process.returncode}"
            try:
                with socket.create_connection((self.host, self.port), timeout=2):
                    pass
                with psycopg.connect(self.dsn, autocommit=True) as conn:
                    live = conn.execute(
                        "SELECT count(*) FROM basin.executors WHERE state = 'live'"
                    ).fetchone()[0]
                    if live == self.executors:
                        return None
                    last = f"{live} of {self.executors} executors live"
            except (OSError, psycopg.Error) as err:
                last = str(err).strip()
            time.sleep(0.1)
        return f"basin was not ready within {STARTUP_TIMEOUT:.0f}s: {last}"

    def stop(self, kill9: bool = False) -> None:
        if self.process is None:
            return
        if kill9:
            self._kill_group()
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=SHUTDOWN_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._kill_group()
            raise RuntimeError(f"basin did not exit within {SHUTDOWN_TIMEOUT:.0f}s of SIGTERM\n{self.log_tail()}")
        finally:
            self._kill_group()

    def restart(self, kill9: bool = False) -> None:
        self.stop(kill9=kill9)
        self.start()

    def _kill_group(self) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.process.wait(timeout=SHUTDOWN_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.killpg(self.process.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.02)

    def executor_pids(self) -> list[int]:
        """Process IDs of the executors `standalone` started (its children)."""
        if self.process is None:
            return []
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                # "pid (comm) state ppid ...": comm may hold spaces, so split after its ')'.
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[1]) == self.process.pid:
                children.append(int(stat.parent.name))
        return sorted(children)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 60) -> str:
        if not self.logs:
            return ""
        path = self.logs[-1]
        try:
            text = path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return f"--- last {min(lines, len(text))} lines of {path} ---\n" + "\n".join(text[-lines:])


@pytest.fixture(scope="module")
def basin():
    root = Path(tempfile.mkdtemp(prefix="basin-client-test-"))
    server = Basin(basin_binary(), root)
    try:
        server.start()
        yield server
    finally:
        server.stop(kill9=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def conn(basin):
    with basin.connect() as connection:
        yield connection


@pytest.fixture
def assert_healthy(basin):
    """Checks that the server process is alive and a brand-new connection runs SELECT 1."""

    def check() -> None:
        assert basin.alive(), f"basin exited\n{basin.log_tail()}"
        with basin.connect() as fresh:
            assert fresh.execute("SELECT 1").fetchone() == (1,)

    return check


@dataclass(frozen=True)
class Target:
    """A server the client-matrix scripts connect to: `postgres` (the oracle) or `basin`."""

    name: str
    host: str
    port: int
    user: str = USER
    database: str = DATABASE

    @property
    def dsn(self) -> str:
        return f"host={self.host} port={self.port} user={self.user} dbname={self.database} connect_timeout=10"

    @property
    def url(self) -> str:
        """`postgresql://` URL, as libpq, ADBC and node clients take it."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.database}"

    @property
    def is_basin(self) -> bool:
        return self.name == "basin"

    def connect(self, **kwargs) -> psycopg.Connection:
        kwargs.setdefault("autocommit", True)
        return psycopg.connect(self.dsn, **kwargs)


@pytest.fixture(scope="module")
def postgres():
    """A throwaway PostgreSQL cluster (initdb + pg_ctl) on a free loopback port."""
    from postgres_server import start_postgres

    server = start_postgres(free_ports(1)[0])
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture(scope="module", params=["postgres", "basin"])
def server(request) -> Target:
    """Each client-matrix test runs once against real PostgreSQL and once against Basin."""
    running = request.getfixturevalue(request.param)
    return Target(request.param, running.host, running.port)
