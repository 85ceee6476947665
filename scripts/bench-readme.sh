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
#   slow calls' timing: scripts/tail-timeline.py on the two-process CPU 0
#     runs' --latency-log (pass 1), the periods the slow calls keep
#   hiccups: how often the machine takes CPU 0 and CPU 1 away from a
#     spinning thread (`versile bench --hiccups`, HICCUP_SECONDS each), the
#     floor under the tails; the first table's last column estimates from
#     it the share of PLAIN calls that meet one
#
# Needs a machine with at least 2 CPUs, `taskset` (util-linux) and python3
# (for the tables). Release build. About 5 minutes after the build (RUNS=3).
# Every placement is measured RUNS times (3), in RUNS passes over all of
# them (so that a slow minute of the VM does not hit one placement only);
# each figure printed is the median of its runs, and each ratio the median
# of the per-run ratios (each run against its own baseline), with the
# lowest and highest in brackets.
#
# In one process, the baseline and PLAIN sequential phases alternate in
# ROUNDS rounds (`versile bench --rounds`), each on new connections, so
# that neither runs alone in a cold process or on one unlucky connection.
# In two processes, each run takes its calls from PAIRS fresh server and
# client pairs (ours and the baseline alternating), merged by
# scripts/merge-pairs.py: a pair keeps one latency mode for its whole run
# on these VMs, and one pair's mode would be the run's figure.
#
# Environment: RUNS (3), ROUNDS (10), PAIRS (3), ITERATIONS (20000), WARMUP (2000), DURATION (3 s, the
# pipelined phases), HANDSHAKES (200), IDLE_LINKS (15000 per transport;
# 0 skips the idle links; HICCUP_SECONDS (2) per CPU per pass; needs `ulimit -n` above it, raised here to
# 20000 if the hard limit allows; 15,000 VTS links take 1–2 minutes of
# RSA on 2 CPUs), OUT (a directory for the raw JSON;
# default: a temporary one, removed at the end), VERSILE (a versile binary
# to use instead of building target/release/versile).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
ROUNDS=${ROUNDS:-10}
PAIRS=${PAIRS:-3}
ITERATIONS=${ITERATIONS:-20000}
WARMUP=${WARMUP:-2000}
DURATION=${DURATION:-3}
HANDSHAKES=${HANDSHAKES:-200}
IDLE_LINKS=${IDLE_LINKS:-15000}
HICCUP_SECONDS=${HICCUP_SECONDS:-2}

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

seq_args=(--iterations "$ITERATIONS" --warmup "$WARMUP" --rounds "$ROUNDS")

# two_process NAME SERVER_CPU CLIENT_CPU [PAYLOAD]: writes NAME.$K.json
# and NAME-baseline.$K.json, each merged from PAIRS fresh server and
# client processes sharing the run's calls (scripts/merge-pairs.py): a
# pair keeps one latency mode for its whole run on these VMs. Ours first
# in odd pairs of odd passes (and so on), so that neither always runs on
# the machine the other left. Only the first pair of ours runs the
# pipelined phase.
two_process() {
    local name=$1 scpu=$2 ccpu=$3 payload=${4:-32}
    local iters=$ITERATIONS warm=$WARMUP dur=$DURATION
    if [ "$payload" -gt 65536 ]; then iters=200 warm=20 dur=0; fi
    iters=$(((iters + PAIRS - 1) / PAIRS))
    local P
    for P in $(seq "$PAIRS"); do
        if [ $(((K + P) % 2)) -eq 0 ]; then
            two_process_ours
            two_process_baseline
        else
            two_process_baseline
            two_process_ours
        fi
        dur=0
    done
    python3 scripts/merge-pairs.py "$OUT/$name.$K" "$PAIRS"
    python3 scripts/merge-pairs.py "$OUT/$name-baseline.$K" "$PAIRS"
}

# The two halves of one pair of two_process (they read its locals).
two_process_ours() {
    start "$name-serve" "listening on vop://" \
        taskset -c "$scpu" "$BIN" serve --insecure --threads 1 --listen 127.0.0.1:0
    taskset -c "$ccpu" "$BIN" bench --json --insecure --threads 1 --server-pid "$PID" \
        --payload "$payload" --iterations "$iters" --warmup "$warm" --duration "$dur" \
        --latency-log "$OUT/$name.$K.p$P.calls" "vop://$ADDR/echo" >"$OUT/$name.$K.p$P.json"
    stop "$PID"
}

