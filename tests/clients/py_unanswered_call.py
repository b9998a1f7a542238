"""Sends a request to HOST PORT (a server that never answers) and exits without waiting
for the response: the exchange is still open when the program exits."""
import socket
import sys

host, port = sys.argv[1], int(sys.argv[2])
s = socket.create_connection((host, port), timeout=10)
s.sendall(f"GET /never-answered HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
print("sent", flush=True)
