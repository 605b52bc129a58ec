"""TPC-DS at scale 0.01: every query single-node DataFusion (a coordinator without executors)
can run must give the same answer distributed over three executors.

DuckDB's TPC-DS extension (a PyPI wheel, so no network beyond PyPI) generates the data, written
as Parquet, and supplies the 99 query texts. Queries the single-node run rejects (SQL DataFusion
does not support) are listed, not compared; the test fails if they become the majority, and if
any query gives a different answer, or fails only when distributed.
"""

from __future__ import annotations

import datetime
import decimal
import math

import duckdb
import psycopg
import pytest
from duckdb_extensions import import_extension

from conftest import REPO
from test_cluster import Cluster

DATA = REPO / "sql-tests" / "data" / "tpcds-sf0.01"


def generate() -> tuple[list[str], list[tuple[int, str]]]:
    import_extension("tpcds")
    con = duckdb.connect()
    con.load_extension("tpcds")
    queries = con.execute("SELECT query_nr, query FROM tpcds_queries() ORDER BY query_nr").fetchall()
    marker = DATA / "_complete"
    if not marker.is_file():
        DATA.mkdir(parents=True, exist_ok=True)
        con.execute("CALL dsdgen(sf=0.01)")
        for (table,) in con.execute("SHOW TABLES").fetchall():
            con.execute(f"COPY {table} TO '{DATA / table}.parquet' (FORMAT parquet)")
        marker.write_text("ok\n")
    tables = sorted(p.stem for p in DATA.glob("*.parquet"))
    return tables, queries


def canonical(value):
    if isinstance(value, (decimal.Decimal, float)):
        number = float(value)
        return round(number, 2) if math.isfinite(number) else str(number)
    if isinstance(value, datetime.datetime):
        return value.replace(tzinfo=None)
    return value


def answer(conn: psycopg.Connection, sql: str):
    rows = conn.execute(sql).fetchall()
    # Ties in ORDER BY may come back in either order: compare as sorted lists.
    return sorted((tuple(canonical(v) for v in row) for row in rows), key=repr)


@pytest.fixture(scope="module")
def clusters(tmp_path_factory):
    tables, queries = generate()
    single = Cluster(tmp_path_factory.mktemp("single"))
    distributed = Cluster(tmp_path_factory.mktemp("distributed"))
    try:
        for _ in range(3):
            distributed.add_executor()
        distributed.wait_live(3)
        single.wait_live(0)
        for cluster in (single, distributed):
            with cluster.connect() as conn:
                for table in tables:
                    conn.execute(
                        f"CREATE EXTERNAL TABLE {table} STORED AS PARQUET LOCATION '{DATA / table}.parquet'"
                    )
        yield single, distributed, queries
    finally:
        single.stop()
        distributed.stop()


def test_tpcds_distributed_answers_equal_single_node(clusters):
    single, distributed, queries = clusters
    compared, unsupported, mismatched, distributed_only_failures = [], [], [], []
    not_distributed = []
    with single.connect() as one, distributed.connect() as many:
        for number, sql in queries:
            sql = sql.strip().rstrip(";")
            try:
                want = answer(one, sql)
            except psycopg.Error as err:
                unsupported.append((number, (err.sqlstate, str(err).splitlines()[0][:80])))
                continue
            try:
                got = answer(many, sql)
            except psycopg.Error as err:
                distributed_only_failures.append((number, str(err).splitlines()[0][:200]))
                continue
            compared.append(number)
            if got != want:
                mismatched.append((number, len(want), len(got)))
            stages = many.execute(
                "SELECT stages FROM basin.queries WHERE query NOT LIKE '%basin.queries%' "
                "ORDER BY query_id DESC LIMIT 1"
            ).fetchone()[0]
            if stages < 2:
                not_distributed.append(number)
    print(f"compared {len(compared)} queries; single-node DataFusion rejects {len(unsupported)}: "
          f"{unsupported}; ran single-node even on the cluster: {not_distributed}")
    assert not distributed_only_failures, distributed_only_failures
    assert not mismatched, mismatched
    assert len(compared) >= 50, f"only {len(compared)} of 99 ran: {unsupported}"
    assert len(not_distributed) <= len(compared) // 10, not_distributed
