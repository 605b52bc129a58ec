"""The crash ledger: clients append rows with unique (client, seq) keys and log what the server
answered for every one of them; a nemesis kills, stops and restarts Basin processes meanwhile;
at the end every acknowledged key must be present exactly once and every present key must have
been sent with an outcome that allows it (acknowledged, or unknown: the connection broke or the
server said 08007).

Three write paths, taken in turn by every client:
- `stream_insert`: INSERT ... VALUES into the streaming table `ledger_stream` (one append),
- `stream_copy`: COPY ledger_stream FROM STDIN, one batch of rows per COPY (one append),
- `managed_insert`: INSERT ... VALUES into the Basin-managed (Delta) table `ledger_managed`.
"""

from __future__ import annotations

import random
import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import psycopg

from cluster import Cluster, Node

STREAM = "ledger_stream"
MANAGED = "ledger_managed"
MV = "ledger_per_client"
PATHS = ("stream_insert", "stream_copy", "managed_insert")
ROWS_PER_STATEMENT = {"stream_insert": 20, "stream_copy": 200, "managed_insert": 20}
# The server says the outcome is unknown: the statement may or may not have taken effect.
UNKNOWN_SQLSTATES = {"08007", "08006", "08003", "08001", "57P01", "57P02"}

SCHEMA = [
    f"CREATE TABLE {STREAM} (client INT NOT NULL, seq BIGINT NOT NULL, path TEXT, payload TEXT) "
    "APPEND ONLY WITH (compaction_interval = '2s')",
    f"CREATE TABLE {MANAGED} (client INT NOT NULL, seq BIGINT NOT NULL, path TEXT, payload TEXT)",
    f"CREATE MATERIALIZED VIEW {MV} AS SELECT client, count(*) AS n, sum(seq) AS total "
    f"FROM {STREAM} GROUP BY client",
]


@dataclass
class Ledger:
    """What one client sent and what it was told, per key, for one table."""

    acked: dict[str, set] = field(default_factory=lambda: {STREAM: set(), MANAGED: set()})
    failed: dict[str, set] = field(default_factory=lambda: {STREAM: set(), MANAGED: set()})
    unknown: dict[str, set] = field(default_factory=lambda: {STREAM: set(), MANAGED: set()})
    errors: Counter = field(default_factory=Counter)
    statements: Counter = field(default_factory=Counter)


def classify(error: BaseException) -> tuple[str, str]:
    """('failed'|'unknown', label) for an error a statement ended with."""
    sqlstate = getattr(error, "sqlstate", None)
    if sqlstate is None or sqlstate in UNKNOWN_SQLSTATES:
        return "unknown", sqlstate or type(error).__name__
    return "failed", sqlstate


