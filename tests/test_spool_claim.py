"""Claiming ready-made segments (`free-<k>.tls`, made by the reader): a process's first
claim tries `free-0.tls`, `free-1.tls`, ... without listing the directory and takes one
where it is, by a compare-and-swap of the header's `creator` word (a follower gives it
its claimed name later); later claims rename one straight to `<pid>-<seq>.tls`.

Processes starting at the same moment race for the same ready-made segments: exactly
one wins each (the losers try the next name or make their own), and every record of
every process is read once. A writer killed between its claim and its header leaves a
segment whose header page is zeros but for `creator`: readers neither choke on it nor
report it as damage."""

import os
import struct
import subprocess
import sys
import time

from conftest import clean_env, spool_records

SEGMENT = 64 << 10
PROCESSES = 8
FREE = 2

# Waits for the go file, then one GET: all processes claim at about the same moment.
CLIENT = """
import http.client, os, sys, time
port, i, go = int(sys.argv[1]), sys.argv[2], sys.argv[3]
while not os.path.exists(go):
    time.sleep(0.001)
conn = http.client.HTTPConnection("127.0.0.1", port)
conn.request("GET", f"/race?i={i}")
conn.getresponse().read()
"""


def make_free(spool, k):
    """A ready-made segment as tapline.h says a reader makes one: zeros, full size."""
    tmp = spool / f".free-test-{k}.tmp"
    tmp.write_bytes(bytes(SEGMENT))
    os.link(tmp, spool / f"free-{k}.tls")
    tmp.unlink()
    return os.stat(spool / f"free-{k}.tls").st_ino


def header_creator(path):
    with open(path, "rb") as f:
        head = f.read(64)
    assert head[:8] == b"TLSEG001", (path, head[:8])
    return struct.unpack_from("<I", head, 36)[0]


def test_processes_racing_for_ready_made_segments_each_get_one_and_lose_nothing(
        tapline_lib, tapline_bin, http_port, tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o700)
    inodes = {make_free(spool, k) for k in range(FREE)}
    client = tmp_path / "client.py"
    client.write_text(CLIENT)
    go = tmp_path / "go"
    env = clean_env({"LD_PRELOAD": tapline_lib, "TAPLINE_SPOOL_DIR": str(spool),
                     "TAPLINE_SEGMENT_BYTES": str(SEGMENT)})
    procs = [subprocess.Popen([sys.executable, str(client), str(http_port), str(i), str(go)],
                              env=env, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for i in range(PROCESSES)]
    time.sleep(0.5)  # let them start (not a timing assertion: they wait for `go`)
    go.touch()
    pids = set()
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err.decode(errors="replace")[-2000:]
        pids.add(p.pid)

    names = sorted(os.listdir(spool))
    assert not [n for n in names if n.startswith(".claim-")], names
    segments = [n for n in names if n.endswith(".tls")]
    # One segment per process, its header naming it: the ready-made ones claimed where
    # they are (no reader ran to give them their claimed names), each by exactly one
    # process; the others made by the processes that lost, named after them.
    creators = sorted(header_creator(spool / n) for n in segments)
    assert creators == sorted(pids), (names, creators)
    free = [n for n in segments if n.startswith("free-")]
    assert sorted(os.stat(spool / n).st_ino for n in free) == sorted(inodes), names
    assert len(free) == FREE, names
    for n in segments:
        if not n.startswith("free-"):
            assert header_creator(spool / n) == int(n.split("-")[0]), n

    # Every request read exactly once, nothing dropped.
    records = spool_records(tapline_bin, spool)
    assert not [r for r in records if r["type"] == "drops"]
    seen = sorted(i for r in records if r["type"] in ("data", "data_end")
                  for i in range(PROCESSES) if f"/race?i={i} " in str(r))
    assert seen == list(range(PROCESSES)), seen


def test_a_writer_killed_between_its_claim_and_its_header_is_no_damage(
        tapline_bin, tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o700)
    child = subprocess.Popen(["true"])
    child.wait()
    # What such a writer leaves: a ready-made segment whose `creator` word (u32 at 36)
    # names it, and no header.
    claimed = bytearray(SEGMENT)
    struct.pack_into("<I", claimed, 36, child.pid)
    (spool / "free-0.tls").write_bytes(bytes(claimed))
    proc = subprocess.run([tapline_bin, "show", str(spool)], capture_output=True,
                          stdin=subprocess.DEVNULL, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert b"unreadable" not in proc.stderr, proc.stderr.decode(errors="replace")
    # The same file with something else than zeros in its header is still reported.
    (spool / "free-0.tls").write_bytes(b"\x01" * SEGMENT)
    proc = subprocess.run([tapline_bin, "show", str(spool)], capture_output=True,
                          stdin=subprocess.DEVNULL, timeout=60)
    assert b"not a tapline segment" in proc.stderr, proc.stderr.decode(errors="replace")
