#!/usr/bin/env python3
"""Sends planted secrets to the test servers (the masking tests grep tapline's output
for them). Usage: py_secrets.py CONFIG.json

CONFIG holds `base` (http://127.0.0.1:PORT), `https_base`, `ca` (the test CA) and the
secrets. Requests go through curl (a child process, traced because it inherits the
preload) and Python `requests`. Every request carries `X-Quiet: 1` so that the server
does not echo the query back in its headers. Nothing a server answers is printed: this
program's own output must be free of secrets too.

Requests, in order:
  1. curl  GET  {base}/hello?api_key=..&visible=yes   Authorization: Bearer, Cookie: session=..
  2. curl  GET  {https_base}/hello?api_key=..         Authorization: Bearer (over TLS)
  3. requests GET  {base}/hello?sigv4=1              SigV4 Authorization
  4. requests POST {base}/echo   JSON with `password` three objects deep
  5. requests GET  {base}/set-cookie                 the server's Set-Cookie: session=..
  6. requests POST {base}/echo   long JSON, `token` straddling TAPLINE_MAX_BODY
  7. requests POST {base}/echo   long JSON, `token` well before TAPLINE_MAX_BODY
"""

import json
import subprocess
import sys

import requests

QUIET = {"X-Quiet": "1"}


def curl(*args):
    subprocess.run(["curl", "-sS", "-o", "/dev/null", "-H", "X-Quiet: 1", *args], check=True)


def main():
    cfg = json.loads(open(sys.argv[1]).read())
    base, https_base, s = cfg["base"], cfg["https_base"], cfg["secrets"]

    curl("-H", f"Authorization: Bearer {s['bearer']}",
         "-H", f"Cookie: session={s['session']}; theme=dark",
         f"{base}/hello?api_key={s['api_key']}&visible=yes")
    curl("--cacert", cfg["ca"], "-H", f"Authorization: Bearer {s['bearer']}",
         f"{https_base}/hello?api_key={s['api_key']}")

    with requests.Session() as http:
        sigv4 = (f"AWS4-HMAC-SHA256 Credential={s['akia']}/20260101/us-east-1/s3/aws4_request, "
                 f"SignedHeaders=host;x-amz-date, Signature={s['signature']}")
        http.get(f"{base}/hello?sigv4=1", headers={
            **QUIET, "Authorization": sigv4, "X-Amz-Date": "20260101T000000Z"}).raise_for_status()

        nested = {"user": "visible-user",
                  "level1": {"level2": {"password": s["password"], "note": "visible-note"}}}
        http.post(f"{base}/echo", json=nested, headers=QUIET).raise_for_status()

        http.get(f"{base}/set-cookie", headers=QUIET).raise_for_status()

        cut = cfg["max_body"]
        # `"token": "<secret>"` with the cut inside the secret: the captured prefix ends
        # in the middle of the value.
        head = '{"padding": "'
        tail = '", "token": "'
        pad = cut - len(head) - len(tail) - cfg["straddle_before_cut"]
        body = head + "p" * pad + tail + s["token_straddle"] + '", "more": "' + "m" * 3000 + '"}'
        assert body.index(s["token_straddle"]) + cfg["straddle_before_cut"] == cut
        json.loads(body)
        http.post(f"{base}/echo", data=body, headers={
            **QUIET, "Content-Type": "application/json"}).raise_for_status()

        body = json.dumps({"id": 7, "token": s["token_before"], "padding": "q" * 4000})
        http.post(f"{base}/echo", data=body, headers={
            **QUIET, "Content-Type": "application/json"}).raise_for_status()
    print("py_secrets: done")


if __name__ == "__main__":
    main()
