//! Inline hooks on OpenSSL inside the main executable (node, and any program that
//! links OpenSSL statically and exports its symbols).
//!
//! Why: such a program calls its own `SSL_write` directly, so the interposed symbols
//! in [`super::openssl`] never run and only ciphertext is seen. Here the constructor
//! overwrites the first instructions of `SSL_write`, `SSL_write_ex`, `SSL_read`,
//! `SSL_read_ex` and `SSL_free` with a `jmp rel32` to a stub page mapped next to the
//! executable's text; the stub jumps on to the handlers below, which call the
//! displaced instructions' *trampoline* (the real function) exactly once and then run
//! the same capture code as the interposed shims.
//!
//! The rules this module keeps, each because breaking it could crash the host:
//! - only when the process has one thread (the constructor, before `main`): no other
//!   thread can be executing the bytes being replaced;
//! - all five functions planned and every page prepared before anything is changed,
//!   so a refusal leaves the process as it was;
//! - never a writable and executable page: the stub page is written, then made
//!   read+exec; a patched text page is a *copy* of the original, patched while
//!   read+write, made read+exec, and only then moved over the original with one
//!   `mremap`. The original text never loses its exec permission, so a W^X policy that
//!   refuses the exec permission (`PR_SET_MDWE`, a seccomp filter) only makes the
//!   hooker give up;
//! - any surprise (a symbol outside the executable, no size, a plan refused by
//!   [`crate::inline_plan`], a failed `mmap`/`mprotect`/`mremap`) means no hook and no
//!   output: the program runs as if the library were not there.

use core::ffi::{c_char, c_int, c_void, CStr};
use core::sync::atomic::{AtomicUsize, Ordering};
use libc::size_t;

use super::openssl::{self, Resolved, SessionQueries};
use crate::inline_plan::{self, Prologue, ENTRY_LEN, TRAMPOLINE_MAX};
use crate::tls;

const PT_LOAD: u32 = 1;
const PF_X: u32 = 1;
const PF_W: u32 = 2;
const PF_R: u32 = 4;
const RTLD_DL_SYMENT: c_int = 1;
const STT_FUNC: u8 = 2;
const PAGE: usize = 4096;
/// One trampoline then one entry stub per hooked function, in a slot of this size.
const SLOT: usize = 128;
const _: () = assert!(TRAMPOLINE_MAX + ENTRY_LEN <= SLOT && SLOT * HOOKS <= PAGE);
/// The executable's loadable segments we look at.
const MAX_SEGMENTS: usize = 16;
/// Displacements must reach the stub with this much to spare.
const REACH: u64 = (i32::MAX as u64) - (1 << 20);

/// An address in the main executable, found by [`install`]. 0: not found.
pub(crate) struct MainFn(AtomicUsize);

impl MainFn {
    const fn new() -> Self {
        MainFn(AtomicUsize::new(0))
    }
}

impl Resolved for MainFn {
    fn get(&self) -> Option<usize> {
        match self.0.load(Ordering::Acquire) {
            0 => None,
            a => Some(a),
        }
    }
}

static MAIN_SSL_GET_FD: MainFn = MainFn::new();
static MAIN_SSL_GET_ERROR: MainFn = MainFn::new();
static MAIN_SSL_GET_SERVERNAME: MainFn = MainFn::new();
static MAIN_SSL_GET0_ALPN_SELECTED: MainFn = MainFn::new();
static MAIN_SSL_IS_INIT_FINISHED: MainFn = MainFn::new();
static MAIN_SSL_GET_VERIFY_RESULT: MainFn = MainFn::new();
static MAIN_X509_VERIFY_CERT_ERROR_STRING: MainFn = MainFn::new();
static MAIN_ERR_PEEK_ERROR: MainFn = MainFn::new();
static MAIN_ERR_REASON_ERROR_STRING: MainFn = MainFn::new();

