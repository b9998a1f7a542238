"""HTTP/2 exchanges end to end: real clients (curl with nghttp2, node's http2 module
through the inline OpenSSL hooks, Python httpx with h2) under `tapline run` against the
node HTTP/2 server (tests/servers/h2_server.js) and the h2c upgrade server
(tests/servers/h2c_upgrade_server.py) on 127.0.0.1, cleartext and TLS with ALPN h2.

Every stream is one exchange, reported once, its response paired with its own request:
method, path, status, headers (pseudo-headers out), bodies, trailers and errors are
checked exactly. Each program's output must be the same with and without tapline.
Secrets planted in HTTP/2 headers, query and body appear in no report (table, JSON,
HAR).
"""
import json
import secrets
import sys

import pytest

from conftest import CLIENTS, body_bytes, header, headers_all, require_tool, require_module

TEN = b"0123456789"


# The 30,000-byte headers are over the reader's default per-exchange header budget
# (TAPLINE_MAX_HEADERS, 16 KiB): the tests that check them whole raise it.
BIG_HEADERS = {"TAPLINE_MAX_HEADERS": "100000"}


def traced_same_as_plain(run_plain, run_traced, cmd, *, normalize=lambda b: b, fmt="json",
                         env=None):
    """Runs cmd without tapline and under `tapline run`: same exit code, stdout (after
    `normalize`) and stderr. Returns the report."""
    plain = run_plain(cmd, env=env)
    proc, report = run_traced(cmd, fmt=fmt, env=env)
    assert plain.returncode == 0, plain.stderr.decode(errors="replace")
    assert (proc.returncode, normalize(proc.stdout), proc.stderr) == (
        plain.returncode, normalize(plain.stdout), plain.stderr)
    return report


def by_path(exs, path):
    found = [e for e in exs if e["path"] == path]
    assert len(found) == 1, (path, [(e["method"], e["path"]) for e in exs])
    return found[0]


def assert_h2(ex, *, scheme, port, tls, pushed=False):
    assert ex["http_version"] == "2", ex
    assert ex["scheme"] == scheme
    assert ex["port"] == port
    assert ex["tls"] == tls
    assert ex["pushed"] is pushed
    assert ex["peer"] in (f"127.0.0.1:{port}", f"[::ffff:127.0.0.1]:{port}"), ex["peer"]
    for name, _ in ex["request_headers"] + ex["response_headers"] + ex["response_trailers"]:
        assert not name.startswith(":"), f"pseudo-header {name} among the headers"
    if tls != "none":
        assert ex["alpn"] == "h2"
        assert ex["sni"] == "localhost"


