#!/usr/bin/env python3
"""Apache Superset against Basin, through Superset's own code paths (run by
scripts/superset_check.sh, in a virtualenv that has apache-superset and psycopg2).

Starts `basin standalone` on free loopback ports with a fresh data directory, seeds a table and
a view, makes a Superset metadata database (SQLite) with `superset db upgrade`, then, inside the
Superset app:

1. adds Basin as a database by its SQLAlchemy URL (`postgresql+psycopg2://basin@.../basin`)
   and tests the connection as the "Test connection" button does;
2. lists schemas and tables as the dataset editor does (`Database.get_all_schema_names`,
   `Database.get_all_table_names_in_schema`, `get_all_view_names_in_schema`);
3. makes a dataset of the table and syncs its columns (`SqlaTable.fetch_metadata`), checking
   each column's type and temporal flag;
4. runs a chart's query through `SqlaTable.query` (a bar chart: sum of a metric grouped by a
   column, filtered, ordered, row-limited) and checks the rows.

Exits 0 and prints `N passed, 0 failed` when every check holds.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_basin(data_dir: Path) -> tuple[subprocess.Popen, int]:
    binary = Path(os.environ.get("BASIN_BIN", REPO / "target" / "debug" / "basin"))
    if not binary.is_file():
        sys.exit(f"{binary} missing: cargo build -p basin")
    port = free_port()
    process = subprocess.Popen(
        [
            str(binary), "standalone", "--executors", "0",
            "--pg-listen", f"127.0.0.1:{port}",
            "--http-listen", f"127.0.0.1:{free_port()}",
            "--control-listen", f"127.0.0.1:{free_port()}",
            "--data-dir", str(data_dir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(data_dir.parent / "basin.log", "w"),  # noqa: SIM115 - lives as long as Basin
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, port
        except OSError:
            if process.poll() is not None:
                sys.exit(f"basin exited with {process.returncode}; see {data_dir.parent / 'basin.log'}")
            time.sleep(0.2)
    process.kill()
    sys.exit("basin did not start listening within 120 s")


def seed(port: int) -> None:
    import psycopg2

    conn = psycopg2.connect(host="127.0.0.1", port=port, user="basin", dbname="basin")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(
            "CREATE TABLE sales (id BIGINT NOT NULL, region TEXT, amount NUMERIC(10,2), "
            "sold_at TIMESTAMP, paid BOOLEAN)"
        )
        cur.execute(
            "INSERT INTO sales VALUES "
            "(1, 'north', 10.50, '2024-01-01 09:00:00', true), "
            "(2, 'south', 20.00, '2024-01-02 10:00:00', true), "
            "(3, 'north', 5.25, '2024-01-03 11:00:00', false), "
            "(4, 'east', 7.00, '2024-01-04 12:00:00', true)"
        )
        cur.execute("CREATE VIEW paid_sales AS SELECT region, amount FROM sales WHERE paid")
    conn.close()


class Checks:
    def __init__(self) -> None:
        self.passed = 0

    def equal(self, want, got, what: str) -> None:
        if want != got:
            raise AssertionError(f"{what}: want {want!r} got {got!r}")
        self.passed += 1
        print(f"ok  {what}")


def superset_checks(port: int, checks: Checks) -> None:
    from superset.app import create_app

    app = create_app()
    with app.app_context():
        from superset import db
        from superset.connectors.sqla.models import SqlaTable
        from superset.models.core import Database

        uri = f"postgresql+psycopg2://basin@127.0.0.1:{port}/basin"
        database = Database(database_name="basin", sqlalchemy_uri=uri)
        db.session.add(database)
        db.session.commit()

        # "Test connection": Superset connects and pings through the engine.
        with database.get_sqla_engine() as engine:
            with engine.connect() as connection:
                checks.equal(1, connection.exec_driver_sql("SELECT 1").scalar(), "test connection")

        schemas = database.get_all_schema_names()
        checks.equal(True, "public" in schemas, "schema list has public")
        # (name, schema, catalog) tuples in Superset 6
        tables = {t[0] for t in database.get_all_table_names_in_schema(None, "public")}
        checks.equal({"sales"}, tables, "tables of schema public")
        views = {t[0] for t in database.get_all_view_names_in_schema(None, "public")}
        checks.equal({"paid_sales"}, views, "views of schema public")

        dataset = SqlaTable(table_name="sales", schema="public", database=database)
        db.session.add(dataset)
        db.session.commit()
        dataset.fetch_metadata()
        db.session.commit()
        columns = {c.column_name: (c.type, bool(c.is_dttm)) for c in dataset.columns}
        checks.equal(
            {
                "id": ("BIGINT", False),
                "region": ("TEXT", False),
                "amount": ("NUMERIC(10, 2)", False),
                "sold_at": ("TIMESTAMP WITHOUT TIME ZONE", True),
                "paid": ("BOOLEAN", False),
            },
            columns,
            "dataset columns synced (type, temporal)",
        )

        # A bar chart: SUM(amount) by region over paid sales, biggest first, 10 rows at most.
        result = dataset.query(
            {
                "columns": ["region"],
                "groupby": ["region"],
                "metrics": [
                    {
                        "expressionType": "SIMPLE",
                        "column": {"column_name": "amount"},
                        "aggregate": "SUM",
                        "label": "total",
                    }
                ],
                "filter": [{"col": "paid", "op": "==", "val": True}],
                "is_timeseries": False,
                "orderby": [("total", False)],
                "row_limit": 10,
                "extras": {},
            }
        )
        checks.equal(None, result.error_message, "chart query error")
        rows = [(r["region"], float(r["total"])) for r in result.df.to_dict("records")]
        checks.equal([("south", 20.0), ("north", 10.5), ("east", 7.0)], rows, "chart rows")
        print(f"chart SQL: {' '.join(result.query.split())}")


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="basin-superset-"))
    config = work / "superset_config.py"
    config.write_text(
        'SECRET_KEY = "basin-superset-check-not-a-secret"\n'
        f'SQLALCHEMY_DATABASE_URI = "sqlite:///{work / "superset.db"}"\n'
    )
    os.environ["SUPERSET_CONFIG_PATH"] = str(config)
    data_dir = work / "basin-data"
    data_dir.mkdir()
    basin, port = start_basin(data_dir)
    checks = Checks()
    try:
        seed(port)
        superset = Path(sys.executable).parent / "superset"
        subprocess.run([str(superset), "db", "upgrade"], check=True, capture_output=True)
        superset_checks(port, checks)
    except Exception as error:  # noqa: BLE001 - report any failure as the check's result
        print(f"FAILED: {error!r}")
        print(f"{checks.passed} passed, 1 failed")
        return 1
    finally:
        basin.terminate()
        basin.wait(timeout=30)
    shutil.rmtree(work, ignore_errors=True)
    print(f"{checks.passed} passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
