//! Binding objects that do not reach our hooks: GOT slots rewritten to our shims.
//!
//! Why: an object loaded with `RTLD_DEEPBIND` (PHP loads every extension so; its
//! `curl.so` brings `libcurl.so.4`) looks its symbols up in its own dependencies before
//! the global scope, so its `connect`, `send`, `SSL_write`... bind to libc and libssl
//! directly and `LD_PRELOAD` is never asked. Such an object's GOT slots for the
//! functions we hook are pointed at our shims instead.
//!
//! When: in the constructor for the objects already loaded, and after every
//! `dlopen`/`dlmopen` (hooks in `hooks/dlopen.rs`, real call first) for the objects that
//! call added; `dlclose` makes us forget the objects that went away. The loader's
//! `dlpi_adds`/`dlpi_subs` counters make a `dlopen` that loaded nothing cost one
//! callback.
//!
//! Which slots: `JUMP_SLOT` and `GLOB_DAT` relocations of a symbol the object does not
//! define and that we export (our own `DT_GNU_HASH` answers, no loader call), whose slot
//! holds neither our shim nor — for an object that binds through the global scope — its
//! own lazy PLT stub. A lazy slot of an object loaded with `RTLD_DEEPBIND` is bound here
//! to what the object would have reached: `dlsym` on the handle `dlopen` returned (the
//! object's deep scope comes first), found in the global scope — us — otherwise.
//!
//! What the shim then calls: a slot is rewritten only when the function it held (or
//! would have held) is exactly the one our shim calls for that object — libc's for the
//! libc hooks (`RTLD_NEXT`), the caller's own libssl for `SSL_*` (the per-call-site
//! dispatch in `hooks/openssl.rs` asks the same question of the same object). What each
//! slot held is kept per object. A slot of an object that binds through the global scope
//! and holds some third function (an interposer preloaded before us, an executable's
//! canonical PLT entry) is what the loader's rules chose: left as it is. Anything else
//! — a deep-bound slot that held another function (its own copy of libc), a relocation
//! type not understood, tables outside the object, `mprotect` refused, a slot page that
//! is executable — leaves the whole object untouched, said once as a notice.
//!
//! How: slots under `PT_GNU_RELRO` are read-only after loading: `mprotect` to read-write,
//! one aligned store, back to read-only. Data pages only: a page is never writable and
//! executable. Writes happen inside `dl_iterate_phdr`'s callback, under the loader's
//! list lock, so the object cannot be unloaded meanwhile; loader calls (`dlsym`) happen
//! between the two iterations, never under that lock.
//!
//! Not on any hook path: all of it runs in the constructor or after a `dlopen`,
//! `dlmopen`, `dlclose` returned, under the re-entry guard, with fixed tables (no
//! allocation) behind one spin flag that a waiter gives up on after a bounded time (a
//! thread inside the loader may be waiting for the one holding it).

use core::cell::UnsafeCell;
use core::ffi::{c_char, c_int, c_void, CStr};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::elf::{self, reloc, Exports, Image};
use super::resolve;

/// Why an object was left untouched.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Untouched {
    /// Its dynamic section is not 64-bit RELA, or points outside the object.
    Unreadable,
    /// A relocation of a hooked symbol of a type other than JUMP_SLOT / GLOB_DAT.
    RelocationType(u32),
    /// A slot held (or would hold) another function than the one our shim calls.
    BindsElsewhere,
    /// A slot on an executable page, or outside the object's data.
    SlotNotData,
    /// `mprotect` refused.
    ProtectRefused,
    /// More hooked slots than the table keeps per object, or more objects at once.
    TooMany,
    /// Loaded by `dlmopen` into another link-map namespace: invisible to
    /// `dl_iterate_phdr` from ours, and bound to that namespace's own libc.
    OtherNamespace,
}

