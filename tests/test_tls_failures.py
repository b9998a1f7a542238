"""Failed TLS handshakes are one exchange each, whose `error` says why (`tls: ...`):

- the library's own reason where tapline hooks it: OpenSSL's verify result and error
  string (curl, Python, node's built-in OpenSSL, which checks after the handshake),
  GnuTLS's `gnutls_strerror` or its verify status (wget);
- the alert read from the wire for TLS tapline cannot read (Java's JSSE): sent by the
  client that did not trust the server, or by a server that rejects the client; in TLS
  1.3 a client's alert is encrypted, and only said to be one.

All servers listen on 127.0.0.1 (tests/servers/http_server.py with the session's test
CA, which no client here is told to trust unless the test says so). Each program's output
and exit status are the same with and without tapline.
"""
import json
import subprocess
import sys

import pytest

from conftest import SERVERS, CLIENTS, ServerProcess, clean_env, require_tool

UNTRUSTED_OPENSSL = "tls: certificate verify failed: unable to get local issuer certificate"


def server(test_ca, *args):
    return ServerProcess([sys.executable, str(SERVERS / "http_server.py"),
                          "--cert", str(test_ca / "server.pem"),
                          "--key", str(test_ca / "server.key"), *map(str, args)],
                         "TLS server " + " ".join(map(str, args)))


@pytest.fixture(scope="module")
def untrusted(_https_server_proc):
    """URL of an HTTPS server whose certificate no client here trusts (TLS 1.3)."""
    return f"https://localhost:{_https_server_proc.port}/hello"


@pytest.fixture(scope="module")
def untrusted_tls12(test_ca):
    """The same, offering TLS 1.2 at most (the client's alert is plaintext)."""
    srv = server(test_ca, "--tls-max", "1.2")
    yield f"https://localhost:{srv.port}/hello"
    srv.stop()


@pytest.fixture(scope="module")
def tls13_only(test_ca):
    """A server that accepts TLS 1.3 only: a TLS 1.2 client is rejected."""
    srv = server(test_ca, "--tls-min", "1.3")
    yield f"https://localhost:{srv.port}/hello"
    srv.stop()


@pytest.fixture(scope="module")
def client_cert_tls12(test_ca):
    """A TLS 1.2 server that rejects clients without a certificate."""
    srv = server(test_ca, "--tls-max", "1.2", "--require-client-cert", test_ca / "ca.pem")
    yield f"https://localhost:{srv.port}/hello"
    srv.stop()


@pytest.fixture(scope="module")
def java_client(tmp_path_factory):
    """Directory holding JavaHttpsFail.class (javac once for the module)."""
    require_tool("javac")
    require_tool("java")
    d = tmp_path_factory.mktemp("java")
    subprocess.run(["javac", "-d", str(d), str(CLIENTS / "JavaHttpsFail.java")], check=True,
                   timeout=180)
    return d


@pytest.fixture(scope="module")
def java_truststore(test_ca, tmp_path_factory):
    """A PKCS#12 truststore holding the test CA (for the servers that reject Java)."""
    require_tool("keytool")
    store = tmp_path_factory.mktemp("truststore") / "ca.p12"
    subprocess.run(["keytool", "-importcert", "-noprompt", "-alias", "tapline-test-ca",
                    "-file", str(test_ca / "ca.pem"), "-keystore", str(store),
                    "-storetype", "PKCS12", "-storepass", "changeit"],
                   check=True, capture_output=True, timeout=120)
    return ["-Djavax.net.ssl.trustStore=" + str(store),
            "-Djavax.net.ssl.trustStorePassword=changeit"]