static MAIN: SessionQueries = SessionQueries {
    get_fd: &MAIN_SSL_GET_FD,
    get_error: &MAIN_SSL_GET_ERROR,
    get_servername: &MAIN_SSL_GET_SERVERNAME,
    get0_alpn_selected: &MAIN_SSL_GET0_ALPN_SELECTED,
    is_init_finished: &MAIN_SSL_IS_INIT_FINISHED,
    get_verify_result: &MAIN_SSL_GET_VERIFY_RESULT,
    verify_error_string: &MAIN_X509_VERIFY_CERT_ERROR_STRING,
    peek_error: &MAIN_ERR_PEEK_ERROR,
    reason_error_string: &MAIN_ERR_REASON_ERROR_STRING,
};

/// The trampolines: the real functions, as the handlers call them.
static TRAMPOLINES: [MainFn; HOOKS] = [
    MainFn::new(),
    MainFn::new(),
    MainFn::new(),
    MainFn::new(),
    MainFn::new(),
];

const HOOKS: usize = 5;
const WRITE: usize = 0;
const WRITE_EX: usize = 1;
const READ: usize = 2;
const READ_EX: usize = 3;
const FREE: usize = 4;

/// The hooked functions, in the order of the indices above, with their handlers.
fn targets() -> [(&'static CStr, usize); HOOKS] {
    [
        (c"SSL_write", inline_ssl_write as *const () as usize),
        (c"SSL_write_ex", inline_ssl_write_ex as *const () as usize),
        (c"SSL_read", inline_ssl_read as *const () as usize),
        (c"SSL_read_ex", inline_ssl_read_ex as *const () as usize),
        (c"SSL_free", inline_ssl_free as *const () as usize),
    ]
}

/// Why the hooks were not installed (for tests and debugging; never printed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skipped {
    /// The executable does not define the functions (libssl, if any, is shared).
    NotInExecutable,
    /// More than one thread runs.
    Threads,
    /// A function's plan was refused.
    Plan(usize, inline_plan::Refusal),
    /// No free page within reach of the functions.
    NoStubPage,
    /// The kernel refused a protection change (W^X policy) or a remap.
    Protection,
}

/// Installs the inline hooks if the main executable defines OpenSSL's functions.
/// Called once, from the constructor.
pub fn install() -> Result<(), Skipped> {
    let exe = MainProgram::find().ok_or(Skipped::NotInExecutable)?;
    let mut found = [(0usize, 0usize); HOOKS];
    for (i, (name, _)) in targets().iter().enumerate() {
        found[i] = exe.function(name).ok_or(Skipped::NotInExecutable)?;
    }
    if !single_threaded() {
        return Err(Skipped::Threads);
    }
    let mut plans: [Option<Prologue>; HOOKS] = Default::default();
    for (i, &(addr, size)) in found.iter().enumerate() {
        // SAFETY: `function` checked that [addr, addr+size) lies in a readable
        // segment of the executable, mapped for the life of the process.
        let code = unsafe { core::slice::from_raw_parts(addr as *const u8, size) };
        plans[i] = Some(inline_plan::analyze(code, addr as u64).map_err(|e| Skipped::Plan(i, e))?);
    }
    let stub = StubPage::map_near(&exe, &found).ok_or(Skipped::NoStubPage)?;
    let patches = match fill(&stub, &found, &plans) {
        Ok(p) => p,
        Err(e) => {
            stub.discard();
            return Err(e);
        }
    };
    if !stub.seal() {
        stub.discard();
        return Err(Skipped::Protection);
    }
    // The handlers find the real functions and the session queries before any patch
    // can send a call to them.
    for (i, t) in TRAMPOLINES.iter().enumerate() {
        t.0.store(stub.addr + i * SLOT, Ordering::Release);
    }
    for (slot, name) in [
        (&MAIN_SSL_GET_FD, c"SSL_get_fd"),
        (&MAIN_SSL_GET_ERROR, c"SSL_get_error"),
        (&MAIN_SSL_GET_SERVERNAME, c"SSL_get_servername"),
        (&MAIN_SSL_GET0_ALPN_SELECTED, c"SSL_get0_alpn_selected"),
        (&MAIN_SSL_IS_INIT_FINISHED, c"SSL_is_init_finished"),
        (&MAIN_SSL_GET_VERIFY_RESULT, c"SSL_get_verify_result"),
        (
            &MAIN_X509_VERIFY_CERT_ERROR_STRING,
            c"X509_verify_cert_error_string",
        ),
        (&MAIN_ERR_PEEK_ERROR, c"ERR_peek_error"),
        (&MAIN_ERR_REASON_ERROR_STRING, c"ERR_reason_error_string"),
    ] {
        slot.0
            .store(exe.symbol(name).unwrap_or(0), Ordering::Release);
    }
    // On failure the stub page stays mapped: a run of patches already moved into
    // place jumps to it.
    swap_in(&patches, libc::PROT_READ | libc::PROT_EXEC)?;
    Ok(())
}

