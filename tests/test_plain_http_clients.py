"""Plain-HTTP exchanges made by real clients (curl, wget, Python, Node, Java, Perl),
captured by `tapline run --format json`: method, URL, host/port/path, status, headers,
body prefixes and sizes, HTTP version, and message framing (Content-Length, chunked,
close-delimited, HEAD, Expect: 100-continue)."""

import hashlib
import json
import sys

import pytest

from conftest import (CLIENTS, HELLO_BODY, assert_hello, body_bytes, header, one, pattern,
                      require_tool)

MAX_BODY_DEFAULT = 8192


def nonperiodic_text(n):
    """n printable bytes with no repetition a framer could confuse (a hex hash chain)."""
    out, h = bytearray(), b"tapline"
    while len(out) < n:
        h = hashlib.sha256(h).digest()
        out += h.hex().encode()
    return bytes(out[:n])


def test_curl_get_with_query_and_custom_header(run_traced, http_server, http_port):
    require_tool("curl")
    proc, exs = run_traced(["curl", "-sS", "-H", "X-Tapline-Test: curl-get",
                            f"{http_server}/hello?from=curl&n=1"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == HELLO_BODY  # the command's own stdout passes through
    assert len(exs) == 1, exs
    ex = exs[0]
    assert_hello(ex, http_port, "from=curl&n=1")
    assert ex["http_version"] == "1.1"
    assert header(ex["request_headers"], "X-Tapline-Test") == "curl-get"
    assert header(ex["request_headers"], "User-Agent").startswith("curl/")
    assert header(ex["request_headers"], "Host") == f"127.0.0.1:{http_port}"
    assert header(ex["response_headers"], "Content-Length") == str(len(HELLO_BODY))
    assert not ex["request_body_size"]
    assert ex["truncated"] is False
    assert isinstance(ex["pid"], int) and ex["pid"] > 0
    assert ex["start_unix_ns"] > 1_600_000_000 * 10**9


def test_curl_post_1mib_with_expect_100_continue(run_traced, http_server, tmp_path):
    require_tool("curl")
    data = nonperiodic_text(1 << 20)
    f = tmp_path / "upload.bin"
    f.write_bytes(data)
    proc, exs = run_traced(["curl", "-sS", "-H", "Expect: 100-continue",
                            "-H", "Content-Type: application/octet-stream",
                            "--data-binary", f"@{f}", f"{http_server}/echo?from=curl-post"])
    assert proc.returncode == 0, proc.stderr
    reply = json.loads(proc.stdout)
    assert reply["size"] == len(data)
    assert reply["sha256"] == hashlib.sha256(data).hexdigest()

    ex = one(exs, "/echo?from=curl-post")
    assert ex["method"] == "POST"
    assert ex["path"] == "/echo"
    assert ex["status"] == 200  # the final status, not the interim 100 Continue
    assert header(ex["request_headers"], "Expect") == "100-continue"
    assert header(ex["request_headers"], "Content-Length") == str(1 << 20)
    assert ex["request_body_size"] == 1048576
    captured = body_bytes(ex, "request")
    assert captured, "no request body prefix captured"
    assert len(captured) <= MAX_BODY_DEFAULT
    assert data.startswith(captured)
    assert ex["truncated"] is True
    assert ex["response_body_size"] == len(proc.stdout)
    assert body_bytes(ex, "response") == proc.stdout
    assert ex["error"] is None


def test_curl_chunked_request_body_size_is_decoded(run_traced, http_server, tmp_path):
    require_tool("curl")
    data = nonperiodic_text(20000)
    f = tmp_path / "upload.txt"
    f.write_bytes(data)
    proc, exs = run_traced(["curl", "-sS", "-H", "Transfer-Encoding: chunked",
                            "--data-binary", f"@{f}", f"{http_server}/echo?from=chunked-up"])
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["size"] == len(data)
    ex = one(exs, "from=chunked-up")
    assert ex["request_body_size"] == len(data)
    captured = body_bytes(ex, "request")
    assert captured and data.startswith(captured)


def test_curl_head_has_no_body_and_next_response_on_same_connection_parses(
        run_traced, http_server, http_port):
    require_tool("curl")
    # HEAD announces Content-Length: 1000 but sends no body; the GET that follows on the
    # same connection must still be framed correctly.
    proc, exs = run_traced(["curl", "-sS", "-I", f"{http_server}/bytes/1000?from=head",
                            "--next", "-sS", f"{http_server}/hello?after=head"])
    assert proc.returncode == 0, proc.stderr
    assert len(exs) == 2, [e.get("url") for e in exs]
    head = one(exs, "from=head")
    assert head["method"] == "HEAD"
    assert head["status"] == 200
    assert header(head["response_headers"], "Content-Length") == "1000"
    assert not head["response_body_size"]
    assert body_bytes(head, "response") in (None, b"")
    assert_hello(one(exs, "after=head"), http_port, "after=head")


def test_curl_chunked_response_large(run_traced, http_server):
    require_tool("curl")
    n = 50000
    proc, exs = run_traced(["curl", "-sS", f"{http_server}/chunked/{n}?from=chunked"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == pattern(n)
    ex = one(exs, "/chunked/")
    assert header(ex["response_headers"], "Transfer-Encoding") == "chunked"
    assert ex["response_body_size"] == n
    captured = body_bytes(ex, "response")
    assert captured and len(captured) <= MAX_BODY_DEFAULT
    assert pattern(n).startswith(captured)
    assert ex["truncated"] is True


def test_curl_chunked_response_small_is_whole_and_dechunked(run_traced, http_server):
    require_tool("curl")
    n = 1000
    proc, exs = run_traced(["curl", "-sS", f"{http_server}/chunked/{n}"])
    assert proc.returncode == 0, proc.stderr
    ex = one(exs, "/chunked/")
    assert ex["response_body_size"] == n
    assert body_bytes(ex, "response") == pattern(n)  # no chunk-size lines, no trailer
    assert ex["truncated"] is False


def test_http10_close_delimited_response(run_traced, http_server):
    require_tool("curl")
    proc, exs = run_traced(["curl", "-sS", "--http1.0", f"{http_server}/http10?from=http10"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == pattern(3000)
    ex = one(exs, "/http10")
    assert ex["http_version"] == "1.0"
    assert ex["status"] == 200
    assert header(ex["response_headers"], "Content-Length") is None
    assert ex["response_body_size"] == 3000
    assert body_bytes(ex, "response") == pattern(3000)
    assert ex["error"] is None


def test_status_codes_on_one_connection(run_traced, http_server):
    require_tool("curl")
    proc, exs = run_traced(["curl", "-sS", "-o", "/dev/null", "-o", "/dev/null",
                            "-o", "/dev/null", f"{http_server}/status/404",
                            f"{http_server}/status/500", f"{http_server}/status/204"])
    assert proc.returncode == 0, proc.stderr
    assert sorted(e["status"] for e in exs) == [204, 404, 500]
    for e in exs:
        assert e["path"] == f"/status/{e['status']}"


def test_max_body_env_limits_captured_prefix(run_traced, http_server):
    require_tool("curl")
    proc, exs = run_traced(["curl", "-sS", f"{http_server}/bytes/5000?from=maxbody"],
                           env={"TAPLINE_MAX_BODY": "100"})
    assert proc.returncode == 0, proc.stderr
    ex = one(exs, "from=maxbody")
    assert ex["response_body_size"] == 5000
    captured = body_bytes(ex, "response")
    assert captured and len(captured) <= 100
    assert pattern(5000).startswith(captured)
    assert ex["truncated"] is True


def test_wget_get(run_traced, http_server, http_port):
    require_tool("wget")
    proc, exs = run_traced(["wget", "-q", "-O", "-", "--header", "X-Tapline-Test: wget",
                            f"{http_server}/bytes/3000?from=wget"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == pattern(3000)
    ex = one(exs, "from=wget")
    assert ex["method"] == "GET"
    assert ex["url"] == f"http://127.0.0.1:{http_port}/bytes/3000?from=wget"
    assert ex["status"] == 200
    assert header(ex["request_headers"], "X-Tapline-Test") == "wget"
    assert header(ex["request_headers"], "User-Agent").startswith("Wget/")
    assert ex["response_body_size"] == 3000
    assert body_bytes(ex, "response") == pattern(3000)


def test_python_urllib_get_post_and_http10(run_traced, http_server, http_port):
    proc, exs = run_traced([sys.executable, CLIENTS / "py_urllib_get.py", http_server])
    assert proc.returncode == 0, proc.stderr
    assert len(exs) == 3, [e.get("url") for e in exs]
    get = one(exs, "/hello?from=urllib")
    assert_hello(get, http_port, "from=urllib")
    assert header(get["request_headers"], "X-Tapline-Test") == "urllib-get"
    assert header(get["request_headers"], "User-Agent").startswith("Python-urllib/")

    post = one(exs, "/echo?from=urllib")
    assert post["method"] == "POST"
    sent = b"field=tapline&filler=" + b"x" * 3000
    assert post["request_body_size"] == len(sent)
    assert body_bytes(post, "request") == sent
    assert header(post["request_headers"], "Content-Type") == "application/x-www-form-urlencoded"
    assert json.loads(body_bytes(post, "response"))["size"] == len(sent)

    h10 = one(exs, "/http10/5000")
    assert h10["status"] == 200
    assert h10["response_body_size"] == 5000
    assert body_bytes(h10, "response") == pattern(5000)
    # all three from the one process tapline ran
    assert len({e["pid"] for e in exs}) == 1


def test_python_requests_session_20_on_one_connection(run_traced, http_server, http_port):
    proc, exs = run_traced([sys.executable, CLIENTS / "py_requests_session.py", http_server, 20])
    assert proc.returncode == 0, proc.stderr
    # client output: "<i> <echoed query> <client port seen by the server> <body>"
    lines = [ln.split() for ln in proc.stdout.decode().splitlines()]
    assert len(lines) == 20
    client_ports = {ln[2] for ln in lines}
    assert len(client_ports) == 1, "requests did not reuse its connection"
    assert len(exs) == 20, [e.get("url") for e in exs]
    assert len({e["peer"] for e in exs}) == 1
    assert {e["peer"] for e in exs} == {f"127.0.0.1:{http_port}"}
    # keep-alive really happened: the server saw one client port for all 20
    seen_ports = {header(e["response_headers"], "X-Client-Port") for e in exs}
    assert seen_ports == client_ports
    ordered = sorted(exs, key=lambda e: e["start_unix_ns"])
    for i, ex in enumerate(ordered):
        assert_hello(ex, http_port, f"i={i}")
        assert header(ex["request_headers"], "X-Tapline-Test") == f"session-{i}"


def test_node_http_module(run_traced, http_server, http_port):
    require_tool("node")
    proc, exs = run_traced(["node", CLIENTS / "node_http_get.js", http_server])
    assert proc.returncode == 0, proc.stderr
    assert len(exs) == 2, [e.get("url") for e in exs]
    get = one(exs, "/hello?from=node-http")
    assert_hello(get, http_port, "from=node-http")
    assert header(get["request_headers"], "X-Tapline-Test") == "node-http"
    post = one(exs, "/echo?from=node-http")
    assert post["method"] == "POST"
    sent = json.dumps({"runtime": "node", "data": "y" * 2000}, separators=(",", ":")).encode()
    assert post["request_body_size"] == len(sent)
    assert body_bytes(post, "request") == sent
    assert post["status"] == 200


def test_node_global_fetch(run_traced, http_server, http_port):
    require_tool("node")
    proc, exs = run_traced(["node", CLIENTS / "node_fetch.js", http_server])
    assert proc.returncode == 0, proc.stderr
    assert len(exs) == 2, [e.get("url") for e in exs]
    get = one(exs, "/bytes/5000?from=node-fetch")
    assert get["method"] == "GET" and get["status"] == 200
    assert get["host"] == "127.0.0.1" and get["port"] == http_port
    assert header(get["request_headers"], "X-Tapline-Test") == "node-fetch"
    assert get["response_body_size"] == 5000
    assert body_bytes(get, "response") == pattern(5000)
    post = one(exs, "/echo?from=node-fetch")
    assert post["request_body_size"] == 1500
    assert body_bytes(post, "request") == b"z" * 1500


def test_java_httpclient_http11(run_traced, http_server, http_port):
    require_tool("java")
    proc, exs = run_traced(["java", CLIENTS / "JavaHttpClient.java", http_server])
    assert proc.returncode == 0, proc.stderr
    assert b"GET 200 from=java hello, tapline" in proc.stdout
    hello = [e for e in exs if e.get("path") == "/hello"]
    assert len(hello) == 1, [e.get("url") for e in exs]
    assert_hello(hello[0], http_port, "from=java")
    assert hello[0]["http_version"] == "1.1"
    assert header(hello[0]["request_headers"], "X-Tapline-Test") == "java"
    post = one(exs, "/echo?from=java")
    assert post["request_body_size"] == 2500
    assert body_bytes(post, "request") == b"j" * 2500
    assert post["status"] == 200


def test_perl_http_tiny(run_traced, http_server, http_port):
    require_tool("perl")
    proc, exs = run_traced(["perl", CLIENTS / "perl_http_tiny.pl", http_server])
    assert proc.returncode == 0, proc.stderr
    assert len(exs) == 2, [e.get("url") for e in exs]
    get = one(exs, "/hello?from=perl")
    assert_hello(get, http_port, "from=perl")
    assert header(get["request_headers"], "X-Tapline-Test") == "perl"
    assert header(get["request_headers"], "User-Agent").startswith("HTTP-Tiny/")
    post = one(exs, "/echo?from=perl")
    assert post["request_body_size"] == 1800
    assert body_bytes(post, "request") == b"p" * 1800


def test_ruby_net_http(run_traced, http_server, http_port):
    require_tool("ruby")
    proc, exs = run_traced(["ruby", CLIENTS / "ruby_net_http.rb", http_server])
    assert proc.returncode == 0, proc.stderr
    assert len(exs) == 2, [e.get("url") for e in exs]
    get = one(exs, "/hello?from=ruby")
    assert_hello(get, http_port, "from=ruby")
    assert header(get["request_headers"], "X-Tapline-Test") == "ruby"
    post = one(exs, "/echo?from=ruby")
    assert post["method"] == "POST"
    assert post["request_body_size"] == 2200
    assert body_bytes(post, "request") == b"r" * 2200
    assert json.loads(body_bytes(post, "response"))["size"] == 2200


def test_c_nonblocking_connect_to_v4_mapped_ipv6(c_programs, run_traced, http_port):
    """AF_INET6 socket, EINPROGRESS connect to ::ffff:127.0.0.1, writev + read, keep-alive
    (what Java's HttpClient does, without the JVM)."""
    exe = c_programs("nonblocking_connect_v6mapped")
    proc, exs = run_traced([exe, http_port, 3])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().splitlines()[0] == "connect: in progress"
    assert len(exs) == 3, [e.get("url") for e in exs]
    for i in range(3):
        ex = one(exs, f"from=c-v6mapped&i={i}")
        assert_hello(ex, http_port, f"from=c-v6mapped&i={i}")
        assert header(ex["request_headers"], "User-Agent") == "nonblocking-c"
