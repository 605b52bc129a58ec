#!/usr/bin/env bash
# Apache Superset against Basin (docs/clients.md, "Apache Superset"): installs Superset into its
# own virtualenv (not the tests' .venv: Superset pins SQLAlchemy 1.4 and Flask versions the
# client matrix does not use) when missing, builds Basin, then runs scripts/superset_check.py.
#
# Not part of scripts/test.sh: installing Superset took 4 min 22 s on the 2-core development
# machine (pip, from PyPI, no cache), longer than CI should spend on one check.
#
#   scripts/superset_check.sh                 # venv at $SUPERSET_VENV (default /tmp/superset-venv)
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${SUPERSET_VENV:-/tmp/superset-venv}"
if [[ ! -x "$venv/bin/superset" ]]; then
    python3 -m venv "$venv"
    start=$(date +%s)
    # apache-superset 6.1 leaves rich and cachetools out of its requirements and works with
    # flask-caching < 2.3.2 only (2.5 passes an argument its metastore cache does not take).
    "$venv/bin/pip" install -q apache-superset psycopg2-binary "flask-caching==2.3.1" rich cachetools
    echo "installed Superset in $(( $(date +%s) - start )) s"
fi
cargo build -p basin
"$venv/bin/python" scripts/superset_check.py
