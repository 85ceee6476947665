#!/usr/bin/env bash
# The README's test command: installs what the tests need on a fresh
# machine, then runs every test of the workspace.
#
# What they need beyond a Rust toolchain (libssl-dev and pkg-config for
# the default features, python3-venv for the interop tests, haproxy for
# tests/scale_out.rs) is installed by scripts/install-deps.sh when missing.
# Tests fail, not skip, when a peer cannot be started, so a missing tool
# is installed there (with apt-get, as root or through sudo) or reported.
# Extra arguments go to `cargo test` (e.g. `scripts/test.sh --test hostile`).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

cargo test --workspace --locked "$@"
