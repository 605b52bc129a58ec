"""The client matrix for Go: lib/pq (through database/sql) and pgx v4 run go/matrix.go against
real PostgreSQL and against Basin on the table matrix_data.py seeds — catalog queries with
parameters, a parameter of every type (lib/pq sends them as untyped text, pgx in binary by the
types the server describes), the table read by parameters, a pgx batch, SQLSTATEs.

Built offline in GOPATH mode (GO111MODULE=off) from Debian's golang-go,
golang-github-lib-pq-dev and golang-github-jackc-pgx-v4-dev, which scripts/setup.sh installs;
Debian ships no pgx v5. The build cache lives in a temporary directory per run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from matrix_data import seed

SOURCE = Path(__file__).resolve().parent / "go" / "matrix.go"
GOPATH = Path("/usr/share/gocode")


@pytest.fixture(scope="module")
def program(tmp_path_factory) -> Path:
    go = shutil.which("go")
    assert go, "go not found: run scripts/setup.sh (golang-go)"
    for package in ("github.com/lib/pq", "github.com/jackc/pgx/v4"):
        assert (GOPATH / "src" / package).is_dir(), f"{package} missing: run scripts/setup.sh"
    out = tmp_path_factory.mktemp("go-matrix")
    env = dict(os.environ, GO111MODULE="off", GOPATH=str(GOPATH), GOFLAGS="", GOCACHE=str(out / "cache"))
    binary = out / "matrix"
    done = subprocess.run(
        [go, "build", "-o", str(binary), str(SOURCE)], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr
    return binary


@pytest.mark.parametrize("driver", ["pq", "pgx"])
def test_go_client(server, program, driver):
    seed(server)
    done = subprocess.run(
        [str(program), driver, server.url, server.name],
        env=dict(os.environ, TZ="UTC"), capture_output=True, text=True, timeout=120, check=False,
    )
    output = f"--- stdout ---\n{done.stdout}\n--- stderr ---\n{done.stderr}"
    assert done.returncode == 0, output
    assert "checks passed" in done.stdout, output