impl Untouched {
    /// Short text for the notice.
    pub fn as_str(self) -> &'static str {
        match self {
            Untouched::Unreadable => "dynamic section not understood",
            Untouched::RelocationType(_) => "relocation type not understood",
            Untouched::BindsElsewhere => "binds to another function than the hook calls",
            Untouched::SlotNotData => "GOT slot not on a data page",
            Untouched::ProtectRefused => "mprotect refused",
            Untouched::TooMany => "too many slots or objects",
            Untouched::OtherNamespace => "loaded into another link-map namespace",
        }
    }
}

/// A loaded object's identity: load base and dynamic section address.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
struct ObjectId {
    base: usize,
    dynamic: usize,
}

#[derive(Clone, Copy, Default)]
struct PendingSlot {
    /// Address of the GOT slot.
    slot: usize,
    /// Our symbol's index in our own symbol table.
    export: u32,
    /// Our shim's address.
    shim: usize,
    /// What the slot held when we read it (a lazy stub for `lazy`).
    value: usize,
    /// Not bound yet (lazy PLT stub): the function comes from the dlopen handle.
    lazy: bool,
    /// Dropped in phase 2 (it reaches us through the global scope after all).
    dropped: bool,
}

const SLOTS_PER_OBJECT: usize = 64;
const PATH_MAX: usize = 512;

/// An object found in phase 1 that needs rewriting (or a notice).
struct Pending {
    id: ObjectId,
    path: [u8; PATH_MAX],
    path_len: usize,
    slots: [PendingSlot; SLOTS_PER_OBJECT],
    nslots: usize,
    /// Added by a `RTLD_DEEPBIND` dlopen: binds in its own scope first.
    scoped: bool,
    verdict: Option<Untouched>,
}

/// A slot we rewrote, and what it held: kept per object, forgotten at `dlclose`.
#[derive(Clone, Copy, Default)]
struct BoundSlot {
    object: ObjectId,
    slot: usize,
    held: usize,
}

const MAX_SEEN: usize = 2048;
const MAX_PENDING: usize = 8;
const MAX_BOUND: usize = 1024;

struct State {
    adds: u64,
    subs: u64,
    seen: [ObjectId; MAX_SEEN],
    seen_len: usize,
    next: [ObjectId; MAX_SEEN],
    next_len: usize,
    pending: [Pending; MAX_PENDING],
    pending_len: usize,
    /// An object needed a pending entry and none was left.
    overflow: bool,
    bound: [BoundSlot; MAX_BOUND],
    bound_len: usize,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY_PENDING: Pending = Pending {
    id: ObjectId {
        base: 0,
        dynamic: 0,
    },
    path: [0; PATH_MAX],
    path_len: 0,
    slots: [PendingSlot {
        slot: 0,
        export: 0,
        shim: 0,
        value: 0,
        lazy: false,
        dropped: false,
    }; SLOTS_PER_OBJECT],
    nslots: 0,
    scoped: false,
    verdict: None,
};

struct Guarded(UnsafeCell<State>);
// SAFETY: the state is only reached through `with_state`, which holds `LOCKED`.
unsafe impl Sync for Guarded {}

const NO_ID: ObjectId = ObjectId {
    base: 0,
    dynamic: 0,
};
static STATE: Guarded = Guarded(UnsafeCell::new(State {
    adds: 0,
    subs: 0,
    seen: [NO_ID; MAX_SEEN],
    seen_len: 0,
    next: [NO_ID; MAX_SEEN],
    next_len: 0,
    pending: [EMPTY_PENDING; MAX_PENDING],
    pending_len: 0,
    overflow: false,
    bound: [BoundSlot {
        object: NO_ID,
        slot: 0,
        held: 0,
    }; MAX_BOUND],
    bound_len: 0,
}));
static LOCKED: AtomicBool = AtomicBool::new(false);

/// What this library is, found once in the constructor.
struct Me {
    base: usize,
    /// Our own mapped range: an address inside is one of our functions.
    range: (usize, usize),
    dynamic: usize,
    loader_base: usize,
    page: usize,
    exports: Exports,
}

struct MeCell(UnsafeCell<Option<Me>>);
// SAFETY: written once in the constructor (single-threaded, before any hook runs and
// before `ENABLED` is published with a release store), read-only afterwards.
unsafe impl Sync for MeCell {}
static ME: MeCell = MeCell(UnsafeCell::new(None));
static ENABLED: AtomicBool = AtomicBool::new(false);
/// Notices said for objects in other namespaces (one is enough).
static SAID_NAMESPACE: AtomicBool = AtomicBool::new(false);
/// Objects left untouched, for tests and the notice count.
static UNTOUCHED: AtomicUsize = AtomicUsize::new(0);
/// Slots rewritten since the start (objects forgotten at `dlclose` included).
static REWRITTEN: AtomicUsize = AtomicUsize::new(0);

impl Me {
    fn owns(&self, addr: usize) -> bool {
        addr >= self.range.0 && addr < self.range.1
    }
}

fn me() -> Option<&'static Me> {
    if !ENABLED.load(Ordering::Acquire) {
        return None;
    }
    // SAFETY: `ME` was written before `ENABLED` was set (release/acquire) and never
    // again.
    unsafe { (*ME.0.get()).as_ref() }
}

