"""Value-shape masking (mask_shapes.rs): credential-shaped values under neutral names —
JWTs, an AWS access key id and the secret beside it, a PEM private key, Bearer and Basic
credentials, GitHub/Slack/Stripe/Google tokens — sent by real clients (Python
`requests`, curl) in JSON, text, form and XML bodies, a header and the query, to the
loopback test server under `tapline run --otlp`. None of them may appear in anything
tapline produced (table, JSON, HAR, OTLP — decoded and raw), `****` must, and the
ordinary neighbours (a UUID, a sha256, a base64 image, a request id) stay readable.
"""

import base64
import json
import secrets
import string
import subprocess
import sys

import pytest

from conftest import CLIENTS, DEFAULT_TIMEOUT, body_bytes, clean_env, header, require_tool


def rand(alphabet, n):
    return "".join(secrets.choice(alphabet) for _ in range(n))


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_secrets():
    alnum = string.ascii_letters + string.digits
    header_ = b64url(b'{"alg":"HS256","typ":"JWT"}')
    payload = b64url(json.dumps({"sub": rand(alnum, 12)}).encode())
    pem_body = "\n".join(rand(alnum + "+/", 64) for _ in range(4))
    return {
        "jwt": f"{header_}.{payload}.{b64url(secrets.token_bytes(32))}",
        "akid": "AKIA" + rand(string.ascii_uppercase + "234567", 16),
        "aws_secret": "Ab" + rand(alnum + "/+", 38),
        "pem": f"-----BEGIN PRIVATE KEY-----\n{pem_body}\n-----END PRIVATE KEY-----",
        "bearer": "tk" + rand(alnum, 30) + "9",
        "basic": base64.b64encode(f"svc:{rand(alnum, 20)}".encode()).decode(),
        "github": "ghp_" + rand(alnum, 36),
        "slack": "xoxb-" + rand(string.digits, 12) + "-" + rand(alnum, 24),
        "stripe": "sk_live_" + rand(alnum, 24),
        "google": "AIza" + rand(alnum + "_-", 35),
    }


def needles(s):
    """(label, text): the part of each secret that must show nowhere."""
    out = []
    for k, v in s.items():
        if k == "jwt":
            v = v.split(".", 1)[1]  # the header is public: {"alg":"HS256",...}
        elif k == "pem":
            v = v.split("\n")[1]
        elif k in ("github", "stripe", "google", "akid"):
            v = v[8:]
        out.append((k, v[-24:]))
    return out


def make_neighbours():
    png = b"\x89PNG\r\n\x1a\n" + secrets.token_bytes(300)
    return {
        "uuid": "3f1c2a9e-6b7d-4c1e-9a8f-" + secrets.token_hex(6),
        "sha256": secrets.token_hex(32),
        "image": "data:image/png;base64," + base64.b64encode(png).decode(),
        "request_id": "7c4e1b2a-" + secrets.token_hex(2) + "-4d5e-8f90-" + secrets.token_hex(6),
    }


def assert_absent(where, data, s):
    if isinstance(data, str):
        data = data.encode()
    leaked = [label for label, text in needles(s) if text.encode() in data]
    assert not leaked, f"{where}: secrets leaked: {leaked}\n{data[:3000]!r}"


def bodies(exs):
    return [body_bytes(e, side) or b"" for e in exs for side in ("request", "response")]


@pytest.mark.parametrize("fmt", ["json", "table", "har"])
def test_credential_shapes_under_neutral_names_leave_no_output(
        tapline_bin, tmp_path, http_server, otlp_receiver, fmt):
    require_tool("curl")
    s, n = make_secrets(), make_neighbours()
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"base": http_server, "secrets": s, "neighbours": n}))
    rcv = otlp_receiver()
    out = tmp_path / f"report.{fmt}"
    spool = tmp_path / "spool"
    spool.mkdir()
    proc = subprocess.run(
        [tapline_bin, "run", "--format", fmt, "--output", str(out), "--otlp", rcv.endpoint,
         "--", sys.executable, str(CLIENTS / "py_value_shapes.py"), str(cfg)],
        capture_output=True, timeout=DEFAULT_TIMEOUT, stdin=subprocess.DEVNULL,
        env=clean_env({"TAPLINE_SPOOL_DIR": str(spool)}))
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-3000:]
    assert proc.stdout == b"py_value_shapes: done\n"
    report = out.read_bytes()
    for where, data in [("stdout", proc.stdout), ("stderr", proc.stderr),
                        (f"{fmt} report", report)]:
        assert_absent(where, data, s)
    assert b"****" in report
    records = rcv.records()
    assert records and all(r["error"] is None for r in records), records
    assert_absent("OTLP (decoded)", json.dumps(records), s)
    for i, raw in enumerate(rcv.raw_bodies()):
        assert_absent(f"OTLP raw body {i}", raw, s)
    spans = rcv.spans()
    assert len(spans) == 6, [sp["name"] for sp in spans]
    urls = [sp["attributes"].get("url.full", "") for sp in spans]
    assert any("ref=****&rid=" + n["request_id"] in u for u in urls), urls

    if fmt == "har":
        entries = json.loads(report)["log"]["entries"]
        assert len(entries) == 6
        texts = [json.dumps(e) for e in entries]
        assert any(n["request_id"] in t for t in texts)
        return
    if fmt == "table":
        assert report.decode().count("POST") == 6, report.decode()
        return
    exs = [json.loads(line) for line in report.decode().splitlines() if line.strip()]
    assert len(exs) == 6, [e["url"] for e in exs]
    for i, b in enumerate(bodies(exs)):
        assert_absent(f"body {i}", b, s)
    # 1. JSON: every secret masked, the neighbours whole.
    doc = json.loads(body_bytes(exs[0], "request"))
    scheme = {"bearer": "Bearer ", "basic": "Basic "}
    assert [doc[f"field{i}"] for i in range(len(s))] == [scheme.get(k, "") + "****" for k in s], doc
    assert (doc["id"], doc["digest"], doc["avatar"]) == (n["uuid"], n["sha256"], n["image"])
    echoed = json.loads(body_bytes(exs[1], "response"))["prefix"]
    assert echoed == '{"a": "****"}', echoed
    # 2. text: the credential after `Bearer`, and the PEM key.
    text = body_bytes(exs[2], "request").decode()
    assert text == f"Authorization: Bearer ****\nrequest {n['request_id']}\n****\n", text
    # 3. form, 4. XML
    assert body_bytes(exs[3], "request").decode() == f"x=****&y=****&rid={n['request_id']}"
    assert body_bytes(exs[4], "request").decode() == (
        f"<Items><Item><A>****</A><B>****</B><Rid>{n['request_id']}</Rid></Item></Items>")
    # 5. curl: query, a neutral header, a text body with `Basic`.
    e = exs[5]
    assert e["url"].endswith(f"/echo?ref=****&rid={n['request_id']}"), e["url"]
    assert header(e["request_headers"], "X-Upstream") == "****"
    assert body_bytes(e, "request") == b"google=**** basic=Basic ****"
