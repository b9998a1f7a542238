"""Node carries OpenSSL inside its executable: plaintext only through the inline hooks.

Each test runs a real node client under libtapline.so against a TLS server on
127.0.0.1 (Python's http.server for HTTP/1.1, a separate node process, not preloaded,
for HTTP/2), then looks for the plaintext request and response heads in the spool.
The W^X test runs node under ``prctl(PR_SET_MDWE)``: the hooker must refuse and node
must behave exactly as without the library.

Needs: node, openssl (the CLI, for the test CA), the release build (in
`$CARGO_TARGET_DIR` when set; built when missing). A missing tool fails loudly.
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import textwrap

import pytest

from conftest import _release_dir, require_tool

ROOT = pathlib.Path(__file__).resolve().parent.parent
LIB = _release_dir() / "libtapline.so"
CLI = _release_dir() / "tapline"
NODE = shutil.which("node") or "node"


@pytest.fixture(autouse=True, scope="module")
def _needs(tapline_bin):
    """node and openssl are installed by CI, and the release build exists (the
    `tapline_bin` fixture builds it): a missing piece fails, never skips."""
    require_tool("node")
    require_tool("openssl")
    assert LIB.exists() and CLI.exists(), (LIB, CLI)

PYTHON_SERVER = textwrap.dedent(
    """
    import http.server, ssl, sys
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def do_GET(self):
            b = b"hello from tls\\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(b)))
            self.end_headers()
            self.wfile.write(b)
        def log_message(self, *a):
            pass
    s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[1], sys.argv[2])
    s.socket = ctx.wrap_socket(s.socket, server_side=True)
    print(s.server_address[1], flush=True)
    s.serve_forever()
    """
)

NODE_H2_SERVER = textwrap.dedent(
    """
    const http2 = require('http2'); const fs = require('fs');
    const s = http2.createSecureServer({key: fs.readFileSync(process.argv[2]),
                                        cert: fs.readFileSync(process.argv[3])});
    s.on('stream', (st) => { st.respond({':status': 200}); st.end('hello h2\\n'); });
    s.listen(0, '127.0.0.1', () => console.log(s.address().port));
    """
)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    key, cert = d / "key.pem", d / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
         "-out", cert, "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    return key, cert


def _start(cmd):
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=_clean_env())
    port = int(p.stdout.readline())
    return p, port


def _clean_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAPLINE_")}
    env.pop("LD_PRELOAD", None)
    return env


@pytest.fixture(scope="module")
def https_port(pki, tmp_path_factory):
    script = tmp_path_factory.mktemp("srv") / "server.py"
    script.write_text(PYTHON_SERVER)
    p, port = _start([sys.executable, script, pki[1], pki[0]])
    yield port
    p.kill()
    p.wait()


@pytest.fixture(scope="module")
def h2_port(pki, tmp_path_factory):
    script = tmp_path_factory.mktemp("h2") / "server.js"
    script.write_text(NODE_H2_SERVER)
    p, port = _start([NODE, script, pki[0], pki[1]])
    yield port
    p.kill()
    p.wait()


def run_node(code, tmp_path, pki, port, preload=True, launcher=(), node_args=()):
    """Runs `code` with node (optionally under the library) and returns
    (returncode, stdout, spool bytes)."""
    script = tmp_path / "client.js"
    script.write_text(textwrap.dedent(code))
    spool = pathlib.Path(tempfile.mkdtemp(prefix="spool", dir=tmp_path))
    env = _clean_env()
    env.update(CA=str(pki[1]), PORT=str(port))
    if preload:
        env.update(LD_PRELOAD=str(LIB), TAPLINE_SPOOL_DIR=str(spool))
    p = subprocess.run(
        [*launcher, NODE, *node_args, script], env=env, capture_output=True, text=True,
        timeout=60,
    )
    data = b"".join(f.read_bytes() for f in sorted(spool.iterdir()) if f.is_file())
    return p.returncode, p.stdout, p.stderr, data, spool


def show(spool):
    """The exchanges `tapline show --format json` reports for a spool directory."""
    report = spool.parent / (spool.name + ".json")
    subprocess.run(
        [CLI, "show", "--format", "json", "-o", report, spool], capture_output=True,
        check=True, env=_clean_env(),
    )
    text = report.read_text().strip()
    if text.startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def heads(spool: bytes, prefix: bytes) -> int:
    return spool.count(prefix)


CONN_OPEN, TLS_INFO = 2, 6
H2C, TLS_PLAINTEXT = 3, 4
OPENSSL = 1


def records(spool: bytes):
    """(rtype, conn_id, payload) of each record: 48-byte header starting with the
    magic `TLR1` at an 8-aligned offset, total length at bytes 8..12 (see record/).
    A test-side walker until the CLI's `show --format json` is on main."""
    off = 0
    while off + 48 <= len(spool):
        if spool[off:off + 4] != b"TLR1":
            off += 8
            continue
        rtype = int.from_bytes(spool[off + 6:off + 8], "little")
        length = int.from_bytes(spool[off + 8:off + 12], "little")
        conn_id = int.from_bytes(spool[off + 40:off + 48], "little")
        if length < 48 or off + length > len(spool):
            off += 8
            continue
        yield rtype, conn_id, spool[off + 48:off + length]
        off += length


