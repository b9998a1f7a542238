#!/usr/bin/env python3
"""T threads x N keep-alive GETs, each thread with its own requests.Session.
Each request has a unique query t=<thread>&i=<i>; the server echoes it in X-Echo-Query.
Prints a summary line; exits non-zero if any reply did not match its request."""
import sys
import threading

import requests

base, threads, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
errors = []
ports = set()
lock = threading.Lock()
start = threading.Barrier(threads)


def worker(t):
    with requests.Session() as s:
        start.wait()
        for i in range(per):
            q = f"t={t}&i={i}"
            r = s.get(f"{base}/hello?{q}")
            with lock:
                ports.add(r.headers["X-Client-Port"])
                if r.status_code != 200 or r.headers["X-Echo-Query"] != q:
                    errors.append((q, r.status_code, r.headers.get("X-Echo-Query")))


ts = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
for t in ts:
    t.start()
for t in ts:
    t.join()
print(f"requests={threads * per} errors={len(errors)} connections={len(ports)}")
sys.exit(1 if errors else 0)
