#!/usr/bin/env bash
# Runs the curl sessions of docs/api.md against a freshly started stack and checks that every
# command answers what the page shows.
#
#   docs/check-commands.sh            # check (exit 1 on the first difference, with a diff)
#   docs/check-commands.sh --update   # write the real outputs into docs/api.md
#   docs/check-commands.sh --serve    # start the stack, print how to reach it, wait for Ctrl-C
#
# The stack: PostgreSQL and Garage (S3) from tests/support/services.sh, `storage-server migrate`
# then `storage-server serve` with APP_ENV=production (so the production checks run), and the
# project-service stand-in with deploy/project-rules.json. Everything is stopped and removed on
# exit. Needs what tests/run.sh needs, plus curl, jq, psql and python3 (installed with apt-get
# when missing and running as root: tests/support/tools.sh).
#
# Every ```sh block of docs/api.md runs, in order, in one bash shell (variables carry over) in
# an empty working directory. A ```json or ```text block right after a ```sh block is that
# command's expected output (stdout and stderr). Before comparing, both sides are normalised:
# UUIDs, times, tokens, cursors, presign signatures and port numbers vary from run to run.
# Everything else (statuses, codes, version numbers, sizes, SHA-256 sums, field names) must
# match exactly.
set -euo pipefail

mode=check
case "${1:-}" in
    "") ;;
    --update) mode=update ;;
    --serve) mode=serve ;;
    -h | --help)
        sed -n '2,20p' "$0"
        exit 0
        ;;
    *)
        echo "usage: $0 [--update|--serve]" >&2
        exit 2
        ;;
esac

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
doc=docs/api.md

# The tools the sessions use: installed when missing (as root, with apt-get), else named.
# shellcheck source=tests/support/tools.sh
source tests/support/tools.sh
tools_need_apt curl curl
tools_need_apt jq jq
tools_need_apt psql postgresql-client
tools_need_apt python3 python3
tools_require

log() { printf '[docs] %s\n' "$*" >&2; }

started=$(date +%s)
log "building storage-server and project-standin (release, as deploy/Dockerfile does)"
cargo build -q --release --locked -p storage-server -p storage-test-support \
    --bin storage-server --bin project-standin
