"""Failed calls are exchanges whose `error` says why: `dns:` for a name that does not
resolve, `connect:` for a refused port (blocking and non-blocking clients) and for a
port that drops SYNs (a listening socket on 127.0.0.1 whose backlog is full). Exit
status and output are those of a run without tapline.
"""
import socket
import time

import pytest

from conftest import require_tool

BAD_NAME = "nonexistent.invalid"
DNS_ERROR = f"dns: {BAD_NAME}: Name or service not known"


def refused_port():
    """A loopback port nobody listens on (bound, then closed)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture
def syn_dropping_port():
    """A listening socket with a full accept queue: further SYNs are dropped."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(0)
    port = srv.getsockname()[1]
    fill = []
    for _ in range(4):
        c = socket.socket()
        c.setblocking(False)
        try:
            c.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fill.append(c)
    time.sleep(0.2)  # the handshakes of the fillers complete (no assertion on time)
    yield port
    for c in fill:
        c.close()
    srv.close()


def failures(lines):
    return [x for x in lines if "notice" not in x and x.get("error")]


def check(run_traced, run_plain, cmd, expected_error, expected_host):
    proc, lines = run_traced(cmd)
    plain = run_plain(cmd)
    assert proc.returncode == plain.returncode
    assert proc.stdout == plain.stdout
    got = failures(lines)
    assert [x["error"] for x in got] == [expected_error], lines
    x = got[0]
    assert x["host"] == expected_host
    assert x["method"] is None and x["status"] is None
    return x


PY_GET = ("import sys, urllib.request\n"
          "try:\n    urllib.request.urlopen(sys.argv[1], timeout=float(sys.argv[2]))\n"
          "except Exception as e:\n    print(type(e).__name__)\n    sys.exit(3)\n")


@pytest.mark.parametrize("client", ["curl", "python"])
def test_unresolvable_name(run_traced, run_plain, client):
    url = f"http://{BAD_NAME}/x"
    cmd = ["curl", "-s", url] if client == "curl" else ["python3", "-c", PY_GET, url, "5"]
    x = check(run_traced, run_plain, cmd, DNS_ERROR, BAD_NAME)
    assert x["peer"] is None


REFUSED_CLIENTS = {
    "curl": lambda url: ["curl", "-s", url],
    "python urllib (blocking)": lambda url: ["python3", "-c", PY_GET, url, "5"],
    "node http.get (non-blocking)": lambda url: [
        "node", "-e", "require('http').get(process.argv[1]).on('error', e => "
        "{ console.log(e.code); process.exitCode = 3 })", url],
    "python asyncio (non-blocking)": lambda url: [
        "python3", "-c",
        "import asyncio, sys\n"
        "async def main(port):\n"
        "    try:\n        await asyncio.open_connection('127.0.0.1', port)\n"
        "    except OSError as e:\n        print(e.errno); sys.exit(3)\n"
        "asyncio.run(main(int(sys.argv[1].rsplit(':', 1)[1])))\n", url],
}


@pytest.mark.parametrize("client", list(REFUSED_CLIENTS))
def test_refused_port(run_traced, run_plain, client):
    if client.startswith("node"):
        require_tool("node")
    port = refused_port()
    cmd = REFUSED_CLIENTS[client](f"http://127.0.0.1:{port}")
    x = check(run_traced, run_plain, cmd, f"connect: 127.0.0.1:{port}: connection refused",
              "127.0.0.1")
    assert x["peer"] == f"127.0.0.1:{port}"
    assert x["port"] == port


@pytest.mark.parametrize("client", ["curl", "python"])
def test_port_that_drops_syns(run_traced, run_plain, syn_dropping_port, client):
    port = syn_dropping_port
    url = f"http://127.0.0.1:{port}/"
    cmd = (["curl", "-s", "--connect-timeout", "1", url] if client == "curl"
           else ["python3", "-c", PY_GET, url, "1"])
    check(run_traced, run_plain, cmd, f"connect: 127.0.0.1:{port}: timed out", "127.0.0.1")


def test_refused_in_every_format(run_traced):
    port = refused_port()
    cmd = ["curl", "-s", f"http://127.0.0.1:{port}/"]
    _, table = run_traced(cmd, fmt="table")
    assert f"error: connect: 127.0.0.1:{port}: connection refused" in table
    import json
    _, har = run_traced(cmd, fmt="har")
    entries = json.loads(har)["log"]["entries"]
    assert [e["_error"] for e in entries] == [f"connect: 127.0.0.1:{port}: connection refused"]


def test_a_successful_call_has_no_failure(run_traced, http_server):
    _, lines = run_traced(["curl", "-s", "-o", "/dev/null", f"{http_server}/hello"])
    assert [x.get("error") for x in lines] == [None]


def test_refused_connect_is_named_by_the_lookup_that_gave_the_address(run_traced, run_plain):
    port = refused_port()
    cmd = ["python3", "-c",
           "import socket, sys\n"
           "addr = socket.getaddrinfo('localhost', int(sys.argv[1]), socket.AF_INET,"
           " socket.SOCK_STREAM)[0][4]\n"
           "try:\n    socket.socket().connect(addr)\n"
           "except ConnectionRefusedError:\n    sys.exit(3)\n", str(port)]
    x = check(run_traced, run_plain, cmd, f"connect: 127.0.0.1:{port}: connection refused",
              "localhost")
    assert x["peer"] == f"127.0.0.1:{port}"


def test_a_name_that_fails_twice_is_reported_once(run_traced, run_plain):
    cmd = ["python3", "-c",
           "import socket\n"
           "for _ in range(3):\n"
           "    try:\n        socket.getaddrinfo('nonexistent.invalid', 80)\n"
           "    except socket.gaierror:\n        pass\n"
           "socket.getaddrinfo('127.0.0.1', 80, flags=socket.AI_NUMERICHOST)\n"
           "try:\n    socket.getaddrinfo('not-a-number', 80, flags=socket.AI_NUMERICHOST)\n"
           "except socket.gaierror:\n    pass\n"]
    check(run_traced, run_plain, cmd, DNS_ERROR, BAD_NAME)