/// Writes each function's trampoline and entry stub into the (still writable) stub
/// page and returns the patches that jump to them.
fn fill(
    stub: &StubPage,
    found: &[(usize, usize); HOOKS],
    plans: &[Option<Prologue>; HOOKS],
) -> Result<[Patch; HOOKS], Skipped> {
    let mut patches = [Patch::default(); HOOKS];
    for (i, (_, handler)) in targets().iter().enumerate() {
        let (addr, size) = found[i];
        let plan = plans[i].as_ref().ok_or(Skipped::NotInExecutable)?;
        // SAFETY: `MainProgram::function` checked that [addr, addr+size) lies in a
        // readable segment of the executable, mapped for the life of the process.
        let code = unsafe { core::slice::from_raw_parts(addr as *const u8, size) };
        let at = stub.addr + i * SLOT;
        let entry = at + TRAMPOLINE_MAX;
        let mut tramp = [0u8; TRAMPOLINE_MAX];
        let n = plan
            .trampoline(code, addr as u64, at as u64, &mut tramp)
            .map_err(|e| Skipped::Plan(i, e))?;
        stub.write(at, &tramp[..n]);
        stub.write(entry, &inline_plan::entry_stub(*handler as u64));
        let (bytes, len) = plan
            .patch(addr as u64, entry as u64)
            .map_err(|e| Skipped::Plan(i, e))?;
        patches[i] = Patch {
            at: addr + plan.patch_offset,
            bytes,
            len,
        };
    }
    Ok(patches)
}

/// `/proc/self/task` has exactly one entry.
fn single_threaded() -> bool {
    match std::fs::read_dir("/proc/self/task") {
        Ok(dir) => dir.take(2).count() == 1,
        Err(_) => false,
    }
}

/// The main executable's loadable segments.
struct MainProgram {
    bias: usize,
    segments: [(usize, usize, u32); MAX_SEGMENTS],
    count: usize,
}

unsafe extern "C" fn first_object(
    info: *mut libc::dl_phdr_info,
    _size: size_t,
    data: *mut c_void,
) -> c_int {
    // SAFETY: dl_iterate_phdr passes a valid info pointer and our `data` pointer.
    let (info, exe) = unsafe { (&*info, &mut *(data as *mut MainProgram)) };
    exe.bias = info.dlpi_addr as usize;
    for i in 0..info.dlpi_phnum as usize {
        // SAFETY: dlpi_phdr points at dlpi_phnum program headers.
        let ph = unsafe { &*info.dlpi_phdr.add(i) };
        if ph.p_type == PT_LOAD && exe.count < MAX_SEGMENTS {
            let start = exe.bias + ph.p_vaddr as usize;
            exe.segments[exe.count] = (start, start + ph.p_memsz as usize, ph.p_flags);
            exe.count += 1;
        }
    }
    // The first object is the main program: stop.
    1
}

impl MainProgram {
    fn find() -> Option<Self> {
        let mut exe = MainProgram {
            bias: 0,
            segments: [(0, 0, 0); MAX_SEGMENTS],
            count: 0,
        };
        // SAFETY: the callback only writes into `exe`, which outlives the call.
        unsafe { libc::dl_iterate_phdr(Some(first_object), &mut exe as *mut _ as *mut c_void) };
        (exe.count > 0).then_some(exe)
    }

    fn segments(&self) -> &[(usize, usize, u32)] {
        &self.segments[..self.count]
    }

    /// The read+exec (not writable) segment holding [addr, addr+len).
    fn code_segment(&self, addr: usize, len: usize) -> Option<(usize, usize, u32)> {
        self.segments().iter().copied().find(|&(s, e, f)| {
            f & (PF_R | PF_X | PF_W) == PF_R | PF_X
                && addr >= s
                && addr.checked_add(len).is_some_and(|end| end <= e)
        })
    }

