"""`--format html` in a real browser: Debian's chromium, headless, loading the report from
disk with the network off (tests/html_browser.py).

The run is a real Python program (tests/clients/py_waterfall_mix.py) making parallel
HTTP, HTTPS and failing calls against the test servers; the same spool read as JSON tells
what the page must show."""
import json
import os
import re
import subprocess
import sys
from collections import Counter

import pytest

from conftest import CLIENTS, DEFAULT_TIMEOUT, REPO, clean_env, header

sys.path.insert(0, os.path.dirname(__file__))
from html_browser import Browser, find_tools  # noqa: E402

SECRET = "wfsecret-3f9a1c7e5b2d8064"


@pytest.fixture(scope="module")
def browser():
    chromium, driver, missing = find_tools()
    if missing:
        pytest.fail(f"{', '.join(missing)} not installed: run scripts/setup", pytrace=False)
    b = Browser(chromium, driver)
    yield b
    b.close()


def tapline(tapline_bin, *args, env=None):
    return subprocess.run([tapline_bin, *map(str, args)], env=clean_env(env), capture_output=True,
                          timeout=DEFAULT_TIMEOUT, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def mixed_run(tapline_bin, http_server, https_server, ca_bundle, tmp_path_factory):
    """A traced run of py_waterfall_mix.py: (html path, the same spool as JSON exchanges)."""
    tmp = tmp_path_factory.mktemp("html")
    spool, page = tmp / "spool", tmp / "report.html"
    https_base = https_server.replace("127.0.0.1", "localhost")
    proc = tapline(tapline_bin, "run", "--format", "html", "-o", page, "--spool-dir", spool,
                   "--keep-spool", "--", sys.executable, CLIENTS / "py_waterfall_mix.py",
                   http_server, https_base, ca_bundle, SECRET)
    assert proc.returncode == 0, proc.stdout.decode() + proc.stderr.decode()
    shown = tapline(tapline_bin, "show", "--format", "json", "-o", tmp / "report.json", spool)
    assert shown.returncode == 0, shown.stderr.decode()
    exchanges = [json.loads(line) for line in (tmp / "report.json").read_text().splitlines()]
    # `run` embeds exchanges as they complete, `show` lists them by start: put the
    # independent `show` list in the page's order, so that a row's `data-i` names its
    # exchange in both.
    text = page.read_text()
    data = text.split('id="tl-data">', 1)[1].split("</script>", 1)[0]
    key = lambda x: (x["pid"], x["conn_id"], x["start_unix_ns"], x.get("path"))
    order = {key(json.loads(line)): n for n, line in enumerate(data.split("\n")) if line.strip()}
    assert sorted(order) == sorted(key(x) for x in exchanges)
    exchanges.sort(key=lambda x: order[key(x)])
    return page, exchanges


def rows(browser):
    return browser.js("""return [...document.querySelectorAll('.row.x')].map(r =>
        [r.dataset.host, r.dataset.status, r.dataset.outcome, r.dataset.i])""")


def set_filter(browser, text):
    browser.js("""const f = document.getElementById('filter'); f.value = arguments[0];
        f.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter'}));""", text)


def test_known_run_rows_hosts_statuses_details_and_filter(browser, mixed_run):
    page, exchanges = mixed_run
    assert SECRET not in page.read_text(), "the secret left unmasked"
    paths = sorted(x["path"] for x in exchanges)
    assert paths == sorted(["/hello", "/hello", "/hello", "/status/404", "/bytes/2048", "/echo",
                            "/status/503", "/slow", "/drop"]), paths

    browser.open(str(page))
    assert browser.resources() == []
    got = rows(browser)
    want = Counter((x["host"], "" if x["status"] is None else str(x["status"])) for x in exchanges)
    assert Counter((h, s) for h, s, _, _ in got) == want
    def outcome(x):
        if (x["status"] or 0) >= 400:
            return "client" if x["status"] < 500 else "server"
        return "failed" if x["error"] or x["status"] is None else "ok"
    assert {(i, o) for _, _, o, i in got} == {(str(k), outcome(x)) for k, x in enumerate(exchanges)}
    assert Counter(o for _, _, o, _ in got)["failed"] >= 1
    # Grouped by process and connection: the keep-alive session is one connection group.
    groups = browser.js("return [...document.querySelectorAll('.row.g1')].map(r => r.textContent)")
    session = [g for g in groups if "4 exchanges" in g]
    assert len(session) == 1, groups
    totals = browser.js("return document.getElementById('totals').textContent")
    errors = sum(1 for x in exchanges if x["error"] or x["status"] is None)
    assert "9 exchanges" in totals and f"{errors} failed" in totals, totals

    # Click the HTTPS call that carried the secret: its headers, masked.
    tls_row = next(i for h, s, o, i in got if h == "localhost" and s == "200"
                   and exchanges[int(i)]["path"] == "/bytes/2048")
    browser.js("document.querySelector(`.row.x[data-i='${arguments[0]}']`).click()", tls_row)
    detail = browser.js("return document.getElementById('detail').innerText")
    assert "Request headers" in detail and "Authorization" in detail, detail
    auth = browser.js("""return [...document.querySelectorAll('#detail table.headers tr')]
        .map(tr => [...tr.cells].map(c => c.textContent))
        .filter(c => c[0].toLowerCase() === 'authorization')""")
    assert auth == [["Authorization", header(exchanges[int(tls_row)]["request_headers"],
                                             "authorization")]]
    assert "****" in auth[0][1] and SECRET not in detail
    assert "tls" in detail and "openssl" in detail
    curl = browser.js("return document.querySelector('#detail pre.curl').textContent")
    assert curl.startswith("curl") and "/bytes/2048" in curl and "****" in curl
    assert SECRET not in curl

    # The POST's JSON body, pretty-printed and masked.
    echo = next(i for h, s, o, i in got if exchanges[int(i)]["path"] == "/echo")
    browser.js("document.querySelector(`.row.x[data-i='${arguments[0]}']`).click()", echo)
    body = browser.js("return document.querySelector('#detail pre.body').textContent")
    assert json.loads(body)["password"] == "****" and '\n  "' in body, body

    # The failed call shows its error.
    drop = next(i for h, s, o, i in got if exchanges[int(i)]["path"] == "/drop")
    browser.js("document.querySelector(`.row.x[data-i='${arguments[0]}']`).click()", drop)
    err = browser.js("return document.querySelector('#detail .err').textContent")
    assert err == f"error: {exchanges[int(drop)]['error']}", err

    # The filter narrows the rows.
    set_filter(browser, "status:404")
    assert [s for _, s, _, _ in rows(browser)] == ["404"]
    set_filter(browser, "host:localhost")
    assert {h for h, _, _, _ in rows(browser)} == {"localhost"}
    assert len(rows(browser)) == sum(1 for x in exchanges if x["host"] == "localhost") == 2
    set_filter(browser, "error")
    assert sorted(int(i) for _, _, _, i in rows(browser)) == [
        k for k, x in enumerate(exchanges) if x["error"] or x["status"] is None]
    set_filter(browser, "method:POST echo")
    assert len(rows(browser)) == 1
    set_filter(browser, "")
    assert len(rows(browser)) == len(exchanges)

    severe = [m for level, m in browser.console() if level in ("SEVERE", "WARNING")]
    assert severe == [], severe


def phase_segments(browser, i):
    return browser.js("""return [...document.querySelectorAll(
        `.row.x[data-i='${arguments[0]}'] .ph`)].map(e => e.className.replace('ph ph-', ''))""",
                      str(i))


def test_phases_of_a_fresh_connection_and_not_of_its_reused_one(browser, mixed_run):
    """The HTTPS session's first call opened its connection (TLS handshake before its
    first byte); its second reused it: no set-up phases. urllib with a timeout connects
    without blocking: its connect phase is known."""
    page, exchanges = mixed_run
    at = {x["path"]: k for k, x in enumerate(exchanges)}
    fresh, reused = exchanges[at["/bytes/2048"]], exchanges[at["/echo"]]
    assert fresh["conn_id"] == reused["conn_id"], (fresh, reused)
    assert {"tls", "send", "wait", "receive"} <= set(fresh["timings"]), fresh["timings"]
    assert not {"connect", "tls"} & set(reused["timings"]), reused["timings"]
    assert {"send", "wait", "receive"} <= set(reused["timings"]), reused["timings"]
    slow = exchanges[at["/slow"]]
    assert "connect" in slow["timings"], slow["timings"]
    for x in exchanges:
        t = x["timings"]
        assert all(v >= 0 for v in t.values()), t
        if {"send", "wait", "receive"} <= set(t):
            # The three cover first request byte -> last response byte (µs rounding).
            assert abs(sum(t[k] for k in ("send", "wait", "receive")) * 1e6
                       - x["duration_ns"]) < 5_000, x
    by_conn = {}
    for x in exchanges:
        by_conn.setdefault(x["conn_id"], []).append(x)
    for xs in by_conn.values():
        xs.sort(key=lambda x: x["start_unix_ns"])
        for x in xs[1:]:  # a reused connection's exchanges were not set up
            assert not {"connect", "tls"} & set(x["timings"]), xs

    browser.open(str(page))
    segs = phase_segments(browser, at["/bytes/2048"])
    assert {"tls", "send", "wait", "receive"} <= set(segs), segs
    segs = phase_segments(browser, at["/echo"])
    assert not {"connect", "tls"} & set(segs) and {"send", "wait", "receive"} <= set(segs), segs
    assert "connect" in phase_segments(browser, at["/slow"])
    # The set-up is drawn before the bar, which starts at the first request byte.
    left = browser.js("""const r = document.querySelector(`.row.x[data-i='${arguments[0]}']`);
        return [r.querySelector('.ph-tls').getBoundingClientRect().left,
                r.querySelector('.bar').getBoundingClientRect().left]""", str(at["/bytes/2048"]))
    assert left[0] < left[1], left
    legend = browser.js("return [...document.querySelectorAll('.legend.phases span')].map(s => s.textContent)")
    assert legend == ["connect", "TLS", "send", "wait", "receive"], legend

    browser.js("document.querySelector(`.row.x[data-i='${arguments[0]}']`).click()",
               str(at["/bytes/2048"]))
    timing = browser.js("""return [...document.querySelectorAll('#detail table.timings tr')]
        .map(tr => [...tr.cells].map(c => c.textContent))""")
    names = [n for n, _ in timing]
    assert any(n.startswith("TLS handshake") for n in names), timing
    assert any(n.startswith("wait") for n in names) and "receive" in names, timing
    assert not any(n.startswith("connect") for n in names) or "connect" in fresh["timings"]
    browser.js("document.querySelector(`.row.x[data-i='${arguments[0]}']`).click()",
               str(at["/echo"]))
    names = browser.js("""return [...document.querySelectorAll('#detail table.timings tr')]
        .map(tr => tr.cells[0].textContent)""")
    assert not any(n.startswith(("TLS", "connect")) for n in names), names
    assert [m for level, m in browser.console() if level == "SEVERE"] == []


def test_rows_are_rendered_lazily(browser, tapline_bin, http_server, tmp_path):
    """1,500 keep-alive exchanges: the page holds only the rows in view, and scrolling to
    the end brings the last ones."""
    page = tmp_path / "many.html"
    proc = tapline(tapline_bin, "run", "--format", "html", "-o", page, "--",
                   sys.executable, CLIENTS / "py_requests_session.py", http_server, "1500")
    assert proc.returncode == 0, proc.stderr.decode()
    browser.open(str(page))
    in_dom = len(rows(browser))
    assert 0 < in_dom < 120, in_dom
    total = browser.js("return document.getElementById('totals').textContent")
    assert total.startswith("1500 exchanges"), total
    browser.js("const r = document.getElementById('rows'); r.scrollTop = r.scrollHeight;")
    browser.js("return new Promise(ok => requestAnimationFrame(() => requestAnimationFrame(ok)))")
    last = [int(i) for _, _, _, i in rows(browser)]
    assert max(last) == 1499 and len(last) < 120, last
    assert [m for level, m in browser.console() if level == "SEVERE"] == []


def test_lambda_spool_is_grouped_by_invocation(browser, tapline_bin, tmp_path):
    """A Lambda environment's spool (the runtime traced through wrapper.sh; no extension
    empties it): `tapline show --format html` groups the handler's calls by invocation."""
    sys.path.insert(0, str(REPO / "tests" / "lambda_sim"))
    from harness import Lambda, Servers

    build = os.path.dirname(tapline_bin)
    servers = Servers(str(tmp_path))
    env = None
    rids = []
    try:
        env = Lambda(build, servers, str(tmp_path / "env"), with_extension=False, otlp=False)
        for n in range(2):
            rid, resp, _ = env.invoke({"n": n})
            assert json.loads(resp[4])["statuses"] == [200, 200], resp
            rids.append(rid)
        env.shutdown()
        spool = env.spool
    finally:
        if env:
            env.close()
        servers.close()
    page = tmp_path / "lambda.html"
    proc = tapline(tapline_bin, "show", "--format", "html", "-o", page, spool)
    assert proc.returncode == 0, proc.stderr.decode()
    browser.open(str(page))
    heads = browser.js("return [...document.querySelectorAll('.row.g0')].map(r => r.textContent)")
    for k, rid in enumerate(rids):
        mine = [h for h in heads if f"invocation #{k + 1} {rid}" in h]
        assert len(mine) == 1, (rid, heads)
    # Each invocation holds the handler's calls (an HTTP and an HTTPS one), not the
    # Runtime API's.
    per = browser.js("""const out = {}; let cur = null;
        for (const r of document.querySelectorAll('#spacer .row')) {
          if (r.classList.contains('g0')) cur = r.textContent;
          else if (r.classList.contains('x')) (out[cur] = out[cur] || []).push(r.dataset.host);
        } return out;""")
    for rid in rids:
        hosts = next(v for k, v in per.items() if rid in k)
        assert sorted(hosts) == ["127.0.0.1", "localhost"], per
    totals = browser.js("return document.getElementById('totals').textContent")
    assert totals.startswith(f"{2 * len(rids)} exchanges"), totals
    notice = browser.js("return document.getElementById('notice').textContent")
    assert "grouped by invocation" in notice
    assert [m for level, m in browser.console() if level == "SEVERE"] == []


def test_spool_the_extension_consumed_is_drawn_by_invocation(browser, tapline_bin, tmp_path):
    """The Lambda extension reads (and hands back) every record of its spool; its
    exported journal (a masked copy of what it reported) lets `tapline show --format
    html` of that spool still draw the invocations and their calls afterwards."""
    sys.path.insert(0, str(REPO / "tests" / "lambda_sim"))
    from harness import PLANTED, Lambda, Servers

    build = os.path.dirname(tapline_bin)
    servers = Servers(str(tmp_path))
    env = None
    rids = []
    try:
        # Small segments and large events (as test_lambda_e2e's reuse test): segments
        # fill every few invocations and the extension hands them back, zeroed.
        seg = str(64 << 10)
        env = Lambda(build, servers, str(tmp_path / "env"), otlp=False,
                     rt_env={"TAPLINE_SEGMENT_BYTES": seg, "TAPLINE_MAX_BODY": str(64 << 10)},
                     ext_env={"TAPLINE_SEGMENT_BYTES": seg})
        pad = "x" * (24 << 10)
        for n in range(6):
            rid, resp, _ = env.invoke({"n": n, "pad": pad})
            assert json.loads(resp[4])["statuses"] == [200, 200], resp
            rids.append(rid)
        env.shutdown()
        assert env.extension.wait(timeout=DEFAULT_TIMEOUT) == 0, env.ext_log_text()
        spool = env.spool
        log = env.ext_log_text()
    finally:
        if env:
            env.close()
        servers.close()
    m = re.search(r"(\d+) handed back for reuse", log)
    assert m and int(m.group(1)) >= 1, log
    # The spool alone lost the calls of the segments handed back (zeroed); the runtime's
    # last, part-filled segment stays until its writer lets it go. Only the page draws
    # the journal; the other formats say what they left out.
    left = tapline(tapline_bin, "show", "--format", "json", "-o", tmp_path / "left.json", spool)
    assert left.returncode == 0, left.stderr.decode()
    assert b"exported journal not shown" in left.stderr, left.stderr.decode()
    still = [json.loads(l) for l in (tmp_path / "left.json").read_text().splitlines()]
    assert sum(1 for x in still if x.get("path") == "/plain") < len(rids), still
    assert sum(1 for l in log.splitlines() if l.startswith("{")) == 2 * len(rids), log

    page = tmp_path / "consumed.html"
    proc = tapline(tapline_bin, "show", "--format", "html", "-o", page, spool)
    assert proc.returncode == 0, proc.stderr.decode()
    text = page.read_text()
    assert PLANTED not in text
    data = text.split('id="tl-data">', 1)[1].split("</script>", 1)[0]
    lines = [json.loads(line) for line in data.split("\n") if line.strip()]
    marks = [x["invocation"] for x in lines if "invocation" in x]
    calls = [x for x in lines if "invocation" not in x]
    assert [m["id"] for m in marks] == rids, marks
    assert all(m["outcome"] == "response" and m["end_unix_ns"] >= m["start_unix_ns"] > 0
               for m in marks), marks
    for rid in rids:
        mine = [x for x in calls if x.get("faas.invocation_id") == rid]
        assert sorted(x["host"] for x in mine) == ["127.0.0.1", "localhost"], (rid, calls)
        assert all(x["status"] == 200 for x in mine), mine
    # The HTTPS call carried the secret in its query and Authorization header: masked.
    auth = [header(x["request_headers"], "authorization") for x in calls if x["host"] == "localhost"]
    assert auth and all(a and "****" in a for a in auth), auth

    browser.open(str(page))
    heads = browser.js("return [...document.querySelectorAll('.row.g0')].map(r => r.textContent)")
    for k, rid in enumerate(rids):
        mine = [h for h in heads if f"invocation #{k + 1} {rid}" in h]
        assert len(mine) == 1, (rid, heads)
    per = browser.js("""const out = {}; let cur = null;
        for (const r of document.querySelectorAll('#spacer .row')) {
          if (r.classList.contains('g0')) cur = r.textContent;
          else if (r.classList.contains('x')) (out[cur] = out[cur] || []).push(r.dataset.host);
        } return out;""")
    for rid in rids:
        hosts = next(v for k, v in per.items() if rid in k)
        assert sorted(hosts) == ["127.0.0.1", "localhost"], per
    notice = browser.js("return document.getElementById('notice').textContent")
    assert "exported them" in notice, notice
    assert [m for level, m in browser.console() if level == "SEVERE"] == []
