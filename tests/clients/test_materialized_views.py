"""Materialized views against their own definitions.

Differential: after every random batch, each supported view shape must equal its defining
query run as a batch query. Both sides are read in one statement: a statement that reads a
materialized view pins one committed epoch for every view and table it reads, so the
comparison is at the same epoch even while the view is seconds behind or ahead of the log, and
while compaction moves rows into the lake.

Crash: kill -9 of the whole cluster during ingest from two producers; after the restart every
view resumes from its checkpoint plus the table's log and equals its batch recomputation.
"""

from __future__ import annotations

import json
import os
import random
import re
import threading
import time
import urllib.error
import urllib.request

import psycopg
import pytest

# Checkpoint often so the crash test resumes from a checkpoint and replays the log after it.
os.environ["BASIN_CHECKPOINT_INTERVAL_MS"] = "700"

EVENTS = """CREATE TABLE {name} (device TEXT NOT NULL, region TEXT, ts TIMESTAMPTZ, temp DOUBLE PRECISION,
  n BIGINT) APPEND ONLY WITH (shards = 3, compaction_interval = '300ms')"""

# Every shape the incremental path supports, plus full-refresh ones. Temperatures are whole
# numbers, so sums of doubles are exact in any order.
VIEWS = {
    "v_filter": "SELECT device, upper(region) AS r, temp * 2 AS t2 FROM {t} WHERE temp > 10",
    "v_union": "SELECT device AS k FROM {t} WHERE n % 2 = 0 UNION ALL SELECT region FROM {t} WHERE temp < 0",
    "v_group": """SELECT device, count(*) AS c, sum(n) AS s, avg(temp) AS a, min(temp) AS lo, max(temp) AS hi,
                  count(DISTINCT region) AS regions, count(region) AS with_region FROM {t} GROUP BY device""",
    "v_global": "SELECT count(*) AS c, sum(temp) AS s, max(ts) AS latest FROM {t}",
    "v_having": "SELECT region, count(*) AS c FROM {t} GROUP BY region HAVING count(*) > 5",
    "v_minute": "SELECT date_trunc('minute', ts) AS minute, device, count(*) AS c, max(temp) AS hi FROM {t} GROUP BY 1, 2",
    "v_lookup": "SELECT e.device, r.label, e.temp FROM {t} e JOIN {dim} r ON e.region = r.region",
    "v_lookup_agg": "SELECT r.label, count(*) AS c, max(e.temp) AS hi FROM {t} e JOIN {dim} r ON e.region = r.region GROUP BY r.label",
    "v_on_view": "SELECT device, t2 FROM {p}v_filter WHERE t2 > 50",
    "v_on_view_agg": "SELECT device, count(*) AS c, sum(t2) AS s FROM {p}v_filter GROUP BY device",
    "v_tumble": "SELECT device, window_start, count(*) AS c, sum(temp) AS s FROM TUMBLE({t}, ts, INTERVAL '1 minute') GROUP BY device, window_start",
    "v_hop": "SELECT window_start, window_end, count(*) AS c, max(temp) AS hi FROM HOP({t}, ts, INTERVAL '30 seconds', INTERVAL '2 minutes') GROUP BY window_start, window_end",
    # HOP by panes: a key besides the window, and aggregates whose states are more than a count.
    "v_hop_panes": "SELECT device, window_start, window_end, count(*) AS c, avg(temp) AS a, min(n) AS lo "
                   "FROM HOP({t}, ts, INTERVAL '20 seconds', INTERVAL '1 minute') GROUP BY device, window_start, window_end",
    "v_join2": "SELECT e.device, e.n, o.code FROM {t} e JOIN {o} o ON e.device = o.device WHERE o.code % 3 = 0",
    "v_join2_agg": "SELECT o.code % 5 AS k, count(*) AS c, sum(e.n) AS s, max(e.temp) AS hi FROM {t} e JOIN {o} o ON e.device = o.device GROUP BY 1",
    "v_window_join": "SELECT a.window_start, a.device, count(*) AS c FROM TUMBLE({t}, ts, INTERVAL '1 minute') a "
                     "JOIN TUMBLE({o}, ts, INTERVAL '1 minute') b ON a.device = b.device AND a.window_start = b.window_start "
                     "GROUP BY a.window_start, a.device",
    "v_self": "SELECT a.device, count(*) AS c FROM {t} a JOIN {t} b ON a.n = b.n + 1 GROUP BY a.device",
    "v_top": "SELECT device, temp, n FROM {t} ORDER BY temp DESC, n DESC LIMIT 5",
    "v_distinct": "SELECT DISTINCT region FROM {t}",
}

