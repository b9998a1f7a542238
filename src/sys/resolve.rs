//! Finding the real function behind each symbol we interpose.
//!
//! `dlsym(RTLD_NEXT, name)` finds the next definition after this library in the global
//! lookup order, which is right for libc. It returns NULL for libraries loaded
//! `RTLD_LOCAL` (Python's `_ssl` pulls in libssl that way, so does Perl's Net::SSLeay),
//! although our exported `SSL_write` still wins the binding of their calls. The fallback
//! walks the loaded objects (`dl_iterate_phdr`), re-opens each with `RTLD_NOLOAD` (no
//! new load, just a handle) and asks `dlsym` on that handle. A pointer into this library
//! itself is refused: calling it would recurse forever.
//!
//! A symbol that cannot be found is not an error: the hook then passes the call through
//! by other means (a raw syscall) or reports failure the way the function would.

use core::ffi::CStr;
use core::marker::PhantomData;
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use libc::{c_int, c_void};

/// Not looked up yet.
const UNRESOLVED: usize = 0;
/// Looked up and not found.
const MISSING: usize = 1;

/// The address of one real function, resolved once.
pub struct RealFn {
    name: &'static CStr,
    addr: AtomicUsize,
}

impl RealFn {
    pub const fn new(name: &'static CStr) -> Self {
        RealFn {
            name,
            addr: AtomicUsize::new(UNRESOLVED),
        }
    }

    /// The real function's address, resolving it on first use. `None` when no other
    /// object defines the symbol.
    #[inline]
    pub fn get(&self) -> Option<usize> {
        match self.addr.load(Ordering::Acquire) {
            UNRESOLVED => self.resolve(),
            MISSING => None,
            a => Some(a),
        }
    }

    /// Looks the symbol up now (called eagerly from the constructor for libc symbols).
    pub fn resolve(&self) -> Option<usize> {
        let found = lookup(self.name);
        self.addr.store(found.unwrap_or(MISSING), Ordering::Release);
        found
    }

    /// Forgets the cached result, so that a library loaded later can be found.
    pub fn retry_later(&self) {
        let _ =
            self.addr
                .compare_exchange(MISSING, UNRESOLVED, Ordering::AcqRel, Ordering::Relaxed);
    }
}

/// The real function behind one of the hot hooks (the calls every program makes on
/// every descriptor: `read`, `write`, `send`, `recv`, `close`...), kept as a pointer that
/// is always safe to call, so that the untraced path is one indirect jump with no
/// "resolved yet?" test: before resolution it points at a first-call function that
/// resolves and then calls; when the symbol is missing, at a raw-syscall fallback.
/// `F` is the C signature (an `unsafe extern "C" fn` type).
pub struct HotFn<F> {
    name: &'static CStr,
    ptr: AtomicPtr<()>,
    fallback: *mut (),
    _sig: PhantomData<F>,
}

// SAFETY: `fallback` is the address of a function (immutable code); the rest is atomic.
unsafe impl<F> Sync for HotFn<F> {}

impl<F: Copy> HotFn<F> {
    /// `first` is called until [`HotFn::resolve`] has run; `fallback` is used for good
    /// when no other object defines `name`. Both must have the signature `F`.
    pub const fn new(name: &'static CStr, first: *mut (), fallback: *mut ()) -> Self {
        HotFn {
            name,
            ptr: AtomicPtr::new(first),
            fallback,
            _sig: PhantomData,
        }
    }

    /// The function to call: the real one, or before resolution the first-call
    /// function, or the fallback. One relaxed load.
    #[inline(always)]
    pub fn f(&self) -> F {
        let p = self.ptr.load(Ordering::Relaxed);
        // SAFETY: `ptr` only ever holds `first`, `fallback` or the real function of
        // this name, all with the signature `F` (a function pointer, pointer-sized).
        unsafe { core::mem::transmute_copy::<*mut (), F>(&p) }
    }

    /// Looks the symbol up now (from the constructor, or from the first call) and
    /// returns the function to call from now on.
    pub fn resolve(&self) -> F {
        let p = lookup(self.name).map_or(self.fallback, |a| a as *mut ());
        self.ptr.store(p, Ordering::Relaxed);
        self.f()
    }
}

/// Finds `name` outside this library: `RTLD_NEXT` first, then every loaded object.
pub fn lookup(name: &CStr) -> Option<usize> {
    // SAFETY: dlsym with RTLD_NEXT and a NUL-terminated name is always safe to call.
    let p = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) } as usize;
    if p != 0 && !is_ours(p) {
        return Some(p);
    }
    lookup_in_loaded_objects(name)
}

