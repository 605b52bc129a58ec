"""The values every client in the client matrix sends and reads back, in one place.

`VALUES` holds one value per Postgres type as Python's standard library represents it (what
psycopg returns); each client test turns what its driver returned into these forms with
`canonical()` before comparing, so a difference is a difference in value, not in driver style.
Numerics compare by their text so the scale (trailing zeros) counts too.
"""

from __future__ import annotations

import datetime
import decimal
from typing import Any

UTC = datetime.timezone.utc

# (column, SQL type, value). The order is the column order of the table and of the echo query.
COLUMNS: list[tuple[str, str, Any]] = [
    ("i2", "SMALLINT", -32768),
    ("i4", "INTEGER", 2147483647),
    ("i8", "BIGINT", 9007199254740993),  # not representable as a double
    ("f4", "REAL", -1.5),
    ("f8", "DOUBLE PRECISION", 3.141592653589793),
    ("num", "NUMERIC(12,4)", decimal.Decimal("12345678.9010")),
    ("txt", "TEXT", "it's \"ünïcödé\", a\\b\ttab"),
    ("flag", "BOOLEAN", True),
    ("bin", "BYTEA", b"\x00\x01\xfe\xff'\\"),
    ("day", "DATE", datetime.date(2024, 2, 29)),
    ("clock", "TIME", datetime.time(13, 45, 30, 123456)),
    ("ts", "TIMESTAMP", datetime.datetime(2024, 2, 29, 13, 45, 30, 123456)),
    ("tstz", "TIMESTAMPTZ", datetime.datetime(2024, 2, 29, 13, 45, 30, 123456, tzinfo=UTC)),
    ("span", "INTERVAL", datetime.timedelta(days=1, hours=2, minutes=3, seconds=4, microseconds=500000)),
    ("ints", "INTEGER[]", [1, None, -3]),
    ("texts", "TEXT[]", ["a", "b c", "d,\"e\"", None]),
    ("nothing", "INTEGER", None),
]

NAMES = [name for name, _, _ in COLUMNS]
TYPES = {name: sql_type for name, sql_type, _ in COLUMNS}
VALUES = {name: value for name, _, value in COLUMNS}

# Columns Basin-managed tables can hold: Basin stores tables as Delta Lake tables, whose type
# system has no TIME or INTERVAL, and it cannot store arrays in them yet (docs/clients.md). The
# echo queries cover those types.
TABLE_COLUMNS = [name for name in NAMES if name not in ("clock", "span", "ints", "texts")]
TABLE = "matrix_types"
VIEW = "matrix_view"


def create_table_sql(table: str = TABLE) -> str:
    columns = ", ".join(f"{name} {TYPES[name]}" for name in TABLE_COLUMNS)
    return f"CREATE TABLE {table} (id BIGINT NOT NULL, {columns}, PRIMARY KEY (id))"


def canonical(value: Any) -> Any:
    """A driver's value in the standard-library form used by `VALUES`."""
    if isinstance(value, memoryview):
        return bytes(value)
    if isinstance(value, bytearray):
        return bytes(value)
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [canonical(item) for item in value]
    return value


def canonical_row(row: Any) -> list[Any]:
    return [canonical(value) for value in row]


def expected(names: list[str]) -> list[Any]:
    return [canonical(VALUES[name]) for name in names]


def seed(server) -> None:
    """(Re)creates `matrix_types` with one row of every value (id 1) and one of NULLs (id 2), and
    the view `matrix_view` over it; `server` is a conftest `Target`."""
    with server.connect() as conn:
        conn.execute(f"DROP VIEW IF EXISTS {VIEW}")
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
        conn.execute(create_table_sql())
        placeholders = ", ".join(["%s"] * (len(TABLE_COLUMNS) + 1))
        columns = ", ".join(["id", *TABLE_COLUMNS])
        conn.execute(
            f"INSERT INTO {TABLE} ({columns}) VALUES ({placeholders})",
            [1, *(VALUES[name] for name in TABLE_COLUMNS)],
        )
        conn.execute(f"INSERT INTO {TABLE} (id) VALUES (2)")
        conn.execute(f"CREATE VIEW {VIEW} AS SELECT id, txt, num FROM {TABLE} WHERE flag AND id < 100")
