#!/usr/bin/env python3
"""A gRPC server for the tests (grpcio, generic handlers, protobuf encoded by hand: no
protoc). Prints `READY <port>` once listening on 127.0.0.1 (cleartext, or TLS with
--cert/--key). Run without the library: only clients are traced.

Service `tapline.test.Greeter` (field numbers are the schema):
  SayHello   unary            HelloRequest{1: name, 2: token}  -> HelloReply{1: "Hello <name>",
                                                                   2: Stats{1: len(name)}}
  ListItems  server streaming ListRequest{1: n}                -> n x Item{1: "item <i>", 2: i}
  Lookup     unary            any -> status NOT_FOUND "no such thing: <name>"
A request with metadata `grpc-encoding: gzip` is answered compressed (the server's
`compression` argument).
"""

import argparse
import sys
from concurrent import futures

import grpc


def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_varint(n, v):
    return varint(n << 3) + varint(v)


def field_bytes(n, b):
    return varint(n << 3 | 2) + varint(len(b)) + b


def parse(buf):
    """{field: [values]} of a flat message (varints and length-delimited only)."""
    out, i = {}, 0
    while i < len(buf):
        tag, i = read_varint(buf, i)
        n, wt = tag >> 3, tag & 7
        if wt == 0:
            v, i = read_varint(buf, i)
        elif wt == 2:
            ln, i = read_varint(buf, i)
            v, i = buf[i:i + ln], i + ln
        else:
            raise ValueError(f"wire type {wt}")
        out.setdefault(n, []).append(v)
    return out


def read_varint(buf, i):
    shift = v = 0
    while True:
        b = buf[i]
        i += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return v, i


def say_hello(request, context):
    name = parse(request).get(1, [b""])[0]
    return field_bytes(1, b"Hello " + name) + field_bytes(2, field_varint(1, len(name)))


def list_items(request, context):
    n = parse(request).get(1, [0])[0]
    for i in range(n):
        yield field_bytes(1, f"item {i}".encode()) + field_varint(2, i)


def lookup(request, context):
    name = parse(request).get(1, [b"?"])[0].decode(errors="replace")
    context.abort(grpc.StatusCode.NOT_FOUND, f"no such thing: {name}")


def ident(b):
    return b


HANDLERS = {
    "SayHello": grpc.unary_unary_rpc_method_handler(say_hello, ident, ident),
    "ListItems": grpc.unary_stream_rpc_method_handler(list_items, ident, ident),
    "Lookup": grpc.unary_unary_rpc_method_handler(lookup, ident, ident),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert")
    ap.add_argument("--key")
    args = ap.parse_args()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("tapline.test.Greeter", HANDLERS),))
    if args.cert:
        creds = grpc.ssl_server_credentials(
            [(open(args.key, "rb").read(), open(args.cert, "rb").read())])
        port = server.add_secure_port("127.0.0.1:0", creds)
    else:
        port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"READY {port}", flush=True)
    try:
        server.wait_for_termination()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
