"""Lakes on S3: a real S3-compatible server (s3s-fs) on loopback, a coordinator and two executors.

The cluster gets its S3 endpoint and credentials from the `[object_store.s3]` table of its config
file; its processes have no `AWS_*` variables, so the executors can only scan the bucket with
the settings the coordinator hands them over the control plane. TPC-H must give the same
answers from the bucket as from the local files (which the tpch-answers step checks against
DuckDB), every scan distributed over both executors. Then the failures: wrong credentials, a
missing bucket, no credentials, an unreachable endpoint, a throttling store and one that never
answers each get a clear error with a SQLSTATE, bounded in time, with no secret in any message
or log, and the server keeps serving.
"""

from __future__ import annotations

import decimal
import os
import shutil
import sys
import time
from pathlib import Path

import psycopg
import pytest

from conftest import REPO, free_ports
from s3_server import ACCESS_KEY, SECRET_KEY, FaultProxy, S3Server
from test_cluster import Cluster, ensure_tpch

sys.path.insert(0, str(REPO / "sql-tests" / "tpch"))
from verify_with_duckdb import parse_slt  # noqa: E402

TABLES = ["region", "nation", "supplier", "customer", "part", "partsupp", "orders", "lineitem"]
# A second secret, given only in one table's OPTIONS.
TABLE_SECRET = "per-table-secret-Zk41"


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}


class S3Cluster(Cluster):
    """A `Cluster` whose processes see no AWS_* variables."""

    def __init__(self, root: Path, config: Path | None, extra: tuple = ()):
        saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("AWS_")}
        try:
            configured = ("--config", str(config)) if config else ()
            super().__init__(root, extra_args=(*configured, *extra))
        finally:
            os.environ.update(saved)

    def connect_when_ready(self) -> psycopg.Connection:
        deadline = time.monotonic() + 30
        while True:
            try:
                return self.connect()
            except psycopg.OperationalError:
                if time.monotonic() > deadline or self.coordinator.poll() is not None:
                    raise AssertionError(self.log_tail())
                time.sleep(0.1)

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.root.glob("*.log"))


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    root = tmp_path_factory.mktemp("s3") / "root"
    server = S3Server(root)
    tpch = ensure_tpch()
    for table in TABLES:
        server.upload(tpch / f"{table}.parquet", "lake", f"tpch/{table}.parquet")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, s3):
    root = tmp_path_factory.mktemp("cluster")
    config = root / "basin.toml"
    config.write_text(
        "[object_store.s3]\n"
        f'endpoint = "{s3.endpoint}"\n'
        'region = "us-east-1"\n'
        "allow_http = true\n"
        f'access_key_id = "{ACCESS_KEY}"\n'
        f'secret_access_key = "{SECRET_KEY}"\n'
    )
    cluster = S3Cluster(root, config)
    try:
        cluster.add_executor()
        cluster.add_executor()
        cluster.wait_live(2)
        with cluster.connect() as conn:
            conn.execute("CREATE SCHEMA s3lake")
            for table in TABLES:
                conn.execute(
                    f"CREATE EXTERNAL TABLE s3lake.{table} STORED AS PARQUET "
                    f"LOCATION 's3://lake/tpch/{table}.parquet'"
                )
                conn.execute(
                    f"CREATE EXTERNAL TABLE public.{table} STORED AS PARQUET "
                    f"LOCATION '{ensure_tpch() / table}.parquet'"
                )
        yield cluster
    finally:
        cluster.stop()


def tpch_files() -> list[tuple[str, list]]:
    """Each TPC-H query file's statements and queries (Q15 creates and drops a view)."""
    files = []
    for path in sorted((REPO / "sql-tests" / "slt" / "tpch").glob("q*.slt")):
        files.append((path.stem, parse_slt(path)))
    return files


def normalise(rows: list[tuple]) -> list[tuple]:
    def value(v):
        if isinstance(v, float):
            return round(v, 6)
        if isinstance(v, decimal.Decimal):
            return v.normalize()
        return v

    return sorted((tuple(value(v) for v in row) for row in rows), key=repr)


