"""Reports written while the program runs: `tapline run` prints each exchange when it
completes, `tapline show --follow` tails a spool other processes write and stops cleanly
on SIGTERM, a long keep-alive run gives every exchange exactly once, exchanges still
open at exit are printed with their state, and the table fits a terminal."""

import fcntl
import json
import os
import pty
import queue
import re
import signal
import socket
import struct
import subprocess
import sys
import termios
import threading

import pytest

from conftest import CLIENTS, REPO, clean_env, require_tool

# A hang guard for reading a report line, not a timing assertion: a line that does not
# come within it means the test has failed anyway.
LINE_WAIT = 120


class Lines:
    """The lines of a stream, read by a thread as they come."""

    def __init__(self, stream):
        self.q = queue.Queue()
        self.t = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self.t.start()

    def _pump(self, stream):
        for raw in stream:
            self.q.put(raw.decode(errors="replace").rstrip("\n"))
        self.q.put(None)

    def next_json(self):
        """The next line that is a JSON object (the program's own lines are skipped)."""
        while True:
            line = self.q.get(timeout=LINE_WAIT)
            assert line is not None, "the stream ended before the next exchange"
            if line.startswith("{"):
                return json.loads(line)

    def rest(self):
        """Every line left, once the stream has ended."""
        self.t.join(timeout=LINE_WAIT)
        out = []
        while True:
            line = self.q.get(timeout=LINE_WAIT)
            if line is None:
                return out
            out.append(line)


def summary(lines):
    found = [l for l in lines if re.match(r"tapline: \d+ exchanges?, ", l)]
    assert found, lines[-20:]
    return found[-1]


def test_run_json_prints_the_first_exchange_before_the_second_call(tapline_bin, http_server,
                                                                   tmp_path):
    marker = tmp_path / "second-call-made"
    proc = subprocess.Popen(
        [tapline_bin, "run", "--format", "json", "--", sys.executable,
         str(CLIENTS / "py_gap_calls.py"), http_server, str(marker), "3"],
        env=clean_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE)
    try:
        lines = Lines(proc.stderr)
        first = lines.next_json()
        # The program has not made its second call yet: the report is live.
        assert not marker.exists(), "the first exchange came only after the second call"
        assert first["url"].endswith("/hello?call=first") and first["status"] == 200, first
        second = lines.next_json()
        assert second["url"].endswith("/hello?call=second"), second
        assert proc.wait(timeout=LINE_WAIT) == 0
        rest = lines.rest()
    finally:
        proc.kill()
    assert not [l for l in rest if l.startswith("{")], "an exchange came out twice"
    assert summary(rest).startswith("tapline: 2 exchanges, 0 errors, "), rest


def is_segment(name):
    return name[:1].isdigit() and name.endswith(".tls")


