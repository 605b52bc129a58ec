"""psycopg 3 against Basin: server-side parameters (extended protocol), binary results, named
prepared statements, SQLSTATEs on errors."""

import datetime
import decimal

import psycopg
import pytest
from psycopg import errors


def test_server_side_parameters_of_several_types(conn):
    row = conn.execute(
        "SELECT %s::int + 1, %s::text || '!', %s::date, %s::numeric(10,2) * 2, %s::float8 / 2, NOT %s::boolean",
        (41, "hi", datetime.date(2024, 2, 29), decimal.Decimal("1.25"), 3.0, False),
    ).fetchone()
    assert row == (42, "hi!", datetime.date(2024, 2, 29), decimal.Decimal("2.50"), 1.5, True)


def test_null_parameter_and_result(conn):
    assert conn.execute("SELECT %s::int IS NULL, %s::text", (None, None)).fetchone() == (True, None)


def test_bigint_and_bytea_parameters(conn):
    big = 9_007_199_254_740_993
    assert conn.execute("SELECT %s::bigint - 1", (big,)).fetchone() == (big - 1,)
    assert conn.execute("SELECT %s::bytea", (b"\x00\x01\xff",)).fetchone() == (b"\x00\x01\xff",)


def test_binary_results(conn):
    with conn.cursor(binary=True) as cur:
        cur.execute(
            "SELECT CAST(7 AS SMALLINT), CAST(-8 AS INTEGER), CAST(9000000000 AS BIGINT), "
            "CAST(1.5 AS DOUBLE PRECISION), CAST(0.25 AS REAL), true, 'text', "
            "DATE '2024-01-31', TIMESTAMP '2024-01-31 12:34:56.5', "
            "CAST('12.34' AS NUMERIC(10,2)), decode('cafe', 'hex')"
        )
        row = cur.fetchone()
    assert row == (
        7,
        -8,
        9000000000,
        1.5,
        0.25,
        True,
        "text",
        datetime.date(2024, 1, 31),
        datetime.datetime(2024, 1, 31, 12, 34, 56, 500000),
        decimal.Decimal("12.34"),
        b"\xca\xfe",
    )


def test_binary_results_with_parameters_and_nulls(conn):
    with conn.cursor(binary=True) as cur:
        cur.execute("SELECT %s::int * 3, %s::text, CAST(NULL AS INTEGER)", (14, "x"))
        assert cur.fetchone() == (42, "x", None)


def test_nested_arrays_are_multidimensional(conn):
    """A list of lists is a two-dimensional int8[] (OID 1016) in both formats, as in Postgres;
    a ragged one reads back in text and is refused in binary (Postgres has no ragged arrays)."""
    query = "SELECT make_array(make_array(1, 2), make_array(3, NULL)), make_array(make_array('a b', 'c'))"
    for binary in (False, True):
        with conn.cursor(binary=binary) as cur:
            cur.execute(query)
            assert [column.type_code for column in cur.description] == [1016, 1009]
            assert cur.fetchone() == ([[1, 2], [3, None]], [["a b", "c"]]), f"binary={binary}"
    ragged = "SELECT make_array(make_array(1), make_array(2, 3)), make_array(make_array(1), NULL)"
    assert conn.execute(ragged).fetchone() == ([[1], [2, 3]], [[1], None])
    with conn.cursor(binary=True) as cur:
        with pytest.raises(psycopg.Error) as refused:
            cur.execute(ragged)
        assert refused.value.sqlstate == "2202E"
    assert conn.execute("SELECT 1").fetchone() == (1,)


def test_prepared_statement_reused(conn):
    # prepare=True makes psycopg Parse a named statement once and Bind/Execute it afterwards.
    results = [conn.execute("SELECT %s::int * %s::int", (i, i), prepare=True).fetchone()[0] for i in range(8)]
    assert results == [i * i for i in range(8)]