def error_of(conn: psycopg.Connection, sql: str) -> psycopg.Error:
    with pytest.raises(psycopg.Error) as caught:
        conn.execute(sql)
    return caught.value


def test_tpch_from_the_bucket_matches_local_files_on_two_executors(cluster):
    files = tpch_files()
    assert sum(1 for _, records in files for r in records if r.kind == "query") == 22
    live = set(cluster.wait_live(2))
    used: set[str] = set()
    with cluster.connect() as conn:
        for name, records in files:
            answers = {}
            for schema in ("s3lake", "public"):
                conn.execute(f"SET search_path TO {schema}")
                answers[schema] = []
                for record in records:
                    if record.kind == "statement":
                        conn.execute(record.sql)
                        continue
                    answers[schema].append(conn.execute(record.sql).fetchall())
                    if schema == "s3lake":
                        state, stages, _attempts, executors = cluster.last_query(conn, "%")
                        assert state == "finished" and stages >= 2, f"{name} ran on one node"
                        used.update((executors or "").split(","))
            assert all(answers["s3lake"]), f"{name} returned no rows"
            assert [normalise(a) for a in answers["s3lake"]] == [
                normalise(a) for a in answers["public"]
            ], f"{name} differs between S3 and local files"
    assert live <= used, f"executors {live - used} never scanned the bucket"


def test_csv_json_and_hive_partitions_on_s3(cluster, s3):
    import pyarrow as pa
    import pyarrow.parquet as pq

    bucket = s3.bucket("formats")
    for year, rows in ((2024, [1, 2, 3]), (2025, [4, 5])):
        part = bucket / "events" / f"year={year}"
        part.mkdir(parents=True)
        pq.write_table(pa.table({"id": rows, "v": [r * 1.5 for r in rows]}), part / "p.parquet")
    (bucket / "csv").mkdir()
    (bucket / "csv" / "a.csv").write_text("id,name\n1,ada\n2,grace\n")
    (bucket / "json").mkdir()
    (bucket / "json" / "a.json").write_text('{"id": 1, "tag": "x"}\n{"id": 2, "tag": "y"}\n')
    with cluster.connect() as conn:
        conn.execute(
            "CREATE EXTERNAL TABLE events STORED AS PARQUET PARTITIONED BY (year) "
            "LOCATION 's3://formats/events/'"
        )
        assert conn.execute(
            "SELECT year, count(*), sum(id) FROM events GROUP BY year ORDER BY year"
        ).fetchall() == [("2024", 3, 6), ("2025", 2, 9)]
        assert conn.execute("SELECT count(*) FROM events WHERE year = '2025'").fetchone() == (2,)
        conn.execute(
            "CREATE EXTERNAL TABLE people STORED AS CSV LOCATION 's3://formats/csv/' "
            "OPTIONS ('format.has_header' 'true')"
        )
        assert conn.execute("SELECT name FROM people ORDER BY id").fetchall() == [
            ("ada",), ("grace",)
        ]
        conn.execute("CREATE EXTERNAL TABLE tags STORED AS JSON LOCATION 's3://formats/json/'")
        assert conn.execute("SELECT tag FROM tags ORDER BY id").fetchall() == [("x",), ("y",)]