INCREMENTAL = {"v_filter", "v_union", "v_group", "v_global", "v_having", "v_minute", "v_lookup",
               "v_lookup_agg", "v_on_view", "v_on_view_agg", "v_tumble", "v_hop", "v_hop_panes", "v_join2", "v_join2_agg",
               "v_window_join"}

OTHER = ("CREATE TABLE {name} (device TEXT, ts TIMESTAMPTZ, code BIGINT) APPEND ONLY "
         "WITH (shards = 2, compaction_interval = '300ms')")


def create_views(conn, table: str, dim: str, prefix: str) -> dict[str, str]:
    queries = {}
    for name, template in VIEWS.items():
        query = template.format(t=table, dim=dim, p=prefix, o=f"{prefix}other")
        conn.execute(f"CREATE MATERIALIZED VIEW {prefix}{name} AS {query}")
        queries[f"{prefix}{name}"] = query
    return queries


def differences(conn, view: str, query: str) -> int:
    """Rows in the view but not the query plus rows in the query but not the view (multisets),
    read in one statement, so at one epoch."""
    return conn.execute(
        f"""SELECT (SELECT count(*) FROM (SELECT * FROM {view} EXCEPT ALL ({query})) a)
                 + (SELECT count(*) FROM (({query}) EXCEPT ALL SELECT * FROM {view}) b)"""
    ).fetchone()[0]


def random_rows(rng: random.Random, count: int, start: int) -> list[tuple]:
    rows = []
    for i in range(count):
        rows.append((
            rng.choice(["a", "b", "c", "d", "e"]),
            rng.choice(["north", "south", "east", None]),
            f"2026-03-01T10:{rng.randrange(0, 6):02d}:{rng.randrange(0, 60):02d}Z",
            float(rng.randrange(-20, 60)),
            start + i,
        ))
    return rows


def insert_other(conn, table: str, rng: random.Random, count: int, start: int) -> None:
    rows = [(rng.choice(["a", "b", "c", "d", "e"]),
             f"2026-03-01T10:{rng.randrange(0, 6):02d}:{rng.randrange(0, 60):02d}Z", start + i)
            for i in range(count)]
    with conn.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} VALUES " + ", ".join(["(%s, %s, %s)"] * len(rows)),
            [value for row in rows for value in row],
        )


def insert(conn, table: str, rows: list[tuple]) -> None:
    with conn.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} VALUES " + ", ".join(["(%s, %s, %s, %s, %s)"] * len(rows)),
            [value for row in rows for value in row],
        )


def test_every_view_shape_equals_its_query_at_every_epoch(basin):
    rng = random.Random(20261124)
    with basin.connect() as conn:
        conn.execute(EVENTS.format(name="d_events"))
        conn.execute("CREATE TABLE d_regions (region TEXT, label TEXT)")
        conn.execute("INSERT INTO d_regions VALUES ('north', 'N'), ('south', 'S'), ('east', 'E')")
        conn.execute(OTHER.format(name="d_other"))
        insert(conn, "d_events", random_rows(rng, 40, 0))
        insert_other(conn, "d_other", rng, 10, 0)
        queries = create_views(conn, "d_events", "d_regions", "d_")
        modes = dict(conn.execute("SELECT name, mode FROM basin.materialized_views").fetchall())
        for name in queries:
            expected = "incremental" if name.removeprefix("d_") in INCREMENTAL else "full refresh"
            assert modes[f"public.{name}"] == expected, (name, modes)
        next_n = 40
        for round_ in range(20):
            rows = random_rows(rng, rng.randrange(1, 60), next_n)
            next_n += len(rows)
            insert(conn, "d_events", rows)
            if rng.random() < 0.6:
                insert_other(conn, "d_other", rng, rng.randrange(1, 8), 1000 * (round_ + 1))
            # Compare right away (the view may lag the insert: both sides are at one epoch) and
            # at a random later moment.
            time.sleep(rng.choice([0, 0, 0.05, 0.15]))
            for view, query in queries.items():
                assert differences(conn, view, query) == 0, f"round {round_}: {view} differs from {query}"
        # Strict reads see everything this session wrote.
        conn.execute("SET basin.read_consistency = 'strict'")
        assert conn.execute("SELECT c FROM d_v_global").fetchone()[0] == next_n
        for view, query in queries.items():
            assert differences(conn, view, query) == 0, view
        # The lake took rows meanwhile: compaction ran under the views' feet.
        lake_rows = conn.execute("SELECT lake_rows FROM basin.ingest_stats WHERE table_name IN ('d_events', 'public.d_events')").fetchone()[0]
        assert lake_rows > 0
        stats = conn.execute(
            "SELECT name, input_rows, freshness_samples, freshness_p50_ms, freshness_p99_ms, state FROM basin.materialized_views"
        ).fetchall()
        for name, input_rows, samples, p50, p99, state in stats:
            assert state == "running", (name, state)
            if name.removeprefix("public.d_") in {"v_filter", "v_group", "v_global"}:
                assert input_rows == next_n - 40, (name, input_rows)
                assert samples > 0 and 0 < p50 <= p99, (name, samples, p50, p99)


