"""psql 15 end to end: the describe commands a newcomer types first (`\\dt`, `\\d lineitem`,
`\\dn`, `\\l`, `\\dv`, `\\df`) against TPC-H tables over Basin's own pgwire."""

import subprocess
from pathlib import Path

import pytest

from conftest import basin_binary

REPO = Path(__file__).resolve().parents[2]
TPCH = REPO / "sql-tests" / "data" / "tpch-sf0.01"
TABLES = ["region", "nation", "supplier", "customer", "part", "partsupp", "orders", "lineitem"]


@pytest.fixture(scope="module")
def tpch(basin):
    if not (TPCH / "lineitem.parquet").exists():
        subprocess.run(
            [str(basin_binary()), "datagen", "tpch", "--scale", "0.01", "--output", str(TPCH)],
            check=True, capture_output=True, timeout=300,
        )
    with basin.connect(autocommit=True) as conn:
        for table in TABLES:
            conn.execute(
                f"CREATE EXTERNAL TABLE IF NOT EXISTS {table} STORED AS PARQUET "
                f"LOCATION '{TPCH / (table + '.parquet')}'"
            )
        conn.execute("CREATE OR REPLACE VIEW big_orders AS SELECT * FROM orders WHERE o_totalprice > 400000")
    return basin


def psql(basin, command: str) -> str:
    result = subprocess.run(
        ["psql", "-X", "-v", "ON_ERROR_STOP=1", "-h", basin.host, "-p", str(basin.port),
         "-U", "basin", "-d", "basin", "-c", command],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "ERROR" not in result.stderr, result.stderr
    return result.stdout


def test_list_tables(tpch):
    out = psql(tpch, r"\dt")
    for table in TABLES:
        assert f" public | {table} " in out, out
    assert "(8 rows)" in out, out


def test_describe_lineitem(tpch):
    out = psql(tpch, r"\d lineitem")
    assert 'Table "public.lineitem"' in out, out
    lines = {line.split("|")[0].strip(): line for line in out.splitlines() if "|" in line}
    assert "bigint" in lines["l_orderkey"] and "not null" in lines["l_orderkey"], out
    assert "numeric(15,2)" in lines["l_extendedprice"], out
    assert "| date" in lines["l_shipdate"], out
    assert "text" in lines["l_comment"], out


def test_schemas_databases_views_functions(tpch):
    assert " public " in psql(tpch, r"\dn")
    assert " basin " in psql(tpch, r"\l")
    assert " big_orders " in psql(tpch, r"\dv")
    psql(tpch, r"\df")


def test_tpch_q6_over_psql(tpch):
    out = psql(
        tpch,
        "SELECT sum(l_extendedprice * l_discount) AS revenue FROM lineitem "
        "WHERE l_shipdate >= date '1994-01-01' AND l_shipdate < date '1995-01-01' "
        "AND l_discount BETWEEN 0.05 AND 0.07 AND l_quantity < 24",
    )
    # The same answer the .slt corpus records for Q6 and DuckDB confirms.
    assert "1193053.2253" in out, out
