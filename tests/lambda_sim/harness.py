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
import signal
import socket
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


# Set when a request for /hang arrives (the function is now inside that call).
HANG_SEEN = threading.Event()


class Handler(http.server.BaseHTTPRequestHandler):
    """`/big?size=N`: N bytes of body; `/hang`: no answer for 60 s; else the path as
    JSON."""
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path.startswith("/hang"):
            HANG_SEEN.set()
            time.sleep(60)
            self.close_connection = True
            return
        if self.path.startswith("/big"):
            size = int(self.path.split("size=", 1)[1].split("&")[0])
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            chunk = b"b" * 65536
            left = size
            while left:
                n = min(left, len(chunk))
                self.wfile.write(chunk[:n])
                left -= n
            return
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


def build_binaries(release=False):
    """`cargo build` of the library, the extension and the simulator (debug, or release as
    in Lambda); returns the folder that holds them (honours CARGO_TARGET_DIR)."""
    cmd = ["cargo", "build", "-p", "libtapline", "-p", "tapline", "-p", "tapline-lambda-sim"]
    if release:
        cmd.insert(2, "--release")
    subprocess.run(cmd, cwd=ROOT, check=True, stdin=subprocess.DEVNULL)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    return os.path.join(target, "release" if release else "debug")


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
    added after the handler's folder (where that interpreter finds awslambdaric).

    `runtime_cmd(env, cmd, rt_env)` may replace the runtime's command line and add to its
    environment (another tracer's wrapper, another language): it gets this environment
    (`task`, `otlp_port`, ...), the default command and environment, and returns both."""

    def __init__(self, build, servers, tmp, layer=True, spool=None, timeout_ms=60000,
                 with_extension=True, gate=None, ext_env=None, otlp=True, sim=None,
                 layer_dir=None, handler=HANDLER, rt_env=None, runtime_cmd=None,
                 receiver_args=(), freeze_gap=None, runtime_proxy=False, preload_runtime=None,
                 runner=(), runtime=None, pythonpath=()):
        """`freeze_gap`: seconds the sandbox stays frozen (runtime and extension
        SIGSTOPped, as Lambda freezes it) after every invocation, thawed before the next.
        `runtime_proxy`: the runtime reaches the Runtime API through a byte-for-byte TCP
        forwarder (its `AWS_LAMBDA_RUNTIME_API` differs from the extension's).
        `preload_runtime=False`: the runtime is started without `wrapper.sh` even
        though the layer is there (its children may still preload the library).
        `timeout_ms`: the function timeout (the INVOKE deadline). Generous by default: a
        cold handler (boto3's first client) on a loaded 2-core machine can take seconds,
        and past the deadline the extension stops waiting for the runtime's response and
        reports what it has — a test that is not about timeouts must not depend on
        speed. Tests of timeouts pass a short one."""
        self.tmp = tmp
        self.freeze_gap = freeze_gap
        self.frozen = False
        self.events = queue.Queue()
        self.lines = []
        self.receiver = None
        self.otlp_out = os.path.join(tmp, "otlp.jsonl")
        otlp_port = None
        self.otlp_port = None
        if otlp:
            port_file = os.path.join(tmp, "otlp.port")
            self.receiver = subprocess.Popen(
                [sys.executable, os.path.join(ROOT, "tests/servers/otlp_receiver.py"),
                 "--out", self.otlp_out, "--port-file", port_file, "--timeout", "7200",
                 *receiver_args],
                stdout=subprocess.DEVNULL)
            while not (os.path.exists(port_file) and open(port_file).read().strip()):
                time.sleep(0.02)
            otlp_port = open(port_file).read().strip()
            self.otlp_port = otlp_port
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

        self.forwarder = None
        if runtime_proxy:
            host, port = self.api.rsplit(":", 1)
            self.forwarder = Forwarder((host, int(port)))
            env = dict(env, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{self.forwarder.port}")
        self.lib = os.path.join(opt, "tapline", "libtapline.so")
        task = os.path.join(tmp, "task")
        self.task = task
        os.makedirs(task)
        with open(os.path.join(task, "handler.py"), "w") as f:
            f.write(handler)
        rt_env = dict(env, PYTHONPATH=os.pathsep.join([task, *pythonpath]),
                      E2E_HTTP_PORT=str(servers["http"]), E2E_LIB=self.lib,
                      E2E_HTTPS_PORT=str(servers["https"]), SSL_CERT_FILE=servers["ca"],
                      **(rt_env or {}))
        cmd = [*runner, *(runtime or [sys.executable]), "-m", "awslambdaric", "handler.handle"]
        if layer and preload_runtime is not False:
            # AWS_LAMBDA_EXEC_WRAPPER: Lambda runs the script with the runtime's command line.
            cmd = ["dash", os.path.join(opt, "tapline", "wrapper.sh")] + cmd
        if runtime_cmd:
            cmd, rt_env = runtime_cmd(self, cmd, rt_env)
        self.runtime_log = open(os.path.join(tmp, "runtime.log"), "w+")
        self.runtime_spawned_ns = time.time_ns()
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
        self.thaw()
        self.send("invoke " + json.dumps(payload))
        rid = self.expect("enqueued")[1]
        resp = self.expect("response")
        assert resp[1] == rid
        ready = self.expect("ready") if wait_ready else None
        if wait_ready and self.freeze_gap:
            # Every extension called Next: Lambda may freeze the sandbox now.
            self.freeze()
            time.sleep(self.freeze_gap)
        return rid, resp, ready

    def _sandbox(self):
        return [p for p in (self.runtime, self.extension) if p and p.poll() is None]

    def freeze(self):
        """SIGSTOP runtime and extension, as Lambda freezes a sandbox between
        invocations."""
        for p in self._sandbox():
            os.kill(p.pid, signal.SIGSTOP)
        self.frozen = True

    def thaw(self):
        if self.frozen:
            for p in self._sandbox():
                os.kill(p.pid, signal.SIGCONT)
            self.frozen = False

    def extension_peak_rss_kb(self):
        """VmHWM of the extension (peak resident set), in KiB."""
        with open(f"/proc/{self.extension.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        raise AssertionError("no VmHWM")

    def shutdown(self, reason="spindown"):
        self.thaw()
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
        self.thaw()
        for p in (self.runtime, self.extension, self.sim, self.receiver):
            if p and p.poll() is None:
                p.kill()
                p.wait()
        if self.forwarder:
            self.forwarder.close()


class Forwarder:
    """A TCP hop on 127.0.0.1 that forwards bytes both ways to `upstream`, as a local
    emulator's proxy sits between the runtime and the Runtime API."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def close(self):
        self.listener.close()


class Trouble:
    """An OTLP hop between the extension and the receiver that misbehaves on demand, as
    a collector in trouble does. `mode`: "ok" (forward), "stall" (take the request, say
    nothing for `stall_s` seconds, then hang up without forwarding: a hung collector),
    an HTTP status such as 429 or 503 (answered with `Retry-After: 1`, not forwarded),
    or "down" (nothing listens: connection refused). Counts what it saw per mode."""

    def __init__(self, stall_s=5.0):
        self.upstream = None
        self.stall_s = stall_s
        self.mode = "ok"
        self.seen = {}
        self.stalling = 0
        self.lock = threading.Lock()
        self.server = None
        self.port = None
        self._serve(0)

    def _serve(self, port):
        import http.client

        hop = self

        class Hop(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                mode = hop.mode
                with hop.lock:
                    hop.seen[mode] = hop.seen.get(mode, 0) + 1
                if mode == "stall":
                    with hop.lock:
                        hop.stalling += 1
                    time.sleep(hop.stall_s)
                    with hop.lock:
                        hop.stalling -= 1
                    self.close_connection = True
                    return
                if isinstance(mode, int):
                    data = b"busy"
                    self.send_response(mode)
                    self.send_header("Retry-After", "1")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                c = http.client.HTTPConnection("127.0.0.1", hop.upstream, timeout=30)
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

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Hop)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def set(self, mode):
        """"ok", "stall", an HTTP status, or "down"."""
        if mode == "down" and self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        elif mode != "down" and self.server is None:
            self._serve(self.port)
        self.mode = mode

    def close(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


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
