#!/usr/bin/env bash
# Dependency rules of the Basin workspace (docs/architecture.md, STYLE.md section 1), checked with
# `cargo tree`:
#   1. Which workspace crates each library crate may depend on (normal, build and dev edges):
#        basin-proto        -> none
#        basin-catalog      -> basin-proto
#        basin-coordinator  -> basin-proto, basin-catalog        (never basin-executor)
#        basin-executor     -> basin-proto, basin-catalog        (never basin-coordinator)
#   2. One version each of the crates whose types cross crate boundaries: arrow*, parquet,
#      datafusion*, object_store, tonic*, prost*. Two versions compile but cannot exchange values
#      (an arrow 58 RecordBatch is not an arrow 59 one), so this is caught here, not at a call site.
# Exits non-zero, naming each violation and how it comes about, if any rule is broken.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

edges=normal,build,dev
status=0

fail() {
    printf 'check-deps: FAIL: %s\n' "$*" >&2
    status=1
}

# Package names in `cargo tree` output lines such as "basin-proto v0.1.0 (/path)".
names() { awk 'NF { print $1 }' | sort -u; }

mapfile -t workspace < <(cargo tree --quiet --workspace --depth 0 --prefix none --format '{p}' | names)
if [ "${#workspace[@]}" -eq 0 ]; then
    echo "check-deps: cargo tree listed no workspace packages" >&2
    exit 2
fi

is_workspace_crate() {
    local candidate="$1" member
    for member in "${workspace[@]}"; do
        [ "$member" = "$candidate" ] && return 0
    done
    return 1
}

# check_allowed CRATE [ALLOWED...]: CRATE may depend, directly or not, only on the listed
# workspace crates.
check_allowed() {
    local crate="$1"
    shift
    local allowed=" $* " dependency
    if ! is_workspace_crate "$crate"; then
        fail "$crate is not a workspace package (was it renamed? update scripts/check-deps.sh)"
        return
    fi
    while read -r dependency; do
        [ "$dependency" = "$crate" ] && continue
        is_workspace_crate "$dependency" || continue
        case "$allowed" in
            *" $dependency "*) ;;
            *)
                fail "$crate must not depend on $dependency (allowed: ${*:-no workspace crate}); path:"
                cargo tree --quiet -p "$crate" -e "$edges" -i "$dependency" >&2 || true
                ;;
        esac
    done < <(cargo tree --quiet -p "$crate" -e "$edges" --prefix none --format '{p}' | names)
}

check_allowed basin-proto
check_allowed basin-catalog basin-proto
check_allowed basin-coordinator basin-proto basin-catalog
check_allowed basin-executor basin-proto basin-catalog

# Rule 2: `cargo tree -d` lists every package present in more than one version.
watched='^(arrow|arrow-[a-z0-9-]+|parquet|datafusion|datafusion-[a-z0-9-]+|object_store|tonic|tonic-[a-z0-9-]+|prost|prost-[a-z0-9-]+)$'
duplicated=$(
    cargo tree --quiet --workspace -d -e "$edges" --depth 0 --prefix none --format '{p}' \
        | awk 'NF { print $1, $2 }' | sort -u \
        | awk -v watched="$watched" '$1 ~ watched { versions[$1] = versions[$1] " " $2 }
            END { for (name in versions) if (split(versions[name], v, " ") > 1) print name ":" versions[name] }' \
        | sort
)
if [ -n "$duplicated" ]; then
    while read -r line; do
        name="${line%%:*}"
        fail "more than one version of $name:${line#*:}; who pulls them in:"
        for version in ${line#*:}; do
            cargo tree --quiet --workspace -e "$edges" -i "$name@${version#v}" --depth 3 >&2 || true
        done
    done <<<"$duplicated"
fi

if [ "$status" -eq 0 ]; then
    echo "check-deps: ok (crate dependency directions; single arrow/parquet/datafusion/object_store/tonic/prost)"
fi
exit "$status"
