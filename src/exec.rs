//! Programs a traced process starts (`execve` and its family, `posix_spawn`): what
//! the preload will not see, and the environment the child gets.
//!
//! Why here, before the real call: a successful exec does not return, so what the
//! library has to say about the new program (a [`NoticeKind`] notice) and the one
//! change it makes to the call (an environment with `LD_PRELOAD` put back) must happen
//! before it. The path, argv and every variable of the caller's environment are passed
//! on unchanged; only missing entries are added, and when they do not fit the call
//! goes out exactly as it came.
//!
//! The other change: a `java` launcher (named `java`, an ELF that needs `libjli.so`:
//! [`tapline_record::program::is_java_launcher`]) started with our preload gets
//! `-agentpath:<this library>` as its first argument, so that the JVM loads the library
//! as its JVMTI agent too (Java does TLS in Java, out of reach of the preload). Not
//! through `JAVA_TOOL_OPTIONS`: the JVM prints `Picked up JAVA_TOOL_OPTIONS` on stderr.
//! Never twice (an argument that already loads libtapline), never with
//! `TAPLINE_JAVA=0`, and the argv goes out unchanged when it does not fit.
//!
//! Why no allocation and only raw syscalls: after `vfork` (Python's `subprocess`) the
//! child runs on its parent's memory until it execs; `malloc` there could corrupt the
//! parent's heap. The ELF header is read with `openat`/`pread64`/`fstat`/`close`
//! syscalls into stack buffers, the new `envp` is an array on the stack, and the
//! entries it adds were copied into a static buffer by the constructor.

use core::cell::UnsafeCell;
use core::ffi::c_char;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use tapline_record::program::{is_java_name, is_tapline_agent_arg, needs_libjli, AGENTPATH};
use tapline_record::NoticeKind;

use crate::sys::raw;

// ---------------------------------------------------------------------------
// What a program file is
// ---------------------------------------------------------------------------

pub use tapline_record::program::elf_blind_spot;

/// Why the program open on `fd` runs unseen, if it does: set-id (the loader drops
/// `LD_PRELOAD` when the ids change), else what [`elf_blind_spot`] says.
pub fn blind_spot(fd: i32) -> Option<NoticeKind> {
    // SAFETY: an all-zero `stat` is a valid value of this plain C struct.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    let r = raw::syscall6(
        libc::SYS_fstat,
        [fd as usize, &mut st as *mut libc::stat as usize, 0, 0, 0, 0],
    );
    if r < 0 || st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return None;
    }
    let euid = raw::syscall6(libc::SYS_geteuid, [0; 6]) as u32;
    let egid = raw::syscall6(libc::SYS_getegid, [0; 6]) as u32;
    if (st.st_mode & libc::S_ISUID != 0 && st.st_uid != euid)
        || (st.st_mode & libc::S_ISGID != 0 && st.st_gid != egid)
    {
        return Some(NoticeKind::SetId);
    }
    elf_blind_spot(&mut |buf, off| {
        let n = raw::syscall6(
            libc::SYS_pread64,
            [
                fd as usize,
                buf.as_mut_ptr() as usize,
                buf.len(),
                off as usize,
                0,
                0,
            ],
        );
        n.max(0) as usize
    })
}

/// Opens `path` (a NUL-terminated string, relative to `dirfd`) for reading without our
/// hooks: the fd, or `None`.
fn open_at(dirfd: i32, path: *const c_char) -> Option<i32> {
    if path.is_null() {
        return None;
    }
    let fd = raw::syscall6(
        libc::SYS_openat,
        [
            dirfd as usize,
            path as usize,
            (libc::O_RDONLY | libc::O_CLOEXEC) as usize,
            0,
            0,
            0,
        ],
    );
    (fd >= 0).then_some(fd as i32)
}

/// The program `path` names (relative to `dirfd`), inspected: its blind spot, if any.
pub fn blind_spot_at(dirfd: i32, path: *const c_char) -> Option<NoticeKind> {
    let fd = open_at(dirfd, path)?;
    let kind = blind_spot(fd);
    raw::close(fd);
    kind
}

/// Longest path this module builds (a `PATH` entry joined with a file name).
pub const PATH_CAP: usize = 4096;