/// Runs `f` on the state under the spin flag; `None` if it stayed taken too long.
fn with_state<R>(f: impl FnOnce(&mut State) -> R) -> Option<R> {
    let mut tries = 0u32;
    while LOCKED
        .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        tries += 1;
        if tries > 20_000 {
            return None;
        }
        // SAFETY: sched_yield has no preconditions.
        unsafe { libc::sched_yield() };
    }
    // SAFETY: `LOCKED` is held: nobody else reaches the state.
    let r = f(unsafe { &mut *STATE.0.get() });
    LOCKED.store(false, Ordering::Release);
    Some(r)
}

/// In the child of `fork`: only the forking thread exists, so a flag another thread
/// held is free.
pub fn after_fork_child() {
    LOCKED.store(false, Ordering::Release);
}

/// Slots rewritten so far and objects left untouched (for the notice and tests).
pub fn counts() -> (usize, usize) {
    (
        REWRITTEN.load(Ordering::Relaxed),
        UNTOUCHED.load(Ordering::Relaxed),
    )
}

// --- finding ourselves -------------------------------------------------------------------

struct FindSelf {
    addr: usize,
    found: Option<Found>,
}

/// This library as `dl_iterate_phdr` shows it.
struct Found {
    base: usize,
    dynamic: usize,
    range: (usize, usize),
    exports: Option<Exports>,
}

unsafe extern "C" fn find_self(
    info: *mut libc::dl_phdr_info,
    _size: libc::size_t,
    data: *mut c_void,
) -> c_int {
    // SAFETY: the loader passes a valid record and our `data` pointer.
    let (info, want) = unsafe { (&*info, &mut *(data as *mut FindSelf)) };
    // SAFETY: the record of the callback running now.
    let Some(image) = (unsafe { Image::from_info(info) }) else {
        return 0;
    };
    if !image.contains(want.addr) {
        return 0;
    }
    want.found = Some(Found {
        base: image.base,
        dynamic: image.dynamic_addr().unwrap_or(0),
        range: image.range(),
        exports: Exports::of_self(&image),
    });
    1
}

/// Called once from the constructor: finds our own export table, and turns binding on
/// only if the global scope resolves our hooks to us (we are preloaded; a test that
/// `dlopen`s the library for its spool functions must not rebind the process).
pub fn init() {
    if cfg!(not(any(target_arch = "x86_64", target_arch = "aarch64"))) {
        return;
    }
    let mut want = FindSelf {
        addr: init as fn() as usize,
        found: None,
    };
    // SAFETY: the callback only reads the loader's records and writes `want`.
    unsafe { libc::dl_iterate_phdr(Some(find_self), &mut want as *mut FindSelf as *mut c_void) };
    let Some(Found {
        base,
        dynamic,
        range,
        exports: Some(exports),
    }) = want.found
    else {
        return;
    };
    let Some((_, ours)) = exports.find(b"connect") else {
        return;
    };
    // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name.
    let global = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"connect".as_ptr()) } as usize;
    if global != ours {
        return;
    }
    // SAFETY: getauxval and sysconf have no preconditions.
    let (loader_base, page) = unsafe {
        (
            libc::getauxval(libc::AT_BASE) as usize,
            libc::sysconf(libc::_SC_PAGESIZE) as usize,
        )
    };
    if !page.is_power_of_two() {
        return;
    }
    // SAFETY: the constructor runs single-threaded, before `ENABLED` is set: no reader.
    unsafe {
        *ME.0.get() = Some(Me {
            base,
            range,
            dynamic,
            loader_base,
            page,
            exports,
        })
    };
    ENABLED.store(true, Ordering::Release);
}

