"""HTTP calls cut short say why, with the counts (docs/spec.md, "Calls cut short"):
an early answer to an upload (413 before the body is read) paired with its request,
a client killed mid-response (no exit handler ran: the reader finishes the exchange
from the records), a server that resets or closes mid-body, a client that gives up
before any response. Every run's output and exit status are those of a run without
tapline; every `error` is checked whole.
"""
import json
import re
import sys

import pytest

from conftest import SERVERS, ServerProcess, require_module, require_tool

MIB = 1024 * 1024
SLOW_LENGTH = 64 * MIB


@pytest.fixture(scope="module")
def server():
    srv = ServerProcess([sys.executable, str(SERVERS / "misbehaving_server.py")],
                        "misbehaving server")
    yield f"http://127.0.0.1:{srv.port}"
    srv.stop()


def curl(*args):
    require_tool("curl")
    return ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}\\n", *args]


def py_requests(code):
    require_module("requests")
    return [sys.executable, "-c", "import requests, sys\n" + code]


def same_as_plain(run_traced, run_plain, cmd, fmt="json"):
    proc, report = run_traced(cmd, fmt=fmt)
    plain = run_plain(cmd)
    assert proc.returncode == plain.returncode, (proc.stderr, plain.stderr)
    assert proc.stdout == plain.stdout
    return proc, report


def the_exchange(exchanges, path):
    found = [x for x in exchanges if x.get("path") == path]
    assert len(found) == 1, exchanges
    return found[0]


# --- an early answer: 413 before the upload is read ----------------------------------

def upload_clients(path_, size, tmp_path):
    body = tmp_path / "upload.bin"
    body.write_bytes(b"u" * size)
    return {
        "curl": lambda url: curl("--data-binary", f"@{body}", url + path_),
        "python requests": lambda url: py_requests(
            "try:\n"
            f"    r = requests.post(sys.argv[1] + {path_!r}, data=open({str(body)!r}, 'rb').read())\n"
            "    print(r.status_code)\n"
            "except requests.ConnectionError as e:\n"
            "    print('connection error'); sys.exit(3)\n") + [url],
    }


@pytest.mark.parametrize("client", ["curl", "python requests"])
def test_413_before_a_1_mib_upload_is_read(run_traced, run_plain, server, tmp_path, client):
    """The server answers 413 as soon as the head is in, then reads and drops the rest
    (as nginx does): the answer is paired with the upload, whose size is what was sent."""
    cmd = upload_clients("/upload-413", MIB, tmp_path)[client](server)
    proc, exchanges = same_as_plain(run_traced, run_plain, cmd)
    assert proc.stdout == b"413\n"
    x = the_exchange(exchanges, "/upload-413")
    assert x["method"] == "POST" and x["status"] == 413
    assert x["response_body_size"] == len(b"upload too large\n")
    sent = x["request_body_size"]
    if sent == MIB:
        assert x["error"] is None, x
    else:
        # The client read the answer first and stopped sending: said with the counts.
        assert x["error"] == f"request body cut at {sent} of {MIB} bytes", x


CUT = re.compile(r"request body cut at (\d+) of (\d+) bytes(?: \((connection reset|broken pipe)\))?")


@pytest.mark.parametrize("client,path_", [
    # curl asks `Expect: 100-continue` for a body this large and gets the 413 instead.
    ("curl", "/upload-413-unread"),
    # requests sends at once; the server closes with the upload unread: the kernel
    # resets the connection, requests' write fails, then it reads the 413.
    ("python requests", "/upload-413-close"),
])
def test_an_upload_cut_short_by_an_early_answer(run_traced, run_plain, server, tmp_path,
                                                client, path_):
    size = 32 * MIB  # more than the socket buffers hold: the client must stop early
    cmd = upload_clients(path_, size, tmp_path)[client](server)
    proc, exchanges = same_as_plain(run_traced, run_plain, cmd)
    assert proc.stdout == b"413\n"
    x = the_exchange(exchanges, path_)
    assert x["method"] == "POST" and x["status"] == 413, x
    m = CUT.fullmatch(x["error"] or "")
    assert m, x["error"]
    assert int(m.group(1)) == x["request_body_size"] < size
    assert int(m.group(2)) == size


# --- a client killed mid-response --------------------------------------------------------

KILLER = r"""
import os, signal, subprocess, sys, time
out, argv = sys.argv[1], sys.argv[2:]
child = subprocess.Popen(argv)
# Kill once 1.5 MiB of the body arrived (the library counts in steps of at most 1 MiB).
while not (os.path.exists(out) and os.path.getsize(out) >= 3 * 512 * 1024):
    if child.poll() is not None:
        sys.exit("the client ended by itself")
    time.sleep(0.02)
child.send_signal(signal.SIGKILL)
print("killed", child.wait())
"""


