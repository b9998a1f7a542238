"""Two libssl copies in one process, both loaded RTLD_LOCAL.

What broke (in design, before it could ship): our exported SSL_write receives the calls
of every libssl copy whose callers bind through the global scope. Forwarding them all to
the first libssl found hands one copy's sessions to the other. The test program loads a
real OpenSSL client and a second, fake "libssl" (its own session type, which the real
OpenSSL rejects): both must keep working, and both must be captured as TLS plaintext.
"""
import subprocess
from pathlib import Path

from conftest import require_tool

HERE = Path(__file__).parent


def build(tmp_path):
    require_tool("cc")
    out = tmp_path / "two_libssl"
    subprocess.run(["sh", str(HERE / "clients" / "two_libssl" / "build.sh"), str(out)], check=True)
    return out


def test_each_call_reaches_the_libssl_its_caller_links(tmp_path, run_plain, run_traced,
                                                       https_server, http_port, ca_bundle):
    out = build(tmp_path)
    https_port = https_server.rsplit(":", 1)[1]
    cmd = [out / "two_libssl", out, https_port, http_port, ca_bundle]
    plain = run_plain(cmd)
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.decode().splitlines() == ["openssl: 1 200", "fakessl: 1 200"]

    proc, exs = run_traced(cmd)
    assert proc.returncode == plain.returncode
    assert proc.stdout == plain.stdout
    real = [e for e in exs if "from=openssl" in (e["url"] or "")]
    assert len(real) == 1, exs
    assert (real[0]["tls"], real[0]["status"], real[0]["sni"]) == ("openssl", 200, "localhost")
    # The fake library sends its "TLS" plaintext over the socket, so the socket shows it
    # too; what matters is that its own SSL_write/SSL_read calls were seen, as plaintext.
    fake = [e for e in exs if "from=fakessl" in (e["url"] or "") and e["tls"] == "openssl"]
    assert len(fake) == 1, exs
    assert fake[0]["status"] == 200