def test_strict_reads_wait_for_the_sessions_own_writes(basin):
    with basin.connect() as conn:
        conn.execute(EVENTS.format(name="s_events"))
        conn.execute("CREATE MATERIALIZED VIEW s_count AS SELECT count(*) AS c FROM s_events")
        conn.execute("SET basin.read_consistency = 'strict'")
        for expected in range(1, 31):
            conn.execute(f"INSERT INTO s_events VALUES ('a', NULL, NULL, 1, {expected})")
            assert conn.execute("SELECT c FROM s_count").fetchone()[0] == expected
        with pytest.raises(psycopg.errors.InvalidParameterValue):
            conn.execute("SET basin.read_consistency = 'sometimes'")


def test_explain_show_and_refusals(basin):
    with basin.connect() as conn:
        conn.execute(EVENTS.format(name="e_events"))
        conn.execute("CREATE MATERIALIZED VIEW e_agg AS SELECT device, max(temp) AS hi FROM e_events GROUP BY device")
        conn.execute("CREATE MATERIALIZED VIEW e_rank AS SELECT device, rank() OVER (ORDER BY temp) AS r FROM e_events")
        explained = dict(conn.execute("EXPLAIN MATERIALIZED VIEW e_agg").fetchall())
        assert explained["mode"] == "incremental"
        assert "grouped aggregate" in explained["why"]
        assert explained["inputs"] == "streaming table public.e_events"
        conn.execute("""CREATE MATERIALIZED VIEW e_hop AS SELECT device, window_start, count(*) AS c
                        FROM HOP(e_events, ts, INTERVAL '10 seconds', INTERVAL '30 seconds') GROUP BY device, window_start""")
        explained = dict(conn.execute("EXPLAIN MATERIALIZED VIEW e_hop").fetchall())
        assert "HOP by panes" in explained["windows"] and "3 windows" in explained["windows"], explained
        conn.execute("DROP MATERIALIZED VIEW e_hop")
        explained = dict(conn.execute("EXPLAIN MATERIALIZED VIEW e_rank").fetchall())
        assert explained["mode"] == "full refresh"
        assert "WindowAggr" in explained["why"], explained["why"]
        names = [row[1] for row in conn.execute("SHOW MATERIALIZED VIEWS").fetchall()]
        assert {"e_agg", "e_rank"} <= set(names)
        # psql's \dm: relkind 'm'.
        kinds = dict(conn.execute(
            "SELECT relname, relkind FROM pg_catalog.pg_class WHERE relname IN ('e_agg', 'e_events')"
        ).fetchall())
        assert kinds == {"e_agg": "m", "e_events": "r"}
        matviews = dict(conn.execute("SELECT matviewname, definition FROM pg_catalog.pg_matviews").fetchall())
        assert "max(temp)" in matviews["e_agg"]
        with pytest.raises(psycopg.errors.UndefinedTable):
            conn.execute("EXPLAIN MATERIALIZED VIEW e_nothing")
        with pytest.raises(psycopg.errors.WrongObjectType):
            conn.execute("EXPLAIN MATERIALIZED VIEW e_events")
        with pytest.raises(psycopg.errors.InvalidParameterValue):
            conn.execute("CREATE MATERIALIZED VIEW e_bad WITH (refresh = 'sometimes') AS SELECT 1")
        with pytest.raises(psycopg.errors.DependentObjectsStillExist):
            conn.execute("DROP TABLE e_events")
        conn.execute("DROP MATERIALIZED VIEW e_agg")
        conn.execute("DROP MATERIALIZED VIEW e_rank")
        conn.execute("DROP TABLE e_events")


