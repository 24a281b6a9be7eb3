# shellcheck shell=bash
# Installs the command-line tools the check scripts need (deploy/check.sh,
# docs/check-commands.sh), or names what is missing. Source it, call the
# tools_need_* functions, then tools_require: it installs nothing itself, and
# fails naming every tool still missing. Nothing is ever skipped.
#
#   tools_need_apt shellcheck shellcheck      # command, Debian package
#   tools_need_pip yamllint yamllint==1.38.0  # command, pip requirement (own venv)
#   tools_need_npm dclint dclint@3.1.0        # command, npm package (own prefix)
#   tools_require                             # installs, then dies naming what is missing
#
# Debian packages are installed with apt-get when running as root (CI and the
# development machines run as root); PyPI and npm packages go into
# $TOOLS_DIR (default ~/.cache/storage-service/tools: a venv and an npm
# prefix), pinned, never into the system. TOOLS_INSTALL=0 forbids installing.

_tools_dir_self=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/support/common.sh
source "${_tools_dir_self}/common.sh"

TOOLS_DIR=${TOOLS_DIR:-${HOME}/.cache/storage-service/tools}
TOOLS_VENV="${TOOLS_DIR}/venv"
TOOLS_NPM="${TOOLS_DIR}/npm"
# The venv's and the npm prefix's commands come first.
export PATH="${TOOLS_VENV}/bin:${TOOLS_NPM}/node_modules/.bin:${PATH}"

_tools_apt=()     # "command package"
_tools_pip=()     # "command requirement"
_tools_npm=()     # "command package@version"

tools_need_apt() { _tools_apt+=("$1 $2"); }
tools_need_pip() { _tools_pip+=("$1 $2"); }
tools_need_npm() { _tools_npm+=("$1 $2"); }

_tools_have() { command -v "$1" >/dev/null 2>&1; }

# True when the venv holds exactly this requirement (name==version).
_tools_pip_has() {
    [[ -x "${TOOLS_VENV}/bin/python" ]] || return 1
    local name=${1%%==*} version=${1#*==}
    [[ "$("${TOOLS_VENV}/bin/python" -m pip show "$name" 2>/dev/null | awk '/^Version:/ { print $2 }')" == "$version" ]]
}

# True when the npm prefix holds exactly this package@version.
_tools_npm_has() {
    local name=${1%@*} version=${1##*@}
    local manifest="${TOOLS_NPM}/node_modules/${name}/package.json"
    [[ -r "$manifest" ]] && grep -q "\"version\": *\"${version}\"" "$manifest"
}

tools_require() {
    local install=${TOOLS_INSTALL:-1} entry cmd what missing=() apt_pkgs=() pip_reqs=() npm_pkgs=()
    for entry in "${_tools_apt[@]}"; do
        read -r cmd what <<<"$entry"
        _tools_have "$cmd" || apt_pkgs+=("$what")
    done
    for entry in "${_tools_pip[@]}"; do
        read -r cmd what <<<"$entry"
        _tools_pip_has "$what" || pip_reqs+=("$what")
    done
    for entry in "${_tools_npm[@]}"; do
        read -r cmd what <<<"$entry"
        _tools_npm_has "$what" || npm_pkgs+=("$what")
    done

    if [[ "$install" == 1 ]]; then
        if ((${#apt_pkgs[@]})); then
            if [[ $(id -u) == 0 ]] && _tools_have apt-get; then
                svc_log "installing ${apt_pkgs[*]} (apt-get)"
                # The package lists may be missing or old on a fresh machine.
                apt-get update -qq >/dev/null 2>&1 || true
                DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                    "${apt_pkgs[@]}" >/dev/null 2>&1 ||
                    svc_log "apt-get install ${apt_pkgs[*]} failed"
            else
                svc_log "not root (or no apt-get): cannot install ${apt_pkgs[*]}"
            fi
        fi
        if ((${#pip_reqs[@]})); then
            svc_log "installing ${pip_reqs[*]} (pip, into ${TOOLS_VENV})"
            if [[ -x "${TOOLS_VENV}/bin/python" ]] || python3 -m venv "$TOOLS_VENV" >/dev/null 2>&1; then
                "${TOOLS_VENV}/bin/python" -m pip install -q --disable-pip-version-check \
                    "${pip_reqs[@]}" >/dev/null 2>&1 || svc_log "pip install ${pip_reqs[*]} failed"
            else
                svc_log "python3 -m venv ${TOOLS_VENV} failed"
            fi
        fi
        if ((${#npm_pkgs[@]})); then
            svc_log "installing ${npm_pkgs[*]} (npm, into ${TOOLS_NPM})"
            if _tools_have npm; then
                mkdir -p "$TOOLS_NPM"
                npm install --prefix "$TOOLS_NPM" --no-audit --no-fund --loglevel=error \
                    "${npm_pkgs[@]}" >/dev/null 2>&1 || svc_log "npm install ${npm_pkgs[*]} failed"
            else
                svc_log "npm is not installed"
            fi
        fi
        hash -r
    fi

    for entry in "${_tools_apt[@]}"; do
        read -r cmd what <<<"$entry"
        _tools_have "$cmd" || missing+=("${cmd} (Debian package ${what})")
    done
    for entry in "${_tools_pip[@]}"; do
        read -r cmd what <<<"$entry"
        { _tools_pip_has "$what" && _tools_have "$cmd"; } || missing+=("${cmd} (pip ${what})")
    done
    for entry in "${_tools_npm[@]}"; do
        read -r cmd what <<<"$entry"
        { _tools_npm_has "$what" && _tools_have "$cmd"; } || missing+=("${cmd} (npm ${what})")
    done
    if ((${#missing[@]})); then
        svc_die "missing, and not installed: ${missing[*]}"
    fi
}
