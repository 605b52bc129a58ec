"""The client matrix (issue 7): each Python client connects, introspects, sends parameters of every
type and reads them back, against real PostgreSQL and against Basin with the same script.

Every test runs twice through the `server` fixture (conftest.py): first against a throwaway
PostgreSQL cluster, which proves the expectation is Postgres's, then against Basin. Where Basin
differs on purpose the test says so with `server.is_basin` and docs/clients.md lists it.
"""

from __future__ import annotations

import datetime
import decimal
import warnings

import pandas as pd
import pg8000.dbapi
import psycopg2
import psycopg2.extras
import pytest
import sqlalchemy as sa

from matrix_data import (
    COLUMNS,
    NAMES,
    TABLE,
    TABLE_COLUMNS,
    TYPES,
    VALUES,
    VIEW,
    canonical_row,
    expected,
    seed,
)

# pg_type OIDs the row description must carry, per column (PostgreSQL's own numbers).
TYPE_OIDS = {
    "i2": 21, "i4": 23, "i8": 20, "f4": 700, "f8": 701, "num": 1700, "txt": 25, "flag": 16,
    "bin": 17, "day": 1082, "clock": 1083, "ts": 1114, "tstz": 1184, "span": 1186,
    "ints": 1007, "texts": 1009, "nothing": 23,
}

# information_schema.columns.data_type per table column, as PostgreSQL names them.
DATA_TYPES = {
    "id": "bigint", "i2": "smallint", "i4": "integer", "i8": "bigint", "f4": "real",
    "f8": "double precision", "num": "numeric", "txt": "text", "flag": "boolean", "bin": "bytea",
    "day": "date", "ts": "timestamp without time zone", "tstz": "timestamp with time zone",
    "nothing": "integer",
}


def echo_sql(placeholder, names: list[str] = NAMES) -> str:
    """SELECT CAST(<param i> AS <type>) AS <name>, ... for `names`; `placeholder(i)` spells the
    i-th (0-based) parameter in the driver's style."""
    items = [f"CAST({placeholder(i)} AS {TYPES[name]}) AS {name}" for i, name in enumerate(names)]
    return "SELECT " + ", ".join(items)


def params() -> list:
    return [value for _, _, value in COLUMNS]


@pytest.fixture(scope="module")
def seeded(server):
    seed(server)
    return server


# --- psycopg2 ------------------------------------------------------------------------------------


def psycopg2_connect(server):
    conn = psycopg2.connect(server.dsn)
    conn.autocommit = True
    return conn


def test_psycopg2_session_and_catalog(seeded):
    with psycopg2_connect(seeded) as conn, conn.cursor() as cur:
        assert conn.server_version >= 150000
        assert conn.get_parameter_status("server_encoding") == "UTF8"
        assert conn.get_parameter_status("integer_datetimes") == "on"
        cur.execute("SELECT current_database(), current_schema(), current_user, pg_catalog.version()")
        database, schema, user, version = cur.fetchone()
        assert (database, schema, user) == ("basin", "public", "basin")
        assert version.startswith("PostgreSQL ")
        cur.execute(
            "SELECT column_name, data_type, is_nullable, numeric_precision, numeric_scale "
            "FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
            "ORDER BY ordinal_position",
            ("public", TABLE),
        )
        rows = cur.fetchall()
    assert [(name, data_type) for name, data_type, *_ in rows] == [(name, DATA_TYPES[name]) for name in ["id", *TABLE_COLUMNS]]
    assert rows[0][2] == "NO" and all(nullable == "YES" for _, _, nullable, _, _ in rows[1:])
    assert [(precision, scale) for name, _, _, precision, scale in rows if name == "num"] == [(12, 4)]


def test_psycopg2_parameters_of_every_type(seeded):
    with psycopg2_connect(seeded) as conn, conn.cursor() as cur:
        # psycopg2 interpolates on the client: this is Basin parsing psycopg2's literals.
        cur.execute(echo_sql(lambda _: "%s"), params())
        row = cur.fetchone()
        assert [column.type_code for column in cur.description] == [TYPE_OIDS[name] for name in NAMES]
        assert [column.name for column in cur.description] == NAMES
    assert canonical_row(row) == expected(NAMES)


