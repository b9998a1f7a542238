"""End to end: a Java function under the tapline layer in the Lambda emulator, its HTTPS
calls exported in plaintext.

The runtime is a Runtime-API loop in plain Java (`tests/lambda_sim/java/
LambdaRuntime.java`, compiled here with JDK 17's javac), started as Lambda starts a Java
runtime through `AWS_LAMBDA_EXEC_WRAPPER`: `dash wrapper.sh java ... LambdaRuntime` —
the wrapper preloads the library and puts `-agentpath:<libtapline.so>` after the java
binary. Per invocation the function makes two HTTPS calls to 127.0.0.1 (as `localhost`):
HttpsURLConnection (SSLSocket) and java.net.http.HttpClient (SSLEngine), one carrying a
planted bearer token.

Checked: responses unchanged; one SERVER span per invocation with exactly its two calls
as children, each with method, full URL, status and `tapline.tls = jsse` (plaintext, not
an opaque connection); the runtime's own Runtime API calls are not user calls; the
planted token never reaches the receiver.

Needs: Debian's openjdk-17-jdk-headless, dash, cargo, the Lambda harness's Python
packages.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, require_tool

sys.path.insert(0, str(REPO / "tests" / "lambda_sim"))
from harness import PLANTED, Lambda, Servers, build_binaries  # noqa: E402

JDK17 = Path("/usr/lib/jvm/java-17-openjdk-amd64")
JAVA_DIR = REPO / "tests" / "lambda_sim" / "java"
TOKEN = PLANTED + "-java"


@pytest.fixture(scope="module")
def build():
    return build_binaries()


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    s = Servers(str(tmp_path_factory.mktemp("servers")))
    yield s.info
    s.close()


@pytest.fixture(scope="module")
def java_runtime(servers, tmp_path_factory):
    """The runtime's command line: wrapper.sh, then JDK 17's java with a truststore
    holding the emulator's CA and our Runtime-API client on the class path."""
    if not (JDK17 / "bin" / "javac").exists():
        pytest.fail(f"{JDK17} (openjdk-17-jdk-headless) is not installed: run scripts/setup",
                    pytrace=False)
    require_tool("dash")
    d = tmp_path_factory.mktemp("java-runtime")
    subprocess.run([str(JDK17 / "bin" / "javac"), "--release", "17", "-d", str(d),
                    str(JAVA_DIR / "LambdaRuntime.java")], check=True,
                   capture_output=True, stdin=subprocess.DEVNULL, timeout=300)
    ts = d / "truststore.p12"
    subprocess.run([str(JDK17 / "bin" / "keytool"), "-importcert", "-noprompt",
                    "-alias", "e2e-ca", "-file", servers["ca"], "-keystore", str(ts),
                    "-storetype", "PKCS12", "-storepass", "changeit"],
                   check=True, capture_output=True, stdin=subprocess.DEVNULL)

    def cmd(env, default, rt_env):
        wrapper = os.path.join(env.opt, "tapline", "wrapper.sh")
        return (["dash", wrapper, str(JDK17 / "bin" / "java"),
                 f"-Djavax.net.ssl.trustStore={ts}",
                 "-Djavax.net.ssl.trustStorePassword=changeit",
                 "-Djavax.net.ssl.trustStoreType=PKCS12",
                 "-cp", str(d), "LambdaRuntime"],
                dict(rt_env, E2E_PLANTED=TOKEN))
    return cmd


def test_java_function_https_calls_in_plaintext_per_invocation(build, servers, java_runtime,
                                                              tmp_path):
    env = Lambda(build, servers, str(tmp_path), runtime_cmd=java_runtime, timeout_ms=120000)
    out = []
    try:
        for i in range(3):
            rid, resp, _ = env.invoke({"n": i})
            assert resp[2] == "success", (resp, env.logs())
            out.append((i, rid, resp))
        env.shutdown()
        assert env.extension.wait(timeout=30) == 0, env.logs()
        spans, log = env.spans(), env.logs()
    finally:
        env.close()
    https = servers["https"]
    for i, rid, resp in out:
        assert json.loads(resp[4]) == {"n": i, "statuses": [200, 200]}, resp
        inv = [s for s in spans if s["kind"] == 2
               and s["attributes"].get("faas.invocation_id") == rid]
        assert len(inv) == 1, (rid, log)
        kids = [s for s in spans if s["parent_span_id"] == inv[0]["span_id"]]
        got = sorted((s["attributes"].get("tapline.tls"), s["attributes"].get("url.full", ""))
                     for s in kids)
        # exactly the two calls, in plaintext: no opaque twin of either connection
        assert got == sorted([("jsse", f"https://localhost:{https}/plain?n={i}&via=java-hc"),
                              ("jsse", f"https://localhost:{https}/secret?n={i}&via=java-huc")]), (
            got, log)
        for s in kids:
            a = s["attributes"]
            assert a["http.request.method"] == "GET", a
            assert a["http.response.status_code"] == 200, a
    assert not any("/2018-06-01/runtime/" in s["attributes"].get("url.full", "") for s in spans)
    assert TOKEN not in Path(env.otlp_out).read_text()
