#!/usr/bin/env python3
"""Sends credential-shaped values under neutral names (the value-shape masking test
greps tapline's output for them). Usage: py_value_shapes.py CONFIG.json

CONFIG holds `base` (http://127.0.0.1:PORT), `secrets` (label -> value) and
`neighbours` (label -> value: ordinary data that must stay readable). Requests go
through Python `requests` and curl (a traced child). Every request carries `X-Quiet: 1`
so that the server does not echo the query back. The /echo server answers with the
first 64 bytes of what it got, so response bodies carry secrets too. Nothing the
server answers is printed.

Requests, in order:
  1. requests POST {base}/echo  JSON: every secret under a neutral key, neighbours beside
  2. requests POST {base}/echo  text/plain: `Authorization: Bearer ...` line, a PEM key
  3. requests POST {base}/echo  form: neutral names
  4. requests POST {base}/echo  XML: neutral element names
  5. curl     POST {base}/echo?ref=<github token>  text body, header `X-Upstream: <jwt>`
"""

import json
import subprocess
import sys

import requests

QUIET = {"X-Quiet": "1"}


def main():
    cfg = json.loads(open(sys.argv[1]).read())
    base, s, n = cfg["base"], cfg["secrets"], cfg["neighbours"]
    with requests.Session() as http:
        doc = {"id": n["uuid"], "digest": n["sha256"], "avatar": n["image"]}
        # A bare Bearer or Basic token has no shape of its own: it travels with its scheme.
        scheme = {"bearer": "Bearer ", "basic": "Basic "}
        doc.update({f"field{i}": scheme.get(k, "") + v for i, (k, v) in enumerate(s.items())})
        http.post(f"{base}/echo", json=doc, headers=QUIET).raise_for_status()
        # The secret alone first, so that the server's 64-byte echo holds it whole.
        http.post(f"{base}/echo", json={"a": s["stripe"]}, headers=QUIET).raise_for_status()
        text = (f"Authorization: Bearer {s['bearer']}\nrequest {n['request_id']}\n"
                f"{s['pem']}\n")
        http.post(f"{base}/echo", data=text.encode(),
                  headers={**QUIET, "Content-Type": "text/plain"}).raise_for_status()
        http.post(f"{base}/echo", data={"x": s["jwt"], "y": s["slack"], "rid": n["request_id"]},
                  headers=QUIET).raise_for_status()
        xml = (f"<Items><Item><A>{s['akid']}</A><B>{s['aws_secret']}</B>"
               f"<Rid>{n['request_id']}</Rid></Item></Items>")
        http.post(f"{base}/echo", data=xml.encode(),
                  headers={**QUIET, "Content-Type": "application/xml"}).raise_for_status()
    subprocess.run(["curl", "-sS", "-o", "/dev/null", "-H", "X-Quiet: 1",
                    "-H", f"X-Upstream: {s['jwt']}", "-H", "Content-Type: text/plain",
                    "--data-binary", f"google={s['google']} basic=Basic {s['basic']}",
                    f"{base}/echo?ref={s['github']}&rid={n['request_id']}"], check=True)
    print("py_value_shapes: done")


if __name__ == "__main__":
    main()
