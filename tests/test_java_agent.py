"""The JVMTI agent's natives (src/jvm/), with real JVMs (Debian's JDK 17 and Temurin 25).

The agent is loaded by hand here: `java -agentpath:<libtapline.so>` under `tapline run`
(which preloads the same libtapline.so, so preload and agent share one state). Each
test runs the same program without tapline too and holds its output equal.

- SSLSocket (HttpsURLConnection): GET and POST plaintext with `tls: "jsse"`, each
  exchange once — the socket under the session was learnt inside the write, so no
  opaque twin.
- SSLEngine (java.net.http.HttpClient), HTTP/1.1 and HTTP/2 over ALPN: the plaintext
  consumed by wrap and produced by unwrap; the engine does no socket I/O of its own, so
  the reader pairs it with its socket (same peer, same time): no opaque twin either.
- TAPLINE_JAVA=0: the agent does nothing, the JVM's TLS is opaque as before.
"""
import os
import subprocess
from pathlib import Path

import pytest

from conftest import CLIENTS, header, require_tool

JDKS = {
    "17": Path("/usr/lib/jvm/java-17-openjdk-amd64"),
    "25": Path("/usr/lib/jvm/temurin-25-jdk-amd64"),
}


def jdk_home(version):
    home = JDKS[version]
    if not (home / "bin" / "java").exists():
        if version == "17":
            require_tool("java")  # fails loudly: CI installs JDK 17
        pytest.skip(f"JDK {version} not installed at {home}")
    return home


@pytest.fixture(scope="module")
def java_classes(tmp_path_factory):
    """JavaAgentCalls compiled once (release 17: runs on both JDKs)."""
    javac = jdk_home("17") / "bin" / "javac"
    out = tmp_path_factory.mktemp("java_agent_classes")
    subprocess.run([str(javac), "--release", "17", "-d", str(out),
                    str(CLIENTS / "JavaAgentCalls.java")], check=True, capture_output=True)
    return out


@pytest.fixture(scope="module")
def truststore(ca_bundle, tmp_path_factory):
    keytool = jdk_home("17") / "bin" / "keytool"
    ts = tmp_path_factory.mktemp("java_agent_ts") / "truststore.p12"
    subprocess.run([str(keytool), "-importcert", "-noprompt", "-alias", "tapline-test-ca",
                    "-file", ca_bundle, "-keystore", str(ts), "-storetype", "PKCS12",
                    "-storepass", "changeit"],
                   check=True, capture_output=True, stdin=subprocess.DEVNULL)
    return ts


def java_cmd(version, classes, ts, args, agent=None):
    cmd = [str(jdk_home(version) / "bin" / "java")]
    if agent:
        cmd.append(f"-agentpath:{agent}")
    cmd += [f"-Djavax.net.ssl.trustStore={ts}", "-Djavax.net.ssl.trustStorePassword=changeit",
            "-Djavax.net.ssl.trustStoreType=PKCS12", "-cp", str(classes), "JavaAgentCalls",
            *args]
    return cmd


def traced_and_plain(run_traced, run_plain, tapline_lib, version, classes, ts, args, env=None):
    plain = run_plain(java_cmd(version, classes, ts, args), env=env, timeout=120)
    assert plain.returncode == 0, plain.stderr.decode(errors="replace")
    proc, exs = run_traced(java_cmd(version, classes, ts, args, agent=tapline_lib), env=env,
                           timeout=120)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    # the program's output is the same with and without tapline
    assert proc.stdout == plain.stdout
    assert proc.stderr == plain.stderr
    return proc, exs


def urls(exs):
    return [(e.get("tls"), e.get("method"), e.get("url"), e.get("conn_id")) for e in exs]


def only_jsse(exs, n):
    """Exactly n exchanges, every one read through JSSE: no opaque twin of any socket."""
    assert [e["tls"] for e in exs].count("opaque") == 0, f"opaque twins: {urls(exs)}"
    assert len(exs) == n, urls(exs)
    assert all(e["tls"] == "jsse" for e in exs), urls(exs)