def one_failure(run_traced, run_plain, cmd, expected_error, timeout=60):
    """Runs `cmd` traced and plain; the traced run shows exactly one exchange, with
    `expected_error`; the program's output and exit status are those of the plain run."""
    proc, lines = run_traced(cmd, timeout=timeout)
    plain = run_plain(cmd, timeout=timeout)
    assert proc.returncode == plain.returncode, (proc.stderr, plain.stderr)
    assert proc.returncode != 0
    assert proc.stdout == plain.stdout
    assert len(lines) == 1, lines
    x = lines[0]
    assert x["error"] == expected_error, x
    assert x["status"] is None
    assert x["scheme"] == "https"
    assert x["peer"] in (f"127.0.0.1:{x['port']}", f"[::ffff:127.0.0.1]:{x['port']}"), x
    return x


PY_URLOPEN = ("import ssl, sys, urllib.request\n"
              "ctx = ssl.create_default_context(cafile=sys.argv[2] if len(sys.argv) > 2 else None)\n"
              "try:\n    urllib.request.urlopen(sys.argv[1], context=ctx, timeout=30).read()\n"
              "except Exception as e:\n    print(type(e).__name__)\n    sys.exit(3)\n")
NODE_GET = ("require('https').get(process.argv[1], r => r.resume())"
            ".on('error', e => { console.log(e.code); process.exitCode = 3 })")


# --- a server the client does not trust ------------------------------------------------

def test_curl_untrusted(run_traced, run_plain, untrusted):
    x = one_failure(run_traced, run_plain, ["curl", "-s", untrusted], UNTRUSTED_OPENSSL)
    assert x["method"] is None and x["tls"] == "opaque"
    assert x["host"] == "localhost" and x["sni"] == "localhost"
    # The handshake's bytes are the exchange's (curl exits 60 after the server's flight).
    assert x["request_body_size"] > 0 and x["response_body_size"] > 0


def test_python_urllib_untrusted(run_traced, run_plain, untrusted):
    x = one_failure(run_traced, run_plain, ["python3", "-c", PY_URLOPEN, untrusted],
                    UNTRUSTED_OPENSSL)
    assert x["host"] == "localhost"


def test_python_requests_untrusted(run_traced, run_plain, untrusted):
    cmd = ["python3", "-c",
           "import sys, requests\n"
           "try:\n    requests.get(sys.argv[1], timeout=30)\n"
           "except requests.exceptions.SSLError:\n    print('SSLError')\n    sys.exit(3)\n",
           untrusted]
    one_failure(run_traced, run_plain, cmd, UNTRUSTED_OPENSSL)


def test_wget_gnutls_untrusted(run_traced, run_plain, untrusted):
    require_tool("wget")
    libs = subprocess.run(["ldd", "/usr/bin/wget"], capture_output=True, text=True).stdout
    assert "libgnutls" in libs, "Debian's wget is GnuTLS-linked; this one is not:\n" + libs
    x = one_failure(run_traced, run_plain, ["wget", "-q", "-O", "-", untrusted],
                    "tls: certificate verify failed: the certificate issuer is unknown")
    assert x["method"] is None


def test_node_untrusted_is_one_exchange(run_traced, run_plain, untrusted):
    """node checks the certificate after OpenSSL's handshake, and hands the request to
    SSL_write while it tears the connection down, after the socket closed: one exchange
    (the request, the socket's peer, the reason), not an opaque socket and a request."""
    require_tool("node")
    x = one_failure(run_traced, run_plain, ["node", "-e", NODE_GET, untrusted],
                    "tls: certificate verify failed: unable to verify the first certificate")
    assert x["method"] == "GET" and x["path"] == "/hello"
    assert x["tls"] == "openssl"


def test_java_untrusted_tls12_alert_from_the_wire(run_traced, run_plain, untrusted_tls12,
                                                  java_client):
    """JSSE is opaque to tapline: the alert it sends is read off the wire."""
    cmd = ["java", "-cp", java_client, "JavaHttpsFail", untrusted_tls12]
    x = one_failure(run_traced, run_plain, cmd, "tls: alert certificate_unknown from the client",
                    timeout=120)
    assert x["tls"] == "opaque"


