//! Stress test of the segment spool: the real `libtapline.so` writer (loaded with
//! `dlopen`, driven through its `tapline_spool_append` entry point) in several forked
//! processes of 8 threads each, sharing segments, against the real reader
//! (`tapline::SegmentFollower`) consuming and deleting concurrently.
//!
//! Why `dlopen` and not a Rust copy of the writer: the library is a cdylib only, and
//! what must be proven is the writer as shipped — its claim and rotation, its fork
//! handler, its drop counting — not a re-implementation of it.
//!
//! Variants (each in a fresh process of this binary, so each gets its own library
//! instance and spool directory):
//! - `shared`: 4 processes × 8 threads append 1,000,000 records of random sizes. Every
//!   record the writer says it wrote is read exactly once, byte-identical; every record
//!   it says it dropped is never read; rotations and deletions happen.
//! - `killed`: the same, with two writer processes killed by SIGKILL at random moments.
//!   Holes are skipped; everything that was committed is intact and read once.
//! - `reuse`: the Lambda pattern: 40 "invocations", each 4 threads writing ~2.5
//!   segments, then the reader draining everything (and handing full segments back).
//!   From the fifth invocation on, the writer creates no segment: it reuses the ones
//!   handed back, in place; every record is still read exactly once, byte-identical.
//! - `disk-full`: the spool directory on a 6 MiB tmpfs that is nearly full (a private
//!   mount namespace, through `unshare`): records are dropped and counted, the program
//!   goes on, and once space is freed writing resumes with a `Drops` record.
//!
//! Run: `cargo test -p tapline --test segment_stress` (add `-- quick` for 100,000
//! records).

mod common;

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use common::preload::library;
use tapline::{make_free_segments, SegmentFollower};
use tapline_record::RecordType;

const PROCS: usize = 4;
const THREADS: usize = 8;
const SEGMENT_BYTES: u64 = 1 << 20;
const MAX_PAYLOAD: usize = 1000;
/// One record in `LARGE_EVERY` is up to this long instead: the library copies parts of
/// 4 KiB and more with non-temporal stores, which must be fenced before the commit.
const MAX_LARGE_PAYLOAD: usize = 20_000;
const LARGE_EVERY: u64 = 256;

