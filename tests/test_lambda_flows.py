"""Flows across Lambda functions: a producer function sends to SQS (moto_server on
127.0.0.1) from boto3; a consumer invocation gets that message in an SQS event built
from moto's real ReceiveMessage answer. The consumer's invocation span must link to the
producer's `SQS.SendMessage` span:

- in the same execution environment, by message id (the extension remembers what it
  exported);
- in another function (another extension), by the `AWSTraceHeader` the message carries
  plus the message id (the producer's span id is derived from it).

Reuses the emulator machinery of tests/lambda_sim/harness.py and the fixtures of
tests/test_lambda_e2e.py (simulator, extension from an `opt/extensions/` folder, runtime
through wrapper.sh, loopback OTLP receiver).
"""

import json
import os
import socket
import subprocess
import time
import urllib.request

import pytest

from conftest import clean_env, require_module, require_tool
from test_lambda_e2e import build, servers, xray_trace_id  # noqa: F401  (fixtures; harness path)
from harness import Lambda  # noqa: E402

boto3 = require_module("boto3")

FLOW_HANDLER = r'''
import json, os, threading, time
import boto3

def send_when(flag, sqs, url):
    # Sends once the test says so: after this invocation was reported.
    end = time.monotonic() + 60
    while not os.path.exists(flag) and time.monotonic() < end:
        time.sleep(0.01)
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"order": "later"}))

def handle(event, context):
    if "Records" in event:
        return {"consumed": [r["messageId"] for r in event["Records"]]}
    sqs = boto3.client("sqs", endpoint_url="http://127.0.0.1:" + os.environ["FLOW_MOTO_PORT"],
                       region_name="us-east-1", aws_access_key_id="test",
                       aws_secret_access_key="test")
    url = sqs.get_queue_url(QueueName="flow-jobs")["QueueUrl"]
    if "later" in event:
        threading.Thread(target=send_when, args=(event["later"], sqs, url)).start()
        return {"later": True}
    # What the X-Ray SDK does in a traced function: the trace travels with the message.
    r = sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"order": event.get("n", 0)}),
                         MessageSystemAttributes={"AWSTraceHeader": {
                             "DataType": "String",
                             "StringValue": os.environ.get("_X_AMZN_TRACE_ID", "")}})
    return {"message_id": r["MessageId"], "trace": os.environ.get("_X_AMZN_TRACE_ID", "")}
'''