def test_java_untrusted_tls13_encrypted_alert(run_traced, run_plain, untrusted, java_client):
    """In TLS 1.3 the client's alert is encrypted: which one cannot be read, that one was
    sent can."""
    cmd = ["java", "-cp", java_client, "JavaHttpsFail", untrusted]
    one_failure(run_traced, run_plain, cmd, "tls: alert (encrypted) from the client",
                timeout=120)


def test_trusted_or_unchecked_is_no_failure(run_traced, untrusted, ca_bundle):
    """A verify result is only a failure for a call that got no answer: `curl -k`,
    wget --no-check-certificate and a client given the CA succeed without an error."""
    for cmd in (["curl", "-sk", "-o", "/dev/null", untrusted],
                ["wget", "-q", "-O", "/dev/null", "--no-check-certificate", untrusted],
                ["python3", "-c", PY_URLOPEN, untrusted, ca_bundle]):
        proc, lines = run_traced(cmd)
        assert proc.returncode == 0, (cmd, proc.stderr)
        assert [(x["status"], x["error"]) for x in lines] == [(200, None)], (cmd, lines)


# --- a server that rejects the client --------------------------------------------------

def test_curl_no_shared_version(run_traced, run_plain, tls13_only, ca_bundle):
    cmd = ["curl", "-s", "--cacert", ca_bundle, "--tls-max", "1.2", tls13_only]
    one_failure(run_traced, run_plain, cmd, "tls: tlsv1 alert protocol version")


def test_java_no_shared_version_alert_from_the_server(run_traced, run_plain, tls13_only,
                                                      java_client, java_truststore):
    cmd = ["java", "-Djdk.tls.client.protocols=TLSv1.2", *java_truststore,
           "-cp", java_client, "JavaHttpsFail", tls13_only]
    one_failure(run_traced, run_plain, cmd, "tls: alert protocol_version from the server",
                timeout=120)


def test_client_certificate_required_tls12(run_traced, run_plain, client_cert_tls12,
                                           ca_bundle):
    one_failure(run_traced, run_plain, ["curl", "-s", "--cacert", ca_bundle, client_cert_tls12],
                "tls: sslv3 alert handshake failure")
    one_failure(run_traced, run_plain,
                ["wget", "-q", "-O", "-", "--ca-certificate", ca_bundle, client_cert_tls12],
                "tls: A TLS fatal alert has been received. (Handshake failed)")
    # (TLS 1.3 is left out: the server's alert comes after the client's Finished and
    # request, and the server closes with that request unread, so the client may meet
    # a reset before the alert — a race, not a reason tapline could always give.)


# --- every format ----------------------------------------------------------------------

def test_tls_failure_in_every_format(run_traced, untrusted, otlp_receiver, tapline_bin,
                                     tmp_path):
    cmd = ["curl", "-s", untrusted]
    _, table = run_traced(cmd, fmt="table")
    assert f"error: {UNTRUSTED_OPENSSL}" in table, table
    _, har = run_traced(cmd, fmt="har")
    entries = json.loads(har)["log"]["entries"]
    assert [e["_error"] for e in entries] == [UNTRUSTED_OPENSSL]
    _, html = run_traced(cmd, fmt="html")
    assert UNTRUSTED_OPENSSL in html
    rcv = otlp_receiver()
    report = tmp_path / "otlp-report.json"
    spool = tmp_path / "otlp-spool"
    spool.mkdir()
    proc = subprocess.run([tapline_bin, "run", "--format", "json", "--output", str(report),
                           "--otlp", rcv.endpoint, "--", *cmd],
                          env=clean_env({"TAPLINE_SPOOL_DIR": str(spool)}),
                          capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 60, proc.stderr
    spans = rcv.spans()
    assert len(spans) == 1, spans
    assert spans[0]["status"]["code"] == 2  # STATUS_CODE_ERROR
    assert UNTRUSTED_OPENSSL in spans[0]["status"]["message"], spans[0]["status"]
