"""The library's HTTP/2 records (include/tapline.h, "HTTP/2"), read straight from the
spool: real clients (curl with nghttp2, node's http2 module through the inline OpenSSL
hooks, Python httpx with h2) against tests/servers/h2_server.js on 127.0.0.1, cleartext
with prior knowledge and TLS with ALPN h2.

Header blocks are decoded here with the `hpack` package (installed with httpx[http2]) in
block_seq order per connection and direction, exactly as a reader must: if the library
lost, reordered or mangled one block, the dynamic table goes wrong and later blocks
decode wrongly or not at all. Every program's output must be the same with and without
the library.
"""
import base64
import re
import sys
from collections import defaultdict

import hpack
import pytest

from conftest import CLIENTS, require_tool, spool_records, require_module

OUT, IN = "egress", "ingress"
END_STREAM, RESET, INCOMPLETE = 1, 2, 4
BLOCK_END_STREAM, BLOCK_TRUNCATED, BLOCK_PUSH_PROMISE = 1, 2, 4
CANCEL = 8


class Conn:
    """One HTTP/2 connection's records, with its header blocks HPACK-decoded."""

    def __init__(self, conn_id, recs):
        self.conn_id = conn_id
        self.recs = recs
        self.start = [f for n, f in recs if n == "H2_START"]
        self.blocks = {OUT: [], IN: []}
        for n, f in recs:
            if n == "H2_HEADERS":
                self.blocks[f["dir"]].append(f)
        self.headers = {}  # (dir, stream, k-th block of that stream) -> [(name, value)]
        for d, blocks in self.blocks.items():
            assert [b["block_seq"] for b in blocks] == list(range(len(blocks))), (
                f"header blocks of direction {d} are not numbered 0, 1, 2 ... in wire order")
            dec = hpack.Decoder()
            dec.max_allowed_table_size = 1 << 16
            seen = defaultdict(int)
            for b in blocks:
                assert not b["flags"] & BLOCK_TRUNCATED, b
                assert len(b["block"]) == b["block_len"], b
                key = b["promised_stream_id"] if b["flags"] & BLOCK_PUSH_PROMISE else b["stream_id"]
                kind = "promise" if b["flags"] & BLOCK_PUSH_PROMISE else seen[key]
                if kind != "promise":
                    seen[key] += 1
                self.headers[(d, key, kind)] = [
                    (k.decode() if isinstance(k, bytes) else k,
                     v.decode() if isinstance(v, bytes) else v)
                    for k, v in dec.decode(b["block"], raw=True)]

    def field(self, d, stream, name, k=0):
        return dict(self.headers[(d, stream, k)]).get(name)

    def body(self, d, stream):
        out = bytearray()
        for n, f in self.recs:
            if n == "H2_DATA" and f["dir"] == d and f["stream_id"] == stream:
                assert f["offset"] == len(out), "DATA pieces in order, without gaps"
                out += f["bytes"]
        return bytes(out)

    def ends(self, d):
        return {f["stream_id"]: f for n, f in self.recs if n == "H2_STREAM_END" and f["dir"] == d}

    def of(self, name, d=None):
        return [f for n, f in self.recs if n == name and (d is None or f.get("dir") == d)]

    def streams(self, d=OUT):
        return sorted({k[1] for k in self.headers if k[0] == d and k[2] == 0})


def raw(r, name):
    """A byte field of a `show --records` line: text, or base64 beside `<name>_encoding`."""
    if r.get(f"{name}_encoding") == "base64":
        return base64.b64decode(r[name])
    return r[name].encode()


def h2_conns(tapline_bin, spool):
    records = spool_records(tapline_bin, spool)
    opens = {r["conn_id"]: r["protocol"] for r in records if r["type"] == "conn_open"}
    by_conn = defaultdict(list)
    for r in records:
        if r["type"].startswith("h2_"):
            f = dict(r)
            for k in ("block", "bytes"):
                if k in f:
                    f[k] = raw(r, k)
            by_conn[r["conn_id"]].append((r["type"].upper(), f))
    conns = [Conn(c, r) for c, r in by_conn.items()]
    for c in conns:
        assert len(c.start) == 1, c.start
        want = "http1" if c.start[0]["how"] == "h2c_upgrade" else "h2c"
        assert opens.get(c.conn_id) == want, f"conn {c.conn_id:#x} opened as {opens.get(c.conn_id)}"
    return conns


def record_types(tapline_bin, spool):
    return [r["type"] for r in spool_records(tapline_bin, spool)]