def test_psycopg2_table_round_trip(seeded):
    columns = ["id", *TABLE_COLUMNS]
    with psycopg2_connect(seeded) as conn, conn.cursor() as cur:
        rows = [[100 + i, *(VALUES[name] for name in TABLE_COLUMNS)] for i in range(3)]
        psycopg2.extras.execute_batch(
            cur, f"INSERT INTO {TABLE} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})", rows
        )
        cur.execute(f"SELECT {', '.join(columns)} FROM {TABLE} WHERE id BETWEEN %s AND %s ORDER BY id", (100, 101))
        got = cur.fetchall()
        cur.execute(f"SELECT count(*), sum(num), min(day), max(tstz) FROM {TABLE} WHERE id >= %s", (100,))
        count, total, first_day, last_ts = cur.fetchone()
    assert [canonical_row(row) for row in got] == [[100, *expected(TABLE_COLUMNS)], [101, *expected(TABLE_COLUMNS)]]
    assert (count, total, first_day, last_ts) == (3, VALUES["num"] * 3, VALUES["day"], VALUES["tstz"])


def test_psycopg2_nulls_and_dict_cursor(seeded):
    with psycopg2_connect(seeded) as conn, conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
        cur.execute(f"SELECT * FROM {TABLE} WHERE id = %(id)s", {"id": 2})
        row = cur.fetchone()
    assert list(row.keys()) == ["id", *TABLE_COLUMNS]
    assert row["id"] == 2 and all(row[name] is None for name in TABLE_COLUMNS)


CURSOR_QUERY = "SELECT x, x * 2 AS doubled FROM generate_series(1, 10) AS t(x) WHERE x > %s ORDER BY x"


def test_psycopg2_named_cursor(seeded):
    # A named cursor is DECLARE ... CURSOR inside the transaction block psycopg2 opens, then
    # FETCH FORWARD n per fetchmany() and per itersize rows of iteration, then CLOSE.
    conn = psycopg2.connect(seeded.dsn)
    try:
        with conn.cursor(name="matrix_scan") as cur:
            cur.itersize = 3
            cur.execute(CURSOR_QUERY, (2,))
            first = cur.fetchmany(2)
            assert [column.name for column in cur.description] == ["x", "doubled"]
            rest = list(cur)
        conn.commit()
        with conn.cursor() as plain:
            plain.execute("DECLARE plain_scan CURSOR FOR SELECT id, txt FROM matrix_types WHERE id < 100 ORDER BY id")
            assert plain.statusmessage == "DECLARE CURSOR"
            plain.execute("FETCH 1 FROM plain_scan")
            assert (plain.statusmessage, canonical_row(plain.fetchall())) == ("FETCH 1", [[1, VALUES["txt"]]])
            plain.execute("FETCH ALL FROM plain_scan")
            assert (plain.statusmessage, plain.fetchall()) == ("FETCH 1", [(2, None)])
            plain.execute("FETCH NEXT FROM plain_scan")
            assert (plain.statusmessage, plain.fetchall()) == ("FETCH 0", [])
            plain.execute("CLOSE plain_scan")
            assert plain.statusmessage == "CLOSE CURSOR"
            with pytest.raises(psycopg2.errors.InvalidCursorName):
                plain.execute("FETCH 1 FROM plain_scan")
        conn.rollback()
        with conn.cursor() as plain:
            # COMMIT closes the cursors of the block.
            plain.execute("DECLARE short_lived CURSOR FOR SELECT 1")
            conn.commit()
            with pytest.raises(psycopg2.errors.InvalidCursorName):
                plain.execute("FETCH 1 FROM short_lived")
        conn.rollback()
        conn.autocommit = True
        with conn.cursor() as plain, pytest.raises(psycopg2.errors.NoActiveSqlTransaction):
            plain.execute("DECLARE outside CURSOR FOR SELECT 1")
        with conn.cursor() as plain:
            # WITH HOLD outlives transactions; DISCARD ALL closes it.
            plain.execute("DECLARE held CURSOR WITH HOLD FOR SELECT id FROM matrix_types WHERE id < 100 ORDER BY id")
            plain.execute("FETCH 1 FROM held")
            assert plain.fetchall() == [(1,)]
            plain.execute("DISCARD ALL")
            with pytest.raises(psycopg2.errors.InvalidCursorName):
                plain.execute("FETCH 1 FROM held")
    finally:
        conn.close()
    assert first == [(3, 6), (4, 8)]
    assert rest == [(x, x * 2) for x in range(5, 11)]