def test_copy_exports_query_results_to_the_bucket(cluster, s3):
    """COPY ... TO 's3://...' writes Parquet (by extension), CSV in Postgres's format, and a
    partitioned DataFusion export into the bucket; Basin reads each back."""
    s3.bucket("exports")
    with cluster.connect() as conn:
        status = conn.execute(
            "COPY (SELECT n_nationkey, n_name, n_regionkey FROM s3lake.nation) "
            "TO 's3://exports/nation.parquet'"
        ).statusmessage
        assert status == "COPY 25"
        conn.execute(
            "CREATE EXTERNAL TABLE nation_export STORED AS PARQUET "
            "LOCATION 's3://exports/nation.parquet'"
        )
        assert conn.execute(
            "SELECT count(*), sum(n_regionkey) FROM nation_export"
        ).fetchone() == (25, 50)
        conn.execute(
            "COPY (SELECT r_regionkey, r_name FROM s3lake.region ORDER BY 1) "
            "TO 's3://exports/region.csv' WITH (FORMAT csv, HEADER)"
        )
        text = (s3.bucket("exports") / "region.csv").read_text()
        assert text.splitlines()[:2] == ["r_regionkey,r_name", "0,AFRICA"], text
        assert conn.execute(
            "COPY (SELECT n_name, n_regionkey FROM s3lake.nation) TO 's3://exports/by_region/' "
            "STORED AS PARQUET PARTITIONED BY (n_regionkey)"
        ).statusmessage == "COPY 25"
        conn.execute(
            "CREATE EXTERNAL TABLE by_region STORED AS PARQUET PARTITIONED BY (n_regionkey) "
            "LOCATION 's3://exports/by_region/'"
        )
        assert conn.execute(
            "SELECT n_regionkey, count(*) FROM by_region GROUP BY 1 ORDER BY 1"
        ).fetchall() == [(str(r), 5) for r in range(5)]
        # No slash: one file, though the name has no extension.
        conn.execute("COPY s3lake.region TO 's3://exports/regions' (FORMAT parquet)")
        assert (s3.bucket("exports") / "regions").is_file()
        # `#` and `?` belong to the key.
        conn.execute("COPY s3lake.region TO 's3://exports/daily#1?.csv' (FORMAT csv)")
        assert len((s3.bucket("exports") / "daily#1?.csv").read_text().splitlines()) == 5


def test_per_table_credentials_work_and_never_show(cluster, s3):
    # A bucket whose credentials come only from the table's OPTIONS, with the secret quoted in
    # a way the redaction must still catch.
    bucket = s3.bucket("private")
    shutil.copy(ensure_tpch() / "nation.parquet", bucket / "nation.parquet")
    with cluster.connect() as conn:
        conn.execute(
            "CREATE EXTERNAL TABLE private_nation STORED AS PARQUET "
            "LOCATION 's3://private/nation.parquet' "
            f"OPTIONS ('aws.access_key_id' '{ACCESS_KEY}', 'aws.secret_access_key' '{SECRET_KEY}', "
            f"'aws.session_token' '{TABLE_SECRET}')"
        )
        assert conn.execute("SELECT count(*) FROM private_nation").fetchone() == (25,)
        shown = [
            *(r[0] for r in conn.execute("SELECT query FROM basin.queries").fetchall()),
            *(r[1] for r in conn.execute("EXPLAIN SELECT * FROM private_nation").fetchall()),
            *(str(r) for r in conn.execute(
                "SELECT * FROM information_schema.tables WHERE table_name = 'private_nation'"
            ).fetchall()),
            *(str(r) for r in conn.execute(
                "SELECT c.reloptions FROM pg_class c WHERE c.relname = 'private_nation'"
            ).fetchall()),
        ]
        # A failing statement that names the secret-bearing table.
        shown.append(str(error_of(conn, "SELECT no_such_column FROM private_nation")))
    text = "\n".join(shown) + cluster.logs()
    assert TABLE_SECRET not in text
    assert SECRET_KEY not in text


def test_wrong_credentials_get_an_error_with_the_url(cluster, s3):
    bucket = s3.bucket("wrongcreds")
    shutil.copy(ensure_tpch() / "region.parquet", bucket / "region.parquet")
    with cluster.connect() as conn:
        err = error_of(
            conn,
            "CREATE EXTERNAL TABLE wrong STORED AS PARQUET LOCATION "
            "'s3://wrongcreds/region.parquet' OPTIONS ('aws.secret_access_key' 'not-the-secret')",
        )
        assert err.sqlstate in ("42501", "28000"), err
        assert "wrongcreds/region.parquet" in str(err)
        assert "not-the-secret" not in str(err)
        # The failed CREATE left no options behind: the right credentials work at once.
        conn.execute(
            "CREATE EXTERNAL TABLE right_region STORED AS PARQUET "
            "LOCATION 's3://wrongcreds/region.parquet'"
        )
        assert conn.execute("SELECT count(*) FROM right_region").fetchone() == (5,)
    assert "not-the-secret" not in cluster.logs()


