"""HTTPS exchanges made by real clients, captured by `tapline run --format json`.

Every client talks to the HTTPS test server (tests/servers/http_server.py with the
throw-away CA of conftest.py) as https://localhost:PORT, so that the ClientHello names a
server (clients send no SNI for an IP literal), and trusts the CA through its usual knob.

- Plaintext through a TLS library hook (OpenSSL: curl, Python, Perl, Ruby, node's inline
  hooks; GnuTLS: wget): method, URL, status, headers, bodies, `tls`, `sni`, and each
  exchange exactly once (no "opaque" twin for the socket under the plaintext).
- Opaque (TLS tapline cannot read: node with TAPLINE_INLINE=0, Java's JSSE with
  TAPLINE_JAVA=0, rustls): one
  exchange per connection with SNI, peer, byte counts and times.
- Many threads at once: nothing lost, doubled or mixed up.
- The library changes nothing the program does, also when TLS fails (untrusted
  certificate, a server that hangs up in the handshake).
"""

import json
import shutil
import subprocess
import sys
import time

import pytest

from conftest import (CLIENTS, HELLO_BODY, REPO, SERVERS, ServerProcess, _release_dir,
                      body_bytes, header, one, pattern, require_tool, spool_records)

# The size of the smallest ClientHello any client here sends is well above this (FACTS.md:
# 257-517 bytes); an opaque exchange's request bytes include it.
MIN_CLIENT_HELLO = 200
MAX_BODY_DEFAULT = 8192


# --- fixtures ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tls_port(_https_server_proc):
    return _https_server_proc.port


@pytest.fixture(scope="module")
def tls_base(tls_port):
    """https://localhost:PORT (localhost resolves to 127.0.0.1 only on the test machines;
    the server listens on 127.0.0.1)."""
    return f"https://localhost:{tls_port}"


@pytest.fixture(scope="module")
def hangup_port():
    """A TCP server that reads a few bytes of the ClientHello and closes."""
    srv = ServerProcess([sys.executable, str(SERVERS / "tls_hangup_server.py")],
                        "hang-up server")
    yield srv.port
    srv.stop()


@pytest.fixture(scope="module")
def java_truststore(ca_bundle, tmp_path_factory):
    require_tool("keytool")
    ts = tmp_path_factory.mktemp("java") / "truststore.p12"
    subprocess.run(["keytool", "-importcert", "-noprompt", "-alias", "tapline-test-ca",
                    "-file", ca_bundle, "-keystore", str(ts), "-storetype", "PKCS12",
                    "-storepass", "changeit"],
                   check=True, capture_output=True, stdin=subprocess.DEVNULL)
    return ts


@pytest.fixture(scope="session")
def rustls_get():
    """target/release/examples/rustls_get (extension/examples/rustls_get.rs), built once
    if missing."""
    exe = _release_dir() / "examples" / "rustls_get"
    if not exe.exists():
        subprocess.run(["cargo", "build", "--release", "--example", "rustls_get",
                        "-p", "tapline"], cwd=REPO, check=True, stdin=subprocess.DEVNULL)
    assert exe.exists(), f"{exe} missing after cargo build --example rustls_get"
    return str(exe)


# --- helpers -----------------------------------------------------------------------------

def urls(exs):
    return [(e.get("tls"), e.get("url"), e.get("conn_id")) for e in exs]


def peers_for(port):
    return (f"127.0.0.1:{port}", f"[::ffff:127.0.0.1]:{port}")


def assert_tls_plaintext(ex, port, path_query, lib, *, method="GET", status=200):
    """One plaintext exchange to https://localhost:PORT/path_query through `lib`."""
    assert ex["tls"] == lib, (ex["tls"], ex["url"])
    assert ex["method"] == method
    assert ex["scheme"] == "https"
    assert ex["host"] == "localhost"
    assert ex["port"] == port
    assert ex["url"] == f"https://localhost:{port}{path_query}"
    assert ex["path"] == path_query.split("?")[0]
    assert ex["status"] == status
    assert ex["http_version"] == "1.1"
    assert ex["sni"] == "localhost", f"sni {ex['sni']!r} for {lib} {ex['url']}"
    assert ex["peer"] in peers_for(port), ex["peer"]
    assert ex["error"] is None
    assert header(ex["request_headers"], "Host") in ("localhost", f"localhost:{port}")
    assert header(ex["response_headers"], "X-Test-Server") == "tapline-tests"
    query = path_query.split("?", 1)[1] if "?" in path_query else ""
    assert header(ex["response_headers"], "X-Echo-Query") == query
    assert ex["duration_ns"] >= 0


