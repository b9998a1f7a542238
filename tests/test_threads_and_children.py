"""Concurrency: many threads on their own keep-alive connections in one process, and
child processes made by subprocess, posix_spawn and fork, each reported under its own pid."""

import sys
from collections import Counter

from conftest import CLIENTS, HELLO_BODY, body_bytes, header


def test_8_threads_x_50_keepalive_requests_are_paired_exactly(run_traced, http_server,
                                                              http_port):
    threads, per = 8, 50
    proc, exs = run_traced([sys.executable, CLIENTS / "py_threads_keepalive.py", http_server,
                            threads, per], timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().startswith(f"requests={threads * per} errors=0")
    assert len(exs) == threads * per

    urls = Counter(e["url"] for e in exs)
    expected = {f"http://127.0.0.1:{http_port}/hello?t={t}&i={i}"
                for t in range(threads) for i in range(per)}
    assert set(urls) == expected
    assert max(urls.values()) == 1
    for e in exs:
        query = e["url"].split("?", 1)[1]
        # the response paired with this request is the one the server made for it
        assert header(e["response_headers"], "X-Echo-Query") == query, e["url"]
        assert e["status"] == 200
        assert body_bytes(e, "response") == HELLO_BODY
        assert e["error"] is None
    assert len({e["pid"] for e in exs}) == 1

    # Per thread: one connection (one client port) and its requests in order.
    by_thread = {}
    for e in exs:
        q = dict(kv.split("=") for kv in e["url"].split("?", 1)[1].split("&"))
        by_thread.setdefault(int(q["t"]), []).append((int(q["i"]), e))
    for t, items in by_thread.items():
        ports = {header(e["response_headers"], "X-Client-Port") for _, e in items}
        assert len(ports) == 1, f"thread {t} used {len(ports)} connections"
        order = [i for i, e in sorted(items, key=lambda ie: ie[1]["start_unix_ns"])]
        assert order == list(range(per)), f"thread {t}: exchanges out of order"


def test_children_by_subprocess_posix_spawn_and_fork_keep_their_own_pid(run_traced,
                                                                         http_server):
    proc, exs = run_traced([sys.executable, CLIENTS / "py_children.py", http_server])
    assert proc.returncode == 0, proc.stderr
    pids = {}
    for line in proc.stdout.decode().splitlines():
        role, pid = line.split()
        pids[role] = int(pid)
    assert set(pids) == {"parent", "subprocess", "posix_spawn", "fork"}
    assert len(set(pids.values())) == 4

    who = {}
    for e in exs:
        q = (e.get("url") or "").split("who=")
        assert len(q) == 2, f"unexpected exchange {e.get('url')}"
        who.setdefault(q[1], []).append(e)
    assert sorted(who) == ["fork", "parent-after", "parent-before", "posix_spawn",
                           "subprocess"]
    for role, es in who.items():
        assert len(es) == 1, f"{role}: {len(es)} exchanges"
        expected_pid = pids["parent" if role.startswith("parent") else role]
        assert es[0]["pid"] == expected_pid, f"{role} reported under pid {es[0]['pid']}"
        assert es[0]["status"] == 200
        assert body_bytes(es[0], "response") == HELLO_BODY


def test_connect_on_one_thread_io_on_another_with_fd_churn(c_programs, run_traced,
                                                           http_port):
    """Java HttpClient's pattern (non-blocking connect on one thread, writev/read on
    another) while other threads reuse fd numbers: exactly one exchange per request,
    nothing phantom (seen: extra `"request not captured"` exchanges)."""
    exe = c_programs("handoff_threads_fd_churn")
    n = 200
    proc, exs = run_traced([exe, http_port, n])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().strip() == f"exchanges ok: {n} of {n}"
    urls = Counter(e.get("url") for e in exs)
    expected = {f"http://127.0.0.1:{http_port}/hello?from=handoff&i={i}" for i in range(n)}
    assert set(urls) == expected, f"unexpected: {[(u, c) for u, c in urls.items() if u not in expected]}"
    assert max(urls.values()) == 1
    assert all(e["status"] == 200 and e["error"] is None for e in exs)
