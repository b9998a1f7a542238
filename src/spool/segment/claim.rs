//! Claiming a segment: the filesystem side of the segment spool.
//!
//! A writer takes a segment the reader made ahead of need (`free-<k>.tls`, zeros)
//! where it is: it opens and checks it (ours, a regular file of a sane size, fully
//! allocated), maps it, and stores its pid into the header's `creator` word by
//! compare-and-swap from 0 — exactly one of racing writers wins — then writes the
//! header, the magic last. No rename: the reader gives it its claimed name,
//! `<pid>-<seq>.tls`, when it next looks (and deletes it if its writer died between the
//! swap and the magic). Why: on ext4 a process's first journalled operation on a
//! directory written to moments before (a rename, or the access-time update of a
//! listing) costs ~20 µs, most of a claim. A process's first claim lists nothing: it
//! tries `free-0.tls`, `free-1.tls`, ... With none ready the writer makes its own
//! (`fallocate`d, so that a write through the mapping can never meet a full disk and
//! `SIGBUS`), sets it up under `.claim-<pid>-<seq>` and publishes it as
//! `<pid>-<seq>.tls` with `renameat2(RENAME_NOREPLACE)`. Directory scans use
//! `getdents64` into a stack buffer: no allocation, no `opendir`. The bounds (segments
//! per directory, bytes per process) are checked here against what the directory holds
//! now (a segment the reader deleted no longer counts, so a long run with a reader that
//! keeps up never meets them); a process's first segment, taken ready-made, is checked
//! against the process bound alone (the directory bound, which a ready-made segment
//! does not grow, can be passed by this one segment).

use core::sync::atomic::{AtomicU32, Ordering};
use libc::c_int;
use tapline_record::segment::{field, SegmentHeader, FREE_SLOTS, SEGMENT_MAGIC};

use super::mapping::Mapping;
use crate::config;
use crate::spool::dir::{open_spool_dir, write_decimal};
use crate::sys::raw;

/// Next segment sequence number of this process.
static SEQ: AtomicU32 = AtomicU32::new(0);

/// Bytes write-faulted at the claim of a process's first segment: the header page and
/// the pages of the first records (the `ProcStart` and the record that caused the
/// claim). The rest follow ahead of the records, the faulted part doubling up to
/// [`super::append::POPULATE_WINDOW`] steps ([`super::append::populate_ahead`]).
const FIRST_POPULATED: u64 = 16 << 10;

/// How much of a segment of `size` bytes its claim write-faults: all of it, in one
/// call (cheapest per page), except for the process's first segment, whose claim is
/// part of the program's start (a Lambda cold start): that one is faulted a few pages
/// at a time, then in growing steps, as records reach it.
fn populated_at_claim(size: u64) -> u64 {
    if SEQ.load(Ordering::Relaxed) <= 1 {
        FIRST_POPULATED.min(size)
    } else {
        size
    }
}

/// Sequence numbers tried when a segment's name is taken (see `claim_in`).
const NAME_TRIES: usize = 8;

/// Why no segment could be claimed.
pub enum Failure {
    /// No segment now (disk full, directory or process bound reached, a race): retry later.
    Unavailable,
    /// This filesystem cannot allocate or map segments.
    Unsupported,
}

/// A path-sized buffer on the stack.
struct Name {
    buf: [u8; 64],
    len: usize,
}

