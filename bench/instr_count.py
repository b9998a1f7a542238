#!/usr/bin/env python3
"""Instructions per operation, with and without libtapline.so, counted by valgrind's
callgrind (user-space instructions: deterministic for one build, whatever else the
machine is doing, unlike the nanoseconds of bench/hook_cost.sh).

Each operation runs N and 2N times in a fresh process; (count(2N) - count(N)) / N is the
cost of one, start-up and exit cancelling out. Rows:

  untraced  write / writev / read / send+recv / dup+close on descriptors the library
            does not follow: the hook's pass-through cost, against the bare call (the
            floor: what the program pays without the library)
  traced    one small HTTP/1.1 exchange on a keep-alive loopback connection (all hooks
            and records it takes), against the same exchange without the library
  append    one 256-byte record into a warm segment (tapline_spool_append), against a
            256-byte memcpy (the floor of any hand-off)
  first     a process's first record (spool directory, segment claim and mapping, the
            process-start record) over a process that records nothing

With --base-lib PATH (another build of libtapline.so, e.g. main's), the append and first
rows are counted for both builds in the same run, each loaded by instr_ops itself
(dlopen) rather than preloaded, and printed side by side.

Usage: bench/instr_count.py [--json] [--rows untraced,traced,append,first] [--n N]
                            [--base-lib PATH]
Builds target/release/libtapline.so if missing. Needs valgrind and gcc.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
LIB = os.path.join(TARGET, "release", "libtapline.so")

UNTRACED = [
    # (row name, instr_ops mode, hooked calls per operation)
    ("write", "write", 1),
    ("writev", "writev", 1),
    ("read", "read", 1),
    ("send+recv", "sendrecv", 2),
    ("dup+close", "close", 1),
]


def callgrind(argv, env):
    """User-space instructions the program executed (callgrind's Ir total)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cg.out")
        p = subprocess.run(
            ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out] + argv,
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            timeout=600)
        if p.returncode != 0:
            raise SystemExit("instr_count: %s failed (%d):\n%s" % (argv, p.returncode, p.stderr[-2000:]))
        m = re.search(r"Collected : (\d+)", p.stderr)
        if not m:
            raise SystemExit("instr_count: no instruction total from callgrind:\n" + p.stderr[-2000:])
        return int(m.group(1))


def per_op(argv_of, n, env, calls=1):
    a = callgrind(argv_of(n), env)
    b = callgrind(argv_of(2 * n), env)
    return (b - a) / n / calls