def post_rows(basin, table: str, rows: list[dict]) -> int:
    body = "\n".join(json.dumps(r) for r in rows).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{basin.http_port}/v1/tables/{table}/rows",
        data=body,
        method="POST",
        headers={"Content-Type": "application/x-ndjson"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status


def test_kill9_during_ingest_views_converge_to_their_batch_recomputation(basin):
    with basin.connect() as conn:
        conn.execute(EVENTS.format(name="k_events"))
        conn.execute("CREATE TABLE k_regions (region TEXT, label TEXT)")
        conn.execute("INSERT INTO k_regions VALUES ('north', 'N'), ('south', 'S'), ('east', 'E')")
        conn.execute(OTHER.format(name="k_other"))
        insert_other(conn, "k_other", random.Random(7), 30, 0)
        queries = create_views(conn, "k_events", "k_regions", "k_")
    acknowledged = []
    stop = threading.Event()

    def produce(producer: int) -> None:
        rng = random.Random(producer)
        batch = 0
        while not stop.is_set():
            rows = [
                {"device": rng.choice("abcde"), "region": rng.choice(["north", "south", "east"]),
                 "ts": f"2026-03-01T11:{rng.randrange(0, 60):02d}:00Z", "temp": float(rng.randrange(-20, 60)),
                 "n": producer * 10_000_000 + batch * 1000 + i}
                for i in range(rng.randrange(1, 40))
            ]
            batch += 1
            try:
                if post_rows(basin, "k_events", rows) == 200:
                    acknowledged.extend(r["n"] for r in rows)
            except (OSError, urllib.error.URLError):
                return

    producers = [threading.Thread(target=produce, args=(p,)) for p in range(2)]
    for thread in producers:
        thread.start()
    # Long enough for several checkpoints, so the restart resumes from one and replays after it.
    time.sleep(3.5)
    with basin.connect() as conn:
        checkpointed = conn.execute("SELECT min(checkpoint_epoch) FROM basin.materialized_views").fetchone()[0]
    assert checkpointed is not None
    basin.stop(kill9=True)
    stop.set()
    for thread in producers:
        thread.join()
    assert len(acknowledged) > 100
    basin.start()
    with basin.connect() as conn:
        conn.execute("SET basin.read_consistency = 'strict'")
        deadline = time.monotonic() + 60
        while conn.execute("SELECT count(*) FROM basin.materialized_views WHERE state = 'running'").fetchone()[0] < len(queries):
            assert time.monotonic() < deadline, conn.execute("SELECT name, state, error FROM basin.materialized_views").fetchall()
            time.sleep(0.1)
        stored = {n for (n,) in conn.execute("SELECT n FROM k_events").fetchall()}
        assert set(acknowledged) <= stored, "acknowledged rows lost"
        for view, query in queries.items():
            assert differences(conn, view, query) == 0, f"{view} differs from {query} after kill -9"
        total = conn.execute("SELECT c FROM k_v_global").fetchone()[0]
        assert total == len(stored)
        # Ingest goes on, and the views with it.
        post_rows(basin, "k_events", [{"device": "z", "region": "north", "ts": "2026-03-01T12:00:00Z", "temp": 99.0, "n": -1}])
        deadline = time.monotonic() + 10
        while conn.execute("SELECT c FROM k_v_group WHERE device = 'z'").fetchone() != (1,):
            assert time.monotonic() < deadline, "the view did not take the new row"
            time.sleep(0.05)
        for view, query in queries.items():
            assert differences(conn, view, query) == 0, view


def apply_changes(state: dict, rows) -> None:
    """Applies (epoch, op, values...) rows to a multiset of value tuples."""
    for _epoch, op, *values in rows:
        key = tuple(values)
        state[key] = state.get(key, 0) + (1 if op == "insert" else -1)
        if state[key] == 0:
            del state[key]


def test_subscribe_streams_the_rows_then_only_the_changes(basin):
    with basin.connect() as conn:
        conn.execute(EVENTS.format(name="f_events"))
        conn.execute("INSERT INTO f_events VALUES ('a', NULL, NULL, 10, 1), ('b', NULL, NULL, 20, 2)")
        conn.execute("CREATE MATERIALIZED VIEW f_max AS SELECT device, max(temp) AS hi, count(*) AS c FROM f_events GROUP BY device")
        conn.execute("CREATE MATERIALIZED VIEW f_hot AS SELECT device, temp FROM f_events WHERE temp > 15")
    received: list[tuple] = []
    errors: list[BaseException] = []
    subscriber = basin.connect()
    ready = threading.Event()

    def listen() -> None:
        try:
            with subscriber.cursor() as cursor:
                for row in cursor.stream("SUBSCRIBE f_max"):
                    received.append(row)
                    ready.set()
        except BaseException as error:  # the cancel ends the stream with an error
            errors.append(error)

    thread = threading.Thread(target=listen)
    thread.start()
    assert ready.wait(15), "no snapshot rows arrived"
    time.sleep(0.3)
    snapshot = list(received)
    assert {(op, values[0], values[1], values[2]) for _e, op, *values in snapshot} == {
        ("insert", "a", 10.0, 1), ("insert", "b", 20.0, 1)}
    snapshot_epoch = snapshot[0][0]
    with basin.connect() as conn:
        conn.execute("INSERT INTO f_events VALUES ('a', NULL, NULL, 30, 3)")
        conn.execute("INSERT INTO f_events VALUES ('c', NULL, NULL, 5, 4)")
        deadline = time.monotonic() + 10
        while len(received) < len(snapshot) + 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        changes = received[len(snapshot):]
        assert all(epoch > snapshot_epoch for epoch, *_ in changes), changes
        assert sorted((op, *values) for _e, op, *values in changes) == [
            ("delete", "a", 10.0, 1), ("insert", "a", 30.0, 2), ("insert", "c", 5.0, 1)], changes
        # Applying every change to the snapshot gives the view.
        state: dict = {}
        apply_changes(state, received)
        rows = conn.execute("SELECT device, hi, c FROM f_max").fetchall()
        assert state == {tuple(r): 1 for r in rows}
    subscriber.cancel()
    thread.join(15)
    assert not thread.is_alive()
    assert errors and isinstance(errors[0], psycopg.errors.QueryCanceled), errors
    subscriber.close()
    # Unknown views and tables are refused.
    with basin.connect() as conn:
        with pytest.raises(psycopg.errors.UndefinedTable):
            conn.execute("SUBSCRIBE f_nothing")
        with pytest.raises(psycopg.errors.WrongObjectType):
            conn.execute("SUBSCRIBE f_events")


def test_http_change_feed_sends_server_sent_events(basin):
    with basin.connect() as conn:
        conn.execute(EVENTS.format(name="h_events"))
        conn.execute("INSERT INTO h_events VALUES ('a', NULL, NULL, 10, 1)")
        conn.execute("CREATE MATERIALIZED VIEW h_count AS SELECT device, count(*) AS c FROM h_events GROUP BY device")
    response = urllib.request.urlopen(
        f"http://127.0.0.1:{basin.http_port}/v1/views/h_count/changes", timeout=30)
    assert response.headers["Content-Type"].startswith("text/event-stream")

    def next_event() -> dict:
        fields = {}
        while True:
            line = response.readline().decode().rstrip("\n")
            if line == "":
                if "data" in fields:
                    return fields
                continue
            if line.startswith(":"):
                continue
            key, _, value = line.partition(":")
            fields[key] = value.strip()

    first = next_event()
    assert first["event"] == "insert"
    assert json.loads(first["data"])["rows"] == [{"device": "a", "c": 1}]
    with basin.connect() as conn:
        conn.execute("INSERT INTO h_events VALUES ('a', NULL, NULL, 11, 2)")
    events = [next_event(), next_event()]
    assert [e["event"] for e in events] == ["delete", "insert"]
    assert [json.loads(e["data"])["rows"] for e in events] == [[{"device": "a", "c": 1}], [{"device": "a", "c": 2}]]
    assert int(events[0]["id"]) > int(first["id"])
    response.close()
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"http://127.0.0.1:{basin.http_port}/v1/views/h_events/changes", timeout=10)
    assert refused.value.code == 409  # 42809: wrong object type


