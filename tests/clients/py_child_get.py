#!/usr/bin/env python3
"""A child process: prints `<role> <pid>` and GETs /hello?who=<role>."""
import os
import sys
import urllib.request

base, role = sys.argv[1], sys.argv[2]
with urllib.request.urlopen(f"{base}/hello?who={role}") as r:
    r.read()
print(role, os.getpid(), flush=True)
