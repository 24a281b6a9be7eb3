# shellcheck shell=bash
# A throwaway single-node Garage (S3) for tests and benchmarks.
# Source this file; do not execute it.
#
#   garage_ensure_bin   find Garage 2.5.0 or install it (cargo install, ~7 min); exports GARAGE_BIN
#   garage_start DIR    start Garage in DIR (created) with a fresh key and three buckets;
#                       exports TEST_S3_* and TEST_GARAGE_*
#   garage_stop         stop every Garage running on the generated config
#
# A test may stop Garage and start it again (fault tests): it must run
# `"$GARAGE_BIN" -c "$TEST_GARAGE_CONFIG" server` (no --single-node needed, the
# layout is kept in the metadata dir); garage_stop finds such a process by its config path.

_svc_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/support/common.sh
source "${_svc_dir}/common.sh"

GARAGE_VERSION=2.5.0
GARAGE_INSTALL_ROOT=${GARAGE_INSTALL_ROOT:-"${HOME}/.cache/storage-service/garage-${GARAGE_VERSION}"}
GARAGE_STARTED_CONFIG=${GARAGE_STARTED_CONFIG:-}

garage_ensure_bin() {
    if [[ -n "${GARAGE_BIN:-}" ]]; then
        [[ -x "$GARAGE_BIN" ]] || svc_die "GARAGE_BIN=${GARAGE_BIN} is not an executable file"
    elif [[ -x "${GARAGE_INSTALL_ROOT}/bin/garage" ]]; then
        GARAGE_BIN="${GARAGE_INSTALL_ROOT}/bin/garage"
    else
        command -v cargo >/dev/null 2>&1 || svc_die "Garage ${GARAGE_VERSION} is not installed and cargo is not available to build it"
        # Two runs on one machine (two checkouts) install it once: the second waits for the first.
        mkdir -p "${HOME}/.cache/storage-service"
        exec {_garage_lock_fd}>"${HOME}/.cache/storage-service/garage-${GARAGE_VERSION}.lock"
        flock "$_garage_lock_fd"
    fi
    if [[ -n "${GARAGE_BIN:-}" ]]; then
        :
    elif [[ -x "${GARAGE_INSTALL_ROOT}/bin/garage" ]]; then
        GARAGE_BIN="${GARAGE_INSTALL_ROOT}/bin/garage"
    else
        svc_log "Garage ${GARAGE_VERSION} not found: installing it into ${GARAGE_INSTALL_ROOT} (cargo install, takes several minutes)"
        local started build_dir
        started=$(svc_now)
        # Its own target dir, so the project's target dir is left alone.
        build_dir="${HOME}/.cache/storage-service/garage-${GARAGE_VERSION}-build"
        if ! CARGO_TARGET_DIR="$build_dir" cargo install garage --version "$GARAGE_VERSION" \
            --locked --root "$GARAGE_INSTALL_ROOT" >&2; then
            svc_die "cargo install garage --version ${GARAGE_VERSION} failed"
        fi
        # The build tree is large (several GB) and not needed once the binary is installed.
        # Not fatal: the binary is installed; a leftover build tree only costs disk.
        rm -rf "$build_dir" 2>/dev/null || svc_log "could not remove ${build_dir} completely (in use?): remove it by hand to free the disk"
        GARAGE_BIN="${GARAGE_INSTALL_ROOT}/bin/garage"
        svc_log "Garage ${GARAGE_VERSION} installed in $(svc_elapsed "$started")s"
    fi
    # Released now: a Garage started later must not inherit (and hold) the lock.
    if [[ -n "${_garage_lock_fd:-}" ]]; then
        exec {_garage_lock_fd}>&-
        unset _garage_lock_fd
    fi
    local version
    version=$("$GARAGE_BIN" --version 2>/dev/null | head -n 1) || svc_die "${GARAGE_BIN} --version failed"
    case "$version" in
        *"${GARAGE_VERSION}"*) ;;
        *) svc_log "warning: ${GARAGE_BIN} is '${version}', the project tests against Garage ${GARAGE_VERSION}" ;;
    esac
    export GARAGE_BIN
}

