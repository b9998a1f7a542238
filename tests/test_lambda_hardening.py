"""Hardening, end to end in the Lambda emulator (tests/lambda_sim): what breaks Lambda
tools must not break the function or lose (or double) what tapline reports.

Each test drives the real extension and AWS's Python runtime client through
`wrapper.sh` (`tests/lambda_sim/harness.py`) and checks, from the loopback OTLP
receiver, that every invocation's exchanges arrive exactly once (no span id twice, one
SERVER span per invocation with its calls as children), and that the function's
responses are what they are without tapline. Assertions are on events, their order and
counts, never on durations. Long waits are parameters (environment variables), kept
short by default:

- `TAPLINE_TEST_FREEZE_GAP` (s, default 2): how long the sandbox stays frozen.
- `TAPLINE_TEST_STALL` (s, default 5): how long a stalled collector keeps a request.
- `TAPLINE_TEST_TROUBLE` (s, default 3): how long the collector answers 429/503.

Needs: cargo, dash, awslambdaric, opentelemetry-proto, protobuf, cryptography
(`scripts/setup`); a missing one fails the module.
"""

import collections
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import require_tool

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "lambda_sim"))
import harness  # noqa: E402
from harness import PLANTED, Gate, Lambda, Servers, Trouble, build_binaries  # noqa: E402

FREEZE_GAP = float(os.environ.get("TAPLINE_TEST_FREEZE_GAP", "2"))
STALL = float(os.environ.get("TAPLINE_TEST_STALL", "5"))
TROUBLE = float(os.environ.get("TAPLINE_TEST_TROUBLE", "3"))

HANDLER = r'''
import http.client, json, os, subprocess, sys, urllib.request

PORT = int(os.environ["E2E_HTTP_PORT"])

def call(url, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=120) as r:
        return r.status, len(r.read())

if os.environ.get("E2E_INIT_FAIL"):
    call(f"http://127.0.0.1:{PORT}/init-call")
    raise RuntimeError("init fails on purpose")

def handle(event, context):
    n = event.get("n", 0)
    out = {"n": n, "statuses": [
        call(f"http://127.0.0.1:{PORT}/plain?n={n}&api_key=PLANTED_KEY")[0],
        call(f"https://localhost:{os.environ['E2E_HTTPS_PORT']}/secret?n={n}",
             {"Authorization": "Bearer PLANTED_TOKEN"})[0],
    ]}
    if event.get("calls"):
        c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
        ok = 0
        for i in range(event["calls"]):
            c.request("GET", f"/many?n={n}&i={i}")
            r = c.getresponse()
            r.read()
            ok += r.status == 200
        c.close()
        out["many_ok"] = ok
    if event.get("big"):
        out["big"] = [call(f"http://127.0.0.1:{PORT}/big?size={1 << 20}")[1]
                      for _ in range(event["big"])]
    if "pad" in event:
        out["pad"] = len(event["pad"])
    if event.get("child"):
        # A process of the function that is preloaded although the runtime is not.
        env = dict(os.environ, LD_PRELOAD=os.environ["E2E_LIB"])
        code = f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{PORT}/child?n={n}').read()"
        out["child"] = subprocess.run([sys.executable, "-c", code], env=env).returncode
    if event.get("hang"):
        call(f"http://127.0.0.1:{PORT}/hang?n={n}")
    if event.get("raise"):
        raise ValueError("the handler fails on purpose")
    return out
'''.replace("PLANTED_KEY", PLANTED + "-query").replace("PLANTED_TOKEN", PLANTED + "-bearer")


@pytest.fixture(scope="module")
def build():
    require_tool("dash")
    require_tool("cargo")
    for module in ("awslambdaric", "opentelemetry.proto", "cryptography"):
        try:
            __import__(module)
        except ImportError:
            pytest.fail(f"python module {module} is not installed: run scripts/setup",
                        pytrace=False)
    # The release build, as in Lambda: volume and budgets are measured on what ships.
    return build_binaries(release=True)


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    s = Servers(str(tmp_path_factory.mktemp("servers")))
    yield s.info
    s.close()


