"""A cluster of separate processes: `basin coordinator` plus `basin executor`s that the tests kill,
add and starve of memory, checking through SQL over pgwire that answers stay right.

Every query that reads files is distributed (--distribute-min-bytes 0) in small pieces, so the
TPC-H SF 0.01 lineitem file spreads over all executors.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import psycopg
import pytest

from conftest import REPO, basin_binary, free_ports

TPCH_DIR = REPO / "sql-tests" / "data" / "tpch-sf0.01"
# A join heavy enough to run for a while in a debug build: every pair of lineitems of one
# supplier (about 36 million rows before the count).
SLOW_QUERY = (
    "SELECT count(*), sum(a.l_quantity * b.l_quantity) FROM lineitem a "
    "JOIN lineitem b ON a.l_suppkey = b.l_suppkey"
)
# Five times SLOW_QUERY's join output, so it spans several 2 s heartbeats (how executors report
# running tasks): SLOW_QUERY alone (1.3 s here) ended before the first one once the dev profile
# dropped dependencies' debug assertions.
SLOWER_QUERY = (
    "SELECT count(*), sum(a.l_quantity * b.l_quantity) FROM lineitem a "
    "JOIN lineitem b ON a.l_suppkey % 20 = b.l_suppkey % 20"
)
GROUPED_QUERY = (
    "SELECT l_returnflag, l_linestatus, count(*), sum(l_quantity) FROM lineitem "
    "GROUP BY 1, 2 ORDER BY 1, 2"
)


def ensure_tpch() -> Path:
    if not (TPCH_DIR / "lineitem.parquet").is_file():
        subprocess.run(
            [str(basin_binary()), "datagen", "tpch", "--scale", "0.01", "--output", str(TPCH_DIR)],
            check=True,
        )
    return TPCH_DIR


class Cluster:
    """A coordinator and executors, each its own process group."""

    def __init__(
        self,
        root: Path,
        executor_memory: str = "1GiB",
        extra_args: tuple = (),
        distribute_min_bytes: str = "0",
        scan_bytes_per_partition: str = "64KiB",
    ):
        self.root = root
        self.binary = basin_binary()
        self.executor_memory = executor_memory
        self.pg, self.http, self.control = free_ports(3)
        self.executors: list[subprocess.Popen] = []
        self.env = dict(os.environ)
        self.env.setdefault("RUST_LOG", "warn,basin_coordinator=info,basin_executor=info")
        self.env["NO_COLOR"] = "1"
        log = open(root / "coordinator.log", "wb")
        self.coordinator = subprocess.Popen(
            [
                str(self.binary), "coordinator",
                "--pg-listen", f"127.0.0.1:{self.pg}",
                "--http-listen", f"127.0.0.1:{self.http}",
                "--control-listen", f"127.0.0.1:{self.control}",
                "--data-dir", str(root / "data"),
                "--distribute-min-bytes", distribute_min_bytes,
                "--scan-bytes-per-partition", scan_bytes_per_partition,
                *extra_args,
            ],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=self.env,
            start_new_session=True,
        )

    host = "127.0.0.1"

    @property
    def port(self) -> int:
        return self.pg

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.pg} user=basin dbname=basin connect_timeout=10"

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(self.dsn, autocommit=True)

    def add_executor(self) -> subprocess.Popen:
        index = len(self.executors)
        log = open(self.root / f"executor-{index}.log", "wb")
        process = subprocess.Popen(
            [
                str(self.binary), "executor",
                "--coordinator", f"http://127.0.0.1:{self.control}",
                "--listen", "127.0.0.1:0",
                "--memory-limit", self.executor_memory,
                "--spill-dir", str(self.root / f"spill-{index}"),
            ],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=self.env,
            start_new_session=True,
        )
        (self.root / f"spill-{index}").mkdir(exist_ok=True)
        self.executors.append(process)
        return process

    def create_tpch_tables(self, *tables: str) -> None:
        """External tables over the TPC-H SF 0.01 files (lineitem when none are named)."""
        tpch = ensure_tpch()
        with self.connect() as conn:
            for table in tables or ("lineitem",):
                conn.execute(
                    f"CREATE EXTERNAL TABLE {table} STORED AS PARQUET LOCATION '{tpch}/{table}.parquet'"
                )

    def live(self) -> list[str]:
        with self.connect() as conn:
            rows = conn.execute(
                "SELECT id FROM basin.executors WHERE state = 'live' ORDER BY id"
            ).fetchall()
        return [r[0] for r in rows]

    def wait_live(self, count: int, timeout: float = 60.0) -> list[str]:
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            try:
                live = self.live()
                if len(live) == count:
                    return live
                last = live
            except psycopg.Error as err:
                last = err
            time.sleep(0.2)
        raise AssertionError(f"expected {count} live executors, last saw {last}\n{self.log_tail()}")

    def log_tail(self) -> str:
        text = (self.root / "coordinator.log").read_text(errors="replace")
        return "\n".join(text.splitlines()[-40:])

    def last_query(self, conn: psycopg.Connection, like: str) -> tuple:
        return conn.execute(
            "SELECT state, stages, attempts, executors FROM basin.queries "
            "WHERE query LIKE %s AND query NOT LIKE '%%basin.queries%%' "
            "ORDER BY query_id DESC LIMIT 1",
            (like,),
        ).fetchone()

    def stop(self) -> None:
        for process in [*self.executors, self.coordinator]:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)


@pytest.fixture()
def cluster(tmp_path):
    cluster = Cluster(tmp_path)
    try:
        for _ in range(3):
            cluster.add_executor()
        cluster.wait_live(3)
        cluster.create_tpch_tables()
        yield cluster
    finally:
        cluster.stop()


def test_queries_spread_over_every_executor(cluster):
    live = cluster.wait_live(3)
    with cluster.connect() as conn:
        rows = conn.execute(GROUPED_QUERY).fetchall()
        assert len(rows) == 4
        assert sum(r[2] for r in rows) == 60175
        state, stages, attempts, used = cluster.last_query(conn, "%GROUP BY 1, 2%")
        assert state == "finished"
        assert stages >= 3, "scan, shuffle and head stages"
        assert attempts == 1
        assert sorted(used.split(",")) == live
        plan = "\n".join(r[1] for r in conn.execute(f"EXPLAIN {GROUPED_QUERY}").fetchall())
        assert "Stage 2" in plan and "NetworkShuffleExec" in plan
        for executor in live:
            assert executor in plan, f"{executor} has no task in\n{plan}"


def test_killed_executor_mid_query_costs_no_answer(cluster):
    with cluster.connect() as conn:
        started = time.monotonic()
        expected = conn.execute(SLOW_QUERY).fetchone()
        took = time.monotonic() - started
    assert expected[0] > 1_000_000

    result: dict = {}

    def run():
        try:
            with cluster.connect() as conn:
                result["row"] = conn.execute(SLOW_QUERY).fetchone()
        except Exception as err:  # reported by the assertion below
            result["error"] = err

    victim = cluster.executors[1]
    worker = threading.Thread(target=run)
    worker.start()
    time.sleep(max(0.2, took / 3))
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)
    worker.join(timeout=300)

    assert "error" not in result, f"query failed: {result.get('error')}\n{cluster.log_tail()}"
    assert result["row"] == expected
    with cluster.connect() as conn:
        state, _stages, attempts, used = cluster.last_query(conn, "%JOIN lineitem b%")
        assert state == "finished"
        assert attempts >= 2, "the kill landed mid-query, so the query ran again"
        dead = conn.execute(
            "SELECT count(*) FROM basin.executors WHERE state = 'dead'"
        ).fetchone()[0]
        assert dead == 1, cluster.log_tail()
        # Both survivors ran the retry: a survivor still busy with the failed attempt's tasks
        # answers the probe late, and must not be taken for dead.
        assert len(used.split(",")) == 2, f"retry ran on {used}\n{cluster.log_tail()}"

    # The next query works on the two survivors.
    with cluster.connect() as conn:
        assert conn.execute(GROUPED_QUERY).fetchall()[0][2] > 0

    # A restarted executor joins and gets work on the next query.
    cluster.add_executor()
    live = cluster.wait_live(3)
    with cluster.connect() as conn:
        conn.execute(GROUPED_QUERY).fetchall()
        _state, _stages, _attempts, used = cluster.last_query(conn, "%GROUP BY 1, 2%")
        assert sorted(used.split(",")) == live


def running_tasks(cluster: Cluster) -> int:
    with cluster.connect() as conn:
        return conn.execute("SELECT coalesce(sum(running_tasks), 0) FROM basin.executors").fetchone()[0]


def wait_running_tasks(cluster: Cluster, done, timeout: float = 8.0) -> int:
    """Polls the executors' running task count (sent with each 2 s heartbeat) until done(n)."""
    deadline = time.monotonic() + timeout
    while True:
        n = running_tasks(cluster)
        if done(n) or time.monotonic() > deadline:
            return n
        time.sleep(0.2)