def tls_connections(spool: bytes):
    """{conn_id: (protocol, library, sni, alpn)} of the plaintext connections that a
    TLS hook opened (ConnOpen then TlsInfo)."""
    protocols, out = {}, {}
    for rtype, conn_id, p in records(spool):
        if rtype == CONN_OPEN:
            protocols[conn_id] = p[4]
        elif rtype == TLS_INFO and conn_id in protocols:
            sni_len = int.from_bytes(p[2:4], "little")
            alpn_len = int.from_bytes(p[4:6], "little")
            sni = p[24:24 + sni_len]
            alpn = p[24 + sni_len:24 + sni_len + alpn_len]
            out[conn_id] = (protocols[conn_id], p[0], sni, alpn)
    return out


HTTPS_GET = """
const https = require('https'); const fs = require('fs');
https.get({host: '127.0.0.1', port: +process.env.PORT, path: '/', servername: 'localhost',
           ca: fs.readFileSync(process.env.CA)}, (r) => {
  let d = ''; r.on('data', (c) => d += c); r.on('end', () => console.log(r.statusCode, d.trim()));
});
"""


def test_https_get_plaintext_heads(tmp_path, pki, https_port):
    rc, out, err, spool, spool_dir = run_node(HTTPS_GET, tmp_path, pki, https_port)
    assert (rc, out, err) == (0, "200 hello from tls\n", "")
    assert heads(spool, b"GET / HTTP/1.1\r\n") == 1
    assert heads(spool, b"HTTP/1.1 200 OK\r\n") == 1
    # SNI from SSL_get_servername in node's own OpenSSL; node's https offers http/1.1
    # only through ALPN when asked, so ALPN may be empty.
    conns = list(tls_connections(spool).values())
    assert len(conns) == 1
    protocol, library, sni, _ = conns[0]
    assert (protocol, library, sni) == (TLS_PLAINTEXT, OPENSSL, b"localhost")
    [x] = show(spool_dir)
    assert (x["method"], x["path"], x["status"], x["http_version"]) == ("GET", "/", 200, "1.1")
    assert (x["tls"], x["sni"], x["response_body"]) == ("openssl", "localhost", "hello from tls\n")


def test_output_and_exit_code_unchanged(tmp_path, pki, https_port):
    code = HTTPS_GET + "\nprocess.on('exit', () => { process.exitCode = 7; });\n"
    with_lib = run_node(code, tmp_path, pki, https_port)
    without = run_node(code, tmp_path, pki, https_port, preload=False)
    assert with_lib[:3] == without[:3] == (7, "200 hello from tls\n", "")


def test_fetch(tmp_path, pki, https_port):
    code = """
    process.env.NODE_EXTRA_CA_CERTS = process.env.CA;
    fetch('https://localhost:' + process.env.PORT + '/')
      .then((r) => r.text().then((t) => console.log(r.status, t.trim())));
    """
    # fetch (undici) reads extra CAs at startup: pass them through the environment.
    os.environ["NODE_EXTRA_CA_CERTS"] = str(pki[1])
    try:
        rc, out, err, spool, spool_dir = run_node(code, tmp_path, pki, https_port)
    finally:
        del os.environ["NODE_EXTRA_CA_CERTS"]
    assert (rc, out) == (0, "200 hello from tls\n"), err
    assert heads(spool, b"GET / HTTP/1.1\r\n") == 1
    assert heads(spool, b"HTTP/1.1 200 OK\r\n") == 1


def test_keep_alive_agent_twenty_requests(tmp_path, pki, https_port):
    code = """
    const https = require('https'); const fs = require('fs');
    const agent = new https.Agent({keepAlive: true, maxSockets: 1});
    let n = 0;
    function one() {
      https.get({host: '127.0.0.1', port: +process.env.PORT, path: '/', agent,
                 servername: 'localhost', ca: fs.readFileSync(process.env.CA)}, (r) => {
        r.resume(); r.on('end', () => { if (++n < 20) one(); else { agent.destroy(); console.log(n); } });
      });
    }
    one();
    """
    rc, out, err, spool, spool_dir = run_node(code, tmp_path, pki, https_port)
    assert (rc, out, err) == (0, "20\n", "")
    assert heads(spool, b"GET / HTTP/1.1\r\n") == 20
    assert heads(spool, b"HTTP/1.1 200 OK\r\n") == 20
    xs = show(spool_dir)
    assert [(x["status"], x["tls"]) for x in xs] == [(200, "openssl")] * 20
    assert len({x["conn_id"] for x in xs}) == 1