/// True if `addr` lies inside this library (a pointer to one of our own hooks).
///
/// Our own address range is learnt once from the loader's program headers and kept:
/// `dladdr` for each answer cost thousands of instructions per symbol at start-up.
pub fn is_ours(addr: usize) -> bool {
    let (lo, hi) = own_range();
    lo <= addr && addr < hi
}

/// This library's lowest and highest mapped addresses (its `PT_LOAD` segments).
static OWN_LO: AtomicUsize = AtomicUsize::new(0);
static OWN_HI: AtomicUsize = AtomicUsize::new(0);

fn own_range() -> (usize, usize) {
    let hi = OWN_HI.load(Ordering::Acquire);
    if hi != 0 {
        return (OWN_LO.load(Ordering::Relaxed), hi);
    }
    let mut range = [is_ours as fn(usize) -> bool as usize, 0, 0];
    // SAFETY: the callback only reads the loader's info and writes into `range`.
    unsafe { libc::dl_iterate_phdr(Some(find_own_range), range.as_mut_ptr() as *mut c_void) };
    let (lo, hi) = (range[1], range[2]);
    if hi == 0 {
        // Not found (cannot happen for a loaded library): nothing is ours.
        return (1, 0);
    }
    OWN_LO.store(lo, Ordering::Relaxed);
    OWN_HI.store(hi, Ordering::Release);
    (lo, hi)
}

/// `dl_iterate_phdr` callback: `data` is `[an address of ours, lo, hi]`; fills lo and hi
/// with the bounds of the object whose loadable segments contain that address.
unsafe extern "C" fn find_own_range(
    info: *mut libc::dl_phdr_info,
    _size: libc::size_t,
    data: *mut c_void,
) -> c_int {
    // SAFETY: dl_iterate_phdr passes a valid info pointer and our `data` pointer.
    let (info, range) = unsafe { (&*info, &mut *(data as *mut [usize; 3])) };
    if info.dlpi_phdr.is_null() {
        return 0;
    }
    // SAFETY: dlpi_phdr points to dlpi_phnum program headers.
    let phdrs = unsafe { core::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize) };
    let (mut lo, mut hi) = (usize::MAX, 0usize);
    for ph in phdrs.iter().filter(|ph| ph.p_type == libc::PT_LOAD) {
        let start = info.dlpi_addr as usize + ph.p_vaddr as usize;
        lo = lo.min(start);
        hi = hi.max(start + ph.p_memsz as usize);
    }
    if lo <= range[0] && range[0] < hi {
        range[1] = lo;
        range[2] = hi;
        return 1;
    }
    0
}

/// What the loader knows about the object containing `addr` (`dladdr`).
fn dladdr(addr: usize) -> Option<libc::Dl_info> {
    let mut info = libc::Dl_info {
        dli_fname: core::ptr::null(),
        dli_fbase: core::ptr::null_mut(),
        dli_sname: core::ptr::null(),
        dli_saddr: core::ptr::null_mut(),
    };
    // SAFETY: dladdr only reads the address and fills `info`.
    let ok = unsafe { libc::dladdr(addr as *const c_void, &mut info) };
    (ok != 0).then_some(info)
}

/// How many loaded objects the fallback looks at.
const MAX_OBJECTS: usize = 512;

struct ObjectNames {
    names: [*const libc::c_char; MAX_OBJECTS],
    len: usize,
}

unsafe extern "C" fn collect_object(
    info: *mut libc::dl_phdr_info,
    _size: libc::size_t,
    data: *mut c_void,
) -> c_int {
    // SAFETY: dl_iterate_phdr passes a valid info pointer and our `data` pointer.
    let (info, names) = unsafe { (&*info, &mut *(data as *mut ObjectNames)) };
    if !info.dlpi_name.is_null() && names.len < MAX_OBJECTS {
        // SAFETY: dlpi_name is a NUL-terminated string owned by the loader.
        let empty = unsafe { *info.dlpi_name } == 0;
        if !empty {
            names.names[names.len] = info.dlpi_name;
            names.len += 1;
        }
    }
    0
}

fn lookup_in_loaded_objects(name: &CStr) -> Option<usize> {
    let mut names = ObjectNames {
        names: [core::ptr::null(); MAX_OBJECTS],
        len: 0,
    };
    // Collect first, open afterwards: dlopen must not run under dl_iterate_phdr's lock.
    // SAFETY: the callback only writes into `names`, which outlives the call.
    unsafe {
        libc::dl_iterate_phdr(
            Some(collect_object),
            &mut names as *mut ObjectNames as *mut c_void,
        )
    };
    for &path in &names.names[..names.len] {
        // SAFETY: `path` is a loader-owned NUL-terminated string of a loaded object;
        // RTLD_NOLOAD only returns a handle to it (or NULL), it never loads anything.
        let handle = unsafe { open_loaded(path) };
        if handle.is_null() {
            continue;
        }
        // SAFETY: a valid handle and a NUL-terminated name.
        let p = unsafe { libc::dlsym(handle, name.as_ptr()) } as usize;
        close_loaded(handle);
        if p != 0 && !is_ours(p) {
            return Some(p);
        }
    }
    None
}

