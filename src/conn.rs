//! The connection table: per-fd state for the sockets this process connected.
//!
//! A fixed array indexed by fd, mapped once in the constructor (anonymous,
//! `MAP_NORESERVE`: pages are only backed once an fd number is used). All-zero memory is
//! a free slot, so there is nothing to initialise. The hook path on an fd we do not
//! follow costs one bounds check and one atomic load.
//!
//! No locks: each slot has a `busy` flag per direction, taken with one compare-exchange
//! around a framer step. A thread that finds it taken (two threads writing one socket at
//! once, which HTTP/1 clients do not do) skips capture and the connection stops being
//! followed, because a framer that missed bytes would mis-frame everything after.

use core::cell::UnsafeCell;
use core::sync::atomic::{
    AtomicBool, AtomicI32, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};
use tapline_record::{Stamp, WireAddr};

use crate::http1::{Framer, RequestKinds};
use crate::lambda::Pending;

/// Highest fd number followed (exclusive). A power of two: [`watched`] masks with it.
pub const MAX_FDS: usize = 65536;
const _: () = assert!(MAX_FDS.is_power_of_two());

/// One byte per fd number: nonzero when the hooks must look at that fd (a connection
/// in the table, or the spool file; the bits of [`watch`]). It is all the hot hooks
/// read before passing an untraced call on, so it sits apart from the slots, dense
/// (64 KiB of `.bss`, zero = not watched, nothing to initialise). A number at or above
/// `MAX_FDS` shares the byte of its low bits: a false "look closer", never a miss of
/// an fd the table could hold.
static WATCH: [AtomicU8; MAX_FDS] = [const { AtomicU8::new(0) }; MAX_FDS];

/// Why an fd is watched (bits of its [`WATCH`] byte).
pub mod watch {
    /// Its slot in the table is not free.
    pub const CONN: u8 = 1;
    /// It is the spool file (its `close` must be seen).
    pub const SPOOL: u8 = 2;
}

/// Must the hooks look at `fd` at all? The first and only test on the untraced path.
#[inline(always)]
pub fn watched(fd: i32) -> bool {
    WATCH[fd as u32 as usize & (MAX_FDS - 1)].load(Ordering::Relaxed) != 0
}

/// Sets or clears one [`watch`] bit of `fd` (out-of-range fds are never watched).
pub fn set_watch(fd: i32, bit: u8, on: bool) {
    if fd < 0 || fd as usize >= MAX_FDS {
        return;
    }
    let w = &WATCH[fd as usize];
    if on {
        w.fetch_or(bit, Ordering::Relaxed);
    } else {
        w.fetch_and(!bit, Ordering::Relaxed);
    }
}

/// The fd whose table slot `slot` is, or `None` for a slot outside the table (a TLS
/// session's own slot).
pub fn fd_of(slot: &Slot) -> Option<i32> {
    let t = TABLE.load(Ordering::Acquire) as usize;
    let p = slot as *const Slot as usize;
    let size = core::mem::size_of::<Slot>();
    (t != 0 && p >= t && p < t + MAX_FDS * size).then(|| ((p - t) / size) as i32)
}

/// Slot states.
pub mod state {
    /// Not a connection we follow.
    pub const FREE: u8 = 0;
    /// Connected (TCP, by this process); first bytes not seen yet.
    pub const PENDING: u8 = 1;
    /// Carries HTTP/1.x: framed.
    pub const HTTP: u8 = 2;
    /// Carries TLS: counted (plaintext comes from the TLS hooks, if at all).
    pub const TLS: u8 = 3;
    /// HTTP/2 with prior knowledge: counted.
    pub const H2C: u8 = 4;
    /// Some other protocol: ignored until closed.
    pub const IGNORED: u8 = 5;
    /// Was followed, then framing stopped (error, upgrade, unparseable): ignored.
    pub const ENDED: u8 = 6;
}

/// What is known about a connection from `connect` on. Written while both busy flags
/// are held and before the state is published; read-only afterwards.
#[derive(Clone, Copy, Default)]
pub struct ConnInfo {
    pub fd: i32,
    pub peer: WireAddr,
    pub local: WireAddr,
    pub connect: Stamp,
    /// `connect` returned `EINPROGRESS`: `connect` is when it started (a blocking
    /// `connect` is stamped when it returned, its start unknown).
    pub connect_started: bool,
}

/// Where a slot's bytes come from.
pub mod origin {
    /// A socket's own bytes (libc hooks).
    pub const SOCKET: u8 = 0;
    /// Plaintext of a TLS session (OpenSSL hooks).
    pub const OPENSSL: u8 = 1;
    /// Plaintext of a TLS session (GnuTLS hooks).
    pub const GNUTLS: u8 = 2;
    /// Plaintext of a Java TLS session (the JVMTI agent's natives, `src/jvm/`).
    pub const JSSE: u8 = 3;
}

