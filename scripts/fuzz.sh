#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ (docs/reliability.md, "Fuzzing") on the stable toolchain
# (`-s none`: no sanitizer, so no nightly), one per core at a time, and prints per target the
# executions, seconds and executions per second. Exits non-zero if any target crashed (the
# input is left in fuzz/artifacts/<target>/: copy it to fuzz/regressions/<target>/ once fixed).
#
#   scripts/fuzz.sh                 per-submission tier: 2,000,000 executions per target
#   scripts/fuzz.sh --runs N        N executions per target
#   scripts/fuzz.sh SECONDS         SECONDS per target instead of a count
#   scripts/fuzz.sh --long          long tier: 50,000,000 executions per target, plus the
#                                   sql_to_plan target (builds DataFusion instrumented)
#   scripts/fuzz.sh ... TARGET...   only these targets
#   scripts/fuzz.sh --build-only    build the targets and stop (scripts/test.sh runs this at
#                                   nice 19 from the start, beside the other steps)
#
# Installs cargo-fuzz when missing. Builds in $BASIN_FUZZ_TARGET_DIR (default
# ~/.cache/basin-fuzz-target) and keeps each target's growing corpus in $BASIN_FUZZ_CORPUS
# (default ~/.cache/basin-fuzz-corpus); the committed seeds (fuzz/seeds/) and crash regressions
# (fuzz/regressions/) are read as extra corpora. A time cap per target ($BASIN_FUZZ_MAX_SECONDS,
# default 150, or 1500 with --long) bounds a slow target; the summary says when it ended a run
# short of its count.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root/fuzz"

runs=2000000
seconds=""
long=0
build_only=0
targets=()
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) runs="$2"; shift 2 ;;
        --long) long=1; runs=50000000; shift ;;
        --build-only) build_only=1; shift ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        [0-9]*) seconds="$1"; runs=-1; shift ;;
        *) targets+=("$1"); shift ;;
    esac
done
if [ "$long" -eq 1 ]; then
    max_seconds="${BASIN_FUZZ_MAX_SECONDS:-1500}"
else
    max_seconds="${BASIN_FUZZ_MAX_SECONDS:-150}"
fi
[ -n "$seconds" ] && max_seconds="$seconds"

export CARGO_TARGET_DIR="${BASIN_FUZZ_TARGET_DIR:-$HOME/.cache/basin-fuzz-target}"
corpus_root="${BASIN_FUZZ_CORPUS:-$HOME/.cache/basin-fuzz-corpus}"
start=$(date +%s)

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "=== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

features=()
if [ ${#targets[@]} -eq 0 ]; then
    targets=(pgwire_frontend stream_log arrow_ipc flight_data parquet_footer)
    if [ "$long" -eq 1 ]; then
        targets+=(sql_to_plan)
    fi
fi
for target in "${targets[@]}"; do
    [ "$target" = sql_to_plan ] && features=(--features sql)
done

echo "=== build (${CARGO_TARGET_DIR})"
build_start=$(date +%s)
cargo fuzz build -s none --release "${features[@]}"
echo "build: $(($(date +%s) - build_start))s"
[ "$build_only" -eq 1 ] && exit 0

# Runs one target (libFuzzer is single-threaded); its exit status goes to "$log.status".
fuzz_one() {
    local target="$1" corpus="$corpus_root/$1" log="$corpus_root/$1.log" status=0
    local extra=() dir
    mkdir -p "$corpus" "artifacts/$target"
    for dir in "seeds/$target" "regressions/$target"; do
        [ -d "$dir" ] && extra+=("$dir")
    done
    cargo fuzz run -s none --release "${features[@]}" "$target" "$corpus" "${extra[@]}" -- \
        -runs="$runs" -max_total_time="$max_seconds" -max_len=4096 -rss_limit_mb=2048 \
        -malloc_limit_mb=1024 -timeout=20 -print_final_stats=1 >"$log" 2>&1 || status=$?
    echo "$status" >"$log.status"
}

# One target per core at a time ($BASIN_FUZZ_JOBS overrides).
jobs_at_once="${BASIN_FUZZ_JOBS:-$(nproc)}"
running=0
for target in "${targets[@]}"; do
    echo "=== $target: runs=${runs} max_total_time=${max_seconds}s"
    # An earlier run's status must not stand in for a run that dies before writing its own.
    rm -f "$corpus_root/$target.log.status"
    fuzz_one "$target" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs_at_once" ]; then
        wait -n
        running=$((running - 1))
    fi
done
wait

summary=()
crashed=0
for target in "${targets[@]}"; do
    log="$corpus_root/$target.log"
    status=$(cat "$log.status" 2>/dev/null || echo 1)
    executions=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)
    took=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | grep -o 'in [0-9]*' | grep -o '[0-9]*' | tail -1 || true)
    executions=${executions:-0}
    took=${took:-0}
    rate=$((executions / (took > 0 ? took : 1)))
    if [ "$status" -ne 0 ]; then
        crashed=1
        grep -E 'panicked at|SUMMARY|Test unit written' "$log" | head -5 || true
        summary+=("CRASH  $target  executions=$executions  seconds=$took  (log: $log)")
    else
        short=""
        if [ "$runs" -gt 0 ] && [ "$executions" -lt "$runs" ]; then
            short="  (time cap reached before $runs)"
        fi
        summary+=("ok     $target  executions=$executions  seconds=$took  exec/s=$rate$short")
    fi
done

echo
echo "=== fuzz summary ($(($(date +%s) - start))s in all)"
printf '%s\n' "${summary[@]}"
exit "$crashed"
