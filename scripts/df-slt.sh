#!/usr/bin/env bash
# DataFusion's own sqllogictest corpus over Basin's pgwire (issue 9 item 6; docs/testing.md,
# "DataFusion's corpus"). The .slt files are data: they come from the crates.io crate
# datafusion-sqllogictest 55.2.0, fetched with cargo into ~/.cache/basin-df-slt (or
# $BASIN_DF_SLT_DIR) and never copied into this repository.
#
#   scripts/df-slt.sh --fetch             # only fetch the corpus
#   scripts/df-slt.sh                     # every file not on sql-tests/df-slt/skip.toml, and
#                                         # rewrite sql-tests/df-slt/{results.md,passing.txt}
#   scripts/df-slt.sh --gate              # the files of passing.txt must still pass (CI)
#   scripts/df-slt.sh -- aggregate --verbose   # any basin-df-slt arguments after --; a run
#                                         # narrowed to some files leaves the report alone
#
# Uses the debug build under CARGO_TARGET_DIR (default target/); builds basin and basin-df-slt
# first unless BASIN_DF_SLT_NO_BUILD=1.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

crate=datafusion-sqllogictest
version=55.2.0
corpus="${BASIN_DF_SLT_DIR:-$HOME/.cache/basin-df-slt/$crate-$version}"
export BASIN_DF_SLT_DIR="$corpus"

fetch() {
    [ -d "$corpus/test_files" ] && return 0
    echo "df-slt: fetching $crate $version into $corpus"
    local work
    work="$(mktemp -d)"
    mkdir -p "$work/src"
    printf '[package]\nname = "df-slt-fetch"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\n%s = { version = "=%s", default-features = false }\n' \
        "$crate" "$version" > "$work/Cargo.toml"
    echo 'fn main() {}' > "$work/src/main.rs"
    # cargo downloads the .crate into its registry cache; the tarball is all we need from it.
    (cd "$work" && cargo fetch --quiet)
    local archive
    archive="$(find "${CARGO_HOME:-$HOME/.cargo}/registry/cache" -name "$crate-$version.crate" | head -n 1)"
    if [ -z "$archive" ]; then
        echo "df-slt: cargo fetched no $crate-$version.crate" >&2
        rm -rf "$work"
        return 1
    fi
    mkdir -p "$(dirname "$corpus")"
    tar -xzf "$archive" -C "$(dirname "$corpus")"
    rm -rf "$work"
    [ -d "$corpus/test_files" ]
}

mode=full
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --fetch) mode=fetch ;;
        --gate) mode=gate ;;
        --) shift; args+=("$@"); break ;;
        *) args+=("$1") ;;
    esac
    shift
done

fetch
[ "$mode" = fetch ] && exit 0

target_dir="${CARGO_TARGET_DIR:-target}"
if [ "${BASIN_DF_SLT_NO_BUILD:-0}" != 1 ]; then
    cargo build --quiet -p basin -p basin-sql-tests --bin basin --bin basin-df-slt
fi
runner="$target_dir/debug/basin-df-slt"

case "$mode" in
    gate) exec "$runner" --files-from sql-tests/df-slt/passing.txt "${args[@]}" ;;
    full)
        # A run narrowed to some files must not rewrite the report: passing.txt (the gate)
        # would shrink to the files it ran. Any argument that is not a flag narrows it.
        for arg in "${args[@]}"; do
            case "$arg" in
                -*) ;;
                *) exec "$runner" "${args[@]}" ;;
            esac
        done
        exec "$runner" --report sql-tests/df-slt "${args[@]}" ;;
esac