def test_curl_prior_knowledge(run_plain, run_traced, h2c_port):
    """curl --http2-prior-knowledge, four streams on one connection: a POST echoed
    back, a response with trailers, a stream the server resets with CANCEL, and a body
    larger than TAPLINE_MAX_BODY."""
    require_tool("curl")
    base = f"http://127.0.0.1:{h2c_port}"
    cmd = ["curl", "-sS", "--http2-prior-knowledge",
           "-H", "x-test: pk", "--data-binary", "posted over h2c", f"{base}/echo",
           "-:", f"{base}/trailers", "-:", f"{base}/reset", "-:", f"{base}/large?n=200000"]
    # curl reports the reset transfer on stderr and goes on with the next ones (its exit
    # code is the last transfer's).
    exs = traced_same_as_plain(run_plain, run_traced, cmd)
    assert [e["path"] for e in exs] == ["/echo", "/trailers", "/reset", "/large"]
    assert len({e["conn_id"] for e in exs}) == 1
    for e in exs:
        assert_h2(e, scheme="http", port=h2c_port, tls="none")
        assert e["host"] == "127.0.0.1"
        assert header(e["request_headers"], "user-agent").startswith("curl/")

    echo = by_path(exs, "/echo")
    assert (echo["method"], echo["status"], echo["error"]) == ("POST", 200, None)
    assert echo["url"] == f"{base}/echo"
    assert header(echo["request_headers"], "x-test") == "pk"
    assert header(echo["request_headers"], "content-length") == "15"
    assert body_bytes(echo, "request") == b"posted over h2c"
    assert body_bytes(echo, "response") == b"posted over h2c"
    assert (echo["request_body_size"], echo["response_body_size"]) == (15, 15)
    assert header(echo["response_headers"], "x-echo-method") == "POST"
    assert header(echo["response_headers"], "x-request-header") == "pk"
    assert echo["response_trailers"] == []

    tr = by_path(exs, "/trailers")
    assert (tr["method"], tr["status"], tr["error"]) == ("GET", 200, None)
    assert body_bytes(tr, "response") == b"with trailers"
    assert tr["response_trailers"] == [["grpc-status", "0"], ["x-trailer", "t1"]]
    assert header(tr["response_headers"], "grpc-status") is None
    assert header(tr["response_headers"], "content-type") == "text/plain"

    reset = by_path(exs, "/reset")
    assert (reset["method"], reset["status"]) == ("GET", None)
    assert reset["error"] == "stream reset: CANCEL"
    assert reset["response_headers"] == [] and reset["response_body"] is None

    large = by_path(exs, "/large")
    assert (large["status"], large["error"], large["truncated"]) == (200, None, True)
    assert large["url"] == f"{base}/large?n=200000"
    assert large["response_body_size"] == 200000
    prefix = body_bytes(large, "response")
    assert 0 < len(prefix) < 200000 and prefix == (TEN * 20000)[:len(prefix)]
    assert header(large["response_headers"], "content-length") == "200000"


def test_curl_tls_alpn_h2_and_a_header_block_over_16k(run_plain, run_traced, h2_tls_port,
                                                       ca_bundle):
    """curl --http2 over TLS (ALPN h2): a response header of 30,000 bytes arrives as
    HEADERS + CONTINUATION and is decoded whole."""
    require_tool("curl")
    base = f"https://localhost:{h2_tls_port}"
    cmd = ["curl", "-sS", "--http2", "--cacert", ca_bundle, f"{base}/echo?x=1",
           "-:", "--cacert", ca_bundle, "-o", "/dev/null", f"{base}/bigheader"]
    exs = traced_same_as_plain(run_plain, run_traced, cmd, env=BIG_HEADERS)
    assert [e["path"] for e in exs] == ["/echo", "/bigheader"]
    for e in exs:
        assert_h2(e, scheme="https", port=h2_tls_port, tls="openssl")
        assert (e["method"], e["host"], e["status"], e["error"]) == (
            "GET", "localhost", 200, None)
    echo = by_path(exs, "/echo")
    assert echo["url"] == f"{base}/echo?x=1"
    assert echo["response_body"] is None and echo["response_body_size"] == 0
    big = by_path(exs, "/bigheader")
    assert big["truncated"] is False
    value = header(big["response_headers"], "x-big")
    assert value is not None and len(value) == 30000 and value.isalnum()
    assert body_bytes(big, "response") == b"big header"


def test_header_block_over_the_capture_limit_loses_the_hpack_state(run_plain, run_traced,
                                                                   h2c_port):
    """A response header block longer than the library keeps (32 KiB) is cut: the
    fields before the cut are shown and the exchange is truncated; the dynamic table is
    unknown from there on, so the next stream on the connection says "HPACK state lost"
    instead of showing response headers decoded from a wrong table."""
    require_tool("curl")
    base = f"http://127.0.0.1:{h2c_port}"
    cmd = ["curl", "-sS", "--http2-prior-knowledge", "-o", "/dev/null",
           f"{base}/bigheader?n=60000", "-:", "-o", "/dev/null", f"{base}/after"]
    exs = traced_same_as_plain(run_plain, run_traced, cmd, env=BIG_HEADERS)
    assert [e["path"] for e in exs] == ["/bigheader", "/after"]
    big, after = exs
    assert (big["status"], big["error"], big["truncated"]) == (200, None, True)
    assert header(big["response_headers"], "content-type") == "text/plain"
    assert header(big["response_headers"], "x-big") is None
    assert body_bytes(big, "response") == b"big header"
    # Only the direction that lost a block is unknown: the request still decodes.
    assert (after["method"], after["error"]) == ("GET", "HPACK state lost")
    assert header(after["request_headers"], "user-agent").startswith("curl/")
    assert (after["status"], after["response_headers"]) == (None, [])


