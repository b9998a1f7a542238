#!/usr/bin/env python3
"""urllib over HTTPS: a GET with a custom header and a 3000-byte form POST.
Trusts the CA named by SSL_CERT_FILE (ssl.create_default_context reads it)."""
import sys
import urllib.request

base = sys.argv[1]
req = urllib.request.Request(f"{base}/hello?from=py-urllib-tls",
                             headers={"X-Tapline-Test": "urllib-tls"})
with urllib.request.urlopen(req, timeout=20) as r:
    print("GET", r.status, r.headers["X-Echo-Query"], r.read().decode().strip())
data = b"field=tapline&filler=" + b"u" * 3000
req = urllib.request.Request(f"{base}/echo?from=py-urllib-tls", data=data)
with urllib.request.urlopen(req, timeout=20) as r:
    print("POST", r.status, r.read().decode())
