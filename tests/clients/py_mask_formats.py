#!/usr/bin/env python3
"""Sends secrets where they really travel beside their names (the format-masking test
greps tapline's output for them). Usage: py_mask_formats.py CONFIG.json

CONFIG holds `base` (http://127.0.0.1:PORT of the test server), `moto` (the port of a
moto_server on 127.0.0.1) and `secrets` (label -> value). Requests, in order:
  1. requests POST {base}/echo  multipart/form-data: `user`, `password`, a PNG file
     `photo.png`, a text file `app.env` holding `API_TOKEN=...`
  2. requests POST {base}/echo  GraphQL: `$pw` passed to `password:`, a literal
     `secret:` argument
  3. boto3 ecs.register_task_definition  (container environment name/value pairs)
  4. boto3 cloudformation.create_stack   (ParameterKey/ParameterValue), then
     describe_stacks (moto answers the parameters back, in XML)
  5. curl  POST {base}/echo  text/plain: an `Authorization: Bearer` line, `api_key=`
Every request to the test server carries `X-Quiet: 1`; its /echo answers with the first
64 bytes of what it got, which hold no secret. Prints one JSON line: the request ids
moto answered (they must stay readable in tapline's output).
"""

import json
import subprocess
import sys

import boto3
import requests

QUIET = {"X-Quiet": "1"}


def main():
    cfg = json.loads(open(sys.argv[1]).read())
    base, s = cfg["base"], cfg["secrets"]
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    with requests.Session() as http:
        http.post(f"{base}/echo", headers=QUIET,
                  data={"user": "ann", "password": s["multipart"]},
                  files={"avatar": ("photo.png", png, "image/png"),
                         "config": ("app.env", f"HOST=db\nAPI_TOKEN={s['file']}\n",
                                    "text/plain")}).raise_for_status()
        query = ("mutation Login($user: String!, $pw: String!) { "
                 "login(username: $user, password: $pw) { id } "
                 f"rotate(secret: \"{s['literal']}\") {{ ok }} }}")
        http.post(f"{base}/echo", headers=QUIET, json={
            "query": query, "variables": {"user": "ann", "pw": s["graphql"]},
            "operationName": "Login"}).raise_for_status()
    kw = dict(endpoint_url=f"http://127.0.0.1:{cfg['moto']}", region_name="us-east-1",
              aws_access_key_id="testing", aws_secret_access_key="testing")
    ids = {}
    ecs = boto3.client("ecs", **kw)
    r = ecs.register_task_definition(family="web", containerDefinitions=[{
        "name": "app", "image": "nginx", "memory": 128,
        "environment": [{"name": "LOG_LEVEL", "value": "info"},
                        {"name": "DB_PASSWORD", "value": s["ecs"]}]}])
    ids["ecs"] = r["ResponseMetadata"]["RequestId"]
    cfn = boto3.client("cloudformation", **kw)
    template = {"Parameters": {"DbPassword": {"Type": "String", "NoEcho": True},
                               "Env": {"Type": "String"}},
                "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}
    r = cfn.create_stack(StackName="web", TemplateBody=json.dumps(template), Parameters=[
        {"ParameterKey": "Env", "ParameterValue": "prod"},
        {"ParameterKey": "DbPassword", "ParameterValue": s["cfn"]}])
    ids["create_stack"] = r["ResponseMetadata"]["RequestId"]
    r = cfn.describe_stacks(StackName="web")
    ids["describe_stacks"] = r["ResponseMetadata"]["RequestId"]
    text = ("note: uploaded by ann from the nightly build of the web service\n"
            f"Authorization: Bearer {s['bearer']}\napi_key={s['text_kv']} user=ann\n")
    subprocess.run(["curl", "-sS", "-o", "/dev/null", "-H", "X-Quiet: 1",
                    "-H", "Content-Type: text/plain", "--data-binary", text,
                    f"{base}/echo"], check=True)
    print(json.dumps(ids))


if __name__ == "__main__":
    main()
