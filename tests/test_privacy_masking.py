"""Secrets never leave tapline: planted secrets (a Bearer token, a SigV4 Authorization,
a password three objects deep in a JSON body, an `api_key` query parameter, the
request's session cookie, the server's Set-Cookie, and tokens in JSON bodies cut at
TAPLINE_MAX_BODY) are sent by real clients (curl, Python requests) to the loopback test
servers under `tapline run --otlp`, and searched for in everything tapline produced:
its stdout and stderr, the report (table, JSON, HAR) and what the OTLP receiver got —
decoded, and the raw request bodies. The masked placeholders must be there, so that a
run that captured nothing (or masked nothing and printed nothing) cannot pass.

Also TAPLINE_SCRUB_DOMAINS: an exchange with a scrubbed host keeps its method, path,
status and sizes, and no headers, query or bodies.
"""

import base64
import json
import secrets
import subprocess
import sys

import pytest

from conftest import (CLIENTS, DEFAULT_TIMEOUT, HELLO_BODY, body_bytes, clean_env, header,
                      headers_all, require_tool)
from http_server import SET_COOKIE_SECRET

MAX_BODY = 512
STRADDLE_BEFORE_CUT = 20  # characters of the straddling token that lie before the cut


def make_secrets():
    h = lambda n: secrets.token_hex(n)  # noqa: E731
    alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    return {
        "bearer": "bearer-" + h(20),
        "akia": "AKIA" + "".join(secrets.choice(alnum) for _ in range(16)),
        "signature": h(32),  # 64 hex digits
        "password": "pw-" + h(16),
        "api_key": "apikey-" + h(16),
        "session": "sess-" + h(16),
        "token_straddle": "strad-" + h(20),
        "token_before": "tokbefore-" + h(16),
    }


def needles(s):
    """(label, text) of everything that must not appear anywhere."""
    out = [(k, v) for k, v in s.items()]
    out.append(("set-cookie", SET_COOKIE_SECRET))
    # The straddling token is cut by the capture: only its prefix can have been kept.
    out.append(("token_straddle prefix", s["token_straddle"][:STRADDLE_BEFORE_CUT]))
    out.append(("token_straddle short prefix", s["token_straddle"][:12]))
    return out


def assert_no_secrets(where, data, s):
    if isinstance(data, str):
        data = data.encode()
    leaked = [label for label, text in needles(s) if text.encode() in data]
    assert not leaked, f"{where}: secrets leaked: {leaked}\n{data[:4000]!r}"


def run_secret_client(tapline_bin, tmp_path, http_server, https_server, ca_bundle, receiver,
                      fmt, to_file, s):
    require_tool("curl")
    cfg = tmp_path / f"secrets-{fmt}.json"
    cfg.write_text(json.dumps({
        "base": http_server, "https_base": https_server, "ca": ca_bundle, "secrets": s,
        "max_body": MAX_BODY, "straddle_before_cut": STRADDLE_BEFORE_CUT}))
    spool_home = tmp_path / f"spool-home-{fmt}"
    spool_home.mkdir()
    out = tmp_path / f"report.{fmt}"
    argv = [tapline_bin, "run", "--format", fmt]
    if to_file:
        argv += ["--output", str(out)]
    argv += ["--otlp", receiver.endpoint, "--", sys.executable, str(CLIENTS / "py_secrets.py"),
             str(cfg)]
    proc = subprocess.run(argv, capture_output=True, timeout=DEFAULT_TIMEOUT,
                          stdin=subprocess.DEVNULL,
                          env=clean_env({"TAPLINE_MAX_BODY": str(MAX_BODY),
                                         "TAPLINE_SPOOL_DIR": str(spool_home)}))
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-3000:]
    assert proc.stdout == b"py_secrets: done\n"
    report = out.read_bytes() if to_file else proc.stderr
    return proc, report


def decoded_bodies(report, fmt):
    """Bodies a report holds in base64 (not greppable as they stand), decoded."""
    out = []
    if fmt == "json":
        for line in report.decode().splitlines():
            e = json.loads(line)
            out += [body_bytes(e, side) or b"" for side in ("request", "response")]
    elif fmt == "har":
        for en in json.loads(report)["log"]["entries"]:
            for holder in (en["request"].get("postData"), en["response"]["content"]):
                if holder and holder.get("text") and "base64" in (
                        holder.get("encoding"), holder.get("_encoding")):
                    out.append(base64.b64decode(holder["text"]))
    return out