def run_in_thread(cluster: Cluster, sql: str, setup: str | None = None) -> tuple[threading.Thread, dict]:
    result: dict = {}

    def run():
        try:
            with cluster.connect() as conn:
                result["conn"] = conn
                if setup:
                    conn.execute(setup)
                result["row"] = conn.execute(sql).fetchone()
        except Exception as err:  # the test inspects it
            result["error"] = err

    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


def test_statement_timeout_and_cancel_tear_down_every_task(cluster):
    # While the slow query runs, the executors report its tasks.
    thread, result = run_in_thread(cluster, SLOWER_QUERY)
    busy = wait_running_tasks(cluster, lambda n: n > 0)
    thread.join(timeout=300)
    assert "error" not in result, result.get("error")
    assert busy > 0, "the executors never reported the slow query's tasks"
    assert wait_running_tasks(cluster, lambda n: n == 0) == 0

    # statement_timeout ends it with 57014 and every task goes away.
    thread, result = run_in_thread(cluster, SLOWER_QUERY, setup="SET statement_timeout = '400ms'")
    thread.join(timeout=60)
    assert getattr(result.get("error"), "sqlstate", None) == "57014", result
    assert wait_running_tasks(cluster, lambda n: n == 0) == 0

    # So does a cancel request.
    thread, result = run_in_thread(cluster, SLOWER_QUERY)
    assert wait_running_tasks(cluster, lambda n: n > 0) > 0
    result["conn"].cancel()
    thread.join(timeout=60)
    assert getattr(result.get("error"), "sqlstate", None) == "57014", result
    assert wait_running_tasks(cluster, lambda n: n == 0) == 0
    with cluster.connect() as conn:
        states = [r[0] for r in conn.execute(
            "SELECT state FROM basin.queries WHERE query LIKE '%JOIN lineitem b%' "
            "AND query NOT LIKE '%basin.queries%' ORDER BY query_id"
        ).fetchall()]
    assert states == ["finished", "cancelled", "cancelled"], states


