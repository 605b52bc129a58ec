"""Issue 9 item 4, guarantee G1: no acknowledged row is lost and none appears twice while a
nemesis kill -9s (or SIGSTOPs) random Basin processes of a coordinator + 2 executor cluster.

Sized by the environment so the long tier (scripts/reliability-long.sh) runs the same test:
BASIN_LEDGER_CYCLES (kill cycles, default 20), BASIN_LEDGER_INTERVAL ("min,max" seconds between
faults, default "3,8"), BASIN_LEDGER_STOP_CYCLES (SIGSTOP cycles, default 8), BASIN_LEDGER_SEED,
BASIN_LEDGER_REPORT (a file each run appends its JSON summary to).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import pytest

from cluster import Cluster
from ledger import SCHEMA, STREAM, Client, Nemesis, check, check_view, summarize

CLIENTS = 4


def interval() -> tuple[float, float]:
    low, high = os.environ.get("BASIN_LEDGER_INTERVAL", "3,8").split(",")
    return float(low), float(high)


@pytest.fixture
def cluster():
    root = Path(tempfile.mkdtemp(prefix="basin-ledger-"))
    cluster = Cluster(root)
    passed = False
    try:
        cluster.start()
        with cluster.connect() as conn:
            for statement in SCHEMA:
                conn.execute(statement)
        yield cluster
        passed = True
    finally:
        cluster.stop()
        if passed or not os.environ.get("BASIN_LEDGER_KEEP"):
            shutil.rmtree(root, ignore_errors=True)


def run_ledger(cluster: Cluster, kind: str, cycles: int) -> dict:
    seed = int(os.environ.get("BASIN_LEDGER_SEED", str(int(time.time()))))
    stop = threading.Event()
    clients = [Client(cluster, c, stop) for c in range(CLIENTS)]
    nemesis = Nemesis(cluster, cycles, interval(), kind, seed)
    began = time.monotonic()
    for client in clients:
        client.start()
    nemesis.start()
    # Each cycle takes at most the interval, 5 s of fault and the serving timeout.
    nemesis.done.wait(timeout=cycles * (interval()[1] + 5 + 100))
    stop.set()
    for client in clients:
        client.join(timeout=120)
    seconds = time.monotonic() - began
    assert nemesis.crash is None, f"nemesis failed: {nemesis.crash!r}"
    for client in clients:
        assert client.crash is None, f"{client.name} failed: {client.crash!r}"
        assert not client.is_alive(), f"{client.name} hangs"

    # Everything down at once, then up: what is checked is what is on disk.
    cluster.stop()
    for node in cluster.nodes:
        node.start()
    final_serving = cluster.wait_serving(probe=f"SELECT count(*) FROM {STREAM}")

    report = summarize(nemesis, clients, seconds)
    report.update(seed=seed, final_restart_serving_s=round(final_serving, 2))
    report.update(check(cluster, clients))
    report["view_mismatch"] = check_view(cluster)
    print(json.dumps(report, indent=1))
    if os.environ.get("BASIN_LEDGER_REPORT"):
        with open(os.environ["BASIN_LEDGER_REPORT"], "a") as out:
            out.write(json.dumps(report) + "\n")

    assert report["cycles"] == cycles, report
    assert not report["problems"], "\n".join(report["problems"])
    assert report["view_mismatch"] is None, f"materialized view differs: {report['view_mismatch']}"
    for table, counts in report["tables"].items():
        assert counts["acked_rows"] > 0, f"nothing acknowledged into {table}: {report['errors']}"
    return report


def test_kill9_ledger(cluster):
    run_ledger(cluster, "kill9", int(os.environ.get("BASIN_LEDGER_CYCLES", "20")))


def test_sigstop_ledger(cluster):
    run_ledger(cluster, "sigstop", int(os.environ.get("BASIN_LEDGER_STOP_CYCLES", "8")))
