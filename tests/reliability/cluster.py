"""A coordinator and two executors as separate `basin` processes on 127.0.0.1 that a nemesis can
kill -9, stop and continue, and restart on the same ports and data directories.

The binary and free ports come from the client tests' helpers (tests/clients/conftest.py).
Every process is started by this harness in its own session; signals go to the PIDs recorded
here, never to processes found by name.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg

_spec = importlib.util.spec_from_file_location(
    "client_helpers", Path(__file__).resolve().parents[1] / "clients" / "conftest.py"
)
client_helpers = importlib.util.module_from_spec(_spec)
sys.modules["client_helpers"] = client_helpers
_spec.loader.exec_module(client_helpers)
basin_binary = client_helpers.basin_binary
free_ports = client_helpers.free_ports
REPO = client_helpers.REPO

SERVE_TIMEOUT = 90.0


class Node:
    """One Basin process: its command line is fixed, so a restart reuses its ports and data."""

    def __init__(self, name: str, argv: list[str], root: Path, env: dict, wrapper: list[str] | None = None):
        self.name = name
        self.argv = argv
        self.root = root
        self.env = env
        self.wrapper = wrapper or []
        self.process: subprocess.Popen | None = None
        self.starts = 0
        self.stopped = False

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self, wrapper: list[str] | None = None) -> None:
        self.starts += 1
        log = open(self.root / f"{self.name}-{self.starts}.log", "wb")
        command = [*(self.wrapper if wrapper is None else wrapper), *self.argv]
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env=self.env, start_new_session=True,
        )
        log.close()
        self.stopped = False

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill9(self) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=30)
        self.stopped = False

    def sigstop(self) -> None:
        if self.alive():
            os.killpg(self.process.pid, signal.SIGSTOP)
            self.stopped = True

    def sigcont(self) -> None:
        if self.process is not None and self.stopped:
            try:
                os.killpg(self.process.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
            self.stopped = False

    def terminate(self, timeout: float = 30.0) -> None:
        """A clean shutdown (SIGTERM); kill -9 if it does not finish in time."""
        if not self.alive():
            return
        self.sigcont()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            raise RuntimeError(f"{self.name} did not exit within {timeout:.0f}s of SIGTERM")

    def log_tail(self, lines: int = 40) -> str:
        path = self.root / f"{self.name}-{self.starts}.log"
        try:
            text = path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return f"--- {path} ---\n" + "\n".join(text[-lines:])


class Cluster:
    """`basin coordinator` plus `executors` `basin executor --data-dir` processes, each restartable
    in place. Streaming-table shards live on the executors' data directories."""

    def __init__(
        self, root: Path, executors: int = 2, wrapper: list[str] | None = None,
        coordinator_args: tuple[str, ...] = (),
    ):
        self.root = root
        self.binary = str(basin_binary())
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "warn,basin=info,basin_coordinator=info,basin_catalog=info,basin_executor=info")
        env["NO_COLOR"] = "1"
        pg, http, control, flight, *executor_ports = free_ports(4 + executors)
        self.pg = pg
        self.http = http
        self.control = control
        self.coordinator = Node(
            "coordinator",
            [
                self.binary, "coordinator",
                "--pg-listen", f"127.0.0.1:{pg}",
                "--http-listen", f"127.0.0.1:{http}",
                "--control-listen", f"127.0.0.1:{control}",
                "--data-dir", str(root / "coordinator"),
                *coordinator_args,
            ],
            root, env, wrapper,
        )
        self.executors = []
        for index, port in enumerate(executor_ports):
            (root / f"spill-{index}").mkdir(parents=True, exist_ok=True)
            self.executors.append(Node(
                f"executor-{index}",
                [
                    self.binary, "executor",
                    "--coordinator", f"http://127.0.0.1:{control}",
                    "--listen", f"127.0.0.1:{port}",
                    "--memory-limit", "512MiB",
                    "--spill-dir", str(root / f"spill-{index}"),
                    "--data-dir", str(root / f"executor-{index}"),
                ],
                root, env, wrapper,
            ))
        del flight

    @property
    def nodes(self) -> list[Node]:
        return [self.coordinator, *self.executors]

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.pg} user=basin dbname=basin connect_timeout=5"

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(self.dsn, autocommit=True)

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        self.wait_serving()

    def live_executors(self) -> set[str]:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            rows = conn.execute("SELECT id FROM basin.executors WHERE state = 'live'").fetchall()
        return {r[0] for r in rows}

    def wait_serving(
        self, timeout: float = SERVE_TIMEOUT, probe: str | None = None, replacing: set[str] | None = None
    ) -> float:
        """Waits until a fresh connection sees every executor live (none of them one of
        `replacing`, the ids live before an executor was killed, when given) and `probe`, a
        query, runs; returns the seconds it took."""
        began = time.monotonic()
        deadline = began + timeout
        last: object = "no attempt"
        while time.monotonic() < deadline:
            dead = [n.name for n in self.nodes if not n.alive()]
            if dead:
                raise RuntimeError(f"{dead} exited\n" + "\n".join(n.log_tail() for n in self.nodes))
            try:
                with psycopg.connect(self.dsn, autocommit=True) as conn:
                    ids = {r[0] for r in conn.execute(
                        "SELECT id FROM basin.executors WHERE state = 'live'"
                    ).fetchall()}
                    live = len(ids)
                    if live == len(self.executors) and (replacing is None or ids != replacing):
                        if probe:
                            conn.execute(probe).fetchall()
                        return time.monotonic() - began
                    last = f"{live} of {len(self.executors)} executors live"
            except psycopg.Error as err:
                last = str(err).strip()
            time.sleep(0.1)
        raise RuntimeError(
            f"cluster not serving within {timeout:.0f}s: {last}\n"
            + "\n".join(n.log_tail() for n in self.nodes)
        )

    def stop(self) -> None:
        for node in self.nodes:
            node.sigcont()
            node.kill9()

    def terminate(self) -> None:
        """Clean shutdown: executors first, then the coordinator."""
        for node in [*self.executors, self.coordinator]:
            node.terminate()
