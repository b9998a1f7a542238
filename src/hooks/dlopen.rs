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
//! Known difference: glibc's `dlopen` searches a bare library name with the *calling*
//! object's `RPATH`/`RUNPATH` and opens into its namespace; called from here, the caller
//! it sees is this library (no `RUNPATH`, the main namespace), as for every preloaded
//! `dlopen` hook. Full paths (PHP, Python, Perl, Ruby extensions) are not affected.
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

#[no_mangle]
pub unsafe extern "C" fn dlopen(file: *const c_char, flags: c_int) -> *mut c_void {
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

#[no_mangle]
pub unsafe extern "C" fn dlmopen(
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
