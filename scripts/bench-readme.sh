#!/usr/bin/env bash
# Reproduces the README's benchmark tables (issue #8): every CPU placement,
# each against a raw TCP ping-pong baseline measured under the same
# placement, and prints the tables as markdown with the CPU model and date.
#
#   in one process (`versile bench`):
#     one runtime, unpinned        versile bench
#     one runtime, CPU 0           taskset -c 0   versile bench
#     --split, CPU 0               taskset -c 0   versile bench --split
#     --split, CPUs 0,1            taskset -c 0,1 versile bench --split
#   in two processes (`versile serve --insecure --threads 1` and
#   `versile bench --insecure --server-pid PID vop://ADDR/echo`, against
#   `versile bench --baseline-server` / `--baseline-connect`):
#     both on CPU 0                taskset -c 0 for server and client
#     server CPU 0, client CPU 1   taskset -c 0 / taskset -c 1
#   1 MiB echo: one runtime unpinned (versile bench --payload 1048576), and
#     two processes on CPUs 0 and 1 with its two-process baseline
#   idle links: server RSS per established idle PLAIN and VTS link
#     (`cargo bench --bench idle_links`, IDLE_LINKS links each)
#
# Needs a machine with at least 2 CPUs, `taskset` (util-linux) and python3
# (for the tables). Release build. About 3 minutes after the build.
# Environment: ITERATIONS (20000), WARMUP (2000), DURATION (3 s, the
# pipelined phases), HANDSHAKES (200), IDLE_LINKS (15000 per transport;
# 0 skips the idle links; needs `ulimit -n` above it, raised here to
# 20000 if the hard limit allows; 15,000 VTS links take 1–2 minutes of
# RSA on 2 CPUs), OUT (a directory for the raw JSON;
# default: a temporary one, removed at the end), VERSILE (a versile binary
# to use instead of building target/release/versile).
set -euo pipefail
cd "$(dirname "$0")/.."

ITERATIONS=${ITERATIONS:-20000}
WARMUP=${WARMUP:-2000}
DURATION=${DURATION:-3}
HANDSHAKES=${HANDSHAKES:-200}
IDLE_LINKS=${IDLE_LINKS:-15000}

if [ -n "${VERSILE:-}" ]; then
    BIN=$VERSILE
else
    cargo build --release --locked --bin versile >&2
    BIN=$PWD/target/release/versile
fi

if [ -n "${OUT:-}" ]; then
    mkdir -p "$OUT"
    KEEP_OUT=1
else
    OUT=$(mktemp -d)
    KEEP_OUT=0
fi
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    [ "$KEEP_OUT" = 1 ] || rm -rf "$OUT"
}
trap cleanup EXIT

# start NAME PREFIX CMD...: start CMD in the background with stdout to
# $OUT/NAME.out, wait (30 s at most) for a line starting with PREFIX and
# set ADDR to the rest of it (without a trailing slash), PID to its pid.
start() {
    local name=$1 prefix=$2
    shift 2
    "$@" >"$OUT/$name.out" 2>"$OUT/$name.err" &
    PID=$!
    PIDS+=("$PID")
    for _ in $(seq 300); do
        ADDR=$(sed -n "s#^$prefix##p" "$OUT/$name.out" | head -1)
        if [ -n "$ADDR" ]; then
            ADDR=${ADDR%/}
            return 0
        fi
        if ! kill -0 "$PID" 2>/dev/null; then break; fi
        sleep 0.1
    done
    echo "bench-readme: $name did not start:" >&2
    cat "$OUT/$name.err" >&2
    exit 1
}