#[repr(C)]
pub struct Slot {
    pub state: AtomicU8,
    /// The peer is the Lambda Runtime API: requests are watched for lifecycle posts.
    pub runtime_api: AtomicBool,
    /// One of [`origin`]; set by `start`.
    pub origin: AtomicU8,
    /// A read returned 0 (the peer closed its side).
    pub eof: AtomicBool,
    /// A write failed with `EPIPE`/`ECONNRESET` while the response could still be read
    /// (an early answer to an upload): the request was ended, the connection is still
    /// followed, and its `ConnClose` carries this errno. 0 when none.
    pub send_errno: AtomicI32,
    busy: [AtomicBool; 2],
    pub conn_id: AtomicU64,
    /// Bytes written / read on the socket.
    pub bytes: [AtomicU64; 2],
    pub first_out_wall: AtomicU64,
    pub last_in_wall: AtomicU64,
    /// When `getsockopt(SO_ERROR)` said a non-blocking connect succeeded (wall ns;
    /// 0 = not seen).
    pub established_wall: AtomicU64,
    /// [`RequestKinds`], shared by the two directions.
    head_bits: AtomicU64,
    connect_bits: AtomicU64,
    info: UnsafeCell<ConnInfo>,
    framers: [UnsafeCell<Framer>; 2],
    /// A Runtime API response post awaiting its request's end (egress only).
    pending: UnsafeCell<Pending>,
    /// HTTP/2: 1 + the index of this connection's `http2` pool entry; 0 when none.
    pub h2: AtomicU32,
    /// TLS ciphertext: each direction's walk of the record layer during the handshake
    /// ([`crate::tls_wire::Walk`], packed), used under that direction's busy flag.
    pub tls_walk: [AtomicU64; 2],
}

// SAFETY: the UnsafeCells are only accessed under the protocol documented on each
// accessor (busy flags, publish-before-use through `state`).
unsafe impl Sync for Slot {}

static TABLE: AtomicPtr<Slot> = AtomicPtr::new(core::ptr::null_mut());
static NEXT_CONN: AtomicU32 = AtomicU32::new(1);
/// One past the highest fd ever followed: the exit handler scans only this far.
static FD_END: AtomicUsize = AtomicUsize::new(0);

/// Maps the table. Called once from the constructor; on failure nothing is followed.
pub fn init() {
    if let Some(p) = crate::sys::map_zeroed(MAX_FDS * core::mem::size_of::<Slot>()) {
        TABLE.store(p as *mut Slot, Ordering::Release);
    }
}

/// The slot of `fd`, if the table exists and `fd` is in range.
#[inline]
pub fn slot(fd: i32) -> Option<&'static Slot> {
    let t = TABLE.load(Ordering::Acquire);
    if t.is_null() || fd < 0 || fd as usize >= MAX_FDS {
        return None;
    }
    // SAFETY: `t` maps MAX_FDS zero-initialised slots for the life of the process, and
    // all-zero bytes are a valid `Slot` (atomics and plain integers; Framer's zero state
    // is `Framer::new()`).
    Some(unsafe { &*t.add(fd as usize) })
}