/// The first `dir/file` along `PATH` (the caller's environment, as `execvp` searches
/// it; `/bin:/usr/bin` without one) that is an executable file, written NUL-terminated
/// into `out`; its length. A `file` with a `/` is itself.
pub fn search_path(
    file: &[u8],
    path_var: Option<&[u8]>,
    out: &mut [u8; PATH_CAP],
) -> Option<usize> {
    if file.is_empty() || file.len() >= PATH_CAP {
        return None;
    }
    if file.contains(&b'/') {
        out[..file.len()].copy_from_slice(file);
        out[file.len()] = 0;
        return Some(file.len());
    }
    for dir in path_var.unwrap_or(b"/bin:/usr/bin").split(|&b| b == b':') {
        let dir = if dir.is_empty() { b".".as_slice() } else { dir };
        let len = dir.len() + 1 + file.len();
        if len >= PATH_CAP {
            continue;
        }
        out[..dir.len()].copy_from_slice(dir);
        out[dir.len()] = b'/';
        out[dir.len() + 1..len].copy_from_slice(file);
        out[len] = 0;
        let ok = raw::syscall6(
            libc::SYS_faccessat,
            [
                libc::AT_FDCWD as usize,
                out.as_ptr() as usize,
                libc::X_OK as usize,
                0,
                0,
                0,
            ],
        );
        if ok == 0 {
            return Some(len);
        }
    }
    None
}

// ---------------------------------------------------------------------------
// The child's environment
// ---------------------------------------------------------------------------

const SAVED_CAP: usize = 8192;
const SAVED_MAX: usize = 32;
/// Entries of a caller's environment the stack copy holds; beyond it, the call goes
/// out unchanged.
pub const ENV_CAP: usize = 1024;

struct Saved(UnsafeCell<[u8; SAVED_CAP]>);
// SAFETY: written only by `init` (constructor, one thread) before FOLLOW is released;
// read only after FOLLOW is acquired.
unsafe impl Sync for Saved {}
static SAVED: Saved = Saved(UnsafeCell::new([0; SAVED_CAP]));
#[allow(clippy::declare_interior_mutable_const)]
const NO_ENTRY: AtomicUsize = AtomicUsize::new(usize::MAX);
/// Offsets of the saved entries (NUL-terminated `NAME=value`) in [`SAVED`].
static SAVED_AT: [AtomicUsize; SAVED_MAX] = [NO_ENTRY; SAVED_MAX];
static SAVED_COUNT: AtomicUsize = AtomicUsize::new(0);
/// The preload is put back into children (`LD_PRELOAD` was set here and
/// `TAPLINE_FOLLOW_EXEC` is not `0`).
static FOLLOW: AtomicBool = AtomicBool::new(false);

const PRELOAD: &[u8] = b"LD_PRELOAD=";

/// The constructor: remembers `LD_PRELOAD` and every `TAPLINE_*` entry of this
/// process's environment (`entries`, each `NAME=value`), to put them back into a child
/// whose environment lacks `LD_PRELOAD`; `follow` is false with `TAPLINE_FOLLOW_EXEC=0`.
/// `agent` is this library's path when `java` launchers get it as their agent
/// (`None` with `TAPLINE_JAVA=0`).
pub fn init<'a>(entries: impl Iterator<Item = &'a [u8]>, follow: bool, agent: Option<&[u8]>) {
    init_agent(agent);
    // SAFETY: the constructor is the only writer, before FOLLOW is published.
    let buf = unsafe { &mut *SAVED.0.get() };
    let (mut used, mut count, mut preload) = (0usize, 0usize, false);
    for e in entries {
        let ours = e.starts_with(PRELOAD) || e.starts_with(b"TAPLINE_");
        if !ours || count == SAVED_MAX || used + e.len() + 1 > SAVED_CAP {
            continue;
        }
        preload |= e.starts_with(PRELOAD);
        buf[used..used + e.len()].copy_from_slice(e);
        buf[used + e.len()] = 0;
        SAVED_AT[count].store(used, Ordering::Relaxed);
        used += e.len() + 1;
        count += 1;
    }
    SAVED_COUNT.store(count, Ordering::Relaxed);
    FOLLOW.store(follow && preload, Ordering::Release);
}