def test_table_roundtrip_with_executemany(conn):
    conn.execute("CREATE TABLE psy_items (id INT, name VARCHAR, price NUMERIC(10,2), day DATE)")
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO psy_items VALUES (%s, %s, %s, %s)",
            [
                (1, "apple", decimal.Decimal("1.10"), datetime.date(2024, 1, 1)),
                (2, "pear", decimal.Decimal("2.20"), datetime.date(2024, 1, 2)),
                (3, "fig", None, None),
            ],
        )
    rows = conn.execute("SELECT id, name, price, day FROM psy_items WHERE id >= %s ORDER BY id", (2,)).fetchall()
    assert rows == [(2, "pear", decimal.Decimal("2.20"), datetime.date(2024, 1, 2)), (3, "fig", None, None)]
    assert conn.execute("SELECT count(*), sum(price) FROM psy_items").fetchone() == (3, decimal.Decimal("3.30"))


def test_column_names_and_types(conn):
    types = psycopg.adapters.types
    with conn.cursor() as cur:
        cur.execute("SELECT 1 AS one, 'x' AS letter, CAST(2.5 AS DOUBLE PRECISION) AS half")
        assert [d.name for d in cur.description] == ["one", "letter", "half"]
        one, letter, half = (d.type_code for d in cur.description)
    # PostgreSQL types the literal 1 as int4; an engine that widens integer literals says int8.
    assert one in (types["int4"].oid, types["int8"].oid)
    assert letter == types["text"].oid
    assert half == types["float8"].oid


def test_large_result_streams(conn):
    rows = conn.execute("SELECT g.n FROM generate_series(1, 50000) AS g(n)").fetchall()
    assert len(rows) == 50000
    assert rows[0] == (1,) and rows[-1] == (50000,)


@pytest.mark.parametrize(
    "sql, error",
    [
        ("SELECT * FROM psy_no_such_table", errors.UndefinedTable),
        ("SELECT no_such_column FROM (SELECT 1 AS a) t", errors.UndefinedColumn),
        ("SELECT no_such_function(1)", errors.UndefinedFunction),
        ("SELEC 1", errors.SyntaxError),
        ("SELECT 1 / 0", errors.DivisionByZero),
        ("SELECT CAST('abc' AS INTEGER)", errors.InvalidTextRepresentation),
    ],
)
def test_errors_carry_sqlstate_and_connection_survives(conn, sql, error):
    with pytest.raises(error):
        conn.execute(sql)
    assert conn.execute("SELECT 1").fetchone() == (1,)


def test_error_with_parameters_keeps_connection_usable(conn):
    with pytest.raises(errors.DivisionByZero):
        conn.execute("SELECT %s::int / %s::int", (1, 0))
    assert conn.execute("SELECT %s::int", (5,)).fetchone() == (5,)


def test_transaction_block(basin):
    # Without autocommit psycopg wraps statements in BEGIN ... COMMIT.
    with basin.connect(autocommit=False) as tx_conn:
        with tx_conn.transaction():
            tx_conn.execute("CREATE TABLE psy_tx (id INT)")
            tx_conn.execute("INSERT INTO psy_tx VALUES (%s)", (1,))
        assert tx_conn.execute("SELECT count(*) FROM psy_tx").fetchone() == (1,)
        tx_conn.commit()


def test_wrong_parameter_count_in_bind(basin, assert_healthy):
    # libpq-level access sends a Bind whose parameter count does not match the statement.
    with basin.connect() as raw:
        pgconn = raw.pgconn
        prepared = pgconn.prepare(b"two_params", b"SELECT $1::int + $2::int")
        assert prepared.status == psycopg.pq.ExecStatus.COMMAND_OK, prepared.error_message
        result = pgconn.exec_prepared(b"two_params", [b"1"])
        assert result.status == psycopg.pq.ExecStatus.FATAL_ERROR
        assert result.error_field(psycopg.pq.DiagnosticField.SQLSTATE) == b"08P01"
        # The session goes on: the statement still works with the right count.
        result = pgconn.exec_prepared(b"two_params", [b"1", b"2"])
        assert result.status == psycopg.pq.ExecStatus.TUPLES_OK, result.error_message
        assert result.get_value(0, 0) == b"3"
    assert_healthy()
