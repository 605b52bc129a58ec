"""The client matrix for sqlx 0.8: sql-tests/src/bin/sqlx_matrix.rs runs against real PostgreSQL
and against Basin on the table matrix_data.py seeds — a prepared statement's described parameter
and column types (which sqlx checks every decoded value against), a parameter of every type in
binary (numeric through bigdecimal, dates and times through chrono, PgInterval), the table and
view read by typed parameters and `query_as`, pg_attribute and information_schema,
SQLSTATEs and a transaction.

The binary is built by `cargo build --workspace --all-targets` next to `basin`; point
$SQLX_MATRIX_BIN at a copy to use another.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from conftest import REPO
from matrix_data import seed


def matrix_binary() -> Path:
    override = os.environ.get("SQLX_MATRIX_BIN")
    if override:
        return REPO / override
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    if not target.is_absolute():
        target = REPO / target
    return target / "debug" / "sqlx_matrix"


def test_sqlx(server):
    binary = matrix_binary()
    assert binary.is_file(), f"{binary} missing: cargo build --workspace --all-targets"
    seed(server)
    done = subprocess.run([str(binary), server.dsn], capture_output=True, text=True, timeout=120, check=False)
    output = f"--- stdout ---\n{done.stdout}\n--- stderr ---\n{done.stderr}"
    assert done.returncode == 0, output
    assert "checks passed" in done.stdout, output