def check_everything(proc, report, receiver, s, fmt):
    assert_no_secrets("stdout", proc.stdout, s)
    assert_no_secrets("stderr", proc.stderr, s)
    assert_no_secrets(f"{fmt} report", report, s)
    for i, body in enumerate(decoded_bodies(report, fmt)):
        assert_no_secrets(f"{fmt} report, decoded body {i}", body, s)
    records = receiver.records()
    assert records, "the OTLP receiver got nothing"
    assert [r["error"] for r in records] == [None] * len(records), records
    assert_no_secrets("OTLP receiver (decoded)", json.dumps(records), s)
    raws = receiver.raw_bodies()
    assert raws
    for i, raw in enumerate(raws):
        assert_no_secrets(f"OTLP raw body {i}", raw, s)
    # The placeholders are there: masking ran on captured data, nothing was just dropped.
    assert b"****" in report, f"no masked placeholder in the {fmt} report"
    assert any(b"****" in raw for raw in raws), "no masked placeholder in the OTLP payload"
    spans = receiver.spans()
    urls = [sp["attributes"].get("url.full", "") for sp in spans]
    assert any("api_key=****" in u for u in urls), urls
    assert len(spans) == 7, [sp["name"] for sp in spans]


@pytest.fixture
def planted():
    return make_secrets()


def test_json_report_and_otlp_mask_every_planted_secret(
        tapline_bin, tmp_path, http_server, https_server, ca_bundle, otlp_receiver, planted):
    s = planted
    rcv = otlp_receiver()
    proc, report = run_secret_client(tapline_bin, tmp_path, http_server, https_server,
                                     ca_bundle, rcv, "json", True, s)
    check_everything(proc, report, rcv, s, "json")

    exs = [json.loads(line) for line in report.decode().splitlines() if line.strip()]
    assert len(exs) == 7, [e["url"] for e in exs]
    by_path = {}
    for e in exs:
        by_path.setdefault((e["scheme"], e["method"], e["path"]), []).append(e)

    # 1. curl: Bearer, Cookie, api_key in the query; the rest of the request is kept.
    plain_hello = [e for e in by_path[("http", "GET", "/hello")] if "api_key" in e["url"]]
    assert len(plain_hello) == 1, exs
    e = plain_hello[0]
    assert e["status"] == 200
    assert e["url"].endswith("/hello?api_key=****&visible=yes"), e["url"]
    assert header(e["request_headers"], "Authorization") == "Bearer ****"
    assert header(e["request_headers"], "Cookie") == "session=****; theme=****"
    assert header(e["request_headers"], "X-Quiet") == "1"
    assert body_bytes(e, "response") == HELLO_BODY

    # 2. the same over TLS (read through the OpenSSL hooks)
    (e,) = by_path[("https", "GET", "/hello")]
    assert e["tls"] == "openssl"
    assert e["url"].endswith("/hello?api_key=****"), e["url"]
    assert header(e["request_headers"], "Authorization") == "Bearer ****"

    # 3. SigV4: algorithm and SignedHeaders kept, key id and signature not.
    (e,) = [e for e in by_path[("http", "GET", "/hello")] if "sigv4=1" in e["url"]]
    auth = header(e["request_headers"], "Authorization")
    assert auth.startswith("AWS4-HMAC-SHA256 "), auth
    assert "SignedHeaders=host;x-amz-date" in auth, auth
    assert "****" in auth and "AKIA" not in auth, auth

    # 4. password three objects deep; its siblings stay readable.
    echoes = by_path[("http", "POST", "/echo")]
    assert len(echoes) == 3
    nested = [e for e in echoes if b"level1" in (body_bytes(e, "request") or b"")]
    assert len(nested) == 1
    req = json.loads(body_bytes(nested[0], "request"))
    assert req == {"user": "visible-user",
                   "level1": {"level2": {"password": "****", "note": "visible-note"}}}

    # 5. the server's Set-Cookie: name and attributes kept, value masked.
    (e,) = by_path[("http", "GET", "/set-cookie")]
    assert headers_all(e["response_headers"], "Set-Cookie") == ["session=****; Path=/; HttpOnly"]

    # 6./7. long JSON bodies, captured up to TAPLINE_MAX_BODY: the token is masked whether
    # the cut falls inside it or after it; the full size is still reported.
    long_ones = [e for e in echoes if e is not nested[0]]
    for e in long_ones:
        assert e["truncated"] is True
        assert e["request_body_size"] > MAX_BODY
        got = body_bytes(e, "request")
        assert got is not None and len(got) <= MAX_BODY + len("****") + 2, len(got)
        assert b'"token": "****"' in got, got[:600]


