#!/usr/bin/env python3
"""A TCP server that breaks TLS handshakes: accepts, reads a few bytes (the start of the
ClientHello), then closes the connection. Prints `READY <port>` once listening."""
from thread_server import serve


def handle(conn):
    try:
        conn.settimeout(10)
        conn.recv(16)
    except OSError:
        pass
    finally:
        conn.close()


if __name__ == "__main__":
    serve(handle)