// --- entry points ------------------------------------------------------------------------

/// Says that the object at `path` was left untouched, and why (a notice record: the
/// spool sits above this module, so the caller writes it).
pub type Say = fn(path: &[u8], why: Untouched);

/// The objects loaded before us (constructor): bind those that bypass us.
pub fn scan_at_start(say: Say) {
    scan(core::ptr::null_mut(), say);
}

/// After a successful `dlopen(.., flags)` that returned `handle`.
pub fn after_dlopen(handle: *mut c_void, flags: c_int, say: Say) {
    let scope = if flags & libc::RTLD_DEEPBIND != 0 {
        handle
    } else {
        core::ptr::null_mut()
    };
    scan(scope, say);
}

/// After a successful `dlmopen` that returned `handle` for the object at `path`.
///
/// # Safety
/// `handle` is what `dlmopen` just returned (not NULL), not closed since.
pub unsafe fn after_dlmopen(handle: *mut c_void, flags: c_int, path: &[u8], say: Say) {
    let mut lmid: libc::Lmid_t = 0;
    // SAFETY: a live handle (the caller's contract); RTLD_DI_LMID writes one Lmid_t.
    let ok = unsafe { libc::dlinfo(handle, RTLD_DI_LMID, &mut lmid as *mut _ as *mut c_void) };
    if ok == 0 && lmid != libc::LM_ID_BASE {
        if me().is_some() && !SAID_NAMESPACE.swap(true, Ordering::Relaxed) {
            UNTOUCHED.fetch_add(1, Ordering::Relaxed);
            say(path, Untouched::OtherNamespace);
        }
        return;
    }
    after_dlopen(handle, flags, say);
}

/// `RTLD_DI_LMID` (glibc `<dlfcn.h>`).
const RTLD_DI_LMID: c_int = 1;

/// After `dlclose`: forget the objects that went away (a later `dlopen` may load one
/// again at the same address, and it must be looked at again).
pub fn after_dlclose(say: Say) {
    scan(core::ptr::null_mut(), say);
}

// --- the scan ----------------------------------------------------------------------------

struct Walk<'s> {
    me: &'static Me,
    state: &'s mut State,
    /// The handle of a `RTLD_DEEPBIND` dlopen: new objects bind through it first.
    scope: *mut c_void,
    first: bool,
    unchanged: bool,
}

fn scan(scope: *mut c_void, say: Say) {
    let Some(me) = me() else {
        return;
    };
    let _ = with_state(|state| {
        state.pending_len = 0;
        state.next_len = 0;
        state.overflow = false;
        let mut walk = Walk {
            me,
            state,
            scope,
            first: true,
            unchanged: false,
        };
        // Phase 1, under the loader's list lock: which objects are new, and which of
        // their slots do not reach us.
        // SAFETY: the callback reads the loader's records and writes only `walk`.
        unsafe { libc::dl_iterate_phdr(Some(inspect), &mut walk as *mut Walk as *mut c_void) };
        if walk.unchanged {
            return;
        }
        let state = walk.state;
        core::mem::swap(&mut state.seen, &mut state.next);
        state.seen_len = state.next_len;
        forget_gone(state);
        if state.pending_len == 0 {
            return;
        }
        // Phase 2, no loader lock held: what each slot held or would hold, and what our
        // shim calls.
        for p in &mut state.pending[..state.pending_len] {
            if p.verdict.is_none() {
                p.verdict = decide(me, p, scope).err();
            }
        }
        // SAFETY: dlerror only clears this thread's pending loader message: the lookups
        // above must not leave one behind for the program to read.
        unsafe { libc::dlerror() };
        // Phase 3, under the loader's list lock again: rewrite.
        let mut write = Write { me, state };
        // SAFETY: as for phase 1; this callback writes GOT slots of objects still loaded.
        unsafe { libc::dl_iterate_phdr(Some(rewrite), &mut write as *mut Write as *mut c_void) };
        let state = write.state;
        for p in &state.pending[..state.pending_len] {
            if let Some(why) = p.verdict {
                UNTOUCHED.fetch_add(1, Ordering::Relaxed);
                say(&p.path[..p.path_len], why);
            }
        }
        if state.overflow {
            UNTOUCHED.fetch_add(1, Ordering::Relaxed);
            say(b"", Untouched::TooMany);
        }
    });
}

