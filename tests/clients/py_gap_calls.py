"""Two GETs on fresh connections, a pause between them: BASE_URL MARKER GAP_SECONDS.

Writes MARKER (an empty file) right before the second request, so that a test reading
the report while this runs can tell whether the first exchange was reported before the
second call was made."""
import sys
import time
import urllib.request

base, marker, gap = sys.argv[1], sys.argv[2], float(sys.argv[3])
with urllib.request.urlopen(f"{base}/hello?call=first", timeout=30) as r:
    r.read()
time.sleep(gap)
open(marker, "w").close()
with urllib.request.urlopen(f"{base}/hello?call=second", timeout=30) as r:
    r.read()