def test_default_header_budget_cuts_a_30k_header(run_traced, h2c_port):
    """Without raising TAPLINE_MAX_HEADERS, the 30,000-byte header is over the
    per-exchange header budget: the exchange is kept, marked truncated."""
    require_tool("curl")
    _, [e] = run_traced(["curl", "-sS", "--http2-prior-knowledge", "-o", "/dev/null",
                         f"http://127.0.0.1:{h2c_port}/bigheader"])
    assert (e["path"], e["status"], e["truncated"]) == ("/bigheader", 200, True)
    assert header(e["response_headers"], "x-big") is None


def test_curl_30_parallel_streams(run_plain, run_traced, h2_tls_port, ca_bundle):
    """curl -Z: 30 streams in flight on one connection. Each is one exchange, and each
    response is its own request's (the server answers `hello h2 <path>`)."""
    require_tool("curl")
    urls = [f"https://localhost:{h2_tls_port}/n{i}?q={i}" for i in range(30)]
    cmd = ["curl", "-sS", "--no-progress-meter", "-Z", "--parallel-max", "30", "--http2",
           "--cacert", ca_bundle, *urls]

    def bodies(out):  # parallel transfers finish in any order
        return sorted(out.decode().split("hello h2 "))
    exs = traced_same_as_plain(run_plain, run_traced, cmd, normalize=bodies)
    assert sorted(e["url"] for e in exs) == sorted(urls)
    assert len({e["conn_id"] for e in exs}) == 1
    for e in exs:
        assert_h2(e, scheme="https", port=h2_tls_port, tls="openssl")
        assert (e["method"], e["status"], e["error"]) == ("GET", 200, None)
        assert body_bytes(e, "response") == f"hello h2 {e['path']}".encode()
        assert e["url"].endswith(f"?q={e['path'][2:]}")


