#!/usr/bin/env python3
"""A parent and three children made three ways (subprocess, os.posix_spawn, os.fork),
each doing one GET /hello?who=<role>. Prints `<role> <pid>` for every process."""
import os
import subprocess
import sys
import urllib.request

base = sys.argv[1]
here = os.path.dirname(os.path.abspath(__file__))
child = os.path.join(here, "py_child_get.py")


def get(role):
    with urllib.request.urlopen(f"{base}/hello?who={role}") as r:
        r.read()


get("parent-before")
print("parent", os.getpid(), flush=True)

subprocess.run([sys.executable, child, base, "subprocess"], check=True)

pid = os.posix_spawn(sys.executable, [sys.executable, child, base, "posix_spawn"], os.environ)
_, status = os.waitpid(pid, 0)
assert os.waitstatus_to_exitcode(status) == 0

pid = os.fork()
if pid == 0:
    try:
        get("fork")
        print("fork", os.getpid(), flush=True)
    finally:
        os._exit(0)
_, status = os.waitpid(pid, 0)
assert os.waitstatus_to_exitcode(status) == 0

get("parent-after")
