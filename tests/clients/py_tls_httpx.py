#!/usr/bin/env python3
"""httpx over HTTPS, sync Client or AsyncClient (asyncio: OpenSSL with a memory BIO).
Usage: py_tls_httpx.py sync|async CA_PEM BASE
Three keep-alive GETs and one 5000-byte POST; prints one line per request."""
import asyncio
import ssl
import sys

import httpx

mode, ca, base = sys.argv[1], sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
payload = b"x" * 5000


def report(r):
    print(r.request.method, r.status_code, r.headers["X-Echo-Query"],
          r.headers["X-Client-Port"], len(r.content))


if mode == "sync":
    with httpx.Client(verify=ctx, http2=False, timeout=20) as c:
        for i in range(3):
            report(c.get(f"{base}/hello?from=httpx-sync&i={i}",
                         headers={"X-Tapline-Test": "httpx-sync"}))
        report(c.post(f"{base}/echo?from=httpx-sync", content=payload))
else:
    async def main():
        async with httpx.AsyncClient(verify=ctx, http2=False, timeout=20) as c:
            for i in range(3):
                report(await c.get(f"{base}/hello?from=httpx-async&i={i}",
                                   headers={"X-Tapline-Test": "httpx-async"}))
            report(await c.post(f"{base}/echo?from=httpx-async", content=payload))
    asyncio.run(main())
