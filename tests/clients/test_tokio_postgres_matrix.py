"""The client matrix for tokio-postgres: sql-tests/src/bin/tokio_postgres_matrix.rs runs against
real PostgreSQL and against Basin on the table matrix_data.py seeds — described parameter and
column types, a parameter of every type in binary (date, time, interval and numeric encoded by
hand from Postgres's binary formats), the table read by typed parameters, pg_attribute, SQLSTATEs.

The binary is built by `cargo build --workspace --all-targets` next to `basin`; point
$TOKIO_POSTGRES_MATRIX_BIN at a copy to use another.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from conftest import REPO
from matrix_data import seed


def matrix_binary() -> Path:
    override = os.environ.get("TOKIO_POSTGRES_MATRIX_BIN")
    if override:
        return REPO / override
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    if not target.is_absolute():
        target = REPO / target
    return target / "debug" / "tokio_postgres_matrix"


def test_tokio_postgres(server):
    binary = matrix_binary()
    assert binary.is_file(), f"{binary} missing: cargo build --workspace --all-targets"
    seed(server)
    done = subprocess.run([str(binary), server.dsn], capture_output=True, text=True, timeout=120, check=False)
    output = f"--- stdout ---\n{done.stdout}\n--- stderr ---\n{done.stderr}"
    assert done.returncode == 0, output
    assert "checks passed" in done.stdout, output
