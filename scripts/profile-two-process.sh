#!/usr/bin/env bash
# What one sequential echo call costs each process of the README's
# two-process placement, counted rather than timed (docs/performance.md,
# "Two processes"): user-space instructions per call (callgrind) of
#   - the server, `versile serve --insecure --threads 1`,
#   - the client, `versile bench --insecure --threads 1 vop://ADDR/echo`,
#   - the two-process baseline's client, `versile bench --baseline-connect`
#     (its server is a few lines of tokio, as the client's echo side),
# each split into where the instructions are (tokio, VEC decoding, the
# link driver, the allocator, ...), by source file.
#
# Each figure is the difference between a run of N2 and one of N1 calls,
# divided by N2 - N1, so that start-up, the handshake and shutdown cancel.
#
# Usage: scripts/profile-two-process.sh          (needs valgrind, python3)
# Environment: N1 (1000), N2 (3000), VERSILE (a versile binary to use
# instead of building target/release/versile).
set -euo pipefail
cd "$(dirname "$0")/.."
n1=${N1:-1000}
n2=${N2:-3000}
if [ -n "${VERSILE:-}" ]; then
    BIN=$VERSILE
else
    cargo build --release --locked --bin versile >&2
    BIN=$PWD/target/release/versile
fi
tmp=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT

# wait_line FILE TEXT: the rest of the first line of FILE after TEXT.
wait_line() {
    for _ in $(seq 300); do
        if grep -q "$2" "$1" 2>/dev/null; then
            grep -m1 "$2" "$1" | sed "s|.*$2||"
            return
        fi
        sleep 0.1
    done
    echo "no '$2' in $1:" >&2
    cat "$1" >&2
    exit 1
}

# The server under callgrind, once per call count (its profile is written
# when SIGTERM ends it gracefully).
for n in "$n1" "$n2"; do
    valgrind --tool=callgrind --callgrind-out-file="$tmp/server.$n" \
        "$BIN" serve --insecure --threads 1 --listen 127.0.0.1:0 >"$tmp/serve.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    addr=$(wait_line "$tmp/serve.log" "listening on vop://")
    "$BIN" bench --json --insecure --threads 1 --iterations "$n" --warmup 0 --duration 0 \
        "vop://${addr%%/*}/echo" >/dev/null
    kill -TERM "$pid"
    wait "$pid" || true
done

# The clients under callgrind, against servers outside it.
"$BIN" serve --insecure --threads 1 --listen 127.0.0.1:0 >"$tmp/serve2.log" 2>&1 &
PIDS+=($!)
addr=$(wait_line "$tmp/serve2.log" "listening on vop://")
"$BIN" bench --baseline-server 127.0.0.1:0 --threads 1 >"$tmp/base.log" 2>&1 &
PIDS+=($!)
base=$(wait_line "$tmp/base.log" "listening on tcp://")
for n in "$n1" "$n2"; do
    valgrind --tool=callgrind --callgrind-out-file="$tmp/client.$n" \
        "$BIN" bench --json --insecure --threads 1 --iterations "$n" --warmup 0 --duration 0 \
        "vop://${addr%%/*}/echo" >/dev/null 2>&1
    valgrind --tool=callgrind --callgrind-out-file="$tmp/baseline.$n" \
        "$BIN" bench --json --threads 1 --iterations "$n" --warmup 0 \
        --baseline-connect "$base" >/dev/null 2>&1
done

python3 - "$tmp" "$n1" "$n2" <<'EOF'
import re, subprocess, sys
tmp, n1, n2 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

def functions(path):
    """Exclusive instructions per `file:function` of one callgrind profile."""
    out = subprocess.run(["callgrind_annotate", "--threshold=100", "--auto=no", path],
                         capture_output=True, text=True, check=True).stdout
    costs = {}
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+) \([^)]*\)\s+(.*)", line)
        if m and "PROGRAM TOTALS" not in line:
            costs[m.group(2)] = costs.get(m.group(2), 0) + int(m.group(1).replace(",", ""))
    return costs

# Where an instruction is counted: by the function (code of std inlined
# into one of ours counts as ours), then by the file it is in.
BY_FUNCTION = [
    ("versile::vec::decode", "VEC decoding"), ("versile::vec::netbytes", "VEC decoding"),
    ("versile::vec::encode", "VEC encoding"), ("versile::vec::", "VEC other"),
    ("versile::runtime::driver", "link driver"), ("versile::runtime::memory", "memory accounting"),
    ("versile::runtime::", "runtime, calls"), ("versile::vol::", "VOL link"),
    ("versile_middleware", "middleware"), ("versile::server::", "middleware"),
    ("versile::object::", "objects, calls, metrics"), ("versile::value", "objects, calls, metrics"),
    ("versile::bench::", "bench loop"), ("hdrhistogram", "bench loop"),
    ("Instant", "clock"), ("Timespec", "clock"), ("clock_gettime", "clock"),
    ("tokio::", "tokio"), ("mio::", "tokio"), ("tokio_util::", "tokio"),
    ("futures_channel::", "futures channels"), ("futures_util::", "futures channels"),
    ("bytes::", "bytes"), ("tower::", "middleware"),
]
BY_FILE = [
    ("malloc", "allocator"), ("__rdl_", "allocator"), ("memmove", "memcpy"), ("memcpy", "memcpy"),
    ("tokio-", "tokio"), ("mio-", "tokio"), ("tower-", "middleware"),
    ("futures-", "futures channels"), ("bytes-", "bytes"), ("metrics-", "objects, calls, metrics"),
    ("drop_in_place<versile::vec", "VEC other"),
]

def where(name):
    path, _, function = name.partition(":")
    for key, label in BY_FUNCTION:
        if key in function:
            return label
    for key, label in BY_FILE:
        if key in path or key in function:
            return label
    return "other (std, libc)"

def per_call(prefix):
    a, b = functions(f"{tmp}/{prefix}.{n1}"), functions(f"{tmp}/{prefix}.{n2}")
    split = {}
    for k in set(a) | set(b):
        split[where(k)] = split.get(where(k), 0) + (b.get(k, 0) - a.get(k, 0)) / (n2 - n1)
    return split

cols = [("server", "`versile serve`"), ("client", "`versile bench VRI`"),
        ("baseline", "baseline client")]
data = {p: per_call(p) for p, _ in cols}
labels = sorted({l for d in data.values() for l in d}, key=lambda l: -max(d.get(l, 0) for d in data.values()))
print("| instructions per call | " + " | ".join(t for _, t in cols) + " |")
print("|---|" + "---:|" * len(cols))
for l in labels:
    if max(abs(d.get(l, 0)) for d in data.values()) < 40:
        continue
    print(f"| {l} | " + " | ".join(f"{data[p].get(l, 0):,.0f}" for p, _ in cols) + " |")
print("| **total** | " + " | ".join(f"**{sum(data[p].values()):,.0f}**" for p, _ in cols) + " |")
EOF
