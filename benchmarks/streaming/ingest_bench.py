#!/usr/bin/env python3
"""Streaming ingest benchmark: throughput per ingest path with 1..8 concurrent producers, ack
latency percentiles (also at half the measured maximum rate), and query latency over the
just-ingested rows. Every number goes through the real path: a Basin release binary on loopback,
real clients (pyarrow.flight, psycopg COPY, HTTP), ~100-byte rows.

    cargo build --release -p basin
    .venv/bin/python benchmarks/streaming/ingest_bench.py [--seconds 5] [--paths flight,http_ndjson,...]

Writes a Markdown report to benchmarks/results/ingest.md (or --out). The producers run on the
same 2 cores as the server, so client-side encoding competes with the server: the numbers are
a floor for what a remote producer would see.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import platform
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "clients"))

import psycopg  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.flight as flight  # noqa: E402

from conftest import Basin  # noqa: E402

DDL = (
    "CREATE TABLE {name} (device_id TEXT NOT NULL, site TEXT, ts TIMESTAMPTZ NOT NULL, "
    "temp DOUBLE PRECISION, reading BIGINT, note TEXT, "
    "WATERMARK FOR ts AS ts - INTERVAL '5 seconds') APPEND ONLY WITH (shards = {shards})"
)
SCHEMA = pa.schema(
    [
        pa.field("device_id", pa.string(), nullable=False),
        pa.field("site", pa.string()),
        pa.field("ts", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("temp", pa.float64()),
        pa.field("reading", pa.int64()),
        pa.field("note", pa.string()),
    ]
)
EPOCH_2000_US = 946_684_800_000_000


def make_rows(n: int, seed: int = 0) -> pa.Table:
    base = 1_795_000_000_000_000
    return pa.table(
        {
            "device_id": [f"device-{(seed + i) % 10000:06d}" for i in range(n)],
            "site": [f"site-{(seed + i) % 97:03d}-eu-west" for i in range(n)],
            "ts": pa.array([base + (seed + i) * 1000 for i in range(n)], pa.timestamp("us", tz="UTC")),
            "temp": [20.0 + ((seed + i) % 150) / 10 for i in range(n)],
            "reading": [(seed + i) * 7 for i in range(n)],
            "note": ["ok; sensor nominal; firmware 4.2.1-rc7" for _ in range(n)],
        },
        schema=SCHEMA,
    )


def row_bytes(table: pa.Table) -> float:
    return table.nbytes / table.num_rows


def ndjson_of(table: pa.Table) -> bytes:
    out = io.StringIO()
    for row in table.to_pylist():
        row["ts"] = row["ts"].isoformat()
        out.write(json.dumps(row))
        out.write("\n")
    return out.getvalue().encode()


def ipc_of(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def pgcopy_binary_of(table: pa.Table) -> bytes:
    out = bytearray(b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0))
    for row in table.to_pylist():
        out += struct.pack("!h", 6)
        for value in (row["device_id"], row["site"]):
            data = value.encode()
            out += struct.pack("!i", len(data)) + data
        micros = int(row["ts"].timestamp() * 1_000_000) - EPOCH_2000_US
        out += struct.pack("!iq", 8, micros)
        out += struct.pack("!id", 8, row["temp"])
        out += struct.pack("!iq", 8, row["reading"])
        data = row["note"].encode()
        out += struct.pack("!i", len(data)) + data
    out += struct.pack("!h", -1)
    return bytes(out)


def pgcopy_text_of(table: pa.Table) -> bytes:
    lines = []
    for row in table.to_pylist():
        lines.append(
            "\t".join(
                [row["device_id"], row["site"], row["ts"].isoformat(), repr(row["temp"]), str(row["reading"]), row["note"]]
            )
        )
    return ("\n".join(lines) + "\n").encode()


class Path_:
    """One ingest path: `send()` delivers one request's worth of rows and returns once acked."""

    def __init__(self, name: str, rows_per_request: int):
        self.name = name
        self.rows_per_request = rows_per_request

    def connect(self, basin: Basin, table: str):
        raise NotImplementedError


class FlightPath(Path_):
    def __init__(self, rows: int = 65536, name: str = "flight"):
        super().__init__(name, rows)
        self.batch = make_rows(rows).to_batches(max_chunksize=rows)[0]

    def connect(self, basin, table):
        client = flight.FlightClient(f"grpc://127.0.0.1:{basin.control_port}")
        writer, reader = client.do_put(flight.FlightDescriptor.for_path(table), SCHEMA)

        def send():
            writer.write_batch(self.batch)
            reader.read()

        def close():
            writer.done_writing()
            writer.close()
            client.close()

        return send, close


