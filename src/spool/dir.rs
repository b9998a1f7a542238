//! The spool directory both writers create their files in: made `0700` when missing,
//! refused unless it is a real directory of ours that others cannot write (a directory
//! another user planted in `/tmp` is not used), and the digits of file names.

use libc::c_int;

use crate::config;
use crate::sys::raw;

/// The spool directory as a NUL-terminated path in a stack buffer with room for a file
/// name after it, once the directory exists (made 0700 if missing) and is ours.
/// Returns the buffer and the directory's length.
pub fn spool_dir_path() -> Option<([u8; 600], usize)> {
    let dir = config::spool_dir();
    let mut path = [0u8; 600];
    if dir.len() + 40 > path.len() {
        return None;
    }
    path[..dir.len()].copy_from_slice(dir);
    // SAFETY: `path` holds the directory followed by a NUL (the buffer is zeroed).
    let made = unsafe { libc::mkdir(path.as_ptr() as *const _, 0o700) };
    if made != 0 && raw::errno() != libc::EEXIST {
        return None;
    }
    directory_is_ours(&path).then_some((path, dir.len()))
}

/// Opens the spool directory (making it if missing) after checking that it is ours;
/// the segment spool works relative to it.
///
/// Opened first and checked through the descriptor (`fstat`): two system calls where
/// the directory exists (a process's first record pays for them), the same checks as
/// [`spool_dir_path`]'s (`O_NOFOLLOW` refuses a symlink as `lstat` would see one).
pub fn open_spool_dir() -> Option<c_int> {
    let dir = config::spool_dir();
    let mut path = [0u8; 600];
    if dir.len() + 40 > path.len() {
        return None;
    }
    path[..dir.len()].copy_from_slice(dir);
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: `path` is NUL-terminated (the buffer is zeroed past the directory).
    let mut fd = unsafe { libc::open(path.as_ptr() as *const _, flags) };
    if fd < 0 && raw::errno() == libc::ENOENT {
        // SAFETY: as above.
        let made = unsafe { libc::mkdir(path.as_ptr() as *const _, 0o700) };
        if made != 0 && raw::errno() != libc::EEXIST {
            return None;
        }
        // SAFETY: as above.
        fd = unsafe { libc::open(path.as_ptr() as *const _, flags) };
    }
    if fd < 0 {
        return None;
    }
    // SAFETY: an all-zero stat is a valid value to be overwritten.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: `fd` is ours; `st` is writable.
    if unsafe { libc::fstat(fd, &mut st) } != 0 || !is_ours(&st) {
        raw::close(fd);
        return None;
    }
    Some(fd)
}

/// The spool directory must be a real directory (not a symlink), owned by us, and not
/// writable by others.
fn directory_is_ours(path: &[u8]) -> bool {
    // SAFETY: an all-zero stat is a valid value to be overwritten.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: `path` is NUL-terminated; `st` is writable.
    if unsafe { libc::lstat(path.as_ptr() as *const _, &mut st) } != 0 {
        return false;
    }
    is_ours(&st)
}

fn is_ours(st: &libc::stat) -> bool {
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    (st.st_mode & libc::S_IFMT) == libc::S_IFDIR && st.st_uid == me && (st.st_mode & 0o022) == 0
}

pub fn write_decimal(out: &mut [u8], mut v: u64) -> usize {
    let mut digits = [0u8; 20];
    let mut n = 0;
    loop {
        digits[n] = b'0' + (v % 10) as u8;
        n += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for i in 0..n {
        out[i] = digits[n - 1 - i];
    }
    n
}
