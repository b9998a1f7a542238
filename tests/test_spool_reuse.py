"""Shared segments are reused in place: `tapline run` follows the segments while the
program runs and hands each finished one back (zeroed) to the process that keeps it
mapped, which appends into it again. A program that captures far more than the spool
directory may hold at once loses nothing; with `--keep-spool` (nothing is handed back,
so that the spool stays as written) the same program meets the bound and records are
dropped and counted — the control that shows the first test can fail."""

import sys

from conftest import body_bytes

POSTS = 40
BODY = bytes(range(256)) * 4096  # 1 MiB

CLIENT = """
import sys, time, urllib.request
port, n = int(sys.argv[1]), int(sys.argv[2])
body = bytes(range(256)) * 4096
for i in range(n):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/echo?i={i}", data=body,
                                 method="POST")
    with urllib.request.urlopen(req) as r:
        r.read()
    # A program doing other things between calls: the reader gets its turn.
    time.sleep(0.1)
print("done")
"""

# 4 segments of 4 MiB may exist at once; the program captures ~40 MiB.
ENV = {"TAPLINE_MAX_BODY": str(1 << 20), "TAPLINE_SPOOL_MAX_SEGMENTS": "4"}


def _run(run_traced, http_port, tmp_path, extra_args=()):
    client = tmp_path / "posts.py"
    client.write_text(CLIENT)
    proc, exchanges = run_traced([sys.executable, client, http_port, POSTS], env=ENV,
                                 extra_args=extra_args, timeout=120)
    assert proc.returncode == 0, (proc.returncode, proc.stderr.decode(errors="replace")[-2000:])
    assert proc.stdout == b"done\n"
    posts = [x for x in exchanges if x["path"] == "/echo"]
    return proc, posts


def test_long_run_reuses_segments_and_loses_nothing(run_traced, http_port, tmp_path):
    proc, posts = _run(run_traced, http_port, tmp_path)
    stderr = proc.stderr.decode(errors="replace")
    assert "dropped" not in stderr, stderr[-2000:]
    assert sorted(x["url"].rsplit("=", 1)[1] for x in posts) == sorted(
        str(i) for i in range(POSTS))
    for x in posts:
        assert x["method"] == "POST"
        assert x["status"] == 200
        assert x["request_body_size"] == len(BODY)
    # Where the report's budget left a prefix of a body, it is what was sent.
    for x in posts:
        got = body_bytes(x, "request")
        assert not got or BODY.startswith(got)


def test_without_reuse_the_same_run_meets_the_bound(run_traced, http_port, tmp_path):
    spool = tmp_path / "kept-spool"
    proc, posts = _run(run_traced, http_port, tmp_path,
                       extra_args=("--keep-spool", "--spool-dir", str(spool)))
    stderr = proc.stderr.decode(errors="replace")
    assert "dropped by the capture library" in stderr, stderr[-2000:]
    assert len(posts) < POSTS


def test_a_body_larger_than_a_record_is_captured_whole(run_traced, http_port, tmp_path):
    """A record holds at most 1 MiB: the library cuts larger captured writes (Python
    hands the whole body to one sendall) into pieces with offsets, and the reader puts
    them back together."""
    client = tmp_path / "big_post.py"
    client.write_text(
        "import sys, urllib.request\n"
        "body = bytes((i * 7 + i // 251) % 256 for i in range(3 << 20))\n"
        "req = urllib.request.Request(f'http://127.0.0.1:{sys.argv[1]}/echo', data=body)\n"
        "urllib.request.urlopen(req).read()\n")
    body = bytes((i * 7 + i // 251) % 256 for i in range(3 << 20))
    env = {"TAPLINE_MAX_BODY": str(4 << 20), "TAPLINE_MAX_BATCH": str(64 << 20)}
    proc, exchanges = run_traced([sys.executable, client, http_port], env=env)
    assert proc.returncode == 0, proc.stderr
    assert b"dropped" not in proc.stderr
    (x,) = [x for x in exchanges if x["path"] == "/echo"]
    assert x["request_body_size"] == len(body)
    assert body_bytes(x, "request") == body
