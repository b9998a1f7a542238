"""AWS API calls recognised from the wire: real AWS protocol traffic from boto3 and from
the AWS SDK for JavaScript v3 against `moto_server` on 127.0.0.1, captured by
`tapline run`. Every call must be named (`DynamoDB.PutItem`) and attributed in the JSON
report, the table and the OTLP spans, with the request and message ids moto really
answered (the SDKs print what they read; tapline must have found the same on the wire).

Then the privacy check: credentials, the session token, SigV4 signatures and the values
of Secrets Manager and SSM are planted, and every output is grepped for them.

Needs: moto_server (`pip install 'moto[server]'`), boto3, node + npm (the SDK v3 clients
are installed by the test into a cache directory, pinned).
"""

import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import CLIENTS, REPO, clean_env, require_module, require_tool

PLANTED = "PLANTED-AWS-SECRET-51c9"
# What the signature of the hand-made query-protocol request carries (hex of PLANTED).
PLANTED_HEX = PLANTED.encode().hex()

SDK_V3 = {
    "@aws-sdk/client-dynamodb": "3.1169.0",
    "@aws-sdk/client-sqs": "3.1175.0",
    "@aws-sdk/client-sns": "3.1169.0",
    "@aws-sdk/client-s3": "3.1175.0",
    "@aws-sdk/client-kinesis": "3.1143.0",
    "@aws-sdk/client-lambda": "3.1164.0",
    "@aws-sdk/client-eventbridge": "3.1169.0",
    "@aws-sdk/client-sfn": "3.1164.0",
    "@aws-sdk/client-sts": "3.1174.0",
    "@aws-sdk/client-secrets-manager": "3.1164.0",
    "@aws-sdk/client-ssm": "3.1169.0",
    "@smithy/node-http-handler": "4.14.2",
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def sdk_v3():
    """A directory holding the pinned SDK v3 clients (npm install once, then cached)."""
    require_tool("node")
    npm = require_tool("npm")
    pins = json.dumps(SDK_V3, sort_keys=True)
    cache = Path(os.environ.get("TAPLINE_TEST_CACHE", Path.home() / ".cache" / "tapline-tests"))
    d = cache / ("aws-sdk-js-v3-" + hashlib.sha256(pins.encode()).hexdigest()[:12])
    if not (d / "node_modules" / "@aws-sdk" / "client-ssm").exists():
        d.mkdir(parents=True, exist_ok=True)
        (d / "package.json").write_text(json.dumps(
            {"private": True, "type": "module", "dependencies": SDK_V3}, indent=1))
        subprocess.run([npm, "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=d,
                       check=True, timeout=600, stdin=subprocess.DEVNULL)
    shutil.copy(CLIENTS / "aws_sdk_v3_calls.mjs", d / "aws_sdk_v3_calls.mjs")
    return d


@pytest.fixture
def otlp_receiver(tmp_path):
    out = tmp_path / "otlp.jsonl"
    port_file = tmp_path / "otlp.port"
    proc = subprocess.Popen([sys.executable, str(REPO / "tests/servers/otlp_receiver.py"),
                             "--out", str(out), "--port-file", str(port_file),
                             "--timeout", "120"], stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not (port_file.exists() and port_file.read_text().strip()):
        assert time.monotonic() < deadline and proc.poll() is None, "no OTLP receiver"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port_file.read_text().strip()}", out
    proc.kill()
    proc.wait()


def traced(tapline_bin, tmp_path, otlp, cmd, env):
    """Runs cmd under tapline (JSON report, OTLP export, spool kept), then renders the
    spool in the other formats. Returns (calls the SDK saw, exchanges, spans, outputs)."""
    endpoint, otlp_out = otlp
    spool = tmp_path / "spool"
    report = tmp_path / "report.jsonl"
    proc = subprocess.run(
        [tapline_bin, "run", "--format", "json", "--output", str(report), "--otlp", endpoint,
         "--keep-spool", "--spool-dir", str(spool), "--", *cmd],
        env=clean_env(env), capture_output=True, timeout=300, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-4000:]
    calls = [json.loads(l) for l in proc.stdout.decode().splitlines() if l.startswith("{")]
    exchanges = [json.loads(l) for l in report.read_text().splitlines() if l.strip()]
    outputs = {"json": report.read_text(), "stderr": proc.stderr.decode(errors="replace")}
    for fmt in ("table", "har"):
        show = subprocess.run([tapline_bin, "show", "--format", fmt, str(spool)],
                              env=clean_env(), capture_output=True, timeout=60)
        assert show.returncode == 0, show.stderr
        outputs[fmt] = show.stderr.decode(errors="replace") + show.stdout.decode(errors="replace")
    deadline = time.monotonic() + 10
    spans = []
    while time.monotonic() < deadline:
        if otlp_out.exists():
            recs = [json.loads(l) for l in otlp_out.read_text().splitlines() if l.strip()]
            spans = [s for r in recs for s in r.get("spans", [])]
            if spans:
                break
        time.sleep(0.1)
    outputs["otlp"] = otlp_out.read_text() if otlp_out.exists() else ""
    return calls, exchanges, spans, outputs


RESOURCE_KEYS = {
    "table": "aws.dynamodb.table_names",
    "queue_url": "aws.sqs.queue_url",
    "topic_arn": "aws.sns.topic.arn",
    "bucket": "aws.s3.bucket",
    "key": "aws.s3.key",
    "stream": "aws.kinesis.stream_name",
    "function": "aws.lambda.function.name",
    "bus": "aws.eventbridge.event_bus.name",
    "state_machine": "aws.step_functions.state_machine.arn",
    "secret": "aws.secretsmanager.secret.id",
    "parameter": "aws.ssm.parameter.name",
}


def check_calls(calls, exchanges, spans, outputs, expected_names):
    assert sorted({c["name"] for c in calls}) == sorted(expected_names), calls
    by_request_id = {}
    for ex in exchanges:
        if ex.get("aws") and ex["aws"].get("request_id"):
            by_request_id[ex["aws"]["request_id"]] = ex
    for c in calls:
        rid = c["request_id"]
        assert rid, c
        ex = by_request_id.get(rid)
        assert ex is not None, (c, [e.get("aws") for e in exchanges])
        aws = ex["aws"]
        assert f"{aws['service']}.{aws['operation']}" == c["name"], (c, aws)
        assert aws["region"] == "us-east-1", aws
        assert aws["message_ids"] == c["message_ids"], (c, aws)
        if c.get("host_id"):
            assert aws["extended_request_id"] == c["host_id"]
        for field, key in RESOURCE_KEYS.items():
            if field in c:
                got = aws["resource"].get(key)
                got = got if isinstance(got, list) else [got]
                assert c[field] in got, (c, aws)
        # The span, per the OpenTelemetry AWS SDK conventions.
        matching = [s for s in spans if s["attributes"].get("aws.request_id") == rid]
        assert len(matching) == 1, (c, spans)
        span = matching[0]
        attrs = span["attributes"]
        assert span["name"] == c["name"]
        assert attrs["rpc.system"] == "aws-api"
        assert attrs["rpc.service"] == aws["service"]
        assert attrs["rpc.method"] == aws["operation"]
        assert attrs["cloud.region"] == "us-east-1"
        if len(c["message_ids"]) == 1:
            assert attrs["messaging.message.id"] == c["message_ids"][0]
            assert span["kind"] == 4  # PRODUCER
        elif c["message_ids"]:
            children = [s for s in spans if s["parent_span_id"] == span["span_id"]]
            assert sorted(s["attributes"]["messaging.message.id"] for s in children) \
                == sorted(c["message_ids"])
        if "table" in c:
            assert attrs["aws.dynamodb.table_names"] == [c["table"]]
        # The table report names the operation.
        assert c["name"] in outputs["table"]


def assert_nothing_planted(outputs):
    for name, text in outputs.items():
        for marker in (PLANTED, PLANTED_HEX):
            assert marker not in text, f"{marker} leaked into the {name} output"


ALL_OPS = ["DynamoDB.PutItem", "SQS.SendMessage", "SNS.Publish", "S3.PutObject",
           "S3.GetObject", "Kinesis.PutRecord", "Lambda.Invoke", "EventBridge.PutEvents",
           "SFN.StartExecution", "STS.GetCallerIdentity", "SecretsManager.GetSecretValue",
           "SSM.GetParameter"]


def test_boto3_calls_named_and_attributed(tapline_bin, tmp_path, moto, otlp_receiver):
    require_module("boto3")
    env = {"AWS_ACCESS_KEY_ID": f"AKIA{PLANTED}", "AWS_SECRET_ACCESS_KEY": f"{PLANTED}-key",
           "AWS_SESSION_TOKEN": f"{PLANTED}-session-token", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_EC2_METADATA_DISABLED": "true"}
    calls, exchanges, spans, outputs = traced(
        tapline_bin, tmp_path, otlp_receiver,
        [sys.executable, str(CLIENTS / "aws_boto3_calls.py"), str(moto), PLANTED], env)
    check_calls(calls, exchanges, spans, outputs,
                ALL_OPS + ["DynamoDB.GetItem", "SQS.SendMessageBatch"])
    # Both SQS protocols, both S3 addressing styles.
    sqs = [e["aws"] for e in exchanges if e.get("aws", {}) and e["aws"]["operation"] == "SendMessage"]
    assert {e["request_headers"] and "x-amz-target" in str(e["request_headers"]).lower()
            for e in exchanges if e.get("aws") and e["aws"]["operation"] == "SendMessage"} \
        == {True, False}, sqs
    virtual = [e for e in exchanges if e.get("aws") and e["host"]
               and e["host"].startswith("photos.s3.amazonaws.com")]
    assert len(virtual) == 1 and virtual[0]["aws"]["resource"]["aws.s3.key"] == "v/c.txt"
    # Secret-holding services are scrubbed even on a local endpoint.
    for e in exchanges:
        if e.get("aws") and e["aws"]["service"] in ("SecretsManager", "SSM", "STS"):
            assert e["request_headers"] == [] and not e["response_body"], e
    assert_nothing_planted(outputs)


def test_sdk_v3_calls_named_and_attributed(tapline_bin, tmp_path, moto, otlp_receiver, sdk_v3):
    env = {"AWS_EC2_METADATA_DISABLED": "true"}
    calls, exchanges, spans, outputs = traced(
        tapline_bin, tmp_path, otlp_receiver,
        ["node", str(sdk_v3 / "aws_sdk_v3_calls.mjs"), str(moto), PLANTED], env)
    check_calls(calls, exchanges, spans, outputs, ALL_OPS)
    assert_nothing_planted(outputs)


IAM_CLIENT = """
import json, sys, boto3
iam = boto3.client("iam", endpoint_url=f"http://127.0.0.1:{sys.argv[1]}",
                   region_name="us-east-1")
iam.create_user(UserName="bob")
key = iam.create_access_key(UserName="bob")["AccessKey"]
# What the SDK read, for the test only (never printed by a real program).
print(json.dumps({"id": key["AccessKeyId"], "secret": key["SecretAccessKey"]}))
"""


def test_iam_access_key_in_an_xml_response_is_masked(tapline_bin, tmp_path, moto,
                                                      otlp_receiver):
    """IAM answers in XML (query protocol) and is not a scrubbed service: the new key's
    SecretAccessKey must still be masked in every output, while the call stays named
    and its request id readable."""
    require_module("boto3")
    client = tmp_path / "iam_key.py"
    client.write_text(IAM_CLIENT)
    env = {"AWS_ACCESS_KEY_ID": "AKIATESTTESTTEST", "AWS_SECRET_ACCESS_KEY": "test-secret",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}
    calls, exchanges, spans, outputs = traced(
        tapline_bin, tmp_path, otlp_receiver, [sys.executable, str(client), str(moto)], env)
    (got,) = calls
    assert len(got["secret"]) >= 20
    (create,) = [e for e in exchanges
                 if e.get("aws") and e["aws"]["operation"] == "CreateAccessKey"]
    assert create["aws"]["service"].lower() == "iam" and create["aws"]["request_id"]
    body = create["response_body"]
    assert "<SecretAccessKey>****</SecretAccessKey>" in body, body
    assert create["aws"]["request_id"] in body
    for name, text in outputs.items():
        assert got["secret"] not in text, name
        assert got["id"] not in text, name
    # HAR entries carry the call too (`_aws`).
    assert re.search(r'"operation":\s*"CreateAccessKey"', outputs["har"]), outputs["har"][:2000]
