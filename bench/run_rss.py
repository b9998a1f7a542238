#!/usr/bin/env python3
"""`tapline run`'s memory against the number of exchanges it reports.

    bench/run_rss.py [COUNT ...]      (default: 10000 100000 1000000)
    RSS_FORMATS=json,table,har        (default: json,table,har)

For each format and count: bench/http_pingpong's client makes COUNT keep-alive GETs on
one connection to its own server on 127.0.0.1, under `tapline run --format F`; the
report is read from tapline's stderr and counted (not kept). Once every exchange has
come out, while the program still holds its connection open (`hold`), tapline's peak
resident set (VmHWM in /proc/PID/status) is read; then the program exits and tapline's
summary line is shown. Prints one row per run: format, exchanges, tapline VmHWM,
requests/s, wall time, the summary line. The goal: flat (<= 50 MB) from 10,000 to
1,000,000 exchanges.

A run whose reports stop short (records dropped by the writer) stops waiting after 60
quiet seconds; its row shows how many were reported and the summary line the loss.

Needs gcc and target/release/{tapline,libtapline.so} (cargo build --release).
"""
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STALL_S = 60
REL = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "release"


def vm_hwm_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM")


def one_run(tapline, exe, port, fmt, count):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAPLINE_")}
    env.pop("LD_PRELOAD", None)
    t = time.monotonic()
    proc = subprocess.Popen(
        [tapline, "run", "--format", fmt, "--", exe, "client", str(port), str(count),
         "numbered", "hold"],
        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # The rate line comes when the program has made all its requests: read it on the
    # side. Waiting for it before reading tapline's report would leave tapline blocked
    # on a full stderr pipe, its reader stopped, the spool bound reached and every later
    # record dropped (issue 15: the "stall" at 64 segments' worth of exchanges).
    rate_line = []
    rate_reader = threading.Thread(
        target=lambda: rate_line.append(proc.stdout.readline().decode().strip()), daemon=True)
    rate_reader.start()
    # Every exchange out: one line each for json and table, one "startedDateTime" each
    # for HAR; the program still runs, its connection open.
    marker = {"json": b'{"pid"', "table": b"/ping?i=", "har": b'"startedDateTime"'}[fmt]
    seen = 0
    others = []
    # Lines come through a thread so that a run whose reports stop short (records the
    # writer dropped: the summary line says so) ends after STALL_S quiet seconds instead
    # of waiting forever.
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(l) for l in iter(proc.stderr.readline, b"")]
                     + [lines.put(b"")], daemon=True).start()
    while seen < count:
        try:
            line = lines.get(timeout=STALL_S)
        except queue.Empty:
            others.append(f"(stalled: no report line for {STALL_S} s)")
            break
        if not line:
            break
        if marker in line:
            seen += 1
        elif fmt == "table" or not line.startswith((b" ", b"{", b"}", b"]")):
            others.append(line.decode(errors="replace").rstrip())
    hwm = vm_hwm_kib(proc.pid)
    proc.stdin.close()
    rate_reader.join(timeout=STALL_S)
    rate = rate_line[0] if rate_line else "?"
    proc.wait()
    rest = []
    while True:
        line = lines.get()
        if not line:
            break
        rest.append(line.decode(errors="replace").rstrip())
    wall = time.monotonic() - t
    summary = next((l for l in reversed(others + rest) if l.startswith("tapline: ")
                    and "exchange" in l), "(no summary line)")
    return seen, hwm, rate, wall, summary


def main():
    counts = [int(a) for a in sys.argv[1:]] or [10_000, 100_000, 1_000_000]
    formats = os.environ.get("RSS_FORMATS", "json,table,har").split(",")
    tapline = REL / "tapline"
    if not tapline.exists() or not (REL / "libtapline.so").exists():
        sys.exit(f"{tapline} or libtapline.so missing: cargo build --release --workspace")
    work = Path(tempfile.mkdtemp(prefix="tapline-rss-"))
    exe = work / "http_pingpong"
    subprocess.run(["gcc", "-O2", "-o", str(exe), str(REPO / "bench" / "http_pingpong.c")],
                   check=True)
    srv = subprocess.Popen([str(exe), "server"], stdout=subprocess.PIPE,
                           env={k: v for k, v in os.environ.items() if k != "LD_PRELOAD"})
    port = int(srv.stdout.readline().split()[1])
    try:
        print(f"{'format':<6} {'exchanges':>10} {'reported':>10} {'VmHWM':>10} "
              f"{'req/s':>8} {'wall':>8}  summary")
        for fmt in formats:
            for count in counts:
                seen, hwm, rate, wall, summary = one_run(str(tapline), str(exe), port, fmt,
                                                         count)
                print(f"{fmt:<6} {count:>10} {seen:>10} {hwm / 1024:>7.1f} MB {rate:>8} "
                      f"{wall:>7.1f}s  {summary}", flush=True)
    finally:
        srv.kill()
        srv.wait()
        subprocess.run(["rm", "-rf", str(work)])


if __name__ == "__main__":
    main()