def run_both(run_plain, run_preloaded, cmd, spool, env=None, normalize=lambda b: b):
    """Runs cmd without and with the library; the outputs must be identical (after
    `normalize`, for output whose order the program does not fix)."""
    plain = run_plain(cmd, env=env)
    traced = run_preloaded(cmd, env={**(env or {}), "TAPLINE_SPOOL_DIR": str(spool)})
    assert plain.returncode == 0, plain.stderr.decode(errors="replace")
    assert (traced.returncode, normalize(traced.stdout), traced.stderr) == (
        plain.returncode, normalize(plain.stdout), plain.stderr)
    return traced


def test_curl_prior_knowledge_streams(tapline_bin, run_plain, run_preloaded, h2c_port, tmp_path):
    require_tool("curl")
    base = f"http://127.0.0.1:{h2c_port}"
    cmd = ["curl", "-sS", "--http2-prior-knowledge",
           "-H", "x-test: pk", "--data-binary", "posted over h2c", f"{base}/echo",
           "-:", f"{base}/trailers", "-:", f"{base}/reset", "-:", f"{base}/large?n=200000"]
    spool = tmp_path / "spool"
    # curl reports the reset transfer on stderr and goes on (curl 7.88 fails the later
    # transfers if --http2-prior-knowledge is repeated after -:, so it is given once).
    plain = run_plain(cmd)
    traced = run_preloaded(cmd, env={"TAPLINE_SPOOL_DIR": str(spool)})
    assert (traced.returncode, traced.stdout) == (plain.returncode, plain.stdout)
    assert plain.stdout == b"posted over h2cwith trailers" + b"0123456789" * 20000
    [c] = h2_conns(tapline_bin, spool)
    assert c.start[0]["how"] == "prior_knowledge"
    assert c.streams(OUT) == [1, 3, 5, 7]
    assert c.field(OUT, 1, ":method") == "POST" and c.field(OUT, 1, ":path") == "/echo"
    assert c.field(OUT, 1, "x-test") == "pk"
    assert c.body(OUT, 1) == b"posted over h2c"
    assert c.field(IN, 1, ":status") == "200"
    assert c.field(IN, 1, "x-request-header") == "pk"
    assert c.body(IN, 1) == b"posted over h2c"
    # Trailers: a second header block on stream 3 that ends the stream.
    assert c.body(IN, 3) == b"with trailers"
    assert c.field(IN, 3, "grpc-status", k=1) == "0"
    trailer_block = [b for b in c.blocks[IN] if b["stream_id"] == 3][1]
    assert trailer_block["flags"] & BLOCK_END_STREAM
    # The server reset stream 5 with CANCEL.
    assert {(r["stream_id"], r["error_code"]) for r in c.of("H2_RESET", IN)} == {(5, CANCEL)}
    # A large body: the DATA prefix up to TAPLINE_MAX_BODY, the whole length counted.
    ends_in = c.ends(IN)
    assert ends_in[7]["data_len"] == 200000 and ends_in[7]["flags"] & END_STREAM
    prefix = c.body(IN, 7)
    assert 0 < len(prefix) < 200000 and ends_in[7]["flags"] & 8  # BODY_TRUNCATED
    assert prefix == (b"0123456789" * 20000)[:len(prefix)]
    for s in (1, 3, 7):
        assert ends_in[s]["wire_len"] > ends_in[s]["data_len"]
    ends_out = c.ends(OUT)
    assert all(ends_out[s]["flags"] & END_STREAM for s in (1, 3, 5, 7)), ends_out


def test_curl_tls_alpn_h2_with_a_header_over_16k(tapline_bin, run_plain, run_preloaded, h2_tls_port,
                                                  ca_bundle, tmp_path):
    require_tool("curl")
    base = f"https://localhost:{h2_tls_port}"
    cmd = ["curl", "-sS", "--http2", "--cacert", ca_bundle, f"{base}/echo?x=1",
           "-:", "--cacert", ca_bundle, "-D", "-", "-o", "/dev/null", f"{base}/bigheader"]
    spool = tmp_path / "spool"
    # The dumped response head has the server's `date:`, which may tick between runs.
    traced = run_both(run_plain, run_preloaded, cmd, spool,
                      normalize=lambda out: re.sub(rb"date: [^\r\n]*", b"date: -", out))
    assert b"x-big: " in traced.stdout
    infos = spool_records(tapline_bin, spool, "tls_info")
    assert [i["alpn"] for i in infos] == ["h2"], infos
    [c] = h2_conns(tapline_bin, spool)
    assert c.start[0]["how"] == "tls"
    assert c.conn_id == infos[0]["conn_id"]
    assert c.field(OUT, 1, ":path") == "/echo?x=1"
    assert c.field(OUT, 1, ":authority") == f"localhost:{h2_tls_port}"
    big = c.field(IN, 3, "x-big")
    assert big is not None and len(big) == 30000
    # Its block is longer than a frame: HEADERS + CONTINUATION joined into one record.
    [block] = [b for b in c.blocks[IN] if b["stream_id"] == 3]
    assert block["block_len"] > 16384