/// `tapline_spool_append(mode, rtype, conn_id, payload, len) -> 1 written, 0 dropped`.
type AppendFn = unsafe extern "C" fn(i32, u16, u64, *const u8, usize) -> i32;
type CountFn = unsafe extern "C" fn() -> u64;
type ModeFn = unsafe extern "C" fn() -> i32;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Ok(role) = std::env::var("SEGMENT_STRESS_ROLE") {
        let total: usize = std::env::var("SEGMENT_STRESS_TOTAL")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1_000_000);
        match role.as_str() {
            "shared" => stress(total, false),
            "killed" => stress(total, true),
            "disk-full" => disk_full(),
            "reuse" => reuse(),
            other => panic!("unknown role {other}"),
        }
        return;
    }
    // `cargo test` passes harness flags (--quiet, test filters ...): ignore them.
    let quick = args.iter().any(|a| a == "quick");
    let total = if quick { 100_000 } else { 1_000_000 };
    let lib = library();
    let mut failed = false;
    for role in ["shared", "killed", "reuse", "disk-full"] {
        let t0 = Instant::now();
        let me = std::env::current_exe().expect("own path");
        let mut cmd = if role == "disk-full" {
            match namespace_runner() {
                Some(mut c) => {
                    c.arg(&me);
                    c
                }
                None => {
                    println!(
                        "segment_stress {role}: SKIPPED (no way to mount a private tmpfs: \
                         neither `unshare -rm` nor root)"
                    );
                    continue;
                }
            }
        } else {
            Command::new(&me)
        };
        let mut child = cmd
            .env("SEGMENT_STRESS_ROLE", role)
            .env("SEGMENT_STRESS_TOTAL", total.to_string())
            .env("SEGMENT_STRESS_LIB", &lib)
            .spawn()
            .expect("run variant");
        let status = child.wait().expect("wait variant");
        // A failed variant (or the disk-full one, whose tmpfs mount point stays behind)
        // leaves its spool directory: remove it.
        if let Ok(listing) = std::fs::read_dir(std::env::temp_dir()) {
            let ours = format!("tapline-stress-{}-", child.id());
            for e in listing.flatten() {
                if e.file_name().to_string_lossy().starts_with(&ours) {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        println!(
            "segment_stress {role}: {} in {:.1}s",
            if status.success() { "ok" } else { "FAILED" },
            t0.elapsed().as_secs_f64()
        );
        failed |= !status.success();
    }
    assert!(!failed, "a segment stress variant failed");
}

/// A command prefix that runs a program in a private mount namespace where it may
/// mount a tmpfs: `unshare -rm` (unprivileged user namespace), or `unshare -m` as root.
fn namespace_runner() -> Option<Command> {
    for args in [&["-rm", "true"][..], &["-m", "true"][..]] {
        let ok = Command::new("unshare")
            .args(args)
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            let mut c = Command::new("unshare");
            c.arg(args[0]);
            return Some(c);
        }
    }
    None
}

struct Library {
    append: AppendFn,
    dropped: CountFn,
}

/// Loads the library with the given environment (read by its constructor).
fn load(dir: &Path, env: &[(&str, String)]) -> Library {
    std::env::set_var("TAPLINE_SPOOL_DIR", dir);
    for (k, v) in env {
        std::env::set_var(k, v);
    }
    let path = std::env::var("SEGMENT_STRESS_LIB").expect("SEGMENT_STRESS_LIB");
    let path = CString::new(path).expect("path");
    // SAFETY: loading a library by path; its constructor only reads the environment.
    let handle = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    assert!(!handle.is_null(), "dlopen libtapline.so failed");
    let sym = |name: &std::ffi::CStr| {
        // SAFETY: `handle` is a live library handle; the name is NUL-terminated.
        let p = unsafe { libc::dlsym(handle, name.as_ptr()) };
        assert!(!p.is_null(), "missing symbol {name:?}");
        p
    };
    let append = sym(c"tapline_spool_append");
    let dropped = sym(c"tapline_spool_dropped");
    let mode = sym(c"tapline_spool_mode");
    // SAFETY: the symbols are the library's exported functions of these signatures.
    let lib = unsafe {
        Library {
            append: std::mem::transmute::<*mut libc::c_void, AppendFn>(append),
            dropped: std::mem::transmute::<*mut libc::c_void, CountFn>(dropped),
        }
    };
    // SAFETY: as above.
    let mode: ModeFn = unsafe { std::mem::transmute::<*mut libc::c_void, ModeFn>(mode) };
    // SAFETY: no arguments, no preconditions.
    assert_eq!(unsafe { mode() }, 2, "the library is not in segment mode");
    lib
}

fn spool_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tapline-stress-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("spool dir");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    dir
}

/// The payload of record `id`: its id, then bytes derived from it, of a size derived
/// from it (so the reader can check every byte without being told).
fn payload(id: u64, out: &mut Vec<u8>) {
    let mut x = id.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    x ^= x >> 29;
    let max = if id.is_multiple_of(LARGE_EVERY) {
        MAX_LARGE_PAYLOAD
    } else {
        MAX_PAYLOAD
    };
    let len = 8 + (x % (max as u64 + 1)) as usize;
    out.clear();
    out.extend_from_slice(&id.to_le_bytes());
    let mut s = x;
    while out.len() < len {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        out.extend_from_slice(&s.to_le_bytes()[..(len - out.len()).min(8)]);
    }
}

/// Shared, zeroed memory that survives `fork` (children report what they wrote here).
fn shared_bytes(n: usize) -> &'static [AtomicU8] {
    // SAFETY: a fresh anonymous shared mapping of `n` bytes, never unmapped.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            n,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(p, libc::MAP_FAILED);
    // SAFETY: the mapping is `n` zeroed bytes, valid for the program's life; AtomicU8
    // has the size and alignment of u8.
    unsafe { std::slice::from_raw_parts(p as *const AtomicU8, n) }
}

