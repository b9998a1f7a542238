"""`TAPLINE_SPOOL_MAX_BYTES` bounds what one process holds in the spool directory now,
not what it ever wrote: a long run whose reader keeps deleting what it has read never
meets the bound. (Issue 15: the bound was a sum over the process's life, so a run that
had claimed that many segment bytes dropped every record from then on, for good, however
empty the directory was.)

The program is its own reader here, so that the test does not depend on how fast a
reader runs: every few requests it deletes its segments that are full (as a reader
that read them and nobody keeps would). Nothing is handed back, so every segment is a
new claim: the run claims many times the bound, while never holding more than a few
segments at once."""

import sys

from conftest import spool_records

SEGMENT = 64 << 10
# Four segments at once: the current one, the standby claimed at its middle, and the
# full ones the program has not deleted yet.
ENV = {"TAPLINE_SEGMENT_BYTES": str(SEGMENT), "TAPLINE_SPOOL_MAX_BYTES": str(4 * SEGMENT)}
REQUESTS = 3000

CLIENT = """
import http.client, os, struct, sys
port, n, spool = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
deleted = 0
conn = http.client.HTTPConnection("127.0.0.1", port)
for i in range(n):
    conn.request("GET", f"/ping?i={i}")
    conn.getresponse().read()
    if i % 10 == 9:
        for name in os.listdir(spool):
            if not (name.endswith(".tls") and name[0].isdigit()):
                continue
            path = os.path.join(spool, name)
            with open(path, "rb") as f:
                head = f.read(64)
            # STATE (u32 at 32) == Full (2): no more records will be reserved there.
            if len(head) == 64 and struct.unpack_from("<I", head, 32)[0] == 2:
                os.unlink(path)
                deleted += 1
print(deleted)
"""


def test_a_long_run_whose_segments_are_deleted_never_meets_the_process_bound(
        run_preloaded, tapline_bin, http_port, tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    client = tmp_path / "client.py"
    client.write_text(CLIENT)
    proc = run_preloaded([sys.executable, client, http_port, REQUESTS, spool],
                         env={**ENV, "TAPLINE_SPOOL_DIR": str(spool)}, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    deleted = int(proc.stdout)
    # The run went through many times the bound's worth of segments...
    assert deleted > 3 * 4, deleted
    # ...and dropped nothing: no Drops record (the library writes one at exit, at the
    # latest, for any record it could not write).
    records = spool_records(tapline_bin, spool)
    drops = [r for r in records if r["type"] == "drops"]
    assert drops == [], drops
    # What is left is the end of the run: its last requests are there.
    last = f"/ping?i={REQUESTS - 1} ".encode()
    assert any(last.decode() in str(r) for r in records if r["type"] in ("data", "data_end")), \
        [r["type"] for r in records][-20:]