class Bench:
    def __init__(self, n, base_lib=None):
        self.n = n
        self.base_lib = base_lib
        self.tmp = tempfile.mkdtemp(prefix="tapline-instr-")
        self.spool = os.path.join(self.tmp, "spool")
        self.ops = self.compile("instr_ops.c", "instr_ops")
        self.server = None

    def compile(self, src, name):
        exe = os.path.join(self.tmp, name)
        subprocess.run(["gcc", "-O2", "-o", exe, os.path.join(ROOT, "bench", src), "-ldl"],
                       check=True)
        return exe

    def env(self, preload, load=None):
        """The environment of a run: the library preloaded, or (`load`) loaded by
        instr_ops from that path, or neither."""
        e = {k: v for k, v in os.environ.items()
             if not k.startswith(("TAPLINE_", "LD_PRELOAD", "INSTR_OPS_LIB"))}
        if preload or load:
            shutil.rmtree(self.spool, ignore_errors=True)
            os.makedirs(self.spool, mode=0o700)
            e["TAPLINE_SPOOL_DIR"] = self.spool
        if load:
            e["INSTR_OPS_LIB"] = load
        elif preload:
            e["LD_PRELOAD"] = LIB
        return e

    def untraced(self):
        rows = []
        for name, mode, calls in UNTRACED:
            argv = lambda k, mode=mode: [self.ops, mode, str(k)]
            bare = per_op(argv, self.n, self.env(False), calls)
            lib = per_op(argv, self.n, self.env(True), calls)
            rows.append({"row": "untraced " + name, "without": bare, "with": lib,
                         "added": lib - bare, "floor": "the bare call"})
        return rows

    def traced(self):
        pingpong = self.compile("http_pingpong.c", "http_pingpong")
        env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
        server = subprocess.Popen([pingpong, "server"], stdout=subprocess.PIPE, text=True, env=env)
        try:
            port = server.stdout.readline().split()[1]
            argv = lambda k: [pingpong, "client", port, str(k)]
            n = max(self.n // 50, 200)
            bare = per_op(argv, n, self.env(False))
            lib = per_op(argv, n, self.env(True))
        finally:
            server.kill()
            server.wait()
        return [{"row": "traced HTTP/1.1 exchange (keep-alive)", "without": bare, "with": lib,
                 "added": lib - bare, "floor": "the exchange without the library"}]

    def append(self):
        argv = lambda k: [self.ops, "append", str(k)]
        n = max(self.n // 10, 1000)
        floor = self.memcpy_floor()
        row = "append 256-byte record (warm segment)"
        if self.base_lib:
            return [{"row": row + " [%s]" % name, "without": floor, "added": lib - floor,
                     "with": lib, "floor": "memcpy of 256 bytes"}
                    for name, lib in self.both(lambda load: per_op(argv, n, self.env(True, load)))]
        lib = per_op(argv, n, self.env(True))
        return [{"row": row, "without": floor, "with": lib,
                 "added": lib - floor, "floor": "memcpy of 256 bytes"}]

    def both(self, count):
        """`count(library path)` for the base build and this one."""
        return [("base", count(self.base_lib)), ("this", count(LIB))]

    def memcpy_floor(self):
        src = os.path.join(self.tmp, "memcpy.c")
        with open(src, "w") as f:
            f.write("#include <stdlib.h>\n#include <string.h>\n"
                    "static char dst[1 << 22]; static char buf[256];\n"
                    "int main(int c, char **v) { long n = atol(v[1]); char *volatile d = dst;\n"
                    "  for (long i = 0; i < n; i++) memcpy(d + (i * 256) % (1 << 22), buf, 256);\n"
                    "  return 0; }\n")
        exe = os.path.join(self.tmp, "memcpy")
        subprocess.run(["gcc", "-O2", "-o", exe, src], check=True)
        return per_op(lambda k: [exe, str(k)], max(self.n // 10, 1000), self.env(False))

    def first(self):
        def count(load=None):
            none = callgrind([self.ops, "first", "0"], self.env(True, load))
            one = callgrind([self.ops, "first", "1"], self.env(True, load))
            return float(one - none)
        row = "a process's first record"
        if self.base_lib:
            return [{"row": row + " [%s]" % name, "without": 0.0, "with": c, "added": c,
                     "floor": "a process that records nothing"} for name, c in self.both(count)]
        c = count()
        return [{"row": row, "without": 0.0, "with": c, "added": c,
                 "floor": "a process that records nothing"}]

    def close(self):
        shutil.rmtree(self.tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="one JSON object per row")
    ap.add_argument("--rows", default="untraced,traced,append,first")
    ap.add_argument("--n", type=int, default=20000, help="operations per run (untraced rows)")
    ap.add_argument("--base-lib", help="another libtapline.so: append and first rows of both")
    args = ap.parse_args()
    for tool in ("valgrind", "gcc"):
        if not shutil.which(tool):
            raise SystemExit("instr_count: %s is not installed (scripts/setup installs it)" % tool)
    if not os.path.exists(LIB):
        subprocess.run(["cargo", "build", "--release", "-p", "libtapline"], cwd=ROOT, check=True)
    b = Bench(args.n, args.base_lib and os.path.abspath(args.base_lib))
    try:
        rows = []
        for r in args.rows.split(","):
            rows += getattr(b, r.strip())()
    finally:
        b.close()
    if args.json:
        for r in rows:
            print(json.dumps(r))
        return
    print("instructions per operation (callgrind, user space; N=%d)" % args.n)
    print("%-50s %12s %12s %10s  %s" % ("operation", "without", "with", "added", "compared with"))
    for r in rows:
        print("%-50s %12.1f %12.1f %+10.1f  %s" % (r["row"], r["without"], r["with"], r["added"], r["floor"]))


if __name__ == "__main__":
    sys.exit(main())
