"""The untraced path of the hot hooks, counted in instructions (issue: the hook path to
the floor). valgrind's callgrind counts user-space instructions, which are the same for
one build whatever else the machine does: this is a budget, not a timing assertion.

Every program under the library pays this on every read/write/send/recv/close of every
file, pipe and socket it does not trace; the budget is what a forwarding interposer
needs (one byte of the watch map, one load of the real function, a tail jump)."""
import json
import os
import subprocess
import sys

import pytest

from conftest import REPO, require_tool

# Instructions a hooked call on an untraced fd may add to the bare call.
UNTRACED_BUDGET = 8
# Instructions one 256-byte record into a warm segment may take over a 256-byte memcpy
# (428 when this budget was set: the clock, the check — six CRC steps and a vector
# sum —, three atomics, the copy). A CRC over the payload again would be ~+100.
APPEND_BUDGET = 480
# Instructions one small keep-alive HTTP/1.1 exchange may add (4,124 when set: three
# records — the request's DataEnd, the response head's Data, its body's DataEnd —, the
# framer over both heads, the hooks). Five records, a message's end apart from its last
# piece, were 4,546: past this budget.
TRACED_BUDGET = 4400


def instr_rows(tapline_lib, rows):
    """bench/instr_count.py's rows (JSON) for the library under test."""
    require_tool("valgrind")
    require_tool("gcc")
    env = dict(os.environ)
    env["CARGO_TARGET_DIR"] = os.path.dirname(os.path.dirname(tapline_lib))
    out = subprocess.run(
        [sys.executable, str(REPO / "bench" / "instr_count.py"), "--json", "--rows", rows,
         "--n", "2000"],
        env=env, capture_output=True, text=True, check=True, stdin=subprocess.DEVNULL,
        timeout=900)
    return [json.loads(line) for line in out.stdout.splitlines()]


@pytest.fixture(scope="module")
def untraced_rows(tapline_lib):
    return instr_rows(tapline_lib, "untraced")


def test_every_hot_family_is_measured(untraced_rows):
    names = {r["row"] for r in untraced_rows}
    assert names == {"untraced write", "untraced writev", "untraced read",
                     "untraced send+recv", "untraced dup+close"}


@pytest.mark.parametrize("row", ["write", "writev", "read", "send+recv", "dup+close"])
def test_untraced_call_stays_within_budget(untraced_rows, row):
    r = next(r for r in untraced_rows if r["row"] == "untraced " + row)
    # The bare call did run (the loop and libc's wrapper cost something).
    assert r["without"] > 5, r
    assert r["added"] <= UNTRACED_BUDGET, (
        f"a hooked {row} on an untraced fd adds {r['added']:.1f} instructions "
        f"(budget {UNTRACED_BUDGET}): {r}")


@pytest.fixture(scope="module")
def record_rows(tapline_lib):
    return {r["row"]: r for r in instr_rows(tapline_lib, "append,traced")}


def test_warm_record_stays_within_budget(record_rows):
    r = record_rows["append 256-byte record (warm segment)"]
    assert r["without"] > 5, r
    assert 0 < r["added"] <= APPEND_BUDGET, (
        f"a 256-byte record into a warm segment takes {r['added']:.1f} instructions over "
        f"a memcpy (budget {APPEND_BUDGET}): {r}")


def test_traced_exchange_stays_within_budget(record_rows):
    r = record_rows["traced HTTP/1.1 exchange (keep-alive)"]
    assert r["without"] > 5, r
    # Something was captured (a record is a few hundred instructions), within budget.
    assert 1000 < r["added"] <= TRACED_BUDGET, (
        f"a traced keep-alive exchange adds {r['added']:.1f} instructions "
        f"(budget {TRACED_BUDGET}): {r}")
