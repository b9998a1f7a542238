"""arm64: the layer as built, and the arm64 library in arm64 programs under qemu-user.

Run by the arm64 stage of scripts/test (`python3 -m pytest tests/arm64`). The programs
are aarch64 code emulated on this machine; their calls reach the servers of
tests/conftest.py on 127.0.0.1 as host system calls. Spools are read by the x86_64
`tapline show` (and once by the arm64 one, which must agree).
"""

import collections
import json
import struct
import subprocess
import zipfile

from conftest import (HELLO_BODY, assert_panic_caught, body_bytes, clean_env, header, pattern,
                      require_tool, spool_records)
from arm64_env import *  # noqa: F401,F403  (fixtures)
from arm64_env import ARM64, show_json

EM_X86_64, EM_AARCH64 = 62, 183


def elf_machine(data):
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1, data[:8]
    return struct.unpack_from("<H", data, 18)[0]


def test_both_layer_zips_hold_the_same_layout_of_their_architecture(layers):
    for arch, machine in (("x86_64", EM_X86_64), ("arm64", EM_AARCH64)):
        path = layers[arch].parent / f"tapline-layer-{arch}.zip"
        with zipfile.ZipFile(path) as z:
            names = sorted(n for n in z.namelist() if not n.endswith("/"))
            assert names == ["extensions/tapline", "tapline/libtapline.so",
                             "tapline/wrapper.sh"], (arch, names)
            for name in names:
                mode = z.getinfo(name).external_attr >> 16
                assert mode & 0o111, (arch, name, oct(mode))
            for name in ("extensions/tapline", "tapline/libtapline.so"):
                assert elf_machine(z.read(name)) == machine, (arch, name)
            assert z.read("tapline/wrapper.sh").startswith(b"#!/bin/sh")


def hello_counts(exchanges):
    """{query: count} of the GET /hello exchanges."""
    return collections.Counter(e["url"].split("?", 1)[1] for e in exchanges
                               if e["path"] == "/hello" and "?" in e["url"])


def test_c_keepalive_200_requests_over_4_threads_and_a_forked_child_exactly_once(
        arm64, arm64_cc, http_port, tapline_bin):
    exe = arm64_cc("keepalive_threads_fork")
    proc, spool = arm64.run([exe, http_port, 4, 50])
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    out = proc.stdout.decode()
    assert "ok child 1" in out and "ok parent 201" in out, out
    exchanges = show_json(tapline_bin, spool)
    counts = hello_counts(exchanges)
    want = {f"t={t}&i={i}" for t in range(4) for i in range(50)} | {"child=1", "parent=1"}
    assert set(counts) == want, sorted(set(counts) ^ want)[:10]
    assert all(c == 1 for c in counts.values()), [q for q, c in counts.items() if c != 1]
    for e in exchanges:
        assert e["status"] == 200 and e["error"] is None and e["tls"] == "none", e
        assert body_bytes(e, "response") == HELLO_BODY
        assert header(e["request_headers"], "User-Agent") == "arm64-c"
    # Four keep-alive connections of 50 requests each, then one per process.
    per_conn = collections.Counter(e["conn_id"] for e in exchanges)
    assert sorted(per_conn.values()) == [1, 1, 50, 50, 50, 50], per_conn
    by_query = {e["url"].split("?", 1)[1]: e for e in exchanges}
    parent_pid = by_query["parent=1"]["pid"]
    assert by_query["child=1"]["pid"] != parent_pid
    assert all(by_query[f"t={t}&i=0"]["pid"] == parent_pid for t in range(4))


def test_c_https_through_arm64_libssl3_is_plaintext_once_with_a_forked_child(
        arm64, arm64_cc, https_server, ca_bundle, tapline_bin):
    port = https_server.rsplit(":", 1)[1]
    exe = arm64_cc("tls_keepalive", "-lssl", "-lcrypto")
    proc, spool = arm64.run([exe, port, ca_bundle, 20])
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert "ok child 1" in proc.stdout.decode() and "ok parent 20" in proc.stdout.decode()
    exchanges = show_json(tapline_bin, spool)
    counts = hello_counts(exchanges)
    want = {f"tls={i}" for i in range(20)} | {"tls-child=1"}
    assert set(counts) == want and all(c == 1 for c in counts.values()), counts
    for e in exchanges:
        assert e["scheme"] == "https" and e["tls"] == "openssl", e
        assert e["sni"] == "localhost" and e["status"] == 200, e
        assert header(e["request_headers"], "User-Agent") == "arm64-c-tls"
        assert header(e["response_headers"], "X-Test-Server") == "tapline-tests"
        assert body_bytes(e, "response") == HELLO_BODY
    by_query = {e["url"].split("?", 1)[1]: e for e in exchanges}
    assert by_query["tls-child=1"]["pid"] != by_query["tls=0"]["pid"]
    assert len({by_query[f"tls={i}"]["conn_id"] for i in range(20)}) == 1


