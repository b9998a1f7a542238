#!/usr/bin/env python3
"""requests.Session over HTTPS: N sequential GETs on one keep-alive connection.
Usage: py_tls_requests_session.py CA_PEM BASE N
Prints, per request, "<i> <echoed query> <client port seen by the server> <body>"."""
import sys

import requests

ca, base, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
with requests.Session() as s:
    for i in range(n):
        # verify per request: REQUESTS_CA_BUNDLE in the environment would win over
        # Session.verify
        r = s.get(f"{base}/hello?i={i}", headers={"X-Tapline-Test": f"tls-session-{i}"},
                  verify=ca, timeout=20)
        r.raise_for_status()
        print(i, r.headers["X-Echo-Query"], r.headers["X-Client-Port"], r.text.strip())