def test_curl_30_parallel_streams_on_one_connection(tapline_bin, run_plain, run_preloaded, h2_tls_port,
                                                    ca_bundle, tmp_path):
    require_tool("curl")
    urls = [f"https://127.0.0.1:{h2_tls_port}/n{i}" for i in range(30)]
    cmd = ["curl", "-sS", "--no-progress-meter", "-Z", "--parallel-max", "30", "--http2",
           "--cacert", ca_bundle,
           *urls]
    spool = tmp_path / "spool"
    def bodies(out):  # parallel transfers finish in any order
        return sorted(out.decode().split("hello h2 "))
    traced = run_both(run_plain, run_preloaded, cmd, spool, normalize=bodies)
    assert bodies(traced.stdout) == sorted([""] + [f"/n{i}" for i in range(30)])
    [c] = h2_conns(tapline_bin, spool)
    assert len(c.streams(OUT)) == 30 and c.streams(OUT) == c.streams(IN)
    # Each response pairs with its own request (decoded in wire order, dynamic table).
    for s in c.streams(OUT):
        path = c.field(OUT, s, ":path")
        assert c.field(IN, s, ":status") == "200"
        assert c.body(IN, s) == f"hello h2 {path}".encode()
        assert c.ends(IN)[s]["flags"] & END_STREAM
    assert sorted(c.field(OUT, s, ":path") for s in c.streams(OUT)) == sorted(
        f"/n{i}" for i in range(30))


def test_node_http2_client_inline_hooks(tapline_bin, run_plain, run_preloaded, h2_tls_port, ca_bundle,
                                        tmp_path):
    """node's http2 client over TLS (OpenSSL inside the node binary: inline hooks): 60
    requests with repeated headers (the 60th decodes like the 1st only if every block
    came through in order), a 30,000-byte request header (CONTINUATION), trailers, a
    pushed stream, a reset stream, and a GOAWAY from the server."""
    require_tool("node")
    cmd = ["node", str(CLIENTS / "node_h2_client.js"), f"https://localhost:{h2_tls_port}",
           ca_bundle]
    spool = tmp_path / "spool"
    traced = run_both(run_plain, run_preloaded, cmd, spool)
    assert traced.stdout.decode().splitlines()[:6] == [
        "60 x /echo: 60 ok", "big header: 200 posted body",
        "trailers: 200 with trailers grpc-status=0", "push: 200 with push",
        "reset: rst=8 error=null", "goaway: 200 bye"]
    [c] = h2_conns(tapline_bin, spool)
    assert c.start[0]["how"] == "tls"
    echo = [s for s in c.streams(OUT) if c.field(OUT, s, ":path") == "/echo"
            and c.field(OUT, s, "x-test") == "same-value"]
    assert len(echo) == 60
    assert all(c.field(OUT, s, "user-agent") == "node-h2-test" for s in echo)
    assert all(c.field(IN, s, "x-request-header") == "same-value" for s in echo)
    # Later requests reuse the dynamic table: their blocks are far smaller.
    sizes = [b["block_len"] for b in c.blocks[OUT] if b["stream_id"] in echo]
    assert sizes[-1] < sizes[0] / 2, sizes
    [big] = [s for s in c.streams(OUT) if c.field(OUT, s, "x-test") == "big"]
    assert len(c.field(OUT, big, "x-big")) == 30000
    assert [b["block_len"] for b in c.blocks[OUT] if b["stream_id"] == big][0] > 16384
    assert c.body(OUT, big) == b"posted body"
    # Push: a PUSH_PROMISE block on the /push stream promising an even stream.
    [push] = [s for s in c.streams(OUT) if c.field(OUT, s, ":path") == "/push"]
    [promise] = [b for b in c.blocks[IN] if b["flags"] & BLOCK_PUSH_PROMISE]
    assert promise["stream_id"] == push and promise["promised_stream_id"] % 2 == 0
    pushed = promise["promised_stream_id"]
    assert c.headers[(IN, pushed, "promise")]
    assert dict(c.headers[(IN, pushed, "promise")])[":path"] == "/pushed.txt"
    assert c.body(IN, pushed) == b"pushed body"
    # Reset and GOAWAY with their codes and stream ids.
    [reset] = [s for s in c.streams(OUT) if c.field(OUT, s, ":path") == "/reset"]
    assert (reset, CANCEL) in {(r["stream_id"], r["error_code"]) for r in c.of("H2_RESET", IN)}
    [goaway] = [s for s in c.streams(OUT) if c.field(OUT, s, ":path") == "/goaway"]
    assert (goaway, 0) in {(g["last_stream_id"], g["error_code"]) for g in c.of("H2_GOAWAY", IN)}