/// The object (base address, path) that contains `addr`, if any. The path is the
/// loader's own string: valid while the object stays loaded (libraries we look up,
/// libssl and its callers, are not unloaded while their functions run).
pub fn object_of(addr: usize) -> Option<(usize, &'static CStr)> {
    let info = dladdr(addr)?;
    if info.dli_fbase.is_null() || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: dli_fname is a NUL-terminated string owned by the loader (see above).
    let path = unsafe { CStr::from_ptr(info.dli_fname) };
    Some((info.dli_fbase as usize, path))
}

/// `name` as the object at `path` sees it: `dlsym` on that object's handle searches the
/// object and its own dependencies (its local scope), not the global scope where we
/// sit. This is how a caller loaded `RTLD_LOCAL` with its own libssl finds *its* copy.
/// `None` if not found there, or if the answer is one of our own functions.
pub fn lookup_in_object(path: &CStr, name: &CStr) -> Option<usize> {
    if path.is_empty() {
        return None;
    }
    // SAFETY: a NUL-terminated path; RTLD_NOLOAD never loads anything, it only
    // returns a handle to an object already loaded (or NULL).
    let handle = unsafe { open_loaded(path.as_ptr()) };
    if handle.is_null() {
        return None;
    }
    // SAFETY: a valid handle and a NUL-terminated name.
    let p = unsafe { libc::dlsym(handle, name.as_ptr()) } as usize;
    close_loaded(handle);
    (p != 0 && !is_ours(p)).then_some(p)
}

/// libc's `dlopen`, `dlclose`: we export both (`hooks/dlopen.rs`), so a call from this
/// library by name would reach our own hooks. Found with `RTLD_NEXT` only (the
/// loaded-objects fallback itself needs them).
pub static REAL_DLOPEN: NextFn = NextFn::new(c"dlopen");
pub static REAL_DLMOPEN: NextFn = NextFn::new(c"dlmopen");
pub static REAL_DLCLOSE: NextFn = NextFn::new(c"dlclose");

/// A function found with `dlsym(RTLD_NEXT)` alone, once.
pub struct NextFn {
    name: &'static CStr,
    addr: AtomicUsize,
}

impl NextFn {
    pub const fn new(name: &'static CStr) -> Self {
        NextFn {
            name,
            addr: AtomicUsize::new(UNRESOLVED),
        }
    }

    /// The address, or `None` if no later object defines the name.
    pub fn get(&self) -> Option<usize> {
        match self.addr.load(Ordering::Acquire) {
            UNRESOLVED => {
                // SAFETY: dlsym with RTLD_NEXT and a NUL-terminated name.
                let p = unsafe { libc::dlsym(libc::RTLD_NEXT, self.name.as_ptr()) } as usize;
                let found = (p != 0 && !is_ours(p)).then_some(p);
                self.addr.store(found.unwrap_or(MISSING), Ordering::Release);
                found
            }
            MISSING => None,
            a => Some(a),
        }
    }
}

/// A handle to the already loaded object at `path` (`RTLD_NOLOAD`), or NULL.
///
/// # Safety
/// `path` is a NUL-terminated string.
unsafe fn open_loaded(path: *const libc::c_char) -> *mut c_void {
    let Some(f) = REAL_DLOPEN.get() else {
        return core::ptr::null_mut();
    };
    // SAFETY: libc's dlopen, with its own signature.
    let dlopen: unsafe extern "C" fn(*const libc::c_char, c_int) -> *mut c_void =
        unsafe { core::mem::transmute(f) };
    // SAFETY: the caller's NUL-terminated path; RTLD_NOLOAD never loads anything.
    unsafe { dlopen(path, libc::RTLD_NOLOAD | libc::RTLD_LAZY) }
}

/// Balances the reference [`open_loaded`] took.
fn close_loaded(handle: *mut c_void) {
    if let Some(f) = REAL_DLCLOSE.get() {
        // SAFETY: libc's dlclose, with its own signature.
        let dlclose: unsafe extern "C" fn(*mut c_void) -> c_int =
            unsafe { core::mem::transmute(f) };
        // SAFETY: a handle open_loaded returned.
        unsafe { dlclose(handle) };
    }
}