@pytest.fixture
def lam(build, servers, tmp_path):
    made = []

    def make(**kw):
        d = os.path.join(str(tmp_path), f"env{len(made)}")
        os.makedirs(d)
        kw.setdefault("handler", HANDLER)
        env = Lambda(build, servers, d, **kw)
        made.append(env)
        return env

    yield make
    for env in made:
        env.close()


def expected(n, **more):
    return dict({"n": n, "statuses": [200, 200]}, **more)


def ok(env, resp, n, **more):
    """The caller got what the function returns without tapline."""
    assert resp[2] == "success", (resp, env.logs())
    assert json.loads(resp[4]) == expected(n, **more), (resp, env.logs())


def finish(env):
    env.shutdown()
    assert env.extension.wait(timeout=30) == 0, env.logs()


def delivered(env, calls):
    """`calls`: {request id: the URL fragments of its calls}. Every span arrived once;
    each invocation has one SERVER span whose children are exactly its calls. Returns
    {request id: (server span, children)}."""
    spans = env.spans()
    twice = [k for k, v in collections.Counter(s["span_id"] for s in spans).items() if v > 1]
    assert not twice, (f"{len(twice)} span(s) delivered more than once", env.logs())
    out = {}
    for rid, fragments in calls.items():
        inv = [s for s in spans if s["kind"] == 2
               and s["attributes"].get("faas.invocation_id") == rid]
        assert len(inv) == 1, (rid, len(inv), env.logs())
        children = [s for s in spans if s.get("parent_span_id") == inv[0]["span_id"]]
        urls = sorted(c["attributes"].get("url.full", "") for c in children)
        assert len(urls) == len(fragments), (rid, urls, env.logs())
        for frag in fragments:
            assert any(frag in u for u in urls), (rid, frag, urls)
        out[rid] = (inv[0], children)
    # The Runtime API's own calls are never user spans.
    assert not any("/2018-06-01/runtime/" in s["attributes"].get("url.full", "") for s in spans)
    assert PLANTED not in open(env.otlp_out).read()
    return out


def two_calls(n):
    return [f"/plain?n={n}&", f"/secret?n={n}"]


# --- configuration mistakes ---------------------------------------------------------------

def config_errors(env):
    return [l for l in env.ext_log_text().splitlines() if "configuration error" in l]


def test_invalid_mask_pattern_fails_closed_and_the_function_runs(lam):
    """An invalid TAPLINE_MASK_REGEX: logged once; every exchange goes out without
    headers, query or bodies (JSON lines on stdout here, which carry all three)."""
    env = lam(otlp=False, ext_env={"TAPLINE_MASK_REGEX": "(unclosed"})
    rids = []
    for n in range(2):
        rid, resp, _ = env.invoke({"n": n})
        ok(env, resp, n)
        rids.append(rid)
    finish(env)
    assert len(config_errors(env)) == 1, env.logs()
    lines = [json.loads(l) for l in env.ext_log_text().splitlines() if l.startswith("{")]
    mine = [x for x in lines if x.get("faas.invocation_id") in rids]
    assert len(mine) == 4, env.logs()
    for x in mine:
        assert not x.get("request_headers") and not x.get("response_headers"), x
        assert not x.get("query") and "?" not in (x.get("url") or ""), x
        for side in ("request_body", "response_body"):
            assert not (x.get(side) or {}).get("text") and not (x.get(side) or {}).get("base64"), x
    assert PLANTED not in env.ext_log_text()


@pytest.mark.parametrize("setting,value,exported", [
    ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "ftp://127.0.0.1:9/v1/traces", False),
    ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent/ca.pem", False),
    ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", True),
])
def test_a_bad_otlp_setting_never_fails_the_function(lam, setting, value, exported):
    """Fail closed for the data: an endpoint that is not http(s), a CA file that cannot
    be read (with an https endpoint) — nothing exported, nor written to stdout instead;
    an unknown protocol — the default, said so. Logged once; every invocation runs."""
    ext_env = {setting: value}
    if setting == "OTEL_EXPORTER_OTLP_CERTIFICATE":
        ext_env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = "https://127.0.0.1:9/v1/traces"
    env = lam(ext_env=ext_env)
    rids = []
    for n in range(2):
        rid, resp, _ = env.invoke({"n": n})
        ok(env, resp, n)
        rids.append(rid)
    finish(env)
    assert len(config_errors(env)) == 1, env.logs()
    if exported:
        delivered(env, {rid: two_calls(n) for n, rid in enumerate(rids)})
        assert "default protocol" in config_errors(env)[0]
    else:
        assert env.spans() == [], env.logs()
        log = env.ext_log_text()
        assert not [l for l in log.splitlines() if l.startswith("{")], log
        assert "span(s) withheld" in log, log


