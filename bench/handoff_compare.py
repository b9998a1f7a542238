#!/usr/bin/env python3
"""Two builds of libtapline.so side by side in one run of the hand-off benchmark's record
rows: a 256-byte record into a warm segment, a 1 MiB hand-off into a warm segment, and a
process's first record. The benchmark (`cargo bench -p tapline --bench handoff`) runs
once per library per round, alternating, so that both see the same machine; each row is
the best of the benchmark's own rounds, and this prints every round and the median over
rounds.

Usage: bench/handoff_compare.py BASE_LIB [NEW_LIB] [--rounds N] [--cpu]
  BASE_LIB  e.g. main's build: git worktree/archive of main, `cargo build --release
            -p libtapline --lib` in a separate target directory
  NEW_LIB   default: this tree's target/release/libtapline.so (built if missing)
  --cpu     the warm rows in the writer thread's CPU time (HANDOFF_CLOCK=cpu): on a
            loaded machine, wall time mostly measures who else ran
"""
import argparse
import os
import re
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))

ROWS = [
    ("256-byte record, warm segment (ns)", "256 bytes", "tapline segment (warm)"),
    ("1 MiB hand-off, warm segment (µs)", "1 MiB", "tapline segment (warm)"),
]


def run(lib, cpu):
    env = dict(os.environ, HANDOFF_LIB=lib, HANDOFF_ROWS="warm,first")
    if cpu:
        env["HANDOFF_CLOCK"] = "cpu"
    out = subprocess.run(["cargo", "bench", "-q", "-p", "tapline", "--bench", "handoff"],
                         cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout
    got = {}
    section = None
    for line in out.splitlines():
        m = re.match(r"payload (.+):", line)
        if m:
            section = m.group(1)
            continue
        for name, size, row in ROWS:
            if section == size and line.strip().startswith(row):
                m = re.search(r"([\d.]+) (ns|µs)", line[len(row) + 2:])
                got[name] = float(m.group(1))
        m = re.search(r"first record of a process .*: ([\d.]+) µs", line)
        if m:
            got["a process's first record (µs)"] = float(m.group(1))
    return got


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("base")
    ap.add_argument("new", nargs="?", default=os.path.join(TARGET, "release", "libtapline.so"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cpu", action="store_true")
    a = ap.parse_args()
    if not os.path.exists(a.new):
        subprocess.run(["cargo", "build", "--release", "-p", "libtapline", "--lib"], cwd=ROOT,
                       check=True)
    res = {"base": [], "new": []}
    for r in range(a.rounds):
        for key, lib in (("base", a.base), ("new", a.new)):
            res[key].append(run(lib, a.cpu))
            print("round %d %s: %s" % (r + 1, key, res[key][-1]), file=sys.stderr)
    names = [n for n, _, _ in ROWS] + ["a process's first record (µs)"]
    print("load average at the end: %s; warm rows in %s" % (
        " ".join(open("/proc/loadavg").read().split()[:3]),
        "the writer's CPU time" if a.cpu else "wall time"))
    print("%-40s %22s %22s" % ("row (median of %d rounds)" % a.rounds, "base", "new"))
    for n in names:
        b = [x[n] for x in res["base"] if n in x]
        w = [x[n] for x in res["new"] if n in x]
        print("%-40s %10.1f [%s] %10.1f [%s]" % (
            n, statistics.median(b), " ".join("%.0f" % v for v in b),
            statistics.median(w), " ".join("%.0f" % v for v in w)))


if __name__ == "__main__":
    main()
