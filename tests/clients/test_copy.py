"""COPY ... FROM STDIN into streaming tables over the real wire: psycopg in the text, CSV and
binary formats, psql's \\copy from a file, the extended protocol over a raw socket; bad rows named
by row and column, dead-letter tables, and a connection that keeps working after every error."""

from __future__ import annotations

import asyncio
import datetime
import io
import struct
import subprocess

import asyncpg

import psycopg
import pytest
from decimal import Decimal
from psycopg import errors

import pgwire_raw as raw

UTC = datetime.timezone.utc
BASE = datetime.datetime(2026, 1, 1, tzinfo=UTC)
EVENTS_DDL = (
    "CREATE TABLE {name} (device_id TEXT NOT NULL, ts TIMESTAMPTZ, temp DOUBLE PRECISION, "
    "WATERMARK FOR ts AS ts - INTERVAL '5 seconds') APPEND ONLY {with_}"
)


def create_events(conn, name: str, with_: str = "WITH (compaction_interval = '1h')") -> None:
    conn.execute(EVENTS_DDL.format(name=name, with_=with_))


def count(conn, table: str) -> int:
    return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def assert_usable(conn) -> None:
    assert conn.execute("SELECT 41 + 1").fetchone() == (42,)


def psql(basin, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["psql", "-X", "-v", "ON_ERROR_STOP=1", "-h", basin.host, "-p", str(basin.port),
         "-U", "basin", "-d", "basin", *args],
        capture_output=True, text=True, timeout=120,
    )


def test_text_write_row(conn):
    create_events(conn, "cp_text")
    with conn.cursor() as cur:
        with cur.copy("COPY cp_text FROM STDIN") as copy:
            for i in range(3000):
                copy.write_row((f"dev{i % 10}", BASE + datetime.timedelta(seconds=i), None if i % 100 == 0 else i * 0.5))
            # Characters the text format escapes come back as written.
            copy.write_row(("tab\there\nnew line\\back\rslash", None, -1.0))
        assert cur.statusmessage == "COPY 3001"
        assert cur.rowcount == 3001
    row = conn.execute("SELECT count(*), count(temp), count(ts), min(ts), max(ts), max(temp) FROM cp_text").fetchone()
    assert row == (3001, 2971, 3000, BASE, BASE + datetime.timedelta(seconds=2999), 2999 * 0.5)
    assert conn.execute("SELECT count(*) FROM cp_text WHERE device_id = %s", ("tab\there\nnew line\\back\rslash",)).fetchone() == (1,)
    assert_usable(conn)


def test_csv_with_header_in_odd_chunks(conn):
    create_events(conn, "cp_csv")
    data = (
        "device_id,ts,temp\r\n"
        "c1,2026-01-01 00:00:00+00,1.5\r\n"
        '"c,2",,\r\n'
        '"",2026-01-01T00:00:01Z,2.5\r\n'
        '"multi\nline ""quoted""",,3.5\r\n'
    )
    with conn.cursor() as cur:
        with cur.copy("COPY cp_csv FROM STDIN WITH (FORMAT csv, HEADER)") as copy:
            encoded = data.encode()
            for start in range(0, len(encoded), 7):
                copy.write(encoded[start:start + 7])
        assert cur.statusmessage == "COPY 4"
    rows = conn.execute("SELECT device_id, ts, temp FROM cp_csv ORDER BY temp NULLS FIRST").fetchall()
    assert rows == [
        ("c,2", None, None),
        ("c1", BASE, 1.5),
        ("", BASE + datetime.timedelta(seconds=1), 2.5),
        ('multi\nline "quoted"', None, 3.5),
    ]
    # The pre-9.0 spelling, a column list (ts left out is NULL) and the end-of-data marker.
    with conn.cursor() as cur:
        with cur.copy("COPY cp_csv (temp, device_id) FROM STDIN CSV HEADER") as copy:
            copy.write("temp,device_id\n10,late\n\\.\n")
        assert cur.statusmessage == "COPY 1"
    assert conn.execute("SELECT ts, temp FROM cp_csv WHERE device_id = 'late'").fetchone() == (None, 10.0)
    assert_usable(conn)


