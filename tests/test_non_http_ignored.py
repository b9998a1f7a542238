"""UDP, Unix sockets, a non-HTTP TCP protocol and file I/O produce no exchange; one real
HTTP request from the same program is the only thing reported (the control)."""

from conftest import one


def test_non_http_traffic_reports_zero_exchanges(c_programs, run_traced, run_plain,
                                                 echo_server):
    exe = c_programs("non_http_traffic")
    _, echo_port = echo_server
    plain = run_plain([exe, echo_port])
    assert plain.returncode == 0, plain.stderr
    proc, exs = run_traced([exe, echo_port])
    assert proc.returncode == 0, proc.stderr
    assert b"libtapline mapped: yes" in proc.stderr, proc.stderr
    assert proc.stdout == plain.stdout
    assert proc.stdout.decode().splitlines() == ["udp ok", "unix ok", "tcp line protocol ok",
                                                 "file ok"]
    assert exs == []


def test_non_http_traffic_then_one_http_request_reports_exactly_it(c_programs, run_traced,
                                                                   echo_server, http_port):
    exe = c_programs("non_http_traffic")
    _, echo_port = echo_server
    proc, exs = run_traced([exe, echo_port, http_port])
    assert proc.returncode == 0, proc.stderr
    assert b"libtapline mapped: yes" in proc.stderr, proc.stderr
    assert b"http control ok (got response)" in proc.stdout
    assert len(exs) == 1, [e.get("url") for e in exs]
    ex = one(exs, "/hello?from=c-control")
    assert ex["method"] == "GET" and ex["status"] == 200
