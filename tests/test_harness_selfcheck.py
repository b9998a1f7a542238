"""The test servers themselves, without tapline: if these fail, failures elsewhere say
nothing about tapline. Covers what the other tests rely on the servers to do."""

import hashlib
import json
import socket
import ssl
import urllib.request

from conftest import HELLO_BODY, pattern, require_tool


def _raw(port, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(request)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


def test_server_chunked_with_trailer_and_http10(http_port):
    raw = _raw(http_port, b"GET /chunked/1000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head
    assert body.count(b"\r\n") > 8  # several chunks
    assert body.endswith(b"0\r\nX-Body-Sha256: "
                         + hashlib.sha256(pattern(1000)).hexdigest().encode() + b"\r\n\r\n")
    raw = _raw(http_port, b"GET /http10 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert raw.startswith(b"HTTP/1.0 200 OK\r\n")
    assert b"Content-Length" not in raw
    assert raw.endswith(pattern(3000))


def test_server_sends_100_continue(http_port):
    body = b"q" * 5000
    with socket.create_connection(("127.0.0.1", http_port)) as s:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n"
                  b"Expect: 100-continue\r\n\r\n")
        interim = s.recv(1024)
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n")
        s.sendall(body)
        resp = b""
        while b"}" not in resp:
            resp += s.recv(65536)
    assert json.loads(resp.partition(b"\r\n\r\n")[2])["size"] == 5000


def test_server_keepalive_head_and_headers(http_server):
    require_tool("curl")
    import subprocess
    out = subprocess.run(["curl", "-sS", "-I", f"{http_server}/hello", "--next", "-sS",
                          f"{http_server}/headers", "-H", "X-Probe: 1", "-w",
                          "\n%{num_connects}\n"], capture_output=True, check=True).stdout
    assert b"Content-Length: 15" in out
    lines = out.splitlines()
    assert lines[-1] == b"0"  # the second request reused the connection
    assert ["X-Probe", "1"] in json.loads(lines[-2])


def test_https_server_with_test_ca(https_server, ca_bundle):
    ctx = ssl.create_default_context(cafile=ca_bundle)
    with urllib.request.urlopen(f"{https_server}/hello", context=ctx) as r:
        assert r.read() == HELLO_BODY
    localhost = https_server.replace("127.0.0.1", "localhost")
    with urllib.request.urlopen(f"{localhost}/bytes/100", context=ctx) as r:
        assert r.read() == pattern(100)
    # and it is really verified: without the CA it fails
    try:
        urllib.request.urlopen(f"{https_server}/hello",
                               context=ssl.create_default_context())
    except urllib.error.URLError as e:
        assert "CERTIFICATE_VERIFY_FAILED" in str(e)
    else:
        raise AssertionError("HTTPS server accepted without the test CA")
