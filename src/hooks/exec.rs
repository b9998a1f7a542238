//! The exec family and `posix_spawn`: where a traced process starts another program.
//!
//! Why these hooks: a program the preload cannot see (static, Go, set-id) would
//! otherwise leave silence that reads as "made no call" — a notice says it; and a
//! child started with an environment that dropped `LD_PRELOAD` would be lost — the
//! preload is put back ([`crate::exec`]). Both happen *before* the real call, because
//! a successful exec does not return: the one exception to "real call first", and it
//! never changes what runs (same path, the caller's variables unchanged, the argv
//! unchanged but for one thing: a `java` launcher that gets our preload gets
//! `-agentpath:<this library>` after `argv[0]`, [`crate::exec::JavaArgv`]).
//! `posix_spawn` writes its notice after the call, with the child's pid.
//!
//! glibc's `execl*`, `execvp` and `system` reach `execve` inside libc (not through
//! our symbol); `execv`, `execvp`, `execvpe` and the variadic `execl`, `execle`,
//! `execlp` are hooked for that reason (the variadic ones through naked trampolines:
//! stable Rust cannot define a variadic function).
#![allow(clippy::missing_safety_doc)]

use core::ffi::{c_char, CStr};
use libc::{c_int, pid_t};
use tapline_record::NoticeKind;

use super::{after, call_real};
use crate::exec::{self, ChildEnv, JavaArgv, PATH_CAP};
use crate::sys::raw;
use crate::sys::resolve::RealFn;

pub static REAL_EXECVE: RealFn = RealFn::new(c"execve");
pub static REAL_EXECVEAT: RealFn = RealFn::new(c"execveat");
pub static REAL_FEXECVE: RealFn = RealFn::new(c"fexecve");
pub static REAL_EXECV: RealFn = RealFn::new(c"execv");
pub static REAL_EXECVP: RealFn = RealFn::new(c"execvp");
pub static REAL_EXECVPE: RealFn = RealFn::new(c"execvpe");
pub static REAL_POSIX_SPAWN: RealFn = RealFn::new(c"posix_spawn");
pub static REAL_POSIX_SPAWNP: RealFn = RealFn::new(c"posix_spawnp");

type Argv = *const *const c_char;

extern "C" {
    static environ: *const *const c_char;
}

/// Resolves the exec functions now (constructor): a `vfork` child must not run the
/// loader's lookup code on its parent's memory.
pub fn resolve_all() {
    for f in [
        &REAL_EXECVE,
        &REAL_EXECVEAT,
        &REAL_FEXECVE,
        &REAL_EXECV,
        &REAL_EXECVP,
        &REAL_EXECVPE,
        &REAL_POSIX_SPAWN,
        &REAL_POSIX_SPAWNP,
    ] {
        f.resolve();
    }
}

/// The constructor: resolves the real functions and remembers what a child's
/// environment gets back (`LD_PRELOAD`, the `TAPLINE_*` settings).
pub fn init() {
    resolve_all();
    let follow = crate::config::env(tapline_record::settings::FOLLOW_EXEC) != Some(b"0");
    // This library's path, as the loader names it, for `-agentpath:` (`TAPLINE_JAVA=0`:
    // none).
    let agent = crate::config::java()
        .then(|| crate::sys::resolve::object_of(init as fn() as usize))
        .flatten()
        .map(|(_, path)| path.to_bytes());
    // SAFETY: the constructor runs before the program can change its environment
    // from other threads; `environ` is NULL or a NULL-terminated array of C strings.
    let entries = unsafe {
        let mut v = environ;
        core::iter::from_fn(move || {
            if v.is_null() || (*v).is_null() {
                return None;
            }
            let e = CStr::from_ptr(*v).to_bytes();
            v = v.add(1);
            Some(e)
        })
    };
    exec::init(entries, follow, agent);
}

/// `PATH` of this process's environment now, as `execvp` reads it (`getenv` does not
/// allocate).
fn path_var() -> Option<&'static [u8]> {
    // SAFETY: a NUL-terminated name.
    let p = unsafe { libc::getenv(c"PATH".as_ptr()) };
    // SAFETY: getenv returned NULL or a NUL-terminated string of the environment.
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_bytes())
}

fn getpid() -> u32 {
    raw::syscall6(libc::SYS_getpid, [0; 6]) as u32
}

