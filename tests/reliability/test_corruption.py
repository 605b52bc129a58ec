"""Issue 9 item 4, corruption: after a clean shutdown a bit is flipped in, or a piece cut off,
a streaming table's log segment or lake Parquet file; after the restart a query over the table
must fail with a SQLSTATE or return every row, never silently fewer rows (or other values).
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import urllib.request
from pathlib import Path

import psycopg
import pytest

from cluster import Cluster

TABLE = "corrupt_me"
BATCHES = 40
ROWS = 25


def frames(path: Path) -> list[tuple[int, int]]:
    """(start, length) of each log frame: "BSL1" | len u32 | rows u32 | crc u32 | payload."""
    data = path.read_bytes()
    at, out = 0, []
    while at + 16 <= len(data):
        length = int.from_bytes(data[at + 4:at + 8], "little")
        out.append((at, 16 + length))
        at += 16 + length
    return out


@pytest.fixture
def cluster():
    root = Path(tempfile.mkdtemp(prefix="basin-corrupt-"))
    cluster = Cluster(root)
    try:
        cluster.start()
        with cluster.connect() as conn:
            conn.execute(
                f"CREATE TABLE {TABLE} (k BIGINT NOT NULL, v TEXT) APPEND ONLY "
                "WITH (compaction_interval = '1h', partition_by = 'none')"
            )
            seq = 0
            for half in range(2):
                for _ in range(BATCHES // 2):
                    values = ", ".join(f"({seq + i}, 'v{seq + i}')" for i in range(ROWS))
                    conn.execute(f"INSERT INTO {TABLE} VALUES {values}")
                    seq += ROWS
                if half == 0:  # the first half into the lake, the second stays in the log
                    request = urllib.request.Request(
                        f"http://127.0.0.1:{cluster.http}/v1/tables/{TABLE}/compact", method="POST"
                    )
                    urllib.request.urlopen(request, timeout=60).read()
        cluster.terminate()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


def files(cluster: Cluster, suffix: str) -> list[Path]:
    return sorted(p for p in cluster.root.rglob(f"*{suffix}") if TABLE in str(p) and p.stat().st_size > 0)


def expect_error_or_everything(cluster: Cluster, what: str) -> str:
    for node in cluster.nodes:
        node.start()
    try:
        cluster.wait_serving(timeout=60)
    except RuntimeError as err:
        return f"cluster refused to serve: {err}"[:200]
    total = BATCHES * ROWS
    try:
        with cluster.connect() as conn:
            rows = conn.execute(f"SELECT k, v FROM {TABLE}").fetchall()
    except psycopg.Error as err:
        assert err.sqlstate, f"{what}: error without a SQLSTATE: {err}"
        return f"{err.sqlstate}: {str(err).strip()[:160]}"
    expected = {(k, f"v{k}") for k in range(total)}
    assert len(rows) == total and set(rows) == expected, (
        f"{what}: silently wrong answer: {len(rows)} rows of {total}, "
        f"{len(expected - set(rows))} missing, {len(set(rows) - expected)} unexpected"
    )
    return "all rows"


def flip_bit(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 1 << random.randrange(8)
    path.write_bytes(bytes(data))


# Known gaps (docs/reliability.md, "Corruption"): strict, so they fail once Basin detects them.
# - A damaged or shortened last frame of the newest log segment looks exactly like a torn write
#   from a crash, so recovery cuts it off: acknowledged rows vanish without an error.
# - Parquet pages carry no checksum (parquet-rs writes none): a flipped bit in a value changes
#   the answer.
GAP_TORN_TAIL = pytest.mark.xfail(
    strict=True, reason="the last log frame's damage is taken for a torn write (no clean-shutdown record)"
)
GAP_PARQUET_CRC = pytest.mark.xfail(strict=True, reason="lake Parquet files carry no checksum")


@pytest.mark.parametrize("case", [
    "log_flip_middle",
    pytest.param("log_flip_last_frame", marks=GAP_TORN_TAIL),
    pytest.param("log_truncate_last_frame", marks=GAP_TORN_TAIL),
    "lake_truncate",
    pytest.param("lake_flip_value", marks=GAP_PARQUET_CRC),
])
def test_corruption_is_reported(cluster, case):
    rng = random.Random(os.environ.get("BASIN_CORRUPTION_SEED", case))
    random.seed(rng.random())
    if case.startswith("log"):
        segment = rng.choice(files(cluster, ".bsl"))
        spans = frames(segment)
        assert len(spans) >= 2, spans
        if case == "log_flip_middle":
            start, length = rng.choice(spans[:-1])
            flip_bit(segment, start + rng.randrange(length))
        elif case == "log_flip_last_frame":
            start, length = spans[-1]
            flip_bit(segment, start + rng.randrange(length))
        else:
            start, length = spans[-1]
            os.truncate(segment, start + 1 + rng.randrange(length - 1))
    else:
        lake = rng.choice(files(cluster, ".parquet"))
        size = lake.stat().st_size
        if case == "lake_truncate":
            os.truncate(lake, rng.randrange(size))
        else:
            # A digit of the text value of row 123 (the first half is in the lake).
            data = lake.read_bytes()
            at = data.find(b"v123")
            assert at > 0, "value v123 not found in the lake file"
            with open(lake, "r+b") as out:
                out.seek(at + 2)
                out.write(b"4")
    outcome = expect_error_or_everything(cluster, case)
    print(case, outcome)
