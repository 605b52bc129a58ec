#!/usr/bin/env python3
"""TPC-H with the Parquet files in an S3-compatible server vs on local disk, in one run.

One `basin standalone`-shaped cluster (a coordinator and two executor processes) reads the same
TPC-H files two ways: external tables over the local files (schema `local`) and over a bucket of
`s3s-fs` on 127.0.0.1 (schema `s3`; s3s-fs keeps objects as plain files, so both read the same
bytes from the same disk and the difference is the S3 path: HTTP, signing, ranged GETs). Queries
run interleaved (local, S3, local, S3, ...), one warm-up each, then N timed runs; medians. Every
S3 answer is compared with the local one.

Usage (release build; SF 1 data is generated on first use):
    cargo build --release -p basin
    BASIN_BIN=target/release/basin .venv/bin/python benchmarks/s3/tpch_s3_vs_local.py --scale 1

Writes benchmarks/results/s3-tpch-sf<scale>.md (and .json) and prints the table.
"""

from __future__ import annotations

import argparse
import decimal
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "clients"))
sys.path.insert(0, str(REPO / "benchmarks" / "chaos"))

from conftest import basin_binary  # noqa: E402
from s3_server import ACCESS_KEY, SECRET_KEY, S3Server  # noqa: E402
from test_cluster import Cluster  # noqa: E402
from tpch_kill_executor import queries  # noqa: E402

TABLES = ["region", "nation", "supplier", "customer", "part", "partsupp", "orders", "lineitem"]


def data_dir(scale: str) -> Path:
    path = REPO / "benchmarks" / "data" / f"tpch-sf{scale}"
    if not (path / "lineitem.parquet").is_file():
        subprocess.run(
            [str(basin_binary()), "datagen", "tpch", "--scale", scale, "--output", str(path)],
            check=True,
        )
    return path


