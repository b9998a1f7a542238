"""`tapline run --otlp`: the spans tapline sends are decoded by the official OTLP protobuf
definitions (tests/servers/otlp_receiver.py, strict OTLP/JSON parsing), follow the HTTP
client semantic conventions, and get there over HTTPS with custom headers, through a
503 + Retry-After, in protobuf, and — when the collector is down — later, from the outbox.

Every run sets TAPLINE_SPOOL_DIR to a private directory: the CLI keeps unsent batches
in `$TAPLINE_SPOOL_DIR/outbox/` and sends them first next time, so a shared default
(/tmp/tapline) would let one test's batch reach another test's receiver.
"""

import socket
import subprocess

import pytest

from conftest import DEFAULT_TIMEOUT, clean_env, require_tool

SPAN_KIND_CLIENT = 3
STATUS_UNSET, STATUS_OK, STATUS_ERROR = 0, 1, 2


def tapline_otlp(tapline_bin, tmp_path, script, endpoint=None, env=None, spool_home=None,
                 timeout=DEFAULT_TIMEOUT):
    """`tapline run --format json --output F --otlp [ENDPOINT] -- sh -c SCRIPT`."""
    require_tool("curl")
    spool_home = spool_home or tmp_path / "spool-home"
    spool_home.mkdir(exist_ok=True)
    report = tmp_path / "report.json"
    argv = [tapline_bin, "run", "--format", "json", "--output", str(report), "--otlp"]
    if endpoint:
        argv.append(endpoint)
    argv += ["--", "sh", "-c", script]
    e = {"TAPLINE_SPOOL_DIR": str(spool_home)}
    e.update(env or {})
    return subprocess.run(argv, capture_output=True, timeout=timeout, env=clean_env(e),
                          stdin=subprocess.DEVNULL, text=True)


def by_url(spans, needle):
    found = [s for s in spans if needle in s["attributes"].get("url.full", "")]
    assert len(found) == 1, (needle, [s["attributes"].get("url.full") for s in spans])
    return found[0]


def four_requests(http_server):
    return (f"curl -sS -o /dev/null '{http_server}/hello?api_key=k-123456&n=1'; "
            f"curl -sS -o /dev/null -d 'a=1' '{http_server}/echo'; "
            f"curl -sS -o /dev/null '{http_server}/status/500'; "
            f"curl -sS -o /dev/null '{http_server}/drop'; exit 0")


def check_four_spans(spans, http_port):
    assert len(spans) == 4, [s["name"] for s in spans]
    for s in spans:
        assert s["kind"] == SPAN_KIND_CLIENT
        assert len(s["trace_id"]) == 32 and len(s["span_id"]) == 16
        assert 0 < s["start_unix_ns"] <= s["end_unix_ns"]
        a = s["attributes"]
        assert a["server.address"] == "127.0.0.1"
        assert a["server.port"] == http_port
        assert a["network.peer.address"] in ("127.0.0.1", "::ffff:127.0.0.1")
    assert len({s["span_id"] for s in spans}) == 4

    get = by_url(spans, "/hello")
    assert get["name"] == "GET"
    assert get["attributes"]["http.request.method"] == "GET"
    assert get["attributes"]["url.full"] == \
        f"http://127.0.0.1:{http_port}/hello?api_key=****&n=1"
    assert get["attributes"]["http.response.status_code"] == 200
    assert get["status"]["code"] == STATUS_UNSET

    post = by_url(spans, "/echo")
    assert post["name"] == "POST"
    assert post["attributes"]["http.request.method"] == "POST"
    assert post["attributes"]["http.response.status_code"] == 200
    assert post["attributes"]["http.request.body.size"] == 3
    assert post["status"]["code"] == STATUS_UNSET

    err = by_url(spans, "/status/500")
    assert err["name"] == "GET"
    assert err["attributes"]["http.response.status_code"] == 500
    assert err["attributes"]["error.type"] == "500"
    assert err["status"]["code"] == STATUS_ERROR

    dropped = by_url(spans, "/drop")
    assert dropped["name"] == "GET"
    assert "http.response.status_code" not in dropped["attributes"]
    assert dropped["status"]["code"] == STATUS_ERROR
    assert dropped["status"]["message"], dropped["status"]
    assert dropped["attributes"].get("error.type"), dropped["attributes"]


def test_spans_decode_with_official_proto_and_follow_semconv(
        tapline_bin, tmp_path, http_server, http_port, otlp_receiver):
    rcv = otlp_receiver()
    proc = tapline_otlp(tapline_bin, tmp_path, four_requests(http_server), rcv.endpoint,
                        env={"OTEL_SERVICE_NAME": "privacy-tests"})
    assert proc.returncode == 0, proc.stderr
    assert "exported 4 span(s)" in proc.stderr, proc.stderr
    (rec,) = rcv.records()
    assert rec["error"] is None and rec["answered"] == 200, rec
    assert rec["path"] == "/v1/traces"
    assert rec["content_type"].startswith("application/json")
    assert rec["resources"][0]["service.name"] == "privacy-tests"
    check_four_spans(rec["spans"], http_port)


def test_protobuf_encoding(tapline_bin, tmp_path, http_server, http_port, otlp_receiver):
    rcv = otlp_receiver()
    proc = tapline_otlp(tapline_bin, tmp_path, four_requests(http_server), rcv.endpoint,
                        env={"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"})
    assert proc.returncode == 0, proc.stderr
    (rec,) = rcv.records()
    assert rec["error"] is None and rec["answered"] == 200, rec
    assert rec["content_type"] == "application/x-protobuf"
    check_four_spans(rec["spans"], http_port)


