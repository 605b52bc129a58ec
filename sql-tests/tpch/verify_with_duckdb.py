#!/usr/bin/env python3
"""Checks the TPC-H answers recorded in sql-tests/slt/tpch/q*.slt against DuckDB.

The .slt files hold Basin's answers (written by `cargo test -p basin-sql-tests --test
sqllogictests -- --complete tpch/`). This script runs the very same SQL text in DuckDB over the
very same Parquet files (`basin datagen tpch --scale 0.01`, which the slt runner writes to
sql-tests/data/tpch-sf0.01/) and compares every value:

* text, dates and integers must be equal;
* decimals and floats may differ by one unit in the last digit Basin printed (so `25.522005`
  recorded from a decimal(19,6) average matches DuckDB's double 25.52200502...), or by a relative
  1e-12 for values printed with many digits;
* rows are compared in order, or as sorted lists for records marked `rowsort`.

`statement ok` records in a query file (the view of Q15) run in DuckDB too; `include` and
`control` records are skipped, since the tables are set up here as DuckDB views over the files.

Usage:
    .venv/bin/python sql-tests/tpch/verify_with_duckdb.py [--data DIR] [FILTER ...]
Exits non-zero if any answer disagrees or the data is missing.
"""

from __future__ import annotations

import argparse
import datetime
import decimal
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

HERE = Path(__file__).resolve().parent
SQL_TESTS = HERE.parent
CORPUS = SQL_TESTS / "slt" / "tpch"
DEFAULT_DATA = SQL_TESTS / "data" / "tpch-sf0.01"
TABLES = ["region", "nation", "supplier", "customer", "part", "partsupp", "orders", "lineitem"]
RELATIVE_TOLERANCE = decimal.Decimal("1e-12")


@dataclass
class SltRecord:
    kind: str  # "statement" or "query"
    sql: str
    line: int
    sort_mode: str | None = None
    expected: list[str] = field(default_factory=list)


def parse_slt(path: Path) -> list[SltRecord]:
    """The `statement ok` and `query` records of a file (enough of the format for our corpus)."""
    lines = path.read_text().splitlines()
    records: list[SltRecord] = []
    i = 0
    while i < len(lines):
        words = lines[i].split()
        if not words or words[0] not in ("statement", "query"):
            i += 1
            continue
        start = i + 1
        kind = words[0]
        if kind == "statement" and words[1:2] != ["ok"]:
            raise ValueError(f"{path}:{start}: only `statement ok` is supported here")
        if kind == "query" and len(words) > 1 and words[1] == "error":
            raise ValueError(f"{path}:{start}: `query error` is not supported here")
        sort_mode = None
        if kind == "query" and len(words) > 2 and words[2] in ("rowsort", "valuesort", "nosort"):
            sort_mode = words[2]
        i += 1
        sql_lines = []
        while i < len(lines) and lines[i].strip() not in ("", "----"):
            sql_lines.append(lines[i])
            i += 1
        record = SltRecord(kind, "\n".join(sql_lines), start, sort_mode)
        if i < len(lines) and lines[i].strip() == "----":
            i += 1
            while i < len(lines) and lines[i].strip() != "":
                record.expected.append(lines[i])
                i += 1
        records.append(record)
    return records


@dataclass
class Token:
    text: str
    kind: str  # "exact", "decimal" (DuckDB computed it exactly) or "float"


def reference_tokens(row: tuple) -> list[Token]:
    """DuckDB's row as whitespace-separated tokens, each knowing how it may be compared."""
    tokens: list[Token] = []
    for value in row:
        if value is None:
            tokens.append(Token("NULL", "exact"))
        elif isinstance(value, bool):
            tokens.append(Token("t" if value else "f", "exact"))
        elif isinstance(value, int):
            tokens.append(Token(str(value), "exact"))
        elif isinstance(value, float):
            tokens.append(Token(repr(value), "float"))
        elif isinstance(value, decimal.Decimal):
            tokens.append(Token(format(value, "f"), "decimal"))
        elif isinstance(value, (datetime.date, datetime.datetime)):
            tokens.append(Token(value.isoformat(sep=" ") if isinstance(value, datetime.datetime) else value.isoformat(), "exact"))
        elif isinstance(value, str):
            if value == "":
                tokens.append(Token("(empty)", "exact"))
            else:
                tokens.extend(Token(part, "exact") for part in value.split())
        else:
            raise TypeError(f"unexpected DuckDB value {value!r} of type {type(value).__name__}")
    return tokens


