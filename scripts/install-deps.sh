#!/usr/bin/env bash
# Installs, when missing, what building and testing need beyond a Rust
# toolchain on a Debian-like machine (with apt-get, as root or through sudo):
#
# - pkg-config and libssl-dev: the default features build the `versile`
#   binary with `rsa-openssl` (VTS's RSA private operation on the system's
#   OpenSSL 3, docs/performance.md "VTS handshakes");
# - python3 with venv: the interop tests create a venv with
#   versile-python3==0.8.5 (from PyPI) under target/ on first use;
# - haproxy: tests/scale_out.rs puts a real HAProxy (send-proxy-v2) in
#   front of two servers;
# - the openssl command: tests/peer_identity.rs generates a 2048-bit RSA
#   key with `openssl genrsa` (faster than generating one in a debug build).
# Called by scripts/test.sh and .ci/run.
set -euo pipefail

apt_install() {
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || {
            echo "scripts/install-deps.sh: need root or sudo to install: $*" >&2
            exit 1
        }
        sudo=(sudo)
    fi
    echo "scripts/install-deps.sh: installing $* (apt-get)"
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "$@"
}

if ! command -v pkg-config >/dev/null 2>&1 || ! pkg-config --exists openssl; then
    apt_install pkg-config libssl-dev
fi
if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    apt_install python3 python3-venv python3-pip
fi
if ! command -v haproxy >/dev/null 2>&1 && ! [ -x /usr/sbin/haproxy ]; then
    apt_install haproxy
fi
if ! command -v openssl >/dev/null 2>&1; then
    apt_install openssl
fi