def test_node_http2_client(run_plain, run_traced, h2_tls_port, ca_bundle):
    """node's http2 client over TLS (OpenSSL inside the node binary: inline hooks) on one
    connection: 60 requests with the same headers (the 60th decodes like the 1st only
    if HPACK's dynamic table was followed block by block), a 30,000-byte request header
    (CONTINUATION), trailers, a pushed stream, a reset stream, and a GOAWAY after the
    last answer."""
    require_tool("node")
    cmd = ["node", str(CLIENTS / "node_h2_client.js"), f"https://localhost:{h2_tls_port}",
           ca_bundle]
    exs = traced_same_as_plain(run_plain, run_traced, cmd, env=BIG_HEADERS)
    assert len(exs) == 66, [(e["method"], e["path"]) for e in exs]
    assert len({e["conn_id"] for e in exs}) == 1
    for e in exs:
        assert_h2(e, scheme="https", port=h2_tls_port, tls="openssl", pushed=e["pushed"])

    echo = [e for e in exs if e["path"] == "/echo" and e["method"] == "GET"]
    assert len(echo) == 60
    for e in echo:
        assert (e["status"], e["error"], e["pushed"]) == (200, None, False)
        assert e["url"] == f"https://localhost:{h2_tls_port}/echo"
        assert header(e["request_headers"], "x-test") == "same-value"
        assert header(e["request_headers"], "user-agent") == "node-h2-test"
        assert header(e["response_headers"], "x-request-header") == "same-value"
        assert header(e["response_headers"], "x-echo-method") == "GET"
        assert e["request_body"] is None and e["response_body"] is None
    assert echo[-1]["request_headers"] == echo[0]["request_headers"]

    [big] = [e for e in exs if e["method"] == "POST"]
    assert (big["path"], big["status"], big["error"]) == ("/echo", 200, None)
    assert header(big["request_headers"], "x-test") == "big"
    assert len(header(big["request_headers"], "x-big")) == 30000
    assert body_bytes(big, "request") == b"posted body"
    assert body_bytes(big, "response") == b"posted body"
    assert header(big["response_headers"], "x-request-header") == "big"

    tr = by_path(exs, "/trailers")
    assert (tr["status"], tr["error"]) == (200, None)
    assert body_bytes(tr, "response") == b"with trailers"
    assert tr["response_trailers"] == [["grpc-status", "0"], ["x-trailer", "t1"]]

    push = by_path(exs, "/push")
    assert (push["status"], push["error"], push["pushed"]) == (200, None, False)
    assert body_bytes(push, "response") == b"with push"
    pushed = by_path(exs, "/pushed.txt")
    assert (pushed["method"], pushed["status"], pushed["error"]) == ("GET", 200, None)
    assert pushed["pushed"] is True
    assert body_bytes(pushed, "response") == b"pushed body"
    assert pushed["request_body"] is None

    reset = by_path(exs, "/reset")
    assert (reset["status"], reset["error"]) == (None, "stream reset: CANCEL")

    bye = by_path(exs, "/goaway")
    assert (bye["status"], bye["error"]) == (200, None)
    assert body_bytes(bye, "response") == b"bye"


def test_goaway_midway_fails_the_streams_above_its_last_stream(run_plain, run_traced,
                                                                h2c_port):
    """The server answers /a, then on the next stream sends GOAWAY (ENHANCE_YOUR_CALM)
    naming /a's stream as the last it processed, and drops the connection: /a stays a
    good exchange, the second stream fails with the GOAWAY's code, and the third
    request is never sent."""
    require_tool("node")
    cmd = ["node", str(CLIENTS / "node_h2_paths.js"), f"http://127.0.0.1:{h2c_port}", "-",
           "/a", "/goaway-above", "/b"]
    exs = traced_same_as_plain(run_plain, run_traced, cmd)
    assert [(e["path"], e["status"], e["error"]) for e in exs] == [
        ("/a", 200, None),
        ("/goaway-above", None, "connection going away: ENHANCE_YOUR_CALM")]
    assert body_bytes(exs[0], "response") == b"hello h2 /a"
    for e in exs:
        assert_h2(e, scheme="http", port=h2c_port, tls="none")


def test_httpx_http2(run_plain, run_traced, h2_tls_port, ca_bundle, tmp_path):
    require_module("h2", "httpx[http2]")
    script = tmp_path / "httpx_h2.py"
    script.write_text(
        "import httpx, sys\n"
        "with httpx.Client(http2=True, verify=sys.argv[2]) as c:\n"
        "    for i in range(3):\n"
        "        r = c.post(sys.argv[1] + '/echo?i=%d' % i, content=b'httpx body %d' % i,\n"
        "                   headers={'x-test': 'httpx %d' % i})\n"
        "        print(r.http_version, r.status_code, r.text)\n")
    cmd = [sys.executable, str(script), f"https://localhost:{h2_tls_port}", ca_bundle]
    exs = traced_same_as_plain(run_plain, run_traced, cmd)
    assert [e["url"] for e in exs] == [
        f"https://localhost:{h2_tls_port}/echo?i={i}" for i in range(3)]
    for i, e in enumerate(exs):
        assert_h2(e, scheme="https", port=h2_tls_port, tls="openssl")
        assert (e["method"], e["status"], e["error"]) == ("POST", 200, None)
        assert body_bytes(e, "request") == b"httpx body %d" % i
        assert body_bytes(e, "response") == b"httpx body %d" % i
        assert header(e["request_headers"], "x-test") == f"httpx {i}"
        assert header(e["response_headers"], "x-request-header") == f"httpx {i}"


