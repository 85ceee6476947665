#!/usr/bin/env bash
# Checks that every protocol citation in the code and the docs names a section
# that exists in docs/protocol/ (scanned: src/ middleware/ tests/ benches/
# examples/ fuzz/ docs/, README.md, SECURITY.md; docs/protocol/ cites itself). A citation is a spec file name followed by section
# numbers, in the old form `vol.md` §5.2 or the new form
# `docs/protocol/vol.md` §5.2; lists (§1.1, §1.2; §3) and ranges (§4.1–4.4)
# are checked item by item (ranges at both ends). Comment markers are
# stripped and lines joined first, so a citation may wrap across lines.
#
# Usage: scripts/check-citations.sh [--list]
#   --list  also print every distinct (file, §) pair with its use count.
# Exit status: 0 if every cited section exists, 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

exec python3 - "$@" <<'PY'
import os, re, sys
from collections import Counter, defaultdict

DOCS = "docs/protocol"
SPECS = ("vec", "vol", "vts", "vop-service")
ROOTS = ("src", "middleware", "tests", "benches", "examples", "fuzz", "docs")
TOP_FILES = ("README.md", "SECURITY.md")  # user docs cite sections too
TEXT_EXT = (".rs", ".py", ".sh", ".toml", ".md", ".txt", ".json")

def headings(name):
    """Section numbers defined by the headings of docs/protocol/NAME.md."""
    found = set()
    with open(os.path.join(DOCS, name + ".md"), encoding="utf-8") as f:
        for line in f:
            m = re.match(r"#{1,6}\s+([0-9]+(?:\.[0-9]+)*)\.?\s", line)
            if m:
                found.add(m.group(1))
    return found

def source_files():
    yield from (f for f in TOP_FILES if os.path.exists(f))
    for root in ROOTS:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if d not in ("target", ".git")]
            for fn in filenames:
                if fn.endswith(TEXT_EXT):
                    yield os.path.join(dirpath, fn)

NUM = r"[0-9]+(?:\.[0-9]+)*"
# file, then a first section, then more sections joined by , ; and or / or a dash.
CITE = re.compile(
    r"(?:docs/protocol/)?(?P<file>" + "|".join(re.escape(s) for s in SPECS) + r")\.md`?"
    r"(?:,)?\s*(?P<secs>§§?\s?" + NUM +
    r"(?:\s*(?:[–—-]\s*§?|(?:,|;|\s+and|\s+or|\s*/)\s*§)\s?" + NUM + r")*)"
)
COMMENT = re.compile(r"^\s*(?://[/!]?|#|\*|--)\s?")

def joined(path):
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (UnicodeDecodeError, OSError):
        return ""
    return " ".join(COMMENT.sub("", l).strip() for l in lines)

def sections(secs):
    """Section numbers of one citation: list items, and both ends of ranges."""
    return re.findall(NUM, secs)

defined = {s: headings(s) for s in SPECS}
uses = Counter()
where = defaultdict(set)
for path in source_files():
    text = joined(path)
    for m in CITE.finditer(text):
        for sec in sections(m.group("secs")):
            key = (m.group("file") + ".md", sec)
            uses[key] += 1
            where[key].add(path)

missing = [(k, v) for k, v in uses.items() if k[1] not in defined[k[0][:-3]]]
def order(item):
    (f, s), _ = item
    return (f, [int(x) for x in s.split(".")])

if "--list" in sys.argv[1:]:
    for (f, s), n in sorted(uses.items(), key=order):
        mark = "" if s in defined[f[:-3]] else "   MISSING"
        print(f"{f} §{s}\t{n}{mark}")
for (f, s), n in sorted(missing, key=order):
    print(f"missing: {DOCS}/{f} §{s} (cited {n}x in {', '.join(sorted(where[(f, s)]))})",
          file=sys.stderr)
print(f"{sum(uses.values())} citations, {len(uses)} distinct sections, "
      f"{len(missing)} missing", file=sys.stderr)
sys.exit(1 if missing else 0)
PY