const UNKNOWN: u8 = 0;
const WRITTEN: u8 = 1;
const DROPPED: u8 = 2;

fn stress(total: usize, kill: bool) {
    let (dir, lib) = segment_spool(if kill { "killed" } else { "shared" });
    let per_thread = total / (PROCS * THREADS);
    let n = PROCS * THREADS * per_thread + 3;
    let status = shared_bytes(n);
    let mut buf = Vec::new();

    // The parent writes first, so that the children inherit its segment and share it.
    let parent_id = (n - 3) as u64;
    let (hole_id, late_id) = ((n - 2) as u64, (n - 1) as u64);
    append_one(lib.append, parent_id, &mut buf, status);

    let hand = fork_hand_writers(&dir, hole_id, late_id);
    status[hole_id as usize].store(DROPPED, Ordering::SeqCst);

    let kill_at = kill_moments(kill, per_thread);
    let children = fork_writers(&lib, per_thread, &kill_at, status);
    let mut writers = Writers {
        children,
        hand,
        kills: kill_at,
        killed: Vec::new(),
    };

    // The reader, concurrently: poll, check, delete, keep ready-made segments coming.
    let mut seen = Seen::new(n);
    let mut follower = SegmentFollower::new(&dir, true);
    let segments = read_while_writing(
        &dir,
        &mut follower,
        &mut seen,
        &mut writers,
        status,
        late_id,
    );

    // Records written while another thread of their process was switching segments
    // went to the process's record file instead (`<pid>-<seq>.tlr`): read those now.
    let mut via_file = 0u64;
    record_files(&dir, |record| {
        if record.header.rtype == RecordType::Data as u16 {
            via_file += 1;
        }
        seen.check(record);
    });

    let tally = Tally::of(status, &seen.seen, &writers.killed, per_thread);
    let Tally {
        written,
        dropped,
        lost,
        ghost,
        unknown,
        unknown_seen,
    } = tally;
    let Seen { bad, dups, .. } = seen;
    let st = follower.stats;
    println!(
        "  {} records: written {written}, dropped {dropped}, \
         unwritten in killed processes {unknown} (of them read: {unknown_seen}); \
         read {} data records in {} segments, deleted {}, recycled {}, holes {} ({} bytes), \
         garbage {} bytes, corrupt {}; via record files {via_file}; lost {lost}, ghosts {ghost}, duplicates {dups}, \
         bad bytes {bad}",
        n,
        seen.seen.iter().filter(|&&s| s).count(),
        segments.len(),
        st.deleted,
        st.recycled,
        st.holes,
        st.hole_bytes,
        st.garbage_bytes,
        st.corrupt,
    );
    assert_exactly_once(lost, ghost, dups, bad);
    assert_eq!(st.corrupt, 0, "committed records that never checked");
    assert!(seen.seen[late_id as usize], "the late commit was read");
    assert!(st.holes >= 1, "the killed hand writer's hole was skipped");
    assert!(segments.len() > 10, "too few rotations");
    assert!(st.deleted > 10, "too few deletions");
    // How many records are dropped is how far the reader fell behind 32 writer threads
    // before the spool's segment bound stopped them: speed (a loaded machine dropped
    // more than half), which tests never assert. The exactly-once accounting above
    // holds at any speed.
    assert!(written > 0, "nothing was written");
    if kill {
        assert_eq!(writers.killed.len(), 2);
        assert!(unknown > 0);
    } else {
        assert_eq!(unknown, 0);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Two writers that follow tapline.h by hand in the shared segment: one (`hole_id`) is
/// killed between its reservation and its commit (a hole), one (`late_id`) commits
/// 300 ms late. Returns their pids.
fn fork_hand_writers(dir: &Path, hole_id: u64, late_id: u64) -> Vec<i32> {
    let mut hand = Vec::new();
    for (id, late) in [(hole_id, false), (late_id, true)] {
        // SAFETY: single-threaded here; the child only runs `hand_writer` and exits.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork");
        if pid == 0 {
            hand_writer(dir, id, late);
        }
        hand.push(pid);
    }
    hand
}

/// When `kill`, kill two writer processes mid-run: once their first thread has written
/// a third, and a half, of its records (moments that do not depend on the machine's
/// speed). That thread then stops there until it is killed, so the kill always lands
/// while the process still has records to write, however fast the others are.
fn kill_moments(kill: bool, per_thread: usize) -> Vec<(usize, usize)> {
    if kill {
        vec![
            (0, per_thread / 3),
            (2, 2 * THREADS * per_thread + per_thread / 2),
        ]
    } else {
        Vec::new()
    }
}

/// Forks the `PROCS` writer processes of `THREADS` threads each, every thread appending
/// its `per_thread` records; returns their pids. A thread whose id is in `kill_at`
/// stops after writing that record, until its process is killed.
fn fork_writers(
    lib: &Library,
    per_thread: usize,
    kill_at: &[(usize, usize)],
    status: &'static [AtomicU8],
) -> Vec<i32> {
    let mut children = Vec::new();
    for p in 0..PROCS {
        // SAFETY: this process is single-threaded here; the child only runs the writer
        // threads below and leaves with _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork");
        if pid == 0 {
            let threads: Vec<_> = (0..THREADS)
                .map(|t| {
                    let append = lib.append;
                    let stop_at = kill_at.iter().find(|k| k.0 == p).map(|k| k.1);
                    std::thread::spawn(move || {
                        let mut buf = Vec::new();
                        for k in 0..per_thread {
                            let id = ((p * THREADS + t) * per_thread + k) as u64;
                            let written = append_one(append, id, &mut buf, status);
                            if stop_at == Some(id as usize) {
                                loop {
                                    std::thread::sleep(Duration::from_millis(10));
                                }
                            }
                            if !written {
                                // The reader is behind (the directory bound is reached):
                                // a program would be doing other things meanwhile.
                                std::thread::sleep(Duration::from_millis(1));
                            } else if k % 64 == 0 {
                                std::thread::yield_now();
                            }
                        }
                    })
                })
                .collect();
            for t in threads {
                let _ = t.join();
            }
            // SAFETY: leaving the child without running the parent's atexit handlers.
            unsafe { libc::_exit(0) };
        }
        children.push(pid);
    }
    children
}

/// The child processes of a stress run (a pid turns negative once reaped), and the
/// kills still due: (writer process, record id after which it is killed).
struct Writers {
    children: Vec<i32>,
    hand: Vec<i32>,
    kills: Vec<(usize, usize)>,
    killed: Vec<usize>,
}

impl Writers {
    /// Kills each writer process whose moment has come (its chosen record has a status).
    fn kill_due(&mut self, status: &[AtomicU8]) {
        let (children, killed) = (&self.children, &mut self.killed);
        self.kills.retain(|&(child, at)| {
            if status[at].load(Ordering::SeqCst) == UNKNOWN {
                return true;
            }
            // SAFETY: signalling our own child.
            unsafe { libc::kill(children[child], libc::SIGKILL) };
            killed.push(child);
            false
        });
    }

    /// Reaps the children that have exited, without blocking; the late hand writer's
    /// record counts as written once it exited cleanly. Returns the writer processes
    /// still running.
    fn reap(&mut self, status: &[AtomicU8], late_id: u64) -> usize {
        for pid in self.hand.iter_mut().filter(|p| **p > 0) {
            let mut st = 0;
            // SAFETY: reaping our own child without blocking.
            if unsafe { libc::waitpid(*pid, &mut st, libc::WNOHANG) } == *pid {
                if libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0 {
                    status[late_id as usize].store(WRITTEN, Ordering::SeqCst);
                }
                *pid = -*pid;
            }
        }
        for pid in self.children.iter_mut().filter(|p| **p > 0) {
            // SAFETY: reaping our own child without blocking.
            if unsafe { libc::waitpid(*pid, std::ptr::null_mut(), libc::WNOHANG) } == *pid {
                *pid = -*pid;
            }
        }
        self.children.iter().filter(|&&p| p > 0).count()
    }
}

/// Polls the spool while the writers run (killing and reaping them as it goes) until
/// all have exited and three polls in a row read nothing new. Returns the names of the
/// segments read.
fn read_while_writing(
    dir: &Path,
    follower: &mut SegmentFollower,
    seen: &mut Seen,
    writers: &mut Writers,
    status: &[AtomicU8],
    late_id: u64,
) -> std::collections::BTreeSet<String> {
    let mut segments = std::collections::BTreeSet::new();
    let mut quiet_polls = 0;
    let t0 = Instant::now();
    loop {
        let before = follower.stats.records;
        follower
            .poll(&mut |name, rec| {
                segments.insert(name.to_owned());
                seen.check(rec);
            })
            .expect("poll");
        let _ = make_free_segments(dir, 2, SEGMENT_BYTES);
        writers.kill_due(status);
        let running = writers.reap(status, late_id);
        let progressed = follower.stats.records != before;
        if running == 0 && writers.hand.iter().all(|&p| p < 0) && !progressed {
            quiet_polls += 1;
            if quiet_polls >= 3 {
                break;
            }
        } else {
            quiet_polls = 0;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(600),
            "stress test timed out"
        );
        if !progressed {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    segments
}

/// What the reader has read: each id at most once, every byte checked.
struct Seen {
    seen: Vec<bool>,
    expected: Vec<u8>,
    bad: u64,
    dups: u64,
}

impl Seen {
    fn new(n: usize) -> Seen {
        Seen {
            seen: vec![false; n],
            expected: Vec::new(),
            bad: 0,
            dups: 0,
        }
    }

    fn check(&mut self, rec: tapline_record::RawRecord<'_>) {
        check(
            rec,
            &mut self.seen,
            &mut self.expected,
            &mut self.bad,
            &mut self.dups,
        );
    }
}

/// The writers' statuses against what was read: written → seen exactly once; dropped →
/// never seen; unknown (only in processes that were killed) → at most once.
struct Tally {
    written: u64,
    dropped: u64,
    lost: u64,
    ghost: u64,
    unknown: u64,
    unknown_seen: u64,
}

impl Tally {
    fn of(status: &[AtomicU8], seen: &[bool], killed: &[usize], per_thread: usize) -> Tally {
        let mut t = Tally {
            written: 0,
            dropped: 0,
            lost: 0,
            ghost: 0,
            unknown: 0,
            unknown_seen: 0,
        };
        for (id, s) in status.iter().enumerate() {
            match s.load(Ordering::SeqCst) {
                WRITTEN => {
                    t.written += 1;
                    t.lost += u64::from(!seen[id]);
                }
                DROPPED => {
                    t.dropped += 1;
                    t.ghost += u64::from(seen[id]);
                }
                _ => {
                    let proc_ = id / (THREADS * per_thread);
                    assert!(
                        killed.contains(&proc_),
                        "record {id} of a process that was not killed has no status"
                    );
                    t.unknown += 1;
                    t.unknown_seen += u64::from(seen[id]);
                }
            }
        }
        t
    }
}

/// Every written record read once, byte-identical; no dropped record read.
fn assert_exactly_once(lost: u64, ghost: u64, dups: u64, bad: u64) {
    assert_eq!(lost, 0, "records written but never read");
    assert_eq!(ghost, 0, "records dropped but read");
    assert_eq!(dups, 0, "records read twice");
    assert_eq!(bad, 0, "records read with wrong bytes");
}

/// Checks one record read from the spool against what its id says it must hold.
fn check(
    rec: tapline_record::RawRecord<'_>,
    seen: &mut [bool],
    expected: &mut Vec<u8>,
    bad: &mut u64,
    dups: &mut u64,
) {
    if rec.header.rtype != RecordType::Data as u16 {
        return; // ProcStart, Drops
    }
    let id = rec.header.conn_id;
    if id as usize >= seen.len() {
        *bad += 1;
        return;
    }
    payload(id, expected);
    if rec.payload.len() < expected.len()
        || rec.payload[..expected.len()] != expected[..]
        || rec.payload[expected.len()..].iter().any(|&b| b != 0)
    {
        *bad += 1;
    }
    if std::mem::replace(&mut seen[id as usize], true) {
        *dups += 1;
    }
}

/// Appends record `id` (its payload built in `buf`) through the library and notes in
/// `status` whether the library wrote or dropped it. True if written.
fn append_one(append: AppendFn, id: u64, buf: &mut Vec<u8>, status: &[AtomicU8]) -> bool {
    payload(id, buf);
    // SAFETY: `buf` is readable for its length.
    let r = unsafe { append(0, RecordType::Data as u16, id, buf.as_ptr(), buf.len()) };
    let s = if r == 1 { WRITTEN } else { DROPPED };
    status[id as usize].store(s, Ordering::SeqCst);
    r == 1
}

/// A fresh spool directory with two ready-made 1 MiB segments, and the library loaded
/// to write there.
fn segment_spool(tag: &str) -> (PathBuf, Library) {
    let dir = spool_dir(tag);
    make_free_segments(&dir, 2, SEGMENT_BYTES).expect("free segments");
    let lib = load(
        &dir,
        &[
            ("TAPLINE_SEGMENT_BYTES", SEGMENT_BYTES.to_string()),
            ("TAPLINE_SPOOL_MAX_SEGMENTS", "48".into()),
            ("TAPLINE_SPOOL_MAX_BYTES", (1u64 << 50).to_string()),
        ],
    );
    (dir, lib)
}

/// Every record in the directory's record files (`<pid>-<seq>.tlr`), where records go
/// that met another thread's segment switch.
fn record_files(dir: &Path, mut each: impl FnMut(tapline_record::RawRecord<'_>)) {
    for e in std::fs::read_dir(dir).expect("dir").flatten() {
        if e.file_name().to_string_lossy().ends_with(".tlr") {
            let bytes = std::fs::read(e.path()).expect("record file");
            for item in tapline_record::RecordIter::skipping_zeros(&bytes) {
                if let tapline_record::Item::Record { record, .. } = item {
                    each(record);
                }
            }
        }
    }
}

/// The Lambda pattern: bursts of appends, each followed by the reader draining the
/// spool; segments are handed back and reused in place.
fn reuse() {
    const INVOCATIONS: usize = 40;
    const PER_THREAD: usize = 1250;
    const WRITERS: usize = 4;
    let (dir, lib) = segment_spool("reuse");
    let n = INVOCATIONS * WRITERS * PER_THREAD;
    let status = shared_bytes(n);
    let mut seen = vec![false; n];
    let (mut bad, mut dups) = (0u64, 0u64);
    let mut expected = Vec::new();
    let mut follower = SegmentFollower::new(&dir, true);
    let mut names = std::collections::BTreeSet::new();
    let mut new_names_late = 0;
    for inv in 0..INVOCATIONS {
        std::thread::scope(|scope| {
            for t in 0..WRITERS {
                let append = lib.append;
                scope.spawn(move || {
                    let mut buf = Vec::new();
                    for k in 0..PER_THREAD {
                        let id = ((inv * WRITERS + t) * PER_THREAD + k) as u64;
                        append_one(append, id, &mut buf, status);
                    }
                });
            }
        });
        // After the response: the extension reads everything.
        let mut quiet = 0;
        while quiet < 2 {
            let before = (follower.stats.records, follower.stats.recycled);
            follower
                .poll(&mut |name, rec| {
                    if names.insert(name.to_owned()) && inv >= 4 {
                        new_names_late += 1;
                    }
                    check(rec, &mut seen, &mut expected, &mut bad, &mut dups);
                })
                .expect("poll");
            quiet = if (follower.stats.records, follower.stats.recycled) == before {
                quiet + 1
            } else {
                0
            };
        }
    }
    // Records written while another thread switched segments went to the record file.
    record_files(&dir, |record| {
        check(record, &mut seen, &mut expected, &mut bad, &mut dups)
    });
    let mut written = 0;
    let mut lost = 0;
    let mut ghost = 0;
    for (id, s) in status.iter().enumerate() {
        match s.load(Ordering::SeqCst) {
            WRITTEN => {
                written += 1;
                lost += u64::from(!seen[id]);
            }
            _ => ghost += u64::from(seen[id]),
        }
    }
    let segment_files = std::fs::read_dir(&dir)
        .expect("dir")
        .flatten()
        .filter(|e| tapline::is_segment_name(&e.file_name().to_string_lossy()))
        .count();
    let st = follower.stats;
    println!(
        "  {n} records in {INVOCATIONS} invocations: written {written}; {} segment files \
         used, {} of them first seen after the fourth invocation; handed back {}, deleted \
         {}; {segment_files} segment files left; lost {lost}, ghosts {ghost}, duplicates \
         {dups}, bad bytes {bad}",
        names.len(),
        new_names_late,
        st.recycled,
        st.deleted,
    );
    assert_exactly_once(lost, ghost, dups, bad);
    assert_eq!(written, n, "records dropped with room to spare");
    assert_eq!(
        new_names_late, 0,
        "the writer made new segments instead of reusing"
    );
    assert!(
        st.recycled >= 2 * (INVOCATIONS as u64 - 4),
        "too few segments handed back"
    );
    assert!(
        segment_files <= 8,
        "disk use grew: {segment_files} segments"
    );
}

/// The parent's current segment (its highest sequence number), opened: named
/// `<parent>-<seq>.tls`, or still `free-<k>.tls` if the parent claimed it where it is
/// and the reader has not named it yet (its header says whose it is). Looked for again
/// if the reader renames it between the listing and the open.
fn parents_segment(dir: &Path, parent: u32) -> std::fs::File {
    use std::io::Read;
    use tapline_record::segment::{field, SegmentHeader};
    let prefix = format!("{parent}-");
    for _ in 0..100 {
        let mut best: Option<(u32, String)> = None;
        for name in std::fs::read_dir(dir)
            .expect("spool dir")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
        {
            let seq = if name.starts_with(&prefix) && name.ends_with(".tls") {
                name[prefix.len()..name.len() - 4].parse::<u32>().ok()
            } else if name.starts_with("free-") && name.ends_with(".tls") {
                let mut page = [0u8; field::END];
                std::fs::File::open(dir.join(&name))
                    .and_then(|mut f| f.read_exact(&mut page))
                    .ok()
                    .and_then(|()| SegmentHeader::parse(&page))
                    .filter(|h| h.creator == parent)
                    .map(|h| h.seq)
            } else {
                None
            };
            if let Some(seq) = seq {
                if best.as_ref().is_none_or(|(b, _)| seq >= *b) {
                    best = Some((seq, name));
                }
            }
        }
        let (_, name) = best.expect("the parent's segment");
        if let Ok(f) = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(dir.join(name))
        {
            return f;
        }
    }
    panic!("the parent's segment kept moving");
}

/// In a forked child: reserve space for record `id` in the parent's current segment
/// and store its length and pid, as tapline.h says; then either die (SIGKILL, leaving
/// a hole) or wait 300 ms and commit. Never returns.
fn hand_writer(dir: &Path, id: u64, late: bool) -> ! {
    use std::sync::atomic::{AtomicU32, AtomicU64};
    use tapline_record::segment::field;
    // SAFETY: no preconditions.
    let (me, parent) = unsafe { (libc::getpid() as u32, libc::getppid() as u32) };
    let file = parents_segment(dir, parent);
    let size = file.metadata().expect("stat").len() as usize;
    use std::os::fd::AsRawFd;
    // SAFETY: mapping the whole segment file, shared, for the rest of this process.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        )
    } as *mut u8;
    assert_ne!(base as *mut libc::c_void, libc::MAP_FAILED);
    let mut payload_bytes = Vec::new();
    payload(id, &mut payload_bytes);
    let mut h = tapline_record::Header::new(RecordType::Data, payload_bytes.len(), 1, 2);
    h.pid = me;
    h.conn_id = id;
    let (head, pad) = h.seal(&[&payload_bytes]);
    let len = h.length as u64;
    // SAFETY: the header words are mapped and 8-aligned; the reserved range is ours.
    unsafe {
        let reserve = AtomicU64::from_ptr(base.add(field::RESERVE) as *mut u64);
        let off = reserve.fetch_add(len, Ordering::Relaxed);
        if off + len > size as u64 {
            libc::_exit(1);
        }
        let rec = base.add(off as usize);
        std::ptr::copy_nonoverlapping(head.as_ptr().add(4), rec.add(4), 4);
        AtomicU32::from_ptr(rec.add(8) as *mut u32).store(h.length, Ordering::Relaxed);
        AtomicU32::from_ptr(rec.add(32) as *mut u32).store(me, Ordering::Release);
        if !late {
            libc::kill(me as i32, libc::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(300));
        std::ptr::copy_nonoverlapping(head.as_ptr().add(12), rec.add(12), 20);
        std::ptr::copy_nonoverlapping(head.as_ptr().add(36), rec.add(36), 12);
        std::ptr::copy_nonoverlapping(payload_bytes.as_ptr(), rec.add(48), payload_bytes.len());
        std::ptr::write_bytes(rec.add(48 + payload_bytes.len()), 0, pad);
        AtomicU32::from_ptr(rec as *mut u32).store(tapline_record::MAGIC, Ordering::Release);
        libc::_exit(0);
    }
}

/// The spool on a nearly full 6 MiB tmpfs: drops are counted, the program goes on, and
/// writing resumes (with a `Drops` record) once the reader frees space.
fn disk_full() {
    let dir = spool_dir("diskfull");
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=6m,mode=0700", "tapline-full"])
        .arg(&dir)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "mount tmpfs");
    // Leave about 2.5 MiB free: room for two 1 MiB segments, not more.
    let filler = dir.join("filler");
    std::fs::write(&filler, vec![1u8; 3_500_000]).expect("filler");
    let lib = load(
        &dir,
        &[
            ("TAPLINE_SEGMENT_BYTES", SEGMENT_BYTES.to_string()),
            ("TAPLINE_SPOOL_MAX_BYTES", (1u64 << 50).to_string()),
        ],
    );
    let mut buf = Vec::new();
    let (mut written, mut dropped) = (0u64, 0u64);
    for id in 0..10_000u64 {
        payload(id, &mut buf);
        // SAFETY: `buf` is readable for its length.
        match unsafe { (lib.append)(0, RecordType::Data as u16, id, buf.as_ptr(), buf.len()) } {
            1 => written += 1,
            _ => dropped += 1,
        }
    }
    // SAFETY: no arguments.
    let counted = unsafe { (lib.dropped)() };
    println!("  full disk: written {written}, dropped {dropped}, library counted {counted}");
    assert!(written > 1000, "segments that fit were used");
    assert!(dropped > 1000, "no drops on a full disk");
    assert_eq!(counted, dropped, "every drop is counted");

    // The reader consumes and deletes; space comes back; writing resumes.
    let mut follower = SegmentFollower::new(&dir, true);
    let mut read = 0u64;
    follower
        .poll(&mut |_, rec| read += u64::from(rec.header.rtype == RecordType::Data as u16))
        .expect("poll");
    assert_eq!(read, written, "every written record is read");
    std::fs::remove_file(&filler).expect("rm filler");
    std::thread::sleep(Duration::from_millis(50)); // past the writer's retry pause
    let mut resumed = 0;
    for id in 0..2000u64 {
        payload(id, &mut buf);
        // SAFETY: `buf` is readable for its length.
        resumed += unsafe { (lib.append)(0, RecordType::Data as u16, id, buf.as_ptr(), buf.len()) };
    }
    assert!(resumed > 1900, "writing resumed: {resumed}");
    let mut reported = 0u64;
    follower
        .poll(&mut |_, rec| {
            if rec.header.rtype == RecordType::Drops as u16 {
                reported += u64::from_le_bytes(rec.payload[..8].try_into().expect("8 bytes"));
            }
        })
        .expect("poll");
    println!("  after space came back: {resumed} written, Drops record reports {reported}");
    assert_eq!(
        reported, dropped,
        "the Drops record reports every dropped record"
    );
    // The mount goes away with this process's private namespace.
}