def test_missing_bucket_and_missing_object(cluster):
    with cluster.connect() as conn:
        err = error_of(
            conn, "CREATE EXTERNAL TABLE nob STORED AS PARQUET LOCATION 's3://no-such-bucket/x/'"
        )
        assert err.sqlstate == "58P01", err
        assert "no-such-bucket" in str(err)
        err = error_of(conn, "CREATE EXTERNAL TABLE nof STORED AS PARQUET LOCATION 's3://lake/none/'")
        assert err.sqlstate == "42000" and "no files found" in str(err), err
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_bad_options_are_refused(cluster):
    with cluster.connect() as conn:
        err = error_of(
            conn,
            "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION 's3://lake/tpch/nation.parquet' "
            "OPTIONS ('aws.acces_key_id' 'x')",
        )
        assert err.sqlstate == "22023" and "aws.acces_key_id" in str(err), err
        err = error_of(
            conn,
            "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION 's3://lake/tpch/nation.parquet' "
            "OPTIONS ('aws.allow_http' 'perhaps')",
        )
        assert err.sqlstate == "22023", err


def test_unreachable_endpoint_fails_fast(cluster):
    (closed,) = free_ports(1)
    with cluster.connect() as conn:
        started = time.monotonic()
        err = error_of(
            conn,
            "CREATE EXTERNAL TABLE unreachable STORED AS PARQUET "
            "LOCATION 's3://elsewhere/x.parquet' "
            f"OPTIONS ('aws.endpoint' 'http://127.0.0.1:{closed}')",
        )
        took = time.monotonic() - started
        assert err.sqlstate == "58030", err
        assert f"127.0.0.1:{closed}/elsewhere/x.parquet" in str(err)
        assert took < 30, f"took {took:.1f}s"
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_throttling_store_is_retried_then_reported(cluster, s3):
    proxy = FaultProxy(s3.port)
    bucket = s3.bucket("throttled")
    shutil.copy(ensure_tpch() / "nation.parquet", bucket / "nation.parquet")
    try:
        with cluster.connect() as conn:
            conn.execute(
                "CREATE EXTERNAL TABLE throttled STORED AS PARQUET "
                "LOCATION 's3://throttled/nation.parquet' "
                f"OPTIONS ('aws.endpoint' '{proxy.endpoint}')"
            )
            # Nothing but the footer has been read: the column's pages must come from the store
            # (a warm query would be answered from Basin's caches without a request).
            proxy.mode = "throttle"
            started = time.monotonic()
            err = error_of(conn, "SELECT sum(n_regionkey) FROM throttled")
            took = time.monotonic() - started
            assert err.sqlstate == "58030", err
            assert "503" in str(err) or "SlowDown" in str(err), err
            assert "throttled/nation.parquet" in str(err) or "throttled" in str(err)
            assert proxy.throttled >= 2, "the request was not retried"
            assert took < 60, f"took {took:.1f}s"
            proxy.mode = "pass"
            assert conn.execute("SELECT count(*) FROM throttled").fetchone() == (25,)
    finally:
        proxy.stop()