impl Name {
    fn new() -> Name {
        Name {
            buf: [0; 64],
            len: 0,
        }
    }
    fn push(&mut self, s: &[u8]) {
        let n = s.len().min(self.buf.len() - 1 - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s[..n]);
        self.len += n;
    }
    fn push_decimal(&mut self, v: u64) {
        let mut digits = [0u8; 20];
        let n = write_decimal(&mut digits, v);
        self.push(&digits[..n]);
    }
    /// NUL-terminated (the buffer is zeroed and never filled to its last byte).
    fn as_ptr(&self) -> *const libc::c_char {
        self.buf.as_ptr() as *const libc::c_char
    }
    #[cfg(test)]
    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// What a scan of the spool directory found.
struct DirScan {
    /// Claimed segments (`<pid>-<seq>.tls`) of all processes.
    claimed: u64,
    /// Those of them named after this process (`<our pid>-<seq>.tls`).
    ours: u64,
    /// Up to `FREE_MAX` names of segments made ahead of need.
    free: [Name; FREE_MAX],
    nfree: usize,
}
const FREE_MAX: usize = 4;

/// Claims a segment: a ready one if the reader made some, else a new one.
/// Returns its mapping (header written), sequence number, and how many bytes from its
/// start are write-faulted already.
pub fn claim_segment(pid: u32) -> Result<(Mapping, u32, u64), Failure> {
    let Some(dirfd) = open_spool_dir() else {
        return Err(Failure::Unavailable);
    };
    let result = claim_in(dirfd, pid);
    raw::close(dirfd);
    result
}

fn claim_in(dirfd: c_int, pid: u32) -> Result<(Mapping, u32, u64), Failure> {
    let want = config::segment_bytes();
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    // A process's first claim (or a forked child's, or a new image's after `execve`)
    // lists nothing: it tries the names readers give the segments they make ahead,
    // `free-0.tls` up, and takes the first one there. Unbounded by the directory count,
    // which it cannot pass by more than this one segment, and which a ready-made
    // segment does not grow; the process bound at its first segment is arithmetic.
    if seq == 0
        && config::max_segments() > 0
        && !over_process_bound(0, want, config::process_bytes())
    {
        for k in 0..FREE_SLOTS {
            let mut free = Name::new();
            free.push(b"free-");
            free.push_decimal(u64::from(k));
            free.push(b".tls");
            if let Some((m, populated)) = take_in_place(dirfd, &free, pid) {
                write_header(m, pid, seq);
                return Ok((m, seq, populated));
            }
        }
    }
    let scan = scan_dir(dirfd, pid);
    if scan.claimed >= config::max_segments() {
        return Err(Failure::Unavailable);
    }
    // `TAPLINE_SPOOL_MAX_BYTES` bounds what this process holds on disk now (its
    // segments still in the directory, each counted at this process's segment size),
    // not what it ever claimed: a sum over the process's life stopped every long run
    // for good once the reader had deleted that much (issue 15).
    if over_process_bound(scan.ours, want, config::process_bytes()) {
        return Err(Failure::Unavailable);
    }
    for free in &scan.free[..scan.nfree] {
        if let Some((m, populated)) = take_in_place(dirfd, free, pid) {
            write_header(m, pid, seq);
            return Ok((m, seq, populated));
        }
    }
    // None ready: make one, set up under a name readers ignore and published under
    // its final name once its header is written.
    let mut tmp = Name::new();
    tmp.push(b".claim-");
    tmp.push_decimal(u64::from(pid));
    tmp.push(b"-");
    tmp.push_decimal(u64::from(seq));
    let fd = create_allocated(dirfd, &tmp, want)?;
    set_up(dirfd, fd, want, pid, seq, &tmp)
}

/// Takes the ready-made segment `free` where it is, without renaming it: opens and
/// checks it (ours, a regular file of a sane size, fully allocated), maps it,
/// write-faults its first pages, and stores this pid into its header's `creator`
/// word by compare-and-swap from 0. Of processes racing for it exactly one wins; the
/// others unmap it and try the next name. The reader renames it to
/// `<creator>-<seq>.tls` once its header is written (a writer never needs its
/// segment's name again); a claim whose writer died before the magic has a dead
/// `creator` and no magic, and the reader deletes it. Why not a rename: a process's
/// first journalled operation on the spool directory costs ~20 µs on ext4, most of
/// the claim. Returns the mapping and how much of it is write-faulted.
fn take_in_place(dirfd: c_int, free: &Name, pid: u32) -> Option<(Mapping, u64)> {
    let (fd, size) = open_checked(dirfd, free)?;
    // A look before mapping it: claimed already (by a process whose segment no reader
    // has named yet), or not a ready-made segment.
    let mut head = [0u8; 64];
    // SAFETY: `head` is writable for its length; `fd` is ours.
    let n = unsafe { libc::pread(fd, head.as_mut_ptr().cast(), head.len(), 0) };
    let creator_at = field::CREATOR..field::CREATOR + 4;
    if n != head.len() as isize
        || head[field::MAGIC..field::MAGIC + 8] != [0; 8]
        || head[creator_at] != [0; 4]
    {
        raw::close(fd);
        return None;
    }
    let mapped = Mapping::map_shared(fd, size);
    raw::close(fd);
    let m = mapped.ok()?;
    // SAFETY: the header lies in the first page of the mapping; the word is 4-aligned.
    let creator = unsafe { m.u32_at(field::CREATOR) };
    // SAFETY: as above.
    let magic = unsafe { m.u64_at(field::MAGIC) };
    // Again through the mapping (another process may have claimed it since).
    if creator.load(Ordering::Acquire) != 0 || magic.load(Ordering::Acquire) != 0 {
        // SAFETY: nobody else in this process knows the mapping.
        unsafe { m.unmap() };
        return None;
    }
    let populated = populated_at_claim(size);
    // SAFETY: the range is within the mapping, page-aligned; write-faulting changes no
    // byte of the file.
    unsafe { m.populate_write(0, populated) };
    if creator
        .compare_exchange(0, pid, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        // SAFETY: as above.
        unsafe { m.unmap() };
        return None;
    }
    Some((m, populated))
}

/// `<pid>-<seq>.tls`.
fn claimed_name(pid: u32, seq: u32) -> Name {
    let mut name = Name::new();
    name.push_decimal(u64::from(pid));
    name.push(b"-");
    name.push_decimal(u64::from(seq));
    name.push(b".tls");
    name
}

/// Maps a segment this process made under the set-up name `tmp` (`fd`, closed here),
/// write-faults its first pages, writes its header and publishes it as
/// `<pid>-<seq>.tls`. On failure nothing is left under either name.
fn set_up(
    dirfd: c_int,
    fd: c_int,
    size: u64,
    pid: u32,
    mut seq: u32,
    tmp: &Name,
) -> Result<(Mapping, u32, u64), Failure> {
    // The file's blocks are allocated: a write through the mapping cannot meet a full
    // disk.
    let mapped = Mapping::map_shared(fd, size);
    raw::close(fd);
    let unlink = |name: &Name| {
        // SAFETY: NUL-terminated name relative to our directory.
        unsafe { libc::unlinkat(dirfd, name.as_ptr(), 0) };
    };
    let m = match mapped {
        Ok(m) => m,
        Err(e) => {
            unlink(tmp);
            return Err(if e == libc::ENOMEM || e == libc::EAGAIN {
                Failure::Unavailable
            } else {
                Failure::Unsupported
            });
        }
    };
    // Fault the first pages in for writing now, so that the first write to each does
    // not take a fault later; the rest follow a window ahead of the records
    // (`populate_ahead`). (Not MAP_POPULATE as well: it maps shared pages read-only, a
    // pass over the page tables that this one redoes.)
    let populated = populated_at_claim(size);
    // SAFETY: a new mapping nobody else knows; the range is within it, page-aligned.
    unsafe { m.populate_write(0, populated) };
    write_header(m, pid, seq);
    // The name may be taken by this very pid: the image before an `execve` (same pid,
    // its own sequence numbers) wrote a record — a `Notice` about the program it
    // started — and left `<pid>-0.tls`. Then the next number is taken, and the header
    // says so.
    for _ in 0..NAME_TRIES {
        if rename_noreplace(dirfd, tmp, &claimed_name(pid, seq)) {
            return Ok((m, seq, populated));
        }
        if raw::errno() != libc::EEXIST {
            break;
        }
        seq = SEQ.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as above: the header lies in the first page; nobody else knows it.
        unsafe { m.u32_at(field::SEQ).store(seq, Ordering::Relaxed) };
    }
    // SAFETY: nobody else knows the mapping.
    unsafe { m.unmap() };
    unlink(tmp);
    Err(Failure::Unavailable)
}

/// Writes the header of a segment this process now owns, the magic last (release): a
/// reader that meets the segment before that sees no header and looks again later,
/// never half a header.
fn write_header(m: Mapping, pid: u32, seq: u32) {
    let header = SegmentHeader::claimed(m.size(), pid, seq);
    // SAFETY: the header lies in the first page of the mapping; no reader takes it
    // before its magic; only this process writes it.
    unsafe {
        m.copy_in(8, &header[8..]);
        m.u64_at(field::MAGIC)
            .store(SEGMENT_MAGIC, Ordering::Release);
    }
}

/// Creates `name` with `size` bytes allocated (so that writes through the mapping can
/// never hit a full disk).
fn create_allocated(dirfd: c_int, name: &Name, size: u64) -> Result<c_int, Failure> {
    let flags = libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: NUL-terminated name relative to our directory.
    let fd = unsafe { libc::openat(dirfd, name.as_ptr(), flags, 0o600 as libc::c_uint) };
    if fd < 0 {
        return Err(Failure::Unavailable);
    }
    // SAFETY: fallocate on a descriptor we own.
    if unsafe { libc::fallocate(fd, 0, 0, size as libc::off_t) } != 0 {
        let e = raw::errno();
        raw::close(fd);
        // SAFETY: as above.
        unsafe { libc::unlinkat(dirfd, name.as_ptr(), 0) };
        return Err(match e {
            libc::EOPNOTSUPP | libc::ENOSYS | libc::EINVAL | libc::ENODEV => Failure::Unsupported,
            _ => Failure::Unavailable,
        });
    }
    Ok(fd)
}

/// Opens a claimed ready-made segment and checks that it is ours, a regular file of a
/// sane size, and fully allocated. Returns its descriptor and size, or `None`.
fn open_checked(dirfd: c_int, name: &Name) -> Option<(c_int, u64)> {
    let flags = libc::O_RDWR | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: NUL-terminated name relative to our directory.
    let fd = unsafe { libc::openat(dirfd, name.as_ptr(), flags) };
    if fd < 0 {
        return None;
    }
    // SAFETY: an all-zero stat is a valid value to be overwritten.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: `st` is writable; `fd` is ours.
    let ok = unsafe { libc::fstat(fd, &mut st) } == 0
        && (st.st_mode & libc::S_IFMT) == libc::S_IFREG
        // SAFETY: geteuid has no preconditions.
        && st.st_uid == unsafe { libc::geteuid() }
        && (tapline_record::segment::MIN_SEGMENT_BYTES..=tapline_record::segment::MAX_SEGMENT_BYTES)
            .contains(&(st.st_size as u64))
        && st.st_size % 4096 == 0
        && (st.st_blocks as u64) * 512 >= st.st_size as u64;
    if !ok {
        raw::close(fd);
        return None;
    }
    Some((fd, st.st_size as u64))
}

/// `renameat2(RENAME_NOREPLACE)`: atomic, and never replaces a file (a dead process of
/// the same pid may have left an unread segment under the same name).
fn rename_noreplace(dirfd: c_int, from: &Name, to: &Name) -> bool {
    // SAFETY: NUL-terminated names relative to our directory.
    let r = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            dirfd,
            from.as_ptr(),
            dirfd,
            to.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    r == 0
}

/// Would one more segment of `want` bytes take a process holding `ours` segments past
/// `bound` bytes?
fn over_process_bound(ours: u64, want: u64, bound: u64) -> bool {
    ours.saturating_add(1).saturating_mul(want) > bound
}

/// Is `name` one of the segments of process `pid` (`<pid>-<seq>.tls`)?
fn is_segment_of(name: &[u8], pid: &[u8]) -> bool {
    name.len() > pid.len() && name.starts_with(pid) && name[pid.len()] == b'-'
}

/// Counts claimed segments (all, and those of `pid`) and collects a few ready-made ones,
/// with `getdents64` into a stack buffer (no allocation, no `opendir`).
fn scan_dir(dirfd: c_int, pid: u32) -> DirScan {
    let mut digits = [0u8; 20];
    let n = write_decimal(&mut digits, u64::from(pid));
    let pid = &digits[..n];
    let mut scan = DirScan {
        claimed: 0,
        ours: 0,
        free: [Name::new(), Name::new(), Name::new(), Name::new()],
        nfree: 0,
    };
    // (`dirfd` was opened for this claim: it reads from the start.)
    let mut buf = [0u64; 512];
    loop {
        // SAFETY: `buf` is writable for its size in bytes.
        let n = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                dirfd,
                buf.as_mut_ptr(),
                core::mem::size_of_val(&buf),
            )
        };
        if n <= 0 {
            break;
        }
        // SAFETY: the kernel wrote `n` bytes of dirent64 records into `buf`.
        let bytes = unsafe { core::slice::from_raw_parts(buf.as_ptr() as *const u8, n as usize) };
        let mut at = 0;
        while at + 19 < bytes.len() {
            let reclen = u16::from_le_bytes([bytes[at + 16], bytes[at + 17]]) as usize;
            if reclen == 0 || at + reclen > bytes.len() {
                break;
            }
            let name = &bytes[at + 19..at + reclen];
            let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
            if name.ends_with(b".tls") {
                if name.starts_with(b"free-") {
                    if scan.nfree < FREE_MAX && name.len() < 60 {
                        scan.free[scan.nfree].push(name);
                        scan.nfree += 1;
                    }
                } else if name.first().is_some_and(u8::is_ascii_digit) {
                    scan.claimed += 1;
                    if is_segment_of(name, pid) {
                        scan.ours += 1;
                    }
                }
            }
            at += reclen;
        }
    }
    scan
}

