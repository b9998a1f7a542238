#!/usr/bin/env python3
"""requests over HTTPS, one GET; for the with/without-the-library comparisons.
Usage: py_tls_get.py URL [CA_PEM]  (no CA_PEM: the system trust store)
Prints the status and the body; on a TLS or connection error prints the exception's
class and exits 3."""
import sys

import requests

url = sys.argv[1]
verify = sys.argv[2] if len(sys.argv) > 2 else True
try:
    r = requests.get(url, verify=verify, timeout=20)
except requests.exceptions.SSLError as e:
    print("SSLError", "CERTIFICATE_VERIFY_FAILED" in str(e))
    sys.exit(3)
except requests.exceptions.ConnectionError as e:
    print("ConnectionError")
    sys.exit(3)
print(r.status_code, r.text.strip())
