#!/usr/bin/env bash
# The long tier of the crash ledger (issue 9 item 4, docs/reliability.md): 300 kill -9 cycles
# at U(5, 20) s and 60 SIGSTOP cycles against a coordinator + 2 executors, then the fsync and
# corruption tests. About 90 minutes on a 2-core machine. Appends each run's JSON summary to
# $BASIN_LEDGER_REPORT (default target/reliability-long.jsonl).
#   scripts/reliability-long.sh                  # 300 cycles
#   CYCLES=60 scripts/reliability-long.sh        # shorter
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

cycles="${CYCLES:-300}"
stop_cycles="${STOP_CYCLES:-60}"
interval="${INTERVAL:-5,20}"
report="${BASIN_LEDGER_REPORT:-$repo_root/target/reliability-long.jsonl}"

scripts/setup.sh >/dev/null
cargo build -p basin
printf 'crash ledger: %s kill cycles, %s stop cycles, interval %s s; report %s\n' \
    "$cycles" "$stop_cycles" "$interval" "$report"
BASIN_LEDGER_CYCLES="$cycles" BASIN_LEDGER_STOP_CYCLES="$stop_cycles" BASIN_LEDGER_INTERVAL="$interval" \
    BASIN_LEDGER_REPORT="$report" \
    .venv/bin/python -m pytest tests/reliability -q -s -p no:cacheprovider
