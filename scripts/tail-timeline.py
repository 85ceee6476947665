#!/usr/bin/env python3
"""When did the slow calls come? Reads `versile bench --latency-log FILE`
logs (`start_us latency_us` a line) and, for each, prints the median, p99,
the calls slower than 2x the median (the issue's tail bound), how many per
second of the run, and the periods those slow calls keep best.

A period P is scored by how well the slow calls' start times line up
modulo P: |mean(exp(2 pi i t / P))|, 1 when every slow call starts at the
same phase, about 1/sqrt(n) for n calls at random times. A kernel tick
(CONFIG_HZ=250: 4 ms) or a host timer shows up as a peak at its period
(and weaker ones at its fractions). See docs/performance.md, "Tails".

Usage: scripts/tail-timeline.py LOG [LOG ...] [--slow-factor F]
"""
import cmath
import math
import sys


def load(path):
    starts, lats = [], []
    with open(path) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            s, l = line.split()
            starts.append(float(s))
            lats.append(float(l))
    return starts, lats


def quantile(sorted_xs, q):
    return sorted_xs[min(len(sorted_xs) - 1, int(len(sorted_xs) * q))]


def score(times_us, period_us):
    z = sum(cmath.exp(2j * math.pi * t / period_us) for t in times_us)
    return abs(z) / len(times_us)


def best_periods(times_us, lo_ms=1.0, hi_ms=25.0, step_ms=0.005, keep=3):
    """The `keep` best-scoring periods, each the top of its own peak."""
    scored = []
    p = lo_ms
    while p <= hi_ms:
        scored.append((score(times_us, p * 1000.0), p))
        p += step_ms
    peaks = []
    for i in range(1, len(scored) - 1):
        if scored[i][0] >= scored[i - 1][0] and scored[i][0] >= scored[i + 1][0]:
            peaks.append(scored[i])
    peaks.sort(reverse=True)
    return peaks[:keep]


def main(argv):
    factor = 2.0
    paths = []
    args = iter(argv)
    for a in args:
        if a == "--slow-factor":
            factor = float(next(args))
        elif a in ("-h", "--help"):
            print(__doc__)
            return 0
        else:
            paths.append(a)
    if not paths:
        print(__doc__, file=sys.stderr)
        return 2
    for path in paths:
        starts, lats = load(path)
        if len(lats) < 100:
            print(f"{path}: {len(lats)} calls, too few to say anything")
            continue
        s = sorted(lats)
        p50, p99 = quantile(s, 0.50), quantile(s, 0.99)
        slow = [t for t, l in zip(starts, lats) if l > factor * p50]
        run_s = (starts[-1] + lats[-1]) / 1e6
        print(f"{path}: {len(lats)} calls in {run_s:.2f} s, p50 {p50:.1f} µs, "
              f"p99 {p99:.1f} µs ({p99 / p50:.2f}x p50)")
        if not slow:
            print(f"  no call above {factor:g}x p50")
            continue
        mean_slow = sum(l for l in lats if l > factor * p50) / len(slow)
        print(f"  {len(slow)} calls above {factor:g}x p50 ({100 * len(slow) / len(lats):.2f} %, "
              f"{len(slow) / run_s:.0f}/s), mean {mean_slow:.1f} µs")
        noise = 1 / math.sqrt(len(slow))
        periods = ", ".join(f"{p:.3f} ms ({r:.2f})" for r, p in best_periods(slow))
        print(f"  best periods (score; about {noise:.2f} at random): {periods}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
