"""gRPC over HTTP/2, end to end: real clients against a real grpcio server on 127.0.0.1.

- Python `grpcio` on a cleartext channel (prior-knowledge HTTP/2): a unary call whose
  request is gzip-compressed and carries a GitHub token in a protobuf string field, a
  server-streaming call (3 messages), a call that fails with NOT_FOUND;
- node `@grpc/grpc-js` over TLS (read through the inline OpenSSL hooks): a unary call
  with the token, and a NOT_FOUND.

Each run under `tapline run --otlp`: the `grpc` object (service, method, status,
message, message counts), decoded messages, `error` for the failed call, the table's
method and status columns, OTLP spans by the RPC conventions; the planted token in no
output, `****` in its place; the program's own output the same as without tapline.
"""

import json
import os
import secrets
import string
import subprocess
import sys

import pytest

from conftest import (CLIENTS, DEFAULT_TIMEOUT, REPO, SERVERS, ServerProcess, body_bytes,
                      clean_env, require_tool)

NODE_MODULES = REPO / "tests" / "node_grpc" / "node_modules"
SERVICE = "tapline.test.Greeter"


@pytest.fixture(scope="module")
def grpc_port():
    srv = ServerProcess([sys.executable, str(SERVERS / "grpc_server.py")], "grpc server")
    yield srv.port
    srv.stop()


@pytest.fixture(scope="module")
def grpc_tls_port(test_ca):
    srv = ServerProcess([sys.executable, str(SERVERS / "grpc_server.py"),
                         "--cert", str(test_ca / "server.pem"),
                         "--key", str(test_ca / "server.key")], "grpc TLS server")
    yield srv.port
    srv.stop()


def token():
    return "ghp_" + "".join(secrets.choice(string.ascii_letters + string.digits)
                            for _ in range(36))


def run(tapline_bin, tmp_path, fmt, cmd, receiver=None, env=None):
    out = tmp_path / f"report-{fmt}.{fmt}"
    spool = tmp_path / f"spool-{fmt}"
    spool.mkdir()
    argv = [tapline_bin, "run", "--format", fmt, "--output", str(out)]
    if receiver is not None:
        argv += ["--otlp", receiver.endpoint]
    proc = subprocess.run(argv + ["--", *cmd], capture_output=True, timeout=DEFAULT_TIMEOUT,
                          stdin=subprocess.DEVNULL,
                          env=clean_env({"TAPLINE_SPOOL_DIR": str(spool), **(env or {})}))
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-3000:]
    return proc, out.read_bytes()


def plain(cmd, env=None):
    proc = subprocess.run(cmd, capture_output=True, timeout=DEFAULT_TIMEOUT,
                          stdin=subprocess.DEVNULL, env=clean_env(env))
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return proc.stdout


def assert_no_token(where, data, tok):
    if isinstance(data, str):
        data = data.encode()
    assert tok[4:].encode() not in data, f"{where}: the token leaked\n{data[:3000]!r}"


def grpc_exchanges(report):
    exs = [json.loads(line) for line in report.decode().splitlines() if line.strip()]
    return {e["grpc"]["method"]: e for e in exs if e.get("grpc")}, exs


def check_span(spans, method, code):
    (sp,) = [s for s in spans if s["name"] == f"{SERVICE}/{method}"]
    a = sp["attributes"]
    assert (a["rpc.system"], a["rpc.service"], a["rpc.method"]) == ("grpc", SERVICE, method)
    assert a["rpc.grpc.status_code"] == code, a
    return sp


