"""Objects loaded with RTLD_DEEPBIND (issue 21).

What broke: PHP loads its extensions with `dlopen(..., RTLD_DEEPBIND)`, so `curl.so`'s
`libcurl.so.4` bound `connect`, `send`, `recv` and `SSL_write` inside its own scope,
straight to libc and libssl: `curl_exec` was invisible (no exchange, not even an opaque
connection). The library now rewrites such objects' GOT slots to its hooks, after every
`dlopen` and for the objects loaded before it.

- PHP (php-cli + php-curl from Debian): curl_exec over HTTP and HTTPS (plaintext through
  the OpenSSL hooks), curl_multi with 10 requests at once, file_get_contents over HTTP
  and HTTPS: every exchange once, the program's output the same as without tapline.
- A small C host dlopens a test library RTLD_DEEPBIND (lazy and -z now builds; RTLD_LAZY,
  RTLD_NOW, LD_BIND_NOW) twice, with a dlclose between: both rounds' requests captured.
- An object dlmopen'ed into a new namespace (its own libc) is left untouched and named
  once in a notice record.
"""
import subprocess

import pytest

from conftest import CLIENTS, HELLO_BODY, body_bytes, require_tool, spool_records


def php_exchanges(exs):
    return [e for e in exs if "php=" in (e.get("url") or "")]


def test_php_curl_and_streams_every_exchange_once(run_plain, run_traced, http_server,
                                                    _https_server_proc, ca_bundle):
    php = require_tool("php")
    https = f"https://localhost:{_https_server_proc.port}"
    # Debian's php.ini: every extension (curl among them) dlopened RTLD_DEEPBIND.
    cmd = [php, CLIENTS / "php_curl.php", http_server, https, ca_bundle]
    plain = run_plain(cmd)
    assert plain.returncode == 0, plain.stderr.decode(errors="replace")
    lines = plain.stdout.decode().splitlines()
    assert len(lines) == 14, lines
    assert all(line.split()[1] == "200" for line in lines), lines

    proc, exs = run_traced(cmd)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert proc.stdout == plain.stdout

    # No opaque twin of a TLS socket whose plaintext was seen, nothing else either.
    assert [e["tls"] for e in exs if e["tls"] == "opaque"] == [], [e["url"] for e in exs]
    assert len(exs) == 14, [e["url"] for e in exs]
    exs = php_exchanges(exs)
    by_query = {}
    for e in exs:
        by_query.setdefault(e["url"].split("php=", 1)[1], []).append(e)
    expected = (["curl_exec", "curl_exec_tls", "fgc", "fgc_tls"]
                + [f"multi{i}" for i in range(10)])
    assert sorted(by_query) == sorted(expected), [e["url"] for e in exs]
    for query, found in by_query.items():
        assert len(found) == 1, (query, [(e["url"], e["tls"]) for e in found])
        e = found[0]
        assert e["status"] == 200, e
        assert e["error"] is None, e
        tls = query.endswith("_tls")
        assert e["scheme"] == ("https" if tls else "http"), e["url"]
        assert e["tls"] == ("openssl" if tls else "none"), (e["url"], e["tls"])
    for query in ("curl_exec", "curl_exec_tls", "fgc", "fgc_tls"):
        assert body_bytes(by_query[query][0], "response") == HELLO_BODY
    for i in range(10):
        assert by_query[f"multi{i}"][0]["response_body_size"] == 1000 + i


@pytest.fixture(scope="module")
def deep_libs(tmp_path_factory):
    """The test library built lazily bound (-z lazy) and bound at load (-z now)."""
    require_tool("gcc")
    out = tmp_path_factory.mktemp("deepbind")
    libs = {}
    for binding in ("lazy", "now"):
        lib = out / f"libdeep_{binding}.so"
        subprocess.run(["gcc", "-O1", "-Wall", "-Werror", "-shared", "-fPIC",
                        f"-Wl,-z,{binding}", "-o", str(lib), str(CLIENTS / "deepbind_lib.c")],
                       check=True, stdin=subprocess.DEVNULL)
        libs[binding] = lib
    return libs