two_process_baseline() {
    start "$name-baseline-server" "listening on tcp://" \
        taskset -c "$scpu" "$BIN" bench --baseline-server 127.0.0.1:0 --threads 1
    taskset -c "$ccpu" "$BIN" bench --json --threads 1 --server-pid "$PID" \
        --payload "$payload" --iterations "$iters" --warmup "$warm" \
        --latency-log "$OUT/$name-baseline.$K.p$P.calls" \
        --baseline-connect "$ADDR" >"$OUT/$name-baseline.$K.p$P.json"
    stop "$PID"
}

for K in $(seq "$RUNS"); do
    echo "pass $K of $RUNS" >&2
    echo "in one process: one runtime, unpinned" >&2
    "$BIN" bench --json "${seq_args[@]}" --duration "$DURATION" --handshakes "$HANDSHAKES" >"$OUT/one.$K.json"
    echo "in one process: one runtime, CPU 0" >&2
    taskset -c 0 "$BIN" bench --json "${seq_args[@]}" --duration "$DURATION" --handshakes "$HANDSHAKES" >"$OUT/one-0.$K.json"
    echo "in one process: --split, CPU 0" >&2
    taskset -c 0 "$BIN" bench --json --split "${seq_args[@]}" --duration "$DURATION" --handshakes "$HANDSHAKES" >"$OUT/split-0.$K.json"
    echo "in one process: --split, CPUs 0,1" >&2
    taskset -c 0,1 "$BIN" bench --json --split "${seq_args[@]}" --duration "$DURATION" --handshakes "$HANDSHAKES" >"$OUT/split-01.$K.json"
    echo "two processes: both on CPU 0" >&2
    two_process two-0 0 0
    echo "two processes: server CPU 0, client CPU 1" >&2
    two_process two-01 0 1

    echo "1 MiB echo: one runtime, unpinned and on CPU 0; two processes on CPU 0, and on CPUs 0 and 1" >&2
    "$BIN" bench --json --payload 1048576 --iterations 200 --warmup 20 --rounds "$ROUNDS" --duration 1 --in-flight 8 \
        --handshakes 1 >"$OUT/mib.$K.json"
    # On one CPU the echo's cipher work cannot overlap between the two ends,
    # as in the floor it is compared with (one thread).
    taskset -c 0 "$BIN" bench --json --payload 1048576 --iterations 200 --warmup 20 --rounds "$ROUNDS" --duration 1 \
        --in-flight 8 --handshakes 1 >"$OUT/mib-0.$K.json"
    two_process mib-two-0 0 0 1048576
    two_process mib-two-01 0 1 1048576

    echo "hiccups: a thread spinning on CPU 0, then on CPU 1" >&2
    taskset -c 0 "$BIN" bench --hiccups --duration "$HICCUP_SECONDS" --json >"$OUT/hiccups-0.$K.json"
    taskset -c 1 "$BIN" bench --hiccups --duration "$HICCUP_SECONDS" --json >"$OUT/hiccups-1.$K.json"
done

MODEL=$(grep -m1 'model name' /proc/cpuinfo | sed 's/^model name[[:space:]]*:[[:space:]]*//')
# Large transfers depend on it (BBR's pacing, docs/performance.md, "Ninth round").
CONGESTION=$(cat /proc/sys/net/ipv4/tcp_congestion_control 2>/dev/null || echo unknown)
python3 - "$OUT" "$MODEL" "$(date -u +%Y-%m-%d)" "$(nproc)" "$ITERATIONS" "$WARMUP" "$RUNS" "$ROUNDS" "$CONGESTION" <<'EOF'
import json, sys
out, model, date, ncpu, iters, warm, nruns, rounds, congestion = sys.argv[1:]
nruns = int(nruns)
def load(name):
    """Every run of one measurement, in pass order."""
    runs = []
    for k in range(1, nruns + 1):
        with open(f"{out}/{name}.{k}.json") as f:
            runs.append(json.loads(f.readline()))
    return runs