def test_https_collector_with_test_ca_and_otel_headers(
        tapline_bin, tmp_path, http_server, http_port, otlp_receiver, test_ca):
    rcv = otlp_receiver("--cert", test_ca / "server.pem", "--key", test_ca / "server.key")
    assert rcv.endpoint.startswith("https://")
    # No ENDPOINT argument: the OTEL_* variables say where.
    proc = tapline_otlp(tapline_bin, tmp_path, four_requests(http_server), None, env={
        "OTEL_EXPORTER_OTLP_ENDPOINT": rcv.endpoint,
        "OTEL_EXPORTER_OTLP_HEADERS": "x-tenant=team%20a,x-otlp-test=hdr-42",
        "SSL_CERT_FILE": str(test_ca / "ca.pem"),
    })
    assert proc.returncode == 0, proc.stderr
    (rec,) = rcv.records()
    assert rec["error"] is None and rec["answered"] == 200, rec
    assert rec["headers"].get("x-tenant") == "team a", rec["headers"]
    assert rec["headers"].get("x-otlp-test") == "hdr-42", rec["headers"]
    check_four_spans(rec["spans"], http_port)


def test_https_collector_not_trusted_without_the_ca(
        tapline_bin, tmp_path, http_server, otlp_receiver, test_ca):
    """The control for the test above: the CA is what made HTTPS work."""
    rcv = otlp_receiver("--cert", test_ca / "server.pem", "--key", test_ca / "server.key")
    proc = tapline_otlp(tapline_bin, tmp_path, f"curl -sS -o /dev/null {http_server}/hello",
                        rcv.endpoint)
    assert proc.returncode == 0, proc.stderr
    assert rcv.accepted() == []
    assert "otlp" in proc.stderr, proc.stderr


def test_503_with_retry_after_then_success_delivers_once(
        tapline_bin, tmp_path, http_server, http_port, otlp_receiver):
    rcv = otlp_receiver("--fail", 1, "--retry-after", 1)
    proc = tapline_otlp(tapline_bin, tmp_path, four_requests(http_server), rcv.endpoint)
    assert proc.returncode == 0, proc.stderr
    recs = rcv.records()
    assert [r["answered"] for r in recs] == [503, 200], recs
    check_four_spans(rcv.spans(), http_port)  # exactly 4: not duplicated
    # The retry resent the same payload.
    raws = rcv.raw_bodies()
    assert len(raws) == 2 and raws[0] == raws[1]
    assert not list((tmp_path / "spool-home").glob("outbox/*.json")), "batch kept although sent"


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # never listened: connections are refused
    return port


def test_unreachable_collector_keeps_batch_then_sends_it_next_time(
        tapline_bin, tmp_path, http_server, http_port, otlp_receiver):
    spool_home = tmp_path / "spool-home"
    dead = f"http://127.0.0.1:{closed_port()}"
    # Returns, and within the subprocess timeout (no assertion on the duration itself).
    first = tapline_otlp(tapline_bin, tmp_path,
                         f"curl -sS -o /dev/null '{http_server}/hello?run=first'", dead,
                         spool_home=spool_home, timeout=30)
    assert first.returncode == 0, first.stderr
    assert "otlp" in first.stderr and "kept" in first.stderr, first.stderr
    kept = sorted(p for p in (spool_home / "outbox").iterdir() if not p.name.startswith("."))
    kept = [p for p in kept if p.name != "dropped"]
    assert len(kept) == 1, kept
    assert b"run=first" in kept[0].read_bytes()

    rcv = otlp_receiver()
    second = tapline_otlp(tapline_bin, tmp_path,
                          f"curl -sS -o /dev/null '{http_server}/hello?run=second'",
                          rcv.endpoint, spool_home=spool_home)
    assert second.returncode == 0, second.stderr
    recs = rcv.records()
    assert len(recs) == 2 and all(r["answered"] == 200 for r in recs), recs
    urls = [[s["attributes"]["url.full"] for s in r["spans"]] for r in recs]
    # The kept batch goes first, then the new one.
    assert urls == [[f"http://127.0.0.1:{http_port}/hello?run=first"],
                    [f"http://127.0.0.1:{http_port}/hello?run=second"]], urls
    assert [p for p in (spool_home / "outbox").iterdir()
            if p.suffix in (".json", ".pb", ".bin")] == []


def test_silent_collector_costs_bounded_time_and_keeps_batch(
        tapline_bin, tmp_path, http_server):
    """A collector that accepts connections and never answers (the socket listens, nobody
    accepts): the export gives up within its deadline and keeps the batch. The bound is
    the subprocess timeout, not a measured duration."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    try:
        spool_home = tmp_path / "spool-home"
        proc = tapline_otlp(
            tapline_bin, tmp_path, f"curl -sS -o /dev/null '{http_server}/hello?run=silent'",
            f"http://127.0.0.1:{silent.getsockname()[1]}", spool_home=spool_home,
            env={"OTEL_EXPORTER_OTLP_TIMEOUT": "1000", "TAPLINE_OTLP_MAX_ELAPSED_MS": "3000"},
            timeout=30)
    finally:
        silent.close()
    assert proc.returncode == 0, proc.stderr
    assert "kept" in proc.stderr, proc.stderr
    kept = list((spool_home / "outbox").glob("*.json"))
    assert len(kept) == 1 and b"run=silent" in kept[0].read_bytes(), kept