def test_table_report_on_stderr_and_otlp_mask_every_planted_secret(
        tapline_bin, tmp_path, http_server, https_server, ca_bundle, otlp_receiver, planted):
    rcv = otlp_receiver()
    proc, report = run_secret_client(tapline_bin, tmp_path, http_server, https_server,
                                     ca_bundle, rcv, "table", False, planted)
    check_everything(proc, report, rcv, planted, "table")
    text = report.decode()
    assert "/hello?api_key=****&visible=yes" in text, text
    assert "/set-cookie" in text and "/echo" in text, text


def test_har_report_and_otlp_mask_every_planted_secret(
        tapline_bin, tmp_path, http_server, https_server, ca_bundle, otlp_receiver, planted):
    rcv = otlp_receiver()
    proc, report = run_secret_client(tapline_bin, tmp_path, http_server, https_server,
                                     ca_bundle, rcv, "har", True, planted)
    check_everything(proc, report, rcv, planted, "har")
    har = json.loads(report)
    entries = har["log"]["entries"]
    assert len(entries) == 7
    cookies = [c for en in entries for c in en["request"]["cookies"] + en["response"]["cookies"]]
    assert {"name": "session", "value": "****"} in cookies, cookies
    qs = [q for en in entries for q in en["request"]["queryString"]]
    assert {"name": "api_key", "value": "****"} in qs, qs
    posted = [en["request"]["postData"]["text"] for en in entries
              if "postData" in en["request"]]
    assert any('"password": "****"' in t for t in posted), posted


def test_json_body_cut_inside_a_character_stays_text_and_masked(run_traced, http_server,
                                                               tmp_path):
    """The capture cuts a UTF-8 JSON body at TAPLINE_MAX_BODY in the middle of a
    two-byte character: the report keeps the body as text (the partial character
    dropped), not as base64 — base64 would hide the body from the reader, and from any
    audit that greps reports for secrets — and the token before the cut is masked."""
    require_tool("curl")
    token = "utftok-" + secrets.token_hex(16)
    head = f'{{"token": "{token}", "name": "'
    pad = "a" if (MAX_BODY - len(head.encode())) % 2 == 0 else ""
    body = head + pad + "\u00e9" * 600 + '"}'
    assert (MAX_BODY - len((head + pad).encode())) % 2 == 1  # the cut splits an é
    f = tmp_path / "utf.json"
    f.write_bytes(body.encode())
    proc, exs = run_traced(["curl", "-sS", "-o", "/dev/null", "-H", "X-Quiet: 1",
                            "-H", "Content-Type: application/json; charset=utf-8",
                            "--data-binary", f"@{f}", f"{http_server}/echo"],
                           env={"TAPLINE_MAX_BODY": str(MAX_BODY)})
    assert proc.returncode == 0, proc.stderr
    (e,) = exs
    got = body_bytes(e, "request")
    assert token.encode() not in got
    assert got.startswith(b'{"token": "****", "name": "'), got[:80]
    assert e["request_body_size"] == len(body.encode())
    assert e["truncated"] is True
    assert e["request_body_encoding"] is None, "a cut UTF-8 text body reported as base64"
    assert e["request_body"].endswith("\u00e9"), e["request_body"][-20:]


# --- TAPLINE_SCRUB_DOMAINS -----------------------------------------------------------------

def scrub_run(run_traced, http_server, http_port, host, env=None):
    """curl to 127.0.0.1 with `Host: <host>`, plus a control request without it."""
    require_tool("curl")
    script = (
        f"curl -sS -o /dev/null -H 'Host: {host}:{http_port}' -H 'X-Custom: visible-value' "
        f"-H 'Content-Type: application/json' --data-binary '{{\"SecretString\": \"s3cr3t-val\"}}' "
        f"'{http_server}/echo?Name=prod-db-password' && "
        f"curl -sS -o /dev/null -H 'Host: {host}:{http_port}' '{http_server}/bytes/300' && "
        f"curl -sS -o /dev/null -H 'X-Custom: visible-value' '{http_server}/hello?control=1'")
    proc, exs = run_traced(["sh", "-c", script], env=env)
    assert proc.returncode == 0, proc.stderr
    assert len(exs) == 3, [e["url"] for e in exs]
    return exs


