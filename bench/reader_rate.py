#!/usr/bin/env python3
"""The reader's throughput: exchanges reported per second of the reader's CPU.

    bench/reader_rate.py [--count N] [--formats json,table,har] [--baseline DIR] [--live]

bench/http_pingpong's client makes N (default 100,000) keep-alive GETs on one connection
to its own server on 127.0.0.1, preloaded with libtapline.so and no reader, into a spool
whose bounds are set high enough to hold them all (written once). Then, for each
`tapline` (target/release's, and --baseline DIR's when given: e.g. main's, built into
another target directory) and each format, the reader alone is timed over that spool:

- `show`:   `tapline show --format F DIR` (the whole spool at once, then the report);
- `follow`: `tapline show -F --format F COPY` on a fresh copy of the spool (the live
            path `tapline run` uses: bounded reads, the feed, a batch per read), stopped
            with SIGTERM once its N exchanges came out.

Each row: user+sys CPU seconds of the reader (from wait4), exchanges per CPU second,
CPU seconds per 100,000 exchanges. The report goes to a pipe that this script counts
(its own CPU is not the reader's).

--live adds `tapline run --format json` of the same client (N requests, `hold`): the
CPU seconds tapline spent against the program's own, read from /proc once every
exchange came out (or the report stopped), and the summary line (records lost).

Nothing else that reads a capture of HTTP runs here to compare with (no tcpdump,
tshark or mitmproxy on this machine): the baseline is the previous reader.

Needs gcc and target/release/{tapline,libtapline.so} (cargo build --release).
"""
import argparse
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
REL = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "release"
MARKER = {"json": b'{"pid"', "table": b"/ping?i=", "har": b'"startedDateTime"'}
STALL_S = 60


def clean_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAPLINE_")}
    env.pop("LD_PRELOAD", None)
    return env


def write_spool(lib, exe, port, count, spool):
    env = clean_env()
    env.update(LD_PRELOAD=str(lib), TAPLINE_SPOOL_DIR=str(spool),
               TAPLINE_SPOOL_MAX_BYTES=str(1 << 40), TAPLINE_SPOOL_MAX_SEGMENTS="1000000")
    out = subprocess.run([str(exe), "client", str(port), str(count), "numbered"], env=env,
                         check=True, capture_output=True, text=True)
    return out.stdout.strip()


def count_lines(stream, marker, count, lines_out):
    """Counts report lines with `marker`; returns when `count` came or the stream ends
    (or stays quiet for STALL_S seconds)."""
    q = queue.Queue()
    threading.Thread(target=lambda: [q.put(l) for l in iter(stream.readline, b"")]
                     + [q.put(b"")], daemon=True).start()
    seen = 0
    while seen < count:
        try:
            line = q.get(timeout=STALL_S)
        except queue.Empty:
            break
        if not line:
            break
        if marker in line:
            seen += 1
    lines_out.append(q)
    return seen


def rest_lines(q):
    rest = []
    while True:
        line = q.get()
        if not line:
            return rest
        rest.append(line.decode(errors="replace").rstrip())


def cpu_of(rusage):
    return rusage.ru_utime + rusage.ru_stime


def fresh_copy(spool, work):
    """Each reader gets the spool as written (a reader may hand segments back)."""
    copy = work / "copy"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(spool, copy)
    return copy


