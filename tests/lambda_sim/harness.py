"""An emulated Lambda execution environment for tapline, shared by the end-to-end test
(`tests/test_lambda_e2e.py`), the demo (`scripts/demo-lambda`) and the benchmark
(`bench/lambda_roundtrip`).

Everything runs as Lambda runs it: the `tapline-lambda-sim` host (lambda-simulator behind
a line protocol, with the Content-Type-fixing proxy in front of the runtime endpoint),
the extension started from an `opt/extensions/` folder with no arguments, and the
runtime — AWS's Python runtime client, `awslambdaric` — as
`dash opt/tapline/wrapper.sh python -m awslambdaric handler.handle` (what
`AWS_LAMBDA_EXEC_WRAPPER` does). The function's handler calls a plain HTTP server and an
HTTPS server (a throw-away CA) on 127.0.0.1, one request carrying planted secrets.

Needs: dash, and the Python packages awslambdaric and cryptography (opentelemetry-proto
and protobuf for the OTLP receiver). `scripts/setup` installs them.
"""

import datetime
import http.server
import json
import os
import queue
import shutil
import ssl
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLANTED = "PLANTED-LAMBDA-SECRET-7f3a"

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


class Servers:
    """The function's backends: plain HTTP and HTTPS on 127.0.0.1, in this process
    (never traced: only the runtime is preloaded)."""

    def __init__(self, tmp):
        pki = make_ca(tmp)
        self.plain = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.tls = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(pki["cert.pem"], pki["key.pem"])
        self.tls.socket = ctx.wrap_socket(self.tls.socket, server_side=True)
        for s in (self.plain, self.tls):
            threading.Thread(target=s.serve_forever, daemon=True).start()
        self.info = {"http": self.plain.server_address[1], "https": self.tls.server_address[1],
                     "ca": pki["ca.pem"]}

    def __getitem__(self, k):
        return self.info[k]

    def close(self):
        self.plain.shutdown()
        self.tls.shutdown()


class Lambda:
    """One emulated execution environment: simulator, extension, runtime, receiver.

    `build`: the directory holding `tapline`, `libtapline.so` and `tapline-lambda-sim`
    (`sim` and `layer_dir` override where the simulator and the layer's two binaries
    come from). `otlp=False` runs no receiver and sets no endpoint: the extension then
    writes one JSON line per exchange to its stdout (`extension.log`). `runner` is put
    before the extension's and the runtime's command (an emulator: `qemu-aarch64-static
    -L SYSROOT` for an arm64 layer, tests/arm64/); `runtime` replaces the runtime's
    interpreter (`[python]`, then `-m awslambdaric handler.handle`), `pythonpath` is
    added after the handler's folder (where that interpreter finds awslambdaric)."""

    def __init__(self, build, servers, tmp, layer=True, spool=None, timeout_ms=3000,
                 with_extension=True, gate=None, ext_env=None, otlp=True, sim=None,
                 layer_dir=None, handler=HANDLER, rt_env=None, runner=(), runtime=None,
                 pythonpath=()):
        self.tmp = tmp
        self.events = queue.Queue()
        self.lines = []
        self.receiver = None
        self.otlp_out = os.path.join(tmp, "otlp.jsonl")
        otlp_port = None
        if otlp:
            port_file = os.path.join(tmp, "otlp.port")
            self.receiver = subprocess.Popen(
                [sys.executable, os.path.join(ROOT, "tests/servers/otlp_receiver.py"),
                 "--out", self.otlp_out, "--port-file", port_file, "--timeout", "600"])
            while not (os.path.exists(port_file) and open(port_file).read().strip()):
                time.sleep(0.02)
            otlp_port = open(port_file).read().strip()
            if gate:
                # The extension exports through the gate, which can hold an export.
                gate.upstream = int(otlp_port)
                otlp_port = str(gate.port)

        self.sim = subprocess.Popen(
            [sim or os.path.join(build, "tapline-lambda-sim"), "--timeout-ms", str(timeout_ms)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        threading.Thread(target=self._read_sim, daemon=True).start()
        self.api = self.expect("api")[1]

        # The layer, unpacked as Lambda unpacks it under /opt.
        layer_dir = layer_dir or build
        opt = os.path.join(tmp, "opt")
        self.opt = opt
        os.makedirs(os.path.join(opt, "extensions"))
        os.makedirs(os.path.join(opt, "tapline"))
        shutil.copy(os.path.join(layer_dir, "tapline"), os.path.join(opt, "extensions", "tapline"))
        shutil.copy(os.path.join(layer_dir, "libtapline.so"), os.path.join(opt, "tapline"))
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
        self.extension_spawned_ns = None
        self.extension_registered_ns = None
        if layer and with_extension:
            ext_env = dict(env, **(ext_env or {}))
            if otlp_port:
                ext_env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{otlp_port}"
            self.extension_spawned_ns = time.time_ns()
            self.extension = subprocess.Popen(
                [*runner, os.path.join(opt, "extensions", "tapline")],
                env=ext_env, stdout=self.ext_log, stderr=subprocess.STDOUT)
            self.send("wait-extensions 1")
            self.expect("extensions")
            # Seen by the simulator, which looks every 10 ms.
            self.extension_registered_ns = time.time_ns()

        task = os.path.join(tmp, "task")
        os.makedirs(task)
        with open(os.path.join(task, "handler.py"), "w") as f:
            f.write(handler)
        rt_env = dict(env, PYTHONPATH=os.pathsep.join([task, *pythonpath]), E2E_HTTP_PORT=str(servers["http"]),
                      E2E_HTTPS_PORT=str(servers["https"]), SSL_CERT_FILE=servers["ca"],
                      **(rt_env or {}))
        cmd = [*runner, *(runtime or [sys.executable]), "-m", "awslambdaric", "handler.handle"]
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
        import http.client

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
