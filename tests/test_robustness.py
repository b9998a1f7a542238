"""The library must never change what the host program does: same return values and
errno from every hooked call, same output and exit status when the spool directory is
unusable, nothing captured with TAPLINE_DISABLE=1; and `tapline run` passes the command's
exit status (or 128+signal) through."""

import subprocess
import sys

import pytest

from conftest import CLIENTS, assert_panic_caught, require_tool


def test_errno_check_identical_with_and_without_library(c_programs, run_plain,
                                                        run_preloaded, tmp_path):
    exe = c_programs("errno_check")
    plain = run_plain([exe])
    traced = run_preloaded([exe], env={"TAPLINE_SPOOL_DIR": str(tmp_path / "spool")})
    assert plain.returncode == 0, plain.stderr
    assert b"libtapline mapped: no" in plain.stderr
    assert b"libtapline mapped: yes" in traced.stderr, traced.stderr
    assert traced.returncode == plain.returncode
    assert traced.stdout.decode().splitlines() == plain.stdout.decode().splitlines()
    assert len(plain.stdout.splitlines()) > 50


def test_errno_check_identical_under_tapline_run(c_programs, run_plain, run_traced):
    exe = c_programs("errno_check")
    plain = run_plain([exe])
    proc, exs = run_traced([exe])
    assert b"libtapline mapped: yes" in proc.stderr, proc.stderr
    assert proc.returncode == plain.returncode == 0
    assert proc.stdout.decode().splitlines() == plain.stdout.decode().splitlines()
    # Nothing in it is HTTP; its one refused connect (step 7) is shown as a failed call.
    assert [x["error"].split(": ")[0] for x in exs] == ["connect"], exs
    assert exs[0]["error"].endswith(": connection refused")
    assert exs[0]["method"] is None


def _bad_spool_dirs(tmp_path):
    a_file = tmp_path / "a-regular-file"
    a_file.write_text("not a directory\n")
    return {
        "missing-parent": str(tmp_path / "does" / "not" / "exist" / "spool"),
        "under-proc": "/proc/tapline-cannot-create-here/spool",
        "read-only-dir": "/proc/sys",
        "parent-is-a-file": str(a_file / "spool"),
        "is-a-file": str(a_file),
    }


BAD_SPOOLS = ["missing-parent", "under-proc", "read-only-dir", "parent-is-a-file", "is-a-file"]


@pytest.mark.parametrize("kind", BAD_SPOOLS)
def test_unusable_spool_dir_python_client_unchanged(kind, tmp_path, http_server, run_plain,
                                                   run_preloaded):
    spool = _bad_spool_dirs(tmp_path)[kind]
    cmd = [sys.executable, CLIENTS / "py_urllib_get.py", http_server, "7"]
    plain = run_plain(cmd, env={"REPORT_PRELOAD": "1"})
    pre = run_preloaded(cmd, env={"REPORT_PRELOAD": "1", "TAPLINE_SPOOL_DIR": spool})
    assert plain.returncode == 7, plain.stderr
    assert b"libtapline mapped: False" in plain.stderr
    assert b"libtapline mapped: True" in pre.stderr, pre.stderr
    assert pre.returncode == plain.returncode
    assert pre.stdout == plain.stdout
    assert b"GET 200 from=urllib hello, tapline" in pre.stdout
    if kind == "is-a-file":
        assert (tmp_path / "a-regular-file").read_text() == "not a directory\n"


@pytest.mark.parametrize("kind", BAD_SPOOLS)
def test_unusable_spool_dir_curl_unchanged(kind, tmp_path, http_server, run_plain,
                                          run_preloaded):
    require_tool("curl")
    spool = _bad_spool_dirs(tmp_path)[kind]
    cmd = ["curl", "-sS", f"{http_server}/bytes/20000", f"{http_server}/chunked/3000",
           f"{http_server}/status/404", "-w", "%{http_code}\n"]
    plain = run_plain(cmd)
    pre = run_preloaded(cmd, env={"TAPLINE_SPOOL_DIR": spool})
    assert plain.returncode == 0, plain.stderr
    assert pre.returncode == plain.returncode
    assert pre.stdout == plain.stdout


def test_library_writes_spool_when_dir_is_usable(tmp_path, http_server, run_preloaded):
    """Control for the unusable-spool tests: the same run with a good dir leaves records."""
    spool = tmp_path / "spool"
    spool.mkdir()
    pre = run_preloaded([sys.executable, CLIENTS / "py_urllib_get.py", http_server],
                        env={"TAPLINE_SPOOL_DIR": str(spool)})
    assert pre.returncode == 0, pre.stderr
    files = [p for p in spool.rglob("*") if p.is_file()]
    assert files and sum(p.stat().st_size for p in files) > 0


def test_disable_captures_nothing_and_changes_nothing(run_traced, run_plain, http_server):
    cmd = [sys.executable, CLIENTS / "py_urllib_get.py", http_server, "5"]
    plain = run_plain(cmd)
    proc, exs = run_traced(cmd, env={"TAPLINE_DISABLE": "1"})
    assert plain.returncode == 5
    assert proc.returncode == plain.returncode
    assert proc.stdout == plain.stdout
    assert exs == []
    # control: the same command without TAPLINE_DISABLE is captured
    proc2, exs2 = run_traced(cmd)
    assert proc2.returncode == 5
    assert len(exs2) == 3


def test_tapline_run_passes_exit_status(run_traced):
    proc, exs = run_traced(["sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 3"])
    assert proc.returncode == 3
    assert proc.stdout == b"to-stdout\n"
    assert b"to-stderr" in proc.stderr
    assert exs == []


def test_tapline_run_reports_signal_death_as_128_plus_n(run_traced):
    proc, _ = run_traced(["sh", "-c", "kill -TERM $$"])
    assert proc.returncode == 143


def test_tapline_run_keeps_existing_ld_preload(run_traced, tmp_path, http_server):
    """tapline prepends itself to LD_PRELOAD; a library the user preloads still loads
    into the command (not only into tapline itself)."""
    require_tool("gcc")
    require_tool("curl")
    src = tmp_path / "marker.c"
    src.write_text('#define _GNU_SOURCE\n#include <errno.h>\n#include <stdio.h>\n'
                   '__attribute__((constructor)) static void m(void)'
                   '{ fprintf(stderr, "user-preload-in-%s\\n", program_invocation_short_name); }\n')
    so = tmp_path / "libmarker.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(so), str(src)], check=True)
    proc, exs = run_traced(["curl", "-sS", f"{http_server}/hello?from=ldpreload"],
                           env={"LD_PRELOAD": str(so)})
    assert proc.returncode == 0, proc.stderr
    assert b"user-preload-in-curl" in proc.stderr, proc.stderr
    assert len([e for e in exs if "from=ldpreload" in (e.get("url") or "")]) == 1


def test_panic_in_capture_is_caught_silent_and_counted(c_programs, run_preloaded, tmp_path,
                                                      http_port, tapline_bin):
    """A bug in capture that panics: the host's call returns, its stderr hears nothing,
    the loss is counted (a Drops record), and capture goes on for its next request."""
    exe = c_programs("panic_in_capture")
    spool = tmp_path / "spool"
    proc = run_preloaded([exe, http_port], env={"TAPLINE_SPOOL_DIR": str(spool)})
    assert_panic_caught(proc, spool, tapline_bin)
