"""GETs the URL on each line of stdin, one at a time, and prints "done <url>" after each
(flushed); exits at the end of stdin. A test drives it to make calls when it wants."""
import sys
import urllib.request

for line in sys.stdin:
    url = line.strip()
    if not url:
        continue
    with urllib.request.urlopen(url, timeout=30) as r:
        r.read()
    print("done", url, flush=True)