def by_query(exs, q):
    found = [e for e in exs if e["url"].endswith(q)]
    assert len(found) == 1, (q, urls(exs))
    return found[0]


@pytest.mark.parametrize("version", ["17", "25"])
def test_sslsocket_get_and_post(version, run_traced, run_plain, tapline_lib, java_classes,
                                truststore, https_server):
    base = https_server.replace("127.0.0.1", "localhost")
    proc, exs = traced_and_plain(run_traced, run_plain, tapline_lib, version, java_classes,
                                 truststore, ["socket", base])
    lines = proc.stdout.decode().splitlines()
    assert lines[0] == "GET 200 hello, tapline"
    assert lines[1].startswith("POST 200 ")
    only_jsse(exs, 2)
    get = by_query(exs, "/hello?from=jsse-socket")
    assert get["method"] == "GET" and get["status"] == 200
    assert get["url"].startswith("https://localhost:")
    assert header(get["request_headers"], "X-Tapline-Test") == "jsse-socket"
    assert get["response_body"].startswith("hello, tapline")
    post = by_query(exs, "/echo?from=jsse-socket")
    assert post["method"] == "POST" and post["status"] == 200
    assert post["request_body_size"] == 3000
    assert post["request_body"].startswith("sss")
    assert '"size": 3000' in post["response_body"] or '"size":3000' in post["response_body"]


@pytest.mark.parametrize("version", ["17", "25"])
def test_sslengine_http1(version, run_traced, run_plain, tapline_lib, java_classes,
                         truststore, https_server):
    # an address literal: no SNI, so the reader pairs engine and socket by peer address
    proc, exs = traced_and_plain(run_traced, run_plain, tapline_lib, version, java_classes,
                                 truststore, ["engine", https_server, "HTTP_1_1"])
    lines = proc.stdout.decode().splitlines()
    assert lines[0] == "GET 200 HTTP_1_1 hello, tapline"
    only_jsse(exs, 2)
    get = by_query(exs, "/hello?from=jsse-engine")
    assert get["method"] == "GET" and get["status"] == 200
    assert header(get["request_headers"], "X-Tapline-Test") == "jsse-engine"
    assert get["response_body"].startswith("hello, tapline")
    post = by_query(exs, "/echo?from=jsse-engine")
    assert post["method"] == "POST" and post["request_body_size"] == 2500
    assert post["request_body"].startswith("eee")


@pytest.mark.parametrize("version", ["17", "25"])
def test_sslengine_http2(version, run_traced, run_plain, tapline_lib, java_classes,
                         truststore, h2_tls_port):
    base = f"https://localhost:{h2_tls_port}"
    proc, exs = traced_and_plain(run_traced, run_plain, tapline_lib, version, java_classes,
                                 truststore, ["engine", base, "HTTP_2"])
    lines = proc.stdout.decode().splitlines()
    assert lines[0] == "GET 200 HTTP_2 hello h2 /hello"
    assert lines[1] == "POST 200 2500"
    only_jsse(exs, 2)
    get = by_query(exs, "/hello?from=jsse-engine")
    assert get["method"] == "GET" and get["status"] == 200
    assert get["url"] == f"https://localhost:{h2_tls_port}/hello?from=jsse-engine"
    assert header(get["request_headers"], "x-tapline-test") == "jsse-engine"
    assert get["response_body"] == "hello h2 /hello"
    post = by_query(exs, "/echo?from=jsse-engine")
    assert post["method"] == "POST" and post["status"] == 200
    assert post["request_body_size"] == 2500 and post["response_body_size"] == 2500
    assert post["response_body"].startswith("eee")


def test_tapline_java_0_leaves_tls_opaque(run_traced, run_plain, tapline_lib, java_classes,
                                          truststore, https_server):
    base = https_server.replace("127.0.0.1", "localhost")
    proc, exs = traced_and_plain(run_traced, run_plain, tapline_lib, "17", java_classes,
                                 truststore, ["socket", base], env={"TAPLINE_JAVA": "0"})
    assert proc.stdout.decode().splitlines()[0] == "GET 200 hello, tapline"
    assert exs and all(e["tls"] == "opaque" for e in exs), urls(exs)