def at(clock: str):
    import datetime
    return datetime.datetime.fromisoformat(f"2026-05-01T{clock}+00:00")


def test_emit_on_window_close_shows_closed_windows_and_drops_late_rows(basin):
    with basin.connect() as conn:
        conn.execute("""CREATE TABLE w_events (device TEXT, ts TIMESTAMPTZ, temp DOUBLE PRECISION,
            WATERMARK FOR ts AS ts - INTERVAL '5 seconds') APPEND ONLY""")
        conn.execute("""CREATE MATERIALIZED VIEW w_closed AS SELECT device, window_start, window_end,
            count(*) AS c, max(temp) AS hi FROM TUMBLE(w_events, ts, INTERVAL '1 minute')
            GROUP BY device, window_start, window_end EMIT ON WINDOW CLOSE""")
        conn.execute("SET basin.read_consistency = 'strict'")
        conn.execute("INSERT INTO w_events VALUES ('a', '2026-05-01T10:00:10Z', 1), ('a', '2026-05-01T10:00:50Z', 3), ('b', '2026-05-01T10:00:20Z', 2)")
        # The watermark (10:00:45) has not passed the window's end yet.
        assert conn.execute("SELECT count(*) FROM w_closed").fetchone()[0] == 0
        conn.execute("INSERT INTO w_events VALUES ('a', '2026-05-01T10:01:04Z', 7)")
        assert conn.execute("SELECT count(*) FROM w_closed").fetchone()[0] == 0
        conn.execute("INSERT INTO w_events VALUES ('b', '2026-05-01T10:01:06Z', 8)")
        rows = conn.execute("SELECT device, window_start, window_end, c, hi FROM w_closed ORDER BY 1").fetchall()
        start, end = at("10:00:00"), at("10:01:00")
        assert rows == [("a", start, end, 2, 3.0), ("b", start, end, 1, 2.0)]
        # A row for a closed window arrives late: dropped, counted, the window unchanged.
        conn.execute("INSERT INTO w_events VALUES ('a', '2026-05-01T10:00:59Z', 100), ('c', '2026-05-01T10:00:30Z', 1)")
        assert conn.execute("SELECT device, c, hi FROM w_closed ORDER BY 1").fetchall() == [("a", 2, 3.0), ("b", 1, 2.0)]
        late, watermark, mode = conn.execute(
            "SELECT late_rows, watermark, mode FROM basin.materialized_views WHERE name = 'public.w_closed'"
        ).fetchone()
        assert (late, watermark, mode) == (2, at("10:01:01"), "incremental")
        # The table keeps every row; only the view drops late ones.
        assert conn.execute("SELECT count(*) FROM w_events").fetchone()[0] == 7
        explained = dict(conn.execute("EXPLAIN MATERIALIZED VIEW w_closed").fetchall())
        assert explained["emit"] == "on_window_close"
        with pytest.raises(psycopg.errors.FeatureNotSupported):
            conn.execute("""CREATE MATERIALIZED VIEW w_bad AS SELECT device, window_start, count(*)
                FROM TUMBLE(w_events, ts, INTERVAL '1 minute') GROUP BY device, window_start EMIT ON WINDOW CLOSE""")
        conn.execute("CREATE TABLE w_nowm (device TEXT, ts TIMESTAMPTZ) APPEND ONLY")
        with pytest.raises(psycopg.errors.FeatureNotSupported):
            conn.execute("""CREATE MATERIALIZED VIEW w_bad AS SELECT window_start, window_end, count(*)
                FROM TUMBLE(w_nowm, ts, INTERVAL '1 minute') GROUP BY window_start, window_end EMIT ON WINDOW CLOSE""")


