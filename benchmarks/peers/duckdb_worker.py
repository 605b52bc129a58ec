#!/usr/bin/env python3
"""DuckDB as a benchmark peer: a long-lived worker the Rust runner (benchmarks/src/duckdb_peer.rs)
talks to in JSON lines over stdin/stdout, one request and one response per line.

Requests:
  {"op": "setup", "threads": N, "tables": [[name, parquet_path], ...]}
      SET threads, and one view per table over read_parquet (the same files every engine reads).
  {"op": "version"}                      -> {"ok": true, "version": "1.5.5"}
  {"op": "tpcds_queries"}                -> {"ok": true, "queries": [[number, text], ...]}
  {"op": "exec", "sql": "..."}           a statement, untimed
  {"op": "query", "sql": "...", "keep": bool}
      -> {"ok": true, "ms": elapsed, "row_count": n, "rows": [[text or null, ...], ...] or null}
Errors answer {"ok": false, "error": "..."}; the worker keeps going.

The time is measured here, around execute + fetchall, so it holds no JSON or pipe overhead.
Values come back as text the way Postgres prints them (t/f, ISO dates) for the answer check.
"""

from __future__ import annotations

import datetime
import decimal
import json
import sys
import time

import duckdb


def text(value):
    if value is None:
        return None
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    return str(value)


def quote(text_value: str) -> str:
    return "'" + text_value.replace("'", "''") + "'"


def handle(con, request):
    op = request["op"]
    if op == "setup":
        con.execute(f"SET threads = {int(request['threads'])}")
        for name, path in request["tables"]:
            con.execute(f'CREATE OR REPLACE VIEW "{name}" AS SELECT * FROM read_parquet({quote(path)})')
        return {"ok": True}
    if op == "version":
        return {"ok": True, "version": duckdb.__version__}
    if op == "tpcds_queries":
        from duckdb_extensions import import_extension

        import_extension("tpcds", con=con)
        con.load_extension("tpcds")
        rows = con.execute("SELECT query_nr, query FROM tpcds_queries() ORDER BY query_nr").fetchall()
        return {"ok": True, "queries": [[int(n), q] for n, q in rows]}
    if op == "exec":
        con.execute(request["sql"])
        return {"ok": True}
    if op == "query":
        started = time.perf_counter()
        cursor = con.execute(request["sql"])
        rows = cursor.fetchall() if cursor.description else []
        elapsed = (time.perf_counter() - started) * 1000.0
        kept = [[text(v) for v in row] for row in rows] if request.get("keep") else None
        return {"ok": True, "ms": elapsed, "row_count": len(rows), "rows": kept}
    return {"ok": False, "error": f"unknown op {op!r}"}


def main() -> None:
    con = duckdb.connect()
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            response = handle(con, json.loads(line))
        except Exception as err:  # noqa: BLE001 - every failure goes back to the runner
            response = {"ok": False, "error": f"{type(err).__name__}: {err}".splitlines()[0][:500]}
        sys.stdout.write(json.dumps(response) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