/// A NUL-terminated path's bytes (empty for NULL).
///
/// # Safety
/// `p` is NULL or a NUL-terminated string.
unsafe fn path_bytes<'a>(p: *const c_char) -> &'a [u8] {
    if p.is_null() {
        return &[];
    }
    // SAFETY: the caller's contract.
    unsafe { CStr::from_ptr(p) }.to_bytes()
}

/// Inspects the program and writes a notice when the preload will not see it.
fn say(kind: Option<NoticeKind>, pid: u32, path: &[u8]) {
    if let Some(kind) = kind {
        crate::spool::notice(kind, pid, path);
    }
}

/// What a child gets instead of the caller's: an environment with the preload put
/// back, an argv with the Java agent (each on the caller's stack; `None`: as it is).
#[derive(Default)]
struct Child {
    env: ChildEnv,
    argv: JavaArgv,
}

/// Before an exec of `path` (relative to `dirfd`): the notice, then the child's
/// environment and argv (`None`: pass them on as they are).
///
/// # Safety
/// `path` is NULL or NUL-terminated; `argv` and `envp` NULL or NULL-terminated arrays
/// of C strings.
unsafe fn before_exec(
    dirfd: c_int,
    path: *const c_char,
    argv: Argv,
    envp: Argv,
    child: &mut Child,
) -> (Option<Argv>, Option<Argv>) {
    let (mut built, mut args) = (None, None);
    after(|| {
        // SAFETY: the caller's contract.
        let program = unsafe { path_bytes(path) };
        say(exec::blind_spot_at(dirfd, path), getpid(), program);
        // SAFETY: the caller's contract.
        built = unsafe { child.env.build(envp) };
        // SAFETY: the caller's contract.
        let preloaded = built.is_some() || unsafe { exec::env_preloads_us(envp) };
        // SAFETY: the caller's contract.
        args = unsafe { child.argv.build(dirfd, path, program, argv, preloaded) };
    });
    (built, args)
}

/// [`before_exec`] for a file searched along `PATH` (`execvp`, `execvpe`).
///
/// # Safety
/// As [`before_exec`].
unsafe fn before_exec_search(
    file: *const c_char,
    argv: Argv,
    envp: Argv,
    child: &mut Child,
) -> (Option<Argv>, Option<Argv>) {
    let (mut built, mut args) = (None, None);
    after(|| {
        // SAFETY: the caller's contract.
        let file = unsafe { path_bytes(file) };
        let mut found = [0u8; PATH_CAP];
        let found = exec::search_path(file, path_var(), &mut found).map(|n| &found[..=n]);
        if let Some(found) = found {
            say(
                exec::blind_spot_at(libc::AT_FDCWD, found.as_ptr() as *const c_char),
                getpid(),
                &found[..found.len() - 1],
            );
        }
        // SAFETY: the caller's contract.
        built = unsafe { child.env.build(envp) };
        // SAFETY: the caller's contract.
        let preloaded = built.is_some() || unsafe { exec::env_preloads_us(envp) };
        if let Some(found) = found {
            // SAFETY: `found` is NUL-terminated; the caller's contract for argv.
            args = unsafe {
                child.argv.build(
                    libc::AT_FDCWD,
                    found.as_ptr() as *const c_char,
                    file,
                    argv,
                    preloaded,
                )
            };
        }
    });
    (built, args)
}

#[no_mangle]
pub unsafe extern "C" fn execve(path: *const c_char, argv: Argv, envp: Argv) -> c_int {
    let mut child = Child::default();
    // SAFETY: libc's contract for execve.
    let (built, args) = unsafe { before_exec(libc::AT_FDCWD, path, argv, envp, &mut child) };
    let (envp, argv) = (built.unwrap_or(envp), args.unwrap_or(argv));
    call_real!(
        REAL_EXECVE,
        fn(*const c_char, Argv, Argv) -> c_int,
        (path, argv, envp),
        raw::syscall6(
            libc::SYS_execve,
            [path as usize, argv as usize, envp as usize, 0, 0, 0]
        ) as c_int
    )
}

