"""Checks shared by the kill -9 ingest tests: what producers were told against what is stored."""

from __future__ import annotations


def assert_exactly_once(conn, table: str, acked: dict[int, int], sent: dict[int, int]) -> None:
    """Every acknowledged batch is present with all its rows exactly once, and no batch (acked
    or not) is half-present. Rows carry their batch id in `temp` and a unique `device_id`."""
    found = dict(
        conn.execute(f"SELECT CAST(temp AS BIGINT) AS batch_id, count(*) FROM {table} GROUP BY 1").fetchall()
    )
    distinct = conn.execute(f"SELECT count(DISTINCT device_id), count(*) FROM {table}").fetchone()
    assert distinct[0] == distinct[1], "a row is present more than once"
    for batch_id, size in acked.items():
        assert found.get(batch_id) == size, f"acknowledged batch {batch_id} has {found.get(batch_id)} of {size} rows"
    for batch_id, count in found.items():
        assert count == sent[batch_id], f"batch {batch_id} is half-present: {count} of {sent[batch_id]} rows"