# HTTP status code of an anonymous GET on the S3 endpoint (Garage answers 403).
_garage_s3_status() {
    curl -s -o /dev/null -w '%{http_code}' --max-time 2 "${TEST_S3_ENDPOINT}/" || true
}

_garage_s3_up() {
    if command -v curl >/dev/null 2>&1; then
        [[ "$(_garage_s3_status)" =~ ^[1-5][0-9][0-9]$ ]]
    else
        (exec 3<>"/dev/tcp/127.0.0.1/${TEST_S3_PORT}") 2>/dev/null
    fi
}

# A SigV4-signed ListObjectsV2 on bucket $1 with the generated key: prints the HTTP status.
_garage_signed_list_status() {
    curl -s -o /dev/null -w '%{http_code}' --max-time 10 \
        --aws-sigv4 "aws:amz:${TEST_S3_REGION}:s3" \
        --user "${TEST_S3_ACCESS_KEY}:${TEST_S3_SECRET_KEY}" \
        -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' \
        "${TEST_S3_ENDPOINT}/$1?list-type=2&max-keys=1" || true
}

garage_cli() {
    "$GARAGE_BIN" -c "$TEST_GARAGE_CONFIG" "$@"
}

garage_start() {
    local root=$1
    [[ -n "${GARAGE_BIN:-}" ]] || garage_ensure_bin
    local started
    started=$(svc_now)

    local dir="$root/garage"
    mkdir -p "$dir/meta" "$dir/data"
    chmod 700 "$dir"

    local s3_port rpc_port admin_port
    svc_free_port s3_port
    svc_free_port rpc_port
    svc_free_port admin_port

    export TEST_S3_PORT=$s3_port
    export TEST_S3_ENDPOINT="http://127.0.0.1:${s3_port}"
    export TEST_S3_REGION=garage
    # Garage's own formats: key id "GK" + 24 hex digits, secret 64 hex digits.
    TEST_S3_ACCESS_KEY="GK$(svc_random_hex 12)"
    TEST_S3_SECRET_KEY=$(svc_random_hex 32)
    export TEST_S3_ACCESS_KEY TEST_S3_SECRET_KEY
    export TEST_S3_BUCKET_USERS=users
    export TEST_S3_BUCKET_COMPANIES=companies
    export TEST_S3_BUCKET_PROJECTS=projects
    export TEST_GARAGE_CONFIG="$dir/garage.toml"
    export TEST_GARAGE_LOG="$dir/garage.log"
    export TEST_GARAGE_ADMIN_ENDPOINT="http://127.0.0.1:${admin_port}"
    TEST_GARAGE_ADMIN_TOKEN=$(svc_random_hex 32)
    export TEST_GARAGE_ADMIN_TOKEN

    (
        umask 077
        cat >"$TEST_GARAGE_CONFIG" <<EOF
# Generated by tests/support/garage.sh: a throwaway single-node Garage.
metadata_dir = "${dir}/meta"
data_dir = "${dir}/data"
db_engine = "sqlite"
metadata_fsync = false
data_fsync = false
replication_factor = 1

rpc_bind_addr = "127.0.0.1:${rpc_port}"
rpc_public_addr = "127.0.0.1:${rpc_port}"
rpc_secret = "$(svc_random_hex 32)"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:${s3_port}"

[admin]
api_bind_addr = "127.0.0.1:${admin_port}"
admin_token = "${TEST_GARAGE_ADMIN_TOKEN}"
EOF
    )

    # --single-node lays out this one node; --default-bucket creates the key and
    # the first bucket from the GARAGE_DEFAULT_* variables.
    GARAGE_DEFAULT_ACCESS_KEY="$TEST_S3_ACCESS_KEY" \
        GARAGE_DEFAULT_SECRET_KEY="$TEST_S3_SECRET_KEY" \
        GARAGE_DEFAULT_BUCKET="$TEST_S3_BUCKET_USERS" \
        RUST_LOG="${GARAGE_RUST_LOG:-garage=info}" \
        "$GARAGE_BIN" -c "$TEST_GARAGE_CONFIG" server --single-node --default-bucket \
        </dev/null >"$TEST_GARAGE_LOG" 2>&1 &
    export TEST_GARAGE_PID=$!
    GARAGE_STARTED_CONFIG=$TEST_GARAGE_CONFIG

    local deadline=$((SECONDS + 60))
    until _garage_s3_up; do
        if ! svc_pid_alive "$TEST_GARAGE_PID"; then
            svc_show_log "$TEST_GARAGE_LOG"
            svc_die "Garage exited during start-up"
        fi
        if ((SECONDS >= deadline)); then
            svc_show_log "$TEST_GARAGE_LOG"
            svc_die "Garage's S3 API did not answer at ${TEST_S3_ENDPOINT} within 60s"
        fi
        sleep 0.2
    done

    local bucket out
    for bucket in "$TEST_S3_BUCKET_COMPANIES" "$TEST_S3_BUCKET_PROJECTS"; do
        if ! out=$(garage_cli bucket create "$bucket" 2>&1 &&
            garage_cli bucket allow --read --write --owner "$bucket" --key "$TEST_S3_ACCESS_KEY" 2>&1); then
            printf '%s\n' "$out" >&2
            svc_show_log "$TEST_GARAGE_LOG"
            svc_die "could not create bucket ${bucket} in Garage"
        fi
    done

    # The key may create buckets (S3BlobStore::connect's MINIO_CREATE_BUCKETS path is tested).
    if ! out=$(garage_cli key allow --create-bucket "$TEST_S3_ACCESS_KEY" 2>&1); then
        printf '%s\n' "$out" >&2
        svc_die "could not let the test key create buckets in Garage"
    fi

    # Check that the key can really use every bucket: a signed request each
    # (curl >= 7.75 signs SigV4), or the CLI's view when curl cannot sign.
    for bucket in "$TEST_S3_BUCKET_USERS" "$TEST_S3_BUCKET_COMPANIES" "$TEST_S3_BUCKET_PROJECTS"; do
        if command -v curl >/dev/null 2>&1 && curl --help all 2>/dev/null | grep -q -- '--aws-sigv4'; then
            local status
            status=$(_garage_signed_list_status "$bucket")
            [[ "$status" == 200 ]] ||
                svc_die "a signed ListObjectsV2 on bucket ${bucket} answered HTTP ${status:-nothing}, expected 200"
        else
            out=$(garage_cli bucket info "$bucket" 2>&1) || svc_die "garage bucket info ${bucket} failed: ${out}"
            grep -q "RWO .*${TEST_S3_ACCESS_KEY}" <<<"$out" ||
                svc_die "the test key has no read/write/owner access to bucket ${bucket}: ${out}"
        fi
    done

    svc_log "Garage $("$GARAGE_BIN" --version | head -n 1 | awk '{ sub(/^cargo:/, "", $2); print $2 }') started: S3 at ${TEST_S3_ENDPOINT} (region ${TEST_S3_REGION}, key ${TEST_S3_ACCESS_KEY}, buckets ${TEST_S3_BUCKET_USERS} ${TEST_S3_BUCKET_COMPANIES} ${TEST_S3_BUCKET_PROJECTS}), admin at ${TEST_GARAGE_ADMIN_ENDPOINT}, pid ${TEST_GARAGE_PID} ($(svc_elapsed "$started")s)"
}

# Pids of the garage processes running on config file $1 (ours, or restarted by a test).
_garage_pids_for_config() {
    local config=$1 pid_dir pid
    for pid_dir in /proc/[0-9]*; do
        pid=${pid_dir#/proc/}
        [[ -r "$pid_dir/cmdline" ]] || continue
        if tr '\0' '\n' <"$pid_dir/cmdline" 2>/dev/null | grep -qxF -- "$config"; then
            echo "$pid"
        fi
    done
}

garage_stop() {
    [[ -n "$GARAGE_STARTED_CONFIG" ]] || return 0
    local config=$GARAGE_STARTED_CONFIG
    GARAGE_STARTED_CONFIG=""
    # By config path rather than by TEST_GARAGE_PID alone: a test may have restarted it.
    local pid
    for pid in $(_garage_pids_for_config "$config"); do
        svc_stop_pid "$pid" 10
    done
    if [[ -n "${TEST_GARAGE_PID:-}" ]]; then
        wait "$TEST_GARAGE_PID" 2>/dev/null || true
    fi
}