def test_psycopg_server_cursor(seeded):
    import psycopg

    with psycopg.connect(seeded.dsn) as conn:
        with conn.cursor(name="matrix_server_scan") as cur:
            cur.execute(CURSOR_QUERY, (2,))
            first = cur.fetchmany(3)
            rest = cur.fetchall()
    assert first == [(3, 6), (4, 8), (5, 10)]
    assert rest == [(x, x * 2) for x in range(6, 11)]


# --- pg8000 --------------------------------------------------------------------------------------


def pg8000_connect(server):
    conn = pg8000.dbapi.connect(user=server.user, host=server.host, port=server.port, database=server.database)
    conn.autocommit = True
    return conn


def test_pg8000_parameters_of_every_type(seeded):
    # pg8000 binds every parameter on the server (extended protocol) and reads text results.
    conn = pg8000_connect(seeded)
    try:
        cur = conn.cursor()
        cur.execute(echo_sql(lambda _: "%s"), params())
        row = cur.fetchone()
        assert [column[1] for column in cur.description] == [TYPE_OIDS[name] for name in NAMES]
        cur.execute(f"SELECT id, {', '.join(TABLE_COLUMNS)} FROM {TABLE} WHERE id = %s AND txt = %s", (1, VALUES["txt"]))
        table_rows = cur.fetchall()
        cur.execute("SELECT current_setting('server_version_num')::int >= 150000, pg_catalog.version() LIKE 'PostgreSQL %'")
        version_ok = cur.fetchone()
    finally:
        conn.close()
    assert canonical_row(row) == expected(NAMES)
    assert [canonical_row(r) for r in table_rows] == [[1, *expected(TABLE_COLUMNS)]]
    assert list(version_ok) == [True, True]


def test_pg8000_errors_carry_sqlstate(seeded):
    conn = pg8000_connect(seeded)
    try:
        cur = conn.cursor()
        with pytest.raises(pg8000.dbapi.DatabaseError) as raised:
            cur.execute("SELECT * FROM no_such_table_here WHERE id = %s", (1,))
        assert raised.value.args[0]["C"] == "42P01"
        cur.execute("SELECT %s::int + 1", (41,))  # the connection is still usable
        assert cur.fetchone() == [42]
    finally:
        conn.close()


# --- SQLAlchemy 2 --------------------------------------------------------------------------------


def engine_for(server, driver: str) -> sa.Engine:
    return sa.create_engine(
        f"postgresql+{driver}://{server.user}@{server.host}:{server.port}/{server.database}", poolclass=sa.NullPool
    )


SQLALCHEMY_TYPES = {
    "id": "BIGINT", "i2": "SMALLINT", "i4": "INTEGER", "i8": "BIGINT", "f4": "REAL",
    "f8": "DOUBLE PRECISION", "num": "NUMERIC(12, 4)", "txt": "TEXT", "flag": "BOOLEAN",
    "bin": "BYTEA", "day": "DATE", "ts": "TIMESTAMP WITHOUT TIME ZONE",
    "tstz": "TIMESTAMP WITH TIME ZONE", "nothing": "INTEGER",
}


@pytest.mark.parametrize("driver", ["psycopg2", "psycopg", "pg8000"])
def test_sqlalchemy_reflection(seeded, driver):
    engine = engine_for(seeded, driver)
    try:
        inspector = sa.inspect(engine)
        assert TABLE in inspector.get_table_names()
        assert VIEW not in inspector.get_table_names()
        assert VIEW in inspector.get_view_names()
        assert inspector.default_schema_name == "public"
        assert "public" in inspector.get_schema_names()
        columns = inspector.get_columns(TABLE)
        assert [c["name"] for c in columns] == ["id", *TABLE_COLUMNS]
        dialect = engine.dialect
        assert {c["name"]: c["type"].compile(dialect=dialect) for c in columns} == SQLALCHEMY_TYPES
        assert [c["nullable"] for c in columns] == [False] + [True] * len(TABLE_COLUMNS)
        assert [c["name"] for c in inspector.get_columns(VIEW)] == ["id", "txt", "num"]
        # Basin accepts PRIMARY KEY but keeps no constraints, so it reports none (docs/clients.md).
        assert inspector.get_pk_constraint(TABLE)["constrained_columns"] == ([] if seeded.is_basin else ["id"])
        assert inspector.get_foreign_keys(TABLE) == []
        assert inspector.get_indexes(TABLE) == []
        assert inspector.has_table(TABLE) and not inspector.has_table("no_such_table")
    finally:
        engine.dispose()


