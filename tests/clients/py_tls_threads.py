#!/usr/bin/env python3
"""T threads x N HTTPS GETs at once. Even threads use their own requests.Session
(keep-alive), odd threads use urllib (a new connection per request). Every request has a
unique query t=<thread>&i=<i>; the server echoes it in X-Echo-Query.
Usage: py_tls_threads.py CA_PEM BASE T N
Prints a summary line; exits non-zero if any reply did not match its request."""
import ssl
import sys
import threading
import urllib.request

import requests

ca, base, threads, per = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
ctx = ssl.create_default_context(cafile=ca)
errors = []
lock = threading.Lock()
start = threading.Barrier(threads)


def check(q, status, echoed):
    if status != 200 or echoed != q:
        with lock:
            errors.append((q, status, echoed))


def worker(t):
    start.wait()
    try:
        work(t)
    except Exception as e:  # a thread's exception would not change the exit status
        with lock:
            errors.append((t, repr(e)))


def work(t):
    if t % 2 == 0:
        with requests.Session() as s:
            for i in range(per):
                q = f"t={t}&i={i}"
                r = s.get(f"{base}/hello?{q}", headers={"X-Tapline-Test": q}, verify=ca,
                          timeout=30)
                check(q, r.status_code, r.headers.get("X-Echo-Query"))
    else:
        for i in range(per):
            q = f"t={t}&i={i}"
            req = urllib.request.Request(f"{base}/hello?{q}", headers={"X-Tapline-Test": q})
            with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
                r.read()
                check(q, r.status, r.headers.get("X-Echo-Query"))


ts = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
for t in ts:
    t.start()
for t in ts:
    t.join()
print(f"requests={threads * per} errors={len(errors)}")
sys.exit(1 if errors else 0)
