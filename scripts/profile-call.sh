#!/usr/bin/env bash
# What one echo call costs, counted rather than timed (docs/performance.md):
# user-space instructions per call (callgrind), heap allocations per call
# (dhat) and syscalls per call (strace), for the raw TCP ping-pong baseline,
# sequential PLAIN echo calls and pipelined calls (64 in flight), all from
# benches/call_profile.rs on a current-thread runtime.
#
# Each figure is the difference between a run of N2 and one of N1 calls,
# divided by N2 - N1, so setup and teardown cancel out.
#
# Usage: scripts/profile-call.sh [payload-bytes]   (default 32)
# Needs valgrind and strace. Then, on a quiet machine, the timed check of
# the issue-8 targets: cargo bench --bench call_profile -- check=1 calls=20000
set -euo pipefail
cd "$(dirname "$0")/.."
payload=${1:-32}
n1=${N1:-1000}
n2=${N2:-3000}
cargo bench --bench call_profile --no-run >/dev/null 2>&1
bin=$(ls -t target/release/deps/call_profile-* | grep -v '\.d$' | head -1)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

instructions() { # mode calls
    valgrind --tool=callgrind --callgrind-out-file="$tmp/cg" "$bin" "$1" calls="$2" payload="$payload" 2>&1 |
        awk '/Collected/ {print $4}'
}
allocations() { # mode calls
    valgrind --tool=dhat --dhat-out-file="$tmp/dh" "$bin" "$1" calls="$2" payload="$payload" 2>&1 |
        awk '/Total:/ {gsub(",", "", $6); print $6}'
}
syscalls() { # mode calls
    strace -f -c -o "$tmp/st" "$bin" "$1" calls="$2" payload="$payload" >/dev/null 2>&1
    awk '$NF == "total" {print $4}' "$tmp/st"
}
per_call() { # function mode
    local a b
    a=$("$1" "$2" "$n1")
    b=$("$1" "$2" "$n2")
    echo "scale=2; ($b - $a) / ($n2 - $n1)" | bc
}

printf '%-22s %14s %12s %10s\n' "payload ${payload} B" "instr/call" "allocs/call" "syscalls/call"
for mode in baseline plain pipelined; do
    printf '%-22s %14s %12s %10s\n' "$mode" \
        "$(per_call instructions $mode)" "$(per_call allocations $mode)" "$(per_call syscalls $mode)"
done
