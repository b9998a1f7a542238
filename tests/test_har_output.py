"""`tapline run --format har`: the document loads in haralyzer (a third-party HAR
library) with the right entries, and has the fields HAR 1.2 requires, with values of
the right types and ranges."""

import datetime
import json
import re

from haralyzer import HarParser

from conftest import HELLO_BODY, require_tool

ISO8601 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def har_run(run_traced, http_server):
    require_tool("curl")
    script = (f"curl -sS -o /dev/null '{http_server}/hello?from=har&n=2' && "
              f"curl -sS -o /dev/null -H 'Content-Type: application/json' "
              f"--data-binary '{{\"k\": 1}}' '{http_server}/echo' && "
              f"curl -sS -o /dev/null '{http_server}/status/404' && "
              f"curl -sS -o /dev/null '{http_server}/bytes/1000' && "
              f"curl -sS -o /dev/null -I '{http_server}/hello' && "
              f"curl -sS -o /dev/null '{http_server}/drop'; exit 0")
    proc, text = run_traced(["sh", "-c", script], fmt="har")
    assert proc.returncode == 0, proc.stderr
    return json.loads(text)


EXPECTED = [  # (method, path and query, status)
    ("GET", "/hello?from=har&n=2", 200),
    ("POST", "/echo", 200),
    ("GET", "/status/404", 404),
    ("GET", "/bytes/1000", 200),
    ("HEAD", "/hello", 200),
    ("GET", "/drop", 0),  # no response: HAR has no "absent", tapline writes 0
]


def test_har_loads_in_haralyzer(run_traced, http_server, http_port):
    har = har_run(run_traced, http_server)
    parser = HarParser(har)
    assert parser.version == "1.2"
    assert parser.creator["name"] == "tapline"
    (page,) = parser.pages  # no pages in our HAR: haralyzer's "unknown" page holds all
    entries = page.entries  # sorted by start time
    assert len(entries) == len(EXPECTED)
    base = f"http://127.0.0.1:{http_port}"
    got = [(e.request.method, e.request.url, e.response.status) for e in entries]
    assert got == [(m, base + p, s) for m, p, s in EXPECTED], got
    for e in entries:
        assert e.startTime is not None
        assert e.time >= 0
        for t in ("send", "wait", "receive"):
            assert e.timings[t] >= 0, e.timings
    hello = entries[0]
    assert hello.request.queryString == [{"name": "from", "value": "har"},
                                         {"name": "n", "value": "2"}]
    assert hello.response.mimeType.startswith("text/plain")
    assert hello.response.text == HELLO_BODY.decode()
    assert hello.response.bodySize == len(HELLO_BODY)
    assert hello.serverAddress == "127.0.0.1"
    post = entries[1]
    assert post.request.bodySize == len(b'{"k": 1}')
    assert post.request.mimeType == "application/json"
    assert post.request.text == '{"k": 1}'
    assert entries[3].response.bodySize == 1000
    assert page.get_total_size(entries) >= len(HELLO_BODY) + 1000


def test_har_required_fields(run_traced, http_server):
    har = har_run(run_traced, http_server)
    log = har["log"]
    assert log["version"] == "1.2"
    assert isinstance(log["creator"]["name"], str) and log["creator"]["name"]
    assert isinstance(log["creator"]["version"], str) and log["creator"]["version"]
    assert len(log["entries"]) == len(EXPECTED)
    now = datetime.datetime.now(datetime.timezone.utc)
    for en in log["entries"]:
        assert ISO8601.match(en["startedDateTime"]), en["startedDateTime"]
        started = datetime.datetime.fromisoformat(en["startedDateTime"].replace("Z", "+00:00"))
        assert abs((now - started).total_seconds()) < 3600, started
        assert isinstance(en["time"], (int, float)) and en["time"] >= 0
        req, resp = en["request"], en["response"]
        for k in ("method", "url", "httpVersion"):
            assert isinstance(req[k], str) and req[k], (k, req)
        for k in ("headers", "queryString", "cookies"):
            assert isinstance(req[k], list), (k, req)
        for h in req["headers"] + resp["headers"]:
            assert set(h) >= {"name", "value"} and isinstance(h["value"], str), h
        for k in ("headersSize", "bodySize"):
            assert isinstance(req[k], int) and req[k] >= -1, (k, req)
            assert isinstance(resp[k], int) and resp[k] >= -1, (k, resp)
        assert isinstance(resp["status"], int)
        assert isinstance(resp["statusText"], str)
        assert isinstance(resp["httpVersion"], str) and resp["httpVersion"]
        assert isinstance(resp["cookies"], list) and isinstance(resp["headers"], list)
        assert isinstance(resp["redirectURL"], str)
        content = resp["content"]
        assert isinstance(content["size"], int) and content["size"] >= 0, content
        assert isinstance(content["mimeType"], str), content
        assert isinstance(en["cache"], dict)
        t = en["timings"]
        for k in ("send", "wait", "receive"):
            assert isinstance(t[k], (int, float)) and t[k] >= 0, t
        for k in ("blocked", "dns", "connect", "ssl"):
            if k in t:
                assert t[k] >= 0 or t[k] == -1, t
        # HAR: time is the sum of the applicable timings.
        total = sum(v for k, v in t.items() if isinstance(v, (int, float)) and v > 0
                    and k != "ssl")
        assert abs(total - en["time"]) < 0.01, (t, en["time"])
        if "postData" in req:
            assert isinstance(req["postData"]["mimeType"], str)
            assert isinstance(req["postData"]["text"], str)
    head = [en for en in log["entries"] if en["request"]["method"] == "HEAD"][0]
    assert head["response"]["bodySize"] == 0 and head["response"]["content"]["size"] == 0
    dropped = log["entries"][-1]
    assert dropped["request"]["url"].endswith("/drop")
    assert dropped["response"]["bodySize"] == -1  # no response: unknown