def assert_hello_body(ex):
    assert body_bytes(ex, "response") == HELLO_BODY
    assert ex["response_body_size"] == len(HELLO_BODY)


def assert_all_plaintext(exs, lib, n):
    """Exactly n exchanges, all plaintext through `lib`: no opaque twin of any socket, no
    ciphertext misread as cleartext HTTP."""
    kinds = [e["tls"] for e in exs]
    assert kinds.count("opaque") == 0, f"opaque twins reported: {urls(exs)}"
    assert kinds == [lib] * len(exs), urls(exs)
    assert len(exs) == n, urls(exs)


def assert_opaque(ex, port, t0, t1, *, sni="localhost"):
    """An opaque exchange: SNI, peer, byte counts both ways, sane times, nothing else."""
    assert ex["tls"] == "opaque", urls([ex])
    assert ex["scheme"] == "https"
    assert ex["sni"] == sni
    assert ex["peer"] in peers_for(port), ex["peer"]
    assert ex["port"] == port
    for k in ("method", "status", "request_headers", "response_headers", "request_body",
              "response_body"):
        assert ex[k] is None, (k, ex[k])
    assert ex["request_body_size"] >= MIN_CLIENT_HELLO, ex["request_body_size"]
    assert ex["response_body_size"] > 0, ex["response_body_size"]
    assert ex["duration_ns"] >= 0
    assert t0 <= ex["start_unix_ns"] <= t1, (t0, ex["start_unix_ns"], t1)
    assert ex["start_unix_ns"] + ex["duration_ns"] <= t1


def one_conn(exs):
    conns = {e["conn_id"] for e in exs}
    assert len(conns) == 1, f"expected one connection, got {urls(exs)}"
    return conns.pop()


# --- 1. plaintext through OpenSSL and GnuTLS hooks ------------------------------------------