def test_a_store_that_never_answers_stops_at_statement_timeout(cluster, s3):
    proxy = FaultProxy(s3.port)
    bucket = s3.bucket("silent")
    shutil.copy(ensure_tpch() / "nation.parquet", bucket / "nation.parquet")
    try:
        with cluster.connect() as conn:
            conn.execute(
                "CREATE EXTERNAL TABLE silent STORED AS PARQUET "
                "LOCATION 's3://silent/nation.parquet' "
                f"OPTIONS ('aws.endpoint' '{proxy.endpoint}')"
            )
            proxy.mode = "blackhole"
            conn.execute("SET statement_timeout = '2s'")
            started = time.monotonic()
            # count(*) is answered from the footer read at CREATE time; a column needs the store.
            err = error_of(conn, "SELECT sum(n_regionkey) FROM silent")
            took = time.monotonic() - started
            assert err.sqlstate == "57014", err
            assert took < 10, f"took {took:.1f}s"
            conn.execute("SET statement_timeout = 0")
            assert conn.execute("SELECT count(*) FROM s3lake.region").fetchone() == (5,)
    finally:
        proxy.stop()


def test_no_credentials_anywhere_is_refused_without_probing(tmp_path, s3):
    # No config file and no AWS_* variables: Basin must not fall back to the EC2 metadata
    # endpoint (unreachable here, it would hang) but say what to configure.
    cluster = S3Cluster(tmp_path, None)
    try:
        with cluster.connect_when_ready() as conn:
            started = time.monotonic()
            err = error_of(
                conn,
                "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION 's3://lake/tpch/nation.parquet'",
            )
            assert err.sqlstate == "28000", err
            assert "no credentials for s3://lake" in str(err)
            assert time.monotonic() - started < 5
    finally:
        cluster.stop()


def test_footers_are_cached_and_new_files_show_up(cluster, s3):
    proxy = FaultProxy(s3.port)
    folder = s3.bucket("growing") / "li"
    folder.mkdir()
    shutil.copy(ensure_tpch() / "lineitem.parquet", folder / "part-0.parquet")
    query = "SELECT count(*), sum(l_quantity) FROM growing"
    try:
        with cluster.connect() as conn:
            conn.execute(
                "CREATE EXTERNAL TABLE growing STORED AS PARQUET LOCATION 's3://growing/li/' "
                f"OPTIONS ('aws.endpoint' '{proxy.endpoint}')"
            )
            before = proxy.requests
            first = conn.execute(query).fetchone()
            first_requests = proxy.requests - before
            state, stages, _attempts, _executors = cluster.last_query(conn, "%")
            assert stages >= 2, "the scan should run on the executors"
            before = proxy.requests
            assert conn.execute(query).fetchone() == first
            second_requests = proxy.requests - before
            # The second run reads row groups but no footers: every task's footer read is gone.
            assert second_requests < first_requests, (first_requests, second_requests)
            # A file added to the lake is seen once the listing cache expires (5 s).
            shutil.copy(ensure_tpch() / "lineitem.parquet", folder / "part-1.parquet")
            deadline = time.monotonic() + 20
            while True:
                count = conn.execute(query).fetchone()[0]
                if count == 2 * first[0]:
                    break
                assert time.monotonic() < deadline, f"new file not seen, count {count}"
                time.sleep(1)
    finally:
        proxy.stop()


def test_executors_need_the_cluster_secret_to_join(tmp_path, s3):
    # The control plane hands out object-store credentials: with a cluster secret set, an
    # executor without it is refused (and exits), one with it joins.
    saved = os.environ.get("BASIN_CLUSTER_SECRET")
    os.environ["BASIN_CLUSTER_SECRET"] = "cluster-secret-for-test"
    try:
        cluster = S3Cluster(tmp_path, None)
    finally:
        if saved is None:
            os.environ.pop("BASIN_CLUSTER_SECRET", None)
        else:
            os.environ["BASIN_CLUSTER_SECRET"] = saved
    try:
        cluster.env.pop("BASIN_CLUSTER_SECRET", None)
        stranger = cluster.add_executor()
        assert stranger.wait(timeout=30) != 0
        log = (tmp_path / "executor-0.log").read_text()
        assert "cluster secret" in log, log
        cluster.env["BASIN_CLUSTER_SECRET"] = "cluster-secret-for-test"
        cluster.add_executor()
        cluster.wait_live(1)
        assert "cluster-secret-for-test" not in cluster.logs()
    finally:
        cluster.stop()
