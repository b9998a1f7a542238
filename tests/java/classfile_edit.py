"""A minimal class-file editor for tests/test_java_tls.py: adds one method declaration to
a real JDK class, to give it a shape the agent refuses while the JVM runs it as before.

`add_native_method(bytes, name, desc)` appends `private native <name><desc>` (no `Code`
attribute: natives have none; the JVM links a native only when it is called, and nobody
calls this one). Only the constant pool is parsed; every other part is copied as it is.
"""

import struct

# Constant-pool tag -> size of the entry after the tag (Utf8 is length-prefixed).
_FIXED = {3: 4, 4: 4, 5: 8, 6: 8, 7: 2, 8: 2, 9: 4, 10: 4, 11: 4, 12: 4, 15: 3, 16: 2,
          17: 4, 18: 4, 19: 2, 20: 2}
ACC_PRIVATE = 0x0002
ACC_NATIVE = 0x0100


def _skip_members(b, at):
    """Past a fields or methods table starting at `at` (its u2 count); returns the end
    and the count."""
    count = struct.unpack_from(">H", b, at)[0]
    at += 2
    for _ in range(count):
        at += 6  # access, name, descriptor
        attrs = struct.unpack_from(">H", b, at)[0]
        at += 2
        for _ in range(attrs):
            at += 2
            at += 4 + struct.unpack_from(">I", b, at)[0]
    return at, count


def add_native_method(b, name, desc):
    b = bytes(b)
    assert b[:4] == b"\xca\xfe\xba\xbe", "not a class file"
    cp_count = struct.unpack_from(">H", b, 8)[0]
    at, i = 10, 1
    while i < cp_count:
        tag = b[at]
        if tag == 1:
            at += 3 + struct.unpack_from(">H", b, at + 1)[0]
        else:
            at += 1 + _FIXED[tag]
        i += 2 if tag in (5, 6) else 1
    cp_end = at
    # access, this, super, interfaces
    at = cp_end + 6
    at += 2 + 2 * struct.unpack_from(">H", b, at)[0]
    at, _ = _skip_members(b, at)  # fields
    methods_at = at
    methods_end, methods = _skip_members(b, at)

    def utf8(s):
        data = s.encode()
        return struct.pack(">BH", 1, len(data)) + data
    name_idx, desc_idx = cp_count, cp_count + 1
    out = bytearray(b[:8])
    out += struct.pack(">H", cp_count + 2)
    out += b[10:cp_end] + utf8(name) + utf8(desc)
    out += b[cp_end:methods_at]
    out += struct.pack(">H", methods + 1)
    out += b[methods_at + 2:methods_end]
    out += struct.pack(">HHHH", ACC_PRIVATE | ACC_NATIVE, name_idx, desc_idx, 0)
    out += b[methods_end:]
    return bytes(out)
