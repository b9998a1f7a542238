"""Java HTTPS in plaintext: the JVMTI agent inside libtapline.so, on real JVMs.

Java does TLS in Java (JSSE), out of reach of the preload; the library is also a JVMTI
agent that instruments the JDK's TLS classes as they load. `tapline run` puts
`-agentpath:<libtapline.so>` into a `java` command line (so do `wrapper.sh` and the exec
hooks, for JVMs a traced process starts).

For JDK 17 (Debian's: missing fails) and JDK 25 (`/usr/lib/jvm/temurin-25-jdk-amd64`:
skipped with a message where absent), the programs of `tests/java/` (compiled here with
JDK 17's javac) talk to the HTTPS test servers on 127.0.0.1 as https://localhost:PORT:

- HttpsURLConnection GET and POST (SSLSocket), java.net.http.HttpClient over HTTP/1.1 and
  HTTP/2 (SSLEngine; h2 against tests/servers/h2_server.js with ALPN h2), 20 requests on
  one kept-alive connection, 8 threads at once, a 1 MiB response: method, URL, status,
  headers, body prefixes, sizes, `tls: "jsse"`, each exchange once (no opaque twin);
- a DynamoDB PutItem signed by hand (SigV4) against moto_server over HTTPS: named
  `DynamoDB.PutItem` with the request id moto answered;
- every program's stdout, stderr and exit status are the same with and without tapline;
- `TAPLINE_JAVA=0`: today's opaque exchange, and no agent in the command line;
- the agent goes into the command line once (tapline run, the exec hook under `sh -c`),
  never twice, never into `javac`;
- a JDK class of an unexpected shape (`SSLSocketImpl$AppOutputStream` with a method
  `tapline$write` added, put in with `--patch-module`) is left untouched: the program runs
  as without tapline and the report says so once.

Needs: Debian's openjdk-17-jdk-headless (java, javac, keytool), node (the h2 server),
moto_server.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import (HELLO_BODY, REPO, body_bytes, clean_env, header, pattern,
                      require_tool)

JAVA_SRC = REPO / "tests" / "java"
sys.path.insert(0, str(JAVA_SRC))
from classfile_edit import add_native_method  # noqa: E402

JDK17 = Path("/usr/lib/jvm/java-17-openjdk-amd64")
JDK25 = Path("/usr/lib/jvm/temurin-25-jdk-amd64")
TIMEOUT = 180  # a JVM on a loaded 2-core machine


# --- fixtures ----------------------------------------------------------------------------

@pytest.fixture(scope="session")
def jdk17():
    if not (JDK17 / "bin" / "java").exists() or not (JDK17 / "bin" / "javac").exists():
        pytest.fail(f"{JDK17} (openjdk-17-jdk-headless) is not installed: run scripts/setup",
                    pytrace=False)
    return JDK17


@pytest.fixture(scope="module", params=["17", "25"])
def jdk(request, jdk17):
    """The JDK home a test runs its programs with."""
    if request.param == "17":
        return jdk17
    if not (JDK25 / "bin" / "java").exists():
        pytest.skip(f"JDK 25 not installed here ({JDK25} missing)")
    return JDK25


@pytest.fixture(scope="session")
def java_classes(jdk17, tmp_path_factory):
    """tests/java/*.java compiled once with JDK 17's javac (JDK 25 runs them too)."""
    out = tmp_path_factory.mktemp("java-classes")
    sources = sorted(str(p) for p in JAVA_SRC.glob("*.java"))
    subprocess.run([str(jdk17 / "bin" / "javac"), "--release", "17", "-d", str(out), *sources],
                   check=True, capture_output=True, stdin=subprocess.DEVNULL, timeout=TIMEOUT)
    return out


@pytest.fixture(scope="session")
def truststore(jdk17, ca_bundle, tmp_path_factory):
    """A PKCS12 truststore holding the test CA (keytool)."""
    ts = tmp_path_factory.mktemp("java-trust") / "truststore.p12"
    subprocess.run([str(jdk17 / "bin" / "keytool"), "-importcert", "-noprompt",
                    "-alias", "tapline-test-ca", "-file", ca_bundle, "-keystore", str(ts),
                    "-storetype", "PKCS12", "-storepass", "changeit"],
                   check=True, capture_output=True, stdin=subprocess.DEVNULL)
    return ts


@pytest.fixture(scope="module")
def tls_port(_https_server_proc):
    return _https_server_proc.port


@pytest.fixture
def java(jdk, java_classes, truststore):
    """java(*args, jvm=()) -> the command line of `jdk/bin/java` with the truststore and
    the compiled programs on the class path."""
    def cmd(*args, jvm=()):
        return [str(jdk / "bin" / "java"), *jvm,
                f"-Djavax.net.ssl.trustStore={truststore}",
                "-Djavax.net.ssl.trustStorePassword=changeit",
                "-Djavax.net.ssl.trustStoreType=PKCS12",
                "-cp", str(java_classes), *map(str, args)]
    return cmd


# --- helpers -----------------------------------------------------------------------------

def traced_like_plain(run_traced, run_plain, cmd, env=None):
    """Runs `cmd` without tapline, then under `tapline run`: the same stdout, stderr and
    exit status (exit 0); returns (stdout lines, exchanges)."""
    plain = run_plain(cmd, env=env, timeout=TIMEOUT)
    proc, exs = run_traced(cmd, env=env, timeout=TIMEOUT)
    assert plain.returncode == 0, plain.stderr.decode(errors="replace")[-3000:]
    assert proc.returncode == plain.returncode, proc.stderr.decode(errors="replace")[-3000:]
    assert proc.stdout == plain.stdout
    assert proc.stderr.replace(b"\r", b"") == plain.stderr.replace(b"\r", b""), (
        proc.stderr.decode(errors="replace")[-3000:])
    return proc.stdout.decode().splitlines(), exs


def urls(exs):
    return [(e.get("tls"), e.get("method"), e.get("url")) for e in exs]


def assert_all_jsse(exs, n):
    """Exactly n exchanges, every one plaintext through JSSE: no opaque twin of any
    socket, nothing else."""
    assert [e["tls"] for e in exs].count("opaque") == 0, f"opaque twins: {urls(exs)}"
    assert all(e["tls"] == "jsse" for e in exs), urls(exs)
    assert len(exs) == n, urls(exs)


def assert_jsse(ex, port, path_query, *, method="GET", status=200, version="1.1"):
    """One plaintext exchange to https://localhost:PORT/path_query, read through JSSE."""
    assert ex["tls"] == "jsse", urls([ex])
    assert ex["method"] == method
    assert ex["scheme"] == "https"
    assert ex["host"] == "localhost"
    assert ex["port"] == port
    assert ex["url"] == f"https://localhost:{port}{path_query}"
    assert ex["path"] == path_query.split("?")[0]
    assert ex["status"] == status
    assert ex["http_version"] == version
    assert ex["peer"] in (f"127.0.0.1:{port}", f"[::ffff:127.0.0.1]:{port}"), ex["peer"]
    assert ex["error"] is None, ex["error"]


def assert_hello(ex, port, query):
    assert_jsse(ex, port, f"/hello?{query}")
    assert header(ex["request_headers"], "X-Tapline-Test") == "java-huc"
    assert header(ex["response_headers"], "X-Test-Server") == "tapline-tests"
    assert header(ex["response_headers"], "X-Echo-Query") == query
    assert body_bytes(ex, "response") == HELLO_BODY
    assert ex["response_body_size"] == len(HELLO_BODY)


def by_url(exs, needle):
    found = [e for e in exs if needle in (e.get("url") or "")]
    assert len(found) == 1, f"{needle!r} once, got {urls(exs)}"
    return found[0]


def ending(exs, suffix):
    found = [e for e in exs if (e.get("url") or "").endswith(suffix)]
    assert len(found) == 1, f"{suffix!r} once, got {urls(exs)}"
    return found[0]


# --- SSLSocket: HttpsURLConnection ---------------------------------------------------------

def test_https_url_connection_get(java, run_traced, run_plain, tls_port):
    out, exs = traced_like_plain(run_traced, run_plain,
                                 java("TlsClients", "huc-get", f"https://localhost:{tls_port}"))
    assert out == ["GET 200 from=huc-get hello, tapline"]
    assert_all_jsse(exs, 1)
    assert_hello(exs[0], tls_port, "from=huc-get")


def test_https_url_connection_post(java, run_traced, run_plain, tls_port):
    out, exs = traced_like_plain(run_traced, run_plain,
                                 java("TlsClients", "huc-post", f"https://localhost:{tls_port}"))
    reply = json.loads(out[0].split(" ", 2)[2])
    assert out[0].startswith("POST 200 ") and reply["size"] == 3000
    assert_all_jsse(exs, 1)
    ex = exs[0]
    assert_jsse(ex, tls_port, "/echo?from=huc-post", method="POST")
    assert header(ex["request_headers"], "Content-Type") == "text/plain"
    assert header(ex["request_headers"], "Content-Length") == "3000"
    assert body_bytes(ex, "request") == b"p" * 3000
    assert ex["request_body_size"] == 3000
    assert json.loads(body_bytes(ex, "response")) == reply
    assert ex["response_body_size"] == len(out[0].split(" ", 2)[2])


# --- SSLEngine: java.net.http.HttpClient ---------------------------------------------------

def test_httpclient_http11(java, run_traced, run_plain, tls_port):
    out, exs = traced_like_plain(run_traced, run_plain,
                                 java("TlsClients", "hc11", f"https://localhost:{tls_port}"))
    assert out[0] == "GET 200 HTTP_1_1 hello, tapline"
    assert out[1].startswith("POST 200 HTTP_1_1 ")
    assert_all_jsse(exs, 2)
    get = by_url(exs, "/hello?from=hc11")
    assert_jsse(get, tls_port, "/hello?from=hc11")
    assert header(get["request_headers"], "X-Tapline-Test") == "java-hc11"
    assert body_bytes(get, "response") == HELLO_BODY
    post = by_url(exs, "/echo?from=hc11")
    assert_jsse(post, tls_port, "/echo?from=hc11", method="POST")
    assert body_bytes(post, "request") == b"q" * 2500
    assert post["request_body_size"] == 2500
    assert json.loads(body_bytes(post, "response"))["size"] == 2500
    # one connection: HttpClient keeps it alive between the two
    assert get["conn_id"] == post["conn_id"]


def test_httpclient_http2(java, run_traced, run_plain, h2_tls_port):
    base = f"https://localhost:{h2_tls_port}"
    out, exs = traced_like_plain(run_traced, run_plain, java("TlsClients", "hc2", base))
    assert out[0].startswith("GET 200 HTTP_2 hello h2 /h2-hello"), out
    assert out[1].startswith("POST 200 HTTP_2 2000 "), out
    assert_all_jsse(exs, 2)
    get = by_url(exs, "/h2-hello?from=hc2")
    assert_jsse(get, h2_tls_port, "/h2-hello?from=hc2", version="2")
    assert header(get["request_headers"], "x-tapline-test") == "java-hc2"
    assert body_bytes(get, "response").startswith(b"hello h2 /h2-hello")
    post = by_url(exs, "/echo?from=hc2")
    assert_jsse(post, h2_tls_port, "/echo?from=hc2", method="POST", version="2")
    assert body_bytes(post, "request") == b"q" * 2000
    assert body_bytes(post, "response") == b"q" * 2000
    assert post["request_body_size"] == post["response_body_size"] == 2000
    assert get["conn_id"] == post["conn_id"]


# --- load: keep-alive, threads, a large body -----------------------------------------------

def test_keepalive_20_requests_on_one_connection(java, run_traced, run_plain, tls_port):
    out, exs = traced_like_plain(run_traced, run_plain,
                                 java("TlsClients", "keepalive", f"https://localhost:{tls_port}"))
    assert out == [f"GET 200 from=ka-{i}" for i in range(20)] + ["connections 1"]
    assert_all_jsse(exs, 20)
    for i in range(20):
        assert_hello(ending(exs, f"?from=ka-{i}"), tls_port, f"from=ka-{i}")
    assert len({e["conn_id"] for e in exs}) == 1, urls(exs)


def test_eight_threads_at_once(java, run_traced, run_plain, tls_port):
    out, exs = traced_like_plain(run_traced, run_plain,
                                 java("TlsClients", "threads", f"https://localhost:{tls_port}"))
    assert out == [f"GET 200 from=thread-{i} hello, tapline" for i in range(8)]
    assert_all_jsse(exs, 8)
    for i in range(8):
        assert_hello(ending(exs, f"?from=thread-{i}"), tls_port, f"from=thread-{i}")
    assert len({e["conn_id"] for e in exs}) == 8, urls(exs)


def test_one_mib_response(java, run_traced, run_plain, tls_port):
    import hashlib
    size = 1 << 20
    out, exs = traced_like_plain(run_traced, run_plain,
                                 java("TlsClients", "big", f"https://localhost:{tls_port}"))
    assert out == [f"GET 200 {size} {hashlib.sha256(pattern(size)).hexdigest()}"]
    assert_all_jsse(exs, 1)
    ex = exs[0]
    assert_jsse(ex, tls_port, f"/bytes/{size}?from=big")
    assert ex["response_body_size"] == size
    prefix = body_bytes(ex, "response")
    assert prefix and len(prefix) <= 8192 and prefix == pattern(len(prefix))
    assert header(ex["response_headers"], "Content-Length") == str(size)


# --- AWS: SigV4 by hand against moto over HTTPS --------------------------------------------

def test_dynamodb_putitem_signed_by_hand(java, run_traced, run_plain, moto_tls):
    env = {"AWS_ACCESS_KEY_ID": "AKIDJAVATEST", "AWS_SECRET_ACCESS_KEY": "java-test-secret"}
    base = f"https://localhost:{moto_tls}"
    # Each run its own table (moto keeps state between the two runs).
    plain = run_plain(java("DynamoPut", base, "orders-plain"), env=env, timeout=TIMEOUT)
    assert plain.returncode == 0, plain.stderr.decode(errors="replace")
    proc, exs = run_traced(java("DynamoPut", base, "orders-traced"), env=env, timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert proc.stderr == plain.stderr == b""
    lines = proc.stdout.decode().splitlines()
    assert [l.split()[:2] for l in lines] == [["CreateTable", "200"], ["PutItem", "200"]], lines
    rid = {l.split()[0]: l.split()[2] for l in lines}
    assert_all_jsse(exs, 2)
    by_op = {e["aws"]["operation"]: e for e in exs if e.get("aws")}
    put = by_op["PutItem"]
    assert f'{put["aws"]["service"]}.{put["aws"]["operation"]}' == "DynamoDB.PutItem"
    assert put["aws"]["request_id"] == rid["PutItem"] != "null"
    assert put["aws"]["region"] == "us-east-1"
    assert put["aws"]["resource"].get("aws.dynamodb.table_names") == ["orders-traced"]
    assert by_op["CreateTable"]["aws"]["request_id"] == rid["CreateTable"]
    # the signature and the secret never leave unmasked
    report = json.dumps(exs)
    assert "java-test-secret" not in report
    sig = header(put["request_headers"], "Authorization")
    assert sig is not None and not re.search(r"Signature=[0-9a-f]{64}", sig), sig


# --- TAPLINE_JAVA=0, injection, refusals ---------------------------------------------------

def test_tapline_java_0_is_opaque_as_before(java, run_traced, run_plain, tls_port):
    env = {"TAPLINE_JAVA": "0"}
    out, exs = traced_like_plain(run_traced, run_plain,
                                 java("TlsClients", "hc11", f"https://localhost:{tls_port}"),
                                 env=env)
    assert out[0] == "GET 200 HTTP_1_1 hello, tapline"
    assert len(exs) == 1, urls(exs)
    ex = exs[0]
    assert ex["tls"] == "opaque" and ex["port"] == tls_port, urls(exs)
    assert ex["method"] is None and ex["request_headers"] is None
    proc, _ = run_traced(java("AgentArgs"), env=env, timeout=TIMEOUT)
    assert proc.stdout.decode().split() == ["tapline", "agents", "0"], proc.stderr


def test_agent_goes_into_java_command_lines_once(java, run_traced, tapline_lib, jdk17):
    """tapline run puts it in; a command line that has it already keeps it once; a JVM a
    traced shell starts gets it from the exec hook; javac (a libjli launcher that wants
    -J-agentpath) never does."""
    def agents(cmd, env=None):
        proc, _ = run_traced(cmd, env=env, timeout=TIMEOUT)
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")
        assert proc.stderr == b"", proc.stderr
        return proc.stdout.decode().strip()
    assert agents(java("AgentArgs")) == "tapline agents 1"
    assert agents(java("AgentArgs", jvm=[f"-agentpath:{tapline_lib}"])) == "tapline agents 1"
    shell = " ".join(f"'{a}'" for a in java("AgentArgs"))
    assert agents(["sh", "-c", f"{shell}; true"]) == "tapline agents 1"
    assert agents(["sh", "-c", f"exec {shell}"]) == "tapline agents 1"
    assert agents(["sh", "-c", f"exec {shell}"], env={"TAPLINE_JAVA": "0"}) == "tapline agents 0"
    javac = [str(jdk17 / "bin" / "javac"), "-version"]
    plain = subprocess.run(javac, capture_output=True, env=clean_env(), timeout=TIMEOUT,
                           stdin=subprocess.DEVNULL)
    proc, _ = run_traced(javac, timeout=TIMEOUT)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, plain.stdout, plain.stderr)


def test_altered_class_is_left_untouched(java, jdk, run_traced, run_plain, tls_port,
                                         java_classes, tmp_path):
    """SSLSocketImpl$AppOutputStream with a method `tapline$write([BII)V` added (a shape
    the class transformer refuses: it looks wrapped already) through --patch-module: the
    JVM runs it as without tapline, and the report says once that the class was left
    untouched."""
    name = "sun/security/ssl/SSLSocketImpl$AppOutputStream"
    original = tmp_path / "original.class"
    subprocess.run([str(jdk / "bin" / "java"), "-cp", str(java_classes), "ClassBytes",
                    "java.base", name, str(original)], check=True, timeout=TIMEOUT,
                   stdin=subprocess.DEVNULL, env=clean_env())
    patch = tmp_path / "patch"
    target = patch / (name + ".class")
    target.parent.mkdir(parents=True)
    target.write_bytes(add_native_method(original.read_bytes(), "tapline$write", "([BII)V"))
    cmd = java("TlsClients", "huc-get", f"https://localhost:{tls_port}",
               jvm=[f"--patch-module=java.base={patch}"])
    out, exs = traced_like_plain(run_traced, run_plain, cmd)
    assert out == ["GET 200 from=huc-get hello, tapline"]
    notices = [n for n in run_traced.notices if "AppOutputStream" in json.dumps(n)]
    assert len(notices) == 1, run_traced.notices
    # one exchange, not two: whatever the agent could still read, no opaque twin beside it
    assert len(exs) == 1, urls(exs)
