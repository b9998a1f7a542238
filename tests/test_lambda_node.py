"""End to end: a Node function under the tapline layer in the Lambda emulator.

The runtime is a Runtime-API client in plain JavaScript (`tests/lambda_sim/node/
runtime.js`: the official one needs a native build) started as Lambda starts it through
`AWS_LAMBDA_EXEC_WRAPPER`: `dash wrapper.sh node runtime.js handler.<export>`. The handler
(`tests/lambda_sim/node/handler.js`) makes an `http` call, an `https` call (Node's own
OpenSSL: the inline hooks) and a `fetch` per invocation, all to 127.0.0.1, and either
returns JSON (`plain`) or streams its answer (`streamed`: a chunked POST with
`Lambda-Runtime-Function-Response-Mode: streaming`, one more call made while the stream
is open). The emulator ends a streamed invocation when the streamed body ends.

Checked from events and their order, never from durations: responses unchanged, one
SERVER span per invocation with exactly its calls as children (three, four when
streamed), nothing planted reaches the receiver, and for the streamed response, the
caller's response and the extension's work for that invocation both come after the
stream's last chunk.

Needs: node, dash, cargo, the Python packages of the Lambda harness.
"""

import json
import os
import sys

import pytest

from conftest import require_tool

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "lambda_sim"))
from harness import PLANTED, Lambda, Servers, build_binaries  # noqa: E402

NODE_DIR = os.path.join(ROOT, "tests", "lambda_sim", "node")


@pytest.fixture(scope="module")
def build():
    return build_binaries()


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    s = Servers(str(tmp_path_factory.mktemp("servers")))
    yield s.info
    s.close()


def node_runtime(export):
    """The runtime command line: wrapper.sh, then node with our Runtime-API client."""
    node = require_tool("node")
    require_tool("dash")

    def cmd(env, default, rt_env):
        wrapper = os.path.join(env.opt, "tapline", "wrapper.sh")
        return (["dash", wrapper, node, os.path.join(NODE_DIR, "runtime.js"),
                 os.path.join(NODE_DIR, f"handler.{export}")],
                dict(rt_env, NODE_EXTRA_CA_CERTS=rt_env["SSL_CERT_FILE"]))
    return cmd


def run(build, servers, tmp_path, export, n):
    # A deadline far beyond any invocation here: a slow machine must not turn a
    # response into a timeout.
    env = Lambda(build, servers, str(tmp_path), runtime_cmd=node_runtime(export),
                 timeout_ms=60000)
    out = []
    try:
        for i in range(n):
            rid, resp, ready = env.invoke({"n": i})
            assert resp[2] == "success", (resp, env.logs())
            out.append((i, rid, resp, ready))
        env.shutdown()
        assert env.extension.wait(timeout=15) == 0, env.logs()
        return env, out, env.spans(), env.logs()
    finally:
        env.close()


def children_of(spans, rid):
    inv = [s for s in spans if s["kind"] == 2
           and s["attributes"].get("faas.invocation_id") == rid]
    assert len(inv) == 1, (rid, spans)
    kids = [s for s in spans if s["parent_span_id"] == inv[0]["span_id"]]
    return inv[0], sorted(k["attributes"].get("url.full", "") for k in kids)


def test_node_function_calls_traced_per_invocation(build, servers, tmp_path):
    env, out, spans, log = run(build, servers, tmp_path, "plain", 3)
    for i, rid, resp, _ in out:
        body = json.loads(resp[4])
        assert body["n"] == i and body["statuses"] == [200, 200, 200], body
        inv, urls = children_of(spans, rid)
        assert inv["attributes"]["faas.coldstart"] is (i == 0)
        assert len(urls) == 3, (urls, log)
        assert any(u.startswith("https://localhost:") and f"/secret?n={i}&via=https" in u
                   for u in urls), urls
        assert any(f"/plain?n={i}&via=http" in u for u in urls), urls
        assert any(f"/plain?n={i}&via=fetch" in u for u in urls), urls
    # The runtime's own Runtime API calls are lifecycle, not user calls.
    assert not any("/2018-06-01/runtime/" in s["attributes"].get("url.full", "") for s in spans)
    assert PLANTED not in open(env.otlp_out).read()


def test_streamed_response_ends_the_invocation_when_the_stream_ends(build, servers, tmp_path):
    env, out, spans, log = run(build, servers, tmp_path, "streamed", 3)
    streams = {}
    for line in env.lines:
        if line.startswith("stream "):
            _, rid, first, end, chunks, size = line.split(" ")
            streams[rid] = (int(first), int(end), int(chunks), int(size))
    for i, rid, resp, ready in out:
        # What the caller got is the whole streamed body, in order.
        assert json.loads(resp[4]) == f"start {i};statuses 200,200,200;last 200;end {i}", resp
        first, end, chunks, size = streams[rid]
        assert chunks >= 4 and first <= end, streams[rid]
        # The invocation ended with the stream, not with the POST's head: the caller's
        # response and the end of the invocation come after the last chunk.
        assert end <= int(resp[3]) <= int(ready[2]), (streams[rid], resp, ready)
        # The call made while the stream was open belongs to this invocation, inside
        # its window (not "after the response")...
        inv, urls = children_of(spans, rid)
        assert len(urls) == 4, (urls, log)
        during = [s for s in spans if s["parent_span_id"] == inv["span_id"]
                  and f"/plain?n={i}&via=stream" in s["attributes"].get("url.full", "")]
        assert len(during) == 1, urls
        assert during[0]["attributes"]["tapline.lambda.phase"] == "invocation", during
        assert during[0]["end_unix_ns"] <= inv["end_unix_ns"], (during, inv)
        assert inv["status"]["code"] != 2, (inv["status"], log)
        # ... and tapline's work on the invocation began only after it (the function
        # was still working while it streamed), and was over before Next.
        line = [l for l in log.splitlines() if f"invocation {rid}:" in l]
        assert line, log
        start, stop = (int(x) for x in line[0].rsplit("work ", 1)[1].split(".."))
        assert during[0]["end_unix_ns"] <= start <= stop <= int(ready[2]), (during, start, ready)
    assert PLANTED not in open(env.otlp_out).read()