def assert_scrubbed(e, host, http_port, method, path, status, req_size, resp_size):
    assert e["host"] == host
    assert e["method"] == method
    assert e["path"] == path
    assert e["status"] == status
    assert e["url"] == f"http://{host}:{http_port}{path}", e["url"]  # no query
    assert e["request_headers"] == [] and e["response_headers"] == [], e
    for side in ("request", "response"):
        assert not body_bytes(e, side), e
    assert e["request_body_size"] == req_size
    if resp_size is not None:
        assert e["response_body_size"] == resp_size
    assert e["peer"] in (f"127.0.0.1:{http_port}", f"[::ffff:127.0.0.1]:{http_port}")


@pytest.mark.parametrize("host,env", [
    ("secretsmanager.localhost", None),  # the default list
    ("vault.internal.localhost", {"TAPLINE_SCRUB_DOMAINS": "vault|kms"}),
])
def test_scrubbed_host_keeps_method_path_status_sizes_only(run_traced, http_server, http_port,
                                                           host, env):
    exs = scrub_run(run_traced, http_server, http_port, host, env)
    echo, data, control = sorted(exs, key=lambda e: e["start_unix_ns"])
    body = b'{"SecretString": "s3cr3t-val"}'
    assert_scrubbed(echo, host, http_port, "POST", "/echo", 200, len(body), None)
    assert echo["response_body_size"] > 0
    assert_scrubbed(data, host, http_port, "GET", "/bytes/300", 200, 0, 300)
    # A host not on the list keeps its headers and query.
    assert control["url"].endswith("/hello?control=1")
    assert header(control["request_headers"], "X-Custom") == "visible-value"
    assert body_bytes(control, "response") == HELLO_BODY
    scrubbed = json.dumps([echo, data])
    for secret in ("s3cr3t-val", "prod-db-password", "visible-value"):
        assert secret not in scrubbed, secret


def test_scrub_list_empty_scrubs_nothing(run_traced, http_server, http_port):
    exs = scrub_run(run_traced, http_server, http_port, "secretsmanager.localhost",
                    {"TAPLINE_SCRUB_DOMAINS": ""})
    echo = [e for e in exs if e["path"] == "/echo"][0]
    assert header(echo["request_headers"], "X-Custom") == "visible-value"
    assert echo["url"].endswith("/echo?Name=prod-db-password")


def _gzip_secret_absent(report_text):
    """The secret in no form: plain, nor inside any base64 or gzip the report holds."""
    import gzip as gz
    import re
    from http_server import GZIP_SECRET
    assert GZIP_SECRET not in report_text
    for blob in re.findall(r"[A-Za-z0-9+/]{16,}={0,2}", report_text):
        try:
            raw = base64.b64decode(blob + "=" * (-len(blob) % 4))
        except ValueError:
            continue
        assert GZIP_SECRET.encode() not in raw
        if raw[:2] == b"\x1f\x8b":
            try:
                assert GZIP_SECRET.encode() not in gz.decompress(raw)
            except (OSError, EOFError):
                pass


@pytest.mark.parametrize("client", ["curl", "python-urllib"])
def test_gzip_body_is_masked_decoded(run_traced, http_server, http_port, client):
    """A gzip-compressed JSON response with a password: tapline reports it decoded and
    masked (masking the compressed bytes would let the password out, readable to anyone
    who gunzips them)."""
    url = f"http://127.0.0.1:{http_port}/gzip-json"
    if client == "curl":
        cmd = ["curl", "-sS", "-o", "/dev/null", url]  # no --compressed: kept as sent
    else:
        cmd = [sys.executable, "-c",
               f"import urllib.request; urllib.request.urlopen({url!r}).read()"]
    proc, exs = run_traced(cmd)
    assert proc.returncode == 0, proc.stderr
    (ex,) = [e for e in exs if e["path"] == "/gzip-json"]
    assert header(ex["response_headers"], "Content-Encoding") == "gzip"
    assert ex["response_body_decoded"] == "gzip"
    assert json.loads(body_bytes(ex, "response")) == {"user": "ann", "password": "****"}
    _gzip_secret_absent(json.dumps(exs) + proc.stderr.decode(errors="replace"))