def run_show(tapline, fmt, spool, count, work):
    copy = fresh_copy(spool, work)
    proc = subprocess.Popen([tapline, "show", "--format", fmt, str(copy)], env=clean_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    qs = []
    seen = count_lines(proc.stderr, MARKER[fmt], count, qs)
    _, status, ru = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    rest_lines(qs[0])
    shutil.rmtree(copy, ignore_errors=True)
    return seen, cpu_of(ru)


def run_follow(tapline, fmt, spool, count, work):
    copy = fresh_copy(spool, work)
    proc = subprocess.Popen([tapline, "show", "-F", "--format", fmt, str(copy)],
                            env=clean_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    qs = []
    seen = count_lines(proc.stderr, MARKER[fmt], count, qs)
    proc.send_signal(signal.SIGTERM)
    _, status, ru = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    rest_lines(qs[0])
    shutil.rmtree(copy, ignore_errors=True)
    return seen, cpu_of(ru)


def proc_cpu_s(pid):
    """utime+stime of one process (its threads, not its children), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_live(tapline, exe, port, count):
    proc = subprocess.Popen(
        [tapline, "run", "--format", "json", "--", str(exe), "client", str(port), str(count),
         "numbered", "hold"],
        env=clean_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    rate = []
    threading.Thread(target=lambda: rate.append(proc.stdout.readline().decode().strip()),
                     daemon=True).start()
    qs = []
    seen = count_lines(proc.stderr, MARKER["json"], count, qs)
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    prog_cpu = sum(proc_cpu_s(c) for c in children)
    tap_cpu = proc_cpu_s(proc.pid)
    proc.stdin.close()
    proc.wait()
    rest = rest_lines(qs[0])
    summary = next((l for l in reversed(rest) if l.startswith("tapline: ")), "(no summary)")
    return seen, tap_cpu, prog_cpu, rate[0] if rate else "?", summary


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=100_000)
    ap.add_argument("--formats", default="json,table,har")
    ap.add_argument("--baseline", help="directory holding another tapline binary")
    ap.add_argument("--live", action="store_true")
    ap.add_argument("--modes", default="show,follow")
    a = ap.parse_args()
    readers = [("this", REL / "tapline")]
    if a.baseline:
        readers.insert(0, ("baseline", Path(a.baseline) / "tapline"))
    lib = REL / "libtapline.so"
    for _, t in readers:
        if not t.exists():
            sys.exit(f"{t} missing")
    if not lib.exists():
        sys.exit(f"{lib} missing: cargo build --release --workspace")
    work = Path(tempfile.mkdtemp(prefix="tapline-rate-"))
    exe = work / "http_pingpong"
    subprocess.run(["gcc", "-O2", "-o", str(exe), str(REPO / "bench" / "http_pingpong.c")],
                   check=True)
    srv = subprocess.Popen([str(exe), "server"], stdout=subprocess.PIPE, env=clean_env())
    port = int(srv.stdout.readline().split()[1])
    try:
        spool = work / "spool"
        spool.mkdir()
        rate = write_spool(lib, exe, port, a.count, spool)
        size = sum(f.stat().st_size for f in spool.iterdir())
        print(f"spool: {a.count} keep-alive exchanges, {size / 1e6:.1f} MB ({rate})")
        print(f"{'reader':<9} {'mode':<7} {'format':<6} {'reported':>9} {'CPU s':>7} "
              f"{'exch/CPU s':>11} {'CPU s/100k':>10}")
        for mode in a.modes.split(","):
            for fmt in a.formats.split(","):
                for name, tapline in readers:
                    if mode == "show":
                        seen, cpu = run_show(str(tapline), fmt, spool, a.count, work)
                    else:
                        seen, cpu = run_follow(str(tapline), fmt, spool, a.count, work)
                    print(f"{name:<9} {mode:<7} {fmt:<6} {seen:>9} {cpu:>7.2f} "
                          f"{seen / cpu if cpu else 0:>11.0f} "
                          f"{cpu * 100_000 / seen if seen else 0:>10.2f}", flush=True)
        if a.live:
            print(f"{'reader':<9} {'live':<14} {'reported':>9} {'tapline CPU':>11} "
                  f"{'program CPU':>11}  req/s, summary")
            for name, tapline in readers:
                seen, tap, prog, r, summary = run_live(str(tapline), exe, port, a.count)
                print(f"{name:<9} {'run --format json':<14} {seen:>9} {tap:>10.2f}s "
                      f"{prog:>10.2f}s  {r}; {summary}", flush=True)
    finally:
        srv.kill()
        srv.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
