#!/usr/bin/env python3
"""An HTTP/1.1 server on 127.0.0.1 that accepts `Upgrade: h2c` (RFC 7540 §3.2) and goes
on in HTTP/2 (the `h2` package; node's http2 module does not upgrade). The request
that asked for the upgrade is stream 1: its response comes as HTTP/2. Every response is
200 with body "h2c <path>" and header `x-upgraded: yes|no`. A request without the
upgrade headers is answered in HTTP/1.1. Prints `READY <port>` once listening."""

import h2.config
import h2.connection
import h2.events

from thread_server import serve


def read_head(conn):
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = conn.recv(65536)
        if not chunk:
            return None, b""
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    return head.decode("latin-1"), rest


def respond(h2conn, stream_id, path, upgraded):
    body = f"h2c {path}".encode()
    h2conn.send_headers(stream_id, [(":status", "200"), ("content-type", "text/plain"),
                                    ("content-length", str(len(body))),
                                    ("x-upgraded", "yes" if upgraded else "no")])
    h2conn.send_data(stream_id, body, end_stream=True)


def handle(conn):
    try:
        head, rest = read_head(conn)
        if head is None:
            return
        lines = head.split("\r\n")
        path = lines[0].split(" ")[1]
        fields = {k.strip().lower(): v.strip() for k, v in
                  (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
        if fields.get("upgrade", "").lower() != "h2c" or "http2-settings" not in fields:
            body = f"http/1.1 {path}".encode()
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                         % (len(body), body))
            return
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                     b"Upgrade: h2c\r\n\r\n")
        h2conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        h2conn.initiate_upgrade_connection(fields["http2-settings"])
        respond(h2conn, 1, path, True)
        conn.sendall(h2conn.data_to_send())
        data = rest
        paths = {}
        while True:
            if data:
                for ev in h2conn.receive_data(data):
                    if isinstance(ev, h2.events.RequestReceived):
                        paths[ev.stream_id] = dict(
                            (k.decode() if isinstance(k, bytes) else k,
                             v.decode() if isinstance(v, bytes) else v)
                            for k, v in ev.headers)[":path"]
                    elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id in paths:
                        respond(h2conn, ev.stream_id, paths.pop(ev.stream_id), True)
                    elif isinstance(ev, h2.events.ConnectionTerminated):
                        return
                out = h2conn.data_to_send()
                if out:
                    conn.sendall(out)
            data = conn.recv(65536)
            if not data:
                return
    except (OSError, h2.exceptions.ProtocolError):
        pass
    finally:
        conn.close()


if __name__ == "__main__":
    serve(handle)