class HttpPath(Path_):
    def __init__(self, name: str, content_type: str, body: bytes, rows: int):
        super().__init__(name, rows)
        self.content_type = content_type
        self.body = body

    def connect(self, basin, table):
        conn = http.client.HTTPConnection("127.0.0.1", basin.http_port, timeout=120)
        headers = {"Content-Type": self.content_type}

        def send():
            while True:
                conn.request("POST", f"/v1/tables/{table}/rows", body=self.body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                if response.status == 200:
                    return
                if response.status in (429, 503):
                    time.sleep(float(response.getheader("Retry-After", "1")) / 10)
                    continue
                raise RuntimeError(f"HTTP {response.status}: {payload[:300]!r}")

        return send, conn.close


class CopyPath(Path_):
    def __init__(self, name: str, statement: str, body: bytes, rows: int):
        super().__init__(name, rows)
        self.statement = statement
        self.body = body

    def connect(self, basin, table):
        conn = psycopg.connect(basin.dsn, autocommit=True)

        def send():
            with conn.cursor() as cur:
                with cur.copy(self.statement.format(table=table)) as copy:
                    copy.write(self.body)

        return send, conn.close


def server_cpu_seconds(basin) -> tuple[float, float]:
    """User + system CPU time of the Basin processes: (the coordinator, the executors that
    hold the table's shards)."""
    ticks = os.sysconf("SC_CLK_TCK")

    def cpu(pid: int) -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / ticks

    return cpu(basin.process.pid), sum(cpu(pid) for pid in basin.executor_pids())


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def run_load(basin, path: Path_, table: str, producers: int, seconds: float, rate: float | None = None):
    """Runs `producers` threads for `seconds`; with `rate` (rows/s in total) they pace
    themselves. Returns (rows, elapsed, latencies in ms)."""
    latencies: list[float] = []
    rows = [0]
    lock = threading.Lock()
    errors: list[str] = []
    start_gate = threading.Barrier(producers + 1)
    deadline = [0.0]

    def worker(index: int):
        send, close = path.connect(basin, table)
        interval = None if rate is None else path.rows_per_request * producers / rate
        start_gate.wait()
        next_at = time.perf_counter() + (interval or 0) * index / producers
        try:
            while time.perf_counter() < deadline[0]:
                if interval is not None:
                    pause = next_at - time.perf_counter()
                    if pause > 0:
                        time.sleep(pause)
                    next_at += interval
                began = time.perf_counter()
                send()
                took = (time.perf_counter() - began) * 1000
                with lock:
                    latencies.append(took)
                    rows[0] += path.rows_per_request
        except Exception as error:  # reported, not swallowed
            errors.append(f"{type(error).__name__}: {error}")
        finally:
            close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(producers)]
    for t in threads:
        t.start()
    started = time.perf_counter()
    deadline[0] = started + seconds
    start_gate.wait()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{path.name}: {errors[0]}")
    return rows[0], elapsed, latencies


def query_latency(basin, table: str, repeats: int = 5) -> dict[str, float]:
    queries = {
        "count_all": f"SELECT count(*) FROM {table}",
        "last_minute_agg": (
            f"SELECT site, count(*), avg(temp) FROM {table} "
            f"WHERE ts > (SELECT max(ts) FROM {table}) - INTERVAL '1 minute' GROUP BY site"
        ),
        "device_lookup": f"SELECT max(ts), max(temp) FROM {table} WHERE device_id = 'device-000042'",
    }
    out = {}
    with psycopg.connect(basin.dsn, autocommit=True) as conn:
        for name, sql in queries.items():
            times = []
            for _ in range(repeats):
                began = time.perf_counter()
                conn.execute(sql).fetchall()
                times.append((time.perf_counter() - began) * 1000)
            out[name] = statistics.median(times)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--producers", default="1,2,4,8")
    parser.add_argument("--paths", default="flight,flight_8k,copy_binary,copy_text,http_ndjson,http_arrow")
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--executors", type=int, default=2, help="0 keeps the shards on the coordinator")
    parser.add_argument("--binary", default=str(REPO / "target" / "release" / "basin"))
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "ingest.md"))
    args = parser.parse_args()

    sample = make_rows(4096)
    print(f"row size in Arrow: {row_bytes(sample):.0f} bytes", flush=True)
    paths: dict[str, Path_] = {
        "flight": FlightPath(),
        "flight_8k": FlightPath(8192, "flight_8k"),
        "http_ndjson": HttpPath("http_ndjson", "application/x-ndjson", ndjson_of(make_rows(5000)), 5000),
        "http_arrow": HttpPath("http_arrow", "application/vnd.apache.arrow.stream", ipc_of(make_rows(65536)), 65536),
        "copy_binary": CopyPath("copy_binary", "COPY {table} FROM STDIN (FORMAT BINARY)", pgcopy_binary_of(make_rows(100_000)), 100_000),
        "copy_text": CopyPath("copy_text", "COPY {table} FROM STDIN", pgcopy_text_of(make_rows(100_000)), 100_000),
    }
    chosen = [p for p in args.paths.split(",") if p]
    producer_counts = [int(p) for p in args.producers.split(",")]

    root = Path(tempfile.mkdtemp(prefix="basin-ingest-bench-"))
    basin = Basin(Path(args.binary), root, executors=args.executors)
    basin.start()
    results = []
    try:
        for name in chosen:
            path = paths[name]
            best = 0.0
            for producers in producer_counts:
                entry = measure(basin, path, f"ingest_{name}_{producers}", producers, args, row_bytes(sample))
                best = max(best, entry["rows_per_sec"])
                results.append(entry)
            # Ack latency at half of the maximum rate, 4 producers.
            results.append(measure(basin, path, f"ingest_{name}_half", 4, args, row_bytes(sample), rate=best / 2))
    finally:
        basin.stop(kill9=True)
        shutil.rmtree(root, ignore_errors=True)
    write_report(Path(args.out), results, args, row_bytes(sample))


