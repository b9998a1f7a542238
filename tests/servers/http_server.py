#!/usr/bin/env python3
"""The HTTP/1.1 server the end-to-end tests talk to (plain, or TLS with --cert/--key).

Started by tests/conftest.py as a subprocess *without* LD_PRELOAD, so that tapline only
ever sees the client side. It binds 127.0.0.1 on an ephemeral port and prints
`READY <port>` on stdout once it accepts connections.

Every body it sends is deterministic (see `pattern`) so that tests can check a captured
prefix byte for byte. Routes (the query string never changes the route):

  GET  /hello            fixed body; echoes the query in X-Echo-Query
  GET  /bytes/N          N bytes of `pattern`, Content-Length
  GET  /chunked/N        N bytes of `pattern`, chunked in several chunks, with a trailer
  GET  /http10[/N]       HTTP/1.0 response, no Content-Length, close-delimited (3000 bytes)
  POST /echo             JSON {"size", "sha256", "prefix"} of the request body
                         (Content-Length or chunked; Expect: 100-continue honoured)
  GET  /status/N         status N
  GET  /headers          the request headers as a JSON array of [name, value]
  GET  /slow             headers, a pause, then the body (for streaming clients)
  GET  /set-cookie       sets the cookie `session=SET_COOKIE_SECRET` (Set-Cookie)
  GET  /gzip-json        JSON {"user", "password": GZIP_SECRET} sent gzip-compressed
                         (Content-Encoding: gzip), whatever Accept-Encoding says
  GET  /drop             reads the request, then closes the connection without answering
  HEAD any path          the GET headers, no body

Every response carries X-Test-Server, X-Echo-Query, X-Request-Path and X-Client-Port
(the client's source port: which connection carried the request). A request with the
header `X-Quiet: 1` gets neither X-Echo-Query nor X-Request-Path: the masking tests plant
secrets in the query, and a server that echoes them in an innocent-looking header would
leak them past any masking.
"""

import argparse
import gzip
import hashlib
import json
import socket
import socketserver
import ssl
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HELLO_BODY = b"hello, tapline\n"
# The secret cookie value /set-cookie hands out (the masking tests grep for it).
SET_COOKIE_SECRET = "srvcookie-5d1f0b7e9a2c4e6f8b3d"
GZIP_SECRET = "gzsecret-8c1e4a7b2d9f3e6a0b5c"
ALPHABET = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"


