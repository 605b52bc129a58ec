"""The client matrix for node: node-postgres (`pg`) and postgres.js (`postgres`) run their scripts
in tests/clients/node/ against real PostgreSQL and against Basin.

Each script does its own checks with node:assert and exits non-zero if any failed; this module
seeds the shared table, runs the script under TZ=UTC, and shows its output when it fails.
scripts/setup.sh installs the node packages (`npm ci` in tests/clients/node).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from matrix_data import seed

NODE_DIR = Path(__file__).resolve().parent / "node"
SCRIPT_TIMEOUT = 120


@pytest.fixture(scope="module")
def seeded(server):
    seed(server)
    return server


def run_node(script: str, server) -> subprocess.CompletedProcess:
    node = shutil.which("node")
    assert node, "node not found: install nodejs (scripts/setup.sh)"
    assert (NODE_DIR / "node_modules").is_dir(), "node packages missing: run scripts/setup.sh"
    env = dict(os.environ, DATABASE_URL=server.url, TARGET=server.name, TZ="UTC", PGCONNECT_TIMEOUT="10")
    return subprocess.run(
        [node, script], cwd=NODE_DIR, env=env, capture_output=True, text=True, timeout=SCRIPT_TIMEOUT, check=False
    )


@pytest.mark.parametrize("script", ["pg.mjs", "postgres.mjs"])
def test_node_client(seeded, script):
    done = run_node(script, seeded)
    output = f"--- stdout ---\n{done.stdout}\n--- stderr ---\n{done.stderr}"
    assert done.returncode == 0, output
    assert "all checks passed" in done.stdout, output
    assert "FAILED" not in done.stdout, output