/// In the child after `fork`: its segments are numbered afresh (and named after it).
pub fn after_fork_child() {
    SEQ.store(0, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_nul_terminated_and_bounded() {
        let mut n = super::Name::new();
        n.push(b"free-");
        n.push_decimal(123);
        assert_eq!(n.bytes(), b"free-123");
        for _ in 0..20 {
            n.push(b"0123456789");
        }
        assert_eq!(n.len, 63);
        assert_eq!(n.buf[63], 0);
    }

    #[test]
    fn a_segment_is_ours_by_its_pid_prefix_only() {
        assert!(super::is_segment_of(b"123-0.tls", b"123"));
        assert!(super::is_segment_of(b"123-17.tls", b"123"));
        assert!(!super::is_segment_of(b"1234-0.tls", b"123"));
        assert!(!super::is_segment_of(b"12-0.tls", b"123"));
        assert!(!super::is_segment_of(b"123", b"123"));
    }

    #[test]
    fn the_process_bound_counts_segments_held_now() {
        let seg = 4 << 20;
        // Room for four: three held, a fourth fits; four held, a fifth does not.
        assert!(!super::over_process_bound(3, seg, 4 * seg));
        assert!(super::over_process_bound(4, seg, 4 * seg));
        // However many were claimed before and deleted since: only those held count.
        assert!(!super::over_process_bound(0, seg, seg));
        assert!(super::over_process_bound(0, seg, seg - 1));
        // No overflow however many are counted.
        assert!(super::over_process_bound(u64::MAX, seg, u64::MAX - 1));
    }
}