unsafe extern "C" fn inspect(
    info: *mut libc::dl_phdr_info,
    _size: libc::size_t,
    data: *mut c_void,
) -> c_int {
    // SAFETY: the loader passes a valid record and our `data` pointer.
    let (info, walk) = unsafe { (&*info, &mut *(data as *mut Walk)) };
    let _ = std::panic::catch_unwind(core::panic::AssertUnwindSafe(|| {
        if walk.first {
            walk.first = false;
            let (adds, subs) = (info.dlpi_adds, info.dlpi_subs);
            if adds == walk.state.adds && subs == walk.state.subs && walk.state.seen_len > 0 {
                walk.unchanged = true;
                return;
            }
            walk.state.adds = adds;
            walk.state.subs = subs;
        }
        // SAFETY: the record of the callback running now.
        if let Some(image) = unsafe { Image::from_info(info) } {
            visit(walk, &image);
        }
    }));
    c_int::from(walk.unchanged)
}

fn visit(walk: &mut Walk<'_>, image: &Image<'_>) {
    let me = walk.me;
    let Some(dynamic) = image.dynamic_addr() else {
        return;
    };
    let id = ObjectId {
        base: image.base,
        dynamic,
    };
    if (id.base == me.base && id.dynamic == me.dynamic)
        || (me.loader_base != 0 && id.base == me.loader_base)
    {
        return;
    }
    let state = &mut *walk.state;
    if state.next_len == MAX_SEEN {
        return;
    }
    state.next[state.next_len] = id;
    state.next_len += 1;
    if state.seen[..state.seen_len].contains(&id) {
        return;
    }
    // A new object.
    if state.pending_len == MAX_PENDING {
        // Looked at by no one: keep it out of `seen` so a later scan takes it.
        state.next_len -= 1;
        state.overflow = true;
        return;
    }
    let p = &mut state.pending[state.pending_len];
    p.id = id;
    p.nslots = 0;
    p.verdict = None;
    p.path_len = copy_path(&mut p.path, image.name);
    let scoped = !walk.scope.is_null();
    p.scoped = scoped;
    match collect(me, image, scoped, p) {
        Ok(()) if p.nslots == 0 => {}
        Ok(()) => state.pending_len += 1,
        Err(why) => {
            p.verdict = Some(why);
            state.pending_len += 1;
        }
    }
}

fn copy_path(to: &mut [u8; PATH_MAX], name: *const c_char) -> usize {
    if name.is_null() {
        return 0;
    }
    // SAFETY: the loader's NUL-terminated name of an object loaded now.
    let name = unsafe { CStr::from_ptr(name) }.to_bytes();
    if name.len() >= PATH_MAX {
        return 0;
    }
    to[..name.len()].copy_from_slice(name);
    to[name.len()] = 0;
    name.len()
}