def test_sigterm_drains_an_executor_without_failing_its_query(cluster):
    with cluster.connect() as conn:
        started = time.monotonic()
        expected = conn.execute(SLOW_QUERY).fetchone()
        took = time.monotonic() - started
    thread, result = run_in_thread(cluster, SLOW_QUERY)
    time.sleep(max(0.2, took / 3))
    leaving = cluster.executors[2]
    os.killpg(leaving.pid, signal.SIGTERM)
    thread.join(timeout=300)
    assert result.get("row") == expected, result.get("error")
    leaving.wait(timeout=60)
    with cluster.connect() as conn:
        _state, _stages, attempts, _used = cluster.last_query(conn, "%JOIN lineitem b%")
        assert attempts == 1, "the draining executor finished its tasks"
    survivors = cluster.wait_live(2)
    with cluster.connect() as conn:
        conn.execute(GROUPED_QUERY).fetchall()
        assert sorted(cluster.last_query(conn, "%GROUP BY 1, 2%")[3].split(",")) == survivors


def test_admission_queues_queries_beyond_the_limit(tmp_path):
    cluster = Cluster(tmp_path, extra_args=("--max-concurrent-queries", "1"))
    try:
        for _ in range(2):
            cluster.add_executor()
        cluster.wait_live(2)
        cluster.create_tpch_tables()
        with cluster.connect() as conn:
            expected = conn.execute(SLOW_QUERY).fetchone()
        first, first_result = run_in_thread(cluster, SLOW_QUERY)
        time.sleep(0.3)
        second, second_result = run_in_thread(cluster, SLOW_QUERY)
        seen_queued = False
        deadline = time.monotonic() + 60
        while first.is_alive() and time.monotonic() < deadline and not seen_queued:
            with cluster.connect() as conn:
                seen_queued = conn.execute(
                    "SELECT count(*) FROM basin.queries WHERE state = 'queued'"
                ).fetchone()[0] == 1
            time.sleep(0.05)
        first.join(timeout=300)
        second.join(timeout=300)
        assert seen_queued, "the second query never waited for admission"
        assert first_result.get("row") == expected, first_result.get("error")
        assert second_result.get("row") == expected, second_result.get("error")
    finally:
        cluster.stop()


