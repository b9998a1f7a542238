#!/usr/bin/env python3
"""Prints the records of a tapline spool directory (include/tapline.h), one per line:
for reading what the library wrote when a test fails. Usage: spool_dump.py DIR"""
import struct
import sys
from pathlib import Path

TYPES = {1: "PROC_START", 2: "CONN_OPEN", 3: "DATA", 4: "MSG_END", 5: "CONN_CLOSE",
         6: "TLS_INFO", 7: "DROPS", 8: "LIFECYCLE", 9: "NAME_LOOKUP",
         10: "H2_START", 11: "H2_HEADERS", 12: "H2_DATA", 13: "H2_STREAM_END",
         14: "H2_RESET", 15: "H2_GOAWAY", 16: "H2_SETTINGS"}
PROTO = {1: "http1", 2: "tls", 3: "h2c", 4: "tls-plaintext"}
PART = {1: "head", 2: "body", 3: "raw"}
CLOSE = {1: "closed", 2: "peer-eof", 3: "error", 4: "untracked", 5: "upgraded"}
H2_HOW = {1: "prior-knowledge", 2: "tls", 3: "h2c-upgrade"}


def h2_fields(rtype, p):
    """The fields of an H2_* payload as a dict (include/tapline.h, "HTTP/2"), or None."""
    if rtype == 10:
        how, flags, _r, up = struct.unpack_from("<BBHI", p)
        return {"how": H2_HOW.get(how, how), "upgrade_msg_seq": up}
    if rtype == 11:
        d, _r, flags, sid, prom, seq, n, blen = struct.unpack_from("<BBHIIIII", p)
        return {"dir": d, "flags": flags, "stream_id": sid, "promised_stream_id": prom,
                "block_seq": seq, "block_len": blen, "block": p[24:24 + n]}
    if rtype == 12:
        d, _r, flags, sid, off, n = struct.unpack_from("<BBHIQI", p)
        return {"dir": d, "stream_id": sid, "offset": off, "bytes": p[24:24 + n]}
    if rtype == 13:
        d, _r, flags, sid, dl, wl, fw, fm, lw, lm, code = struct.unpack_from(
            "<BBHIQQQQQQI", p)
        return {"dir": d, "flags": flags, "stream_id": sid, "data_len": dl, "wire_len": wl,
                "first_mono_ns": fm, "last_mono_ns": lm, "error_code": code}
    if rtype in (14, 15):
        d, _r, _r1, sid, code = struct.unpack_from("<BBHII", p)
        key = "stream_id" if rtype == 14 else "last_stream_id"
        return {"dir": d, key: sid, "error_code": code}
    if rtype == 16:
        d, _r, flags, hts, mfs = struct.unpack_from("<BBHII", p)
        out = {"dir": d}
        if flags & 1:
            out["header_table_size"] = hts
        if flags & 2:
            out["max_frame_size"] = mfs
        return out
    return None


def describe(rtype, p):
    if rtype == 2:
        fd, proto, flags, fam = struct.unpack_from("<iBBH", p)
        port, lport = struct.unpack_from("<HH", p, 40)
        return f"fd={fd} proto={PROTO.get(proto, proto)} peer_port={port} local_port={lport}"
    if rtype == 3:
        d, part, _f, seq, off, n = struct.unpack_from("<BBHIQI", p)
        data = p[24:24 + n]
        return (f"{'in' if d else 'out'} {PART.get(part, part)} seq={seq} off={off} len={n} "
                f"{data[:60]!r}")
    if rtype == 4:
        d, _r, flags, seq, hl, bl, wl, sw, sm, st = struct.unpack_from("<BBHIQQQQQH", p)
        return (f"{'in' if d else 'out'} seq={seq} flags={flags:#x} head={hl} body={bl} "
                f"wire={wl} status={st}")
    if rtype == 5:
        reason, proto, _r, err, bo, bi, fo, li = struct.unpack_from("<BBHiQQQQ", p)
        return (f"{CLOSE.get(reason, reason)} proto={PROTO.get(proto, proto)} errno={err} "
                f"bytes_out={bo} bytes_in={bi}")
    if rtype == 6:
        lib, flags, sl, al, _r, fd, _r1, sc = struct.unpack_from("<BBHHHiIQ", p)
        sni = p[24:24 + sl]
        alpn = p[24 + sl:24 + sl + al]
        return (f"lib={'openssl' if lib == 1 else 'gnutls' if lib == 2 else lib} fd={fd} "
                f"sni={sni!r} alpn={alpn!r} socket_conn={sc:#x}")
    if rtype == 1:
        ppid, clen = struct.unpack_from("<II", p)
        cmd = p[16:16 + clen].replace(b"\x00", b" ")[:80]
        return f"ppid={ppid} cmd={cmd!r}"
    h2 = h2_fields(rtype, p)
    if h2 is not None:
        if "dir" in h2:
            h2["dir"] = "in" if h2["dir"] else "out"
        for k in ("block", "bytes"):
            if k in h2:
                h2[k] = h2[k][:60]
        return " ".join(f"{k}={v!r}" if isinstance(v, bytes) else f"{k}={v}"
                        for k, v in h2.items())
    return f"{len(p)} payload bytes"