def test_binary_with_set_types(conn):
    create_events(conn, "cp_bin")
    with conn.cursor() as cur:
        with cur.copy("COPY cp_bin (device_id, ts, temp) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["text", "timestamptz", "float8"])
            for i in range(5000):
                copy.write_row((f"b{i % 50}", BASE + datetime.timedelta(milliseconds=i), float(i) if i % 10 else None))
        assert cur.statusmessage == "COPY 5000"
    row = conn.execute(
        "SELECT count(*), count(temp), count(DISTINCT device_id), min(ts), max(ts), sum(temp) FROM cp_bin"
    ).fetchone()
    assert row == (5000, 4500, 50, BASE, BASE + datetime.timedelta(milliseconds=4999), float(sum(i for i in range(5000) if i % 10)))
    # A column list in another order; the left-out column is NULL.
    with conn.cursor() as cur:
        with cur.copy("COPY cp_bin (temp, device_id) FROM STDIN WITH (FORMAT binary)") as copy:
            copy.set_types(["float8", "varchar"])
            copy.write_row((-7.25, "only"))
        assert cur.statusmessage == "COPY 1"
    assert conn.execute("SELECT ts, temp FROM cp_bin WHERE device_id = 'only'").fetchone() == (None, -7.25)
    assert_usable(conn)


def test_psql_copy_from_files(basin, conn, tmp_path):
    create_events(conn, "cp_psql")
    csv_file = tmp_path / "events.csv"
    csv_file.write_text("device_id,ts,temp\np1,2026-01-01 00:00:00+00,1\np2,,2\np3,2026-01-01 00:00:02+00,\n")
    result = psql(basin, "-c", f"\\copy cp_psql FROM '{csv_file}' CSV HEADER")
    assert result.returncode == 0, result.stderr
    assert "COPY 3" in result.stdout, result.stdout
    text_file = tmp_path / "events.tsv"
    text_file.write_text("".join(f"t{i}\t2026-01-02 00:00:{i:02d}+00\t{i}.5\n" for i in range(40)))
    result = psql(basin, "-c", f"\\copy cp_psql (device_id, ts, temp) FROM '{text_file}'")
    assert result.returncode == 0, result.stderr
    assert "COPY 40" in result.stdout, result.stdout
    row = conn.execute("SELECT count(*), count(ts), count(temp), min(ts), max(temp) FROM cp_psql").fetchone()
    assert row == (43, 42, 42, BASE, 39.5)
    # A bad file: psql reports the row and column, the table is unchanged.
    bad_file = tmp_path / "bad.csv"
    bad_file.write_text("device_id,ts,temp\nq1,,1\nq2,,warm\n")
    result = psql(basin, "-c", f"\\copy cp_psql FROM '{bad_file}' WITH (FORMAT csv, HEADER)")
    assert result.returncode != 0
    assert 'row 2, column "temp"' in result.stderr, result.stderr
    assert count(conn, "cp_psql") == 43


def test_bad_rows_name_row_and_column(conn):
    create_events(conn, "cp_bad")
    with pytest.raises(errors.InvalidTextRepresentation, match=r'row 2, column "temp".*"hot"'):
        with conn.cursor().copy("COPY cp_bad FROM STDIN") as copy:
            copy.write("a\t\\N\t1\nb\t\\N\thot\nc\t\\N\t3\n")
    assert_usable(conn)
    with pytest.raises(errors.InvalidTextRepresentation, match=r'row 3, column "temp"'):
        with conn.cursor().copy("COPY cp_bad FROM STDIN (FORMAT csv, HEADER)") as copy:
            copy.write("device_id,ts,temp\nx,,1\ny,,2\nz,,warm\n")
    assert_usable(conn)
    with pytest.raises(errors.InvalidTextRepresentation, match=r'row 1, column "ts"'):
        with conn.cursor().copy("COPY cp_bad FROM STDIN (FORMAT csv)") as copy:
            copy.write("x,yesterday,1\n")
    assert_usable(conn)
    with pytest.raises(errors.BadCopyFileFormat, match=r'row 2, column "temp": missing data'):
        with conn.cursor().copy("COPY cp_bad FROM STDIN") as copy:
            copy.write("a\t\\N\t1\nb\t\\N\n")
    assert_usable(conn)
    with pytest.raises(errors.NotNullViolation, match=r'row 1, column "device_id"'):
        with conn.cursor().copy("COPY cp_bad FROM STDIN") as copy:
            copy.write("\\N\t\\N\t1\n")
    assert_usable(conn)
    # A float4 sent for a double precision column: the binary value does not fit.
    with pytest.raises(errors.InvalidBinaryRepresentation, match=r'row 1, column "temp"'):
        with conn.cursor().copy("COPY cp_bad FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["text", "timestamptz", "float4"])
            copy.write_row(("x", BASE, 1.5))
    assert_usable(conn)
    with pytest.raises(errors.BadCopyFileFormat, match="signature"):
        with conn.cursor().copy("COPY cp_bad FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(b"this is not PGCOPY data at all")
    assert count(conn, "cp_bad") == 0
    assert_usable(conn)


def test_batches_before_an_error_stay(conn):
    create_events(conn, "cp_batches")
    with pytest.raises(errors.InvalidTextRepresentation) as failure:
        with conn.cursor().copy("COPY cp_batches FROM STDIN") as copy:
            copy.write("".join(f"d{i}\t\\N\t{i}\n" for i in range(70_000)))
            copy.write("bad\t\\N\tnot a number\n")
    assert "row 70001" in str(failure.value)
    assert "65536" in (failure.value.diag.message_hint or ""), failure.value.diag.message_hint
    assert count(conn, "cp_batches") == 65_536
    assert_usable(conn)


def test_dead_letter_table_takes_bad_rows(conn):
    create_events(conn, "cp_dead", "WITH (on_error = 'dead_letter', compaction_interval = '1h')")
    with conn.cursor() as cur:
        with cur.copy("COPY cp_dead FROM STDIN") as copy:
            copy.write(
                "ok1\t\\N\t1\n"
                "bad\t\\N\thot\n"       # row 2: not a number
                "ok2\t\\N\t2\n"
                "short\t\\N\n"          # row 4: a field missing
                "\\N\t\\N\t5\n"         # row 5: NULL device_id
                "ok3\t2026-01-01 00:00:00+00\t3\n"
            )
        assert cur.statusmessage == "COPY 3"
    assert conn.execute("SELECT string_agg(device_id, ',' ORDER BY device_id) FROM cp_dead").fetchone() == ("ok1,ok2,ok3",)
    letters = conn.execute(
        "SELECT source, row_number, column_name, error, raw FROM cp_dead_dead_letter ORDER BY row_number"
    ).fetchall()
    assert [(r[0], r[1], r[2]) for r in letters] == [("copy", 2, "temp"), ("copy", 4, "temp"), ("copy", 5, "device_id")]
    assert "hot" in letters[0][3] and letters[0][4] == "bad\t\\N\thot"
    assert letters[1][4] == "short\t\\N"
    # Binary: a value that does not fit goes to the dead-letter table too.
    with conn.cursor() as cur:
        with cur.copy("COPY cp_dead FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["text", "timestamptz", "float8"])
            copy.write_row(("bin1", BASE, 1.0))
            copy.write_row((None, BASE, 2.0))
        assert cur.statusmessage == "COPY 1"
    assert count(conn, "cp_dead") == 4
    assert count(conn, "cp_dead_dead_letter") == 4
    assert_usable(conn)


def test_copy_into_an_ordinary_table_is_atomic(conn):
    conn.execute("CREATE TABLE cp_plain (id INT NOT NULL, name TEXT, at TIMESTAMP, amount NUMERIC(10,2))")
    with conn.cursor() as cur:
        with cur.copy("COPY cp_plain FROM STDIN") as copy:
            for i in range(1, 70_001):
                copy.write_row((i, f"n{i}", "2026-01-01 10:00:00", "1.25"))
        assert cur.statusmessage == "COPY 70000"
        with cur.copy("COPY cp_plain (id, name) FROM STDIN WITH (FORMAT csv, HEADER)") as copy:
            copy.write("id,name\n70001,\"with, comma\"\n")
        with cur.copy("COPY cp_plain (id, amount) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["int4", "numeric"])
            copy.write_row((70002, Decimal("9.99")))
    assert conn.execute("SELECT count(*), sum(id), max(amount) FROM cp_plain").fetchone() == (
        70002,
        sum(range(1, 70003)),
        Decimal("9.99"),
    )
    assert conn.execute("SELECT name FROM cp_plain WHERE id = 70001").fetchone() == ("with, comma",)
    # A bad row past the first 64K-row batch: nothing of the COPY stays (one commit at the end).
    with pytest.raises(errors.InvalidTextRepresentation, match='row 70000, column "id"'):
        with conn.cursor().copy("COPY cp_plain (id) FROM STDIN") as copy:
            # One stream of text: psycopg sends write() data ahead of buffered write_row()s.
            copy.write("".join(f"{100_000 + i}\n" for i in range(1, 70_000)) + "oops\n")
    assert_usable(conn)
    assert conn.execute("SELECT count(*) FROM cp_plain").fetchone() == (70002,)
    conn.execute(f"CREATE EXTERNAL TABLE cp_ext STORED AS CSV LOCATION '/tmp' ")  if False else None


def test_refused_statements_and_copy_fail(conn):
    create_events(conn, "cp_misc")
    conn.execute("CREATE VIEW cp_view AS SELECT 1 AS a")
    with pytest.raises(errors.WrongObjectType, match="cannot copy to view"):
        with conn.cursor().copy("COPY cp_view FROM STDIN") as copy:
            copy.write("1\n")
    assert_usable(conn)
    with pytest.raises(errors.UndefinedTable):
        with conn.cursor().copy("COPY cp_missing FROM STDIN") as copy:
            copy.write("1\n")
    assert_usable(conn)
    with pytest.raises(errors.UndefinedColumn):
        with conn.cursor().copy("COPY cp_misc (device_id, colour) FROM STDIN") as copy:
            copy.write("x\ty\n")
    assert_usable(conn)
    with pytest.raises(errors.FeatureNotSupported, match="PROGRAM"):
        conn.execute("COPY cp_misc TO PROGRAM 'cat > /tmp/basin-copy-out.csv'")
    assert_usable(conn)
    with pytest.raises(errors.FeatureNotSupported, match="file or program"):
        conn.execute("COPY cp_misc FROM '/etc/passwd'")
    assert_usable(conn)
    with pytest.raises(errors.FeatureNotSupported, match="last statement"):
        conn.execute("COPY cp_misc FROM STDIN; SELECT 1")
    assert_usable(conn)
    with pytest.raises(errors.SyntaxError, match="BINARY"):
        with conn.cursor().copy("COPY cp_misc FROM STDIN (FORMAT binary, DELIMITER ',')") as copy:
            copy.write(b"")
    assert_usable(conn)
    # An exception inside the block makes psycopg send CopyFail; nothing is appended.
    with pytest.raises(ZeroDivisionError):
        with conn.cursor().copy("COPY cp_misc FROM STDIN") as copy:
            copy.write("a\t\\N\t1\n")
            1 / 0
    assert count(conn, "cp_misc") == 0
    assert_usable(conn)
    # Inside a transaction block, the COPY's rows are appended all the same; the block goes on.
    with conn.transaction():
        with conn.cursor().copy("COPY cp_misc FROM STDIN") as copy:
            copy.write("t\t\\N\t1\n")
        assert count(conn, "cp_misc") == 1


def test_copy_fail_reports_57014_over_the_raw_protocol(basin):
    with basin.connect() as conn:
        create_events(conn, "cp_raw")
    sock = raw.open_socket(basin)
    try:
        raw.handshake(sock)
        sock.sendall(raw.query("COPY cp_raw FROM STDIN"))
        kind, _ = raw.read_message(sock)
        assert kind == b"G"
        sock.sendall(raw.message(b"d", b"r1\t\\N\t1\n") + raw.message(b"f", b"client gave up\0"))
        messages = raw.read_until_ready(sock)
        errors_seen = [raw.error_fields(p) for k, p in messages if k == b"E"]
        assert errors_seen and errors_seen[0]["C"] == "57014", messages
        assert "COPY from stdin failed: client gave up" in errors_seen[0]["M"]
        # Copy messages after the error are dropped; the next query runs.
        sock.sendall(raw.message(b"d", b"late\n") + raw.message(b"c") + raw.query("SELECT count(*) FROM cp_raw"))
        messages = raw.read_until_ready(sock)
        rows = [p for k, p in messages if k == b"D"]
        assert rows and rows[0].endswith(b"0"), messages
    finally:
        sock.close()


def extended_copy(sock, sql: str, chunks: list[bytes]) -> list[tuple[bytes, bytes]]:
    """Parse/Bind/Execute/Sync, then CopyData..., CopyDone, Sync as rust-postgres sends them."""
    sock.sendall(
        raw.message(b"P", b"\0" + sql.encode() + b"\0" + struct.pack("!h", 0))
        + raw.message(b"B", b"\0\0" + struct.pack("!hhh", 0, 0, 0))
        + raw.message(b"E", b"\0" + struct.pack("!i", 0))
        + raw.message(b"S")
    )
    seen = []
    while True:
        msg = raw.read_message(sock)
        assert msg is not None, seen
        seen.append(msg)
        if msg[0] in (b"G", b"E"):
            break
    if seen[-1][0] == b"G":
        sock.sendall(b"".join(raw.message(b"d", c) for c in chunks) + raw.message(b"c") + raw.message(b"S"))
    return seen + raw.read_until_ready(sock)


def test_extended_protocol_copy(basin):
    with basin.connect() as conn:
        create_events(conn, "cp_ext")
    sock = raw.open_socket(basin)
    try:
        raw.handshake(sock)
        messages = extended_copy(sock, "COPY cp_ext FROM STDIN (FORMAT csv)", [b"e1,,1\ne2", b",,2\n"])
        tags = [p for k, p in messages if k == b"C"]
        assert tags == [b"COPY 2\0"], messages
        messages = extended_copy(sock, "COPY cp_ext FROM STDIN (FORMAT csv)", [b"e3,,1\ne4,,cold\n"])
        fields = [raw.error_fields(p) for k, p in messages if k == b"E"]
        assert fields and fields[0]["C"] == "22P02" and 'row 2, column "temp"' in fields[0]["M"], messages
        assert messages[-1][0] == b"Z"
        sock.sendall(raw.query("SELECT count(*) FROM cp_ext"))
        rows = [p for k, p in raw.read_until_ready(sock) if k == b"D"]
        assert rows and rows[0].endswith(b"2"), rows
    finally:
        sock.close()


def test_asyncpg_copy_records_and_csv(basin):
    async def run() -> tuple[str, str, list]:
        conn = await asyncpg.connect(host=basin.host, port=basin.port, user="basin", database="basin")
        try:
            await conn.execute(EVENTS_DDL.format(name="cp_asyncpg", with_=""))
            binary = await conn.copy_records_to_table(
                "cp_asyncpg", records=[("a", BASE, 1.5), ("b", None, None)]
            )
            csv = await conn.copy_to_table("cp_asyncpg", source=io.BytesIO(b"c,,3\n"), format="csv")
            rows = await conn.fetch("SELECT device_id, ts, temp FROM cp_asyncpg ORDER BY device_id")
            return binary, csv, [tuple(r) for r in rows]
        finally:
            await conn.close()

    binary, csv, rows = asyncio.run(run())
    assert (binary, csv) == ("COPY 2", "COPY 1")
    assert rows == [("a", BASE, 1.5), ("b", None, None), ("c", None, 3.0)]


def test_copy_to_stdout(conn, tmp_path, basin):
    conn.execute("CREATE TABLE cp_out (id INT, name TEXT, at TIMESTAMP, amount NUMERIC(10,2))")
    conn.execute(
        "INSERT INTO cp_out VALUES (1, 'plain', '2026-01-01 10:00:00', 1.50), "
        "(2, 'tab\there, \"q\"', NULL, NULL), (3, '', '2026-01-02 00:00:00', 2.00)"
    )
    with conn.cursor() as cur:
        with cur.copy("COPY cp_out TO STDOUT") as copy:
            text = b"".join(copy).decode()
    lines = sorted(text.splitlines())
    assert lines[0] == "1\tplain\t2026-01-01 10:00:00\t1.50"
    assert lines[1] == '2\ttab\\there, "q"\t\\N\t\\N'
    with conn.cursor() as cur:
        with cur.copy("COPY (SELECT id, name FROM cp_out ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER)") as copy:
            csv = b"".join(copy).decode()
    assert csv == 'id,name\n1,plain\n2,"tab\there, ""q"""\n3,""\n'
    with conn.cursor() as cur:
        with cur.copy("COPY (SELECT id, amount FROM cp_out ORDER BY id) TO STDOUT (FORMAT BINARY)") as copy:
            copy.set_types(["int4", "numeric"])
            rows = list(copy.rows())
    assert rows == [(1, Decimal("1.50")), (2, None), (3, Decimal("2.00"))]
    out = tmp_path / "out.csv"
    done = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-p", str(basin.port), "-U", "basin", "-d", "basin", "-c",
         f"\\copy (SELECT id FROM cp_out ORDER BY id) TO '{out}' CSV HEADER"],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "COPY 3" in done.stdout, done.stdout
    assert out.read_text() == "id\n1\n2\n3\n"
    with pytest.raises(errors.UndefinedTable):
        conn.execute("COPY cp_nothing TO STDOUT")
    assert_usable(conn)


def stdout_bytes(conn, sql: str) -> bytes:
    with conn.cursor() as cur:
        with cur.copy(sql) as copy:
            return b"".join(copy)


def test_copy_to_a_server_file(conn, tmp_path, basin):
    """COPY ... TO 'file' writes, on the server, exactly what TO STDOUT sends (text, CSV and
    binary); Parquet and JSON by FORMAT or extension; DataFusion's own COPY ... STORED AS with
    PARTITIONED BY; everything read back through Basin. Bad targets get Postgres's SQLSTATEs."""
    import pyarrow.parquet as pq

    conn.execute("CREATE TABLE cp_file (id INT, name TEXT, amount NUMERIC(10,2), day DATE)")
    conn.execute(
        "INSERT INTO cp_file VALUES (1, 'plain', 1.50, '2026-01-01'), "
        "(2, 'tab\there, \"q\"', NULL, '2026-01-02'), (3, NULL, 2.00, '2026-01-02')"
    )
    query = "SELECT * FROM cp_file ORDER BY id"
    for options, name in (("", "t.txt"), ("WITH (FORMAT csv, HEADER)", "t.csv"),
                          ("(FORMAT binary)", "t.bin")):
        target = tmp_path / "out" / name
        # The extended protocol (psycopg) and the simple one (psql) both write.
        status = conn.execute(f"COPY ({query}) TO '{target}' {options}").statusmessage
        assert status == "COPY 3"
        assert target.read_bytes() == stdout_bytes(conn, f"COPY ({query}) TO STDOUT {options}")
    done = psql(basin, "-c", f"COPY cp_file (id, name) TO '{tmp_path / 'psql.csv'}' CSV")
    assert done.returncode == 0 and "COPY 3" in done.stdout, done.stderr
    assert sorted((tmp_path / "psql.csv").read_text().splitlines()) == [
        "1,plain", '2,"tab\there, ""q"""', "3,"
    ]

    # Parquet by extension, read back by pyarrow and by Basin as an external table.
    parquet = tmp_path / "lake" / "cp_file.parquet"
    assert conn.execute(f"COPY cp_file TO '{parquet}'").statusmessage == "COPY 3"
    table = pq.read_table(parquet)
    assert sorted(table.column("id").to_pylist()) == [1, 2, 3]
    conn.execute(f"CREATE EXTERNAL TABLE cp_back STORED AS PARQUET LOCATION '{parquet}'")
    assert conn.execute("SELECT id, name, amount, day FROM cp_back ORDER BY id").fetchall() == \
        conn.execute(query).fetchall()
    # JSON by FORMAT, a column list, into a file without the extension.
    json_file = tmp_path / "names"
    conn.execute(f"COPY cp_file (id, name) TO '{json_file}' (FORMAT json)")
    lines = sorted(json_file.read_text().splitlines())
    assert lines[0] == '{"id":1,"name":"plain"}', lines
    # DataFusion's syntax: a directory of hive partitions.
    parts = tmp_path / "parts"
    status = conn.execute(
        f"COPY (SELECT id, day FROM cp_file) TO '{parts}/' STORED AS PARQUET PARTITIONED BY (day)"
    ).statusmessage
    assert status == "COPY 3"
    assert sorted(p.name for p in parts.iterdir()) == ["day=2026-01-01", "day=2026-01-02"]
    conn.execute(
        f"CREATE EXTERNAL TABLE cp_parts STORED AS PARQUET PARTITIONED BY (day) LOCATION '{parts}/'"
    )
    assert conn.execute("SELECT day, count(*) FROM cp_parts GROUP BY day ORDER BY day").fetchall() \
        == [("2026-01-01", 1), ("2026-01-02", 2)]

    # A COPY that fails part-way leaves the file that was there before, whole, and no other.
    failing = "SELECT 100 / (value - 60000) AS v FROM generate_series(1, 100000)"
    before = parquet.read_bytes()
    for target in (parquet, tmp_path / "lake" / "never.parquet"):
        with pytest.raises(errors.DivisionByZero):
            conn.execute(f"COPY ({failing}) TO '{target}'")
        assert_usable(conn)
    assert parquet.read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "lake").iterdir()) == ["cp_file.parquet"]
    with pytest.raises(errors.DivisionByZero):
        conn.execute(f"COPY ({failing}) TO '{tmp_path / 'lake' / 'never.csv'}' (FORMAT csv)")
    assert sorted(p.name for p in (tmp_path / "lake").iterdir()) == ["cp_file.parquet"]

    # What Postgres refuses, and places nothing can be written; the session goes on.
    for sql in ("COPY cp_file TO 'relative.csv' (FORMAT csv)", "COPY cp_file TO 'rel.parquet'"):
        with pytest.raises(errors.InvalidName, match="relative path"):
            conn.execute(sql)
        assert_usable(conn)
    for target in (tmp_path, f"{tmp_path}/new/"):
        with pytest.raises(errors.WrongObjectType, match="is a directory"):
            conn.execute(f"COPY cp_file TO '{target}' (FORMAT csv)")
        assert_usable(conn)
    with pytest.raises(errors.UndefinedFile):
        conn.execute("COPY cp_file TO '/proc/basin/x.csv' (FORMAT csv)")
    assert_usable(conn)
    # /proc: object_store's local store would retry creating its staging file there forever.
    for sql in ("COPY cp_file TO '/proc/x.parquet'", "COPY cp_file TO '/proc/x.txt'",
                "COPY cp_file TO '/proc/y.csv' STORED AS CSV"):
        with pytest.raises(errors.UndefinedFile):
            conn.execute(sql)
        assert_usable(conn)
    with pytest.raises(errors.FeatureNotSupported, match="does not apply"):
        conn.execute(f"COPY cp_file TO '{tmp_path / 'x.parquet'}' (FORMAT parquet, HEADER)")
    with pytest.raises(errors.UndefinedTable):
        conn.execute(f"COPY cp_nothing TO '{tmp_path / 'never.txt'}'")
    assert not (tmp_path / "never.txt").exists()
    assert_usable(conn)