def rows_equal(a: list[tuple], b: list[tuple]) -> bool:
    def norm(row):
        return tuple(
            round(float(v), 4) if isinstance(v, (float, decimal.Decimal)) else v for v in row
        )

    return sorted(map(norm, a), key=repr) == sorted(map(norm, b), key=repr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="1")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    data = data_dir(args.scale)
    work = Path(tempfile.mkdtemp(prefix="basin-s3-bench-"))
    server = S3Server(work / "s3root")
    for table in TABLES:
        server.upload(data / f"{table}.parquet", "tpch", f"{table}.parquet")
    config = work / "basin.toml"
    config.write_text(
        "[object_store.s3]\n"
        f'endpoint = "{server.endpoint}"\nallow_http = true\n'
        f'access_key_id = "{ACCESS_KEY}"\nsecret_access_key = "{SECRET_KEY}"\n'
    )
    (work / "cluster").mkdir()
    # Basin's defaults for when a query is distributed and how scans are split.
    cluster = Cluster(
        work / "cluster",
        executor_memory="6GiB",
        extra_args=("--config", str(config)),
        distribute_min_bytes="64MiB",
        scan_bytes_per_partition="16MiB",
    )
    results = []
    failures = []
    try:
        cluster.add_executor()
        cluster.add_executor()
        cluster.wait_live(2)
        with cluster.connect() as conn:
            for schema in ("local", "s3"):
                conn.execute(f"CREATE SCHEMA {schema}")
            for table in TABLES:
                conn.execute(
                    f"CREATE EXTERNAL TABLE local.{table} STORED AS PARQUET "
                    f"LOCATION '{data / table}.parquet'"
                )
                conn.execute(
                    f"CREATE EXTERNAL TABLE s3.{table} STORED AS PARQUET "
                    f"LOCATION 's3://tpch/{table}.parquet'"
                )

            def run(schema: str, before, sql, after) -> tuple[float, list]:
                conn.execute(f"SET search_path TO {schema}")
                for statement in before:
                    conn.execute(statement)
                started = time.perf_counter()
                rows = conn.execute(sql).fetchall()
                took = time.perf_counter() - started
                for statement in after:
                    conn.execute(statement)
                return took, rows

            for name, before, sql, after in queries():
                times = {"local": [], "s3": []}
                first = {}
                answers = {}
                for i in range(args.runs + 1):
                    for schema in ("local", "s3"):
                        took, rows = run(schema, before, sql, after)
                        answers[schema] = rows
                        if i > 0:
                            times[schema].append(took)
                        else:
                            first[schema] = took
                ok = rows_equal(answers["local"], answers["s3"])
                if not ok:
                    failures.append(name)
                local = statistics.median(times["local"])
                s3 = statistics.median(times["s3"])
                results.append({"query": name, "local_s": local, "s3_s": s3, "ratio": s3 / local,
                                "first_local_s": first["local"], "first_s3_s": first["s3"],
                                "correct": ok, "runs": times})
                print(f"{name}: local {local:.3f}s  s3 {s3:.3f}s  x{s3 / local:.2f}"
                      f"{'' if ok else '  WRONG ANSWER'}", flush=True)
    finally:
        cluster.stop()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)

    geo_local = statistics.geometric_mean(r["local_s"] for r in results)
    geo_s3 = statistics.geometric_mean(r["s3_s"] for r in results)
    first_local = statistics.geometric_mean(r["first_local_s"] for r in results)
    first_s3 = statistics.geometric_mean(r["first_s3_s"] for r in results)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                            capture_output=True, text=True).stdout.strip()
    machine = f"{os.cpu_count()} cores, {platform.platform()}, {platform.processor() or 'cpu'}"
    out = REPO / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    stem = out / f"s3-tpch-sf{args.scale}"
    stem.with_suffix(".json").write_text(json.dumps({
        "scale": args.scale, "runs": args.runs, "commit": commit, "machine": machine,
        "geomean_local_s": geo_local, "geomean_s3_s": geo_s3,
        "geomean_first_local_s": first_local, "geomean_first_s3_s": first_s3, "queries": results,
    }, indent=2) + "\n")
    lines = [
        f"# TPC-H SF{args.scale}: Parquet on S3 (s3s-fs on loopback) vs local disk",
        "",
        f"Commit {commit}; {machine}; coordinator + 2 executors; median of {args.runs} runs "
        "after one warm-up, queries interleaved local/S3.",
        f"Command: `BASIN_BIN=target/release/basin .venv/bin/python "
        f"benchmarks/s3/tpch_s3_vs_local.py --scale {args.scale} --runs {args.runs}`",
        "",
        "The first run of each query (the warm-up, not in the medians) reads the files cold on "
        "the S3 side: footers, page indexes and column chunks fetched from the server; the timed "
        "runs read column chunks from Basin's per-process range cache where they fit (256 MiB "
        "per process). Both are shown.",
        "",
        "| query | local (s) | S3 (s) | S3 / local | first run: local (s) | first run: S3 (s) "
        "| answer |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        lines.append(f"| {r['query']} | {r['local_s']:.3f} | {r['s3_s']:.3f} | "
                     f"{r['ratio']:.2f} | {r['first_local_s']:.3f} | {r['first_s3_s']:.3f} | "
                     f"{'same' if r['correct'] else 'DIFFERENT'} |")
    lines += [
        f"| **geomean** | **{geo_local:.3f}** | **{geo_s3:.3f}** | "
        f"**{geo_s3 / geo_local:.2f}** | {first_local:.3f} | {first_s3:.3f} "
        f"({first_s3 / first_local:.2f}×) | |",
        "",
        f"Target: S3 / local ≤ 1.3 — {'met' if geo_s3 / geo_local <= 1.3 else 'NOT met'}.",
        "",
    ]
    stem.with_suffix(".md").write_text("\n".join(lines))
    print("\n".join(lines))
    if failures:
        print(f"wrong answers: {failures}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
