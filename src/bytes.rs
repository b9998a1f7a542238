//! [`Bytes`]: what a hooked call moved, one buffer or an iovec array, handed from the
//! shims to capture and the framers without copying. A module of its own so that the
//! framers (HTTP/1, HTTP/2) and capture can share it without importing each other.

/// The bytes a call moved: one buffer, or a vector of them (`writev`, `sendmsg`...).
#[derive(Clone, Copy)]
pub enum Bytes<'a> {
    One(&'a [u8]),
    Vectored(&'a [libc::iovec]),
}

impl<'a> Bytes<'a> {
    /// Calls `f` on each piece, in order, up to `done` bytes in all.
    pub(crate) fn each(&self, done: usize, mut f: impl FnMut(&'a [u8])) {
        match *self {
            Bytes::One(b) => f(&b[..done.min(b.len())]),
            Bytes::Vectored(iov) => {
                let mut left = done;
                for v in iov {
                    if left == 0 {
                        break;
                    }
                    if v.iov_base.is_null() || v.iov_len == 0 {
                        continue;
                    }
                    let n = left.min(v.iov_len);
                    // SAFETY: the caller's iovec describes memory valid for `iov_len`
                    // bytes, of which the call just read or wrote the first `n`.
                    f(unsafe { core::slice::from_raw_parts(v.iov_base as *const u8, n) });
                    left -= n;
                }
            }
        }
    }

    /// The first non-empty piece (what the sniffer looks at).
    pub(crate) fn first(&self, done: usize) -> &'a [u8] {
        let mut first: &'a [u8] = &[];
        self.each(done, |p| {
            if first.is_empty() {
                first = p;
            }
        });
        first
    }
}