/// Phase 1 for one new object: its hooked slots that do not reach us.
fn collect(me: &Me, image: &Image<'_>, scoped: bool, p: &mut Pending) -> Result<(), Untouched> {
    let d = match image.dynamic() {
        Ok(d) => d,
        Err(elf::Unreadable::NoDynamic) => return Ok(()),
        Err(_) => return Err(Untouched::Unreadable),
    };
    let mut odd = None;
    for table in d.tables {
        for r in table {
            let (kind, index) = (r.kind(), r.symbol());
            if index == 0 || kind == reloc::NONE {
                continue;
            }
            let Some((sym, name)) = image.symbol(&d, index) else {
                return Err(Untouched::Unreadable);
            };
            if sym.shndx != 0 {
                continue; // the object's own definition
            }
            let Some((export, shim)) = me.exports.find(name) else {
                continue;
            };
            let slot = image.base.wrapping_add(r.offset as usize);
            if !slot.is_multiple_of(8) || image.segment_of(slot, 8).is_none() {
                return Err(Untouched::Unreadable);
            }
            // SAFETY: an aligned word inside one of the object's loaded segments.
            let value = unsafe { core::ptr::read_volatile(slot as *const usize) };
            if kind != reloc::JUMP_SLOT && kind != reloc::GLOB_DAT {
                if value != shim.wrapping_add(r.addend as usize) {
                    odd = Some(kind);
                }
                continue;
            }
            if value == shim {
                continue;
            }
            let lazy = image.contains(value);
            if lazy && (kind != reloc::JUMP_SLOT || !scoped) {
                // Not bound yet: through the global scope it reaches us. A GLOB_DAT
                // pointing into its own object is not a case we know.
                if kind == reloc::GLOB_DAT {
                    return Err(Untouched::BindsElsewhere);
                }
                continue;
            }
            if p.nslots == SLOTS_PER_OBJECT {
                return Err(Untouched::TooMany);
            }
            p.slots[p.nslots] = PendingSlot {
                slot,
                export,
                shim,
                value,
                lazy,
                dropped: false,
            };
            p.nslots += 1;
        }
    }
    match odd {
        Some(kind) if p.nslots > 0 => Err(Untouched::RelocationType(kind)),
        _ => Ok(()),
    }
}

/// The names whose shim picks the real function per call site, from the calling
/// object's own scope (`hooks/openssl.rs`): a per-object lookup answers for them.
const PER_CALLER: [&[u8]; 7] = [
    b"SSL_write",
    b"SSL_write_ex",
    b"SSL_read",
    b"SSL_read_ex",
    b"SSL_free",
    b"SSL_connect",
    b"SSL_do_handshake",
];

/// Phase 2 for one object: what each slot held or would hold, checked against what our
/// shim calls for this object.
fn decide(me: &Me, p: &mut Pending, scope: *mut c_void) -> Result<(), Untouched> {
    let path = CStr::from_bytes_until_nul(&p.path[..=p.path_len]).unwrap_or(c"");
    let mut live = 0;
    for s in &mut p.slots[..p.nslots] {
        let name = me.exports.name_of(s.export);
        let held = if s.lazy {
            // SAFETY: the handle the dlopen just returned, and a NUL-terminated name.
            let f = unsafe { libc::dlsym(scope, name.as_ptr()) } as usize;
            if f == 0 || me.owns(f) {
                s.dropped = true; // the global scope answers: us
                continue;
            }
            f
        } else {
            s.value
        };
        let calls = if PER_CALLER.contains(&name.to_bytes()) {
            resolve::lookup_in_object(path, name)
        } else {
            // What `RealFn` finds: RTLD_NEXT (from here, never us), else the fallback.
            // SAFETY: dlsym with RTLD_NEXT and a NUL-terminated name.
            match unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) } as usize {
                0 => resolve::lookup(name),
                f => Some(f),
            }
        };
        if calls != Some(held) {
            if p.scoped {
                return Err(Untouched::BindsElsewhere);
            }
            // Bound through the global scope to another definition (an interposer
            // preloaded before us, an executable's canonical PLT entry): not a bypass.
            s.dropped = true;
            continue;
        }
        s.value = held;
        live += 1;
    }
    if live == 0 {
        p.nslots = 0;
    }
    Ok(())
}