def test_curl_h2c_upgrade(run_plain, run_traced, h2c_upgrade_port):
    """curl --http2 on http:// sends an HTTP/1.1 request with `Upgrade: h2c`; after the
    101 the connection is HTTP/2 and stream 1 carries that request's response. The
    upgrade request and its answer are one exchange; the next request is stream 3."""
    require_tool("curl")
    base = f"http://127.0.0.1:{h2c_upgrade_port}"
    cmd = ["curl", "-sS", "--http2", f"{base}/first", "-:", f"{base}/second"]
    exs = traced_same_as_plain(run_plain, run_traced, cmd)
    assert [(e["method"], e["path"], e["status"], e["error"]) for e in exs] == [
        ("GET", "/first", 200, None), ("GET", "/second", 200, None)]
    first, second = exs
    assert first["conn_id"] == second["conn_id"]
    assert header(first["request_headers"], "upgrade") == "h2c"
    assert header(first["request_headers"], "http2-settings") is not None
    for e in exs:
        assert e["http_version"] == "2" and e["tls"] == "none" and e["pushed"] is False
        assert e["url"] == f"{base}{e['path']}"
        assert header(e["response_headers"], "x-upgraded") == "yes"
        assert body_bytes(e, "response") == f"h2c {e['path']}".encode()


def planted():
    h = secrets.token_hex
    return {"bearer": "bearer-" + h(20), "session": "sess-" + h(16),
            "crumb": "crumb-" + h(16), "api_key": "apikey-" + h(16),
            "password": "pw-" + h(16)}


@pytest.mark.parametrize("fmt", ["json", "table", "har"])
def test_secrets_in_http2_headers_are_masked(run_plain, run_traced, h2_tls_port, ca_bundle,
                                            fmt):
    """A bearer token, a session cookie sent as two cookie crumbs, an api_key query
    parameter and a JSON password (echoed back by the server) travel in HTTP/2 header
    blocks and DATA: none of them is in the report, whatever its format."""
    require_tool("curl")
    s = planted()
    body = json.dumps({"user": "u", "password": s["password"]})
    cmd = ["curl", "-sS", "--http2", "--cacert", ca_bundle,
           "-H", f"Authorization: Bearer {s['bearer']}",
           "-H", f"Cookie: session={s['session']}; other={s['crumb']}",
           "-H", "content-type: application/json", "--data-binary", body,
           f"https://localhost:{h2_tls_port}/echo?api_key={s['api_key']}&page=2"]
    report = traced_same_as_plain(run_plain, run_traced, cmd, fmt=fmt)
    text = report if isinstance(report, str) else json.dumps(report)
    leaked = [k for k, v in s.items() if v in text]
    assert not leaked, f"{fmt}: secrets leaked: {leaked}\n{text[:3000]}"
    assert "****" in text, f"no masked placeholder in the {fmt} report"
    if fmt == "json":
        [e] = report
        assert_h2(e, scheme="https", port=h2_tls_port, tls="openssl")
        assert (e["method"], e["path"], e["status"]) == ("POST", "/echo", 200)
        assert "page=2" in e["url"]
        # The crumbs are joined as one cookie header, names kept.
        [cookie] = headers_all(e["request_headers"], "cookie")
        assert "session=" in cookie and "other=" in cookie
        assert header(e["request_headers"], "authorization").startswith("Bearer ")
        assert json.loads(body_bytes(e, "response"))["user"] == "u"
    elif fmt == "har":
        [entry] = json.loads(report)["log"]["entries"]
        assert entry["request"]["httpVersion"] == "HTTP/2.0"
        assert entry["response"]["httpVersion"] == "HTTP/2.0"
        assert entry["response"]["status"] == 200
    else:
        assert "/echo" in report and "200" in report