def test_curl_get(run_traced, tls_base, tls_port, ca_bundle):
    require_tool("curl")
    proc, exs = run_traced(["curl", "-sS", "--cacert", ca_bundle, "--http1.1",
                            "-H", "X-Tapline-Test: curl-tls", f"{tls_base}/hello?from=curl-tls"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == HELLO_BODY
    assert_all_plaintext(exs, "openssl", 1)
    ex = exs[0]
    assert_tls_plaintext(ex, tls_port, "/hello?from=curl-tls", "openssl")
    assert_hello_body(ex)
    assert header(ex["request_headers"], "X-Tapline-Test") == "curl-tls"
    assert header(ex["request_headers"], "User-Agent").startswith("curl/")
    assert ex["truncated"] is False


def test_curl_post_1mib(run_traced, tls_base, tls_port, ca_bundle, tmp_path):
    require_tool("curl")
    data = bytes(pattern(1 << 20))
    f = tmp_path / "upload.bin"
    f.write_bytes(data)
    proc, exs = run_traced(["curl", "-sS", "--cacert", ca_bundle, "--http1.1",
                            "-H", "Content-Type: application/octet-stream",
                            "--data-binary", f"@{f}", f"{tls_base}/echo?from=curl-tls-post"])
    assert proc.returncode == 0, proc.stderr
    reply = json.loads(proc.stdout)
    assert reply["size"] == len(data)
    assert_all_plaintext(exs, "openssl", 1)
    ex = exs[0]
    assert_tls_plaintext(ex, tls_port, "/echo?from=curl-tls-post", "openssl", method="POST")
    assert header(ex["request_headers"], "Content-Length") == str(1 << 20)
    assert ex["request_body_size"] == 1 << 20
    captured = body_bytes(ex, "request")
    assert captured and len(captured) <= MAX_BODY_DEFAULT
    assert data.startswith(captured)
    assert ex["truncated"] is True
    assert body_bytes(ex, "response") == proc.stdout
    assert ex["response_body_size"] == len(proc.stdout)


def test_curl_chunked_response_and_keepalive(run_traced, tls_base, tls_port, ca_bundle):
    require_tool("curl")
    n = 60000
    proc, exs = run_traced(["curl", "-sS", "--cacert", ca_bundle, "--http1.1",
                            f"{tls_base}/chunked/{n}?from=curl-tls-chunked",
                            f"{tls_base}/bytes/200000?from=curl-tls-big",
                            f"{tls_base}/hello?from=curl-tls-after"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == pattern(n) + pattern(200000) + HELLO_BODY
    assert_all_plaintext(exs, "openssl", 3)
    one_conn(exs)  # curl reuses its connection for the three URLs
    ch = one(exs, "from=curl-tls-chunked")
    assert_tls_plaintext(ch, tls_port, f"/chunked/{n}?from=curl-tls-chunked", "openssl")
    assert header(ch["response_headers"], "Transfer-Encoding") == "chunked"
    assert ch["response_body_size"] == n
    captured = body_bytes(ch, "response")
    assert captured and pattern(n).startswith(captured)
    big = one(exs, "from=curl-tls-big")
    assert big["response_body_size"] == 200000
    assert pattern(200000).startswith(body_bytes(big, "response"))
    assert_hello_body(one(exs, "from=curl-tls-after"))


def test_python_urllib(run_traced, tls_base, tls_port, ca_bundle):
    proc, exs = run_traced([sys.executable, CLIENTS / "py_tls_urllib.py", tls_base],
                           env={"SSL_CERT_FILE": ca_bundle})
    assert proc.returncode == 0, proc.stderr
    assert_all_plaintext(exs, "openssl", 2)
    get = one(exs, "/hello?")
    assert_tls_plaintext(get, tls_port, "/hello?from=py-urllib-tls", "openssl")
    assert_hello_body(get)
    assert header(get["request_headers"], "X-Tapline-Test") == "urllib-tls"
    assert header(get["request_headers"], "User-Agent").startswith("Python-urllib/")
    post = one(exs, "/echo?")
    assert_tls_plaintext(post, tls_port, "/echo?from=py-urllib-tls", "openssl", method="POST")
    sent = b"field=tapline&filler=" + b"u" * 3000
    assert post["request_body_size"] == len(sent)
    assert body_bytes(post, "request") == sent
    assert json.loads(body_bytes(post, "response"))["size"] == len(sent)


def test_python_requests_session_keepalive(run_traced, tls_base, tls_port, ca_bundle):
    n = 12
    proc, exs = run_traced([sys.executable, CLIENTS / "py_tls_requests_session.py",
                            ca_bundle, tls_base, n])
    assert proc.returncode == 0, proc.stderr
    lines = [ln.split() for ln in proc.stdout.decode().splitlines()]
    assert len(lines) == n
    client_ports = {ln[2] for ln in lines}
    assert len(client_ports) == 1, "requests did not reuse its connection"
    assert_all_plaintext(exs, "openssl", n)
    one_conn(exs)
    assert len({e["peer"] for e in exs}) == 1
    assert {header(e["response_headers"], "X-Client-Port") for e in exs} == client_ports
    ordered = sorted(exs, key=lambda e: e["start_unix_ns"])
    for i, ex in enumerate(ordered):
        assert_tls_plaintext(ex, tls_port, f"/hello?i={i}", "openssl")
        assert_hello_body(ex)
        assert header(ex["request_headers"], "X-Tapline-Test") == f"tls-session-{i}"


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_python_httpx(run_traced, tls_base, tls_port, ca_bundle, mode):
    """httpx sync (a socket BIO) and AsyncClient (asyncio: a memory BIO, the ciphertext is
    sent outside the SSL call): each exchange once, and no opaque twin of the socket."""
    proc, exs = run_traced([sys.executable, CLIENTS / "py_tls_httpx.py", mode, ca_bundle,
                            tls_base])
    assert proc.returncode == 0, proc.stderr
    lines = [ln.split() for ln in proc.stdout.decode().splitlines()]
    assert len(lines) == 4 and len({ln[3] for ln in lines}) == 1, lines  # one connection
    assert_all_plaintext(exs, "openssl", 4)
    one_conn(exs)
    for i in range(3):
        q = f"/hello?from=httpx-{mode}&i={i}"
        ex = one(exs, q)
        assert_tls_plaintext(ex, tls_port, q, "openssl")
        assert_hello_body(ex)
        assert header(ex["request_headers"], "X-Tapline-Test") == f"httpx-{mode}"
        assert header(ex["request_headers"], "User-Agent").startswith("python-httpx/")
    post = one(exs, f"/echo?from=httpx-{mode}")
    assert_tls_plaintext(post, tls_port, f"/echo?from=httpx-{mode}", "openssl", method="POST")
    assert post["request_body_size"] == 5000
    assert body_bytes(post, "request") == b"x" * 5000
    assert json.loads(body_bytes(post, "response"))["size"] == 5000


def test_perl_http_tiny(run_traced, tls_base, tls_port, ca_bundle):
    require_tool("perl")
    proc, exs = run_traced(["perl", CLIENTS / "perl_tls_http_tiny.pl", ca_bundle, tls_base])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().splitlines() == [
        "GET 200 from=perl-tiny-tls hello, tapline", "POST 200"]
    assert_all_plaintext(exs, "openssl", 2)
    one_conn(exs)
    get = one(exs, "/hello?")
    assert_tls_plaintext(get, tls_port, "/hello?from=perl-tiny-tls", "openssl")
    assert_hello_body(get)
    assert header(get["request_headers"], "User-Agent").startswith("HTTP-Tiny/")
    post = one(exs, "/echo?")
    assert_tls_plaintext(post, tls_port, "/echo?from=perl-tiny-tls", "openssl", method="POST")
    # 40000 bytes: SSL_write is called again with the rest of the buffer (partial writes)
    assert post["request_body_size"] == 40000
    assert body_bytes(post, "request") == b"p" * MAX_BODY_DEFAULT
    assert json.loads(body_bytes(post, "response"))["size"] == 40000


def test_perl_lwp(run_traced, tls_base, tls_port, ca_bundle):
    require_tool("perl")
    proc, exs = run_traced(["perl", CLIENTS / "perl_tls_lwp.pl", tls_base],
                           env={"PERL_LWP_SSL_CA_FILE": ca_bundle})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().splitlines() == [
        "GET 200 from=perl-lwp-tls hello, tapline", "POST 200"]
    assert_all_plaintext(exs, "openssl", 2)
    get = one(exs, "/hello?")
    assert_tls_plaintext(get, tls_port, "/hello?from=perl-lwp-tls", "openssl")
    assert_hello_body(get)
    assert header(get["request_headers"], "User-Agent").startswith("libwww-perl/")
    post = one(exs, "/echo?")
    assert_tls_plaintext(post, tls_port, "/echo?from=perl-lwp-tls", "openssl", method="POST")
    assert post["request_body_size"] == 2600
    assert body_bytes(post, "request") == b"l" * 2600


def test_ruby_net_http(run_traced, tls_base, tls_port, ca_bundle):
    require_tool("ruby")
    proc, exs = run_traced(["ruby", CLIENTS / "ruby_tls_net_http.rb", ca_bundle, tls_base])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().splitlines() == [
        "GET 200 from=ruby-tls hello, tapline", "POST 200"]
    assert_all_plaintext(exs, "openssl", 2)
    one_conn(exs)
    get = one(exs, "/hello?")
    assert_tls_plaintext(get, tls_port, "/hello?from=ruby-tls", "openssl")
    assert_hello_body(get)
    post = one(exs, "/echo?")
    assert_tls_plaintext(post, tls_port, "/echo?from=ruby-tls", "openssl", method="POST")
    assert post["request_body_size"] == 50000
    assert body_bytes(post, "request") == b"r" * MAX_BODY_DEFAULT
    assert json.loads(body_bytes(post, "response"))["size"] == 50000


def test_wget_gnutls(run_traced, tls_base, tls_port, ca_bundle):
    require_tool("wget")
    proc, exs = run_traced(["wget", "-q", "-O", "-", "--ca-certificate", ca_bundle,
                            "--header", "X-Tapline-Test: wget-tls",
                            f"{tls_base}/bytes/30000?from=wget-tls"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == pattern(30000)
    assert_all_plaintext(exs, "gnutls", 1)
    ex = exs[0]
    # (sni is checked by assert_tls_plaintext, and again with a clearer message below)
    assert ex["method"] == "GET" and ex["status"] == 200
    assert ex["url"] == f"https://localhost:{tls_port}/bytes/30000?from=wget-tls"
    assert header(ex["request_headers"], "X-Tapline-Test") == "wget-tls"
    assert header(ex["request_headers"], "User-Agent").startswith("Wget/")
    assert ex["response_body_size"] == 30000
    assert pattern(30000).startswith(body_bytes(ex, "response"))
    assert_tls_plaintext(ex, tls_port, "/bytes/30000?from=wget-tls", "gnutls")


def test_wget_gnutls_sni(run_traced, tls_base, ca_bundle):
    """wget sets the server name with gnutls_server_name_set: the plaintext exchange must
    carry it (the ClientHello on the socket names localhost too)."""
    require_tool("wget")
    proc, exs = run_traced(["wget", "-q", "-O", "-", "--ca-certificate", ca_bundle,
                            f"{tls_base}/hello?from=wget-sni"])
    assert proc.returncode == 0, proc.stderr
    assert_all_plaintext(exs, "gnutls", 1)
    assert exs[0]["sni"] == "localhost", (
        f"GnuTLS exchange has sni={exs[0]['sni']!r}, the ClientHello said localhost")


@pytest.mark.parametrize("client", ["curl", "wget"])
def test_tls_info_record_names_the_server(client, run_traced, tls_base, ca_bundle, tmp_path,
                                          tapline_bin):
    """The library's own TLS_INFO record carries the SNI the client set (tapline.h), not
    only the reader's fallback to the ClientHello seen on the socket. GnuTLS: the name
    cannot come from gnutls_server_name_get, which refuses client sessions
    (GNUTLS_E_INVALID_REQUEST); it has to be remembered from gnutls_server_name_set."""
    require_tool(client)
    url = f"{tls_base}/hello?from={client}-tlsinfo"
    cmd = {"curl": ["curl", "-sS", "--cacert", ca_bundle, url],
           "wget": ["wget", "-q", "-O", "-", "--ca-certificate", ca_bundle, url]}[client]
    spool = tmp_path / "kept-spool"
    proc, exs = run_traced(cmd, extra_args=("--spool-dir", str(spool), "--keep-spool"))
    assert proc.returncode == 0, proc.stderr
    assert len(exs) == 1 and exs[0]["sni"] == "localhost", urls(exs)
    infos = spool_records(tapline_bin, spool, "tls_info")
    lib = {"curl": "openssl", "wget": "gnutls"}[client]
    assert [i["library"] for i in infos] == [lib], infos
    assert infos[0]["sni"] == "localhost", f"TLS_INFO from the {lib} hook: {infos}"
    assert infos[0]["socket_conn_id"] != 0, infos


def test_node_https_inline_hooks(run_traced, tls_base, tls_port, ca_bundle):
    require_tool("node")
    proc, exs = run_traced(["node", CLIENTS / "node_https_get.js", tls_base],
                           env={"NODE_EXTRA_CA_CERTS": ca_bundle})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().splitlines() == [
        "GET 200 from=node-https hello, tapline", "POST 200 3028"]
    assert_all_plaintext(exs, "openssl", 2)
    one_conn(exs)
    get = one(exs, "/hello?")
    assert_tls_plaintext(get, tls_port, "/hello?from=node-https", "openssl")
    assert_hello_body(get)
    assert header(get["request_headers"], "X-Tapline-Test") == "node-https"
    post = one(exs, "/echo?")
    assert_tls_plaintext(post, tls_port, "/echo?from=node-https", "openssl", method="POST")
    sent = json.dumps({"runtime": "node", "data": "n" * 3000}, separators=(",", ":")).encode()
    assert post["request_body_size"] == len(sent)
    assert body_bytes(post, "request") == sent


# --- 2. opaque TLS ------------------------------------------------------------------------

def test_node_https_opaque_without_inline_hooks(run_traced, tls_base, tls_port, ca_bundle):
    require_tool("node")
    t0 = time.time_ns()
    proc, exs = run_traced(["node", CLIENTS / "node_https_get.js", tls_base],
                           env={"NODE_EXTRA_CA_CERTS": ca_bundle, "TAPLINE_INLINE": "0"})
    t1 = time.time_ns()
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().splitlines() == [
        "GET 200 from=node-https hello, tapline", "POST 200 3028"]
    # one keep-alive connection: one opaque exchange, nothing else
    assert len(exs) == 1, urls(exs)
    ex = exs[0]
    assert_opaque(ex, tls_port, t0, t1)
    # the POST's 3028-byte body went out encrypted on this connection
    assert ex["request_body_size"] > 3028 + MIN_CLIENT_HELLO
    assert ex["response_body_size"] > len(HELLO_BODY)


def test_java_httpclient_opaque(run_traced, tls_base, tls_port, java_truststore):
    """With the Java agent off (TAPLINE_JAVA=0), JSSE is opaque; with it, plaintext:
    tests/test_java_tls.py."""
    require_tool("java")
    t0 = time.time_ns()
    proc, exs = run_traced(["java", f"-Djavax.net.ssl.trustStore={java_truststore}",
                            "-Djavax.net.ssl.trustStorePassword=changeit",
                            "-Djavax.net.ssl.trustStoreType=PKCS12",
                            CLIENTS / "JavaHttpsClient.java", tls_base], timeout=120,
                           env={"TAPLINE_JAVA": "0"})
    t1 = time.time_ns()
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().splitlines()[0] == "GET 200 from=java-tls hello, tapline"
    assert proc.stdout.decode().splitlines()[1].startswith("POST 200 ")
    tls = [e for e in exs if e["tls"] != "none"]
    # the JVM itself makes no other network traffic here
    assert len(tls) == len(exs), urls(exs)
    assert len(exs) == 1, urls(exs)
    ex = exs[0]
    assert_opaque(ex, tls_port, t0, t1)
    assert ex["request_body_size"] > 2500 + MIN_CLIENT_HELLO


def test_rustls_opaque(run_traced, rustls_get, tls_base, tls_port, ca_bundle):
    t0 = time.time_ns()
    proc, exs = run_traced([rustls_get, ca_bundle, f"{tls_base}/bytes/20000?from=rustls", 3])
    t1 = time.time_ns()
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().splitlines() == ["200 20000"] * 3
    assert len(exs) == 1, urls(exs)  # ureq keeps the connection alive: one opaque exchange
    ex = exs[0]
    assert_opaque(ex, tls_port, t0, t1)
    assert ex["response_body_size"] > 3 * 20000


def test_rustls_opaque_ip_literal_has_no_sni(run_traced, rustls_get, https_server,
                                             tls_port, ca_bundle):
    """https://127.0.0.1:PORT: the ClientHello carries no server name, the exchange names
    the peer instead."""
    t0 = time.time_ns()
    proc, exs = run_traced([rustls_get, ca_bundle, f"{https_server}/hello?from=rustls-ip"])
    t1 = time.time_ns()
    assert proc.returncode == 0, proc.stderr
    assert len(exs) == 1, urls(exs)
    assert_opaque(exs[0], tls_port, t0, t1, sni=None)
    assert exs[0]["host"] == "127.0.0.1"


# --- 3. many threads at once ---------------------------------------------------------------

def test_python_8_threads_each_exchange_once(run_traced, tls_base, tls_port, ca_bundle):
    threads, per = 8, 25
    proc, exs = run_traced([sys.executable, CLIENTS / "py_tls_threads.py", ca_bundle,
                            tls_base, threads, per], timeout=180)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert proc.stdout.decode().strip() == f"requests={threads * per} errors=0"
    assert [e for e in exs if e["tls"] != "openssl"] == [], "opaque twins or misreads"
    seen = {}
    for e in exs:
        seen.setdefault(e["url"], []).append(e)
    expected = {f"https://localhost:{tls_port}/hello?t={t}&i={i}"
                for t in range(threads) for i in range(per)}
    missing = sorted(expected - set(seen))
    extra = sorted(set(seen) - expected)
    doubled = sorted(u for u, v in seen.items() if len(v) > 1)
    assert not missing and not extra and not doubled, (
        f"missing {len(missing)} {missing[:5]}, extra {extra[:5]}, doubled {doubled[:5]}")
    assert len(exs) == threads * per
    for e in exs:
        q = e["url"].split("?", 1)[1]
        # request and response belong together: the server echoed this request's query,
        # and the request carried it in a header too
        assert header(e["request_headers"], "X-Tapline-Test") == q, e["url"]
        assert header(e["response_headers"], "X-Echo-Query") == q, e["url"]
        assert e["status"] == 200 and body_bytes(e, "response") == HELLO_BODY
        assert e["sni"] == "localhost" and e["error"] is None
    # the requests.Session threads kept one connection each: one conn_id per such thread
    for t in range(0, threads, 2):
        mine = [e for e in exs if f"?t={t}&" in e["url"]]
        assert len({e["conn_id"] for e in mine}) == 1, (t, sorted({e["conn_id"] for e in mine}))
        ports = {header(e["response_headers"], "X-Client-Port") for e in mine}
        assert len(ports) == 1
    # a connection's exchanges all come from one thread's queries
    by_conn = {}
    for e in exs:
        by_conn.setdefault(e["conn_id"], set()).add(e["url"].split("?t=")[1].split("&")[0])
    assert all(len(ts) == 1 for ts in by_conn.values()), by_conn


# --- 4. nothing breaks ----------------------------------------------------------------------

def _compare(run_plain, run_preloaded, run_traced, cmd, tmp_path, env=None):
    """Runs cmd plain, under LD_PRELOAD and under tapline run; returns (plain, traced
    exchanges) after checking exit status and stdout are the same all three times."""
    env = dict(env or {})
    plain = run_plain(cmd, env=env)
    pre = run_preloaded(cmd, env={**env, "TAPLINE_SPOOL_DIR": str(tmp_path / "spool")})
    traced, exs = run_traced(cmd, env=env)
    for name, p in (("LD_PRELOAD", pre), ("tapline run", traced)):
        assert p.returncode == plain.returncode, (
            f"{name}: exit {p.returncode}, plain {plain.returncode}\n"
            f"stderr: {p.stderr.decode(errors='replace')[-2000:]}")
        assert p.stdout == plain.stdout, (name, p.stdout[:500], plain.stdout[:500])
    return plain, exs


def _client_cmds(tls_base, ca_bundle, path, trusted):
    """{client: (argv, env)}; `trusted` False: the client trusts only a CA that did not
    sign the server's certificate (the system bundle)."""
    url = f"{tls_base}{path}"
    system = "/etc/ssl/certs/ca-certificates.crt"
    ca = ca_bundle if trusted else system
    return {
        "curl": (["curl", "-sS", "--cacert", ca, url], {}),
        "requests": ([sys.executable, CLIENTS / "py_tls_get.py", url, ca], {}),
        "wget": (["wget", "-q", "-O", "-", "--ca-certificate", ca, url], {}),
        "node": (["node", CLIENTS / "node_https_get.js", tls_base],
                 {"NODE_EXTRA_CA_CERTS": ca} if trusted else {"NODE_EXTRA_CA_CERTS": system}),
    }


CLIENT_NAMES = ["curl", "requests", "wget", "node"]
TOOLS = {"curl": "curl", "requests": None, "wget": "wget", "node": "node"}


@pytest.mark.parametrize("client", CLIENT_NAMES)
def test_same_output_with_and_without_library(client, run_plain, run_preloaded, run_traced,
                                              tls_base, ca_bundle, tmp_path):
    if TOOLS[client]:
        require_tool(TOOLS[client])
    cmd, env = _client_cmds(tls_base, ca_bundle, "/bytes/70000?from=same", True)[client]
    plain, exs = _compare(run_plain, run_preloaded, run_traced, cmd, tmp_path, env)
    assert plain.returncode == 0, plain.stderr
    assert exs and all(e["tls"] in ("openssl", "gnutls") for e in exs), urls(exs)


@pytest.mark.parametrize("client", CLIENT_NAMES)
def test_untrusted_certificate_fails_the_same(client, run_plain, run_preloaded, run_traced,
                                              tls_base, tls_port, ca_bundle, tmp_path):
    if TOOLS[client]:
        require_tool(TOOLS[client])
    cmd, env = _client_cmds(tls_base, ca_bundle, "/hello?from=untrusted", False)[client]
    plain, exs = _compare(run_plain, run_preloaded, run_traced, cmd, tmp_path, env)
    assert plain.returncode != 0, (plain.stdout, plain.stderr)
    # no HTTP was ever sent: at most the failed handshake, as an opaque exchange
    assert all(e["method"] is None and e["status"] is None for e in exs), urls(exs)
    for e in exs:
        assert e["tls"] == "opaque", urls(exs)
        assert e["peer"] in peers_for(tls_port)
        assert e["sni"] == "localhost"


@pytest.mark.parametrize("client", CLIENT_NAMES)
def test_server_hangs_up_in_handshake_fails_the_same(client, run_plain, run_preloaded,
                                                     run_traced, hangup_port, ca_bundle,
                                                     tmp_path):
    if TOOLS[client]:
        require_tool(TOOLS[client])
    base = f"https://localhost:{hangup_port}"
    cmd, env = _client_cmds(base, ca_bundle, "/hello?from=hangup", True)[client]
    if client == "wget":
        cmd = cmd[:1] + ["--tries=1"] + cmd[1:]  # wget retries a reset connection 20 times
    plain, exs = _compare(run_plain, run_preloaded, run_traced, cmd, tmp_path, env)
    assert plain.returncode != 0, (plain.stdout, plain.stderr)
    assert all(e["method"] is None and e["status"] is None for e in exs), urls(exs)
    for e in exs:
        assert e["tls"] == "opaque", urls(exs)
        assert e["peer"] in peers_for(hangup_port)
        assert e["duration_ns"] >= 0


@pytest.mark.parametrize("client", CLIENT_NAMES)
def test_server_hangs_up_in_handshake_is_reported_as_reset(client, run_traced, hangup_port,
                                                           ca_bundle):
    """The server reads part of the ClientHello and closes with it unread (a TCP reset):
    one opaque exchange, nothing received, and `error` says why (docs/spec.md: "why the
    exchange is incomplete"). The library records the reset (CONN_CLOSE, errno ECONNRESET)."""
    if TOOLS[client]:
        require_tool(TOOLS[client])
    base = f"https://localhost:{hangup_port}"
    cmd, env = _client_cmds(base, ca_bundle, "/hello?from=hangup-error", True)[client]
    if client == "wget":
        cmd = cmd[:1] + ["--tries=1"] + cmd[1:]
    proc, exs = run_traced(cmd, env=env)
    assert proc.returncode != 0
    assert len(exs) == 1, urls(exs)
    ex = exs[0]
    assert ex["tls"] == "opaque" and ex["sni"] == "localhost"
    assert ex["request_body_size"] >= MIN_CLIENT_HELLO
    assert ex["response_body_size"] == 0
    assert ex["error"] in ("connection reset", "connection closed"), (
        f"opaque exchange of a reset handshake has error={ex['error']!r}")
