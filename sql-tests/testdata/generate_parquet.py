"""Writes the small Parquet files under sql-tests/testdata/ that the ddl/ .slt files read.

The outputs are committed; rerun only to change them:
    .venv/bin/python sql-tests/testdata/generate_parquet.py
"""

from pathlib import Path

import duckdb

HERE = Path(__file__).resolve().parent


def main() -> None:
    con = duckdb.connect()
    parquet_dir = HERE / "parquet_dir"
    parquet_dir.mkdir(exist_ok=True)
    con.execute(
        f"""COPY (SELECT * FROM (VALUES (1::BIGINT, 'one'), (2, 'two'), (3, 'three')) t(id, name))
            TO '{parquet_dir / "part-0.parquet"}' (FORMAT parquet)"""
    )
    con.execute(
        f"""COPY (SELECT * FROM (VALUES (4::BIGINT, 'four'), (5, NULL)) t(id, name))
            TO '{parquet_dir / "part-1.parquet"}' (FORMAT parquet)"""
    )
    for region, rows in {
        "eu": "(1::BIGINT, 10::INTEGER), (2, 20)",
        "us": "(3::BIGINT, 30::INTEGER), (4, 40), (5, 50)",
    }.items():
        out = HERE / "hive_parquet" / f"region={region}"
        out.mkdir(parents=True, exist_ok=True)
        con.execute(
            f"""COPY (SELECT * FROM (VALUES {rows}) t(id, qty))
                TO '{out / "data.parquet"}' (FORMAT parquet)"""
        )


if __name__ == "__main__":
    main()
