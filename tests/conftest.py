"""Fixtures for tapline's end-to-end tests.

Tests run real client programs under `tapline run` (or under LD_PRELOAD directly) against
real servers on 127.0.0.1. The servers run as subprocesses *without* the library, so only
the client side is ever traced. HTTPS uses a throw-away CA generated per session.
"""

import base64
import datetime
import ipaddress
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TESTS = REPO / "tests"
CLIENTS = TESTS / "clients"
SERVERS = TESTS / "servers"

sys.path.insert(0, str(SERVERS))
from http_server import HELLO_BODY, pattern  # noqa: E402  (re-exported for tests)

# Variables that would make a plain run differ from a traced one, or leak the test
# runner's own settings into the programs under test.
_SCRUB = ("LD_PRELOAD", "TAPLINE_SPOOL_DIR", "TAPLINE_DISABLE", "TAPLINE_MAX_BODY",
          "TAPLINE_MASK_REGEX", "TAPLINE_SCRUB_DOMAINS", "http_proxy", "https_proxy",
          "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY")

DEFAULT_TIMEOUT = 60  # per program run; a hang must not eat the CI budget


def clean_env(extra=None):
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if extra:
        env.update(extra)
    return env


def require_tool(name):
    """A client the tests need is missing: fail loudly (CI installs it; never skip)."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run scripts/setup", pytrace=False)
    return path


def require_module(name, what=None):
    """A Python module the tests need is missing: fail loudly (CI installs it; never
    skip). Returns the module."""
    import importlib
    try:
        return importlib.import_module(name)
    except ImportError:
        pytest.fail(f"python module {name} ({what or name}) is not installed: run scripts/setup",
                    pytrace=False)


# --- servers -----------------------------------------------------------------------------

class ServerProcess:
    def __init__(self, argv, name):
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(),
            stdin=subprocess.DEVNULL, text=True)
        # Readiness: the server prints READY <port> after bind+listen (blocks until then).
        line = self.proc.stdout.readline()
        if not line.startswith("READY "):
            self.proc.kill()
            err = self.proc.stderr.read()
            raise RuntimeError(f"{name} did not start: {line!r} {err}")
        self.port = int(line.split()[1])

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="session")
def _http_server_proc():
    srv = ServerProcess([sys.executable, str(SERVERS / "http_server.py")], "http server")
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def http_server(_http_server_proc):
    """Base URL of the plain HTTP test server, e.g. http://127.0.0.1:PORT"""
    return f"http://127.0.0.1:{_http_server_proc.port}"


