"""The client matrix for psqlODBC (Debian's odbc-postgresql, driver "PostgreSQL Unicode") through
pyodbc and unixODBC: the path Tableau, Power BI and Excel take. Each test runs against real
PostgreSQL and against Basin (the `server` fixture): catalog functions (SQLTables, SQLColumns,
SQLPrimaryKeys, SQLStatistics, SQLGetTypeInfo as pyodbc's cursor.tables()/columns()/...),
parameters of every type bound with their ODBC types, and the table read back.

psqlODBC's defaults apply: server-side prepare (Parse/Bind/Describe with the bound types),
`bool` read as the character '1' (BoolsAsChar), `time` as SQL_TYPE_TIME without fractional
seconds, interval and arrays as text.
"""

from __future__ import annotations

import datetime
import decimal

import pyodbc
import pytest

from matrix_data import TABLE, TABLE_COLUMNS, VALUES, VIEW, seed

DRIVER = "PostgreSQL Unicode"

# ODBC SQL types (sql.h / sqlext.h) and psqlODBC's type names per table column.
ODBC_TYPES = {
    "id": (pyodbc.SQL_BIGINT, "int8"), "i2": (pyodbc.SQL_SMALLINT, "int2"), "i4": (pyodbc.SQL_INTEGER, "int4"),
    "i8": (pyodbc.SQL_BIGINT, "int8"), "f4": (pyodbc.SQL_REAL, "float4"), "f8": (pyodbc.SQL_FLOAT, "float8"),
    "num": (pyodbc.SQL_NUMERIC, "numeric"), "txt": (pyodbc.SQL_WLONGVARCHAR, "text"),
    "flag": (pyodbc.SQL_VARCHAR, "bool"), "bin": (pyodbc.SQL_LONGVARBINARY, "bytea"),
    "day": (pyodbc.SQL_TYPE_DATE, "date"), "ts": (pyodbc.SQL_TYPE_TIMESTAMP, "timestamp"),
    "tstz": (pyodbc.SQL_TYPE_TIMESTAMP, "timestamptz"), "nothing": (pyodbc.SQL_INTEGER, "int4"),
}


@pytest.fixture(scope="module")
def seeded(server):
    assert DRIVER in pyodbc.drivers(), f"ODBC driver {DRIVER!r} missing: run scripts/setup.sh (odbc-postgresql)"
    seed(server)
    return server


def connect(server) -> pyodbc.Connection:
    return pyodbc.connect(
        f"DRIVER={{{DRIVER}}};SERVER={server.host};PORT={server.port};DATABASE={server.database};UID={server.user};",
        autocommit=True,
        timeout=10,
    )


def test_odbc_connect_and_getinfo(seeded):
    with connect(seeded) as conn:
        assert conn.getinfo(pyodbc.SQL_DBMS_NAME) == "PostgreSQL"
        major = int(conn.getinfo(pyodbc.SQL_DBMS_VER).split(".")[0])
        assert major >= 15
        assert conn.getinfo(pyodbc.SQL_DATABASE_NAME) == "basin"
        assert conn.getinfo(pyodbc.SQL_USER_NAME) == "basin"
        assert conn.cursor().execute("SELECT current_schema()").fetchval() == "public"


def test_odbc_catalog_functions(seeded):
    with connect(seeded) as conn:
        cur = conn.cursor()
        tables = {(row.table_schem, row.table_name, row.table_type) for row in cur.tables(schema="public", table="matrix%")}
        assert tables == {("public", TABLE, "TABLE"), ("public", VIEW, "VIEW")}
        views = [row.table_name for row in cur.tables(schema="public", tableType="VIEW")]
        assert views == [VIEW]

        columns = cur.columns(table=TABLE, schema="public").fetchall()
        names = ["id", *TABLE_COLUMNS]
        assert [row.column_name for row in columns] == names
        assert [row.ordinal_position for row in columns] == list(range(1, len(names) + 1))
        assert {row.column_name: (row.data_type, row.type_name) for row in columns} == ODBC_TYPES
        assert [row.nullable for row in columns] == [0] + [1] * len(TABLE_COLUMNS)
        num = next(row for row in columns if row.column_name == "num")
        assert (num.column_size, num.decimal_digits) == (12, 4)
        i8 = next(row for row in columns if row.column_name == "i8")
        assert i8.column_size == 19
        view_columns = [(row.column_name, row.type_name) for row in cur.columns(table=VIEW, schema="public")]
        assert view_columns == [("id", "int8"), ("txt", "text"), ("num", "numeric")]

        # Basin keeps no constraints or indexes (docs/clients.md).
        keys = [(row.column_name, row.key_seq) for row in cur.primaryKeys(TABLE, schema="public")]
        assert keys == ([] if seeded.is_basin else [("id", 1)])
        indexes = [row.index_name for row in cur.statistics(TABLE, schema="public") if row.index_name]
        assert indexes == ([] if seeded.is_basin else ["matrix_types_pkey"])

        # psqlODBC answers SQLGetTypeInfo from its own table, one row per ODBC type it maps.
        type_names = {row.type_name for row in cur.getTypeInfo()}
        assert type_names == {"bool", "bytea", "char", "date", "float4", "float8", "int2", "int4", "int8",
                              "numeric", "text", "time", "timestamptz", "uuid", "varchar"}


