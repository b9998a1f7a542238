"""End to end: tapline as a Lambda extension, AWS's Python runtime client through
wrapper.sh, in the lambda-simulator emulator (tests/lambda_sim), spans checked by the
loopback OTLP receiver (tests/servers/otlp_receiver.py).

Everything runs as Lambda runs it: the extension from an `opt/extensions/` folder with no
arguments, the runtime as `wrapper.sh python -m awslambdaric handler.handle` under dash.
The handler calls a plain HTTP server and an HTTPS server (test CA) on 127.0.0.1, one
request carrying planted secrets. Assertions are on events and their order, never on
durations.

Needs: cargo, dash, pip packages awslambdaric, opentelemetry-proto, protobuf,
cryptography.
"""

import datetime
import http.server
import json
import os
import queue
import re
import shutil
import ssl
import subprocess
import sys
import threading
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLANTED = "PLANTED-LAMBDA-SECRET-7f3a"

pytest.importorskip("awslambdaric")
pytest.importorskip("opentelemetry.proto")
if not shutil.which("dash"):
    pytest.skip("dash is not installed", allow_module_level=True)

HANDLER = r'''
import json, os, sys, time, urllib.request

def call(url, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, r.read().decode()

def handle(event, context):
    n = event.get("n", 0)
    mode = event.get("mode", "ok")
    http_status, _ = call(f"http://127.0.0.1:{os.environ['E2E_HTTP_PORT']}/plain?n={n}")
    https_status, _ = call(
        f"https://localhost:{os.environ['E2E_HTTPS_PORT']}/secret?n={n}&api_key=PLANTED_KEY",
        {"Authorization": "Bearer PLANTED_TOKEN"},
    )
    if mode == "timeout":
        time.sleep(60)
    if mode == "crash":
        sys.stdout.flush()
        os._exit(3)
    return {"n": n, "statuses": [http_status, https_status],
            "trace": os.environ.get("_X_AMZN_TRACE_ID", "")}
'''.replace("PLANTED_KEY", PLANTED + "-query").replace("PLANTED_TOKEN", PLANTED + "-bearer")