class Client(threading.Thread):
    def __init__(self, cluster: Cluster, client_id: int, stop: threading.Event, paths=PATHS):
        super().__init__(name=f"ledger-client-{client_id}", daemon=True)
        self.cluster = cluster
        self.client_id = client_id
        self.stop = stop
        self.paths = paths
        self.ledger = Ledger()
        self.next_seq = 0
        self.conn: psycopg.Connection | None = None
        self.random = random.Random(client_id)
        self.crash: BaseException | None = None

    def run(self) -> None:
        try:
            turn = 0
            while not self.stop.is_set():
                path = self.paths[turn % len(self.paths)]
                turn += 1
                self.one_statement(path)
        except BaseException as err:  # reported by the test, never swallowed
            self.crash = err

    def connection(self) -> psycopg.Connection | None:
        if self.conn is not None and not self.conn.closed:
            return self.conn
        try:
            self.conn = psycopg.connect(self.cluster.dsn, autocommit=True)
        except psycopg.Error:
            self.conn = None
            time.sleep(0.2)
        return self.conn

    def one_statement(self, path: str) -> None:
        conn = self.connection()
        if conn is None:
            return
        count = ROWS_PER_STATEMENT[path]
        keys = [(self.client_id, self.next_seq + i) for i in range(count)]
        self.next_seq += count
        table = MANAGED if path == "managed_insert" else STREAM
        rows = [(c, s, path, f"c{c}-s{s}") for c, s in keys]
        self.ledger.statements[path] += 1
        try:
            if path == "stream_copy":
                with conn.cursor() as cur:
                    with cur.copy(f"COPY {table} (client, seq, path, payload) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
            else:
                values = ", ".join(f"({c}, {s}, '{p}', '{v}')" for c, s, p, v in rows)
                conn.execute(f"INSERT INTO {table} VALUES {values}")
        except psycopg.Error as err:
            outcome, label = classify(err)
            self.ledger.errors[f"{path}:{label}"] += 1
            getattr(self.ledger, outcome)[table].update(keys)
            if conn.closed or conn.broken or outcome == "unknown":
                try:
                    conn.close()
                except psycopg.Error:
                    pass
                self.conn = None
            if outcome == "failed":
                time.sleep(0.05)
            return
        self.ledger.acked[table].update(keys)


@dataclass
class Fault:
    kind: str
    node: str
    serving_seconds: float


class Nemesis(threading.Thread):
    """Every U(interval) seconds: a random process is killed with SIGKILL and restarted after
    U(0, 3) s (`kill9`), or stopped with SIGSTOP for U(1, 5) s (`sigstop`); then it waits until
    the cluster serves again."""

    def __init__(self, cluster: Cluster, cycles: int, interval: tuple[float, float], kind: str, seed: int):
        super().__init__(name="nemesis", daemon=True)
        self.cluster = cluster
        self.cycles = cycles
        self.interval = interval
        self.kind = kind
        self.random = random.Random(seed)
        self.faults: list[Fault] = []
        self.done = threading.Event()
        self.crash: BaseException | None = None

    def run(self) -> None:
        try:
            for _ in range(self.cycles):
                time.sleep(self.random.uniform(*self.interval))
                node = self.random.choice(self.cluster.nodes)
                self.faults.append(self.fault(node))
        except BaseException as err:
            self.crash = err
        finally:
            self.done.set()

    def fault(self, node: Node) -> Fault:
        replacing = None
        if node is not self.cluster.coordinator:
            replacing = self.cluster.live_executors()
        if self.kind == "kill9":
            node.kill9()
            time.sleep(self.random.uniform(0, 3))
            node.start()
        else:
            node.sigstop()
            time.sleep(self.random.uniform(1, 5))
            node.sigcont()
            replacing = None  # the same process carries on
        began = time.monotonic()
        self.cluster.wait_serving(probe=f"SELECT count(*) FROM {STREAM}", replacing=replacing)
        return Fault(self.kind, node.name, time.monotonic() - began)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def present_keys(conn: psycopg.Connection, table: str) -> Counter:
    rows = conn.execute(f"SELECT client, seq, count(*) FROM {table} GROUP BY client, seq").fetchall()
    return Counter({(c, s): n for c, s, n in rows})


def check(cluster: Cluster, clients: list[Client]) -> dict:
    """Checks the ledger against what the server holds; returns the counts."""
    report: dict = {"tables": {}}
    problems = []
    with cluster.connect() as conn:
        for table in (STREAM, MANAGED):
            acked = set().union(*(c.ledger.acked[table] for c in clients))
            unknown = set().union(*(c.ledger.unknown[table] for c in clients))
            failed = set().union(*(c.ledger.failed[table] for c in clients))
            present = present_keys(conn, table)
            lost = acked - present.keys()
            duplicated = {k: n for k, n in present.items() if n != 1}
            never_sent = present.keys() - acked - unknown - failed
            failed_present = present.keys() & failed
            report["tables"][table] = {
                "acked_rows": len(acked),
                "unknown_rows": len(unknown),
                "unknown_present": len(present.keys() & unknown),
                "failed_rows": len(failed),
                "present_rows": sum(present.values()),
                "lost": len(lost),
                "duplicated": len(duplicated),
                "never_sent": len(never_sent),
                "failed_but_present": len(failed_present),
            }
            if lost:
                problems.append(f"{table}: {len(lost)} acknowledged keys missing, e.g. {sorted(lost)[:5]}")
            if duplicated:
                problems.append(f"{table}: {len(duplicated)} keys present more than once, e.g. {list(duplicated.items())[:5]}")
            if never_sent:
                problems.append(f"{table}: {len(never_sent)} keys present that were never sent, e.g. {sorted(never_sent)[:5]}")
            if failed_present:
                problems.append(
                    f"{table}: {len(failed_present)} keys present whose statement failed with a definite "
                    f"error, e.g. {sorted(failed_present)[:5]}"
                )
    report["problems"] = problems
    return report


def check_view(cluster: Cluster, timeout: float = 60.0) -> str | None:
    """The materialized view over the stream must equal its batch recomputation (it may lag a
    little after the last restart, so this waits up to `timeout`). None when equal."""
    recompute = f"SELECT client, count(*) AS n, sum(seq) AS total FROM {STREAM} GROUP BY client ORDER BY client"
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            with cluster.connect() as conn:
                view = conn.execute(f"SELECT client, n, total FROM {MV} ORDER BY client").fetchall()
                batch = conn.execute(recompute).fetchall()
            if view == batch:
                return None
            last = f"view {view} != batch {batch}"
        except psycopg.Error as err:
            last = str(err).strip()
        time.sleep(0.5)
    return last


def summarize(nemesis: Nemesis, clients: list[Client], seconds: float) -> dict:
    serving = [f.serving_seconds for f in nemesis.faults]
    errors = Counter()
    statements = Counter()
    for c in clients:
        errors.update(c.ledger.errors)
        statements.update(c.ledger.statements)
    return {
        "fault": nemesis.kind,
        "cycles": len(nemesis.faults),
        "faults_per_node": dict(Counter(f.node for f in nemesis.faults)),
        "seconds": round(seconds, 1),
        "serving_p50_s": round(statistics.median(serving), 2) if serving else None,
        "serving_p99_s": round(percentile(serving, 0.99), 2) if serving else None,
        "serving_max_s": round(max(serving), 2) if serving else None,
        "statements": dict(statements),
        "errors": dict(errors),
    }