#[no_mangle]
pub unsafe extern "C" fn execveat(
    dirfd: c_int,
    path: *const c_char,
    argv: Argv,
    envp: Argv,
    flags: c_int,
) -> c_int {
    let mut child = Child::default();
    // An empty path with AT_EMPTY_PATH names `dirfd` itself (no name: no agent).
    // SAFETY: libc's contract for execveat.
    let empty = !path.is_null() && unsafe { *path } == 0;
    let (envp, argv) = if empty && flags & libc::AT_EMPTY_PATH != 0 {
        let mut built = None;
        after(|| {
            say(exec::blind_spot(dirfd), getpid(), b"");
            // SAFETY: as above.
            built = unsafe { child.env.build(envp) };
        });
        (built.unwrap_or(envp), argv)
    } else {
        // SAFETY: as above.
        let (built, args) = unsafe { before_exec(dirfd, path, argv, envp, &mut child) };
        (built.unwrap_or(envp), args.unwrap_or(argv))
    };
    call_real!(
        REAL_EXECVEAT,
        fn(c_int, *const c_char, Argv, Argv, c_int) -> c_int,
        (dirfd, path, argv, envp, flags),
        raw::syscall6(
            libc::SYS_execveat,
            [
                dirfd as usize,
                path as usize,
                argv as usize,
                envp as usize,
                flags as usize,
                0
            ]
        ) as c_int
    )
}

#[no_mangle]
pub unsafe extern "C" fn fexecve(fd: c_int, argv: Argv, envp: Argv) -> c_int {
    // No name: a `java` started this way gets no agent.
    let mut env = ChildEnv::default();
    let mut built = None;
    after(|| {
        say(exec::blind_spot(fd), getpid(), b"");
        // SAFETY: libc's contract for fexecve.
        built = unsafe { env.build(envp) };
    });
    let envp = built.unwrap_or(envp);
    call_real!(
        REAL_FEXECVE,
        fn(c_int, Argv, Argv) -> c_int,
        (fd, argv, envp),
        {
            raw::set_errno(libc::ENOSYS);
            -1
        }
    )
}

#[no_mangle]
pub unsafe extern "C" fn execv(path: *const c_char, argv: Argv) -> c_int {
    let mut child = Child::default();
    // SAFETY: `environ` is the process's environment, as execv itself reads it.
    let current = unsafe { environ };
    // SAFETY: libc's contract for execv.
    let (built, args) = unsafe { before_exec(libc::AT_FDCWD, path, argv, current, &mut child) };
    let argv = args.unwrap_or(argv);
    match built {
        // execv(p, a) is execve(p, a, environ): with a built environment, it is that.
        Some(envp) => call_real!(
            REAL_EXECVE,
            fn(*const c_char, Argv, Argv) -> c_int,
            (path, argv, envp),
            raw::syscall6(
                libc::SYS_execve,
                [path as usize, argv as usize, envp as usize, 0, 0, 0]
            ) as c_int
        ),
        None => call_real!(
            REAL_EXECV,
            fn(*const c_char, Argv) -> c_int,
            (path, argv),
            raw::syscall6(
                libc::SYS_execve,
                [path as usize, argv as usize, current as usize, 0, 0, 0]
            ) as c_int
        ),
    }
}

#[no_mangle]
pub unsafe extern "C" fn execvp(file: *const c_char, argv: Argv) -> c_int {
    let mut child = Child::default();
    // SAFETY: as for execv.
    let current = unsafe { environ };
    // SAFETY: libc's contract for execvp.
    let (built, args) = unsafe { before_exec_search(file, argv, current, &mut child) };
    let argv = args.unwrap_or(argv);
    match built {
        // execvp(f, a) is execvpe(f, a, environ).
        Some(envp) if REAL_EXECVPE.get().is_some() => call_real!(
            REAL_EXECVPE,
            fn(*const c_char, Argv, Argv) -> c_int,
            (file, argv, envp),
            -1
        ),
        _ => call_real!(
            REAL_EXECVP,
            fn(*const c_char, Argv) -> c_int,
            (file, argv),
            {
                raw::set_errno(libc::ENOSYS);
                -1
            }
        ),
    }
}

#[no_mangle]
pub unsafe extern "C" fn execvpe(file: *const c_char, argv: Argv, envp: Argv) -> c_int {
    let mut child = Child::default();
    // SAFETY: libc's contract for execvpe.
    let (built, args) = unsafe { before_exec_search(file, argv, envp, &mut child) };
    let (envp, argv) = (built.unwrap_or(envp), args.unwrap_or(argv));
    call_real!(
        REAL_EXECVPE,
        fn(*const c_char, Argv, Argv) -> c_int,
        (file, argv, envp),
        {
            raw::set_errno(libc::ENOSYS);
            -1
        }
    )
}