@pytest.mark.parametrize("client", ["curl", "python requests"])
def test_a_client_killed_mid_response(run_traced, run_plain, server, tmp_path, client):
    out = tmp_path / "body.out"
    url = server + "/slow-stream"
    argv = (["curl", "-s", "-N", "-o", str(out), url] if client == "curl" else py_requests(
        "r = requests.get(sys.argv[1], stream=True)\n"
        "with open(sys.argv[2], 'wb') as f:\n"
        "    for piece in r.iter_content(65536):\n"
        "        f.write(piece); f.flush()\n") + [url, str(out)])
    if client == "curl":
        require_tool("curl")
    cmd = [sys.executable, "-c", KILLER, str(out), *argv]
    proc, exchanges = run_traced(cmd)
    assert proc.stdout == b"killed -9\n", proc.stderr
    out.unlink()
    plain = run_plain(cmd)
    assert (plain.returncode, plain.stdout) == (proc.returncode, proc.stdout)
    x = the_exchange(exchanges, "/slow-stream")
    assert x["status"] == 200
    got = x["response_body_size"]
    assert x["error"] == f"process killed mid-body (got at least {got} of {SLOW_LENGTH} bytes)"
    # At least one progress record (every MiB at most) came before the kill.
    assert MIB <= got < SLOW_LENGTH, x
    assert x["truncated"] is True


# --- the server cuts the response ---------------------------------------------------------

MID = [
    ("/reset-mid", "connection reset mid-body (got 30000 of 100000 bytes)"),
    ("/close-mid", "connection closed mid-body (got 30000 of 100000 bytes)"),
    ("/close-mid-chunked",
     "connection closed mid-body (got 30000 bytes, chunked body not terminated)"),
]


@pytest.mark.parametrize("path_,error", MID, ids=[p for p, _ in MID])
@pytest.mark.parametrize("client", ["curl", "python requests"])
def test_the_server_cuts_the_response_mid_body(run_traced, run_plain, server, client,
                                              path_, error):
    cmd = curl(server + path_) if client == "curl" else py_requests(
        "try:\n"
        "    print(len(requests.get(sys.argv[1]).content))\n"
        "except requests.RequestException as e:\n"
        "    print(type(e).__name__); sys.exit(3)\n") + [server + path_]
    _, exchanges = same_as_plain(run_traced, run_plain, cmd)
    x = the_exchange(exchanges, path_)
    assert x["status"] == 200
    assert x["response_body_size"] == 30000
    assert x["error"] == error


# --- the client gives up before any response ----------------------------------------------

NO_RESPONSE = re.compile(r"no response \(client closed after \d+\.\d s\)")


@pytest.mark.parametrize("client", ["curl", "python requests"])
def test_a_client_that_gives_up_before_any_response(run_traced, run_plain, server, client):
    url = server + "/never"
    cmd = (["curl", "-s", "-m", "1", url] if client == "curl" else py_requests(
        "try:\n"
        "    requests.get(sys.argv[1], timeout=1)\n"
        "except requests.Timeout:\n"
        "    print('timed out'); sys.exit(3)\n") + [url])
    if client == "curl":
        require_tool("curl")
    _, exchanges = same_as_plain(run_traced, run_plain, cmd)
    x = the_exchange(exchanges, "/never")
    assert x["status"] is None
    assert NO_RESPONSE.fullmatch(x["error"]), x["error"]


# --- every format ---------------------------------------------------------------------------

def test_cut_short_in_every_format(run_traced, server, tmp_path, otlp_receiver):
    error = "connection closed mid-body (got 30000 of 100000 bytes)"
    cmd = curl(server + "/close-mid")
    _, table = run_traced(cmd, fmt="table")
    (row,) = [line for line in table.splitlines() if "/close-mid" in line]
    assert row.endswith(f"error: {error}"), row
    _, har = run_traced(cmd, fmt="har")
    (entry,) = json.loads(har)["log"]["entries"]
    assert entry["_error"] == error
    assert entry["response"]["status"] == 200
    _, html = run_traced(cmd, fmt="html")
    assert json.dumps(error) in html
    rcv = otlp_receiver()
    spool_home = tmp_path / "spool-home"  # the CLI's outbox: private to this test
    spool_home.mkdir()
    proc, _ = run_traced(cmd, extra_args=("--otlp", rcv.endpoint),
                         env={"TAPLINE_SPOOL_DIR": str(spool_home)})
    assert proc.returncode == 18, proc.stderr
    (span,) = [s for s in rcv.spans() if "/close-mid" in s["attributes"].get("url.full", "")]
    assert span["status"]["code"] == 2  # ERROR
    assert span["status"]["message"] == error