SEG_MAGIC = int.from_bytes(b"TLSEG001", "little")


def spool_files(spool_dir):
    """Record files and shared segments (include/tapline.h, "Files" and "Segments")."""
    d = Path(spool_dir)
    return sorted(list(d.glob("*.tlr")) + [p for p in d.glob("[0-9]*.tls")])


def records(path):
    """(type name, conn_id, payload bytes, header dict) of each record of one file: a
    record file, or a segment (records from data_start to reserve/data_end; a reservation
    never committed, magic 0 with its length set, is skipped)."""
    buf = Path(path).read_bytes()
    off, end = 0, len(buf)
    if len(buf) >= 48 and struct.unpack_from("<Q", buf, 0)[0] == SEG_MAGIC:
        data_start, size, reserve, state, _c, data_end = struct.unpack_from("<IQQIIQ", buf, 12)
        off = data_start
        end = min(data_end if state == 2 and data_end else reserve, size, len(buf))
    while off + 48 <= end:
        magic, ver, rtype, length, crc, wall, mono, pid, tid, conn = struct.unpack_from(
            "<IHHIIQQIIQ", buf, off)
        if magic == 0 and length >= 48 and length % 8 == 0:
            off += length
            continue
        if magic != 0x31524C54 or length < 48:
            return
        yield (TYPES.get(rtype, rtype), conn, buf[off + 48:off + length],
               {"offset": off, "type": rtype, "wall_ns": wall, "mono_ns": mono, "pid": pid,
                "tid": tid})
        off += length


def tls_infos(spool_dir):
    """The TLS_INFO records of a spool: [{library, fd, sni, alpn, socket_conn_id}]."""
    out = []
    for f in spool_files(spool_dir):
        for name, conn, p, _h in records(f):
            if name == "TLS_INFO":
                lib, _fl, sl, al, _r, fd, _r1, sc = struct.unpack_from("<BBHHHiIQ", p)
                out.append({"conn_id": conn, "library": {1: "openssl", 2: "gnutls"}.get(lib, lib),
                            "fd": fd, "sni": p[24:24 + sl].decode(errors="replace"),
                            "alpn": p[24 + sl:24 + sl + al].decode(errors="replace"),
                            "socket_conn_id": sc})
    return out


def h2_records(spool_dir):
    """Every H2_* record of a spool, in file order: [(name, conn_id, fields)]."""
    out = []
    for f in spool_files(spool_dir):
        for name, conn, p, h in records(f):
            fields = h2_fields(h["type"], p)
            if fields is not None:
                out.append((name, conn, fields))
    return out


def conn_opens(spool_dir):
    """{conn_id: protocol name} of every CONN_OPEN of a spool."""
    out = {}
    for f in spool_files(spool_dir):
        for name, conn, p, _h in records(f):
            if name == "CONN_OPEN":
                out[conn] = PROTO.get(p[4], p[4])
    return out


def dump(path):
    for name, conn, p, h in records(path):
        print(f"{Path(path).name}@{h['offset']} mono={h['mono_ns']} tid={h['tid']} "
              f"conn={conn:#x} {name} {describe(h['type'], p)}")


if __name__ == "__main__":
    for f in spool_files(sys.argv[1]):
        dump(f)
