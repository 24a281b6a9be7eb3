# shellcheck shell=bash
# The tools of the consumer tests (crates/server/tests/consumers): a Python venv with the pinned
# openapi-python-client and schemathesis, playwright-core from npm, and Debian's Chromium.
# Source this file; do not execute it.
#
#   consumers_ensure   install what is missing (cached under ~/.cache/storage-service, keyed by
#                      the pinned versions, so later runs only check); exports TEST_CONSUMER_*
#
# Every install that fails stops the run with the command that failed: a test that needs a tool
# never skips.

_svc_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/support/common.sh
source "${_svc_dir}/common.sh"

CONSUMERS_SRC=$(cd "${_svc_dir}/../consumers" && pwd)
CONSUMERS_CACHE=${CONSUMERS_CACHE:-"${HOME}/.cache/storage-service"}

# A short hash of the files that pin a tool set: a new pin gets a fresh install.
_consumers_key() {
    cat "$@" | sha256sum | cut -c1-12
}

_consumers_python() {
    local key venv python
    key=$(_consumers_key "${CONSUMERS_SRC}/requirements.txt")
    venv="${CONSUMERS_CACHE}/consumers-py-${key}"
    if [[ ! -x "${venv}/bin/st" || ! -x "${venv}/bin/openapi-python-client" ]]; then
        python=$(command -v python3 || true)
        [[ -n "$python" ]] || svc_die "python3 not found: apt-get install -y python3 python3-venv"
        local started
        started=$(svc_now)
        svc_log "installing the consumer tests' Python tools into ${venv}"
        rm -rf "$venv"
        "$python" -m venv "$venv" >&2 \
            || svc_die "python3 -m venv ${venv} failed (Debian: apt-get install -y python3-venv)"
        "${venv}/bin/pip" install --quiet --disable-pip-version-check \
            -r "${CONSUMERS_SRC}/requirements.txt" >&2 \
            || { rm -rf "$venv"; svc_die "pip install -r tests/consumers/requirements.txt failed"; }
        svc_log "Python tools installed in $(svc_elapsed "$started")s"
    fi
    export TEST_CONSUMER_VENV=$venv
}

_consumers_node() {
    local key dir
    command -v node >/dev/null 2>&1 || svc_die "node not found: apt-get install -y nodejs npm"
    command -v npm >/dev/null 2>&1 || svc_die "npm not found: apt-get install -y npm"
    key=$(_consumers_key "${CONSUMERS_SRC}/package.json" "${CONSUMERS_SRC}/package-lock.json")
    dir="${CONSUMERS_CACHE}/consumers-node-${key}"
    if [[ ! -f "${dir}/node_modules/playwright-core/package.json" ]]; then
        local started
        started=$(svc_now)
        svc_log "installing playwright-core into ${dir}"
        rm -rf "$dir"
        mkdir -p "$dir"
        cp "${CONSUMERS_SRC}/package.json" "${CONSUMERS_SRC}/package-lock.json" "$dir/"
        # playwright-core downloads no browser; --ignore-scripts makes sure nothing else runs.
        (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2) \
            || { rm -rf "$dir"; svc_die "npm ci (playwright-core) failed"; }
        svc_log "playwright-core installed in $(svc_elapsed "$started")s"
    fi
    export TEST_CONSUMER_NODE_MODULES="${dir}/node_modules"
}

_consumers_chromium() {
    if [[ ! -x /usr/bin/chromium ]]; then
        command -v apt-get >/dev/null 2>&1 \
            || svc_die "/usr/bin/chromium is missing and apt-get is not available to install it"
        [[ $(id -u) -eq 0 ]] || svc_die "/usr/bin/chromium is missing: run 'apt-get install -y chromium chromium-driver' as root"
        local started
        started=$(svc_now)
        svc_log "installing Debian's chromium (apt-get)"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || svc_die "apt-get update failed"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >&2 \
            || svc_die "apt-get install -y chromium chromium-driver failed"
        svc_log "chromium installed in $(svc_elapsed "$started")s"
    fi
    export TEST_CONSUMER_CHROMIUM=/usr/bin/chromium
}

consumers_ensure() {
    _consumers_python
    _consumers_node
    _consumers_chromium
    export TEST_CONSUMER_DIR=$CONSUMERS_SRC
}
