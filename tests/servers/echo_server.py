#!/usr/bin/env python3
"""A TCP line-echo server for a non-HTTP protocol: every line comes back prefixed `+`.

Used by the test that checks tapline reports nothing for traffic that is not HTTP.
Binds 127.0.0.1 on an ephemeral port and prints `READY <port>` once listening.
"""

import socketserver


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            self.wfile.write(b"+" + line)
            self.wfile.flush()


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    srv = Server(("127.0.0.1", 0), Handler)
    print(f"READY {srv.server_address[1]}", flush=True)
    srv.serve_forever(poll_interval=0.1)


if __name__ == "__main__":
    main()