# stop PID: SIGTERM and wait.
stop() {
    kill -TERM "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

seq_args=(--iterations "$ITERATIONS" --warmup "$WARMUP")
echo "in one process: one runtime, unpinned" >&2
"$BIN" bench --json "${seq_args[@]}" --duration "$DURATION" --handshakes "$HANDSHAKES" >"$OUT/one.json"
echo "in one process: one runtime, CPU 0" >&2
taskset -c 0 "$BIN" bench --json "${seq_args[@]}" --duration "$DURATION" --handshakes "$HANDSHAKES" >"$OUT/one-0.json"
echo "in one process: --split, CPU 0" >&2
taskset -c 0 "$BIN" bench --json --split "${seq_args[@]}" --duration "$DURATION" --handshakes "$HANDSHAKES" >"$OUT/split-0.json"
echo "in one process: --split, CPUs 0,1" >&2
taskset -c 0,1 "$BIN" bench --json --split "${seq_args[@]}" --duration "$DURATION" --handshakes "$HANDSHAKES" >"$OUT/split-01.json"

# two_process NAME SERVER_CPU CLIENT_CPU [PAYLOAD]
two_process() {
    local name=$1 scpu=$2 ccpu=$3 payload=${4:-32}
    local iters=$ITERATIONS warm=$WARMUP dur=$DURATION
    if [ "$payload" -gt 65536 ]; then iters=200 warm=20 dur=0; fi
    start "$name-serve" "listening on vop://" \
        taskset -c "$scpu" "$BIN" serve --insecure --threads 1 --listen 127.0.0.1:0
    taskset -c "$ccpu" "$BIN" bench --json --insecure --threads 1 --server-pid "$PID" \
        --payload "$payload" --iterations "$iters" --warmup "$warm" --duration "$dur" \
        "vop://$ADDR/echo" >"$OUT/$name.json"
    stop "$PID"
    start "$name-baseline-server" "listening on tcp://" \
        taskset -c "$scpu" "$BIN" bench --baseline-server 127.0.0.1:0 --threads 1
    taskset -c "$ccpu" "$BIN" bench --json --threads 1 --server-pid "$PID" \
        --payload "$payload" --iterations "$iters" --warmup "$warm" \
        --baseline-connect "$ADDR" >"$OUT/$name-baseline.json"
    stop "$PID"
}
echo "two processes: both on CPU 0" >&2
two_process two-0 0 0
echo "two processes: server CPU 0, client CPU 1" >&2
two_process two-01 0 1

echo "1 MiB echo: one runtime, unpinned and on CPU 0; two processes on CPU 0, and on CPUs 0 and 1" >&2
"$BIN" bench --json --payload 1048576 --iterations 200 --warmup 20 --duration 1 --in-flight 8 \
    --handshakes 1 >"$OUT/mib.json"
# On one CPU the echo's cipher work cannot overlap between the two ends,
# as in the floor it is compared with (one thread).
taskset -c 0 "$BIN" bench --json --payload 1048576 --iterations 200 --warmup 20 --duration 1 \
    --in-flight 8 --handshakes 1 >"$OUT/mib-0.json"
two_process mib-two-0 0 0 1048576
two_process mib-two-01 0 1 1048576

MODEL=$(grep -m1 'model name' /proc/cpuinfo | sed 's/^model name[[:space:]]*:[[:space:]]*//')
python3 - "$OUT" "$MODEL" "$(date -u +%Y-%m-%d)" "$(nproc)" "$ITERATIONS" "$WARMUP" <<'EOF'
import json, sys
out, model, date, ncpu, iters, warm = sys.argv[1:]
def load(name):
    with open(f"{out}/{name}.json") as f:
        return json.loads(f.readline())
def r(x, d=1):
    return "-" if x is None else f"{x:,.{d}f}"
def ratio(a, b):
    return "-" if not a or not b else f"**{a / b:.2f}×**"

one = [("one runtime, unpinned", "one"), ("one runtime, `0`", "one-0"),
       ("`--split`, `0`", "split-0"), ("`--split`, `0,1`", "split-01")]
two = [("two processes, `0`", "two-0"), ("two processes, `0` \\| `1`", "two-01")]

print(f"Measured on {model} ({ncpu} CPUs), {date}, release build, 32-byte payload, "
      f"{int(iters):,} round trips after {int(warm):,} warm-up "
      f"(`bash scripts/bench-readme.sh`).\n")
print("| placement | baseline p50 / p99 µs | PLAIN p50 / p99 µs | PLAIN ÷ baseline | "
      "VTS p50 / p99 µs | VTS ÷ baseline | CPU µs/call baseline / PLAIN / VTS |")
print("|---|---|---|---|---|---|---|")
for label, name in one:
    j = load(name)
    print(f"| {label} | {r(j['baseline_rtt_us_p50'])} / {r(j['baseline_rtt_us_p99'])} "
          f"| {r(j['plain_rtt_us_p50'])} / {r(j['plain_rtt_us_p99'])} "
          f"| {ratio(j['plain_rtt_us_p50'], j['baseline_rtt_us_p50'])} "
          f"| {r(j['vts_rtt_us_p50'])} / {r(j['vts_rtt_us_p99'])} "
          f"| {ratio(j['vts_rtt_us_p50'], j['baseline_rtt_us_p50'])} "
          f"| {r(j['baseline_cpu_us_per_call'])} / {r(j['plain_cpu_us_per_call'])} "
          f"/ {r(j['vts_cpu_us_per_call'])} |")
def both_cpu(phase):
    c, s = phase["client_cpu_us_per_call"], phase["server_cpu_us_per_call"]
    return None if s is None else c + s
for label, name in two:
    b = load(f"{name}-baseline")["sequential"]
    p = load(name)["sequential"]
    print(f"| {label} | {r(b['latency_us']['p50'])} / {r(b['latency_us']['p99'])} "
          f"| {r(p['latency_us']['p50'])} / {r(p['latency_us']['p99'])} "
          f"| {ratio(p['latency_us']['p50'], b['latency_us']['p50'])} | - | - "
          f"| {r(both_cpu(b))} / {r(both_cpu(p))} / - |")

print()
print("| placement | PLAIN pipelined (64 in flight) | VTS pipelined | "
      "VTS connections/s | TLS connections/s |")
print("|---|---|---|---|---|")
for label, name in one:
    j = load(name)
    print(f"| {label} | {r(j['plain_pipelined_calls_per_s'], 0)} calls/s "
          f"({r(j['plain_pipelined_cpu_us_per_call'])} µs CPU/call) "
          f"| {r(j['vts_pipelined_calls_per_s'], 0)} calls/s "
          f"({r(j['vts_pipelined_cpu_us_per_call'])} µs CPU/call) "
          f"| {r(j['vts_handshakes_per_s'], 0)} | {r(j['tls_handshakes_per_s'], 0)} |")
for label, name in two:
    c = load(name)["concurrent"]
    print(f"| {label} | {r(c['calls_per_s'], 0)} calls/s "
          f"({r(both_cpu(c))} µs CPU/call) | - | - | - |")

print()
print("| 1 MiB echo | baseline p50 µs | PLAIN p50 µs | PLAIN ÷ baseline | VTS p50 µs | VTS cipher+MAC floor µs | VTS ÷ floor |")
print("|---|---|---|---|---|---|---|")
for label, name in [("one runtime, unpinned", "mib"), ("one runtime, `0`", "mib-0")]:
    j = load(name)
    print(f"| {label} | {r(j['baseline_rtt_us_p50'], 0)} "
          f"| {r(j['plain_rtt_us_p50'], 0)} "
          f"| {ratio(j['plain_rtt_us_p50'], j['baseline_rtt_us_p50'])} "
          f"| {r(j['vts_rtt_us_p50'], 0)} | {r(j['vts_crypto_floor_us'], 0)} "
          f"| {ratio(j['vts_rtt_us_p50'], j['vts_crypto_floor_us'])} |")
for label, name in [("two processes, `0`", "mib-two-0"), ("two processes, `0` \\| `1`", "mib-two-01")]:
    b = load(name + "-baseline")["sequential"]["latency_us"]["p50"]
    p = load(name)["sequential"]["latency_us"]["p50"]
    print(f"| {label} | {r(b, 0)} | {r(p, 0)} | {ratio(p, b)} | - | - | - |")
EOF

if [ "$IDLE_LINKS" != 0 ]; then
    echo "idle links: $IDLE_LINKS PLAIN and $IDLE_LINKS VTS links against versile serve" >&2
    ulimit -n 20000 2>/dev/null || true
    echo
    echo "Idle links, server RSS per established link ($IDLE_LINKS links per transport, \`cargo bench --bench idle_links\`):"
    echo
    cargo bench --locked --bench idle_links -- --bin "$BIN" \
        --plain "$IDLE_LINKS" --vts "$IDLE_LINKS" | grep '^|'
fi