    fn lowest(&self) -> usize {
        self.segments().iter().map(|s| s.0).min().unwrap_or(0)
    }

    fn highest(&self) -> usize {
        self.segments().iter().map(|s| s.1).max().unwrap_or(0)
    }

    /// `name`'s address if the global lookup finds it in this executable's code.
    fn symbol(&self, name: &CStr) -> Option<usize> {
        // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name.
        let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) } as usize;
        (p != 0 && self.code_segment(p, 1).is_some()).then_some(p)
    }

    /// `name`'s address and size (from `.dynsym`), if it is a function of this
    /// executable whose whole body lies in a read+exec segment.
    fn function(&self, name: &CStr) -> Option<(usize, usize)> {
        let p = self.symbol(name)?;
        let mut info = libc::Dl_info {
            dli_fname: core::ptr::null(),
            dli_fbase: core::ptr::null_mut(),
            dli_sname: core::ptr::null(),
            dli_saddr: core::ptr::null_mut(),
        };
        let mut sym: *mut c_void = core::ptr::null_mut();
        // SAFETY: dladdr1 reads the address and fills `info` and `sym`.
        let ok = unsafe { libc::dladdr1(p as *const c_void, &mut info, &mut sym, RTLD_DL_SYMENT) };
        if ok == 0 || sym.is_null() || info.dli_saddr as usize != p || info.dli_sname.is_null() {
            return None;
        }
        // SAFETY: dladdr1 returned a NUL-terminated name owned by the loader.
        if unsafe { CStr::from_ptr(info.dli_sname as *const c_char) } != name {
            return None;
        }
        // SAFETY: with RTLD_DL_SYMENT, `sym` points at the symbol's Elf64_Sym.
        let sym = unsafe { &*(sym as *const libc::Elf64_Sym) };
        let size = sym.st_size as usize;
        if sym.st_info & 0xf != STT_FUNC || size == 0 || size > 1 << 20 {
            return None;
        }
        self.code_segment(p, size)?;
        Some((p, size))
    }
}

/// The page holding trampolines and entry stubs.
struct StubPage {
    addr: usize,
}

impl StubPage {
    /// Maps a read+write page within `jmp rel32` reach of every function: below the
    /// executable first (the room above it is where the heap grows), then above.
    fn map_near(exe: &MainProgram, fns: &[(usize, usize)]) -> Option<StubPage> {
        let lo = fns.iter().map(|f| f.0).min()?;
        let hi = fns.iter().map(|f| f.0 + f.1).max()?;
        let reachable = |p: usize| {
            let (p, lo, hi) = (p as u64, lo as u64, hi as u64);
            p.abs_diff(lo) < REACH && (p + PAGE as u64).abs_diff(hi) < REACH
        };
        let below = (1..=64usize).filter_map(|k| (exe.lowest() & !(PAGE - 1)).checked_sub(k << 16));
        let above = (1..=8usize).map(|k| ((exe.highest() + PAGE - 1) & !(PAGE - 1)) + (k << 28));
        for hint in below.chain(above) {
            if hint < 1 << 16 || !reachable(hint) {
                continue;
            }
            // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping; the
            // result is checked.
            let p = unsafe {
                libc::mmap(
                    hint as *mut c_void,
                    PAGE,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
                    -1,
                    0,
                )
            };
            if p == libc::MAP_FAILED {
                continue;
            }
            if p as usize != hint {
                // A kernel older than MAP_FIXED_NOREPLACE took it as a hint.
                // SAFETY: unmapping the page just mapped.
                unsafe { libc::munmap(p, PAGE) };
                continue;
            }
            let page = StubPage { addr: hint };
            // int3 everywhere nothing is written.
            page.write(hint, &[0xcc; PAGE]);
            return Some(page);
        }
        None
    }

