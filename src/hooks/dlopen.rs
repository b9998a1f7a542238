//! `dlopen`, `dlmopen`, `dlclose`: the moments the set of loaded objects changes.
//!
//! Why: an object loaded `RTLD_DEEPBIND` (PHP's extensions, hence libcurl) binds its
//! calls inside its own dependencies and never reaches our exported hooks. After each
//! real call, [`crate::sys::got`] looks at the objects it added (or forgets the ones it
//! removed) and points such objects' GOT slots at our shims.
//!
//! The real function is called first, exactly once, and its result returned as is; the
//! inspection runs afterwards under the re-entry guard ([`super::after`], errno kept)
//! and clears the loader's error message its own lookups may leave.
//!
//! The caller: glibc's `dlopen` searches a bare library name with the *calling* object's
//! `RPATH`/`RUNPATH`, expands `$ORIGIN` relative to it, and opens `NULL` or a bare name
//! in its namespace. A shim that calls the real function becomes that caller. So for
//! a name that depends on the caller (NULL, no `/`, or a `$` in it) the shim does not
//! call: it jumps (a tail call, [`caller_matters`]) and the caller glibc sees is the
//! program's own; the objects such a call added are looked at by the next inspected
//! call (the look takes every object added since the last one). A full path, which is
//! what PHP, Python, Perl and Ruby use for their extensions, is inspected at once; what
//! still differs is only a full-path `dlopen` made from an object loaded into another
//! namespace with `dlmopen` (it opens into the main namespace).
#![allow(clippy::missing_safety_doc)]

use core::ffi::{c_char, c_int, c_void};

use core::ffi::CStr;

use tapline_record::NoticeKind;

use super::after;
use crate::spool;
use crate::sys::got::{self, Untouched};
use crate::sys::resolve::{REAL_DLCLOSE, REAL_DLMOPEN, REAL_DLOPEN};

/// An object left untouched by [`got`]: said once, as a notice record naming it.
pub fn say_untouched(path: &[u8], _why: Untouched) {
    spool::notice(NoticeKind::ObjectUntouched, spool::pid(), path);
}

/// Does the answer to a `dlopen` of `file` depend on who calls (see the module notes)?
///
/// # Safety
/// `file` is NULL or a NUL-terminated string.
#[inline(always)]
unsafe fn caller_matters(file: *const c_char) -> bool {
    if file.is_null() {
        return true;
    }
    // SAFETY: the caller's NUL-terminated file name, valid during the call.
    let name = unsafe { CStr::from_ptr(file) }.to_bytes();
    !name.contains(&b'/') || name.contains(&b'$')
}

type DlopenFn = unsafe extern "C" fn(*const c_char, c_int) -> *mut c_void;

#[no_mangle]
pub unsafe extern "C" fn dlopen(file: *const c_char, flags: c_int) -> *mut c_void {
    // SAFETY: `file` is what the program passed to dlopen.
    if unsafe { caller_matters(file) } {
        if let Some(f) = real(&REAL_DLOPEN) {
            // SAFETY: libc's dlopen, with its own signature.
            let f: DlopenFn = unsafe { core::mem::transmute(f) };
            // SAFETY: the caller's arguments, passed on unchanged: a tail call, so the
            // caller glibc sees is the program's.
            return unsafe { f(file, flags) };
        }
    }
    // SAFETY: the caller's arguments.
    unsafe { dlopen_inspected(file, flags) }
}

/// The real function's address, out of line: the shims that must jump to it keep no
/// frame of their own around the lookup.
#[inline(never)]
fn real(f: &crate::sys::resolve::NextFn) -> Option<usize> {
    f.get()
}

/// `dlopen` of a full path: the real call, then the look at what it added.
#[inline(never)]
unsafe extern "C" fn dlopen_inspected(file: *const c_char, flags: c_int) -> *mut c_void {
    let handle = match REAL_DLOPEN.get() {
        Some(f) => {
            // SAFETY: libc's dlopen, with its own signature.
            let f: unsafe extern "C" fn(*const c_char, c_int) -> *mut c_void =
                unsafe { core::mem::transmute(f) };
            // SAFETY: the caller's arguments, passed on unchanged.
            unsafe { f(file, flags) }
        }
        None => core::ptr::null_mut(),
    };
    if !handle.is_null() && flags & libc::RTLD_NOLOAD == 0 {
        after(|| got::after_dlopen(handle, flags, say_untouched));
    }
    handle
}

type DlmopenFn = unsafe extern "C" fn(libc::Lmid_t, *const c_char, c_int) -> *mut c_void;

#[no_mangle]
pub unsafe extern "C" fn dlmopen(
    lmid: libc::Lmid_t,
    file: *const c_char,
    flags: c_int,
) -> *mut c_void {
    // SAFETY: `file` is what the program passed to dlmopen.
    if unsafe { caller_matters(file) } {
        if let Some(f) = real(&REAL_DLMOPEN) {
            // SAFETY: libc's dlmopen, with its own signature.
            let f: DlmopenFn = unsafe { core::mem::transmute(f) };
            // SAFETY: the caller's arguments, passed on unchanged (a tail call).
            return unsafe { f(lmid, file, flags) };
        }
    }
    // SAFETY: the caller's arguments.
    unsafe { dlmopen_inspected(lmid, file, flags) }
}

/// `dlmopen` of a full path: the real call, then the look at what it added.
#[inline(never)]
unsafe extern "C" fn dlmopen_inspected(
    lmid: libc::Lmid_t,
    file: *const c_char,
    flags: c_int,
) -> *mut c_void {
    let handle = match REAL_DLMOPEN.get() {
        Some(f) => {
            // SAFETY: libc's dlmopen, with its own signature.
            let f: unsafe extern "C" fn(libc::Lmid_t, *const c_char, c_int) -> *mut c_void =
                unsafe { core::mem::transmute(f) };
            // SAFETY: the caller's arguments, passed on unchanged.
            unsafe { f(lmid, file, flags) }
        }
        None => core::ptr::null_mut(),
    };
    if !handle.is_null() && flags & libc::RTLD_NOLOAD == 0 {
        let path = if file.is_null() {
            &[][..]
        } else {
            // SAFETY: the caller's NUL-terminated file name, valid during the call.
            unsafe { CStr::from_ptr(file) }.to_bytes()
        };
        // SAFETY: the handle dlmopen just returned.
        after(|| unsafe { got::after_dlmopen(handle, flags, path, say_untouched) });
    }
    handle
}

#[no_mangle]
pub unsafe extern "C" fn dlclose(handle: *mut c_void) -> c_int {
    let ret = match REAL_DLCLOSE.get() {
        Some(f) => {
            // SAFETY: libc's dlclose, with its own signature.
            let f: unsafe extern "C" fn(*mut c_void) -> c_int = unsafe { core::mem::transmute(f) };
            // SAFETY: the caller's handle, passed on unchanged.
            unsafe { f(handle) }
        }
        None => -1,
    };
    if ret == 0 {
        after(|| got::after_dlclose(say_untouched));
    }
    ret
}
