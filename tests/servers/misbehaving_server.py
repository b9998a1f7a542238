"""An HTTP/1.1 server on 127.0.0.1 that fails in the ways real servers do, one way per
path. Prints `READY <port>`; one thread per connection; one exchange per connection.

- `/upload-413`   answers `413` as soon as the request head is in, before reading the
                  body; then closes the way nginx does (shutdown of its side, the rest
                  of the upload read and dropped, then close), so the client sees the
                  answer and no reset.
- `/slow-stream`  `Content-Length: 67108864`, sent 64 KiB at a time with a pause
                  between pieces (some 20 s in all), until the client goes away.
- `/reset-mid`    `Content-Length: 100000`, 30000 body bytes, then a reset
                  (`SO_LINGER` 0 close).
- `/close-mid`    `Content-Length: 100000`, 30000 body bytes, then a plain close.
- `/close-mid-chunked`  chunked: three 10000-byte chunks, then a plain close (no last
                  chunk).
- `/never`        reads the request and never answers (until the client closes).
"""
import socket
import struct
import sys
import threading
import time

SLOW_LENGTH = 64 * 1024 * 1024
SLOW_PIECE = 64 * 1024
MID_LENGTH = 100_000
MID_SENT = 30_000
CHUNK = 10_000
CHUNKS = 3


def read_head(conn):
    """The request head (bytes up to the blank line) and the bytes read after it."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        got = conn.recv(65536)
        if not got:
            return None, b""
        buf += got
    head, _, rest = buf.partition(b"\r\n\r\n")
    return head, rest


def drain(conn):
    try:
        while conn.recv(65536):
            pass
    except OSError:
        pass


def still_open(conn):
    """The client has neither closed nor reset the connection (asked without reading)."""
    try:
        info = conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)
    except OSError:
        return False
    return info[0] == 1  # TCP_ESTABLISHED


def body_piece(n):
    return (b"0123456789abcdef" * (n // 16 + 1))[:n]


def handle(conn):
    try:
        head, _ = read_head(conn)
        if head is None:
            return
        path = head.split(b" ", 2)[1].decode()
        if path.startswith("/upload-413"):
            body = b"upload too large\n"
            conn.sendall(b"HTTP/1.1 413 Content Too Large\r\nContent-Type: text/plain\r\n"
                         b"Connection: close\r\n"
                         b"Content-Length: %d\r\n\r\n" % len(body) + body)
            if path.startswith("/upload-413-close"):
                pass  # closed with the upload unread: the kernel answers with a reset
            elif path.startswith("/upload-413-unread"):
                # Never reads the upload; closes once the client has closed its side.
                while still_open(conn):
                    time.sleep(0.02)
            else:
                conn.shutdown(socket.SHUT_WR)
                drain(conn)
        elif path.startswith("/slow-stream"):
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                         b"Content-Length: %d\r\n\r\n" % SLOW_LENGTH)
            piece = body_piece(SLOW_PIECE)
            for _ in range(SLOW_LENGTH // SLOW_PIECE):
                conn.sendall(piece)
                time.sleep(0.02)
        elif path.startswith("/reset-mid"):
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                         b"Content-Length: %d\r\n\r\n" % MID_LENGTH + body_piece(MID_SENT))
            time.sleep(0.2)  # the client reads the bytes before the reset discards them
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif path.startswith("/close-mid-chunked"):
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n")
            for _ in range(CHUNKS):
                conn.sendall(b"%x\r\n" % CHUNK + body_piece(CHUNK) + b"\r\n")
        elif path.startswith("/close-mid"):
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                         b"Content-Length: %d\r\n\r\n" % MID_LENGTH + body_piece(MID_SENT))
        elif path.startswith("/never"):
            drain(conn)
        else:
            conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n"
                         b"Connection: close\r\n\r\n")
    except OSError:
        pass
    finally:
        conn.close()


def main():
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Small buffers: a 1 MiB upload cannot sit in them whole before the server answers.
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    print(f"READY {srv.getsockname()[1]}", flush=True)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