def test_executor_lost_after_rows_were_sent_is_a_retryable_error(cluster):
    import pgwire_raw as raw

    sock = raw.open_socket(cluster, timeout=120)
    try:
        raw.handshake(sock)
        # 36 million rows: they stream for a long while, so rows reach the client first.
        sock.sendall(raw.query(
            "SELECT a.l_orderkey, b.l_orderkey FROM lineitem a JOIN lineitem b "
            "ON a.l_suppkey = b.l_suppkey"
        ))
        kinds = []
        while b"D" not in kinds:
            kind, _payload = raw.read_message(sock)
            kinds.append(kind)
        victim = cluster.executors[0]
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait(timeout=30)
        error = None
        while True:
            message = raw.read_message(sock)
            assert message is not None, "connection closed instead of an error"
            kind, payload = message
            if kind == b"E":
                error = raw.error_fields(payload)
            if kind in (b"Z", b"C"):
                break
        assert error is not None, "the query completed although an executor was killed mid-stream"
        assert error.get("C") == "40001", error
        assert "executor" in error.get("M", ""), error
    finally:
        sock.close()
    # The next query works on the survivors.
    with cluster.connect() as conn:
        assert conn.execute(GROUPED_QUERY).fetchall()[0][2] > 0


def test_q5_plan_has_stages_with_tasks_on_both_executors(tmp_path):
    cluster = Cluster(tmp_path)
    try:
        for _ in range(2):
            cluster.add_executor()
        live = cluster.wait_live(2)
        q5 = (REPO / "sql-tests" / "slt" / "tpch" / "q05.slt").read_text()
        sql = q5[q5.index("select"):q5.index("----")]
        cluster.create_tpch_tables("customer", "orders", "lineitem", "supplier", "nation", "region")
        with cluster.connect() as conn:
            plan = "\n".join(r[1] for r in conn.execute(f"EXPLAIN {sql}").fetchall())
        stages = set(re.findall(r"Stage (\d+) ── tasks=(\d+)", plan))
        assert len(stages) >= 3, plan
        assert any(int(tasks) == 2 for _num, tasks in stages), plan
        for executor in live:
            assert executor in plan, plan
    finally:
        cluster.stop()


def test_dead_executor_noticed_by_heartbeat_within_ten_seconds(cluster):
    victim = cluster.executors[0]
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)
    killed = time.monotonic()
    cluster.wait_live(2, timeout=15)
    assert time.monotonic() - killed <= 12


def test_executor_added_to_running_cluster_gets_work(tmp_path):
    cluster = Cluster(tmp_path)
    try:
        cluster.add_executor()
        first = cluster.wait_live(1)
        cluster.create_tpch_tables()
        with cluster.connect() as conn:
            conn.execute(GROUPED_QUERY).fetchall()
            assert cluster.last_query(conn, "%GROUP BY 1, 2%")[3] == first[0]
        cluster.add_executor()
        both = cluster.wait_live(2)
        with cluster.connect() as conn:
            conn.execute(GROUPED_QUERY).fetchall()
            assert sorted(cluster.last_query(conn, "%GROUP BY 1, 2%")[3].split(",")) == both
    finally:
        cluster.stop()


def memory_cluster(tmp_path: Path, memory: str) -> Cluster:
    cluster = Cluster(tmp_path, executor_memory=memory)
    for _ in range(2):
        cluster.add_executor()
    cluster.wait_live(2)
    cluster.create_tpch_tables()
    return cluster


def test_sort_larger_than_executor_memory_completes_by_spilling(tmp_path):
    cluster = memory_cluster(tmp_path, "24MiB")
    try:
        query = "SELECT * FROM lineitem ORDER BY l_comment, l_orderkey, l_linenumber"
        with cluster.connect() as conn:
            analyzed = "\n".join(r[1] for r in conn.execute(f"EXPLAIN ANALYZE {query}").fetchall())
            spills = [int(n) for n in re.findall(r"spill_count=(\d+)", analyzed)]
            assert any(n > 0 for n in spills), analyzed
            rows = conn.execute(query).fetchall()
        assert len(rows) == 60175
        keys = [(r[15], r[0], r[3]) for r in rows]  # l_comment, l_orderkey, l_linenumber
        assert keys == sorted(keys)
        assert all(p.poll() is None for p in cluster.executors)
    finally:
        cluster.stop()


