#!/usr/bin/env bash
# Idempotent machine setup for Basin's test suite: system packages the client tests need and the
# Python virtualenv at .venv. Safe to run repeatedly; does nothing when everything is present.
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
