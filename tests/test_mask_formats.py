"""Masking where secrets travel beside their names (extension/src/mask/: multipart.rs,
json.rs and xml.rs name/value pairs, form.rs form arrays, graphql.rs, text.rs), with real
clients under `tapline run --otlp`: Python `requests` multipart, a GraphQL POST, boto3
against `moto_server` (`ecs.register_task_definition` environment name/value pairs,
`cloudformation.create_stack` ParameterKey/ParameterValue and the `describe_stacks`
answer), curl with a text body. No planted secret may appear in anything tapline
produced (table, JSON, HAR, OTLP — decoded and raw), each is replaced by `****`, and the
neighbours (file names, parameter and variable names, request ids) stay readable.
"""

import json
import secrets
import subprocess
import sys

import pytest

from conftest import CLIENTS, DEFAULT_TIMEOUT, body_bytes, clean_env, require_tool

LABELS = ("multipart", "file", "graphql", "literal", "ecs", "cfn", "bearer", "text_kv")


def make_secrets():
    # Random, long enough that no 10-character piece of one shows up by chance.
    return {k: "sk" + secrets.token_hex(12) for k in LABELS}


def assert_absent(where, data, s):
    if isinstance(data, str):
        data = data.encode()
    leaked = [k for k, v in s.items()
              if any(v[i:i + 10].encode() in data for i in range(len(v) - 9))]
    assert not leaked, f"{where}: secrets leaked: {leaked}\n{data[:3000]!r}"


def run(tapline_bin, tmp_path, http_server, moto, otlp_receiver, fmt):
    require_tool("curl")
    s = make_secrets()
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"base": http_server, "moto": moto, "secrets": s}))
    rcv = otlp_receiver()
    out = tmp_path / f"report.{fmt}"
    spool = tmp_path / "spool"
    spool.mkdir()
    proc = subprocess.run(
        [tapline_bin, "run", "--format", fmt, "--output", str(out), "--otlp", rcv.endpoint,
         "--", sys.executable, str(CLIENTS / "py_mask_formats.py"), str(cfg)],
        capture_output=True, timeout=DEFAULT_TIMEOUT, stdin=subprocess.DEVNULL,
        env=clean_env({"TAPLINE_SPOOL_DIR": str(spool)}))
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-3000:]
    ids = json.loads(proc.stdout)
    report = out.read_bytes()
    for where, data in [("stdout", proc.stdout), ("stderr", proc.stderr),
                        (f"{fmt} report", report)]:
        assert_absent(where, data, s)
    if fmt != "table":  # the table shows no bodies
        assert b"****" in report
    records = rcv.records()
    assert records and all(r["error"] is None for r in records), records
    assert_absent("OTLP (decoded)", json.dumps(records), s)
    for i, raw in enumerate(rcv.raw_bodies()):
        assert_absent(f"OTLP raw body {i}", raw, s)
    spans = rcv.spans()
    names = [sp["name"] for sp in spans]
    assert "ecs.RegisterTaskDefinition" in names and "cloudformation.CreateStack" in names, names
    request_ids = [sp["attributes"].get("aws.request_id") for sp in spans]
    for k in ("ecs", "create_stack", "describe_stacks"):
        assert ids[k] in request_ids, (k, ids, request_ids)
    return s, ids, report


@pytest.mark.parametrize("fmt", ["table", "har", "html"])
def test_secrets_beside_their_names_leave_no_table_har_html_or_otlp(
        tapline_bin, tmp_path, http_server, moto, otlp_receiver, fmt):
    s, ids, report = run(tapline_bin, tmp_path, http_server, moto, otlp_receiver, fmt)
    text = report.decode()
    if fmt == "html":
        # The page embeds the masked JSON objects; the neighbours stay readable.
        assert 'id="tl-data"' in text, text[:500]
        for needle in ("photo.png", "DbPassword", "API_TOKEN=****", "$pw"):
            assert needle in text, needle
        for rid in ids.values():
            assert rid in text, rid
        return
    if fmt == "table":
        for name in ("ecs.RegisterTaskDefinition", "cloudformation.CreateStack",
                     "cloudformation.DescribeStacks"):
            assert name in text, text
        assert text.count("POST") >= 3, text
        return
    entries = json.loads(report)["log"]["entries"]
    posted = "\n".join(e["request"].get("postData", {}).get("text", "") for e in entries)
    answered = "\n".join(e["response"]["content"].get("text", "") for e in entries)
    assert 'filename="photo.png"' in posted and "API_TOKEN=****" in posted, posted
    assert '"pw": "****"' in posted and "password: $pw" in posted, posted
    assert "ParameterKey=DbPassword" in posted, posted
    assert "<ParameterKey>DbPassword</ParameterKey>" in answered, answered
    assert "Authorization: Bearer ****" in posted, posted
    for rid in ids.values():
        assert rid in report.decode(), rid