@pytest.fixture(scope="session")
def http_port(_http_server_proc):
    return _http_server_proc.port


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory):
    """A throw-away CA and a server certificate for localhost and 127.0.0.1."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID, ExtendedKeyUsageOID

    d = tmp_path_factory.mktemp("ca")
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tapline test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (d / "ca.pem").write_bytes(ca_cert.public_bytes(pem))
    (d / "server.pem").write_bytes(cert.public_bytes(pem))
    (d / "server.key").write_bytes(key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return d


@pytest.fixture(scope="session")
def ca_bundle(test_ca):
    """Path of the test CA certificate (PEM)."""
    return str(test_ca / "ca.pem")


@pytest.fixture(scope="session")
def _https_server_proc(test_ca):
    srv = ServerProcess([sys.executable, str(SERVERS / "http_server.py"),
                         "--cert", str(test_ca / "server.pem"),
                         "--key", str(test_ca / "server.key")], "https server")
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def https_server(_https_server_proc):
    """Base URL of the HTTPS test server (cert for localhost and 127.0.0.1)."""
    return f"https://127.0.0.1:{_https_server_proc.port}"


@pytest.fixture(scope="session")
def echo_server():
    """(host, port) of the non-HTTP line-echo server."""
    srv = ServerProcess([sys.executable, str(SERVERS / "echo_server.py")], "echo server")
    yield ("127.0.0.1", srv.port)
    srv.stop()


# --- HTTP/2 servers (test_http2.py, test_http2_records.py) -------------------------------

@pytest.fixture(scope="module")
def h2c_port():
    """Port of tests/servers/h2_server.js, cleartext HTTP/2 with prior knowledge."""
    require_tool("node")
    srv = ServerProcess(["node", str(SERVERS / "h2_server.js")], "h2c server")
    yield srv.port
    srv.stop()


@pytest.fixture(scope="module")
def h2_tls_port(test_ca):
    """Port of tests/servers/h2_server.js over TLS with ALPN h2 (the test CA's cert)."""
    require_tool("node")
    srv = ServerProcess(["node", str(SERVERS / "h2_server.js"),
                         "--cert", str(test_ca / "server.pem"),
                         "--key", str(test_ca / "server.key")], "h2 TLS server")
    yield srv.port
    srv.stop()


@pytest.fixture(scope="module")
def h2c_upgrade_port():
    """Port of tests/servers/h2c_upgrade_server.py (HTTP/1.1 with `Upgrade: h2c`)."""
    require_module("h2", "httpx[http2]")
    srv = ServerProcess([sys.executable, str(SERVERS / "h2c_upgrade_server.py")],
                        "h2c upgrade server")
    yield srv.port
    srv.stop()


class OtlpReceiver:
    """tests/servers/otlp_receiver.py as a subprocess: decodes every POST with the
    official OTLP protobuf definitions, records one JSON line per request (headers,
    spans, decode errors) and keeps each raw body."""

    def __init__(self, tmp_path, name, args=(), timeout=300):
        self.dir = tmp_path / name
        self.dir.mkdir()
        self.out = self.dir / "requests.jsonl"
        self.raw_dir = self.dir / "raw"
        port_file = self.dir / "port"
        self.proc = subprocess.Popen(
            [sys.executable, str(SERVERS / "otlp_receiver.py"), "--out", str(self.out),
             "--raw-dir", str(self.raw_dir), "--port-file", str(port_file),
             "--timeout", str(timeout), *map(str, args)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(),
            stdin=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()  # the port, once listening
        if not line.strip().isdigit():
            self.proc.kill()
            raise RuntimeError(f"otlp receiver did not start: {line!r} {self.proc.stderr.read()}")
        self.port = int(line)
        self.scheme = "https" if "--cert" in map(str, args) else "http"
        self.endpoint = f"{self.scheme}://127.0.0.1:{self.port}"

    def records(self):
        """One dict per POST received, in order."""
        if not self.out.exists():
            return []
        return [json.loads(l) for l in self.out.read_text().splitlines() if l.strip()]

    def accepted(self):
        """Records the receiver answered 200 (decoded without error)."""
        return [r for r in self.records() if r.get("answered") == 200]

    def spans(self):
        return [s for r in self.accepted() for s in r.get("spans", [])]

    def raw_bodies(self):
        if not self.raw_dir.exists():
            return []
        return [p.read_bytes() for p in sorted(self.raw_dir.glob("*.bin"))]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def otlp_receiver(tmp_path):
    """otlp_receiver(*args) -> OtlpReceiver (args: --fail N, --cert/--key, ...)."""
    started = []

    def start(*args):
        r = OtlpReceiver(tmp_path, f"otlp-{len(started)}", args)
        started.append(r)
        return r
    yield start
    for r in started:
        r.stop()


# --- the product under test --------------------------------------------------------------

def _release_dir():
    target = os.environ.get("CARGO_TARGET_DIR")
    return (Path(target) if target else REPO / "target") / "release"


@pytest.fixture(scope="session")
def tapline_bin():
    """target/release/tapline (built once if missing, together with libtapline.so)."""
    rel = _release_dir()
    binary, lib = rel / "tapline", rel / "libtapline.so"
    if not (binary.exists() and lib.exists()):
        subprocess.run(["cargo", "build", "--release", "--workspace"], cwd=REPO, check=True,
                       stdin=subprocess.DEVNULL)
    assert binary.exists(), f"{binary} missing after cargo build --release"
    return str(binary)


def spool_records(tapline_bin, spool_dir, rtype=None):
    """The records of a spool directory, as `tapline show --records DIR` prints them (one
    JSON object a line: type, file, index, header and payload fields), optionally only
    those of one type ("tls_info", "data", ...)."""
    proc = subprocess.run([tapline_bin, "show", "--records", str(spool_dir)],
                          capture_output=True, check=True, stdin=subprocess.DEVNULL)
    records = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    return [r for r in records if rtype is None or r["type"] == rtype]


def assert_panic_caught(proc, spool_dir, tapline_bin):
    """A run of tests/clients/panic_in_capture.c: the panic raised inside a capture step
    was caught and silent (exit 0, nothing on stderr), counted (one `Drops` record of one
    record), and the request after it was captured."""
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    out = proc.stdout.decode()
    assert "returned 1 dropped 1\n" in out and "status 200\n" in out, out
    assert proc.stderr == b"", proc.stderr.decode(errors="replace")
    records = spool_records(tapline_bin, spool_dir)
    drops = [r for r in records if r["type"] == "drops"]
    assert len(drops) == 1 and drops[0]["records"] == 1, drops
    assert any("after-panic=1" in str(r) for r in records if r["type"] in ("data", "data_end")), \
        [r["type"] for r in records]


@pytest.fixture(scope="session")
def tapline_lib(tapline_bin):
    """target/release/libtapline.so"""
    lib = Path(tapline_bin).parent / "libtapline.so"
    assert lib.exists(), f"{lib} missing after cargo build --release"
    return str(lib)


def body_bytes(ex, side):
    """The captured body prefix of `side` ("request"/"response") as bytes, or None."""
    val = ex.get(f"{side}_body")
    if val is None:
        return None
    if ex.get(f"{side}_body_encoding") == "base64":
        return base64.b64decode(val)
    return val.encode("utf-8")


def header(headers, name):
    """First value of header `name` (case-insensitive) in a [[name, value], ...] list."""
    for k, v in headers or []:
        if k.lower() == name.lower():
            return v
    return None


def headers_all(headers, name):
    return [v for k, v in headers or [] if k.lower() == name.lower()]


class Traced:
    def __init__(self, tapline_bin, tmp_path):
        self.tapline_bin = tapline_bin
        self.tmp_path = tmp_path
        self.n = 0

    def __call__(self, cmd, env=None, fmt="json", timeout=DEFAULT_TIMEOUT, cwd=None,
                 extra_args=(), input=None):
        """Run `tapline run --format FMT --output FILE -- cmd`.

        Returns (CompletedProcess, exchanges): a list of dicts for json, else the report text.
        """
        self.n += 1
        out = self.tmp_path / f"report-{self.n}.{fmt}"
        argv = [self.tapline_bin, "run", "--format", fmt, "--output", str(out),
                *extra_args, "--", *map(str, cmd)]
        proc = subprocess.run(argv, env=clean_env(env), cwd=cwd, capture_output=True,
                              timeout=timeout, input=input,
                              stdin=None if input is not None else subprocess.DEVNULL)
        if not out.exists():
            raise AssertionError(
                f"tapline wrote no report to {out} (exit {proc.returncode})\n"
                f"stderr: {proc.stderr.decode(errors='replace')[-3000:]}")
        text = out.read_text()
        if fmt != "json":
            return proc, text
        exchanges = []
        # Blind-spot notices (a static or Go program ran: Python's ctypes runs the static
        # /sbin/ldconfig) are kept apart, in `self.notices`, for the tests that want them.
        self.notices = []
        for i, line in enumerate(text.splitlines()):
            if line.strip():
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    raise AssertionError(f"report line {i + 1} is not JSON: {line[:200]!r}") from e
                (self.notices if "notice" in obj else exchanges).append(obj)
        return proc, exchanges


@pytest.fixture
def run_traced(tapline_bin, tmp_path):
    """run_traced(cmd, env=None, fmt="json") -> (CompletedProcess, [exchange dicts])"""
    return Traced(tapline_bin, tmp_path)


@pytest.fixture
def run_plain():
    """run_plain(cmd, env=None) -> CompletedProcess, without tapline or the library."""
    def run(cmd, env=None, timeout=DEFAULT_TIMEOUT, cwd=None, input=None):
        return subprocess.run(list(map(str, cmd)), env=clean_env(env), cwd=cwd,
                              capture_output=True, timeout=timeout, input=input,
                              stdin=None if input is not None else subprocess.DEVNULL)
    return run


@pytest.fixture
def run_preloaded(tapline_lib):
    """run_preloaded(cmd, env=None): the program run directly with LD_PRELOAD=libtapline.so.

    TAPLINE_SPOOL_DIR must come in `env` (the default would write to /tmp/tapline).
    """
    def run(cmd, env=None, timeout=DEFAULT_TIMEOUT, cwd=None):
        e = clean_env(env)
        e["LD_PRELOAD"] = tapline_lib
        proc = subprocess.run(list(map(str, cmd)), env=e, cwd=cwd, capture_output=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
        # ld.so only warns when it cannot preload: such a run would prove nothing.
        assert b"cannot be preloaded" not in proc.stderr, proc.stderr.decode(errors="replace")
        return proc
    return run


@pytest.fixture(scope="session")
def c_programs(tmp_path_factory):
    """compile(name) -> path of tests/clients/<name>.c built with gcc."""
    require_tool("gcc")
    outdir = tmp_path_factory.mktemp("cbin")
    built = {}

    def compile_(name):
        if name not in built:
            src = CLIENTS / f"{name}.c"
            exe = outdir / name
            subprocess.run(["gcc", "-O1", "-Wall", "-Werror", "-pthread", "-o", str(exe), str(src)],
                           check=True, stdin=subprocess.DEVNULL)
            built[name] = str(exe)
        return built[name]
    return compile_


def by_url_substring(exchanges, needle):
    return [e for e in exchanges if needle in (e.get("url") or "")]


def one(exchanges, needle):
    found = by_url_substring(exchanges, needle)
    assert len(found) == 1, (
        f"expected exactly one exchange with {needle!r} in its url, got {len(found)}; "
        f"urls: {[e.get('url') for e in exchanges]}")
    return found[0]


def assert_hello(ex, port, query, *, method="GET", pid=None):
    """Common checks for a GET /hello?query to the plain server."""
    assert ex["method"] == method
    assert ex["scheme"] == "http"
    assert ex["host"] == "127.0.0.1"
    assert ex["port"] == port
    assert ex["path"] == "/hello"
    assert ex["url"] == f"http://127.0.0.1:{port}/hello" + (f"?{query}" if query else "")
    assert ex["status"] == 200
    assert ex["tls"] == "none"
    assert ex["peer"] in (f"127.0.0.1:{port}", f"[::ffff:127.0.0.1]:{port}")
    assert ex["error"] is None
    assert header(ex["response_headers"], "X-Test-Server") == "tapline-tests"
    assert header(ex["response_headers"], "X-Echo-Query") == query
    assert body_bytes(ex, "response") == HELLO_BODY
    assert ex["response_body_size"] == len(HELLO_BODY)
    if pid is not None:
        assert ex["pid"] == pid


__all__ = ["HELLO_BODY", "pattern", "body_bytes", "header", "headers_all", "one",
           "by_url_substring", "assert_hello", "require_tool", "clean_env", "CLIENTS"]


def _start_moto(tls=None):
    """moto_server on 127.0.0.1, plain or (tls: a directory with server.pem/server.key of
    the test CA) HTTPS; returns (process, port) once it answers."""
    import socket
    import ssl
    import urllib.request

    exe = require_tool("moto_server")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    args = [exe, "-H", "127.0.0.1", "-p", str(port)]
    scheme, ctx = "http", None
    if tls is not None:
        args += ["-c", str(tls / "server.pem"), "-k", str(tls / "server.key")]
        scheme, ctx = "https", ssl.create_default_context(cafile=str(tls / "ca.pem"))
    proc = subprocess.Popen(args, env=clean_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{scheme}://127.0.0.1:{port}/moto-api/", timeout=1,
                                   context=ctx).read()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail("moto_server did not start", pytrace=False)
            time.sleep(0.1)
    return proc, port


@pytest.fixture
def moto():
    """A fresh moto_server (real AWS protocol endpoints) on 127.0.0.1; yields its port."""
    proc, port = _start_moto()
    yield port
    proc.kill()
    proc.wait()


@pytest.fixture
def moto_tls(test_ca):
    """A fresh moto_server over HTTPS (the test CA's certificate for localhost and
    127.0.0.1) on 127.0.0.1; yields its port."""
    proc, port = _start_moto(test_ca)
    yield port
    proc.kill()
    proc.wait()