@pytest.fixture(scope="module")
def build():
    subprocess.run(
        ["cargo", "build", "-p", "libtapline", "-p", "tapline", "-p", "tapline-lambda-sim"],
        cwd=ROOT, check=True,
    )
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    return os.path.join(target, "debug")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = json.dumps({"path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def make_ca(tmp):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tapline e2e CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = {n: os.path.join(tmp, n) for n in ("ca.pem", "cert.pem", "key.pem")}
    with open(paths["ca.pem"], "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))
    with open(paths["cert.pem"], "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(paths["key.pem"], "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return paths


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp("servers"))
    pki = make_ca(tmp)
    plain = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    tls = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki["cert.pem"], pki["key.pem"])
    tls.socket = ctx.wrap_socket(tls.socket, server_side=True)
    for s in (plain, tls):
        threading.Thread(target=s.serve_forever, daemon=True).start()
    yield {"http": plain.server_address[1], "https": tls.server_address[1], "ca": pki["ca.pem"]}
    plain.shutdown()
    tls.shutdown()


class Lambda:
    """One emulated execution environment: simulator, extension, runtime, receiver."""

    def __init__(self, build, servers, tmp, layer=True, spool=None, timeout_ms=3000,
                 with_extension=True, gate=None, ext_env=None):
        self.tmp = tmp
        self.events = queue.Queue()
        self.lines = []
        self.otlp_out = os.path.join(tmp, "otlp.jsonl")
        port_file = os.path.join(tmp, "otlp.port")
        self.receiver = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "tests/servers/otlp_receiver.py"),
             "--out", self.otlp_out, "--port-file", port_file, "--timeout", "120"])
        while not (os.path.exists(port_file) and open(port_file).read().strip()):
            time.sleep(0.02)
        otlp_port = open(port_file).read().strip()
        if gate:
            # The extension exports through the gate, which can hold an export.
            gate.upstream = int(otlp_port)
            otlp_port = str(gate.port)

        self.sim = subprocess.Popen(
            [os.path.join(build, "tapline-lambda-sim"), "--timeout-ms", str(timeout_ms)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        threading.Thread(target=self._read_sim, daemon=True).start()
        self.api = self.expect("api")[1]

        # The layer, unpacked as Lambda unpacks it under /opt.
        opt = os.path.join(tmp, "opt")
        os.makedirs(os.path.join(opt, "extensions"))
        os.makedirs(os.path.join(opt, "tapline"))
        shutil.copy(os.path.join(build, "tapline"), os.path.join(opt, "extensions", "tapline"))
        shutil.copy(os.path.join(build, "libtapline.so"), os.path.join(opt, "tapline"))
        shutil.copy(os.path.join(ROOT, "wrapper.sh"), os.path.join(opt, "tapline"))
        self.spool = spool or os.path.join(tmp, "spool")
        env = dict(os.environ)
        for k in list(env):
            if k.startswith(("OTEL_", "TAPLINE_", "LD_PRELOAD")):
                del env[k]
        env.update({
            "AWS_LAMBDA_RUNTIME_API": self.api,
            "TAPLINE_SPOOL_DIR": self.spool,
            "AWS_LAMBDA_FUNCTION_NAME": "tapline-e2e",
            "AWS_REGION": "us-east-1",
        })
        self.ext_log = open(os.path.join(tmp, "extension.log"), "w+")
        self.extension = None
        if layer and with_extension:
            ext_env = dict(env, OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{otlp_port}",
                           **(ext_env or {}))
            self.extension = subprocess.Popen(
                [os.path.join(opt, "extensions", "tapline")],
                env=ext_env, stdout=self.ext_log, stderr=subprocess.STDOUT)
            self.send("wait-extensions 1")
            self.expect("extensions")

        task = os.path.join(tmp, "task")
        os.makedirs(task)
        with open(os.path.join(task, "handler.py"), "w") as f:
            f.write(HANDLER)
        rt_env = dict(env, PYTHONPATH=task, E2E_HTTP_PORT=str(servers["http"]),
                      E2E_HTTPS_PORT=str(servers["https"]), SSL_CERT_FILE=servers["ca"])
        cmd = [sys.executable, "-m", "awslambdaric", "handler.handle"]
        if layer:
            # AWS_LAMBDA_EXEC_WRAPPER: Lambda runs the script with the runtime's command line.
            cmd = ["dash", os.path.join(opt, "tapline", "wrapper.sh")] + cmd
        self.runtime_log = open(os.path.join(tmp, "runtime.log"), "w+")
        self.runtime = subprocess.Popen(cmd, cwd=task, env=rt_env, stdout=self.runtime_log,
                                        stderr=subprocess.STDOUT)

    def _read_sim(self):
        for line in self.sim.stdout:
            self.lines.append(line.rstrip("\n"))
            self.events.put(line.rstrip("\n").split(" ", 4))

    def send(self, cmd):
        self.sim.stdin.write(cmd + "\n")
        self.sim.stdin.flush()

    def expect(self, kind, timeout=60):
        deadline = time.monotonic() + timeout
        held = []
        try:
            while True:
                ev = self.events.get(timeout=max(0.01, deadline - time.monotonic()))
                if ev[0] == kind:
                    return ev
                assert ev[0] != "error", ev
                held.append(ev)
        except queue.Empty:
            raise AssertionError(f"no {kind!r} from the simulator; saw {self.lines}\n{self.logs()}")
        finally:
            for ev in held:
                self.events.put(ev)

    def invoke(self, payload, wait_ready=True):
        self.send("invoke " + json.dumps(payload))
        rid = self.expect("enqueued")[1]
        resp = self.expect("response")
        assert resp[1] == rid
        ready = self.expect("ready") if wait_ready else None
        return rid, resp, ready

    def shutdown(self, reason="spindown"):
        self.send(f"shutdown {reason}")
        return self.expect("shutdown", timeout=30)

    def spans(self):
        out = []
        if os.path.exists(self.otlp_out):
            for line in open(self.otlp_out):
                rec = json.loads(line)
                assert not rec.get("error"), rec
                out.extend(rec.get("spans", []))
        return out

    def ext_log_text(self):
        self.ext_log.flush()
        with open(self.ext_log.name) as f:
            return f.read()

    def logs(self):
        parts = []
        for f in (self.ext_log, self.runtime_log):
            f.flush()
            f.seek(0)
            parts.append(f.read())
        return "\n--- extension ---\n" + parts[0] + "\n--- runtime ---\n" + parts[1]

    def close(self):
        for p in (self.runtime, self.extension, self.sim, self.receiver):
            if p and p.poll() is None:
                p.kill()
                p.wait()


class Gate:
    """An OTLP hop between the extension and the receiver that, once armed, holds the
    next export until the test releases it: tapline's processing of that invocation
    cannot finish (the extension exports synchronously, then calls Next) while it is
    held, for as long as the test likes. No clock is involved."""

    def __init__(self):
        self.upstream = None
        self.armed = threading.Event()
        self.arrived = threading.Event()
        self.release = threading.Event()
        gate = self

        class Hop(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if gate.armed.is_set() and not gate.arrived.is_set():
                    gate.arrived.set()
                    # Bounded only so that a broken test cannot hang forever.
                    gate.release.wait(timeout=120)
                import http.client
                c = http.client.HTTPConnection("127.0.0.1", gate.upstream, timeout=30)
                c.request("POST", self.path, body=body,
                          headers={"Content-Type": self.headers.get("Content-Type", "")})
                r = c.getresponse()
                data = r.read()
                self.send_response(r.status)
                self.send_header("Content-Type", r.getheader("Content-Type", "text/plain"))
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                c.close()

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hop)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.release.set()
        self.server.shutdown()


def xray_trace_id(header):
    root = dict(p.split("=", 1) for p in header.split(";") if "=" in p)["Root"]
    _, epoch, rand = root.split("-")
    return epoch + rand


@pytest.fixture
def lam(build, servers, tmp_path):
    made = []

    def make(**kw):
        d = os.path.join(str(tmp_path), f"env{len(made)}")
        os.makedirs(d)
        env = Lambda(build, servers, d, **kw)
        made.append(env)
        return env

    yield make
    for env in made:
        env.close()


def test_invocations_traced_under_their_request_ids(lam):
    env = lam()
    results = []
    for n in range(3):
        rid, resp, ready = env.invoke({"n": n})
        assert resp[2] == "success", env.logs()
        results.append((rid, json.loads(resp[4]), int(resp[3]), int(ready[2])))
    env.shutdown()
    assert env.extension.wait(timeout=10) == 0, env.logs()

    spans = env.spans()
    log = env.logs()
    for n, (rid, body, response_ns, ready_ns) in enumerate(results):
        assert body["statuses"] == [200, 200]
        trace_id = xray_trace_id(body["trace"])
        servers_ = [s for s in spans if s["kind"] == 2
                    and s["attributes"].get("faas.invocation_id") == rid]
        assert len(servers_) == 1, (rid, spans, log)
        inv = servers_[0]
        assert inv["trace_id"] == trace_id
        assert inv["name"] == "tapline-e2e"
        assert inv["attributes"]["faas.coldstart"] is (n == 0)
        assert inv["attributes"]["cloud.platform"] == "aws_lambda"
        children = [s for s in spans if s.get("parent_span_id") == inv["span_id"]]
        urls = sorted(c["attributes"].get("url.full", "") for c in children)
        assert len(children) == 2, (children, log)
        assert all(c["trace_id"] == trace_id for c in children)
        assert urls[0].startswith("http://127.0.0.1:") and f"/plain?n={n}" in urls[0]
        assert urls[1].startswith("https://localhost:") and f"/secret?n={n}" in urls[1]
        # The Runtime API's own exchanges are lifecycle, not user calls.
        assert not any("/2018-06-01/runtime/" in s["attributes"].get("url.full", "") for s in spans)
        # Ordering: tapline's work began only once the runtime had started posting the
        # response (the invocation span ends there), i.e. in the post-runtime phase, and
        # was over before the extension called Next (the end of the invocation), which
        # came after the caller had its response.
        line = [l for l in log.splitlines() if f"invocation {rid}:" in l]
        assert line, log
        work = line[0].rsplit("work ", 1)[1]
        start, end = (int(x) for x in work.split(".."))
        posted = int(inv["end_unix_ns"])
        assert posted <= start <= end <= ready_ns, (posted, start, end, ready_ns)
        assert response_ns <= ready_ns
    # No planted secret reached the receiver.
    assert PLANTED not in open(env.otlp_out).read()


@pytest.mark.parametrize("mode,reason", [("timeout", "timeout"), ("crash", "failure")])
def test_calls_of_a_dead_invocation_reported_at_shutdown(lam, mode, reason):
    env = lam(timeout_ms=1500)
    rid, resp, _ = env.invoke({"n": 0})
    assert resp[2] == "success"
    env.send("invoke " + json.dumps({"n": 1, "mode": mode}))
    bad = env.expect("enqueued")[1]
    if mode == "crash":
        env.runtime.wait(timeout=30)
    else:
        # Lambda stops the runtime at the deadline; the extension gets SHUTDOWN.
        time.sleep(1.6)
        env.runtime.kill()
    env.shutdown(reason)
    code = env.extension.wait(timeout=10)
    assert code == 0, env.logs()
    # Done before the SHUTDOWN event's deadline (the extension's own clock reading at
    # the end of its flush, against the deadline it was given).
    done = [l for l in env.logs().splitlines() if "shutdown (" in l and "deadline" in l]
    assert done, env.logs()
    at, deadline = (int(x) for x in re.findall(r"(\d+) ms", done[0]))
    assert at <= deadline, done[0]
    spans = env.spans()
    inv = [s for s in spans if s["kind"] == 2 and s["attributes"].get("faas.invocation_id") == bad]
    assert len(inv) == 1, (spans, env.logs())
    children = [s for s in spans if s.get("parent_span_id") == inv[0]["span_id"]]
    assert len(children) == 2, (children, env.logs())
    assert PLANTED not in open(env.otlp_out).read()


def responses(env, n=2):
    out = []
    for i in range(n):
        _, resp, _ = env.invoke({"n": i}, wait_ready=False)
        body = json.loads(resp[4])
        body.pop("trace", None)
        out.append((resp[2], body))
    return out


def test_function_unaffected_by_a_broken_layer(lam, tmp_path):
    baseline = responses(lam(layer=False))
    # The extension crashes (here: killed) after the first invocation.
    env = lam()
    assert responses(env, 1) == baseline[:1]
    env.extension.kill()
    env.extension.wait()
    assert responses(env) == baseline, env.logs()
    # A spool directory that cannot be created (a file is in the way).
    blocker = os.path.join(str(tmp_path), "not-a-dir")
    open(blocker, "w").close()
    broken = lam(spool=os.path.join(blocker, "spool"))
    assert responses(broken) == baseline, broken.logs()
    # The extension absent (wrapper.sh and the library still preload, no spool dir).
    absent = lam(with_extension=False)
    assert responses(absent) == baseline, absent.logs()


def test_response_reaches_the_caller_while_tapline_is_still_working(lam):
    """Item 2 of the Lambda issue, proved by construction rather than by timing: the
    export of one invocation is held (the gate), so tapline's processing of it cannot
    be done; the caller must still get its response, and the extension must not call
    Next (end the invocation) until that processing is done."""
    gate = Gate()
    try:
        # Per-attempt and overall export limits well beyond the test's life: the gate,
        # not a timeout, decides when the export ends.
        env = lam(gate=gate, ext_env={"OTEL_EXPORTER_OTLP_TIMEOUT": "120000",
                                      "TAPLINE_OTLP_MAX_ELAPSED_MS": "120000"})
        rid0, resp0, _ = env.invoke({"n": 0})  # the cold start, not held
        assert resp0[2] == "success", env.logs()

        gate.armed.set()
        env.send("invoke " + json.dumps({"n": 1}))
        rid = env.expect("enqueued")[1]
        # tapline is working on this invocation: its export reached the gate and waits.
        assert gate.arrived.wait(timeout=60), env.logs()
        # ... and the caller gets the response all the same.
        resp = env.expect("response")
        assert resp[1] == rid and resp[2] == "success", (resp, env.logs())
        assert json.loads(resp[4])["statuses"] == [200, 200]
        # The invocation is not over: the extension has not called Next, because its
        # work for the invocation (the export) is not finished.
        held = [l for l in env.lines if l.startswith(f"ready {rid} ")]
        assert not held, (env.lines, env.logs())
        assert not [l for l in env.ext_log_text().splitlines() if f"invocation {rid}:" in l]
        # Let the export finish: the extension then calls Next, with nothing else
        # (no further invocation, no deadline) needed to make it do so.
        gate.release.set()
        ready = env.expect("ready")
        assert ready[1] == rid
        # The simulator's event log: response, then the end of the invocation.
        order = [l.split(" ", 2)[0] for l in env.lines if f" {rid} " in l or l.endswith(f" {rid}")]
        assert order.index("response") < order.index("ready"), env.lines
        # The extension's own account: work ended after the caller had its response
        # and before Next (all three are readings of the same wall clock).
        line = [l for l in env.ext_log_text().splitlines() if f"invocation {rid}:" in l]
        assert line, env.logs()
        start, end = (int(x) for x in line[0].rsplit("work ", 1)[1].split(".."))
        assert int(resp[3]) <= end <= int(ready[2]), (resp[3], start, end, ready[2])

        env.shutdown()
        assert env.extension.wait(timeout=10) == 0, env.logs()
        spans = env.spans()
        inv = [s for s in spans if s["kind"] == 2
               and s["attributes"].get("faas.invocation_id") == rid]
        assert len(inv) == 1, (spans, env.logs())
        children = [s for s in spans if s.get("parent_span_id") == inv[0]["span_id"]]
        assert len(children) == 2, (children, env.logs())
    finally:
        gate.close()