struct Write<'s> {
    me: &'static Me,
    state: &'s mut State,
}

unsafe extern "C" fn rewrite(
    info: *mut libc::dl_phdr_info,
    _size: libc::size_t,
    data: *mut c_void,
) -> c_int {
    // SAFETY: the loader passes a valid record and our `data` pointer.
    let (info, w) = unsafe { (&*info, &mut *(data as *mut Write)) };
    let _ = std::panic::catch_unwind(core::panic::AssertUnwindSafe(|| {
        // SAFETY: the record of the callback running now.
        let Some(image) = (unsafe { Image::from_info(info) }) else {
            return;
        };
        let Some(dynamic) = image.dynamic_addr() else {
            return;
        };
        let id = ObjectId {
            base: image.base,
            dynamic,
        };
        let state = &mut *w.state;
        for i in 0..state.pending_len {
            let p = &mut state.pending[i];
            if p.id != id || p.verdict.is_some() || p.nslots == 0 {
                continue;
            }
            match bind(w.me.page, &image, p) {
                Ok(()) => {
                    for s in p.slots[..p.nslots].iter().filter(|s| !s.dropped) {
                        if state.bound_len < MAX_BOUND {
                            state.bound[state.bound_len] = BoundSlot {
                                object: id,
                                slot: s.slot,
                                held: s.value,
                            };
                            state.bound_len += 1;
                        }
                        REWRITTEN.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(why) => p.verdict = Some(why),
            }
        }
    }));
    0
}

/// Phase 3 for one object, under the loader's list lock: every slot to our shim, or
/// (on any failure) none. The RELRO pages holding slots are made read-write once, as one
/// window, and read-only again after the stores.
fn bind(page: usize, image: &Image<'_>, p: &Pending) -> Result<(), Untouched> {
    let live = || p.slots[..p.nslots].iter().filter(|s| !s.dropped);
    if live().any(|s| !image.slot_is_data(s.slot)) {
        return Err(Untouched::SlotNotData);
    }
    let window = image.relro_pages(page).and_then(|(start, end)| {
        let (mut lo, mut hi) = (usize::MAX, 0);
        for s in live() {
            let at = s.slot & !(page - 1);
            if at >= start && at < end {
                lo = lo.min(at);
                hi = hi.max(at + page);
            }
        }
        (lo < hi).then_some((lo, hi))
    });
    if let Some((lo, hi)) = window {
        // SAFETY: pages inside the object's RELRO range (between two that hold its
        // slots), data by `slot_is_data`: read-write, never executable.
        let r = unsafe {
            libc::mprotect(
                lo as *mut c_void,
                hi - lo,
                libc::PROT_READ | libc::PROT_WRITE,
            )
        };
        if r != 0 {
            return Err(Untouched::ProtectRefused);
        }
    }
    for s in live() {
        // SAFETY: an aligned word-sized slot of an object still loaded (we are in the
        // loader's callback for it, under its list lock), writable now; other threads
        // may read it concurrently, so the store is one atomic word.
        unsafe { AtomicUsize::from_ptr(s.slot as *mut usize) }.store(s.shim, Ordering::Release);
    }
    if let Some((lo, hi)) = window {
        // SAFETY: back to what the loader left: read-only.
        unsafe { libc::mprotect(lo as *mut c_void, hi - lo, libc::PROT_READ) };
    }
    Ok(())
}

/// Forgets the slots of objects no longer loaded.
fn forget_gone(state: &mut State) {
    let mut kept = 0;
    for i in 0..state.bound_len {
        let b = state.bound[i];
        if state.seen[..state.seen_len].contains(&b.object) {
            state.bound[kept] = b;
            kept += 1;
        }
    }
    state.bound_len = kept;
}

/// What one of our rewritten slots held before, if `slot` is one (for tests and the
/// report).
pub fn held_before(slot: usize) -> Option<usize> {
    with_state(|s| {
        s.bound[..s.bound_len]
            .iter()
            .find(|b| b.slot == slot)
            .map(|b| b.held)
    })
    .flatten()
}