def test_secrets_beside_their_names_leave_no_json_or_otlp(
        tapline_bin, tmp_path, http_server, moto, otlp_receiver):
    s, ids, report = run(tapline_bin, tmp_path, http_server, moto, otlp_receiver, "json")
    exs = [json.loads(line) for line in report.decode().splitlines() if line.strip()]

    def one(pred, what):
        found = [e for e in exs if pred(e)]
        assert len(found) == 1, (what, [e["url"] for e in exs])
        return found[0]

    def req(e):
        return (body_bytes(e, "request") or b"").decode(errors="replace")

    def aws_op(op):
        return lambda e: (e.get("aws") or {}).get("operation") == op

    # 1. multipart: the password part and the token in the text file masked; the user,
    #    the file names and the PNG's size readable, its bytes not shown.
    mp = one(lambda e: any("multipart/form-data" in v for _, v in e["request_headers"]),
             "multipart")
    body = req(mp)
    assert 'name="password"\r\n\r\n****\r\n' in body, body
    assert 'name="user"\r\n\r\nann\r\n' in body, body
    assert 'filename="photo.png"\r\nContent-Type: image/png\r\n\r\n' \
        "[file content: 1032 bytes, not shown]\r\n" in body, body
    assert 'filename="app.env"' in body and "HOST=db\nAPI_TOKEN=****\n" in body, body
    # 2. GraphQL: the variable passed to `password:` and the literal `secret:` masked;
    #    the variable names and the other variable readable.
    gql = one(lambda e: req(e).startswith('{"query"'), "graphql")
    doc = json.loads(req(gql))
    assert doc["variables"] == {"user": "ann", "pw": "****"}, doc
    assert "login(username: $user, password: $pw)" in doc["query"], doc
    assert 'rotate(secret: "****")' in doc["query"], doc
    assert doc["operationName"] == "Login"
    # 3. ECS: the DB_PASSWORD value masked in the request and in moto's answer; its name
    #    and the other variable readable; the request id moto answered readable.
    ecs = one(aws_op("RegisterTaskDefinition"), "ecs")
    env = json.loads(req(ecs))["containerDefinitions"][0]["environment"]
    assert env == [{"name": "LOG_LEVEL", "value": "info"},
                   {"name": "DB_PASSWORD", "value": "****"}], env
    answer = json.loads(body_bytes(ecs, "response"))
    env = answer["taskDefinition"]["containerDefinitions"][0]["environment"]
    assert {"name": "DB_PASSWORD", "value": "****"} in env, env
    assert ecs["aws"]["request_id"] == ids["ecs"]
    # 4. CloudFormation: the query-protocol form array and the XML answer.
    cs = one(aws_op("CreateStack"), "create_stack")
    form = req(cs)
    assert "Parameters.member.1.ParameterKey=Env&Parameters.member.1.ParameterValue=prod" \
        in form, form
    assert "Parameters.member.2.ParameterKey=DbPassword&" \
        "Parameters.member.2.ParameterValue=****" in form, form
    assert cs["aws"]["request_id"] == ids["create_stack"]
    ds = one(aws_op("DescribeStacks"), "describe_stacks")
    xml = body_bytes(ds, "response").decode()
    assert "<ParameterKey>DbPassword</ParameterKey>" in xml, xml
    assert "<ParameterValue>****</ParameterValue>" in xml, xml
    assert "<ParameterValue>prod</ParameterValue>" in xml, xml
    assert ds["aws"]["request_id"] == ids["describe_stacks"]
    # 5. curl, text body: the header-like line and the key=value pair.
    tx = one(lambda e: req(e).startswith("note: uploaded"), "text")
    assert req(tx) == ("note: uploaded by ann from the nightly build of the web service\n"
                       "Authorization: Bearer ****\napi_key=**** user=ann\n"), req(tx)
