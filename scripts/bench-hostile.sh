#!/usr/bin/env bash
# Reproduces the hostile-peer figures of SECURITY.md and the README
# (issue #7): server memory under hostile entities, and good VTS handshakes
# under a flood of bogus ones. Both start `versile serve` (release) as a
# child process and print a table; `--json` adds a JSON object.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -m1 'model name' /proc/cpuinfo || true
echo "CPUs: $(nproc)"
cargo build --release --locked --bin versile
cargo bench --locked --bench hostile_memory -- "$@"
cargo bench --locked --bench vts_flood -- "$@"
