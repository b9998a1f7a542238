#!/usr/bin/env python3
"""urllib (http.client underneath): one GET with a custom header, one POST, one GET of
an HTTP/1.0 close-delimited response. Prints what it got; exits 7 on purpose so that
tests can check exit status passthrough alongside the output."""
import hashlib
import json
import os
import sys
import urllib.request

base = sys.argv[1]
exit_code = int(sys.argv[2]) if len(sys.argv) > 2 else 0

if os.environ.get("REPORT_PRELOAD"):
    # Whether libtapline.so is mapped in this process: to stderr, so stdout stays
    # comparable with a run without the library.
    with open("/proc/self/maps") as f:
        print("libtapline mapped:", "libtapline" in f.read(), file=sys.stderr)

req = urllib.request.Request(base + "/hello?from=urllib", headers={"X-Tapline-Test": "urllib-get"})
with urllib.request.urlopen(req) as r:
    print("GET", r.status, r.headers["X-Echo-Query"], r.read().decode().strip())

payload = b"field=tapline&filler=" + b"x" * 3000
req = urllib.request.Request(base + "/echo?from=urllib", data=payload, method="POST",
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
with urllib.request.urlopen(req) as r:
    reply = json.loads(r.read())
    print("POST", r.status, reply["size"], reply["sha256"] == hashlib.sha256(payload).hexdigest())

with urllib.request.urlopen(base + "/http10/5000?from=urllib") as r:
    body = r.read()
    print("HTTP10", r.status, r.version, len(body))
sys.exit(exit_code)
