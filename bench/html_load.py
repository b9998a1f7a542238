#!/usr/bin/env python3
"""How the HTML report copes with a large run. Not a test: it prints numbers.

A real program (tests/clients/py_requests_session.py) makes N keep-alive requests to
the test HTTP server under `tapline run --format html -o FILE`; the page is then opened
from disk in headless chromium with the network off (tests/html_browser.py), ROUNDS
times, each in a fresh tab load:

  - load: milliseconds from navigation to the page drawn (the page's own
    `performance.now()` when its script finished: parsing N embedded JSON lines,
    grouping, the first rows);
  - scroll: the list scrolled from top to bottom in up to 200 jumps of at least a
    screen; per jump, the time until the next frame was painted (mean and worst), and
    the time the page's script spent drawing the rows in view (mean and worst);
  - rows in the DOM after scrolling (lazy rendering keeps it to a screen's worth).

Usage: bench/html_load.py [N] [ROUNDS]      (defaults 10000, 3)
Needs what scripts/setup installs (chromium, chromium-driver, selenium)."""
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
from html_browser import Browser, find_tools  # noqa: E402

n = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
tapline = os.path.join(target, "release", "tapline")
chromium, driver, missing = find_tools()
if missing:
    sys.exit(f"html_load: missing {', '.join(missing)}: run scripts/setup")
if not os.path.exists(tapline):
    subprocess.run(["cargo", "build", "--release", "--workspace"], cwd=ROOT, check=True)

page = os.path.join(target, f"bench-html-{n}.html")
if os.environ.get("REUSE") == "1" and os.path.exists(page):
    print(f"reusing {page}")
else:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAPLINE_", "LD_PRELOAD"))}
    server = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests/servers/http_server.py")],
                              stdout=subprocess.PIPE, text=True, env=env)
    try:
        port = int(server.stdout.readline().split()[1])
        t = time.monotonic()
        subprocess.run([tapline, "run", "--format", "html", "-o", page, "--", sys.executable,
                        os.path.join(ROOT, "tests/clients/py_requests_session.py"),
                        f"http://127.0.0.1:{port}", str(n)],
                       check=True, env=env, stdout=subprocess.DEVNULL)
        print(f"tapline run --format html: {time.monotonic() - t:.1f} s, program included")
    finally:
        server.terminate()
        server.wait()

size = os.path.getsize(page)
print(f"{n} exchanges: page {page}, {size / 1048576:.1f} MiB ({size / n:.0f} bytes per exchange)")

browser = Browser(chromium, driver)
browser.driver.set_script_timeout(600)
loads, steps_all, draws, dom_rows, shown = [], [], [], 0, ""
try:
    for r in range(rounds):
        t = time.monotonic()
        browser.open(page)
        wall = (time.monotonic() - t) * 1000
        ready = int(browser.js("return document.body.dataset.readyMs"))
        loads.append((ready, wall))
        shown = browser.js("return document.getElementById('totals').textContent")
        steps = browser.js("""
            const box = document.getElementById('rows');
            const frame = () => new Promise(ok => requestAnimationFrame(() => requestAnimationFrame(ok)));
            return (async () => {
              const out = [];
              // At most 200 screens, spread evenly from the top to the bottom.
              const stride = Math.max(box.clientHeight, Math.ceil(box.scrollHeight / 200));
              for (let top = 0; top < box.scrollHeight; top += stride) {
                const t = performance.now();
                box.scrollTop = top;
                await frame();
                out.push(performance.now() - t);
              }
              return out;
            })();""")
        steps_all.extend(steps)
        draws.append(browser.js("return window.taplineDrawn"))
        dom_rows = browser.js("return document.querySelectorAll('#spacer .row').length")
        assert not browser.resources(), browser.resources()
finally:
    browser.close()

print(f"page says: {shown.strip()}")
for r, (ready, wall) in enumerate(loads):
    print(f"load #{r + 1}: drawn {ready} ms after navigation (driver.get to ready: {wall:.0f} ms)")
print(f"load, best of {rounds}: {min(x for x, _ in loads)} ms; median {statistics.median(x for x, _ in loads)} ms")
print(f"scroll top to bottom: {len(steps_all) // rounds} jumps per pass; per jump until painted "
      f"mean {statistics.mean(steps_all):.1f} ms, worst {max(steps_all):.1f} ms")
count = sum(d["count"] for d in draws)
print(f"drawing the rows in view (the page's script, {count} draws): mean "
      f"{sum(d['totalMs'] for d in draws) / count:.2f} ms, worst {max(d['maxMs'] for d in draws):.2f} ms")
print(f"rows in the DOM after scrolling: {dom_rows} (of {n} exchanges plus group rows)")
