"""`tapline run` when the writer loses records (issue 15): a reader that falls behind
lets the spool reach its bound (`TAPLINE_SPOOL_MAX_BYTES`), the library drops records
and says so in `Drops` records, and goes on writing once the reader catches up. The
exchanges whose records were lost must not wait in the reader's memory for messages
that will never come: while the program still holds its keep-alive connection open,
every exchange it made has been reported once — complete, or with the error `records
lost (spool full)` — or, when no record of it is left, counted in the summary line
(`N exchanges with no record left`), so nothing of the connection is held.

The reader is made to fall behind for real: tapline is stopped (SIGSTOP) while the
program (its child, not stopped) makes far more requests than the spool's bound holds
— counted by the server, not timed — then continued. The server then answers the last 5,000 requests slowly (about 1 ms
each): the reader catches up, the writer writes again, and no record is lost at the
end (exchanges lost at the very end, with nothing after them, are known only as
counted records). So the run has records lost in the middle of the connection, and
exchanges after them."""

import json
import queue
import re
import signal
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from conftest import REPO, clean_env, require_tool

# A hang guard for a report line, not a timing assertion.
LINE_WAIT = 30
LOST = "records lost (spool full)"
RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 64\r\n\r\n"
            + b"0123456789abcdef" * 4)


class CountingServer:
    """Answers http_pingpong's GETs on 127.0.0.1 (one connection at a time) and counts
    the requests it answered."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.answered = 0
        self.more = threading.Condition()
        # Seconds to wait before each answer, while set.
        self.pace = None
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            buf = b""
            with conn:
                while True:
                    data = conn.recv(65536)
                    if not data:
                        break
                    buf += data
                    heads = buf.count(b"\r\n\r\n")
                    if heads and self.pace:
                        threading.Event().wait(self.pace)
                    if heads:
                        buf = buf[buf.rindex(b"\r\n\r\n") + 4:]
                        conn.sendall(RESPONSE * heads)
                        with self.more:
                            self.answered += heads
                            self.more.notify_all()

    def wait_for(self, n):
        with self.more:
            assert self.more.wait_for(lambda: self.answered >= n, timeout=LINE_WAIT), \
                f"the program stopped at {self.answered} requests"

    def close(self):
        self.sock.close()


@pytest.fixture(scope="module")
def pingpong_client(tmp_path_factory):
    require_tool("gcc")
    exe = tmp_path_factory.mktemp("pingpong") / "http_pingpong"
    subprocess.run(["gcc", "-O2", "-o", str(exe), str(REPO / "bench" / "http_pingpong.c")],
                   check=True)
    return str(exe)


def vm_hwm_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM")


def test_records_lost_on_a_keepalive_connection_are_reported_while_it_is_open(
        tapline_bin, pingpong_client):
    n, stopped_for = 16_000, 10_000
    server = CountingServer()
    # Two segments of 1 MiB: a few thousand exchanges' records, then drops.
    env = clean_env({"TAPLINE_SEGMENT_BYTES": str(1 << 20),
                     "TAPLINE_SPOOL_MAX_BYTES": str(2 << 20)})
    proc = subprocess.Popen(
        [tapline_bin, "run", "--format", "json", "--", pingpong_client, "client",
         str(server.port), str(n), "numbered", "hold"],
        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(l) for l in iter(proc.stderr.readline, b"")]
                     + [lines.put(b"")], daemon=True).start()
    try:
        # tapline's reader stops; the program does not.
        server.wait_for(1_000)
        proc.send_signal(signal.SIGSTOP)
        server.wait_for(server.answered + stopped_for)
        server.pace = 0.001
        resumed_at = server.answered
        proc.send_signal(signal.SIGCONT)
        complete, lost, numbers, conns, others = 0, [], set(), set(), []
        while n - 1 not in numbers:
            try:
                line = lines.get(timeout=LINE_WAIT)
            except queue.Empty:
                missing = sorted(set(range(n)) - numbers)
                pytest.fail(f"no report line for {LINE_WAIT} s: {complete} complete, "
                            f"{len(lost)} lost, answered {server.answered}, resumed at "
                            f"{resumed_at}, pace {server.pace}, numbers missing "
                            f"{len(missing)}: {missing[:5]} .. {missing[-5:]}, "
                            f"lost: {[x['url'] for x in lost[:3]]}")
            assert line, (f"tapline's report ended after {complete} complete and "
                          f"{len(lost)} lost exchanges", others[-5:])
            if not line.startswith(b"{"):
                others.append(line.decode(errors="replace").rstrip("\n"))
                continue
            ex = json.loads(line)
            m = re.fullmatch(r"http://127\.0\.0\.1:\d+/ping\?i=(\d+)", ex["url"] or "")
            if m:
                i = int(m.group(1))
                assert i not in numbers, f"exchange {i} reported twice"
                numbers.add(i)
            conns.add(ex["conn_id"])
            if ex["error"] is None:
                assert m and ex["status"] == 200, ex
                complete += 1
            else:
                # Damaged: what is left of it (its request, or nothing), said so.
                assert ex["error"] == LOST, ex
                lost.append(ex)
        # Every exchange is out while the connection is still open: none waits in
        # tapline's memory for records that were lost.
        hwm = vm_hwm_kib(proc.pid)
        assert numbers <= set(range(n)) and len(conns) == 1
        assert proc.stdout.readline(), "the program ended without its rate line"
        assert server.answered == n
        print(f"\n{n} exchanges, {complete} complete, {len(lost)} cut short by lost "
              f"records; tapline VmHWM {hwm / 1024:.1f} MB")
        proc.stdin.close()
        assert proc.wait(timeout=LINE_WAIT) == 0
        rest = []
        while (line := lines.get(timeout=LINE_WAIT)):
            rest.append(line.decode(errors="replace").rstrip("\n"))
        # Nothing more came out at exit (each exchange once), and the summary says
        # what was lost.
        assert not [l for l in rest if l.startswith("{")], rest[:3]
        summary = next(l for l in rest if l.startswith("tapline: "))
        m = re.search(r", (\d+) records? lost(?:, (\d+) exchanges? with no record left)?$",
                      summary)
        assert m and int(m.group(1)) > 0, summary
        gone = int(m.group(2) or 0)
        errors = f"{len(lost)} error" + ("" if len(lost) == 1 else "s")
        assert summary.startswith(f"tapline: {complete + len(lost)} exchanges, {errors}, "), \
            summary
        # Each exchange once: reported, or counted as gone.
        assert complete + len(lost) + gone == n, (complete, len(lost), gone, summary)
        assert lost or gone, "no exchange lost: the spool bound was not reached"
    finally:
        proc.send_signal(signal.SIGCONT)
        proc.kill()
        proc.wait()
        server.close()
