#!/usr/bin/env python3
"""Stands in for the `basin` binary by running a real PostgreSQL, to check the test plumbing
(the .slt harness and tests/clients) against PostgreSQL itself:

    BASIN_BIN=sql-tests/tools/postgres_as_basin.py cargo test -p basin-sql-tests --test sqllogictests -- types/
    BASIN_BIN=sql-tests/tools/postgres_as_basin.py .venv/bin/pytest tests/clients

`standalone --pg-listen HOST:PORT --data-dir DIR ...` initialises a cluster in DIR/pg (user and
database `basin`, trust auth) on first use and runs postgres on PORT; SIGTERM means a fast
shutdown (PostgreSQL's own SIGTERM waits for clients to leave), SIGKILL kills it like any crash.
`datagen tpch --output DIR` copies the Parquet files from $POSTGRES_AS_BASIN_TPCH_DIR.
As root it runs PostgreSQL as the `postgres` user. Needs initdb and postgres on PATH, in
/usr/local/bin or in /usr/lib/postgresql/*/bin. Basin-only syntax (CREATE EXTERNAL TABLE, ...)
naturally fails here.
"""

import glob
import os
import shutil
import signal
import subprocess
import sys


def find(program: str) -> str:
    candidates = [shutil.which(program), f"/usr/local/bin/{program}"]
    candidates += sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{program}"), reverse=True)
    for candidate in candidates:
        if candidate and os.path.isfile(candidate):
            return candidate
    sys.exit(f"postgres_as_basin: {program} not found")


def option(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args and args.index(name) + 1 < len(args) else None


def as_postgres_user(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", *command]


def datagen(args: list[str]) -> int:
    source = os.environ.get("POSTGRES_AS_BASIN_TPCH_DIR")
    output = option(args, "--output")
    if not source or not output:
        sys.exit("postgres_as_basin: datagen needs --output and $POSTGRES_AS_BASIN_TPCH_DIR")
    os.makedirs(output, exist_ok=True)
    for path in glob.glob(os.path.join(source, "*.parquet")):
        shutil.copy(path, output)
    return 0


def standalone(args: list[str]) -> int:
    listen, data = option(args, "--pg-listen"), option(args, "--data-dir")
    if not listen or not data:
        sys.exit("postgres_as_basin: standalone needs --pg-listen and --data-dir")
    host, port = listen.rsplit(":", 1)
    if os.geteuid() == 0:
        # The postgres user must reach the data directory inside the harness's private tempdir.
        os.chmod(os.path.dirname(os.path.abspath(data)), 0o755)
        os.chmod(data, 0o755)
        shutil.chown(data, "postgres")
    cluster = os.path.join(data, "pg")
    if not os.path.isdir(cluster):
        subprocess.run(
            as_postgres_user([find("initdb"), "-D", cluster, "-A", "trust", "-U", "basin"]),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        subprocess.run(
            as_postgres_user([find("postgres"), "--single", "-D", cluster, "postgres"]),
            input=b"CREATE DATABASE basin;\n",
            check=True,
            stdout=subprocess.DEVNULL,
        )
    print(f"postgres_as_basin: PostgreSQL on {host}:{port}", flush=True)
    server = subprocess.Popen(
        as_postgres_user(
            [find("postgres"), "-D", cluster, "-p", port, "-k", data, "-c", f"listen_addresses={host}", "-c", "fsync=off"]
        )
    )
    signal.signal(signal.SIGTERM, lambda *_: server.send_signal(signal.SIGINT))
    return server.wait()


def main() -> int:
    args = sys.argv[1:] or ["standalone"]
    if args[0] == "datagen":
        return datagen(args)
    if args[0] == "standalone":
        return standalone(args[1:])
    sys.exit(f"postgres_as_basin: unsupported command {args[0]!r}")


if __name__ == "__main__":
    sys.exit(main())
