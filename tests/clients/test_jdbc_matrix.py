"""The client matrix for pgjdbc (Debian's libpostgresql-jdbc-java): java/JdbcMatrix.java runs
against real PostgreSQL and against Basin on the table matrix_data.py seeds — DatabaseMetaData
(getTables, getColumns, getPrimaryKeys, getIndexInfo, getTypeInfo, getSchemas), a
PreparedStatement with a parameter of every type through the typed setters (unnamed and named
server-side statements), ResultSetMetaData, and typed getters. The program does its own checks
and exits non-zero on the first failure.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from matrix_data import seed

JAR = Path("/usr/share/java/postgresql.jar")
SOURCE = Path(__file__).resolve().parent / "java" / "JdbcMatrix.java"


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> Path:
    assert JAR.is_file(), f"{JAR} missing: run scripts/setup.sh"
    javac = shutil.which("javac")
    assert javac, "a JDK is needed: run scripts/setup.sh"
    classes = tmp_path_factory.mktemp("jdbc-matrix")
    subprocess.run([javac, "-d", str(classes), "-cp", str(JAR), str(SOURCE)], check=True, timeout=300)
    return classes


def test_pgjdbc_metadata_and_typed_parameters(server, compiled):
    seed(server)
    java = shutil.which("java")
    assert java, "a JDK is needed: run scripts/setup.sh"
    done = subprocess.run(
        [java, "-Duser.timezone=UTC", "-cp", f"{JAR}:{compiled}", "JdbcMatrix", server.host, str(server.port), server.name],
        capture_output=True, text=True, timeout=300, check=False,
    )
    output = f"--- stdout ---\n{done.stdout}\n--- stderr ---\n{done.stderr}"
    assert done.returncode == 0, output
    assert "checks passed" in done.stdout, output