# --- the Runtime API connection, marked by the library -------------------------------------

def test_runtime_api_behind_a_proxy_is_recognised_by_the_library_mark(lam):
    """A proxy between runtime and Runtime API (as local emulators use): the runtime's
    AWS_LAMBDA_RUNTIME_API is not the extension's. Windows still open and close, calls
    are parented to their invocation, the runtime's own calls are not user spans."""
    env = lam(runtime_proxy=True)
    assert env.forwarder is not None
    rids = []
    for n in range(3):
        rid, resp, _ = env.invoke({"n": n})
        ok(env, resp, n)
        rids.append(rid)
    finish(env)
    got = delivered(env, {rid: two_calls(n) for n, rid in enumerate(rids)})
    for rid, (inv, children) in got.items():
        assert inv["status"].get("code", 0) != 2, inv
        assert all(c["attributes"]["tapline.lambda.phase"] == "invocation" for c in children)


# --- freeze and thaw -----------------------------------------------------------------------

def test_freeze_and_thaw_between_invocations(lam):
    """SIGSTOP of runtime and extension after every invocation (FREEZE_GAP seconds),
    SIGCONT before the next; then a freeze while an export is in flight (held by the
    gate, released while frozen): it resumes or goes to the outbox, never lost or sent
    twice."""
    gate = Gate()
    try:
        env = lam(gate=gate, freeze_gap=FREEZE_GAP)
        calls = {}
        for n in range(3):
            rid, resp, _ = env.invoke({"n": n})
            ok(env, resp, n)
            calls[rid] = two_calls(n)
        # The freeze comes while the export is on the wire.
        env.freeze_gap = None
        gate.armed.set()
        env.thaw()
        env.send("invoke " + json.dumps({"n": 3}))
        rid = env.expect("enqueued")[1]
        assert gate.arrived.wait(timeout=60), env.logs()
        resp = env.expect("response")
        ok(env, resp, 3)
        env.freeze()
        gate.release.set()  # the collector answers while the sandbox is frozen
        time.sleep(FREEZE_GAP)
        env.thaw()
        env.expect("ready")
        calls[rid] = two_calls(3)
        rid, resp, _ = env.invoke({"n": 4})
        ok(env, resp, 4)
        calls[rid] = two_calls(4)
        finish(env)
        delivered(env, calls)
    finally:
        gate.close()


# --- collector trouble ---------------------------------------------------------------------

def outbox_files(env):
    d = os.path.join(env.spool, "outbox")
    return [f for f in os.listdir(d) if f.endswith((".json", ".pb", ".bin"))] \
        if os.path.isdir(d) else []