def test_windowed_join_with_its_stream_equals_its_query(basin):
    """Nexmark q7's shape: each closed window's highest bids, a join of the window-close view
    with the stream it came from. An epoch's join reads only the rows in the new windows'
    time range (bounds from the new rows, pushed into the stream's scan); the view must still
    equal its query at every epoch, with rows in the log and in the lake and some rows out of
    order within the watermark."""
    rng = random.Random(20261207)
    with basin.connect() as conn:
        conn.execute("""CREATE TABLE j_bids (auction BIGINT, price BIGINT, ts TIMESTAMPTZ,
            WATERMARK FOR ts AS ts - INTERVAL '4 seconds') APPEND ONLY
            WITH (shards = 2, compaction_interval = '300ms')""")
        conn.execute("""CREATE MATERIALIZED VIEW j_max AS SELECT window_start, window_end, max(price) AS top
            FROM TUMBLE(j_bids, ts, INTERVAL '10 seconds') GROUP BY window_start, window_end EMIT ON WINDOW CLOSE""")
        query = ("SELECT b.auction, b.price, b.ts FROM j_bids b JOIN j_max m "
                 "ON b.price = m.top AND b.ts >= m.window_start AND b.ts < m.window_end")
        conn.execute(f"CREATE MATERIALIZED VIEW j_top AS {query}")
        # Bids joined with every window whose range covers them, by two range conditions
        # alone (no equality): bounds on both ends.
        ranged = ("SELECT m.window_start, count(*) AS c FROM j_max m JOIN j_bids b "
                  "ON b.ts >= m.window_start AND b.ts <= m.window_end GROUP BY m.window_start")
        conn.execute(f"CREATE MATERIALIZED VIEW j_ranged AS {ranged}")
        modes = dict(conn.execute("SELECT name, mode FROM basin.materialized_views").fetchall())
        assert modes["public.j_top"] == modes["public.j_ranged"] == "incremental", modes
        auction, second, round_ = 0, 0, 0
        while second < 150:
            # Mostly a second of bids per insert, now and then up to 30 s at once (several
            # windows close in one epoch); some bids up to 3 s behind (within the watermark).
            span = rng.randrange(10, 31) if rng.random() < 0.25 else 1
            rows = []
            for _ in range(rng.randrange(1, 6) * span):
                at_ms = (second + rng.randrange(0, span)) * 1000 + rng.randrange(0, 1000)
                if rng.random() < 0.2:
                    at_ms = max(at_ms - rng.randrange(0, 3000), 0)
                stamp = f"2026-06-01T12:{at_ms // 60000:02d}:{at_ms // 1000 % 60:02d}.{at_ms % 1000:03d}Z"
                rows.append((auction, rng.randrange(1, 30), stamp))
                auction += 1
            second += span
            round_ += 1
            with conn.cursor() as cursor:
                cursor.execute("INSERT INTO j_bids VALUES " + ", ".join(["(%s, %s, %s)"] * len(rows)),
                               [value for row in rows for value in row])
            if round_ % 5 == 0:
                time.sleep(rng.choice([0, 0.05, 0.4]))
                assert differences(conn, "j_top", query) == 0, f"second {second}: j_top"
                assert differences(conn, "j_ranged", ranged) == 0, f"second {second}: j_ranged"
        conn.execute("SET basin.read_consistency = 'strict'")
        assert differences(conn, "j_top", query) == 0
        assert differences(conn, "j_ranged", ranged) == 0
        windows, top_rows = conn.execute("SELECT (SELECT count(*) FROM j_max), (SELECT count(*) FROM j_top)").fetchone()
        assert windows >= 12 and top_rows >= windows, (windows, top_rows)