def measure(basin, path: Path_, table: str, producers: int, args, row_size: float, rate: float | None = None) -> dict:
    """One load run into a fresh table: throughput, server CPU, ack and query latencies."""
    with basin.connect() as conn:
        conn.execute(DDL.format(name=table, shards=args.shards))
    cpu_before = server_cpu_seconds(basin)
    rows, elapsed, lat = run_load(basin, path, table, producers, args.seconds, rate=rate)
    coordinator_after, executors_after = server_cpu_seconds(basin)
    coordinator_cpu = coordinator_after - cpu_before[0]
    executors_cpu = executors_after - cpu_before[1]
    cpu = coordinator_cpu + executors_cpu
    entry = {
        "path": path.name,
        "producers": producers,
        "rows": rows,
        "rows_per_sec": rows / elapsed,
        "mb_per_sec": rows / elapsed * row_size / 1e6,
        "rows_per_server_cpu_sec": rows / cpu if cpu > 0 else float("nan"),
        "rows_per_coordinator_cpu_sec": rows / coordinator_cpu if coordinator_cpu > 0 else float("nan"),
        "rows_per_executor_cpu_sec": rows / executors_cpu if executors_cpu > 0 else float("nan"),
        "ack_p50_ms": percentile(lat, 50),
        "ack_p99_ms": percentile(lat, 99),
        "rows_per_request": path.rows_per_request,
        "load": "max" if rate is None else "half of max",
        "query_ms": query_latency(basin, table),
    }
    print(json.dumps(entry), flush=True)
    with basin.connect() as conn:
        conn.execute(f"DROP TABLE {table}")
    return entry


def write_report(out: Path, results: list[dict], args, row_size: float) -> None:
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    lines = [
        "# Streaming ingest benchmark",
        "",
        f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC at commit `{commit}` on "
        f"{os.cpu_count()} cores ({platform.machine()}), release build, producers on the same machine.",
        "",
        f"Command: `.venv/bin/python benchmarks/streaming/ingest_bench.py --seconds {args.seconds:g} "
        f"--producers {args.producers} --paths {args.paths} --shards {args.shards} "
        f"--executors {args.executors}`",
        "",
        f"Rows are ~{row_size:.0f} bytes in Arrow (6 columns: two short texts, timestamptz, double, "
        "bigint, a 40-byte note). Every request is acknowledged only after its rows are fsynced in "
        f"the table's log ({args.shards} shards, group commit, "
        + (
            f"placed on {args.executors} executor processes: the coordinator decodes and forwards "
            "each batch to its shard's executor over gRPC"
            if args.executors
            else "in the coordinator's data directory"
        )
        + "). Ack latency is per request (HTTP request, Flight batch, COPY statement) as the "
        "client sees it.",
        "",
        "| path | producers | load | rows/request | rows/s | MB/s | rows per server CPU-s | per coordinator CPU-s | per executor CPU-s | ack p50 ms | ack p99 ms | count(*) ms | last-minute agg ms | device lookup ms |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        q = r["query_ms"]
        lines.append(
            f"| {r['path']} | {r['producers']} | {r['load']} | {r['rows_per_request']} | {r['rows_per_sec']:,.0f} | "
            f"{r['mb_per_sec']:.1f} | {r['rows_per_server_cpu_sec']:,.0f} | "
            f"{r['rows_per_coordinator_cpu_sec']:,.0f} | {r['rows_per_executor_cpu_sec']:,.0f} | {r['ack_p50_ms']:.1f} | {r['ack_p99_ms']:.1f} | {q['count_all']:.1f} | "
            f"{q['last_minute_agg']:.1f} | {q['device_lookup']:.1f} |"
        )
    lines += [
        "",
        "Rows per server CPU-second divide the rows by the CPU time (user + system) the Basin "
        "processes (coordinator and executors) used during the run: the per-core rate with the "
        "client's CPU left out. The next two columns split it: rows per CPU-second of the "
        "coordinator (decoding, checking, forwarding, compaction) and of the executors (the "
        "shards' logs); with executors on their own machines each side scales with its cores.",
        "",
        "Query columns: median of 5 runs right after the load stopped, over all rows just ingested "
        "(most still in the log tail, the rest compacted into the table's Delta lake).",
        "",
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
