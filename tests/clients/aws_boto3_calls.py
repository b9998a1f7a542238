"""AWS API calls from boto3 against a moto_server on 127.0.0.1 (argv[1] = port).

Prints one JSON line per call: the name tapline should give it and what boto3 itself
read from the response (request id, message ids), for the test to compare with what
tapline reconstructed from the wire. Credentials, the session token and the secret
values are planted (argv[2] = the planted marker) for the privacy check.
"""
import json
import socket
import sys
import urllib.request

import boto3
from botocore.config import Config

port, planted = sys.argv[1], sys.argv[2]
endpoint = f"http://127.0.0.1:{port}"
region = "us-east-1"

# Virtual-hosted S3 needs a bucket host name: resolve *.amazonaws.com to moto.
_real_getaddrinfo = socket.getaddrinfo


def _getaddrinfo(host, *a, **kw):
    if isinstance(host, str) and host.endswith(".amazonaws.com"):
        host = "127.0.0.1"
    return _real_getaddrinfo(host, *a, **kw)


socket.getaddrinfo = _getaddrinfo


def client(name, **kw):
    return boto3.client(name, endpoint_url=kw.pop("endpoint_url", endpoint), region_name=region,
                        **kw)


def out(name, resp=None, message_ids=(), **extra):
    meta = (resp or {}).get("ResponseMetadata", {})
    headers = meta.get("HTTPHeaders", {})
    print(json.dumps({"name": name, "request_id": meta.get("RequestId"),
                      "host_id": headers.get("x-amz-id-2"), "message_ids": list(message_ids),
                      **extra}), flush=True)


ddb = client("dynamodb")
ddb.create_table(TableName="orders", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                 AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                 BillingMode="PAY_PER_REQUEST")
out("DynamoDB.PutItem", ddb.put_item(TableName="orders", Item={"id": {"S": "1"}}),
    table="orders")
out("DynamoDB.GetItem", ddb.get_item(TableName="orders", Key={"id": {"S": "1"}}),
    table="orders")

sqs = client("sqs")
url = sqs.create_queue(QueueName="jobs")["QueueUrl"]
r = sqs.send_message(QueueUrl=url, MessageBody="hello",
                     MessageSystemAttributes={"AWSTraceHeader": {
                         "DataType": "String",
                         "StringValue": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"}})
out("SQS.SendMessage", r, [r["MessageId"]], queue_url=url)
r = sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "a", "MessageBody": "1"},
                                                  {"Id": "b", "MessageBody": "2"}])
out("SQS.SendMessageBatch", r, [e["MessageId"] for e in r["Successful"]], queue_url=url)

# SQS's query protocol (older SDKs): a form POST, signed-looking, to the queue URL.
form = f"Action=SendMessage&Version=2012-11-05&QueueUrl={urllib.request.quote(url, safe='')}&MessageBody=q"
req = urllib.request.Request(endpoint + "/", data=form.encode(), method="POST", headers={
    "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
    "Authorization": f"AWS4-HMAC-SHA256 Credential=AKIAPLANTED/20240101/{region}/sqs/aws4_request, "
                     f"SignedHeaders=host, Signature={planted.encode().hex()}",
    "X-Amz-Date": "20240101T000000Z"})
with urllib.request.urlopen(req) as resp:
    body = resp.read().decode()
    mid = body.split("<MessageId>")[1].split("</MessageId>")[0]
    rid = resp.headers.get("x-amzn-RequestId") or body.split("<RequestId>")[1].split("</RequestId>")[0]
print(json.dumps({"name": "SQS.SendMessage", "request_id": rid, "message_ids": [mid],
                  "queue_url": url, "protocol": "query"}), flush=True)

sns = client("sns")
arn = sns.create_topic(Name="alerts")["TopicArn"]
r = sns.publish(TopicArn=arn, Message="hi")
out("SNS.Publish", r, [r["MessageId"]], topic_arn=arn)

s3 = client("s3", config=Config(s3={"addressing_style": "path"}))
s3.create_bucket(Bucket="photos")
out("S3.PutObject", s3.put_object(Bucket="photos", Key="a/b.txt", Body=b"x"),
    bucket="photos", key="a/b.txt")
out("S3.GetObject", s3.get_object(Bucket="photos", Key="a/b.txt"), bucket="photos",
    key="a/b.txt")
vs3 = client("s3", endpoint_url=f"http://s3.amazonaws.com:{port}",
             config=Config(s3={"addressing_style": "virtual"}))
out("S3.PutObject", vs3.put_object(Bucket="photos", Key="v/c.txt", Body=b"y"),
    bucket="photos", key="v/c.txt", style="virtual")

kin = client("kinesis")
kin.create_stream(StreamName="clicks", ShardCount=1)
r = kin.put_record(StreamName="clicks", Data=b"d", PartitionKey="p")
out("Kinesis.PutRecord", r, [r["SequenceNumber"]], stream="clicks")

lam = client("lambda")
try:
    lam.invoke(FunctionName="worker", Payload=b"{}")
except lam.exceptions.ResourceNotFoundException as e:
    out("Lambda.Invoke", e.response, function="worker")

ev = client("events")
r = ev.put_events(Entries=[{"Source": "app", "DetailType": "t", "Detail": "{}",
                            "EventBusName": "default"}])
out("EventBridge.PutEvents", r, [e["EventId"] for e in r["Entries"]], bus="default")

sfn = client("stepfunctions")
sm = sfn.create_state_machine(
    name="flow", roleArn="arn:aws:iam::123456789012:role/sfn",
    definition=json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}))
r = sfn.start_execution(stateMachineArn=sm["stateMachineArn"], input="{}")
out("SFN.StartExecution", r, state_machine=sm["stateMachineArn"])

out("STS.GetCallerIdentity", client("sts").get_caller_identity())

sm_client = client("secretsmanager")
sm_client.create_secret(Name="prod/db", SecretString=f"{planted}-secret-value")
r = sm_client.get_secret_value(SecretId="prod/db")
assert planted in r["SecretString"]
out("SecretsManager.GetSecretValue", r, secret="prod/db")

ssm = client("ssm")
ssm.put_parameter(Name="/app/db-password", Value=f"{planted}-parameter", Type="SecureString")
r = ssm.get_parameter(Name="/app/db-password", WithDecryption=True)
assert planted in r["Parameter"]["Value"]
out("SSM.GetParameter", r, parameter="/app/db-password")