def test_stream_scan_skips_log_batches_outside_the_filter(basin):
    """Each acknowledged append is one log batch; a scan with a range filter reads only the
    batches whose minimum and maximum overlap it (the lake's row groups are skipped the same
    way by their statistics)."""
    with basin.connect() as conn:
        conn.execute("CREATE TABLE p_events (k BIGINT, ts TIMESTAMPTZ) APPEND ONLY WITH (compaction_interval = '1h')")
        for minute in range(6):
            conn.execute(f"INSERT INTO p_events VALUES ({minute}, '2026-01-01T10:0{minute}:00Z'), "
                         f"({minute}, '2026-01-01T10:0{minute}:30Z')")

        def batches(where: str) -> int:
            plan = "\n".join(r[1] for r in conn.execute(f"EXPLAIN SELECT * FROM p_events {where}").fetchall())
            sizes = re.search(r"partition_sizes=\[([0-9, ]*)\]", plan)
            assert sizes, plan
            return sum(int(s) for s in sizes.group(1).split(","))

        assert batches("") == 6
        assert batches("WHERE ts >= '2026-01-01T10:04:00Z'") == 2
        assert batches("WHERE ts > '2026-01-01T10:01:30Z' AND ts < '2026-01-01T10:03:00Z'") == 1
        assert batches("WHERE k = 3 OR k = 5") == 2
        # A filter the statistics cannot decide reads every batch; answers are unchanged.
        assert batches("WHERE k % 2 = 0") == 6
        assert conn.execute("SELECT k FROM p_events WHERE ts >= '2026-01-01T10:04:00Z' ORDER BY ts").fetchall() == [
            (4,), (4,), (5,), (5,)]
        assert conn.execute("SELECT count(*) FROM p_events WHERE ts > '2026-01-01T10:09:00Z'").fetchone()[0] == 0
