"""Adaptive flush of the Lambda extension, end to end in the emulator.

When invocations come often, the extension keeps an invocation's batch and sends it at
the next INVOKE, while the function runs; when they are rare, it sends before Next; at
SHUTDOWN it sends what it keeps. Checked by what the OTLP receiver holds at points the
test chooses (after an invocation's `ready`, before the next invoke), never by
durations: a pause the test makes only ever lengthens an idle gap, so "longer than the
hold limit" is certain.

Every invocation's spans must arrive exactly once (one SERVER span per request id, its
two calls as children), across holds, a freeze (SIGSTOP/SIGCONT of runtime and
extension while a batch is kept) and shutdown.

Needs: cargo, dash, the Python packages of the Lambda harness.
"""

import os
import signal
import sys
import time

import pytest

from conftest import require_tool

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "lambda_sim"))
from harness import Lambda, Servers, build_binaries  # noqa: E402


@pytest.fixture(scope="module")
def build():
    require_tool("dash")
    return build_binaries()


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    s = Servers(str(tmp_path_factory.mktemp("servers")))
    yield s.info
    s.close()


def received(env, rid):
    """(SERVER spans, CLIENT children) the receiver holds for invocation `rid`."""
    spans = env.spans()
    inv = [s for s in spans if s["kind"] == 2 and s["attributes"].get("faas.invocation_id") == rid]
    kids = [s for s in spans if inv and s["parent_span_id"] == inv[0]["span_id"]]
    return len(inv), len(kids)


def log_line(env, rid):
    lines = [l for l in env.ext_log_text().splitlines() if f"invocation {rid}:" in l]
    assert len(lines) == 1, env.logs()
    return lines[0]


def exactly_once(env, rids):
    env.shutdown()
    assert env.extension.wait(timeout=15) == 0, env.logs()
    for rid in rids:
        assert received(env, rid) == (1, 2), (rid, env.spans(), env.logs())
    assert len(env.spans()) == 3 * len(rids), env.logs()


# A hold limit no idle gap of this test can exceed: back-to-back invocations are
# "frequent" however slow the machine is.
FOREVER_MS = "3600000"


def test_frequent_invocations_send_the_batch_during_the_next_one(build, servers, tmp_path):
    env = Lambda(build, servers, str(tmp_path), ext_env={"TAPLINE_FLUSH_HOLD_MS": FOREVER_MS})
    try:
        rids = []
        for n in range(8):
            rid, resp, _ = env.invoke({"n": n})
            assert resp[2] == "success", env.logs()
            rids.append(rid)
            held = "sent during the next invocation" in log_line(env, rid)
            # The first three are flushed after the response (fewer than three gaps
            # between invocations known yet); the ones after them are held. Whichever it was, the
            # receiver agrees: a held batch is not there yet, a sent one is.
            assert held == (n >= 3), (n, log_line(env, rid))
            assert received(env, rid) == ((0, 0) if held else (1, 2)), (n, env.logs())
            if n >= 4:
                # The batch held at the previous invocation went out during this one.
                assert received(env, rids[-2]) == (1, 2), (n, env.logs())
        exactly_once(env, rids)
    finally:
        env.close()


def test_rare_invocations_are_flushed_after_the_response(build, servers, tmp_path):
    env = Lambda(build, servers, str(tmp_path), ext_env={"TAPLINE_FLUSH_HOLD_MS": "20"})
    try:
        rids = []
        for n in range(5):
            if n:
                time.sleep(0.2)  # an idle gap longer than the hold limit, for certain
            rid, resp, _ = env.invoke({"n": n})
            assert resp[2] == "success", env.logs()
            rids.append(rid)
            assert "sent during the next invocation" not in log_line(env, rid)
            assert received(env, rid) == (1, 2), (n, env.logs())
        exactly_once(env, rids)
    finally:
        env.close()


def test_zero_hold_never_keeps_a_batch(build, servers, tmp_path):
    env = Lambda(build, servers, str(tmp_path), ext_env={"TAPLINE_FLUSH_HOLD_MS": "0"})
    try:
        rids = []
        for n in range(6):
            rid, resp, _ = env.invoke({"n": n})
            assert resp[2] == "success", env.logs()
            rids.append(rid)
            assert received(env, rid) == (1, 2), (n, env.logs())
        exactly_once(env, rids)
    finally:
        env.close()


def test_a_held_batch_survives_a_freeze_and_is_sent_once(build, servers, tmp_path):
    """A batch kept when the sandbox freezes (both processes stopped, as Lambda freezes
    them after Next) is sent once after the thaw, at the next INVOKE."""
    env = Lambda(build, servers, str(tmp_path), ext_env={"TAPLINE_FLUSH_HOLD_MS": FOREVER_MS})
    try:
        rids = []
        for n in range(5):
            rid, resp, _ = env.invoke({"n": n})
            assert resp[2] == "success", env.logs()
            rids.append(rid)
        assert "sent during the next invocation" in log_line(env, rids[-1]), env.logs()
        assert received(env, rids[-1]) == (0, 0)
        procs = (env.runtime.pid, env.extension.pid)
        for pid in procs:
            os.kill(pid, signal.SIGSTOP)
        time.sleep(1.0)
        for pid in procs:
            os.kill(pid, signal.SIGCONT)
        assert received(env, rids[-1]) == (0, 0)
        rid, resp, _ = env.invoke({"n": 5})
        assert resp[2] == "success", env.logs()
        rids.append(rid)
        # The kept batch went out at this INVOKE; this one is kept in turn, until
        # SHUTDOWN.
        assert received(env, rids[-2]) == (1, 2), env.logs()
        assert received(env, rid) == (0, 0), env.logs()
        exactly_once(env, rids)
    finally:
        env.close()
