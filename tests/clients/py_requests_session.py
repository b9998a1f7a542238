#!/usr/bin/env python3
"""requests.Session: N sequential GETs on one keep-alive connection.
Prints, per request, the query the server echoed and the client port it saw."""
import sys

import requests

base, n = sys.argv[1], int(sys.argv[2])
with requests.Session() as s:
    for i in range(n):
        r = s.get(f"{base}/hello?i={i}", headers={"X-Tapline-Test": f"session-{i}"})
        r.raise_for_status()
        print(i, r.headers["X-Echo-Query"], r.headers["X-Client-Port"], r.text.strip())
