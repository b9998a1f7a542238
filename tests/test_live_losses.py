"""`tapline run` when the writer loses records (issue 15): a reader that falls behind
lets the spool reach its bound (`TAPLINE_SPOOL_MAX_BYTES`), the library drops records
and says so in `Drops` records. The exchanges whose records were lost must not wait in
the reader's memory for messages that will never come: while the program still holds
its keep-alive connection open, every exchange has been reported once — complete, or
with the error `records lost (spool full)` — so nothing of the connection is held.

The reader is made to fall behind for real: tapline's stderr is not read until the
program has made all its requests, so tapline blocks writing its report, stops reading
the spool, and the spool's bound is reached."""

import json
import re
import subprocess
import threading
from pathlib import Path

import pytest

from conftest import REPO, clean_env, require_tool

LINE_WAIT = 120
LOST = "records lost (spool full)"


@pytest.fixture(scope="module")
def pingpong(tmp_path_factory):
    """bench/http_pingpong built, and its server (fork per connection) started."""
    require_tool("gcc")
    exe = tmp_path_factory.mktemp("pingpong") / "http_pingpong"
    subprocess.run(["gcc", "-O2", "-o", str(exe), str(REPO / "bench" / "http_pingpong.c")],
                   check=True)
    srv = subprocess.Popen([str(exe), "server"], stdout=subprocess.PIPE, env=clean_env())
    port = int(srv.stdout.readline().split()[1])
    yield str(exe), port
    srv.kill()
    srv.wait()


def vm_hwm_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM")


def test_records_lost_on_a_keepalive_connection_are_reported_while_it_is_open(
        tapline_bin, pingpong):
    exe, port = pingpong
    n = 100_000
    # Two segments of 1 MiB: a few thousand exchanges' records, then drops.
    env = clean_env({"TAPLINE_SEGMENT_BYTES": str(1 << 20),
                     "TAPLINE_SPOOL_MAX_BYTES": str(2 << 20)})
    proc = subprocess.Popen(
        [tapline_bin, "run", "--format", "json", "--", exe, "client", str(port), str(n),
         "numbered", "hold"],
        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # The program's rate line: all its requests were made (and answered). Until
        # then nobody reads tapline's report, so its reader is stuck behind the pipe.
        rate = proc.stdout.readline()
        assert rate, "the program ended without its rate line"
        seen = {}
        lost = []
        keys = set()
        others = []
        while len(seen) + len(lost) < n:
            raw = proc.stderr.readline()
            assert raw, (f"tapline's report ended after {len(seen)} complete and "
                         f"{len(lost)} lost exchanges", others[-5:])
            if not raw.startswith(b"{"):
                others.append(raw.decode(errors="replace").rstrip("\n"))
                continue
            ex = json.loads(raw)
            key = (ex["conn_id"], ex["seq"])
            assert key not in keys, f"exchange {key} reported twice"
            keys.add(key)
            if ex["error"] is None:
                m = re.fullmatch(r"http://127\.0\.0\.1:\d+/ping\?i=(\d+)", ex["url"])
                assert m and ex["status"] == 200, ex
                # The k-th response answers the k-th request, after a loss too.
                assert int(m.group(1)) == ex["seq"], ex
                seen[key] = ex
            else:
                assert ex["error"] == LOST, ex
                lost.append(ex)
        # Every exchange is out while the connection is still open: none waits in
        # tapline's memory for records that were lost.
        hwm = vm_hwm_kib(proc.pid)
        assert len(keys) == n, (len(keys), n)
        assert {s for _, s in keys} == set(range(n))
        assert lost, "no record was lost: the spool bound was not reached"
        print(f"\n{n} exchanges, {len(lost)} cut short by lost records; "
              f"tapline VmHWM {hwm / 1024:.1f} MB")
        proc.stdin.close()
        rest = proc.stderr.read().decode(errors="replace").splitlines()
        assert proc.wait(timeout=LINE_WAIT) == 0
        # Nothing more came out at exit (each exchange once), and the summary says
        # what was lost.
        assert not [l for l in rest if l.startswith("{")], rest[:3]
        summary = next(l for l in rest if l.startswith("tapline: "))
        m = re.search(r", (\d+) records lost$", summary)
        assert m and int(m.group(1)) > 0, summary
        errors = f"{len(lost)} error" + ("" if len(lost) == 1 else "s")
        assert summary.startswith(f"tapline: {n} exchanges, {errors}, "), summary
    finally:
        proc.kill()
        proc.wait()
