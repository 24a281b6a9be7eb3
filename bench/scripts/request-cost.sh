#!/usr/bin/env bash
# The service's CPU per request: starts the release storage-server (PostgreSQL at
# $PGURL, the local directory as blob store, settings as bench/src/harness.rs sets them), seeds
# one file, then for each scenario sends a fixed number of requests while `perf stat` counts
# the server's task-clock, context switches and system calls. CPU time per request does not
# depend on how fast the client is, so it holds on a shared machine where throughput does not.
#
#   bench/scripts/request-cost.sh [BIN] [REPS]        (env: PGURL, N1, N16, EXTRA_ENV, RECORD)
#
# SCENARIOS (default "metadata lockunlock") may also name presign (upload presigns by one
# user: give EXTRA_ENV=MAX_OPEN_UPLOADS_PER_USER=1000000 or they are refused past the cap)
# and dlpresign (download presigns of the seeded file).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$here/../..
bin=${1:-$root/target/release/storage-server}
reps=${2:-3}
pgurl=${PGURL:-postgres://postgres@127.0.0.1:5432}
n1=${N1:-2000}
n16=${N16:-8000}
db=storage_reqcost_$$
work=$(mktemp -d)
port=$((20000 + $$ % 20000))
trap 'kill $srv 2>/dev/null || true; wait $srv 2>/dev/null || true; psql -q "$pgurl/postgres" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null; rm -rf "$work"' EXIT
psql -q "$pgurl/postgres" -c "CREATE DATABASE $db" >/dev/null
env_vars=(APP_ENV=testing BIND_ADDR=127.0.0.1:$port DATABASE_URL=$pgurl/$db
  JWT_SECRET=bench-secret-0123456789abcdef0123456789abcdef DATA_DIR=$work/data
  DB_POOL_MAX_SIZE=16 LOG_JSON=true RUST_LOG=warn,storage_server=info ${EXTRA_ENV:-})
env -i PATH="$PATH" "${env_vars[@]}" "$bin" migrate 2>/dev/null
env -i PATH="$PATH" "${env_vars[@]}" "$bin" serve >/dev/null 2>"$work/server.log" &
srv=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health/live" >/dev/null && break; sleep 0.1; done
token=$(env -i PATH="$PATH" "${env_vars[@]}" "$bin" token --sub bench)
auth="Authorization: Bearer $token"
curl -sf -H "$auth" -F bucket=users -F path=/users/bench/f.txt -F file=@"$0" \
  "http://127.0.0.1:$port/upload/proxy" >/dev/null
load() { python3 "$here/reqload.py" "127.0.0.1:$port" "$@" -H "$auth"; }
body='{"bucket":"users","path":"/users/bench/f.txt"}'
declare -A spec=(
  [metadata]="GET /metadata?bucket=users&path=/users/bench/f.txt"
  [lockunlock]="POST /lock $body|POST /unlock $body"
  [live]="GET /health/live"
  [presign]="POST /upload/presign {\"bucket\":\"users\",\"path\":\"/users/bench/p.bin\",\"size\":1024}"
  [dlpresign]="POST /download/presign $body"
)
for scenario in ${SCENARIOS-metadata lockunlock}; do
  IFS='|' read -r -a reqs <<<"${spec[$scenario]}"
  for conns in 1 16; do
    n=$n1; [ "$conns" = 16 ] && n=$n16
    [ "$scenario" = lockunlock ] && [ "$conns" = 16 ] && continue  # one file: lock conflicts
    load 500 "$conns" "${reqs[@]}" >/dev/null  # warm-up: connections open, pool filled
    for rep in $(seq "$reps"); do
      perf stat -x, -e task-clock,context-switches,raw_syscalls:sys_enter -p $srv -o "$work/stat" &
      perf_pid=$!
      sleep 0.2
      out=$(load "$n" "$conns" "${reqs[@]}")
      kill -INT $perf_pid; wait $perf_pid || true
      awk -F, -v n="$n" -v s="$scenario" -v c="$conns" -v out="$out" '
        /task-clock/ {cpu=$1} /context-switches/ {cs=$1} /sys_enter/ {sc=$1}
        END {printf "%-10s c=%-2s cpu_us/req=%7.1f cs/req=%5.2f syscalls/req=%5.1f  %s\n",
             s, c, cpu*1000/n, cs/n, sc/n, out}' "$work/stat"
    done
  done
done
if [ -n "${RECORD:-}" ]; then
  IFS='|' read -r -a reqs <<<"${spec[${RECORD_SCENARIO:-metadata}]}"
  perf record -F 2000 ${RECORD_CG:--g} -p $srv -o "$RECORD" 2>/dev/null &
  perf_pid=$!
  sleep 0.3
  load "${RECORD_N:-20000}" "${RECORD_CONNS:-16}" "${reqs[@]}"
  kill -INT $perf_pid; wait $perf_pid || true
fi
