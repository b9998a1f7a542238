#!/usr/bin/env python3
"""A loopback OTLP/HTTP trace receiver that checks payloads with the official
OpenTelemetry protobuf definitions (the `opentelemetry-proto` and `protobuf` packages).

Each POST body is decoded into `ExportTraceServiceRequest`: OTLP/JSON with
`google.protobuf.json_format.Parse` (strict: unknown fields are errors), protobuf with
`ParseFromString`. OTLP/JSON writes trace and span ids as hex where protobuf's JSON
mapping expects base64, so ids are checked (exact length, lower/upper hex) and converted
first — as an OTLP collector does. A body that does not decode gets HTTP 400 and an
`error` line.

One JSON line per request goes to --out: path, headers, content type, error, resource
attributes and spans (name, kind, ids in hex, times, attributes as plain values, status).

With --raw-dir, each request body is also saved as it arrived (`NNNN.bin`, in order), so
that tests can search the bytes on the wire, not only what decoded.

Listens on 127.0.0.1 only. Optional: HTTPS (--cert/--key), answering 503 with
Retry-After first (--fail N --retry-after S), a partial success (--reject N). Exits by
itself after --max-requests requests or --timeout seconds (default 60).

    python3 tests/servers/otlp_receiver.py --out /tmp/otlp.jsonl --port-file /tmp/port
"""

import argparse
import base64
import http.server
import json
import os
import ssl
import sys
import threading

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

ID_LENGTHS = {"traceId": 16, "spanId": 8, "parentSpanId": 8}


def hex_ids_to_base64(node, errors):
    """Rewrites OTLP/JSON hex ids into protobuf JSON's base64, checking them."""
    if isinstance(node, dict):
        for key, value in list(node.items()):
            if key in ID_LENGTHS and isinstance(value, str):
                want = ID_LENGTHS[key]
                if value == "" and key == "parentSpanId":
                    continue
                try:
                    raw = bytes.fromhex(value)
                except ValueError:
                    errors.append(f"{key} {value!r} is not hex")
                    continue
                if len(raw) != want or len(value) != 2 * want:
                    errors.append(f"{key} {value!r} is not {want} bytes")
                    continue
                node[key] = base64.b64encode(raw).decode()
            else:
                hex_ids_to_base64(value, errors)
    elif isinstance(node, list):
        for item in node:
            hex_ids_to_base64(item, errors)