@pytest.mark.parametrize("mode", ["stall", 429, 503, "down"])
def test_collector_trouble(lam, mode):
    """A collector that stalls (STALL s, then hangs up), answers 429/503 (for TROUBLE s),
    or is down: every response as usual and before tapline's work for it ends (the
    caller never waits on the collector); Next before a stalled collector has even
    answered (the export budget, not the collector, ends the work); the outbox stays
    bounded and is drained once the collector is back; every span arrives once."""
    hop = Trouble(stall_s=STALL)
    try:
        # Every batch sent after its response (not held for the next invocation, which
        # invocations a few times a second would choose): the export this test troubles
        # is the one before Next. tests/test_lambda_flush.py covers held batches.
        env = lam(gate=hop, ext_env={"OTEL_EXPORTER_OTLP_TIMEOUT": "300",
                                     "TAPLINE_OTLP_MAX_ELAPSED_MS": "800",
                                     "TAPLINE_FLUSH_HOLD_MS": "0"})
        calls = {}
        rid, resp, _ = env.invoke({"n": 0})
        ok(env, resp, 0)
        calls[rid] = two_calls(0)
        hop.set(mode)
        n, most = 1, 0
        until = time.monotonic() + (TROUBLE if isinstance(mode, int) else 0)
        while n < 3 or time.monotonic() < until:
            rid, resp, ready = env.invoke({"n": n})
            ok(env, resp, n)
            if mode == "stall":
                # The extension called Next while the collector still sat on a request.
                assert hop.stalling > 0, (hop.seen, env.logs())
            most = max(most, len(outbox_files(env)))
            calls[rid] = two_calls(n)
            n += 1
            time.sleep(0.2)  # invocations a few times a second, not back to back
        assert hop.seen.get(mode, 0) > 0 or mode == "down", hop.seen
        assert most >= 1, ("nothing was kept while the collector was in trouble", env.logs())
        assert most <= n, most  # one batch per invocation at most
        hop.set("ok")
        # Back: each invocation's export sends kept batches first, within its budget,
        # until the outbox is empty.
        for _ in range(n):
            rid, resp, _ = env.invoke({"n": n})
            ok(env, resp, n)
            calls[rid] = two_calls(n)
            n += 1
            if not outbox_files(env):
                break
        assert outbox_files(env) == [], (outbox_files(env), env.logs())
        finish(env)
        delivered(env, calls)
    finally:
        hop.close()


# --- function failures ---------------------------------------------------------------------

def server_span(env, rid):
    inv = [s for s in env.spans() if s["kind"] == 2
           and s["attributes"].get("faas.invocation_id") == rid]
    assert len(inv) == 1, (rid, env.logs())
    children = [s for s in env.spans() if s.get("parent_span_id") == inv[0]["span_id"]]
    return inv[0], sorted(children, key=lambda c: c["attributes"].get("url.full", ""))


def wait_given_up(env, rid):
    """The extension gives an invocation with no outcome up at its deadline (nothing
    tells it more); SHUTDOWN then finds it waiting on Next, as Lambda expects."""
    gave_up = f"{rid}: no response seen before the deadline"
    for _ in range(600):
        if gave_up in env.ext_log_text():
            return
        time.sleep(0.1)
    raise AssertionError(env.logs())


@pytest.mark.parametrize("how", ["timeout", "sigkill"])
def test_function_dies_inside_an_http_call(lam, how):
    """The function times out (Lambda stops the runtime) or is SIGKILLed while an HTTP
    call is in flight: the invocation is reported as failed, with its two finished
    calls and the one in flight (no response)."""
    harness.HANG_SEEN.clear()
    env = lam(timeout_ms=2500)
    rid0, resp, _ = env.invoke({"n": 0})
    ok(env, resp, 0)
    env.send("invoke " + json.dumps({"n": 1, "hang": True}))
    rid = env.expect("enqueued")[1]
    assert harness.HANG_SEEN.wait(timeout=60), env.logs()
    if how == "sigkill":
        # Mid-request: the server holds the request. (The library records the request
        # right after its send returned; a kill in between would lose it: give the
        # runtime's thread a moment to get there.)
        time.sleep(0.5)
        env.runtime.send_signal(signal.SIGKILL)
        env.runtime.wait(timeout=30)
    wait_given_up(env, rid)
    if how == "timeout":
        # Lambda stops the runtime of an invocation that timed out.
        env.runtime.send_signal(signal.SIGKILL)
        env.runtime.wait(timeout=30)
    env.shutdown("timeout" if how == "timeout" else "failure")
    assert env.extension.wait(timeout=30) == 0, env.logs()
    delivered(env, {rid0: two_calls(0), rid: two_calls(1) + [f"/hang?n=1"]})
    inv, children = server_span(env, rid)
    assert inv["status"]["code"] == 2, inv
    assert "no response" in inv["status"].get("message", ""), inv
    hang = [c for c in children if "/hang" in c["attributes"]["url.full"]]
    assert hang[0]["status"]["code"] == 2, hang
    assert "http.response.status_code" not in hang[0]["attributes"], hang