type SpawnFn = unsafe extern "C" fn(
    *mut pid_t,
    *const c_char,
    *const libc::posix_spawn_file_actions_t,
    *const libc::posix_spawnattr_t,
    Argv,
    Argv,
) -> c_int;

/// Both `posix_spawn` shims: the environment before the call (it is the child's),
/// the notice after it, with the child's pid.
///
/// # Safety
/// libc's contract for posix_spawn.
// posix_spawn's six arguments, and which of the two functions.
#[allow(clippy::too_many_arguments)]
unsafe fn spawn(
    real: &RealFn,
    search: bool,
    pid: *mut pid_t,
    path: *const c_char,
    actions: *const libc::posix_spawn_file_actions_t,
    attr: *const libc::posix_spawnattr_t,
    argv: Argv,
    envp: Argv,
) -> c_int {
    let mut child = Child::default();
    let (mut built, mut args) = (None, None);
    after(|| {
        // SAFETY: the caller's contract.
        built = unsafe { child.env.build(envp) };
        // SAFETY: the caller's contract.
        let preloaded = built.is_some() || unsafe { exec::env_preloads_us(envp) };
        // SAFETY: the caller's contract.
        let file = unsafe { path_bytes(path) };
        let mut found = [0u8; PATH_CAP];
        let dirs = if search {
            path_var()
        } else {
            Some(b"".as_slice())
        };
        if let Some(n) = exec::search_path(file, dirs, &mut found) {
            // SAFETY: `found` is NUL-terminated; the caller's contract for argv.
            args = unsafe {
                child.argv.build(
                    libc::AT_FDCWD,
                    found.as_ptr() as *const c_char,
                    &found[..n],
                    argv,
                    preloaded,
                )
            };
        }
    });
    let (envp, argv) = (built.unwrap_or(envp), args.unwrap_or(argv));
    let Some(addr) = real.get() else {
        return libc::ENOSYS;
    };
    // SAFETY: the address of the libc function of this name, with this signature.
    let f: SpawnFn = unsafe { core::mem::transmute(addr) };
    // SAFETY: the caller's arguments, passed on (envp possibly extended).
    let ret = unsafe { f(pid, path, actions, attr, argv, envp) };
    if ret == 0 && !pid.is_null() {
        // SAFETY: on success the child's pid was stored there.
        let child = unsafe { *pid } as u32;
        after(|| {
            // SAFETY: the caller's contract.
            let file = unsafe { path_bytes(path) };
            let mut found = [0u8; PATH_CAP];
            let dirs = if search {
                path_var()
            } else {
                Some(b"".as_slice())
            };
            if let Some(n) = exec::search_path(file, dirs, &mut found) {
                say(
                    exec::blind_spot_at(libc::AT_FDCWD, found.as_ptr() as *const c_char),
                    child,
                    &found[..n],
                );
            }
        });
    }
    ret
}

#[no_mangle]
pub unsafe extern "C" fn posix_spawn(
    pid: *mut pid_t,
    path: *const c_char,
    actions: *const libc::posix_spawn_file_actions_t,
    attr: *const libc::posix_spawnattr_t,
    argv: Argv,
    envp: Argv,
) -> c_int {
    // SAFETY: libc's contract for posix_spawn.
    unsafe {
        spawn(
            &REAL_POSIX_SPAWN,
            false,
            pid,
            path,
            actions,
            attr,
            argv,
            envp,
        )
    }
}

#[no_mangle]
pub unsafe extern "C" fn posix_spawnp(
    pid: *mut pid_t,
    file: *const c_char,
    actions: *const libc::posix_spawn_file_actions_t,
    attr: *const libc::posix_spawnattr_t,
    argv: Argv,
    envp: Argv,
) -> c_int {
    // SAFETY: libc's contract for posix_spawnp.
    unsafe {
        spawn(
            &REAL_POSIX_SPAWNP,
            true,
            pid,
            file,
            actions,
            attr,
            argv,
            envp,
        )
    }
}

// --- execl, execle, execlp -------------------------------------------------------------
//
// Variadic: stable Rust cannot define one, so each exported symbol is a naked
// trampoline that stores the argument registers that may hold list items next to each
// other on its stack and calls `execl_collected` with where they are and where the
// caller's stack arguments begin. The list is then copied into a bounded array on the
// stack (no malloc: after `vfork` the child shares its parent's memory) and goes the
// way of `execv`, `execve` (with the list's environment) or `execvp`: the same notice,
// the same environment rule, the real function called once.

