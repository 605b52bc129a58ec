"""pgjdbc (Debian's libpostgresql-jdbc-java) against Basin, through a small Java program."""

import shutil
import subprocess
from pathlib import Path

JAR = Path("/usr/share/java/postgresql.jar")
SOURCE = Path(__file__).resolve().parent / "java" / "JdbcSmoke.java"


def test_jdbc_prepared_statements_and_metadata(basin, tmp_path):
    assert JAR.is_file(), f"{JAR} missing: run scripts/setup.sh"
    javac = shutil.which("javac")
    java = shutil.which("java")
    assert javac and java, "a JDK is needed: run scripts/setup.sh"
    subprocess.run([javac, "-d", str(tmp_path), "-cp", str(JAR), str(SOURCE)], check=True, timeout=300)
    result = subprocess.run(
        [java, "-cp", f"{JAR}:{tmp_path}", "JdbcSmoke", basin.host, str(basin.port)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}\n{basin.log_tail()}"
    assert "checks passed" in result.stdout