def test_debian_arm64_curl_https_is_plaintext(arm64, arm64_sysroot, https_server, ca_bundle,
                                              tapline_bin):
    curl = arm64_sysroot / "usr" / "bin" / "curl"
    proc, spool = arm64.run([curl, "-sS", "--cacert", ca_bundle,
                             f"{https_server}/hello?arm64-curl=1"], sysroot=arm64_sysroot)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert proc.stdout == HELLO_BODY
    (e,) = show_json(tapline_bin, spool)
    assert e["url"] == f"{https_server}/hello?arm64-curl=1"
    assert e["tls"] == "openssl" and e["status"] == 200
    assert header(e["request_headers"], "User-Agent").startswith("curl/")
    assert body_bytes(e, "response") == HELLO_BODY


PY_URLLIB = """
import ssl, sys, urllib.request
ctx = ssl.create_default_context(cafile=sys.argv[2])
for i in range(3):
    req = urllib.request.Request(f"{sys.argv[1]}/hello?arm64-py={i}",
                                 headers={"Authorization": "Bearer arm64SECRETtoken42"})
    with urllib.request.urlopen(req, context=ctx, timeout=60) as r:
        assert r.read() == b"hello, tapline\\n"
with urllib.request.urlopen(f"{sys.argv[1]}/bytes/100000", context=ctx, timeout=60) as r:
    assert len(r.read()) == 100000
print(ssl.OPENSSL_VERSION)
"""


def test_debian_arm64_python_urllib_https_is_plaintext_and_masked(
        arm64, arm64_sysroot, https_server, ca_bundle, tapline_bin):
    python = arm64_sysroot / "usr" / "bin" / "python3.11"
    # A 64 KiB body prefix: large parts go into the fresh segment with `stnp` (the
    # non-temporal copy), and must arrive byte for byte.
    proc, spool = arm64.run([python, "-c", PY_URLLIB, https_server, ca_bundle],
                            sysroot=arm64_sysroot,
                            env={"PYTHONNOUSERSITE": "1", "TAPLINE_MAX_BODY": "65536"})
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert proc.stdout.startswith(b"OpenSSL 3.")
    exchanges = show_json(tapline_bin, spool)
    (big,) = [e for e in exchanges if e["path"] == "/bytes/100000"]
    assert big["response_body_size"] == 100000
    body = {r["offset"]: r["bytes"].encode() for r in spool_records(tapline_bin, spool)
            if r["type"] in ("data", "data_end") and r["conn_id"] == big["conn_id"]
            and r["dir"] == "ingress" and r["part"] == "body"}
    assert max(map(len, body.values())) >= 4096  # a part the library streams
    assert b"".join(body[k] for k in sorted(body)) == pattern(65536)
    exchanges = [e for e in exchanges if e is not big]
    assert sorted(hello_counts(exchanges).items()) == [(f"arm64-py={i}", 1) for i in range(3)]
    for e in exchanges:
        assert e["tls"] == "openssl" and e["status"] == 200
        assert header(e["request_headers"], "Authorization") in ("****", "Bearer ****")
        assert body_bytes(e, "response") == HELLO_BODY
    assert b"arm64SECRETtoken42" not in json.dumps(exchanges).encode()


def test_arm64_reader_reads_an_arm64_spool_as_the_x86_64_one_does(
        arm64, arm64_cc, arm64_tapline, qemu, http_port, tapline_bin):
    exe = arm64_cc("keepalive_threads_fork")
    proc, spool = arm64.run([exe, http_port, 2, 5])
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    x86 = show_json(tapline_bin, spool)
    arm = show_json(arm64_tapline, spool, runner=[qemu])
    assert len(x86) == 2 * 5 + 2
    assert arm == x86


def test_arm64_library_leaves_no_trace_with_tapline_disabled(arm64, arm64_cc, http_port):
    exe = arm64_cc("keepalive_threads_fork")
    proc, spool = arm64.run([exe, http_port, 2, 3], env={"TAPLINE_DISABLE": "1"})
    assert proc.returncode == 0 and b"ok parent 7" in proc.stdout, proc.stderr
    assert not spool.exists() or not any(spool.iterdir())


def test_both_layers_libraries_catch_a_panic_in_capture(layers, arm64, arm64_cc, http_port,
                                                        tapline_bin, tmp_path):
    """The libraries as shipped (profile `layer`) unwind a panic to `hooks::after`'s catch:
    with `panic = "abort"` the host would die here."""
    gcc = require_tool("gcc")
    exe = tmp_path / "panic_in_capture"
    subprocess.run([gcc, "-O1", "-Wall", "-Werror", "-o", str(exe),
                    str(ARM64.parent / "clients" / "panic_in_capture.c")],
                   check=True, stdin=subprocess.DEVNULL)
    spool = tmp_path / "spool-x86_64"
    env = clean_env({"TAPLINE_SPOOL_DIR": str(spool),
                     "LD_PRELOAD": str(layers["x86_64"] / "tapline" / "libtapline.so")})
    proc = subprocess.run([str(exe), str(http_port)], env=env, capture_output=True, timeout=60,
                          stdin=subprocess.DEVNULL)
    assert_panic_caught(proc, spool, tapline_bin)
    proc, spool = arm64.run([arm64_cc("panic_in_capture"), http_port])
    assert_panic_caught(proc, spool, tapline_bin)