/// Most list items (program name included) the `execl*` hooks take; a longer list
/// fails with `E2BIG` (glibc's limit is the stack).
const EXECL_MAX_ARGS: usize = 4096;

const EXECL: c_int = 0;
const EXECLE: c_int = 1;
const EXECLP: c_int = 2;

/// The body of the three trampolines: `first` is the list's first item, `regs` the
/// `nregs` argument registers after it (in order), `stack` the caller's stack
/// arguments (the items after those).
///
/// # Safety
/// The `execl*` contract: a NULL-terminated list of C strings after `path` (for
/// `execle`, followed by the environment); `regs`/`stack` as the trampolines set them.
unsafe extern "C" fn execl_collected(
    path: *const c_char,
    regs: *const *const c_char,
    nregs: usize,
    stack: *const *const c_char,
    kind: c_int,
) -> c_int {
    // SAFETY: item `i` exists while no NULL came before it (the caller's contract);
    // the first `nregs` were stored by the trampoline, the rest are on the caller's stack.
    let item = |i: usize| unsafe {
        if i < nregs {
            *regs.add(i)
        } else {
            *stack.add(i - nregs)
        }
    };
    let mut argv = [core::ptr::null::<c_char>(); EXECL_MAX_ARGS + 1];
    let mut n = 0;
    loop {
        let a = item(n);
        if a.is_null() {
            break;
        }
        if n == EXECL_MAX_ARGS {
            raw::set_errno(libc::E2BIG);
            return -1;
        }
        argv[n] = a;
        n += 1;
    }
    // SAFETY: `argv` is a NULL-terminated array of the caller's C strings; the rest is
    // the execl* contract, handed on.
    unsafe {
        match kind {
            EXECLE => execve(path, argv.as_ptr(), item(n + 1) as Argv),
            EXECLP => execvp(path, argv.as_ptr()),
            _ => execv(path, argv.as_ptr()),
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod execl_entry {
    use super::*;

    // rdi = path, rsi = the first item, rdx, rcx, r8, r9 the next four; the rest on the
    // stack above the return address. 56 bytes keep the call 16-byte aligned.
    macro_rules! execl_trampoline {
        ($name:ident, $kind:expr) => {
            #[unsafe(naked)]
            #[no_mangle]
            pub unsafe extern "C" fn $name(_: *const c_char, _: *const c_char) -> c_int {
                core::arch::naked_asm!(
                    "sub rsp, 56",
                    "mov [rsp], rsi",
                    "mov [rsp + 8], rdx",
                    "mov [rsp + 16], rcx",
                    "mov [rsp + 24], r8",
                    "mov [rsp + 32], r9",
                    "mov rsi, rsp",
                    "mov edx, 5",
                    "lea rcx, [rsp + 64]",
                    "mov r8d, {kind}",
                    "call {f}",
                    "add rsp, 56",
                    "ret",
                    kind = const $kind,
                    f = sym execl_collected,
                )
            }
        };
    }
    execl_trampoline!(execl, EXECL);
    execl_trampoline!(execle, EXECLE);
    execl_trampoline!(execlp, EXECLP);
}

#[cfg(target_arch = "aarch64")]
mod execl_entry {
    use super::*;

    // x0 = path, x1 the first item, x2..x7 the next six; the rest on the stack at sp.
    macro_rules! execl_trampoline {
        ($name:ident, $kind:expr) => {
            #[unsafe(naked)]
            #[no_mangle]
            pub unsafe extern "C" fn $name(_: *const c_char, _: *const c_char) -> c_int {
                core::arch::naked_asm!(
                    "stp x29, x30, [sp, #-80]!",
                    "mov x29, sp",
                    "stp x1, x2, [sp, #16]",
                    "stp x3, x4, [sp, #32]",
                    "stp x5, x6, [sp, #48]",
                    "str x7, [sp, #64]",
                    "add x1, sp, #16",
                    "mov x2, #7",
                    "add x3, sp, #80",
                    "mov x4, #{kind}",
                    "bl {f}",
                    "ldp x29, x30, [sp], #80",
                    "ret",
                    kind = const $kind,
                    f = sym execl_collected,
                )
            }
        };
    }
    execl_trampoline!(execl, EXECL);
    execl_trampoline!(execle, EXECLE);
    execl_trampoline!(execlp, EXECLP);
}