@pytest.mark.parametrize("driver", ["psycopg2", "psycopg"])
def test_sqlalchemy_core_select_with_bound_parameters(seeded, driver):
    engine = engine_for(seeded, driver)
    try:
        table = sa.Table(TABLE, sa.MetaData(), autoload_with=engine)
        query = (
            sa.select(table.c.id, table.c.num, table.c.txt, table.c.tstz, table.c.bin)
            .where(table.c.id == sa.bindparam("wanted"), table.c.day >= VALUES["day"])
            .order_by(table.c.id)
        )
        with engine.connect() as conn:
            rows = conn.execute(query, {"wanted": 1}).all()
            missing = conn.execute(query, {"wanted": 2}).all()  # id 2 has a NULL day
            echoed = conn.execute(
                sa.select(
                    sa.literal(VALUES["num"], sa.Numeric(12, 4)),
                    sa.literal(VALUES["day"]),
                    sa.literal(VALUES["tstz"], sa.DateTime(timezone=True)),
                    sa.literal(VALUES["bin"], sa.LargeBinary),
                )
            ).one()
    finally:
        engine.dispose()
    assert [canonical_row(row) for row in rows] == [[1, *expected(["num", "txt", "tstz", "bin"])]]
    assert missing == []
    want = expected(["num", "day", "tstz", "bin"])
    if seeded.is_basin and driver == "psycopg":
        # psycopg binds the Decimal as a parameter of type numeric, which has no scale of its
        # own; Basin's numerics have a fixed scale, 10 when none is given (docs/clients.md).
        # psycopg2 writes the value into the SQL text, where it keeps its four digits.
        want[0] = "12345678.9010000000"
    assert canonical_row(echoed) == want


# --- pandas read_sql ----------------------------------------------------------------------------


PANDAS_QUERY = f"SELECT id, i2, i4, i8, f8, num, txt, flag, day, ts, tstz FROM {TABLE} WHERE id <= %(last)s ORDER BY id"


# What pandas makes of the two rows: the NULL row turns integer columns into float64 (so the
# int8 loses its last digit, as it does on Postgres); coerce_float=False keeps numerics Decimal.
PANDAS_DTYPES = {
    "id": "int64", "i2": "float64", "i4": "float64", "i8": "float64", "f8": "float64", "num": "object",
    "txt": "str", "flag": "object", "day": "object", "ts": "datetime64[us]", "tstz": "datetime64[us, UTC]",
}


def check_frame(frame: pd.DataFrame) -> None:
    assert frame.dtypes.astype(str).to_dict() == PANDAS_DTYPES
    first, second = frame.to_dict("records")
    assert first == {
        "id": 1, "i2": float(VALUES["i2"]), "i4": float(VALUES["i4"]), "i8": float(VALUES["i8"]),
        "f8": VALUES["f8"], "num": VALUES["num"], "txt": VALUES["txt"], "flag": True, "day": VALUES["day"],
        "ts": pd.Timestamp(VALUES["ts"]), "tstz": pd.Timestamp(VALUES["tstz"]),
    }
    assert str(first["num"]) == str(VALUES["num"])
    assert second["id"] == 2 and all(pd.isna(value) for name, value in second.items() if name != "id")


def test_pandas_read_sql_through_sqlalchemy(seeded):
    engine = engine_for(seeded, "psycopg2")
    try:
        frame = pd.read_sql(sa.text(PANDAS_QUERY.replace("%(last)s", ":last")), engine, params={"last": 2}, coerce_float=False)
        whole = pd.read_sql_table(VIEW, engine)
    finally:
        engine.dispose()
    check_frame(frame)
    assert list(whole.columns) == ["id", "txt", "num"] and whole["id"].tolist() == [1]


