#!/usr/bin/env bash
# The README's test command: installs what the tests need on a fresh
# machine, then runs every test of the workspace.
#
# - python3 with venv: the interop tests create a venv with
#   versile-python3==0.8.5 (from PyPI) under target/ on first use;
# - haproxy: tests/scale_out.rs puts a real HAProxy (send-proxy-v2) in
#   front of two servers.
# Tests fail, not skip, when a peer cannot be started, so a missing tool
# is installed here (with apt-get, as root or through sudo) or reported.
# Extra arguments go to `cargo test` (e.g. `scripts/test.sh --test hostile`).
set -euo pipefail
cd "$(dirname "$0")/.."

apt_install() {
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || {
            echo "scripts/test.sh: need root or sudo to install: $*" >&2
            exit 1
        }
        sudo=(sudo)
    fi
    echo "scripts/test.sh: installing $* (apt-get)"
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "$@"
}

if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    apt_install python3 python3-venv python3-pip
fi
if ! command -v haproxy >/dev/null 2>&1 && ! [ -x /usr/sbin/haproxy ]; then
    apt_install haproxy
fi

cargo test --workspace --locked "$@"
