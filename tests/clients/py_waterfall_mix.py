#!/usr/bin/env python3
"""Parallel HTTP, HTTPS and failing calls, for the HTML report's waterfall.

Usage: py_waterfall_mix.py HTTP_BASE HTTPS_BASE CA_PEM SECRET

Four threads at once:
  - a requests.Session on plain HTTP: three keep-alive GETs (/hello?n=0..2), then
    /status/404 on the same connection;
  - HTTPS (requests, its own session): GET /bytes/2048 with `Authorization: Bearer
    SECRET`, then POST /echo with a JSON body {"user", "password": SECRET};
  - urllib on plain HTTP: GET /status/503, then GET /slow;
  - a failing call: GET /drop (the server closes without answering).
Prints one line per call; exits 0 when every call did what it should (the /drop one
must fail)."""
import json
import ssl
import sys
import threading
import urllib.error
import urllib.request

import requests

http, https, ca, secret = sys.argv[1:5]
results = {}
lock = threading.Lock()
start = threading.Barrier(4)


def note(name, value):
    with lock:
        results[name] = value
    print(name, value, flush=True)


def keepalive():
    start.wait()
    with requests.Session() as s:
        for n in range(3):
            note(f"hello-{n}", s.get(f"{http}/hello?n={n}").status_code)
        note("missing", s.get(f"{http}/status/404").status_code)


def tls():
    start.wait()
    with requests.Session() as s:
        # verify= on each call: a session's own setting loses to REQUESTS_CA_BUNDLE.
        r = s.get(f"{https}/bytes/2048", headers={"Authorization": f"Bearer {secret}"},
                  verify=ca)
        note("tls-bytes", r.status_code)
        r = s.post(f"{https}/echo", data=json.dumps({"user": "ada", "password": secret}),
                   headers={"Content-Type": "application/json"}, verify=ca)
        note("tls-echo", r.status_code)


def plain_urllib():
    start.wait()
    try:
        urllib.request.urlopen(f"{http}/status/503", timeout=10)
        note("unavailable", 200)
    except urllib.error.HTTPError as e:
        note("unavailable", e.code)
    with urllib.request.urlopen(f"{http}/slow", timeout=10) as r:
        r.read()
        note("slow", r.status)


def failing():
    start.wait()
    try:
        urllib.request.urlopen(f"{http}/drop", timeout=10)
        note("drop", "answered")
    except Exception as e:  # noqa: BLE001 (any failure is what we want here)
        note("drop", f"failed {type(e).__name__}")


threads = [threading.Thread(target=f) for f in (keepalive, tls, plain_urllib, failing)]
for t in threads:
    t.start()
for t in threads:
    t.join()
want = {"hello-0": 200, "hello-1": 200, "hello-2": 200, "missing": 404, "tls-bytes": 200,
        "tls-echo": 200, "unavailable": 503, "slow": 200}
ok = all(results.get(k) == v for k, v in want.items()) and str(results.get("drop")).startswith("failed")
sys.exit(0 if ok else 1)
