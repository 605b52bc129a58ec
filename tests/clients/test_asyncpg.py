"""asyncpg against Basin: it speaks only the extended protocol with binary formats, prepares
every statement, and checks parameter and result types strictly."""

import asyncio
import datetime
import decimal

import asyncpg
import pytest


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, timeout=60))


async def connect(basin):
    return await asyncpg.connect(host=basin.host, port=basin.port, user="basin", database="basin", timeout=10)


def test_prepared_statement_executed_repeatedly(basin):
    async def body():
        conn = await connect(basin)
        try:
            stmt = await conn.prepare("SELECT $1::int * 2 AS doubled")
            assert [a.name for a in stmt.get_attributes()] == ["doubled"]
            assert [await stmt.fetchval(i) for i in range(5)] == [0, 2, 4, 6, 8]
        finally:
            await conn.close()

    run(body())


def test_fetch_with_parameters_of_several_types(basin):
    async def body():
        conn = await connect(basin)
        try:
            row = await conn.fetchrow(
                "SELECT $1::int AS i, $2::bigint AS b, $3::text AS t, $4::date AS d, "
                "$5::float8 AS f, $6::bool AS flag, $7::numeric(10,2) AS n, $8::timestamp AS ts, $9::bytea AS raw",
                7,
                -(2**40),
                "héllo",
                datetime.date(1999, 12, 31),
                2.5,
                True,
                decimal.Decimal("12.34"),
                datetime.datetime(2024, 5, 6, 7, 8, 9, 123456),
                b"\x00\xff",
            )
            assert dict(row) == {
                "i": 7,
                "b": -(2**40),
                "t": "héllo",
                "d": datetime.date(1999, 12, 31),
                "f": 2.5,
                "flag": True,
                "n": decimal.Decimal("12.34"),
                "ts": datetime.datetime(2024, 5, 6, 7, 8, 9, 123456),
                "raw": b"\x00\xff",
            }
        finally:
            await conn.close()

    run(body())


def test_parameters_filter_a_table(basin):
    async def body():
        conn = await connect(basin)
        try:
            await conn.execute("CREATE TABLE apg_items (id INT, name VARCHAR, day DATE)")
            await conn.execute(
                "INSERT INTO apg_items VALUES (1, 'one', DATE '2024-01-01'), (2, 'two', DATE '2024-02-01'), "
                "(3, 'three', DATE '2024-03-01')"
            )
            rows = await conn.fetch(
                "SELECT id, name FROM apg_items WHERE day >= $1 AND name <> $2 ORDER BY id",
                datetime.date(2024, 2, 1),
                "three",
            )
            assert [tuple(r) for r in rows] == [(2, "two")]
            assert await conn.fetchval("SELECT count(*) FROM apg_items WHERE id = ANY($1::int[])", [1, 3]) == 2
        finally:
            await conn.close()

    run(body())


def test_null_parameters(basin):
    async def body():
        conn = await connect(basin)
        try:
            assert await conn.fetchval("SELECT $1::text IS NULL", None) is True
        finally:
            await conn.close()

    run(body())


def test_errors_map_to_asyncpg_exceptions_and_connection_survives(basin):
    async def body():
        conn = await connect(basin)
        try:
            with pytest.raises(asyncpg.exceptions.UndefinedTableError):
                await conn.fetch("SELECT * FROM apg_no_such_table")
            with pytest.raises(asyncpg.exceptions.DivisionByZeroError):
                await conn.fetchval("SELECT $1::int / $2::int", 1, 0)
            assert await conn.fetchval("SELECT $1::int + 1", 1) == 2
        finally:
            await conn.close()

    run(body())


def test_transaction_context(basin):
    async def body():
        conn = await connect(basin)
        try:
            async with conn.transaction():
                assert await conn.fetchval("SELECT 40 + $1::int", 2) == 42
        finally:
            await conn.close()

    run(body())


def test_concurrent_connections(basin):
    async def one(i):
        conn = await connect(basin)
        try:
            return await conn.fetchval("SELECT $1::int * 10", i)
        finally:
            await conn.close()

    async def body():
        return await asyncio.gather(*(one(i) for i in range(10)))

    assert run(body()) == [i * 10 for i in range(10)]


def test_cursor_fetches_in_pieces_and_timeout_counts_only_executes(basin):
    """asyncpg cursors Execute with max_rows (portal suspension). statement_timeout applies to
    each Execute, not to the time the client spends between fetches, as in Postgres."""

    async def body():
        conn = await connect(basin)
        try:
            await conn.execute("SET statement_timeout = 400")
            seen = []
            async with conn.transaction():
                cursor = await conn.cursor("SELECT x FROM generate_series(1, 50) AS t(x)")
                while True:
                    rows = await cursor.fetch(10)
                    if not rows:
                        break
                    seen.extend(r["x"] for r in rows)
                    await asyncio.sleep(0.15)
            assert seen == list(range(1, 51))
            with pytest.raises(asyncpg.QueryCanceledError, match="statement timeout"):
                await conn.fetch("SELECT count(*) FROM generate_series(1, 100000000000) AS t(x) WHERE x % 7 = 3")
            assert await conn.fetchval("SELECT 1") == 1
        finally:
            await conn.close()

    run(body())