def test_eight_concurrent_requests(tmp_path, pki, https_port):
    code = """
    const https = require('https'); const fs = require('fs');
    const ca = fs.readFileSync(process.env.CA);
    let done = 0;
    for (let i = 0; i < 8; i++) {
      https.get({host: '127.0.0.1', port: +process.env.PORT, path: '/', servername: 'localhost',
                 ca, agent: false}, (r) => { r.resume(); r.on('end', () => { if (++done === 8) console.log(done); }); });
    }
    """
    rc, out, err, spool, spool_dir = run_node(code, tmp_path, pki, https_port)
    assert (rc, out, err) == (0, "8\n", "")
    assert heads(spool, b"GET / HTTP/1.1\r\n") == 8
    assert heads(spool, b"HTTP/1.1 200 OK\r\n") == 8


def test_worker_threads(tmp_path, pki, https_port):
    code = """
    const { Worker, isMainThread, parentPort } = require('worker_threads');
    if (isMainThread) {
      let done = 0;
      for (let i = 0; i < 3; i++) {
        new Worker(__filename).on('message', () => { if (++done === 3) console.log('workers', done); });
      }
    } else {
      const https = require('https'); const fs = require('fs');
      https.get({host: '127.0.0.1', port: +process.env.PORT, path: '/', servername: 'localhost',
                 ca: fs.readFileSync(process.env.CA)}, (r) => {
        r.resume(); r.on('end', () => parentPort.postMessage('ok'));
      });
    }
    """
    rc, out, err, spool, spool_dir = run_node(code, tmp_path, pki, https_port)
    assert (rc, out, err) == (0, "workers 3\n", "")
    assert heads(spool, b"GET / HTTP/1.1\r\n") == 3
    assert heads(spool, b"HTTP/1.1 200 OK\r\n") == 3


def test_http2_client_recorded_as_h2(tmp_path, pki, h2_port):
    code = """
    const http2 = require('http2'); const fs = require('fs');
    const c = http2.connect('https://localhost:' + process.env.PORT, {ca: fs.readFileSync(process.env.CA)});
    const req = c.request({':path': '/'});
    let d = ''; req.on('data', (x) => d += x);
    req.on('end', () => { console.log(d.trim()); c.close(); });
    req.end();
    """
    rc, out, err, spool, spool_dir = run_node(code, tmp_path, pki, h2_port)
    assert (rc, out, err) == (0, "hello h2\n", "")
    # ALPN h2: the plaintext starts with the HTTP/2 preface (classified H2c, counted
    # until an HTTP/2 parser exists), and the TlsInfo carries the ALPN protocol that
    # node's OpenSSL selected: a reader reports http_version "2", tls "openssl".
    assert list(tls_connections(spool).values()) == [(H2C, OPENSSL, b"localhost", b"h2")]
    assert heads(spool, b"GET / HTTP/1.1\r\n") == 0
    [x] = show(spool_dir)
    assert (x["http_version"], x["alpn"], x["sni"]) == ("2", "h2", "localhost")


def test_http2_over_openssl_reported_as_https_openssl(tmp_path, pki, h2_port):
    code = """
    const http2 = require('http2'); const fs = require('fs');
    const c = http2.connect('https://localhost:' + process.env.PORT, {ca: fs.readFileSync(process.env.CA)});
    const req = c.request({':path': '/'}); req.resume();
    req.on('end', () => c.close()); req.end();
    """
    rc, _, _, _, spool_dir = run_node(code, tmp_path, pki, h2_port)
    assert rc == 0
    [x] = show(spool_dir)
    assert (x["tls"], x["scheme"], x["http_version"]) == ("openssl", "https", "2")


def _mdwe_available():
    r = subprocess.run(
        [sys.executable, "-c",
         "import ctypes,sys; sys.exit(ctypes.CDLL(None).prctl(65, 1, 0, 0, 0) != 0)"],
    )
    return r.returncode == 0


MDWE_LAUNCHER = (
    sys.executable, "-c",
    "import ctypes, os, sys\n"
    "assert ctypes.CDLL(None).prctl(65, 1, 0, 0, 0) == 0  # PR_SET_MDWE, REFUSE_EXEC_GAIN\n"
    "os.execvp(sys.argv[1], sys.argv[1:])\n",
)


@pytest.mark.skipif(not _mdwe_available(), reason="kernel without PR_SET_MDWE")
def test_write_xor_execute_policy_makes_the_hooker_refuse(tmp_path, pki, https_port):
    # V8's JIT itself needs W->X; --jitless lets node run under MDWE at all.
    args = dict(launcher=MDWE_LAUNCHER, node_args=("--jitless",))
    with_lib = run_node(HTTPS_GET, tmp_path, pki, https_port, **args)
    without = run_node(HTTPS_GET, tmp_path, pki, https_port, preload=False, **args)
    assert with_lib[:3] == without[:3]
    assert with_lib[0] == 0 and with_lib[1] == "200 hello from tls\n"
    # No hook: no plaintext, only the ciphertext connection.
    assert heads(with_lib[3], b"GET / HTTP/1.1\r\n") == 0
    assert tls_connections(with_lib[3]) == {}
    # Control: the same launcher without MDWE hooks fine.
    plain = run_node(HTTPS_GET, tmp_path, pki, https_port, node_args=("--jitless",))
    assert heads(plain[3], b"GET / HTTP/1.1\r\n") >= 1