def pattern(n: int) -> bytes:
    """n printable bytes whose prefix of any length is unambiguous (tests import this)."""
    reps = n // len(ALPHABET) + 1
    return (ALPHABET * reps)[:n]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "tapline-test-server/1"
    sys_version = ""

    def log_message(self, fmt, *args):  # keep the test output quiet
        pass

    # --- helpers -------------------------------------------------------------------------
    def _route(self):
        parts = urlsplit(self.path)
        return parts.path, parts.query

    def _common_headers(self, query):
        self.send_header("X-Test-Server", "tapline-tests")
        if self.headers.get("X-Quiet") != "1":
            self.send_header("X-Echo-Query", query)
            self.send_header("X-Request-Path", self.path)
        self.send_header("X-Client-Port", str(self.client_address[1]))

    def _send(self, status, body, content_type="text/plain", extra=()):
        path, query = self._route()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self._common_headers(query)
        for k, v in extra:
            self.send_header(k, v)
        if status not in (204, 304) and not (100 <= status < 200):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and status not in (204, 304):
            self.wfile.write(body)

    def _read_request_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = bytearray()
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    # trailers until the empty line
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(data)
                data += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length", "0") or 0)
        return self.rfile.read(n) if n else b""

    # --- methods ---------------------------------------------------------------------------
    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        path, query = self._route()
        seg = path.strip("/").split("/")
        if path == "/hello":
            return self._send(200, HELLO_BODY)
        if seg[0] == "bytes" and len(seg) == 2 and seg[1].isdigit():
            return self._send(200, pattern(int(seg[1])), "application/octet-stream")
        if seg[0] == "chunked" and len(seg) == 2 and seg[1].isdigit():
            return self._send_chunked(int(seg[1]), query)
        if seg[0] == "http10" and len(seg) <= 2:
            n = int(seg[1]) if len(seg) == 2 and seg[1].isdigit() else 3000
            return self._send_http10(n, query)
        if seg[0] == "status" and len(seg) == 2 and seg[1].isdigit():
            code = int(seg[1])
            return self._send(code, b"status %d\n" % code)
        if path == "/headers":
            body = json.dumps([[k, v] for k, v in self.headers.items()]).encode()
            return self._send(200, body, "application/json")
        if path == "/slow":
            return self._send_slow(query)
        if path == "/set-cookie":
            cookie = f"session={SET_COOKIE_SECRET}; Path=/; HttpOnly"
            return self._send(200, b"cookie set\n", extra=[("Set-Cookie", cookie)])
        if path == "/gzip-json":
            doc = json.dumps({"user": "ann", "password": GZIP_SECRET}).encode()
            return self._send(200, gzip.compress(doc), "application/json",
                              extra=[("Content-Encoding", "gzip")])
        if path == "/drop":
            self.close_connection = True
            return None
        return self._send(404, b"not found\n")

    def do_POST(self):
        path, _query = self._route()
        body = self._read_request_body()
        if path == "/echo":
            reply = {
                "size": len(body),
                "sha256": hashlib.sha256(body).hexdigest(),
                "prefix": body[:64].decode("latin-1"),
            }
            return self._send(200, json.dumps(reply).encode(), "application/json")
        return self._send(404, b"not found\n")

    do_PUT = do_POST

    def _send_chunked(self, n, query):
        body = pattern(n)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self._common_headers(query)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Trailer", "X-Body-Sha256")
        self.end_headers()
        if self.command == "HEAD":
            return
        # Uneven chunk sizes, at least several chunks for any n > 4.
        sizes, left, k = [], n, 1
        while left > 0:
            step = min(left, max(1, n // 5) + k)
            sizes.append(step)
            left -= step
            k += 3
        out = bytearray()
        off = 0
        for s in sizes:
            out += b"%x\r\n" % s + body[off:off + s] + b"\r\n"
            off += s
        out += b"0\r\nX-Body-Sha256: " + hashlib.sha256(body).hexdigest().encode() + b"\r\n\r\n"
        self.wfile.write(bytes(out))

    def _send_http10(self, n, query):
        head = (
            "HTTP/1.0 200 OK\r\n"
            "Content-Type: text/plain\r\n"
            "X-Test-Server: tapline-tests\r\n"
            f"X-Echo-Query: {query}\r\n"
            "\r\n"
        ).encode()
        self.wfile.write(head)
        if self.command != "HEAD":
            self.wfile.write(pattern(n))
        self.wfile.flush()
        self.close_connection = True

    def _send_slow(self, query):
        body = pattern(2000)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self._common_headers(query)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command == "HEAD":
            return
        self.wfile.write(body[:1000])
        self.wfile.flush()
        time.sleep(0.2)
        self.wfile.write(body[1000:])


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    tls_context = None

    def finish_request(self, request, client_address):
        # The TLS handshake runs on the connection's own thread, never on the accept loop.
        if self.tls_context is not None:
            try:
                request = self.tls_context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().finish_request(request, client_address)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    # Handshakes that fail on the server's side (tests/test_tls_failures.py).
    ap.add_argument("--tls-max", choices=["1.2", "1.3"],
                    help="highest TLS version offered")
    ap.add_argument("--tls-min", choices=["1.2", "1.3"],
                    help="lowest TLS version accepted")
    ap.add_argument("--require-client-cert", metavar="CA",
                    help="reject clients without a certificate signed by CA")
    args = ap.parse_args()
    srv = Server(("127.0.0.1", args.port), Handler)
    if args.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
        ctx.set_alpn_protocols(["http/1.1"])
        versions = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
        if args.tls_max:
            ctx.maximum_version = versions[args.tls_max]
        if args.tls_min:
            ctx.minimum_version = versions[args.tls_min]
        if args.require_client_cert:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(args.require_client_cert)
        srv.tls_context = ctx
    print(f"READY {srv.server_address[1]}", flush=True)
    try:
        srv.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