def numbers_agree(recorded: str, reference: str, exact_reference: bool) -> bool:
    try:
        got = decimal.Decimal(recorded)
        want = decimal.Decimal(reference)
    except decimal.InvalidOperation:
        return False
    if not got.is_finite() or not want.is_finite():
        return recorded == reference
    exponent = got.as_tuple().exponent
    want_exponent = want.as_tuple().exponent
    if exact_reference and isinstance(exponent, int) and isinstance(want_exponent, int) and exponent <= want_exponent:
        # DuckDB's answer is an exact decimal and Basin printed at least as many digits.
        return got == want
    # One unit in the last decimal place Basin printed (rounding vs truncation); values printed
    # without decimals, or with many digits, only get the relative tolerance.
    last_digit = decimal.Decimal(1).scaleb(exponent) if isinstance(exponent, int) and exponent < 0 else 0
    tolerance = max(last_digit, abs(want) * RELATIVE_TOLERANCE)
    return abs(got - want) <= tolerance


def row_agrees(recorded: str, reference: list[Token]) -> bool:
    got = recorded.split()
    if len(got) != len(reference):
        return False
    for text, token in zip(got, reference):
        if token.kind == "exact":
            if text != token.text:
                return False
        elif not numbers_agree(text, token.text, token.kind == "decimal"):
            return False
    return True


def sort_key(tokens: list[Token]) -> str:
    # sqllogictest's rowsort sorts rows by their rendered values; DuckDB's rendering of numbers
    # may differ, so sort both sides by the text of their exact tokens, numbers rounded.
    return " ".join(t.text if t.kind == "exact" else f"{float(t.text):.6g}" for t in tokens)


def recorded_sort_key(line: str, reference_shape: list[Token]) -> str:
    parts = line.split()
    if len(parts) != len(reference_shape):
        return line
    return " ".join(
        part if token.kind == "exact" else f"{float(part):.6g}" for part, token in zip(parts, reference_shape)
    )


def verify_query(con: duckdb.DuckDBPyConnection, record: SltRecord) -> list[str]:
    rows = con.execute(record.sql).fetchall()
    reference = [reference_tokens(row) for row in rows]
    recorded = list(record.expected)
    problems: list[str] = []
    if len(recorded) != len(reference):
        return [f"{len(recorded)} rows recorded, DuckDB returns {len(reference)}"]
    if record.sort_mode == "rowsort" and reference:
        reference.sort(key=sort_key)
        recorded.sort(key=lambda line: recorded_sort_key(line, reference[0]))
    elif record.sort_mode == "valuesort":
        return ["valuesort is not supported by this checker"]
    for index, (line, tokens) in enumerate(zip(recorded, reference)):
        if not row_agrees(line, tokens):
            problems.append(
                f"row {index + 1}: recorded {line!r}, DuckDB {' '.join(t.text for t in tokens)!r}"
            )
    return problems


def connect(data: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for table in TABLES:
        path = data / f"{table}.parquet"
        if not path.is_file():
            sys.exit(
                f"missing {path}: generate the data with "
                f"`target/debug/basin datagen tpch --scale 0.01 --output {data}` "
                "(the slt runner does this before running tpch/)"
            )
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{path}')")
    return con


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="TPC-H Parquet directory")
    parser.add_argument("filters", nargs="*", help="only files whose name contains one of these")
    args = parser.parse_args()

    files = sorted(CORPUS.glob("q*.slt"))
    if args.filters:
        files = [f for f in files if any(flt in f.name for flt in args.filters)]
    if not files:
        print("no TPC-H .slt files selected", file=sys.stderr)
        return 1

    con = connect(args.data)
    failed = 0
    checked = 0
    for path in files:
        problems: list[str] = []
        queries = 0
        for record in parse_slt(path):
            if record.kind == "statement":
                con.execute(record.sql)
                continue
            queries += 1
            problems.extend(f"line {record.line}: {p}" for p in verify_query(con, record))
        if queries == 0:
            problems.append("no query record found")
        checked += 1
        if problems:
            failed += 1
            print(f"FAIL {path.relative_to(SQL_TESTS)}")
            for problem in problems[:20]:
                print(f"     {problem}")
        else:
            print(f"ok   {path.relative_to(SQL_TESTS)}")
    print(f"{checked - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
