"""The accept loop the raw-socket test servers share: bind 127.0.0.1 on an ephemeral
port, print `READY <port>` once listening, hand each connection to `handle(conn)` on its
own daemon thread until killed."""
import socket
import threading


def serve(handle):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    print(f"READY {srv.getsockname()[1]}", flush=True)
    try:
        while True:
            conn, _ = srv.accept()
            threading.Thread(target=handle, args=(conn,), daemon=True).start()
    except KeyboardInterrupt:
        pass