@pytest.mark.parametrize("binding,mode,bind_now", [
    ("lazy", "lazy", False),
    ("lazy", "now", False),
    ("now", "lazy", False),
    ("lazy", "lazy", True),
])
def test_c_host_deepbind_dlopen_dlclose_dlopen(binding, mode, bind_now, deep_libs,
                                               c_programs, run_plain, run_traced, http_port):
    host = c_programs("deepbind_host")
    cmd = [host, deep_libs[binding], http_port, mode, 2]
    env = {"LD_BIND_NOW": "1"} if bind_now else None
    plain = run_plain(cmd, env=env)
    assert plain.returncode == 0, plain.stderr.decode(errors="replace")
    assert plain.stdout.decode().count("200 OK") == 2, plain.stdout

    proc, exs = run_traced(cmd, env=env)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert proc.stdout == plain.stdout
    urls = sorted(e["url"] for e in exs)
    assert urls == [f"http://127.0.0.1:{http_port}/hello?round={r}&mode={mode}"
                    for r in (1, 2)], urls
    for e in exs:
        assert e["status"] == 200 and e["error"] is None, e
        assert body_bytes(e, "response") == HELLO_BODY


def test_dlmopen_new_namespace_is_left_alone_and_said_once(deep_libs, c_programs, run_plain,
                                                          run_preloaded, tapline_bin,
                                                          http_port, tmp_path):
    """An object dlmopen'ed into a new namespace binds to that namespace's own libc,
    which no hook of ours calls: it is left untouched, the program runs as without the
    library, and one notice (kind object_untouched) names it."""
    host = c_programs("deepbind_host")
    lib = deep_libs["now"]
    cmd = [host, lib, http_port, "newns", 2]
    plain = run_plain(cmd)
    assert plain.returncode == 0, plain.stderr.decode(errors="replace")
    spool = tmp_path / "spool"
    proc = run_preloaded(cmd, env={"TAPLINE_SPOOL_DIR": str(spool)})
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert proc.stdout == plain.stdout
    notices = spool_records(tapline_bin, spool, "notice")
    assert [(n["kind"], n["program"]) for n in notices] == [("object_untouched", str(lib))]


CALLER_LIB = r"""
#include <dlfcn.h>
#include <stdio.h>
/* Opens a library by bare name: glibc searches this object's RUNPATH ($ORIGIN/sub). */
int open_by_bare_name(void) {
    void *h = dlopen("libtarget.so", RTLD_NOW);
    if (!h) { printf("dlopen failed: %s\n", dlerror()); return 1; }
    int (*f)(void) = (int (*)(void))dlsym(h, "target_value");
    printf("target_value %d\n", f ? f() : -1);
    return 0;
}
"""

CALLER_HOST = r"""
#include <dlfcn.h>
#include <stdio.h>
int main(int argc, char **argv) {
    void *h = dlopen(argv[1], RTLD_NOW);
    if (!h) { printf("host: %s\n", dlerror()); return 2; }
    int (*f)(void) = (int (*)(void))dlsym(h, "open_by_bare_name");
    return f();
}
"""


def test_a_bare_name_is_searched_with_the_callers_runpath(run_plain, run_preloaded, tmp_path):
    """glibc searches a bare name with the calling object's RUNPATH: the dlopen hook must
    not become that caller (it jumps to the real dlopen for such names)."""
    gcc = require_tool("gcc")
    sub = tmp_path / "sub"
    sub.mkdir()
    (tmp_path / "target.c").write_text("int target_value(void) { return 42; }\n")
    (tmp_path / "caller.c").write_text(CALLER_LIB)
    (tmp_path / "host.c").write_text(CALLER_HOST)
    subprocess.run([gcc, "-shared", "-fPIC", "-o", str(sub / "libtarget.so"),
                    str(tmp_path / "target.c")], check=True, stdin=subprocess.DEVNULL)
    subprocess.run([gcc, "-shared", "-fPIC", "-Wl,--enable-new-dtags", "-Wl,-rpath,$ORIGIN/sub",
                    "-o", str(tmp_path / "libcaller.so"), str(tmp_path / "caller.c"), "-ldl"],
                   check=True, stdin=subprocess.DEVNULL)
    subprocess.run([gcc, "-o", str(tmp_path / "host"), str(tmp_path / "host.c"), "-ldl"],
                   check=True, stdin=subprocess.DEVNULL)
    cmd = [tmp_path / "host", tmp_path / "libcaller.so"]
    plain = run_plain(cmd)
    assert plain.returncode == 0 and plain.stdout == b"target_value 42\n", plain
    pre = run_preloaded(cmd)
    assert (pre.returncode, pre.stdout) == (plain.returncode, plain.stdout), pre