def med(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    h = len(xs) // 2
    return xs[h] if len(xs) % 2 else (xs[h - 1] + xs[h]) / 2
def r(xs, d=1):
    """The median of the runs' values."""
    x = med(xs)
    return "-" if x is None else f"{x:,.{d}f}"
def ratios(pairs):
    """The per-run ratios a / b, sorted (runs missing a figure left out)."""
    return sorted(a / b for a, b in pairs if a and b)
def ratio(pairs):
    """The median of the per-run ratios a / b, with their range."""
    rs = ratios(pairs)
    if not rs:
        return "-"
    spread = f" ({rs[0]:.2f}–{rs[-1]:.2f})" if len(rs) > 1 else ""
    return f"**{med(rs):.2f}×**{spread}"
def tail(pairs):
    """The median of the per-run ratios a / b, plain: for context."""
    rs = ratios(pairs)
    return "-" if not rs else f"{med(rs):.2f}×"
def col(runs, *path):
    vals = []
    for j in runs:
        for p in path:
            j = None if j is None else j.get(p)
        vals.append(j)
    return vals

one = [("one runtime, unpinned", "one"), ("one runtime, `0`", "one-0"),
       ("`--split`, `0`", "split-0"), ("`--split`, `0,1`", "split-01")]
two = [("two processes, `0`", "two-0"), ("two processes, `0` \\| `1`", "two-01")]
hiccups = {cpu: load(f"hiccups-{cpu}") for cpu in (0, 1)}
rate = {cpu: med(col(js, "gaps_per_s")) for cpu, js in hiccups.items()}
# Where a round trip keeps one CPU busy from end to end (both ends on CPU
# 0; unpinned, one worker runs both), a call meets a hiccup with about the
# probability rate × duration; across two CPUs the ends also sleep, so no
# estimate is printed there.
one_cpu_rate = {"one": (rate[0] + rate[1]) / 2, "one-0": rate[0], "split-0": rate[0],
                "two-0": rate[0]}
def meets(name, p50s):
    x = med(p50s)
    if name not in one_cpu_rate or x is None:
        return "-"
    return f"{one_cpu_rate[name] * x / 1e4:.2f} %"

runs_note = (f"each figure the median of {nruns} runs, each ratio the median of the "
             f"per-run ratios (lowest–highest)" if nruns > 1 else "one run")
print(f"Measured on {model} ({ncpu} CPUs, TCP congestion control `{congestion}`), {date}, "
      f"release build, 32-byte payload, "
      f"{int(iters):,} round trips in {rounds} rounds, each after {int(warm):,} warm-up "
      f"(in one process, baseline and PLAIN rounds alternate); {runs_note} "
      f"(`bash scripts/bench-readme.sh`).\n")
print("| placement | baseline p50 / p99 µs | PLAIN p50 / p99 µs | PLAIN ÷ baseline | "
      "VTS p50 / p99 µs | VTS ÷ baseline | CPU µs/call baseline / PLAIN / VTS | PLAIN CPU ÷ baseline "
      "| PLAIN p99 ÷ p50 | baseline p99 ÷ p50 | PLAIN calls meeting a hiccup (est.) |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for label, name in one:
    js = load(name)
    c = lambda k: col(js, k)
    print(f"| {label} | {r(c('baseline_rtt_us_p50'))} / {r(c('baseline_rtt_us_p99'))} "
          f"| {r(c('plain_rtt_us_p50'))} / {r(c('plain_rtt_us_p99'))} "
          f"| {ratio(zip(c('plain_rtt_us_p50'), c('baseline_rtt_us_p50')))} "
          f"| {r(c('vts_rtt_us_p50'))} / {r(c('vts_rtt_us_p99'))} "
          f"| {ratio(zip(c('vts_rtt_us_p50'), c('baseline_rtt_us_p50')))} "
          f"| {r(c('baseline_cpu_us_per_call'))} / {r(c('plain_cpu_us_per_call'))} "
          f"/ {r(c('vts_cpu_us_per_call'))} "
          f"| {ratio(zip(c('plain_cpu_us_per_call'), c('baseline_cpu_us_per_call')))} "
          f"| {ratio(zip(c('plain_rtt_us_p99'), c('plain_rtt_us_p50')))} "
          f"| {tail(zip(c('baseline_rtt_us_p99'), c('baseline_rtt_us_p50')))} "
          f"| {meets(name, c('plain_rtt_us_p50'))} |")
def both_cpu(phase):
    c, s = phase["client_cpu_us_per_call"], phase["server_cpu_us_per_call"]
    return None if s is None else c + s
for label, name in two:
    bs = [j["sequential"] for j in load(f"{name}-baseline")]
    ps = [j["sequential"] for j in load(name)]
    lat = lambda runs, q: [x["latency_us"][q] for x in runs]
    bc, pc = [both_cpu(x) for x in bs], [both_cpu(x) for x in ps]
    print(f"| {label} | {r(lat(bs, 'p50'))} / {r(lat(bs, 'p99'))} "
          f"| {r(lat(ps, 'p50'))} / {r(lat(ps, 'p99'))} "
          f"| {ratio(zip(lat(ps, 'p50'), lat(bs, 'p50')))} | - | - "
          f"| {r(bc)} / {r(pc)} / - | {ratio(zip(pc, bc))} "
          f"| {ratio(zip(lat(ps, 'p99'), lat(ps, 'p50')))} "
          f"| {tail(zip(lat(bs, 'p99'), lat(bs, 'p50')))} "
          f"| {meets(name, lat(ps, 'p50'))} |")

print()
print("| placement | PLAIN pipelined (64 in flight) | VTS pipelined | "
      "VTS connections/s | TLS connections/s |")
print("|---|---|---|---|---|")
for label, name in one:
    js = load(name)
    c = lambda k: col(js, k)
    print(f"| {label} | {r(c('plain_pipelined_calls_per_s'), 0)} calls/s "
          f"({r(c('plain_pipelined_cpu_us_per_call'))} µs CPU/call) "
          f"| {r(c('vts_pipelined_calls_per_s'), 0)} calls/s "
          f"({r(c('vts_pipelined_cpu_us_per_call'))} µs CPU/call) "
          f"| {r(c('vts_handshakes_per_s'), 0)} | {r(c('tls_handshakes_per_s'), 0)} |")
for label, name in two:
    cs = [j["concurrent"] for j in load(name)]
    print(f"| {label} | {r([x['calls_per_s'] for x in cs], 0)} calls/s "
          f"({r([both_cpu(x) for x in cs])} µs CPU/call) | - | - | - |")

print()
print("| 1 MiB echo | baseline p50 µs | PLAIN p50 µs | PLAIN ÷ baseline | VTS p50 µs | VTS cipher+MAC floor µs | VTS ÷ floor |")
print("|---|---|---|---|---|---|---|")
for label, name in [("one runtime, unpinned", "mib"), ("one runtime, `0`", "mib-0")]:
    js = load(name)
    c = lambda k: col(js, k)
    print(f"| {label} | {r(c('baseline_rtt_us_p50'), 0)} "
          f"| {r(c('plain_rtt_us_p50'), 0)} "
          f"| {ratio(zip(c('plain_rtt_us_p50'), c('baseline_rtt_us_p50')))} "
          f"| {r(c('vts_rtt_us_p50'), 0)} | {r(c('vts_crypto_floor_us'), 0)} "
          f"| {ratio(zip(c('vts_rtt_us_p50'), c('vts_crypto_floor_us')))} |")
for label, name in [("two processes, `0`", "mib-two-0"), ("two processes, `0` \\| `1`", "mib-two-01")]:
    b = [j["sequential"]["latency_us"]["p50"] for j in load(name + "-baseline")]
    p = [j["sequential"]["latency_us"]["p50"] for j in load(name)]
    print(f"| {label} | {r(b, 0)} | {r(p, 0)} | {ratio(zip(p, b))} | - | - | - |")

print()
print(f"Hiccups: a thread spinning for {hiccups[0][0]['seconds']:.0f} s, gaps between "
      f"clock readings above {hiccups[0][0]['threshold_us']:.0f} µs "
      "(`versile bench --hiccups`):\n")
print("| CPU | hiccups/s | mean µs | p99 µs | max µs | time lost |")
print("|---|---|---|---|---|---|")
for cpu, js in hiccups.items():
    print(f"| {cpu} | {r(col(js, 'gaps_per_s'), 0)} | {r(col(js, 'mean_gap_us'))} "
          f"| {r(col(js, 'gap_us', 'p99'))} | {r(col(js, 'gap_us', 'max'))} "
          f"| {r(col(js, 'lost_percent'), 2)} % |")
EOF

echo
echo "When the slow calls came (two processes on CPU 0, pass 1, first pair; \`scripts/tail-timeline.py\`):"
echo
echo '```text'
python3 scripts/tail-timeline.py "$OUT/two-0-baseline.1.calls" "$OUT/two-0.1.calls" |
    sed "s|$OUT/||"
echo '```'

if [ "$IDLE_LINKS" != 0 ]; then
    echo "idle links: $IDLE_LINKS PLAIN and $IDLE_LINKS VTS links against versile serve" >&2
    ulimit -n 20000 2>/dev/null || true
    echo
    echo "Idle links, server RSS per established link ($IDLE_LINKS links per transport, \`cargo bench --bench idle_links\`):"
    echo
    cargo bench --locked --bench idle_links -- --bin "$BIN" \
        --plain "$IDLE_LINKS" --vts "$IDLE_LINKS" | grep '^|'
fi