ECHO = (
    "SELECT CAST(? AS SMALLINT) AS i2, CAST(? AS INTEGER) AS i4, CAST(? AS BIGINT) AS i8, CAST(? AS REAL) AS f4, "
    "CAST(? AS DOUBLE PRECISION) AS f8, CAST(? AS NUMERIC(12,4)) AS num, CAST(? AS TEXT) AS txt, "
    "CAST(? AS BOOLEAN) AS flag, CAST(? AS BYTEA) AS bin, CAST(? AS DATE) AS day, CAST(? AS TIME) AS clock, "
    "CAST(? AS TIMESTAMP) AS ts, CAST(? AS TIMESTAMPTZ) AS tstz, CAST(? AS INTERVAL) AS span, "
    "CAST(? AS INTEGER[]) AS ints, CAST(? AS TEXT[]) AS texts, CAST(? AS INTEGER) AS nothing"
)


def test_odbc_parameters_of_every_type(seeded):
    sent = [
        VALUES["i2"], VALUES["i4"], VALUES["i8"], VALUES["f4"], VALUES["f8"], VALUES["num"], VALUES["txt"], True,
        VALUES["bin"], VALUES["day"], VALUES["clock"], VALUES["ts"], VALUES["tstz"].replace(tzinfo=None),
        "1 day 02:03:04.5", "{1,NULL,-3}", '{a,"b c","d,\\"e\\"",NULL}', None,
    ]
    with connect(seeded) as conn:
        cur = conn.cursor()
        row = cur.execute(ECHO, sent).fetchone()
        description = [(column[0], column[1]) for column in cur.description]
    assert description == [
        ("i2", int), ("i4", int), ("i8", int), ("f4", float), ("f8", float), ("num", decimal.Decimal),
        ("txt", str), ("flag", str), ("bin", bytearray), ("day", datetime.date), ("clock", datetime.time),
        ("ts", datetime.datetime), ("tstz", datetime.datetime), ("span", str), ("ints", str), ("texts", str),
        ("nothing", int),
    ]
    assert list(row) == [
        VALUES["i2"], VALUES["i4"], VALUES["i8"], VALUES["f4"], VALUES["f8"], VALUES["num"], VALUES["txt"],
        "1", VALUES["bin"], VALUES["day"], VALUES["clock"].replace(microsecond=0), VALUES["ts"],
        VALUES["tstz"].replace(tzinfo=None), "1 day 02:03:04.5", "{1,NULL,-3}", '{a,"b c","d,\\"e\\"",NULL}', None,
    ]


def test_odbc_table_read_with_parameters(seeded):
    with connect(seeded) as conn:
        cur = conn.cursor()
        rows = cur.execute(f"SELECT * FROM {TABLE} WHERE id = ? OR num > ? ORDER BY id", 2, decimal.Decimal("1000.5")).fetchall()
        description = [(column[0], column[4], column[5], column[6]) for column in cur.description]
        assert [tuple(row) for row in rows] == [
            (1, *["1" if name == "flag" else VALUES[name].replace(tzinfo=None) if name == "tstz" else VALUES[name]
                  for name in TABLE_COLUMNS]),
            (2, *[None] * len(TABLE_COLUMNS)),
        ]
        # (name, precision, scale, nullable): psqlODBC reads nullability from pg_attribute by the
        # table OID and column number of the row description.
        assert description[0] == ("id", 19, 0, False)
        assert description[6] == ("num", 12, 4, True)
        count = cur.execute(f"SELECT count(*) FROM {VIEW} WHERE txt = ?", VALUES["txt"]).fetchval()
        assert count == 1
        cur.execute(f"INSERT INTO {TABLE} (id, txt, day) VALUES (?, ?, ?)", 300, "odbc", datetime.date(2000, 1, 1))
        assert cur.rowcount == 1
        assert tuple(cur.execute(f"SELECT txt, day FROM {TABLE} WHERE id = ?", 300).fetchone()) == ("odbc", datetime.date(2000, 1, 1))