    fn write(&self, at: usize, bytes: &[u8]) {
        if at < self.addr || at + bytes.len() > self.addr + PAGE {
            return;
        }
        // SAFETY: [at, at+len) lies inside our read+write page (checked above).
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), at as *mut u8, bytes.len()) };
    }

    /// Makes the page read+exec (never both writable and executable).
    fn seal(&self) -> bool {
        // SAFETY: our own page.
        let r = unsafe {
            libc::mprotect(
                self.addr as *mut c_void,
                PAGE,
                libc::PROT_READ | libc::PROT_EXEC,
            )
        };
        r == 0
    }

    /// Unmaps the page (nothing jumps to it yet).
    fn discard(self) {
        // SAFETY: our own page; no patch points at it.
        unsafe { libc::munmap(self.addr as *mut c_void, PAGE) };
    }
}

#[derive(Clone, Copy)]
struct Patch {
    at: usize,
    bytes: [u8; 75],
    len: usize,
}

impl Default for Patch {
    fn default() -> Self {
        Patch {
            at: 0,
            bytes: [0; 75],
            len: 0,
        }
    }
}

/// Most pages one run of patches may span.
const MAX_RUN_PAGES: usize = 16;

/// A prepared copy of a run of text pages, patched and read+exec, not yet in place.
#[derive(Clone, Copy)]
struct Copy {
    from: usize,
    to: usize,
    len: usize,
}

/// Writes every patch: each run of pages is copied, patched, made `prot`, and only
/// when every copy is ready are they moved over the originals.
fn swap_in(patches: &[Patch; HOOKS], prot: c_int) -> Result<(), Skipped> {
    let mut order: [usize; HOOKS] = [0, 1, 2, 3, 4];
    order.sort_by_key(|&i| patches[i].at);
    let mut copies: [Option<Copy>; HOOKS] = [None; HOOKS];
    let mut n = 0;
    let mut run_start = usize::MAX;
    let mut run_end = 0;
    let flush = |start: usize, end: usize, copies: &mut [Option<Copy>; HOOKS], n: &mut usize| {
        let c = prepare(start, end, patches, prot);
        copies[*n] = c;
        *n += 1;
        c.is_some()
    };
    let mut ok = true;
    for &i in &order {
        let p = &patches[i];
        let start = p.at & !(PAGE - 1);
        let end = (p.at + p.len + PAGE - 1) & !(PAGE - 1);
        if run_start != usize::MAX && start <= run_end && end - run_start <= MAX_RUN_PAGES * PAGE {
            run_end = run_end.max(end);
            continue;
        }
        if run_start != usize::MAX {
            ok &= flush(run_start, run_end, &mut copies, &mut n);
        }
        run_start = start;
        run_end = end;
    }
    if ok && run_start != usize::MAX {
        ok &= flush(run_start, run_end, &mut copies, &mut n);
    }
    if !ok {
        for c in copies.iter().flatten() {
            // SAFETY: our own copy, never moved into place.
            unsafe { libc::munmap(c.from as *mut c_void, c.len) };
        }
        return Err(Skipped::Protection);
    }
    for c in copies.iter().flatten() {
        // SAFETY: moves our prepared copy over the same-sized run of text pages it was
        // copied from; one thread runs and it is not executing those pages.
        let r = unsafe {
            libc::mremap(
                c.from as *mut c_void,
                c.len,
                c.len,
                libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
                c.to as *mut c_void,
            )
        };
        if r == libc::MAP_FAILED {
            // The original is untouched by a failed mremap. Runs already moved keep
            // working: their stubs are in place.
            // SAFETY: our own copy.
            unsafe { libc::munmap(c.from as *mut c_void, c.len) };
            return Err(Skipped::Protection);
        }
    }
    Ok(())
}

/// Copies [start, end), applies the patches that fall inside, makes it `prot`.
fn prepare(start: usize, end: usize, patches: &[Patch; HOOKS], prot: c_int) -> Option<Copy> {
    let len = end - start;
    // SAFETY: a fresh anonymous mapping; the result is checked.
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return None;
    }
    let copy = p as usize;
    // SAFETY: [start, end) is readable text of the executable (every patch lies in a
    // read+exec segment, and runs are page-rounded inside it); `copy` is `len` bytes.
    unsafe { core::ptr::copy_nonoverlapping(start as *const u8, p as *mut u8, len) };
    for q in patches
        .iter()
        .filter(|q| q.at >= start && q.at + q.len <= end)
    {
        // SAFETY: the patch lies inside the copy.
        unsafe {
            core::ptr::copy_nonoverlapping(
                q.bytes.as_ptr(),
                (copy + q.at - start) as *mut u8,
                q.len,
            )
        };
    }
    // SAFETY: our own mapping.
    if unsafe { libc::mprotect(p, len, prot) } != 0 {
        // SAFETY: our own mapping.
        unsafe { libc::munmap(p, len) };
        return None;
    }
    Some(Copy {
        from: copy,
        to: start,
        len,
    })
}

