# shellcheck shell=bash
# Start the services the tests need (PostgreSQL and Garage) in one temp directory,
# and stop them on exit. Used by tests/run.sh; benchmarks can use it too:
#
#   source tests/support/services.sh
#   services_start          # exports TEST_DATABASE_URL, TEST_S3_*, TEST_GARAGE_*, GARAGE_BIN
#   ...                     # services are stopped and the directory removed on exit
#
# services_start installs an EXIT trap (and INT/TERM/HUP traps that exit, which runs it).
# A caller with its own EXIT trap must call services_stop from it.

_svc_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/support/common.sh
source "${_svc_dir}/common.sh"
# shellcheck source=tests/support/postgres.sh
source "${_svc_dir}/postgres.sh"
# shellcheck source=tests/support/garage.sh
source "${_svc_dir}/garage.sh"

SVC_ROOT=${SVC_ROOT:-}

services_stop() {
    # Never let a failure here hide the caller's exit status or skip a step.
    garage_stop || true
    pg_stop || true
    if [[ -n "$SVC_ROOT" && -d "$SVC_ROOT" ]]; then
        rm -rf "$SVC_ROOT" || svc_log "could not remove ${SVC_ROOT}"
    fi
    SVC_ROOT=""
}

services_start() {
    local started
    started=$(svc_now)
    # First, as it may take minutes: nothing is running yet meanwhile.
    garage_ensure_bin

    SVC_ROOT=$(mktemp -d "${TMPDIR:-/tmp}/storage-service-tests.XXXXXX")
    export TEST_SERVICES_DIR=$SVC_ROOT
    trap services_stop EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    trap 'exit 129' HUP

    pg_start "$SVC_ROOT"
    garage_start "$SVC_ROOT"
    svc_log "services ready in $(svc_elapsed "$started")s (temp dir ${SVC_ROOT})"
}
