#!/usr/bin/env python3
"""A TCP server that breaks TLS handshakes: accepts, reads a few bytes (the start of the
ClientHello), then closes the connection. Prints `READY <port>` once listening."""
import socket
import threading


def handle(conn):
    try:
        conn.settimeout(10)
        conn.recv(16)
    except OSError:
        pass
    finally:
        conn.close()


def main():
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    print(f"READY {srv.getsockname()[1]}", flush=True)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