def test_grpcio_cleartext_unary_streaming_and_error(tapline_bin, tmp_path, grpc_port,
                                                     otlp_receiver):
    tok = token()
    cmd = [sys.executable, str(CLIENTS / "py_grpc_calls.py"), str(grpc_port), tok]
    expected = plain(cmd)
    assert expected == (b"SayHello: Hello tapline\nListItems: item 0, item 1, item 2\n"
                        b"Lookup: NOT_FOUND no such thing: nothing\n")
    rcv = otlp_receiver()
    proc, report = run(tapline_bin, tmp_path, "json", cmd, rcv)
    assert proc.stdout == expected
    for where, data in [("stderr", proc.stderr), ("json", report)]:
        assert_no_token(where, data, tok)
    by_method, exs = grpc_exchanges(report)
    assert sorted(by_method) == ["ListItems", "Lookup", "SayHello"], [
        (e["url"], e["http_version"], e["error"]) for e in exs]

    e = by_method["SayHello"]
    assert e["http_version"] == "2" and e["method"] == "POST"
    assert e["path"] == f"/{SERVICE}/SayHello"
    assert e["grpc"] == {"service": SERVICE, "method": "SayHello", "status": 0,
                         "message": None, "request_messages": 1, "response_messages": 1}
    assert e["error"] is None
    assert e["request_body_decoded"] == "grpc"
    # The gzip-compressed request, decompressed and decoded; the token masked by shape.
    assert json.loads(body_bytes(e, "request")) == [{"1": "tapline", "2": "****"}]
    assert json.loads(body_bytes(e, "response")) == [{"1": "Hello tapline", "2": {"1": 7}}]

    e = by_method["ListItems"]
    assert e["grpc"]["status"] == 0 and e["grpc"]["response_messages"] == 3
    assert json.loads(body_bytes(e, "response")) == [
        {"1": f"item {i}", "2": i} for i in range(3)]

    e = by_method["Lookup"]
    assert e["grpc"]["status"] == 5
    assert e["grpc"]["message"] == "no such thing: nothing"
    assert e["error"] == "grpc NOT_FOUND: no such thing: nothing"

    assert_no_token("OTLP", json.dumps(rcv.records()), tok)
    for raw in rcv.raw_bodies():
        assert_no_token("OTLP raw", raw, tok)
    spans = rcv.spans()
    assert check_span(spans, "SayHello", 0)["status"].get("code") in (None, 0, "STATUS_CODE_UNSET")
    sp = check_span(spans, "Lookup", 5)
    assert sp["status"]["code"] in (2, "STATUS_CODE_ERROR"), sp["status"]
    check_span(spans, "ListItems", 0)


@pytest.mark.parametrize("fmt", ["table", "har"])
def test_grpcio_reports_name_the_call_and_its_status(tapline_bin, tmp_path, grpc_port, fmt):
    tok = token()
    cmd = [sys.executable, str(CLIENTS / "py_grpc_calls.py"), str(grpc_port), tok]
    proc, report = run(tapline_bin, tmp_path, fmt, cmd)
    assert_no_token(fmt, report, tok)
    assert_no_token("stderr", proc.stderr, tok)
    text = report.decode()
    if fmt == "table":
        lines = [line for line in text.splitlines() if f"{SERVICE}/" in line]
        assert len(lines) == 3, text
        (lookup,) = [line for line in lines if f"{SERVICE}/Lookup" in line]
        assert "NOT_FOUND" in lookup and "grpc NOT_FOUND: no such thing" in lookup, lookup
        (hello,) = [line for line in lines if f"{SERVICE}/SayHello" in line]
        assert " OK " in hello, hello
    else:
        entries = json.loads(text)["log"]["entries"]
        grpc_entries = [en for en in entries if f"/{SERVICE}/" in en["request"]["url"]]
        assert len(grpc_entries) == 3
        assert all(en["request"]["httpVersion"] == "HTTP/2.0" for en in grpc_entries)
        assert "****" in text


def test_grpc_js_over_tls(tapline_bin, tmp_path, grpc_tls_port, ca_bundle, otlp_receiver):
    node = require_tool("node")
    assert (NODE_MODULES / "@grpc" / "grpc-js").exists(), "run scripts/setup (npm install)"
    tok = token()
    cmd = [node, str(CLIENTS / "node_grpc_calls.js"), str(grpc_tls_port), ca_bundle, tok]
    env = {"NODE_PATH": str(NODE_MODULES)}
    expected = plain(cmd, env)
    assert expected == b"SayHello: Hello node\nLookup: NOT_FOUND no such thing: node-nothing\n"
    rcv = otlp_receiver()
    proc, report = run(tapline_bin, tmp_path, "json", cmd, rcv, env)
    assert proc.stdout == expected
    assert_no_token("json", report, tok)
    assert_no_token("stderr", proc.stderr, tok)
    by_method, exs = grpc_exchanges(report)
    assert sorted(by_method) == ["Lookup", "SayHello"], [
        (e["url"], e["http_version"], e["tls"], e["error"]) for e in exs]
    e = by_method["SayHello"]
    assert (e["scheme"], e["tls"], e["http_version"]) == ("https", "openssl", "2")
    assert e["grpc"]["status"] == 0
    assert json.loads(body_bytes(e, "request")) == [{"1": "node", "2": "****"}]
    assert json.loads(body_bytes(e, "response")) == [{"1": "Hello node", "2": {"1": 4}}]
    e = by_method["Lookup"]
    assert e["error"] == "grpc NOT_FOUND: no such thing: node-nothing"
    assert_no_token("OTLP", json.dumps(rcv.records()), tok)
    spans = rcv.spans()
    check_span(spans, "SayHello", 0)
    check_span(spans, "Lookup", 5)