def any_value(v):
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [any_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in v.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(v.bytes_value).decode()
    return getattr(v, kind) if kind else None


def attributes(kvs):
    return {kv.key: any_value(kv.value) for kv in kvs}


def summarize(req):
    out = {"resources": [], "spans": []}
    for rs in req.resource_spans:
        out["resources"].append(attributes(rs.resource.attributes))
        for ss in rs.scope_spans:
            for s in ss.spans:
                out["spans"].append(
                    {
                        "scope": ss.scope.name,
                        "name": s.name,
                        "kind": s.kind,
                        "trace_id": s.trace_id.hex(),
                        "span_id": s.span_id.hex(),
                        "parent_span_id": s.parent_span_id.hex(),
                        "start_unix_ns": s.start_time_unix_nano,
                        "end_unix_ns": s.end_time_unix_nano,
                        "attributes": attributes(s.attributes),
                        "status": {"code": s.status.code, "message": s.status.message},
                        "links": [
                            {
                                "trace_id": l.trace_id.hex(),
                                "span_id": l.span_id.hex(),
                                "attributes": attributes(l.attributes),
                            }
                            for l in s.links
                        ],
                    }
                )
    return out


def decode(body, content_type):
    req = ExportTraceServiceRequest()
    if content_type.startswith("application/json"):
        doc = json.loads(body)
        errors = []
        hex_ids_to_base64(doc, errors)
        if errors:
            raise ValueError("; ".join(errors))
        json_format.Parse(json.dumps(doc), req, ignore_unknown_fields=False)
    elif content_type.startswith("application/x-protobuf"):
        req.ParseFromString(body)
    else:
        raise ValueError(f"unsupported content type {content_type!r}")
    return req


class Receiver(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # The reply's head and body leave in one write (a buffered wfile, flushed once per
    # request by the base class), with Nagle off: on a kept-alive connection a reply
    # written in two pieces would otherwise wait ~40 ms for the client's delayed ACK,
    # which every benchmark exporting here would measure.
    disable_nagle_algorithm = True
    wbufsize = -1

    def log_message(self, fmt, *args):  # quiet
        pass

    def do_POST(self):
        srv = self.server
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            body = self.read_chunked()  # OpenTelemetry's JavaScript exporter sends so
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        ctype = self.headers.get("Content-Type", "")
        record = {
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "content_type": ctype,
            "bytes": len(body),
            "error": None,
        }
        if srv.args.no_decode:
            # A collector elsewhere: answer at once, decode nothing here (the bodies
            # are in --raw-dir for whoever reads them afterwards).
            with srv.lock:
                srv.requests += 1
                raw = os.path.join(srv.args.raw_dir, f"{srv.requests:06d}.bin")
                with open(raw, "wb") as f:
                    f.write(ctype.encode() + b"\n" + body)
            if ctype.startswith("application/x-protobuf"):
                self.reply(200, b"", "application/x-protobuf")
            else:
                self.reply(200, b"{}", "application/json")
            return
        with srv.lock:
            srv.requests += 1
            if srv.args.raw_dir:
                raw = os.path.join(srv.args.raw_dir, f"{srv.requests:04d}.bin")
                with open(raw, "wb") as f:
                    f.write(body)
                record["raw"] = raw
            failing = srv.fail_left > 0
            if failing:
                srv.fail_left -= 1
        if failing:
            record["answered"] = 503
            self.write_record(record)
            self.reply(503, b"busy", "text/plain", {"Retry-After": str(srv.args.retry_after)})
            return
        try:
            req = decode(body, ctype)
            record.update(summarize(req))
        except Exception as e:  # any decode failure is the exporter's bug: report it
            record["error"] = f"{type(e).__name__}: {e}"
            record["answered"] = 400
            self.write_record(record)
            self.reply(400, record["error"].encode(), "text/plain")
            return
        record["answered"] = 200
        self.write_record(record)
        resp = ExportTraceServiceResponse()
        if srv.args.reject:
            resp.partial_success.rejected_spans = srv.args.reject
            resp.partial_success.error_message = "rejected by test receiver"
        if ctype.startswith("application/x-protobuf"):
            self.reply(200, resp.SerializeToString(), "application/x-protobuf")
        else:
            self.reply(200, json_format.MessageToJson(resp).encode(), "application/json")

    def read_chunked(self):
        parts = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline()

    def write_record(self, record):
        srv = self.server
        with srv.lock:
            with open(srv.args.out, "a") as f:
                f.write(json.dumps(record) + "\n")

    def reply(self, status, body, ctype, headers=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        srv = self.server
        if srv.args.max_requests and srv.requests >= srv.args.max_requests:
            threading.Thread(target=srv.shutdown, daemon=True).start()


def read_raw_dir(raw_dir):
    """The records --no-decode would have written: one per saved body, in order."""
    out = []
    for name in sorted(os.listdir(raw_dir)):
        with open(os.path.join(raw_dir, name), "rb") as f:
            ctype, _, body = f.read().partition(b"\n")
        record = {"raw": name, "content_type": ctype.decode(), "error": None}
        try:
            record.update(summarize(decode(body, ctype.decode())))
        except Exception as e:
            record["error"] = f"{type(e).__name__}: {e}"
        out.append(record)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file", help="write the bound port here once listening")
    p.add_argument("--out", required=True, help="JSON lines, one per request")
    p.add_argument("--raw-dir", help="save each request body here, as received")
    p.add_argument("--cert", help="PEM certificate: serve HTTPS")
    p.add_argument("--key", help="PEM private key for --cert")
    p.add_argument("--no-decode", action="store_true",
                   help="with --raw-dir: save each body (its content type on the first "
                        "line) and answer 200 at once, decoding nothing (benchmarks: "
                        "the receiver's work stays off the measured machine's path); "
                        "read them with read_raw_dir()")
    p.add_argument("--fail", type=int, default=0, help="answer 503 to the first N requests")
    p.add_argument("--retry-after", type=int, default=1, help="Retry-After seconds with --fail")
    p.add_argument("--reject", type=int, default=0, help="report N rejected spans")
    p.add_argument("--max-requests", type=int, default=0, help="exit after N requests")
    p.add_argument("--timeout", type=float, default=60.0, help="exit after this many seconds")
    args = p.parse_args()

    if args.no_decode and not args.raw_dir:
        p.error("--no-decode needs --raw-dir")
    if args.raw_dir:
        os.makedirs(args.raw_dir, exist_ok=True)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Receiver)
    srv.args = args
    srv.lock = threading.Lock()
    srv.requests = 0
    srv.fail_left = args.fail
    if args.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    port = srv.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.replace(tmp, args.port_file)
    print(port, flush=True)
    timer = threading.Timer(args.timeout, srv.shutdown)
    timer.daemon = True
    timer.start()
    try:
        srv.serve_forever()
    finally:
        timer.cancel()
        srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
