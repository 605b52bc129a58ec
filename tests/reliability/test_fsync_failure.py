"""Issue 9 item 4, fsync failures: every Basin process runs under libfiu's `fiu-run -x` (Debian
`fiu-utils`), whose POSIX preload makes `fsync`/`fdatasync` fail on command (failure points
`posix/io/sync/fsync` and `posix/io/sync/fdatasync`). A failed sync must become a client error
(or a crash), never an acknowledgement; a definite error must leave nothing behind; and once
syncs work again, appends are acknowledged again.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import psycopg
import pytest

from cluster import Cluster
from ledger import MANAGED, PATHS, SCHEMA, STREAM, Client, check

FIU_RUN = shutil.which("fiu-run")
FIU_CTRL = shutil.which("fiu-ctrl")


def fiu(cluster: Cluster, command: str) -> None:
    for node in cluster.nodes:
        subprocess.run(
            [FIU_CTRL, "-f", str(cluster.root / "fiu"), "-c", command, str(node.pid)],
            check=True, timeout=30,
        )


@pytest.fixture
def cluster():
    if FIU_RUN is None or FIU_CTRL is None:
        pytest.fail("fiu-run is missing: scripts/setup.sh installs Debian's fiu-utils", pytrace=False)
    root = Path(tempfile.mkdtemp(prefix="basin-fsync-"))
    cluster = Cluster(root, wrapper=[FIU_RUN, "-x", "-f", str(root / "fiu")])
    try:
        cluster.start()
        with cluster.connect() as conn:
            for statement in SCHEMA[:2]:
                conn.execute(statement)
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


def ledger_run(cluster: Cluster, seconds: float, clients: int = 4) -> list[Client]:
    stop = threading.Event()
    workers = [Client(cluster, c, stop) for c in range(clients)]
    for worker in workers:
        worker.start()
    time.sleep(seconds)
    stop.set()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.crash is None, f"{worker.name} failed: {worker.crash!r}"
        assert not worker.is_alive(), f"{worker.name} hangs"
    return workers


def test_failed_fsync_is_never_acknowledged(cluster):
    # Every sync fails: not one append may be acknowledged, on any path.
    fiu(cluster, "enable name=posix/io/sync/*")
    always = [Client(cluster, 100, threading.Event())]
    for _ in range(3):
        for path in PATHS:
            always[0].one_statement(path)
    ledger = always[0].ledger
    assert not ledger.acked[STREAM] and not ledger.acked[MANAGED], (
        f"acknowledged although every fsync failed: {len(ledger.acked[STREAM])} stream rows, "
        f"{len(ledger.acked[MANAGED])} managed rows"
    )
    assert sum(ledger.errors.values()) == 3 * len(PATHS), ledger.errors

    # Half of the syncs fail, under load from four clients.
    fiu(cluster, "disable name=posix/io/sync/*")
    fiu(cluster, "enable_random name=posix/io/sync/*,probability=0.5")
    random_phase = ledger_run(cluster, 15)
    fiu(cluster, "disable name=posix/io/sync/*")

    # Syncs work again: every path acknowledges again (a failed log is reopened, not abandoned).
    recovered = Client(cluster, 200, threading.Event())
    deadline = time.monotonic() + 60
    pending = set(PATHS)
    while pending and time.monotonic() < deadline:
        for path in sorted(pending):
            before = len(recovered.ledger.acked[STREAM]) + len(recovered.ledger.acked[MANAGED])
            recovered.one_statement(path)
            if len(recovered.ledger.acked[STREAM]) + len(recovered.ledger.acked[MANAGED]) > before:
                pending.discard(path)
        time.sleep(0.5)
    assert not pending, f"still failing a minute after fsync works again: {pending} {recovered.ledger.errors}"

    # What is on disk after kill -9 of everything, restarted without fault injection.
    cluster.stop()
    for node in cluster.nodes:
        node.start(wrapper=[])
    cluster.wait_serving(probe=f"SELECT count(*) FROM {STREAM}")
    clients = [*always, *random_phase, recovered]
    report = check(cluster, clients)
    errors = sum((sum(c.ledger.errors.values()) for c in random_phase))
    print(report, [c.ledger.errors for c in clients])
    assert errors > 0, "no statement failed while half of all syncs failed: fault injection did nothing"
    assert not report["problems"], "\n".join(report["problems"])