/// A NUL-terminated C string's bytes (without the NUL), at most `cap` of them.
///
/// # Safety
/// `p` is a valid NUL-terminated string.
unsafe fn c_bytes<'a>(p: *const c_char, cap: usize) -> &'a [u8] {
    let mut n = 0;
    // SAFETY: the string is NUL-terminated: every byte up to the NUL is readable.
    while n < cap && unsafe { *p.add(n) } != 0 {
        n += 1;
    }
    // SAFETY: the `n` bytes just read.
    unsafe { core::slice::from_raw_parts(p.cast::<u8>(), n) }
}

/// The name part of `NAME=value`, `=` included.
fn name_of(entry: &[u8]) -> &[u8] {
    match entry.iter().position(|&b| b == b'=') {
        Some(i) => &entry[..=i],
        None => entry,
    }
}

/// A child's `envp`, built on the caller's stack.
pub struct ChildEnv {
    ptrs: [*const c_char; ENV_CAP + SAVED_MAX + 1],
}

impl Default for ChildEnv {
    fn default() -> Self {
        ChildEnv {
            ptrs: [core::ptr::null(); ENV_CAP + SAVED_MAX + 1],
        }
    }
}

impl ChildEnv {
    /// `envp` with `LD_PRELOAD` and the saved `TAPLINE_*` entries it lacks appended,
    /// when it lacks `LD_PRELOAD` and following is on; `None` (use `envp` as it is)
    /// otherwise, and when it does not fit.
    ///
    /// # Safety
    /// `envp` is NULL or a NULL-terminated array of NUL-terminated strings.
    pub unsafe fn build(&mut self, envp: *const *const c_char) -> Option<*const *const c_char> {
        if !FOLLOW.load(Ordering::Acquire) {
            return None;
        }
        let mut n = 0;
        if !envp.is_null() {
            // SAFETY: the array is NULL-terminated (caller's contract).
            while !unsafe { *envp.add(n) }.is_null() {
                if n == ENV_CAP {
                    return None;
                }
                // SAFETY: entry `n` is before the terminator.
                let e = unsafe { *envp.add(n) };
                // SAFETY: a NUL-terminated string of the caller's environment.
                let head = unsafe { c_bytes(e, PRELOAD.len()) };
                if head == PRELOAD {
                    return None;
                }
                self.ptrs[n] = e;
                n += 1;
            }
        }
        let saved = SAVED.0.get() as *const u8;
        let count = SAVED_COUNT.load(Ordering::Relaxed);
        let env_len = n;
        for at in SAVED_AT.iter().take(count) {
            // SAFETY: offsets below SAVED_CAP written by `init`, each the start of a
            // NUL-terminated entry in the static buffer.
            let entry = unsafe { saved.add(at.load(Ordering::Relaxed)) } as *const c_char;
            // SAFETY: as above.
            let name = name_of(unsafe { c_bytes(entry, SAVED_CAP) });
            let present = self.ptrs[..env_len].iter().any(|&e| {
                // SAFETY: the caller's NUL-terminated entries, copied above.
                let have = unsafe { c_bytes(e, name.len()) };
                have == name
            });
            if !present {
                self.ptrs[n] = entry;
                n += 1;
            }
        }
        self.ptrs[n] = core::ptr::null();
        Some(self.ptrs.as_ptr())
    }
}

/// Whether `envp` (NULL or a NULL-terminated array of C strings) preloads libtapline:
/// a child that gets it is one the agent may go into.
///
/// # Safety
/// As [`ChildEnv::build`].
pub unsafe fn env_preloads_us(envp: *const *const c_char) -> bool {
    if envp.is_null() {
        return false;
    }
    let mut n = 0;
    // SAFETY: the array is NULL-terminated (caller's contract).
    while n < ENV_CAP && !unsafe { *envp.add(n) }.is_null() {
        // SAFETY: entry `n` is before the terminator, a NUL-terminated string.
        let e = unsafe { c_bytes(*envp.add(n), PATH_CAP) };
        if e.starts_with(PRELOAD) {
            return e.windows(10).any(|w| w == b"libtapline");
        }
        n += 1;
    }
    false
}

// ---------------------------------------------------------------------------
// The Java agent in a `java` child's command line
// ---------------------------------------------------------------------------

const AGENT_CAP: usize = PATH_CAP + AGENTPATH.len() + 1;
/// Arguments of a caller's argv the stack copy holds; beyond it, the call goes out
/// unchanged.
pub const ARGV_CAP: usize = 1024;

