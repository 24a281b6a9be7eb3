#!/usr/bin/env bash
# The project's test command: sets up everything the suite needs on a fresh
# machine, runs the whole suite, and cleans up, whatever the outcome.
#
#   tests/run.sh                      # the whole workspace
#   tests/run.sh -p storage-domain    # extra arguments go to the test runner
#
# It starts a throwaway PostgreSQL (unless TEST_DATABASE_URL is set) and a
# throwaway single-node Garage, exports TEST_* variables describing them, runs
# `cargo nextest run` (or `cargo test` without nextest) twice, the tests whose
# timing matters last and alone, then stops both and removes their temp
# directory. See docs/testing.md.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=tests/support/services.sh
source "${repo_root}/tests/support/services.sh"
cd "$repo_root"

command -v cargo >/dev/null 2>&1 || svc_die "cargo not found: install the Rust toolchain (rustup)"

# --workspace unless the arguments select packages themselves (with both, cargo
# would build and run the whole workspace and ignore -p).
scope=(--workspace)
for arg in "$@"; do
    case "$arg" in
        --) break ;;
        -p | -p?* | --package | --package=* | --workspace | --all) scope=() ;;
    esac
done

services_start

# The consumer tests' tools (crates/server/tests/consumers: a generated Python client,
# schemathesis, headless Chromium), when the run may include them; cached after the first time.
# shellcheck source=tests/support/consumers.sh
source "${repo_root}/tests/support/consumers.sh"
if ((${#scope[@]} > 0)) || [[ " $* " == *storage-server* ]]; then
    consumers_ensure
fi

status=0
# run CMD...: print it, run it in the foreground (Ctrl-C reaches it), keep the
# first failure's exit code in $status.
run() {
    svc_log "running: $*"
    local rc=0
    "$@" || rc=$?
    if ((status == 0)); then status=$rc; fi
}

# True when the arguments choose tests by filterset themselves (-E, --filterset).
has_filterset() {
    local arg
    for arg in "$@"; do
        case "$arg" in
            --) return 1 ;;
            -E | -E?* | --filterset | --filterset=* | --filter-expr | --filter-expr=*) return 0 ;;
        esac
    done
    return 1
}

if cargo nextest --version >/dev/null 2>&1; then
    # nextest does not run doc tests: run them first on full runs, so the last
    # summary printed is nextest's. TEST_DOCTESTS=0 skips them, =1 forces them.
    doctests=${TEST_DOCTESTS:-auto}
    if [[ "$doctests" == 1 || ("$doctests" == auto && $# -eq 0) ]]; then
        run cargo test --doc "${scope[@]}" --no-fail-fast "$@"
    fi
    if has_filterset "$@"; then
        run cargo nextest run "${scope[@]}" --no-fail-fast "$@"
    else
        # The tests whose timing matters (nextest group `timing`, .config/nextest.toml) run
        # after the others, one at a time, so they never share the machine with the parallel
        # run. A selection may leave either run empty: that is not a failure.
        run cargo nextest run "${scope[@]}" --no-fail-fast --no-tests=warn \
            -E 'not group(timing)' "$@"
        run cargo nextest run "${scope[@]}" --no-fail-fast --no-tests=warn \
            -E 'group(timing)' "$@"
    fi
else
    svc_log "cargo-nextest is not installed: using cargo test (the timing tests then run beside the others)"
    run cargo test "${scope[@]}" --no-fail-fast "$@"
fi

exit "$status"