/// The real function behind hook `i`, cast to its C signature.
macro_rules! trampoline {
    ($i:expr, fn($($ty:ty),*) -> $ret:ty) => {{
        let addr = TRAMPOLINES[$i].0.load(Ordering::Acquire);
        // SAFETY: the handler only runs through the patch, which was written after
        // the trampoline (a copy of the function's first instructions and a jump back
        // into it, so a function of this exact signature) was stored and sealed; the
        // address is never cleared once the patch is in place.
        let f: unsafe extern "C" fn($($ty),*) -> $ret = unsafe { core::mem::transmute(addr) };
        f
    }};
}

unsafe extern "C" fn inline_ssl_write(ssl: *mut c_void, buf: *const c_void, num: c_int) -> c_int {
    let real = trampoline!(WRITE, fn(*mut c_void, *const c_void, c_int) -> c_int);
    let prev = tls::enter(ssl as usize);
    // SAFETY: the caller's arguments, passed on unchanged.
    let ret = unsafe { real(ssl, buf, num) };
    tls::leave(prev);
    // SAFETY: `buf` is the buffer SSL_write just returned `ret` for.
    unsafe { openssl::after_write(&MAIN, ssl, buf, ret) };
    ret
}

unsafe extern "C" fn inline_ssl_write_ex(
    ssl: *mut c_void,
    buf: *const c_void,
    num: size_t,
    written: *mut size_t,
) -> c_int {
    let real = trampoline!(
        WRITE_EX,
        fn(*mut c_void, *const c_void, size_t, *mut size_t) -> c_int
    );
    let prev = tls::enter(ssl as usize);
    // SAFETY: the caller's arguments, passed on unchanged.
    let ret = unsafe { real(ssl, buf, num, written) };
    tls::leave(prev);
    // SAFETY: the arguments SSL_write_ex just returned `ret` for.
    unsafe { openssl::after_write_ex(&MAIN, ssl, buf, ret, written) };
    ret
}

unsafe extern "C" fn inline_ssl_read(ssl: *mut c_void, buf: *mut c_void, num: c_int) -> c_int {
    let real = trampoline!(READ, fn(*mut c_void, *mut c_void, c_int) -> c_int);
    let prev = tls::enter(ssl as usize);
    // SAFETY: the caller's arguments, passed on unchanged.
    let ret = unsafe { real(ssl, buf, num) };
    tls::leave(prev);
    // SAFETY: `buf` is the buffer SSL_read just returned `ret` for.
    unsafe { openssl::after_read(&MAIN, ssl, buf, ret) };
    ret
}

unsafe extern "C" fn inline_ssl_read_ex(
    ssl: *mut c_void,
    buf: *mut c_void,
    num: size_t,
    readbytes: *mut size_t,
) -> c_int {
    let real = trampoline!(
        READ_EX,
        fn(*mut c_void, *mut c_void, size_t, *mut size_t) -> c_int
    );
    let prev = tls::enter(ssl as usize);
    // SAFETY: the caller's arguments, passed on unchanged.
    let ret = unsafe { real(ssl, buf, num, readbytes) };
    tls::leave(prev);
    // SAFETY: the arguments SSL_read_ex just returned `ret` for.
    unsafe { openssl::after_read_ex(&MAIN, ssl, buf, ret, readbytes) };
    ret
}

unsafe extern "C" fn inline_ssl_free(ssl: *mut c_void) {
    let real = trampoline!(FREE, fn(*mut c_void) -> ());
    // SAFETY: the caller's argument, passed on unchanged.
    unsafe { real(ssl) };
    openssl::after_free(ssl);
}
