"""Basin's own data in a bucket: `--data-url s3://...` puts Basin-managed Delta tables and the
lakes streaming tables compact into on a real S3-compatible server (s3s-fs on loopback).

The objects must form Delta tables other engines read (DuckDB's delta extension reads them from
the server's directory, where s3s-fs keeps objects as plain files), survive a restart that no
longer names the URL (the catalog recorded it), take concurrent INSERTs without losing a commit
(Delta's put-if-absent commit protocol), and disappear on DROP. A data URL the server cannot
reach stops start-up with a clear message.
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import duckdb
import pytest
from duckdb_extensions import import_extension

from conftest import basin_binary
from s3_server import ACCESS_KEY, SECRET_KEY, S3Server
from test_s3 import S3Cluster, clean_env


def write_config(root: Path, s3: S3Server) -> Path:
    config = root / "basin.toml"
    config.write_text(
        "[object_store.s3]\n"
        f'endpoint = "{s3.endpoint}"\n'
        "allow_http = true\n"
        f'access_key_id = "{ACCESS_KEY}"\n'
        f'secret_access_key = "{SECRET_KEY}"\n'
    )
    return config


@pytest.fixture()
def s3(tmp_path):
    server = S3Server(tmp_path / "s3root")
    server.bucket("basin-data")
    try:
        yield server
    finally:
        server.stop()


def start(root: Path, s3: S3Server, data_url: str | None) -> S3Cluster:
    extra = ("--data-url", data_url) if data_url else ()
    return S3Cluster(root, write_config(root, s3), extra)


def delta_count(path: Path, column: str | None = None) -> tuple:
    import_extension("delta")
    duck = duckdb.connect()
    duck.execute("LOAD delta")
    what = f"count(*), sum({column})" if column else "count(*)"
    return duck.execute(f"SELECT {what} FROM delta_scan('{path}')").fetchone()


def assert_view_matches(conn, rows: int) -> None:
    """`ev_stats` reaches `rows` input rows and then equals its query run as a batch."""
    deadline = time.monotonic() + 30
    while conn.execute("SELECT coalesce(sum(n), 0) FROM ev_stats").fetchone() != (rows,):
        assert time.monotonic() < deadline, "the view did not catch up"
        time.sleep(0.1)
    view = conn.execute("SELECT device_id, n, total FROM ev_stats ORDER BY 1").fetchall()
    batch = conn.execute(
        "SELECT device_id, count(*), sum(temp) FROM ev GROUP BY device_id ORDER BY 1"
    ).fetchall()
    assert view == batch


def test_managed_and_streaming_tables_live_in_the_bucket(tmp_path, s3):
    root = tmp_path / "cluster"
    root.mkdir()
    cluster = start(root, s3, "s3://basin-data/prod")
    bucket = s3.root / "basin-data" / "prod"
    try:
        cluster.add_executor()
        cluster.wait_live(1)
        with cluster.connect_when_ready() as conn:
            conn.execute("CREATE TABLE notes (id BIGINT, body TEXT)")
            conn.execute("INSERT INTO notes VALUES (1, 'a'), (2, 'b')")
            # Concurrent appends race for the same Delta versions: each commit must land once.
            errors: list[BaseException] = []

            def writer(k: int) -> None:
                try:
                    with cluster.connect() as c:
                        for i in range(5):
                            c.execute(f"INSERT INTO notes VALUES ({100 + k * 10 + i}, 'w{k}')")
                except BaseException as err:  # noqa: BLE001 - reported below
                    errors.append(err)

            threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert not errors, errors
            assert conn.execute("SELECT count(*), count(DISTINCT id) FROM notes").fetchone() == (22, 22)

            conn.execute(
                "CREATE TABLE ev (device_id TEXT NOT NULL, ts TIMESTAMPTZ, temp DOUBLE PRECISION, "
                "WATERMARK FOR ts AS ts - INTERVAL '5 seconds') APPEND ONLY "
                "WITH (compaction_interval = '200ms')"
            )
            conn.execute(
                "INSERT INTO ev SELECT 'd' || (n % 7), to_timestamp(1767225600 + n * 60), n * 0.5 "
                "FROM generate_series(1, 3000) AS t(n)"
            )
            deadline = time.monotonic() + 30
            while True:
                (lake_rows,) = conn.execute(
                    "SELECT lake_rows FROM basin.ingest_stats WHERE table_name = 'public.ev'"
                ).fetchone()
                if lake_rows == 3000:
                    break
                assert time.monotonic() < deadline, f"compaction stalled at {lake_rows} rows"
                time.sleep(0.2)
            # A materialized view's checkpoints go to the bucket too; rows inserted after the
            # last one are replayed from the table's log after the crash below.
            conn.execute(
                "CREATE MATERIALIZED VIEW ev_stats AS "
                "SELECT device_id, count(*) AS n, sum(temp) AS total FROM ev GROUP BY device_id"
            )
            manifest = bucket / "views" / "checkpoint.json"
            deadline = time.monotonic() + 30
            while not manifest.is_file():
                assert time.monotonic() < deadline, "no view checkpoint in the bucket"
                time.sleep(0.2)
            assert list((bucket / "views" / "checkpoints").rglob("*.arrow"))
            conn.execute(
                "INSERT INTO ev SELECT 'd' || (n % 7), to_timestamp(1767225600 + n * 60), n * 0.5 "
                "FROM generate_series(3001, 3500) AS t(n)"
            )
            assert_view_matches(conn, 3500)
        # Nothing Basin-managed under the data directory; everything in the bucket.
        assert not list((root / "data").rglob("*.parquet"))
        assert not list((root / "data").rglob("checkpoint.json"))
        notes = next(bucket.glob("tables/basin/public/notes_*"))
        lake = next(bucket.glob("streams/basin/public/ev_*")) / "lake"
        assert list(lake.glob("*.parquet")), "no compacted files in the bucket"
        assert delta_count(notes) == (22,)
        # The second INSERT may or may not have been compacted (every 200 ms) before the kill:
        # the lake holds exactly the first 3,000 rows or all 3,500.
        assert delta_count(lake, "temp") in [
            (rows, sum(n * 0.5 for n in range(1, rows + 1))) for rows in (3000, 3500)
        ]
    finally:
        cluster.stop()  # kill -9

    # Restart without --data-url: the catalog remembers where the tables are, and the view
    # resumes from its checkpoint in the bucket.
    cluster = start(root, s3, None)
    try:
        with cluster.connect_when_ready() as conn:
            assert conn.execute("SELECT count(*) FROM notes").fetchone() == (22,)
            assert conn.execute("SELECT count(*), sum(temp) FROM ev").fetchone() == (
                3500,
                sum(n * 0.5 for n in range(1, 3501)),
            )
            assert_view_matches(conn, 3500)
            assert "resumed materialized view from its checkpoint" in cluster.logs()
            conn.execute("DROP MATERIALIZED VIEW ev_stats")
            conn.execute("DROP TABLE notes")
            conn.execute("DROP TABLE ev")
        deadline = time.monotonic() + 10
        # Only the (empty) checkpoint manifest stays: it carries the epoch numbers on.
        while any(p.is_file() and p != manifest for p in bucket.rglob("*")):
            assert time.monotonic() < deadline, "DROP left objects in the bucket"
            time.sleep(0.2)
    finally:
        cluster.stop()


def test_another_data_url_for_the_same_data_directory_is_refused(tmp_path, s3):
    root = tmp_path / "cluster"
    root.mkdir()
    cluster = start(root, s3, "s3://basin-data/one")
    try:
        with cluster.connect_when_ready() as conn:
            conn.execute("CREATE TABLE t AS SELECT 1 AS x")
    finally:
        cluster.stop()
    result = subprocess.run(
        [
            str(basin_binary()), "coordinator", "--config", str(root / "basin.toml"),
            "--data-dir", str(root / "data"), "--data-url", "s3://basin-data/two",
            "--pg-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
            "--control-listen", "127.0.0.1:0",
        ],
        capture_output=True, text=True, timeout=60, env=clean_env(),
    )
    assert result.returncode != 0
    assert "s3://basin-data/one" in result.stderr, result.stderr


def test_unreachable_data_url_stops_start_up(tmp_path, s3):
    config = write_config(tmp_path, s3)
    result = subprocess.run(
        [
            str(basin_binary()), "coordinator", "--config", str(config),
            "--data-dir", str(tmp_path / "data"), "--data-url", "s3://no-such-bucket/x",
            "--pg-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
            "--control-listen", "127.0.0.1:0",
        ],
        capture_output=True, text=True, timeout=60, env=clean_env(),
    )
    assert result.returncode != 0
    assert "s3://no-such-bucket/x" in result.stderr and "NoSuchBucket" in result.stderr, result.stderr