def test_show_follow_tails_a_spool_written_elsewhere_and_stops_on_sigterm(
        tapline_bin, tapline_lib, http_server, tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o700)
    follow = subprocess.Popen([tapline_bin, "show", "--follow", "--format", "json", str(spool)],
                              env=clean_env(), stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    env = clean_env({"LD_PRELOAD": tapline_lib, "TAPLINE_SPOOL_DIR": str(spool)})
    client = subprocess.Popen([sys.executable, str(CLIENTS / "py_stdin_calls.py")], env=env,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        lines = Lines(follow.stderr)
        for n in (1, 2):
            client.stdin.write(f"{http_server}/hello?n={n}\n")
            client.stdin.flush()
            assert client.stdout.readline().startswith("done"), "the client failed"
            ex = lines.next_json()
            # Printed while the program that made it still runs.
            assert client.poll() is None
            assert ex["url"].endswith(f"/hello?n={n}") and ex["status"] == 200, ex
            assert ex["pid"] == client.pid
        client.stdin.close()
        assert client.wait(timeout=LINE_WAIT) == 0
        # The client is gone: what it wrote is handed back or deleted once read, so the
        # spool does not keep it (looked at until it holds, bounded by the hang guard).
        for _ in range(LINE_WAIT * 10):
            left = [n for n in os.listdir(spool) if is_segment(n) or n.endswith(".tlr")]
            if not left:
                break
            threading.Event().wait(0.1)
        assert not left, f"the spool still holds {left}"
        follow.send_signal(signal.SIGTERM)
        assert follow.wait(timeout=LINE_WAIT) == 0
        rest = lines.rest()
    finally:
        client.kill()
        follow.kill()
    assert not [l for l in rest if l.startswith("{")], "an exchange came out twice"
    assert summary(rest).startswith("tapline: 2 exchanges, 0 errors, "), rest


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


def test_200000_keepalive_exchanges_come_out_each_once(tapline_bin, pingpong):
    exe, port = pingpong
    n = 200_000
    proc = subprocess.Popen(
        [tapline_bin, "run", "--format", "json", "--", exe, "client", str(port), str(n),
         "numbered"],
        env=clean_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE)
    seen = [0] * n
    others = []
    conns = set()
    try:
        for raw in proc.stderr:
            if not raw.startswith(b"{"):
                others.append(raw.decode(errors="replace").rstrip("\n"))
                continue
            ex = json.loads(raw)
            m = re.fullmatch(r"http://127\.0\.0\.1:\d+/ping\?i=(\d+)", ex["url"])
            assert m and ex["status"] == 200 and ex["error"] is None, ex
            seen[int(m.group(1))] += 1
            conns.add(ex["conn_id"])
        assert proc.wait(timeout=LINE_WAIT) == 0, others
    finally:
        proc.kill()
    missing = [i for i, c in enumerate(seen) if c == 0]
    twice = [i for i, c in enumerate(seen) if c > 1]
    assert not missing and not twice, (len(missing), missing[:5], len(twice), twice[:5], others)
    assert len(conns) == 1
    assert summary(others).startswith(f"tapline: {n} exchanges, 0 errors, "), others
    assert summary(others).endswith(", 0 records lost"), others


def test_an_exchange_still_open_at_exit_is_printed_with_its_state(run_traced):
    # A listener that never accepts: the kernel completes the handshake, nobody answers.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)
    port = silent.getsockname()[1]
    try:
        cmd = [sys.executable, str(CLIENTS / "py_unanswered_call.py"), "127.0.0.1", str(port)]
        proc, exchanges = run_traced(cmd)
        _, table = run_traced(cmd, fmt="table")
    finally:
        silent.close()
    assert proc.returncode == 0, proc.stderr
    (ex,) = [e for e in exchanges if e["path"] == "/never-answered"]
    # Python closes the socket as it exits, the call still unanswered.
    assert ex["status"] is None, ex
    assert re.fullmatch(r"no response \(client closed after \d+\.\d s\)", ex["error"]), ex
    # With --output, stderr is the program's own: no summary line there.
    assert "tapline: 1 exchange" not in proc.stderr.decode(), proc.stderr
    (row,) = [l for l in table.splitlines() if "/never-answered" in l]
    assert "error: no response (client closed after " in row, row


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def show_on_a_terminal(tapline_bin, spool, columns, extra_env):
    """`tapline show SPOOL` with stderr on a pseudo-terminal `columns` wide."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = clean_env()
    env.pop("NO_COLOR", None)
    env.pop("COLUMNS", None)
    env.update(extra_env)
    proc = subprocess.Popen([tapline_bin, "show", str(spool)], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the other side is closed
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    assert proc.wait(timeout=LINE_WAIT) == 0
    return out.decode().replace("\r\n", "\n")


def test_the_table_fits_the_terminal_and_is_whole_when_piped(tapline_bin, http_server,
                                                              tmp_path):
    require_tool("curl")
    spool = tmp_path / "spool"
    long_query = "q=" + "x" * 150 + "-end"
    script = (f"curl -s -o /dev/null '{http_server}/hello?{long_query}'; "
              f"curl -s -o /dev/null '{http_server}/status/404'")
    proc = subprocess.run([tapline_bin, "run", "--keep-spool", "--spool-dir", str(spool),
                           "-o", os.devnull, "--", "sh", "-c", script],
                          env=clean_env(), capture_output=True, timeout=LINE_WAIT)
    assert proc.returncode == 0, proc.stderr

    text = show_on_a_terminal(tapline_bin, spool, 100, {"TERM": "xterm"})
    rows = [l for l in text.splitlines() if " GET " in l]
    assert len(rows) == 2, text
    for line in text.splitlines():
        assert len(ANSI.sub("", line)) <= 100, line
    # Shortened in the middle: scheme and host, then the end of the query.
    (long_row,) = [l for l in rows if "-end" in l]
    plain = ANSI.sub("", long_row)
    assert re.search(r"http://127\.0\.0\.1\S*…x*-end ", plain), plain
    assert "x" * 150 not in plain, plain
    assert "\x1b[32m" in long_row, long_row  # 2xx: green
    (missing,) = [l for l in rows if " 404" in ANSI.sub("", l)]
    assert "\x1b[33m" in missing, missing  # 4xx: yellow

    no_color = show_on_a_terminal(tapline_bin, spool, 100, {"TERM": "xterm", "NO_COLOR": "1"})
    assert "\x1b[" not in no_color and "…" in no_color, no_color

    piped = subprocess.run([tapline_bin, "show", str(spool)], env=clean_env(),
                           capture_output=True, timeout=LINE_WAIT).stderr.decode()
    assert "\x1b[" not in piped
    assert f"/hello?{long_query}" in piped and "…" not in piped, piped
