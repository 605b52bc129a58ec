#!/usr/bin/env python3
"""TPC-H under executor loss: a coordinator and three executor processes run the 22 queries
twice, the second time with one executor killed (SIGKILL) in the middle of the run. Every answer
of both runs is compared with DuckDB's over the same Parquet files; the script then checks that
`basin.executors` showed the victim dead within 10 s and that a restarted executor gets work.

Usage (release build recommended; SF 1 data is generated on first use):
    cargo build --release -p basin
    BASIN_BIN=target/release/basin .venv/bin/python benchmarks/chaos/tpch_kill_executor.py --scale 1

Prints one line per query and run, then a summary; exits non-zero on any wrong answer or failed
check.
"""

from __future__ import annotations

import argparse
import datetime
import decimal
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "clients"))
sys.path.insert(0, str(REPO / "sql-tests" / "tpch"))

import duckdb  # noqa: E402

from test_cluster import Cluster  # noqa: E402
from verify_with_duckdb import CORPUS, TABLES, parse_slt  # noqa: E402

from conftest import basin_binary  # noqa: E402

RELATIVE_TOLERANCE = 1e-9


def queries() -> list[tuple[str, list[str], str, list[str]]]:
    """(name, statements before, query, statements after) for Q1..Q22, from the slt corpus
    (Q15 creates and drops a view around its query)."""
    out = []
    for path in sorted(CORPUS.glob("q*.slt")):
        records = parse_slt(path)
        at = next(i for i, r in enumerate(records) if r.kind == "query")
        before = [r.sql for r in records[:at] if r.kind == "statement"]
        after = [r.sql for r in records[at + 1:] if r.kind == "statement"]
        out.append((path.stem, before, records[at].sql, after))
    return out


def normalise(value):
    if isinstance(value, (decimal.Decimal, float)):
        return float(value)
    if isinstance(value, datetime.datetime):
        return value.replace(tzinfo=None)
    return value


def rows_agree(got: list[tuple], want: list[tuple]) -> bool:
    if len(got) != len(want):
        return False
    for g_row, w_row in zip(got, want):
        if len(g_row) != len(w_row):
            return False
        for g, w in zip(map(normalise, g_row), map(normalise, w_row)):
            if isinstance(g, float) and isinstance(w, float):
                if abs(g - w) > RELATIVE_TOLERANCE * max(abs(g), abs(w), 1.0) + 0.005:
                    return False
            elif g != w:
                return False
    return True


def ensure_data(scale: float) -> Path:
    data = REPO / "benchmarks" / "data" / f"tpch-sf{scale:g}"
    if not (data / "lineitem.parquet").is_file():
        print(f"generating TPC-H SF {scale:g} into {data}", flush=True)
        subprocess.run(
            [str(basin_binary()), "datagen", "tpch", "--scale", str(scale), "--output", str(data)],
            check=True,
        )
    return data


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--kill-after", type=int, default=9,
                        help="kill the victim while this query (1-based) of the second run runs")
    parser.add_argument("--kill-delay", type=float, default=0.1,
                        help="seconds into that query the victim is killed")
    parser.add_argument("--scan-bytes", default="16MiB",
                        help="--scan-bytes-per-partition of the coordinator")
    args = parser.parse_args()

    data = ensure_data(args.scale)
    reference = duckdb.connect()
    for table in TABLES:
        reference.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{data}/{table}.parquet')")
    suite = queries()
    expected = {}
    for name, before, query, after in suite:
        for statement in before:
            reference.execute(statement)
        expected[name] = reference.execute(query).fetchall()
        for statement in after:
            reference.execute(statement)

    root = Path(tempfile.mkdtemp(prefix="basin-chaos-"))
    # Distribute from 1 MiB up so every TPC-H table at SF 1 spreads over the executors.
    cluster = Cluster(root, executor_memory="4GiB", distribute_min_bytes="1MiB",
                      scan_bytes_per_partition=args.scan_bytes)
    failures: list[str] = []
    try:
        for _ in range(3):
            cluster.add_executor()
        cluster.wait_live(3)
        with cluster.connect() as conn:
            for table in TABLES:
                conn.execute(f"CREATE EXTERNAL TABLE {table} STORED AS PARQUET LOCATION '{data}/{table}.parquet'")

        for run in ("clean", "kill"):
            victim = cluster.executors[1]
            killed_at: list[float] = []
            dead_after: list[float] = []
            total = 0.0
            with cluster.connect() as conn:
                for index, (name, before, query, after) in enumerate(suite, start=1):
                    for statement in before:
                        conn.execute(statement)
                    timer = None
                    if run == "kill" and index == args.kill_after:
                        def kill():
                            os.kill(victim.pid, signal.SIGKILL)
                            killed_at.append(time.monotonic())
                            threading.Thread(target=watch_death, daemon=True).start()

                        def watch_death():
                            # Polls basin.executors from a separate connection until it says dead.
                            while time.monotonic() < killed_at[0] + 15:
                                with cluster.connect() as watcher:
                                    dead = watcher.execute(
                                        "SELECT count(*) FROM basin.executors WHERE state = 'dead'"
                                    ).fetchone()[0]
                                if dead == 1:
                                    dead_after.append(time.monotonic() - killed_at[0])
                                    return
                                time.sleep(0.1)
                        timer = threading.Timer(args.kill_delay, kill)
                        timer.start()
                    started = time.monotonic()
                    try:
                        got = conn.execute(query).fetchall()
                        ok = rows_agree(got, expected[name])
                    except Exception as err:  # reported as a failure below
                        got, ok = str(err), False
                    took = time.monotonic() - started
                    total += took
                    for statement in after:
                        conn.execute(statement)
                    if timer:
                        timer.join()
                    # This session's previous statement (the death watcher runs queries too).
                    attempts = conn.execute(
                        "SELECT attempts FROM basin.queries WHERE pid = pg_backend_pid() "
                        "AND query NOT LIKE '%basin.queries%' ORDER BY query_id DESC LIMIT 1"
                    ).fetchone()[0]
                    print(f"{run:5} {name}: {took * 1000:8.1f} ms  attempts={attempts}  "
                          f"{'ok' if ok else 'WRONG'}", flush=True)
                    if not ok:
                        failures.append(f"{run} {name}: {str(got)[:300]}")
            print(f"{run:5} total: {total:.2f} s", flush=True)

            if run == "kill":
                victim.wait(timeout=30)
                time.sleep(max(0.0, killed_at[0] + 15 - time.monotonic()) if not dead_after else 0)
                dead_seen = dead_after[0] if dead_after else None
                print(f"victim shown dead in basin.executors "
                      f"{f'{dead_seen:.2f} s after the kill' if dead_seen is not None else 'NEVER'}")
                if dead_seen is None or dead_seen > 10:
                    failures.append("basin.executors did not show the victim dead within 10 s")
                cluster.add_executor()
                live = cluster.wait_live(3)
                with cluster.connect() as conn:
                    conn.execute(suite[0][2]).fetchall()
                    used = conn.execute(
                        "SELECT executors FROM basin.queries WHERE pid = pg_backend_pid() "
                        "AND query NOT LIKE '%basin.queries%' ORDER BY query_id DESC LIMIT 1"
                    ).fetchone()[0]
                print(f"after restart: live={live} used={used}")
                if sorted(used.split(",")) != live:
                    failures.append(f"restarted executor not used: live={live} used={used}")
    finally:
        cluster.stop()

    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        return 1
    print("all answers correct in both runs; victim seen dead; restarted executor used")
    return 0


if __name__ == "__main__":
    sys.exit(main())
