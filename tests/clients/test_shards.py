"""Streaming-table shards on executors: a table's log shards are placed on the executors'
nodes, kill -9 of an executor holding shards during ingest from four producers loses no
acknowledged row and leaves no batch half-present, and the coordinator reads the executors' logs
back after its own restart."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
import os
import signal

from ingest_checks import assert_exactly_once
from test_streaming import create_events, ndjson


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def live_executors(basin) -> int:
    with basin.connect() as conn:
        return conn.execute("SELECT count(*) FROM basin.executors WHERE state = 'live'").fetchone()[0]


def test_shards_are_placed_on_the_executors_nodes(basin):
    with basin.connect() as conn:
        # Without the option, one shard per executor node.
        create_events(conn, "p_default")
        shards, nodes = conn.execute(
            "SELECT shards, shard_nodes FROM basin.tables WHERE table_name = 'p_default'"
        ).fetchone()
        assert shards == basin.executors
        assert len(set(nodes.split(","))) == basin.executors, nodes
        conn.execute(
            "INSERT INTO p_default VALUES ('a', '2026-06-01T00:00:00Z', 1), ('b', '2026-06-01T00:00:01Z', 2)"
        )
        conn.execute("INSERT INTO p_default VALUES ('c', '2026-06-01T00:00:02Z', 3)")
        assert conn.execute("SELECT count(*), sum(temp) FROM p_default").fetchone() == (3, 6.0)
    # The logs are in the executors' data directories, not the coordinator's.
    node_logs = list((basin.data_dir / "executors").rglob("p_default_*/shard-*/*.bsl"))
    assert len(node_logs) == basin.executors, node_logs
    assert not list((basin.data_dir / "streams").rglob("p_default_*/log/shard-*/*.bsl"))
    with basin.connect() as conn:
        conn.execute("DROP TABLE p_default")
    # Dropping the table deletes its shards on the nodes too.
    assert not list((basin.data_dir / "executors").rglob("p_default_*"))


def test_kill9_of_an_executor_holding_shards_during_ingest_from_four_producers(basin):
    with basin.connect() as conn:
        create_events(conn, "x_events", "WITH (shards = 4, compaction_interval = '300ms')")
    acked: dict[int, int] = {}
    sent: dict[int, int] = {}
    refused = []
    acked_after_kill = []
    killed_at = [float("inf")]
    lock = threading.Lock()
    stop = threading.Event()
    port = basin.http_port

    def producer(worker: int) -> None:
        batch = 0
        while not stop.is_set():
            # Every attempt is a new batch: a refused one may still be durable, so resending
            # its rows under the same id could make them appear twice.
            batch_id = worker * 1_000_000 + batch
            batch += 1
            size = 50 + (batch % 7) * 40
            rows = [
                {"device_id": f"{batch_id}:{j}", "ts": "2026-06-01T00:00:00Z", "temp": float(batch_id)}
                for j in range(size)
            ]
            with lock:
                sent[batch_id] = size
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/v1/tables/x_events/rows",
                data=ndjson(rows),
                method="POST",
                headers={"Content-Type": "application/x-ndjson"},
            )
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    assert response.status == 200
                    with lock:
                        acked[batch_id] = size
                        if time.monotonic() > killed_at[0]:
                            acked_after_kill.append(batch_id)
            except urllib.error.HTTPError as error:
                # 503 + Retry-After: the executor died under this append (08007) or no
                # shard could take it; either way it was not acknowledged.
                assert error.code == 503, error.read()
                assert error.headers.get("Retry-After")
                with lock:
                    refused.append(batch_id)
                time.sleep(0.05)

    threads = [threading.Thread(target=producer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(3)
        victim = basin.executor_pids()[0]
        killed_at[0] = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        # Ingest goes on through the other executor's shards; standalone restarts the victim
        # on its node, whose shards reopen from their logs.
        wait_for(lambda: victim not in basin.executor_pids() and len(basin.executor_pids()) == 2, 60, "the executor's restart")
        wait_for(lambda: live_executors(basin) == 2, 60, "the restarted executor to register")
        time.sleep(3)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=120)
    print(f"acked {len(acked)}, refused {len(refused)}, acked after the kill {len(acked_after_kill)}")
    assert len(acked) > 40, "producers made too little progress to test anything"
    assert acked_after_kill, "no batch was acknowledged after the kill"

    def check() -> None:
        with basin.connect() as conn:
            assert_exactly_once(conn, "x_events", acked, sent)

    check()
    with basin.connect() as conn:
        lake_rows = conn.execute(
            "SELECT lake_rows FROM basin.ingest_stats WHERE table_name = 'public.x_events'"
        ).fetchone()[0]
    assert lake_rows > 0, "compaction ran during the ingest"
    # After a restart of everything, the coordinator reads the tails back from the executors' logs.
    basin.restart()
    check()
    # And the table takes rows again on every shard.
    with basin.connect() as conn:
        for i in range(8):
            conn.execute(
                "INSERT INTO x_events VALUES (%s, '2026-06-02T00:00:00Z', -1)", (f"after:{i}",)
            )
        assert conn.execute("SELECT count(*) FROM x_events WHERE temp = -1").fetchone() == (8,)