def test_httpx_http2_over_tls(tapline_bin, run_plain, run_preloaded, h2_tls_port, ca_bundle, tmp_path):
    require_module("h2", "httpx[http2]")
    code = (
        "import httpx, sys\n"
        "with httpx.Client(http2=True, verify=sys.argv[2]) as c:\n"
        "    for i in range(3):\n"
        "        r = c.post(sys.argv[1] + '/echo', content=b'httpx body %d' % i,\n"
        "                   headers={'x-test': 'httpx'})\n"
        "        print(r.http_version, r.status_code, r.text)\n")
    script = tmp_path / "httpx_h2.py"
    script.write_text(code)
    cmd = [sys.executable, str(script), f"https://localhost:{h2_tls_port}", ca_bundle]
    spool = tmp_path / "spool"
    traced = run_both(run_plain, run_preloaded, cmd, spool)
    assert traced.stdout.decode().splitlines() == [
        f"HTTP/2 200 httpx body {i}" for i in range(3)]
    [c] = h2_conns(tapline_bin, spool)
    assert c.streams(OUT) == [1, 3, 5]
    for i, s in enumerate(c.streams(OUT)):
        assert c.field(OUT, s, ":method") == "POST"
        assert c.body(OUT, s) == b"httpx body %d" % i
        assert c.body(IN, s) == b"httpx body %d" % i
        assert c.ends(OUT)[s]["flags"] & END_STREAM and c.ends(IN)[s]["flags"] & END_STREAM


def test_http1_records_are_not_written_for_h2(tapline_bin, run_preloaded, h2c_port, tmp_path):
    """A connection that is HTTP/2 gets no HTTP/1 DATA/MSG_END/DATA_END records."""
    require_tool("curl")
    spool = tmp_path / "spool"
    run_preloaded(["curl", "-sS", "--http2-prior-knowledge", f"http://127.0.0.1:{h2c_port}/x"],
                  env={"TAPLINE_SPOOL_DIR": str(spool)})
    names = record_types(tapline_bin, spool)
    assert "h2_headers" in names
    assert not {"data", "msg_end", "data_end"} & set(names), names


def test_curl_h2c_upgrade_switches_the_framer_mid_connection(tapline_bin, run_plain, run_preloaded,
                                                             h2c_upgrade_port, tmp_path):
    """curl --http2 on http:// asks for `Upgrade: h2c`; after the 101 the same connection
    is HTTP/2: the upgrade request stays an HTTP/1 record (stream 1's request), its
    response and the next request come as HTTP/2 records."""
    require_tool("curl")
    base = f"http://127.0.0.1:{h2c_upgrade_port}"
    cmd = ["curl", "-sS", "--http2", f"{base}/first", "-:", f"{base}/second"]
    spool = tmp_path / "spool"
    traced = run_both(run_plain, run_preloaded, cmd, spool)
    assert traced.stdout == b"h2c /firsth2c /second"
    [c] = h2_conns(tapline_bin, spool)
    assert (c.start[0]["how"], c.start[0]["upgrade_msg_seq"]) == ("h2c_upgrade", 0)
    names = record_types(tapline_bin, spool)
    # One HTTP/1 request and the 101 before the switch; no HTTP/1 record after it. (A
    # message's end is a msg_end, or a data_end when it came with its last bytes.)
    ends = [i for i, n in enumerate(names) if n in ("msg_end", "data_end")]
    assert len(ends) == 2, names
    assert names.index("h2_start") > max(ends)
    assert "upgraded" not in [r["reason"] for r in spool_records(tapline_bin, spool, "conn_close")]
    # Stream 1: the answer to the upgrade request; stream 3: a request made in HTTP/2.
    assert c.field(IN, 1, ":status") == "200" and c.field(IN, 1, "x-upgraded") == "yes"
    assert c.body(IN, 1) == b"h2c /first"
    assert c.streams(OUT) == [3]
    assert c.field(OUT, 3, ":path") == "/second"
    assert c.body(IN, 3) == b"h2c /second"
