#!/usr/bin/env bash
# Idempotent machine setup for Basin's test suite: system packages the client tests need
# (including PostgreSQL itself, the client matrix's oracle, and node), the Python virtualenv at
# .venv and the node clients in tests/clients/node. Safe to run repeatedly; does nothing when
# everything is present.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

log() { printf '[setup] %s\n' "$*"; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        log "need root to run: $*"
        return 1
    fi
}

# --- Debian packages -------------------------------------------------------------------------
missing=()
command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
[ -f /usr/share/java/postgresql.jar ] || missing+=(libpostgresql-jdbc-java)
{ command -v javac >/dev/null 2>&1 && command -v java >/dev/null 2>&1; } || missing+=(default-jdk-headless)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
# The client matrix runs every client against a throwaway PostgreSQL cluster too (initdb +
# pg_ctl); Debian keeps them in /usr/lib/postgresql/<version>/bin, off PATH.
if ! command -v initdb >/dev/null 2>&1 && ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
    missing+=(postgresql)
fi
{ command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; } || missing+=(nodejs npm)
# psqlODBC through unixODBC for pyodbc (tests/clients/test_odbc_matrix.py): the driver registers
# itself as "PostgreSQL Unicode" in /etc/odbcinst.ini.
grep -qs '^\[PostgreSQL Unicode\]' /etc/odbcinst.ini || missing+=(odbc-postgresql unixodbc)
# Go's lib/pq and pgx v4 from Debian, built offline in GOPATH mode (tests/clients/test_go_matrix.py).
command -v go >/dev/null 2>&1 || missing+=(golang-go)
[ -d /usr/share/gocode/src/github.com/lib/pq ] || missing+=(golang-github-lib-pq-dev)
[ -d /usr/share/gocode/src/github.com/jackc/pgx/v4 ] || missing+=(golang-github-jackc-pgx-v4-dev)
# libfiu's fiu-run preloads a library that makes fsync/fdatasync fail on demand: the fsync-failure
# variant of the crash ledger (tests/reliability/test_fsync_failure.py).
command -v fiu-run >/dev/null 2>&1 || missing+=(fiu-utils)
# libfuzzer-sys compiles libFuzzer (C++) for the fuzz step (scripts/fuzz.sh); cargo-fuzz itself
# is installed below.
command -v c++ >/dev/null 2>&1 || missing+=(g++)

if [ "${#missing[@]}" -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
    log "Debian packages present"
fi

# --- Python virtualenv -----------------------------------------------------------------------
requirements="tests/clients/requirements.txt"
venv=".venv"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$requirements" | cut -d' ' -f1)"

if [ ! -x "$venv/bin/python" ]; then
    log "creating virtualenv $venv"
    python3 -m venv "$venv"
fi

if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
    log "installing Python packages from $requirements"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
    echo "$want" >"$stamp"
else
    log "Python packages up to date"
fi

# --- node clients of the client matrix -------------------------------------------------------
# Installed from the lockfile exactly; reinstalled when the lockfile changes.
node_dir="tests/clients/node"
node_stamp="$node_dir/node_modules/.package-lock.sha256"
node_want="$(sha256sum "$node_dir/package-lock.json" | cut -d' ' -f1)"
if [ "$(cat "$node_stamp" 2>/dev/null || true)" != "$node_want" ]; then
    log "installing node packages in $node_dir (npm ci)"
    (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$node_want" >"$node_stamp"
else
    log "node packages up to date"
fi

# --- S3-compatible server for the object-storage tests ----------------------------------------
# s3s-fs keeps objects as plain files under a directory. Pinned: later versions need a newer
# Rust. Built once (~3-10 min), only when missing.
s3s_version="0.14.1"
if ! command -v s3s-fs >/dev/null 2>&1 || ! s3s-fs --version 2>/dev/null | grep -q "$s3s_version"; then
    log "installing s3s-fs $s3s_version (cargo install, once)"
    env -u CARGO_TARGET_DIR cargo install --locked --quiet "s3s-fs@$s3s_version" --features binary
else
    log "s3s-fs present"
fi

# --- cargo-fuzz for the fuzz step -------------------------------------------------------------
# Installed here, before scripts/test.sh starts the fuzz build in the background: a `cargo
# install` holds cargo's package-cache lock while it builds, which would stall the other steps.
if ! cargo fuzz --version >/dev/null 2>&1; then
    log "installing cargo-fuzz (cargo install, once)"
    env -u CARGO_TARGET_DIR cargo install --locked --quiet cargo-fuzz
else
    log "cargo-fuzz present"
fi