def test_handler_exception_reported_with_its_calls(lam):
    env = lam()
    rid, resp, _ = env.invoke({"n": 0, "raise": True})
    assert resp[2] == "error" and "ValueError" in resp[4], resp
    rid1, resp1, _ = env.invoke({"n": 1})
    ok(env, resp1, 1)
    finish(env)
    delivered(env, {rid: two_calls(0), rid1: two_calls(1)})
    inv, _ = server_span(env, rid)
    assert inv["status"]["code"] == 2 and "returned an error" in inv["status"]["message"], inv


def test_init_error_reported_with_its_calls(lam):
    """The handler module fails at import, after an HTTP call: the runtime reports
    init/error; the function fails as it does without tapline, and the call made
    during init is reported (phase "init")."""
    runs = []
    for layer in (False, True):
        env = lam(layer=layer, rt_env={"E2E_INIT_FAIL": "1"})
        env.send("invoke " + json.dumps({"n": 0}))
        rid = env.expect("enqueued")[1]
        # The runtime reports init/error and exits (the emulator then has no one to
        # answer the invocation; Lambda would fail it with Runtime.InitError).
        code = env.runtime.wait(timeout=60)
        with open(env.runtime_log.name) as f:
            tail = [l for l in f.read().splitlines() if "init fails on purpose" in l]
        runs.append((code, bool(tail)))
    assert runs[0] == runs[1], runs  # the function fails exactly as without tapline
    wait_given_up(env, rid)
    env.shutdown("failure")
    assert env.extension.wait(timeout=30) == 0, env.logs()
    spans = env.spans()
    init = [s for s in spans if "/init-call" in s["attributes"].get("url.full", "")]
    assert len(init) == 1, (spans, env.logs())
    assert init[0]["attributes"]["tapline.lambda.phase"] == "init", init


# --- volume --------------------------------------------------------------------------------

def test_volume_budgets_hold(lam):
    """1,000 calls in one invocation, a 6 MB event, 1 MiB response bodies: every call
    reported, bodies within TAPLINE_MAX_BODY, each export within TAPLINE_MAX_BATCH;
    prints the extension's peak RSS."""
    # Deadline and collector are not the subject here: generous limits.
    env = lam(timeout_ms=60000, ext_env={"OTEL_EXPORTER_OTLP_TIMEOUT": "30000",
                                         "TAPLINE_OTLP_MAX_ELAPSED_MS": "60000"})
    rid_many, resp, _ = env.invoke({"n": 0, "calls": 1000})
    ok(env, resp, 0, many_ok=1000)
    pad = "e" * (6 * 1000 * 1000 - 100)
    rid_event, resp, _ = env.invoke({"n": 1, "pad": pad})
    ok(env, resp, 1, pad=len(pad))
    rid_big, resp, _ = env.invoke({"n": 2, "big": 3})
    ok(env, resp, 2, big=[1 << 20] * 3)
    rss = env.extension_peak_rss_kb()
    finish(env)
    print(f"\nextension peak RSS: {rss / 1024:.1f} MiB")
    got = delivered(env, {
        rid_many: two_calls(0) + [f"/many?n=0&i={i}" for i in range(1000)],
        rid_event: two_calls(1),
        rid_big: two_calls(2) + ["/big?size="] * 3,
    })
    _, big = got[rid_big]
    sizes = [c["attributes"].get("http.response.body.size") for c in big
             if "/big" in c["attributes"]["url.full"]]
    assert sizes == [1 << 20] * 3, sizes
    assert all(c["attributes"].get("tapline.truncated") for c in big
               if "/big" in c["attributes"]["url.full"])
    raw = [json.loads(l) for l in open(env.otlp_out)]
    # The receiver's record of each request: no export above the batch budget.
    assert all(r.get("bytes", 0) <= 4 << 20 for r in raw), [r.get("bytes") for r in raw]
    assert rss < 128 * 1024, rss


# --- the Telemetry API path ----------------------------------------------------------------

