#!/usr/bin/env python3
"""grpcio client on a cleartext channel (tests/test_grpc.py). Usage:
py_grpc_calls.py PORT SECRET

  1. SayHello  {1: "tapline", 2: SECRET}          unary, gzip-compressed request
  2. ListItems {1: 3}                              server streaming: 3 messages
  3. Lookup    {1: "nothing"}                      NOT_FOUND "no such thing: nothing"
Prints what it got, one line per call (no secret in it).
"""

import sys

import grpc

sys.path.insert(0, __file__.rsplit("/", 2)[0] + "/servers")
from grpc_server import field_bytes, field_varint, parse  # noqa: E402


def ident(b):
    return b


def main():
    port, secret = sys.argv[1], sys.argv[2].encode()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        hello = ch.unary_unary("/tapline.test.Greeter/SayHello", ident, ident)
        reply = hello(field_bytes(1, b"tapline") + field_bytes(2, secret), timeout=20,
                      compression=grpc.Compression.Gzip)
        print("SayHello:", parse(reply)[1][0].decode())
        items = ch.unary_stream("/tapline.test.Greeter/ListItems", ident, ident)
        got = [parse(m)[1][0].decode() for m in items(field_varint(1, 3), timeout=20)]
        print("ListItems:", ", ".join(got))
        lookup = ch.unary_unary("/tapline.test.Greeter/Lookup", ident, ident)
        try:
            lookup(field_bytes(1, b"nothing"), timeout=20)
            print("Lookup: no error?")
        except grpc.RpcError as e:
            print("Lookup:", e.code().name, e.details())


if __name__ == "__main__":
    main()