@pytest.fixture
def moto_sqs(moto):
    port = moto
    sqs = boto3.client("sqs", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test")
    url = sqs.create_queue(QueueName="flow-jobs")["QueueUrl"]
    yield port, sqs, url


@pytest.fixture
def flow_lam(build, servers, tmp_path, monkeypatch, moto_sqs):  # noqa: F811
    monkeypatch.setenv("FLOW_MOTO_PORT", str(moto_sqs[0]))
    made = []

    def make(**kw):
        d = os.path.join(str(tmp_path), f"env{len(made)}")
        os.makedirs(d)
        env = Lambda(build, servers, d, handler=FLOW_HANDLER, **kw)
        made.append(env)
        return env

    yield make
    for env in made:
        env.close()


def sqs_event(sqs, url):
    """The Lambda SQS event for the next message on the queue, from moto's answer."""
    msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=1,
                               MessageSystemAttributeNames=["All"],
                               MessageAttributeNames=["All"])["Messages"]
    m = msgs[0]
    attrs = {"ApproximateReceiveCount": "1", "SentTimestamp": str(int(time.time() * 1000)),
             "SenderId": "AIDAIENQZJOLO23YVJ4VO",
             "ApproximateFirstReceiveTimestamp": str(int(time.time() * 1000))}
    attrs.update(m.get("Attributes", {}))
    return {"Records": [{
        "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
        "attributes": attrs, "messageAttributes": {}, "md5OfBody": m["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:flow-jobs",
        "awsRegion": "us-east-1"}]}


def producer_span(env, message_id):
    spans = [s for s in env.spans() if s["name"] == "SQS.SendMessage"
             and s["attributes"].get("messaging.message.id") == message_id]
    assert len(spans) == 1, (env.spans(), env.logs())
    return spans[0]


def consumer_span(env, rid):
    spans = [s for s in env.spans() if s["kind"] == 2
             and s["attributes"].get("faas.invocation_id") == rid]
    assert len(spans) == 1, (env.spans(), env.logs())
    return spans[0]


def test_consumer_links_to_producer_in_the_same_environment(flow_lam, moto_sqs):
    _, sqs, url = moto_sqs
    env = flow_lam()
    _, resp, _ = env.invoke({"n": 1})
    assert resp[2] == "success", env.logs()
    message_id = json.loads(resp[4])["message_id"]
    event = sqs_event(sqs, url)
    assert event["Records"][0]["messageId"] == message_id
    # Without the trace header: only the extension's memory can join them.
    event["Records"][0]["attributes"].pop("AWSTraceHeader", None)
    rid, resp, _ = env.invoke(event)
    assert json.loads(resp[4]) == {"consumed": [message_id]}
    env.shutdown()

    prod = producer_span(env, message_id)
    assert prod["attributes"]["aws.sqs.queue_url"] == url
    cons = consumer_span(env, rid)
    attrs = cons["attributes"]
    assert attrs["faas.trigger"] == "pubsub"
    assert attrs["aws.lambda.event_source"] == "aws:sqs"
    assert attrs["messaging.destination.name"] == "flow-jobs"
    assert attrs["messaging.message.id"] == message_id
    links = cons["links"]
    assert [(l["trace_id"], l["span_id"]) for l in links] == \
        [(prod["trace_id"], prod["span_id"])], (
            links, prod["attributes"].get("faas.invocation_id"),
            prod["attributes"].get("tapline.lambda.phase"), rid, env.logs()[-4000:])
    assert links[0]["attributes"]["messaging.message.id"] == message_id
    assert links[0]["attributes"]["tapline.link.via"] == "message_id"


def test_consumer_links_to_a_producer_call_reported_in_the_same_batch(flow_lam, moto_sqs,
                                                                      tmp_path):
    """The producer's call became final only after its invocation was reported (a
    background thread sent the message after the response), so it is reported with the
    consumer's invocation span. The link was missing: the span was built before the
    batch's calls were remembered."""
    _, sqs, url = moto_sqs
    env = flow_lam()
    flag = str(tmp_path / "send-now")
    _, resp, ready = env.invoke({"n": 3, "later": flag})
    assert resp[2] == "success", env.logs()
    assert ready, env.logs()  # the extension reported invocation 1 and called Next
    open(flag, "w").close()
    deadline = time.monotonic() + 60
    event = None
    while event is None and time.monotonic() < deadline:
        try:
            e = sqs_event(sqs, url)
        except KeyError:  # no message yet
            continue
        if json.loads(e["Records"][0]["body"]) == {"order": "later"}:
            event = e
    assert event is not None, env.logs()
    message_id = event["Records"][0]["messageId"]
    rid, resp, _ = env.invoke(event)
    assert json.loads(resp[4]) == {"consumed": [message_id]}, env.logs()
    env.shutdown()

    prod = producer_span(env, message_id)
    assert prod["attributes"]["tapline.lambda.phase"] == "after_response"
    cons = consumer_span(env, rid)
    links = cons["links"]
    assert [(l["trace_id"], l["span_id"]) for l in links] == \
        [(prod["trace_id"], prod["span_id"])], (links, prod, env.logs())
    assert links[0]["attributes"]["tapline.link.via"] == "message_id"


def test_consumer_function_links_to_producer_function_by_trace_header(flow_lam, moto_sqs):
    _, sqs, url = moto_sqs
    producer = flow_lam()
    _, resp, _ = producer.invoke({"n": 2})
    assert resp[2] == "success", producer.logs()
    body = json.loads(resp[4])
    message_id = body["message_id"]
    producer.shutdown()
    prod = producer_span(producer, message_id)
    assert prod["trace_id"] == xray_trace_id(body["trace"])

    # The consumer is another function: another extension, which never saw the producer.
    consumer = flow_lam()
    event = sqs_event(sqs, url)
    assert event["Records"][0]["attributes"]["AWSTraceHeader"] == body["trace"]
    rid, resp, _ = consumer.invoke(event)
    assert resp[2] == "success", consumer.logs()
    consumer.shutdown()
    cons = consumer_span(consumer, rid)
    assert cons["trace_id"] != prod["trace_id"]
    links = cons["links"]
    assert [(l["trace_id"], l["span_id"]) for l in links] == \
        [(prod["trace_id"], prod["span_id"])], (links, prod)
    assert links[0]["attributes"]["tapline.link.via"] == "AWSTraceHeader"