def test_untraced_runtime_windows_closed_by_runtime_done(lam):
    """The runtime is started without wrapper.sh (its Runtime API calls are invisible),
    while a process it starts is preloaded: each invocation still ends at
    `platform.runtimeDone`, long before its deadline, and the child's call is reported
    with it."""
    env = lam(preload_runtime=False, timeout_ms=60000)
    rids = []
    for n in range(3):
        rid, resp, _ = env.invoke({"n": n, "child": True})
        ok(env, resp, n, child=0)
        rids.append(rid)
    finish(env)
    log = env.ext_log_text()
    assert "before the deadline" not in log, log
    spans = env.spans()
    for n, rid in enumerate(rids):
        assert f"invocation {rid}: " in log, log
        child = [s for s in spans if f"/child?n={n}" in s["attributes"].get("url.full", "")]
        assert len(child) == 1, (n, spans, log)
        assert child[0]["attributes"].get("faas.invocation_id") == rid, (child, log)


# --- what the library writes on the Runtime API connection ---------------------------------

RUNTIME_CLIENT = r'''
import http.client, os, sys
api = os.environ["AWS_LAMBDA_RUNTIME_API"]
host, port = api.rsplit(":", 1)
rt = http.client.HTTPConnection(host, int(port), timeout=10)
def call(method, path, body=None):
    rt.request(method, "/2018-06-01/runtime/" + path, body=body)
    r = rt.getresponse()
    r.read()
    return r
for rid, outcome in (("aaa-111", "response"), ("bbb-222", "error")):
    r = call("GET", "invocation/next")
    assert r.getheader("Lambda-Runtime-Aws-Request-Id") == rid
    # a user call, to the same host on another port: not the Runtime API
    u = http.client.HTTPConnection(host, int(sys.argv[1]), timeout=10)
    u.request("GET", "/2018-06-01/runtime/invocation/next")
    u.getresponse().read()
    u.close()
    call("POST", f"invocation/{rid}/{outcome}", body=b"{}")
'''


def test_library_marks_the_runtime_api_connection_and_writes_lifecycle_records(
        tapline_bin, tapline_lib, tmp_path):
    """The fast path of every invocation: the library, from the runtime's own
    AWS_LAMBDA_RUNTIME_API, marks that connection (ConnOpen flag 1) and writes a
    Lifecycle record with the right event and request id when a response or error post
    ends. (Windows also close from the POST exchange, so without this test a library
    that wrote no Lifecycle record, or the wrong event, failed nothing.)"""
    import http.server
    import threading

    from conftest import clean_env, spool_records

    ids = iter(["aaa-111", "bbb-222"])

    class Api(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            self.send_response(200)
            if self.server.is_api:
                self.send_header("Lambda-Runtime-Aws-Request-Id", next(ids))
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a):
            pass

    servers = []
    for is_api in (True, False):
        s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Api)
        s.is_api = is_api
        threading.Thread(target=s.serve_forever, daemon=True).start()
        servers.append(s)
    api, other = (s.server_address[1] for s in servers)
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o700)
    script = tmp_path / "runtime.py"
    script.write_text(RUNTIME_CLIENT)
    try:
        p = subprocess.run(
            [sys.executable, str(script), str(other)], capture_output=True, text=True,
            timeout=60, env=clean_env({"LD_PRELOAD": tapline_lib,
                                       "TAPLINE_SPOOL_DIR": str(spool),
                                       "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{api}"}))
    finally:
        for s in servers:
            s.shutdown()
    assert p.returncode == 0, p.stderr
    marks = [(r["event"], r["request_id"]) for r in spool_records(tapline_bin, spool, "lifecycle")]
    assert marks == [("invocation_response", "aaa-111"), ("invocation_error", "bbb-222")], marks
    opens = spool_records(tapline_bin, spool, "conn_open")
    # Bit 1 is TL_CONN_RUNTIME_API (bit 2, CONNECT_STARTED, says how connect was called).
    flags = sorted((o["peer"]["port"], o["flags"] & 1) for o in opens)
    assert [f for port, f in flags if port == api] == [1], flags
    assert [f for port, f in flags if port == other] == [0, 0], flags
