# shellcheck shell=bash
# A throwaway PostgreSQL cluster for tests and benchmarks.
# Source this file; do not execute it.
#
#   pg_start DIR   start a cluster in DIR (created) unless TEST_DATABASE_URL is set;
#                  exports TEST_DATABASE_URL
#   pg_stop        stop the cluster pg_start started (no-op otherwise)
#
# The cluster listens on 127.0.0.1 on a free port, trusts every local connection,
# keeps its unix socket in DIR, and is tuned for tests, not durability
# (fsync, synchronous_commit and full_page_writes off; max_connections = 300).
# PG_EXTRA_CONF, when set, is appended to its postgresql.conf after those settings (for
# profiling, e.g. "shared_preload_libraries = 'pg_stat_statements'").

_svc_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/support/common.sh
source "${_svc_dir}/common.sh"

# Set by pg_start when it started a cluster.
PG_STARTED_DIR=${PG_STARTED_DIR:-}
PG_BIN_DIR=${PG_BIN_DIR:-}
PG_OS_USER=${PG_OS_USER:-}

# Find initdb/pg_ctl: PATH first, then the newest /usr/lib/postgresql/*/bin.
# Sets PG_BIN_DIR; returns 1 when there are none.
pg_find_bin_dir() {
    if [[ -n "$PG_BIN_DIR" && -x "$PG_BIN_DIR/initdb" && -x "$PG_BIN_DIR/pg_ctl" ]]; then
        return 0
    fi
    local initdb
    if initdb=$(command -v initdb 2>/dev/null) && [[ -n "$initdb" ]]; then
        # Resolve symlinks (e.g. /usr/local/bin/initdb -> /usr/lib/postgresql/15/bin/initdb)
        # so pg_ctl, postgres and psql come from the same installation.
        PG_BIN_DIR=$(dirname "$(readlink -f "$initdb")")
        if [[ -x "$PG_BIN_DIR/pg_ctl" ]]; then
            return 0
        fi
    fi
    local dir
    for dir in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V -r); do
        if [[ -x "$dir/initdb" && -x "$dir/pg_ctl" ]]; then
            PG_BIN_DIR=$dir
            return 0
        fi
    done
    return 1
}

# Run a command as the cluster's owner. initdb and postgres refuse to run as root,
# so as root they run as the `postgres` system user (or `nobody` if there is none).
pg_as_owner() {
    if [[ "$(id -u)" -ne 0 ]]; then
        "$@"
        return
    fi
    if command -v runuser >/dev/null 2>&1; then
        runuser -u "$PG_OS_USER" -- "$@"
    elif command -v setpriv >/dev/null 2>&1; then
        setpriv --reuid="$(id -u "$PG_OS_USER")" --regid="$(id -g "$PG_OS_USER")" --clear-groups -- "$@"
    else
        su -s /bin/sh "$PG_OS_USER" -c "$(printf '%q ' "$@")"
    fi
}

# Print a URL with its password, if any, masked.
pg_masked_url() {
    sed -E 's#(://[^:/@]+):[^@]*@#\1:***@#' <<<"$1"
}

# Check that TEST_DATABASE_URL answers a query (when psql is available).
pg_check() {
    local psql=""
    if [[ -n "$PG_BIN_DIR" && -x "$PG_BIN_DIR/psql" ]]; then
        psql="$PG_BIN_DIR/psql"
    elif command -v psql >/dev/null 2>&1; then
        psql=$(command -v psql)
    else
        return 0
    fi
    local version
    if ! version=$(PGCONNECT_TIMEOUT=10 "$psql" "$TEST_DATABASE_URL" -XAtq \
        -c "select current_setting('server_version')" 2>&1); then
        svc_log "psql could not query $(pg_masked_url "$TEST_DATABASE_URL"): ${version}"
        return 1
    fi
    PG_SERVER_VERSION=$version
}

pg_start() {
    local root=$1
    if [[ -n "${TEST_DATABASE_URL:-}" ]]; then
        pg_find_bin_dir || true
        pg_check || svc_die "the PostgreSQL at TEST_DATABASE_URL does not answer"
        svc_log "PostgreSQL: using existing server at $(pg_masked_url "$TEST_DATABASE_URL")${PG_SERVER_VERSION:+ (version ${PG_SERVER_VERSION})}"
        return 0
    fi

    pg_find_bin_dir || svc_die "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH nor under /usr/lib/postgresql/*/bin: install them (Debian: apt-get install postgresql) or set TEST_DATABASE_URL to an existing server"
    local started
    started=$(svc_now)

    local dir="$root/postgres"
    mkdir -p "$dir"
    if [[ "$(id -u)" -eq 0 ]]; then
        if [[ -z "$PG_OS_USER" ]]; then
            if id -u postgres >/dev/null 2>&1; then PG_OS_USER=postgres; else PG_OS_USER=nobody; fi
        fi
        # The owner must be able to reach its directory through the root-owned temp dir.
        chmod 711 "$root"
        chown "$PG_OS_USER:$(id -gn "$PG_OS_USER")" "$dir"
    fi
    chmod 700 "$dir"

    local initdb_log="$dir/initdb.log"
    if ! (cd "$dir" && pg_as_owner "$PG_BIN_DIR/initdb" -D "$dir/data" -U postgres -A trust \
        -E UTF8 --no-locale --no-sync --no-instructions) >"$initdb_log" 2>&1; then
        svc_show_log "$initdb_log"
        svc_die "initdb failed"
    fi

    local port attempt
    for attempt in 1 2 3; do
        svc_free_port port
        # Settings appended last win over the defaults initdb wrote.
        pg_as_owner tee -a "$dir/data/postgresql.conf" >/dev/null <<EOF

# --- storage-service tests: throwaway cluster, not durable ---
listen_addresses = '127.0.0.1'
port = ${port}
unix_socket_directories = '${dir}'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 300
${PG_EXTRA_CONF:-}
EOF
        PG_STARTED_DIR=$dir
        if (cd "$dir" && pg_as_owner "$PG_BIN_DIR/pg_ctl" -D "$dir/data" -l "$dir/server.log" \
            -w -t 60 start) >"$dir/pg_ctl.log" 2>&1; then
            break
        fi
        # Most likely someone took the port meanwhile: try another one.
        svc_show_log "$dir/server.log"
        PG_STARTED_DIR=""
        if ((attempt == 3)); then
            svc_die "PostgreSQL did not start (see above)"
        fi
        svc_log "PostgreSQL did not start on port ${port}; retrying on another port"
    done

    export TEST_DATABASE_URL="postgres://postgres@127.0.0.1:${port}/postgres"
    pg_check || svc_die "PostgreSQL started but does not answer queries"
    svc_log "PostgreSQL ${PG_SERVER_VERSION:-} started at ${TEST_DATABASE_URL} (data in ${dir}/data, $(svc_elapsed "$started")s)"
}

pg_stop() {
    [[ -n "$PG_STARTED_DIR" ]] || return 0
    local dir=$PG_STARTED_DIR
    PG_STARTED_DIR=""
    [[ -f "$dir/data/postmaster.pid" ]] || return 0
    local pid
    pid=$(head -n 1 "$dir/data/postmaster.pid" 2>/dev/null || true)
    if ! (cd "$dir" && pg_as_owner "$PG_BIN_DIR/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop) \
        >>"$dir/pg_ctl.log" 2>&1; then
        svc_log "pg_ctl stop failed; killing the postmaster"
        if [[ -n "$pid" ]]; then
            svc_stop_pid "$pid" 5
        fi
    fi
}