/// Calls `f` on the slot of every fd that was ever followed.
pub fn each_slot(mut f: impl FnMut(&'static Slot)) {
    let end = FD_END.load(Ordering::Relaxed).min(MAX_FDS);
    for fd in 0..end {
        if let Some(s) = slot(fd as i32) {
            f(s);
        }
    }
}

/// A new connection id, unique across the processes sharing a spool.
pub fn new_conn_id(pid: u32) -> u64 {
    (u64::from(pid) << 32) | u64::from(NEXT_CONN.fetch_add(1, Ordering::Relaxed))
}

impl Slot {
    /// Starts following a freshly connected socket. Returns false if the slot is in use
    /// by another thread right now (then the connection is not followed).
    pub fn start(&self, conn_id: u64, origin: u8, info: ConnInfo) -> bool {
        if !self.lock_both() {
            return false;
        }
        // A connection on this slot whose end was never seen (its fd closed by a call
        // not hooked) gives back the HTTP/2 pool entry it may hold.
        let h2 = self.h2.swap(0, Ordering::Relaxed);
        if h2 != 0 {
            crate::http2::abandon(h2, self.conn_id.load(Ordering::Relaxed));
        }
        // SAFETY: both busy flags are held: no other thread touches the cells.
        unsafe {
            *self.info.get() = info;
            *self.framers[0].get() = Framer::new();
            *self.framers[1].get() = Framer::new();
            *self.pending.get() = Pending::new();
        }
        self.runtime_api
            .store(crate::lambda::is_runtime_api(&info.peer), Ordering::Relaxed);
        self.eof.store(false, Ordering::Relaxed);
        self.send_errno.store(0, Ordering::Relaxed);
        self.bytes[0].store(0, Ordering::Relaxed);
        self.bytes[1].store(0, Ordering::Relaxed);
        self.first_out_wall.store(0, Ordering::Relaxed);
        self.last_in_wall.store(0, Ordering::Relaxed);
        self.established_wall.store(0, Ordering::Relaxed);
        self.head_bits.store(0, Ordering::Relaxed);
        self.connect_bits.store(0, Ordering::Relaxed);
        self.tls_walk[0].store(0, Ordering::Relaxed);
        self.tls_walk[1].store(0, Ordering::Relaxed);
        self.conn_id.store(conn_id, Ordering::Relaxed);
        self.origin.store(origin, Ordering::Relaxed);
        self.unlock(1);
        self.unlock(0);
        self.state.store(state::PENDING, Ordering::Release);
        if info.fd >= 0 {
            FD_END.fetch_max(info.fd as usize + 1, Ordering::Relaxed);
        }
        true
    }

    /// What `connect` recorded. Only meaningful once the state is not FREE.
    pub fn info(&self) -> ConnInfo {
        // SAFETY: written before the state left FREE (release), and the caller observed
        // that state (acquire); `start` is the only writer.
        unsafe { *self.info.get() }
    }

    /// Runs `f` on the framer of `dir` (0 egress, 1 ingress) with the shared request
    /// kinds, if no other thread is using it. Returns `None` when it was busy.
    pub fn with_framer<R>(
        &self,
        dir: usize,
        f: impl FnOnce(&mut Framer, &mut RequestKinds, &mut Pending) -> R,
    ) -> Option<R> {
        self.with_busy(dir, || {
            let mut kinds = RequestKinds {
                head_bits: self.head_bits.load(Ordering::Acquire),
                connect_bits: self.connect_bits.load(Ordering::Acquire),
            };
            // SAFETY: the busy flag of `dir` is held: this thread is the framer's only user.
            let framer = unsafe { &mut *self.framers[dir].get() };
            let mut no_pending = Pending::new();
            let pending = if dir == 0 {
                // SAFETY: `pending` belongs to the egress direction, whose flag is held.
                unsafe { &mut *self.pending.get() }
            } else {
                &mut no_pending
            };
            let r = f(framer, &mut kinds, pending);
            if dir == 0 {
                self.head_bits.store(kinds.head_bits, Ordering::Release);
                self.connect_bits
                    .store(kinds.connect_bits, Ordering::Release);
            }
            r
        })
    }

    /// Runs `f` holding the busy flag of `dir`, if no other thread holds it (`None`
    /// then). What the HTTP/2 framers, which live in `http2`'s pool, are used under.
    pub fn with_busy<R>(&self, dir: usize, f: impl FnOnce() -> R) -> Option<R> {
        if !self.lock(dir) {
            return None;
        }
        let r = f();
        self.unlock(dir);
        Some(r)
    }

    /// Runs `f` on both framers while holding both busy flags: how a connection's end
    /// is written. Waits a bounded moment for a thread still inside a framer step.
    pub fn finish<R>(&self, f: impl FnOnce(&mut Framer, &mut Framer) -> R) -> Option<R> {
        if !self.lock_both() {
            return None;
        }
        // SAFETY: both busy flags are held: this thread is the framers' only user.
        let (egress, ingress) =
            unsafe { (&mut *self.framers[0].get(), &mut *self.framers[1].get()) };
        let r = f(egress, ingress);
        self.unlock(1);
        self.unlock(0);
        Some(r)
    }

    /// Takes both busy flags, waiting (spinning, bounded to some tens of microseconds)
    /// for a thread that is finishing a framer step or a connection's end. Only the rare
    /// paths use it (connect, end of connection); the data path never waits.
    fn lock_both(&self) -> bool {
        const SPINS: u32 = 20_000;
        for dir in 0..2 {
            let mut n = 0;
            while !self.lock(dir) {
                n += 1;
                if n == SPINS {
                    if dir == 1 {
                        self.unlock(0);
                    }
                    return false;
                }
                core::hint::spin_loop();
            }
        }
        true
    }

    fn lock(&self, dir: usize) -> bool {
        self.busy[dir]
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    fn unlock(&self, dir: usize) {
        self.busy[dir].store(false, Ordering::Release);
    }
}