def test_query_beyond_executor_memory_fails_with_53200_and_executors_stay_up(tmp_path):
    cluster = memory_cluster(tmp_path, "12MiB")
    try:
        live = cluster.live()
        with cluster.connect() as conn:
            # The build side of a hash join cannot spill.
            with pytest.raises(psycopg.Error) as failure:
                conn.execute(
                    "SELECT count(*) FROM lineitem a JOIN lineitem b "
                    "ON a.l_comment = b.l_comment AND a.l_orderkey <> b.l_orderkey"
                ).fetchone()
            assert failure.value.sqlstate == "53200", failure.value
            assert "memory" in (failure.value.diag.message_hint or "")
        # The executors stay up and the next query works.
        assert cluster.wait_live(2) == live
        assert all(p.poll() is None for p in cluster.executors)
        # The failed query's other tasks release their memory as their cancellation reaches
        # them (tens of milliseconds); within a few seconds the same executors serve again.
        deadline = time.monotonic() + 5
        while True:
            try:
                with cluster.connect() as conn:
                    assert conn.execute(GROUPED_QUERY).fetchall()[0][2] > 0
                break
            except psycopg.errors.OutOfMemory:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
    finally:
        cluster.stop()


def test_query_out_of_coordinator_memory_runs_again_over_the_executors(tmp_path):
    """A query small enough to stay on the coordinator (under --distribute-min-bytes) that runs
    out of the coordinator's memory before its first row is planned again, distributed, and
    answered by the executors; a query the executors cannot run keeps its 53200."""
    cluster = Cluster(tmp_path, distribute_min_bytes="1GiB")
    try:
        for _ in range(2):
            cluster.add_executor()
        cluster.wait_live(2)
        cluster.create_tpch_tables()
        # The build side of a hash join cannot spill; a few MiB of l_comment strings.
        join = (
            "SELECT count(*) FROM lineitem a JOIN lineitem b "
            "ON a.l_comment = b.l_comment AND a.l_orderkey <> b.l_orderkey"
        )
        with cluster.connect() as conn:
            expected = conn.execute(join).fetchone()
            assert cluster.last_query(conn, "%l_comment = b.l_comment%")[1] == 1, "single-node"
            conn.execute("SET basin.query_memory_limit = '1MB'")
            assert conn.execute(join).fetchone() == expected
            state, stages, attempts, executors = cluster.last_query(conn, "%l_comment = b.l_comment%")
            assert state == "finished" and stages > 1 and len(executors.split(",")) == 2, (state, stages, executors)
            # Nothing to distribute (no file scan): the coordinator's 53200 stands.
            with pytest.raises(psycopg.errors.OutOfMemory):
                conn.execute(
                    "SELECT count(*) FROM generate_series(1, 200000) AS a(x) "
                    "JOIN generate_series(1, 200000) AS b(y) ON x = y"
                ).fetchone()
        assert "running it over the executors" in cluster.log_tail()
    finally:
        cluster.stop()


def test_standalone_restarts_a_killed_executor(tmp_path):
    from conftest import Basin

    server = Basin(basin_binary(), tmp_path)
    try:
        server.start()
        deadline = time.monotonic() + 30
        while True:
            with server.connect() as conn:
                live = conn.execute(
                    "SELECT id FROM basin.executors WHERE state = 'live' ORDER BY id"
                ).fetchall()
            if len(live) == 2 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert len(live) == 2, "standalone starts two executors by default"
        children = subprocess.run(
            ["pgrep", "-P", str(server.process.pid)], capture_output=True, text=True, check=True
        ).stdout.split()
        assert len(children) == 2
        os.kill(int(children[0]), signal.SIGKILL)
        # A replacement registers; the killed one is dead (seen by the failed heartbeat or
        # the reaper) and gets no work.
        deadline = time.monotonic() + 30
        while True:
            with server.connect() as conn:
                states = dict(conn.execute("SELECT id, state FROM basin.executors").fetchall())
            fresh = [i for i, s in states.items() if s == "live" and (i,) not in live]
            if fresh or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert len(fresh) == 1, states
        assert server.alive()
    finally:
        server.stop(kill9=True)