def test_pandas_read_sql_through_dbapi_connection(seeded):
    with psycopg2_connect(seeded) as conn, warnings.catch_warnings():
        # pandas warns that only SQLAlchemy and sqlite3 connections are tested; that is the point.
        warnings.simplefilter("ignore", UserWarning)
        frame = pd.read_sql(PANDAS_QUERY, conn, params={"last": 2}, coerce_float=False)
    check_frame(frame)


# --- ADBC (adbc-driver-postgresql) --------------------------------------------------------------

# Arrow types the driver maps each table column to (from the row description's type OIDs).
ADBC_TYPES = {
    "id": "int64", "i2": "int16", "i4": "int32", "i8": "int64", "f4": "float", "f8": "double",
    "num": "extension<arrow.opaque[storage_type=string, type_name=numeric, vendor_name=PostgreSQL]>",
    "txt": "string", "flag": "bool", "bin": "binary", "day": "date32[day]",
    "ts": "timestamp[us]", "tstz": "timestamp[us, tz=UTC]", "nothing": "int32",
}


def adbc_connect(server):
    import adbc_driver_postgresql.dbapi

    return adbc_driver_postgresql.dbapi.connect(server.url)


def test_adbc_reads_table_through_copy(seeded):
    # Without parameters the driver reads results with COPY (query) TO STDOUT (FORMAT binary).
    columns = ["id", *TABLE_COLUMNS]
    with adbc_connect(seeded) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT {', '.join(columns)} FROM {TABLE} WHERE id < 100 ORDER BY id")
        table = cur.fetch_arrow_table()
    assert {field.name: str(field.type) for field in table.schema} == ADBC_TYPES
    first, second = table.to_pylist()
    # ADBC hands numerics over as their text.
    assert canonical_row(first.values()) == [1, *expected(TABLE_COLUMNS)]
    assert second["id"] == 2 and all(second[name] is None for name in TABLE_COLUMNS)


def test_adbc_parameters_and_introspection(seeded):
    names = [name for name in NAMES if name not in ("ints", "texts")]  # the driver binds no arrays
    values = [VALUES[name] for name in names]
    with adbc_connect(seeded) as conn, conn.cursor() as cur:
        cur.execute(echo_sql(lambda i: f"${i + 1}", names), values)
        echoed = cur.fetch_arrow_table()
        cur.execute(f"SELECT id, txt FROM {TABLE} WHERE id = $1 AND day = $2", (1, VALUES["day"]))
        by_parameter = cur.fetchall()
        schema = conn.adbc_get_table_schema(TABLE, db_schema_filter="public")
        objects = conn.adbc_get_objects(depth="columns", db_schema_filter="public", table_name_filter="matrix_%").read_all()
    # The driver binds a timedelta as an interval of microseconds only (no days part), and
    # Arrow reads an interval back as (months, days, nanoseconds).
    want = expected(names)
    want[names.index("span")] = [0, 0, 93_784_500_000_000]
    assert canonical_row(echoed.to_pylist()[0].values()) == want
    assert by_parameter == [(1, VALUES["txt"])]
    assert [field.name for field in schema] == ["id", *TABLE_COLUMNS]
    assert {field.name: str(field.type) for field in schema} == ADBC_TYPES
    # The driver's column query has no ORDER BY; each column carries its ordinal position.
    tables = {
        table["table_name"]: (
            table["table_type"],
            [column["column_name"] for column in sorted(table["table_columns"], key=lambda c: c["ordinal_position"])],
            sorted(column["ordinal_position"] for column in table["table_columns"]),
        )
        for catalog in objects.to_pylist()
        for db_schema in catalog["catalog_db_schemas"]
        for table in db_schema["db_schema_tables"]
    }
    assert tables == {
        TABLE: ("table", ["id", *TABLE_COLUMNS], list(range(1, len(TABLE_COLUMNS) + 2))),
        VIEW: ("view", ["id", "txt", "num"], [1, 2, 3]),
    }
