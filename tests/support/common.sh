# shellcheck shell=bash
# Helpers shared by the service scripts under tests/support/.
# Source this file; do not execute it. Works with `set -euo pipefail` callers.

if [[ -n "${_SVC_COMMON_SOURCED:-}" ]]; then
    return 0
fi
_SVC_COMMON_SOURCED=1

# One line on stderr, prefixed so it stands out of cargo's output.
svc_log() {
    printf '[tests] %s\n' "$*" >&2
}

# Print an error and stop the calling script (the EXIT trap then cleans up).
svc_die() {
    printf '[tests] error: %s\n' "$*" >&2
    exit 1
}

# N random bytes as lower-case hex (no openssl needed).
svc_random_hex() {
    od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'
}

# Seconds since the epoch with a fraction, for timings.
svc_now() {
    date +%s.%N
}

# Elapsed seconds since a svc_now value, one decimal.
svc_elapsed() {
    awk -v s="$1" -v e="$(svc_now)" 'BEGIN { printf "%.1f", e - s }'
}

# True when something uses TCP port $1 on this machine (any state).
svc_port_in_use() {
    local port=$1
    if command -v ss >/dev/null 2>&1; then
        [[ -n "$(ss -Htan "( sport = :${port} )" 2>/dev/null)" ]]
        return
    fi
    # Fallback: can we connect to it?
    (exec 3<>"/dev/tcp/127.0.0.1/${port}") 2>/dev/null
}

# Ports handed out by svc_free_port in this shell, so two services never get the same one.
SVC_PORTS_TAKEN=${SVC_PORTS_TAKEN:-}

# Print a free TCP port on 127.0.0.1, below the kernel's ephemeral range
# (32768-60999 by default) so outgoing connections cannot take it meanwhile.
# Call it as `svc_free_port VAR` (not in $(...)) so the reservation sticks.
svc_free_port() {
    # Locals are prefixed so they cannot shadow the caller's variable named in $1.
    local -n _svc_fp_out=$1
    local _svc_fp_try _svc_fp_port
    for _svc_fp_try in $(seq 1 500); do
        _svc_fp_port=$((20000 + RANDOM % 12000))
        case " ${SVC_PORTS_TAKEN} " in
            *" ${_svc_fp_port} "*) continue ;;
        esac
        if ! svc_port_in_use "$_svc_fp_port"; then
            SVC_PORTS_TAKEN="${SVC_PORTS_TAKEN} ${_svc_fp_port}"
            # shellcheck disable=SC2034 # assigned through the nameref
            _svc_fp_out=$_svc_fp_port
            return 0
        fi
    done
    svc_die "no free TCP port found after ${_svc_fp_try} attempts"
}

# svc_wait_until TIMEOUT_SECONDS DESCRIPTION COMMAND...
# Run COMMAND every 0.2 s until it succeeds; fail after TIMEOUT_SECONDS.
svc_wait_until() {
    local timeout=$1 what=$2
    shift 2
    local deadline=$((SECONDS + timeout))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            svc_log "timed out after ${timeout}s waiting for ${what}"
            return 1
        fi
        sleep 0.2
    done
}

# True while process $1 exists (and is not a zombie).
svc_pid_alive() {
    local pid=$1 state
    [[ -r "/proc/${pid}/stat" ]] || return 1
    state=$(awk '{ print $3 }' "/proc/${pid}/stat" 2>/dev/null) || return 1
    [[ -n "$state" && "$state" != "Z" ]]
}

# svc_stop_pid PID [GRACE_SECONDS]: SIGTERM, wait, then SIGKILL.
svc_stop_pid() {
    local pid=$1 grace=${2:-10}
    svc_pid_alive "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    local deadline=$((SECONDS + grace))
    while svc_pid_alive "$pid"; do
        if ((SECONDS >= deadline)); then
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.2
            break
        fi
        sleep 0.1
    done
    # Reap it if it is our child; harmless otherwise.
    wait "$pid" 2>/dev/null || true
}

# Show the end of a log file on stderr (for failures).
svc_show_log() {
    local file=$1
    [[ -f "$file" ]] || return 0
    svc_log "last lines of ${file}:"
    tail -n 40 "$file" >&2 || true
}