target_dir="${CARGO_TARGET_DIR:-$root/target}"
[[ $target_dir = /* ]] || target_dir="$root/$target_dir"
# A copy, taken at once: a target directory shared with other checkouts may be rebuilt meanwhile.
bin_dir=$(mktemp -d "${TMPDIR:-/tmp}/storage-docs-bin.XXXXXX")
cp "$target_dir/release/storage-server" "$target_dir/release/project-standin" "$bin_dir/"

# shellcheck source=tests/support/services.sh
source tests/support/services.sh

work=""
server_pid=""
standin_pid=""
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    local pid
    for pid in "$server_pid" "$standin_pid"; do
        [[ -z $pid ]] && continue
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    [[ -z $work ]] || rm -rf "$work"
    rm -rf "$bin_dir"
    services_stop
}
services_start
trap cleanup EXIT
work=$(mktemp -d "${TMPDIR:-/tmp}/storage-docs.XXXXXX")

svc_free_port api_port
svc_free_port standin_port
db_url="${TEST_DATABASE_URL%/*}/storage_docs"
psql -q "$TEST_DATABASE_URL" -c 'CREATE DATABASE storage_docs' >/dev/null

jwt_secret=$(svc_random_hex 32)
s3_port=${TEST_S3_ENDPOINT##*:}
server_env=(
    APP_ENV=production
    LOG_JSON=true
    BIND_ADDR="127.0.0.1:${api_port}"
    DATABASE_URL="$db_url"
    MINIO_ENDPOINT="${TEST_S3_ENDPOINT#http://}"
    MINIO_REGION="$TEST_S3_REGION"
    MINIO_ACCESS_KEY="$TEST_S3_ACCESS_KEY"
    MINIO_SECRET_KEY="$TEST_S3_SECRET_KEY"
    MINIO_BUCKET_USERS="$TEST_S3_BUCKET_USERS"
    MINIO_BUCKET_COMPANIES="$TEST_S3_BUCKET_COMPANIES"
    MINIO_BUCKET_PROJECTS="$TEST_S3_BUCKET_PROJECTS"
    MINIO_CREATE_BUCKETS=false
    JWT_SECRET="$jwt_secret"
    AUDIT_KEY="$(head -c 32 /dev/urandom | base64)"
    PROJECT_SERVICE_URL="http://127.0.0.1:${standin_port}"
)

"$bin_dir/project-standin" --bind "127.0.0.1:${standin_port}" \
    --rules deploy/project-rules.json >"$work/standin.log" 2>&1 &
standin_pid=$!

(cd "$work" && env "${server_env[@]}" "$bin_dir/storage-server" migrate) >"$work/migrate.log" 2>&1 || {
    cat "$work/migrate.log" >&2
    exit 1
}
migrations=$(find migrations -mindepth 1 -maxdepth 1 -type d | wc -l)
applied=$(grep -c '"message":"applied"' "$work/migrate.log" || true)
if ((applied != migrations)); then
    log "error: migrate applied ${applied} migrations, but migrations/ has ${migrations}: the binary"
    log "is not this checkout's (a target directory shared with another checkout?). Use a"
    log "target directory of this checkout's own (CARGO_TARGET_DIR)."
    exit 1
fi
(cd "$work" && exec env "${server_env[@]}" "$bin_dir/storage-server" serve) >"$work/server.log" 2>&1 &
server_pid=$!

api="http://127.0.0.1:${api_port}"
for _ in $(seq 1 100); do
    if curl -fsS -o /dev/null "$api/health" 2>/dev/null; then
        break
    fi
    if ! kill -0 "$server_pid" 2>/dev/null; then
        cat "$work/server.log" >&2
        exit 1
    fi
    sleep 0.1
done
curl -fsS -o /dev/null "$api/health" || {
    cat "$work/server.log" >&2
    exit 1
}
log "storage-server at ${api} (APP_ENV=production), stand-in at http://127.0.0.1:${standin_port}, ready in $(($(date +%s) - started))s"

if [[ $mode = serve ]]; then
    cat >&2 <<EOF
[docs] In another shell:
  export PATH="${bin_dir}:\$PATH" API=${api} JWT_SECRET=${jwt_secret}
  ALICE=\$(storage-server token --sub alice)
  curl -s -H "Authorization: Bearer \$ALICE" "\$API/list?bucket=users&path=/users/alice/" | jq .
[docs] server log: ${work}/server.log; Ctrl-C stops everything.
EOF
    while kill -0 "$server_pid" 2>/dev/null; do sleep 1; done
    exit 1
fi

# The shell the page's commands run in: the page's variables, the binaries on PATH, the same
# JWT secret as the server (for `storage-server token`), no APP_ENV (tokens are not minted in
# production), and an empty working directory.
mkdir "$work/cwd"
python3 docs/check_commands.py extract "$doc" "$work/blocks.json" "$work/session.sh"
(
    cd "$work/cwd"
    env -i HOME="$work/cwd" PATH="${bin_dir}:/usr/local/bin:/usr/bin:/bin" \
        API="$api" JWT_SECRET="$jwt_secret" LANG=C.UTF-8 \
        bash --noprofile --norc "$work/session.sh" >"$work/session.out" 2>&1
) || true
status=0
python3 docs/check_commands.py compare "$doc" "$work/blocks.json" "$work/session.out" \
    --mode "$mode" --api-port "$api_port" --s3-port "$s3_port" || status=$?
log "server log kept for this run only: $(grep -c '' "$work/server.log") lines; total $(($(date +%s) - started))s"
exit "$status"