struct AgentArg(UnsafeCell<[u8; AGENT_CAP]>);
// SAFETY: written only by `init_agent` (constructor, one thread) before AGENT is
// released; read only after AGENT is acquired.
unsafe impl Sync for AgentArg {}
/// `-agentpath:<this library>`, NUL-terminated.
static AGENT_ARG: AgentArg = AgentArg(UnsafeCell::new([0; AGENT_CAP]));
/// `java` children get [`AGENT_ARG`].
static AGENT: AtomicBool = AtomicBool::new(false);

fn init_agent(lib: Option<&[u8]>) {
    let Some(lib) = lib.filter(|l| !l.is_empty() && AGENTPATH.len() + l.len() < AGENT_CAP) else {
        return;
    };
    // SAFETY: the constructor is the only writer, before AGENT is published.
    let buf = unsafe { &mut *AGENT_ARG.0.get() };
    buf[..AGENTPATH.len()].copy_from_slice(AGENTPATH);
    buf[AGENTPATH.len()..AGENTPATH.len() + lib.len()].copy_from_slice(lib);
    buf[AGENTPATH.len() + lib.len()] = 0;
    AGENT.store(true, Ordering::Release);
}

/// A `java` child's argv with the agent argument, built on the caller's stack.
pub struct JavaArgv {
    ptrs: [*const c_char; ARGV_CAP + 2],
}

impl Default for JavaArgv {
    fn default() -> Self {
        JavaArgv {
            ptrs: [core::ptr::null(); ARGV_CAP + 2],
        }
    }
}

impl JavaArgv {
    /// `argv` with `-agentpath:<this library>` after `argv[0]`, when the program
    /// `path` names (relative to `dirfd`, `name` its bytes) is a `java` launcher, the
    /// child is preloaded (`preloaded`), and no argument loads libtapline already;
    /// `None` (use `argv` as it is) otherwise, and when it does not fit.
    ///
    /// # Safety
    /// `path` is NULL or NUL-terminated; `argv` NULL or a NULL-terminated array of
    /// NUL-terminated strings.
    pub unsafe fn build(
        &mut self,
        dirfd: i32,
        path: *const c_char,
        name: &[u8],
        argv: *const *const c_char,
        preloaded: bool,
    ) -> Option<*const *const c_char> {
        if !preloaded || !AGENT.load(Ordering::Acquire) || !is_java_name(name) || argv.is_null() {
            return None;
        }
        let mut n = 0;
        // SAFETY: the array is NULL-terminated (caller's contract).
        while !unsafe { *argv.add(n) }.is_null() {
            if n == ARGV_CAP {
                return None;
            }
            // SAFETY: entry `n` is before the terminator, a NUL-terminated string.
            let arg = unsafe { *argv.add(n) };
            // SAFETY: as above.
            if n > 0 && is_tapline_agent_arg(unsafe { c_bytes(arg, AGENT_CAP) }) {
                return None;
            }
            self.ptrs[if n == 0 { 0 } else { n + 1 }] = arg;
            n += 1;
        }
        if n == 0 || !launcher_at(dirfd, path) {
            return None;
        }
        self.ptrs[1] = AGENT_ARG.0.get() as *const c_char;
        self.ptrs[n + 1] = core::ptr::null();
        Some(self.ptrs.as_ptr())
    }
}

/// Whether the file `path` names (relative to `dirfd`) is an ELF that needs
/// `libjli.so`.
fn launcher_at(dirfd: i32, path: *const c_char) -> bool {
    let Some(fd) = open_at(dirfd, path) else {
        return false;
    };
    let yes = needs_libjli(&mut |buf, off| {
        let n = raw::syscall6(
            libc::SYS_pread64,
            [
                fd as usize,
                buf.as_mut_ptr() as usize,
                buf.len(),
                off as usize,
                0,
                0,
            ],
        );
        n.max(0) as usize
    });
    raw::close(fd);
    yes
}

/// Whether this process's own environment (`environ`) lacks `LD_PRELOAD` while
/// following is on: `execv`/`execvp` then go out as `execve`/`execvpe` with a built
/// environment.
pub fn following() -> bool {
    FOLLOW.load(Ordering::Acquire)
}

#[cfg(test)]
mod tests;
