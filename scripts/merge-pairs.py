#!/usr/bin/env python3
"""Merge the pairs of one two-process run of scripts/bench-readme.sh.

Usage: merge-pairs.py PREFIX PAIRS

Reads PREFIX.p1.json .. PREFIX.pPAIRS.json (each `versile bench --json`
of one fresh server and client) and their call logs PREFIX.pN.calls
(`--latency-log`), and writes PREFIX.json: the first pair's report with
its sequential phase replaced by all pairs' calls together (latency
percentiles of every call, nearest rank; CPU per call weighted by calls;
calls, errors and seconds summed). The concurrent phase, if any, is the
first pair's (only it runs one). PREFIX.calls is the first pair's log
(a time series for scripts/tail-timeline.py).

On this VM a pair of processes keeps one latency mode for its whole run
(docs/performance.md, "Seventh round"), so a run's figure is taken over
several pairs rather than one.
"""
import json
import math
import shutil
import sys


def percentile(sorted_values, q):
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def latencies(path):
    with open(path) as f:
        return [float(line.split()[1]) for line in f if line.strip() and not line.startswith("#")]


def weighted(phases, key):
    values = [(p[key], p["calls"]) for p in phases]
    if any(v is None for v, _ in values):
        return None
    calls = sum(n for _, n in values)
    return sum(v * n for v, n in values) / calls if calls else None


def main():
    prefix, pairs = sys.argv[1], int(sys.argv[2])
    reports = []
    calls = []
    for p in range(1, pairs + 1):
        with open(f"{prefix}.p{p}.json") as f:
            reports.append(json.load(f))
        calls.extend(latencies(f"{prefix}.p{p}.calls"))
    if not calls:
        sys.exit(f"merge-pairs: no calls logged for {prefix}")
    calls.sort()
    phases = [r["sequential"] for r in reports]
    merged = dict(reports[0])
    sequential = dict(phases[0])
    sequential["calls"] = sum(p["calls"] for p in phases)
    sequential["errors"] = sum(p["errors"] for p in phases)
    sequential["seconds"] = sum(p["seconds"] for p in phases)
    sequential["calls_per_s"] = sequential["calls"] / sequential["seconds"]
    sequential["latency_us"] = {
        "p50": percentile(calls, 50),
        "p90": percentile(calls, 90),
        "p99": percentile(calls, 99),
        "p99_9": percentile(calls, 99.9),
        "max": calls[-1],
    }
    for key in ("client_cpu_us_per_call", "server_cpu_us_per_call"):
        sequential[key] = weighted(phases, key)
    sequential["pairs"] = pairs
    sequential["pair_p50_us"] = [p["latency_us"]["p50"] for p in phases]
    merged["sequential"] = sequential
    # One line, as `versile bench --json` prints it (bench-readme.sh reads
    # the first line).
    with open(f"{prefix}.json", "w") as f:
        f.write(json.dumps(merged) + "\n")
    shutil.copyfile(f"{prefix}.p1.calls", f"{prefix}.calls")


if __name__ == "__main__":
    main()
