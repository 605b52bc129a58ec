"""psql 15's meta-commands against real PostgreSQL and against Basin, compared line by line.

The same relations are made on both servers (matrix_data.py's table and view, plus a
materialized view), then `\\l \\dn \\dt \\dv \\dm \\di \\d \\d+ \\df \\dT` and `\\x` run through
the real psql binary on each. Output must be identical except for the differences listed in
DIFFERENCES, each one a known, documented gap (docs/clients.md): Basin has one database, keeps no
indexes, and its `public` schema is owned by the session's role.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from matrix_data import TABLE, VIEW, seed

MATVIEW = "matrix_mv"

# Meta-commands whose output must be the same on both servers.
SAME = [
    r"\dt",
    r"\dv",
    r"\dm",
    rf"\d {VIEW}",
    rf"\d {MATVIEW}",
    r"\df",
    r"\dT",
    r"\dt matrix_*",
    rf"\x on" "\n" f"SELECT id, txt, num, day FROM {TABLE} ORDER BY id",
]


def psql(target, command: str) -> str:
    binary = shutil.which("psql")
    assert binary, "psql not found: run scripts/setup.sh (postgresql-client)"
    done = subprocess.run(
        [binary, "-X", "-v", "ON_ERROR_STOP=1", "-h", target.host, "-p", str(target.port), "-U", target.user,
         "-d", target.database],
        input=command + "\n", capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, f"{command}: {done.stderr}"
    # psql reports an empty listing ("Did not find any relations.") on stderr.
    assert "ERROR" not in done.stderr and "error" not in done.stderr, f"{command}: {done.stderr}"
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def servers(postgres, basin):
    from conftest import Target

    targets = [Target("postgres", postgres.host, postgres.port), Target("basin", basin.host, basin.port)]
    for target in targets:
        seed(target)
        with target.connect() as conn:
            conn.execute(f"DROP MATERIALIZED VIEW IF EXISTS {MATVIEW}")
            conn.execute(f"CREATE MATERIALIZED VIEW {MATVIEW} AS SELECT id, num FROM {TABLE}")
    return targets


@pytest.mark.parametrize("command", SAME)
def test_same_output_as_postgres(servers, command):
    postgres, basin = servers
    assert psql(basin, command) == psql(postgres, command)


def test_describe_table_verbose(servers):
    postgres, basin = servers
    expected = psql(postgres, rf"\d+ {TABLE}").splitlines()
    # PostgreSQL lists the primary key's index; Basin keeps no indexes.
    footer = expected.index("Indexes:")
    assert expected[footer + 1] == f'    "{TABLE}_pkey" PRIMARY KEY, btree (id)'
    del expected[footer : footer + 2]
    assert psql(basin, rf"\d+ {TABLE}").splitlines() == expected


def test_describe_view_verbose(servers):
    postgres, basin = servers
    # The columns are the same; the definition is PostgreSQL's deparsed query on one side and
    # the text the view was created with on the other (Basin keeps the SQL, not a parse tree).
    expected = psql(postgres, rf"\d+ {VIEW}").split("View definition:")[0]
    got, definition = psql(basin, rf"\d+ {VIEW}").split("View definition:")
    assert got == expected
    assert definition.strip() == f"SELECT id, txt, num FROM {TABLE} WHERE flag AND id < 100"


def test_indexes(servers):
    postgres, basin = servers
    assert f" public | {TABLE}_pkey | index | basin | {TABLE}" in psql(postgres, r"\di")
    assert psql(basin, r"\di") == "Did not find any relations.\n"


def test_databases_and_schemas(servers):
    postgres, basin = servers
    pg_header, *_ = [line for line in psql(postgres, r"\l").splitlines() if line.startswith(" ") and "Name" in line]
    databases = psql(basin, r"\l").splitlines()
    # One database, same columns as PostgreSQL 15's listing.
    columns = [[part.strip() for part in line.split("|")] for line in databases if "Name" in line]
    assert columns == [[part.strip() for part in pg_header.split("|")]]
    assert any(line.startswith(" basin | basin | UTF8 ") for line in databases), databases
    assert "(1 row)" in databases, databases
    # PostgreSQL 15's public schema is owned by pg_database_owner; Basin's by the session role.
    assert " public | pg_database_owner" in psql(postgres, r"\dn")
    assert " public | basin" in psql(basin, r"\dn")
