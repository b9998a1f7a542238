//! How fast can a traced process hand captured bytes to the reader? One program, one
//! run, the same machine: each way of handing over N bytes, as a ratio to the physical
//! floor — `memcpy` of the same bytes into memory that is already faulted in.
//!
//! Rows (payloads of 1 MiB and of 256 bytes, a typical captured head):
//! - `http`: POST to a local HTTP server (another process) that acknowledges each body
//!   (keep-alive connection: the best case for this row).
//! - `file`: write to a new file in /tmp, then read it back.
//! - `ipc`: a Unix-domain socket to a reader process that acknowledges each message.
//! - `tapline file`: the library's per-record `writev` spool (`TAPLINE_SPOOL_MODE=file`).
//! - `tapline segment (ready)`: the library's shared-segment spool (the default), with
//!   the segments the burst needs made ahead by the reader (not timed); the claims and
//!   mappings of those segments (rename + `MAP_POPULATE` + `MADV_POPULATE_WRITE`) are
//!   timed, amortised over the records.
//! - `tapline segment (sustained)`: the same while a helper thread makes segments as the
//!   writer fills them (as `tapline run` does); when the writer outruns it, the writer
//!   makes its own (fallocate + fault in fresh pages, ~1.4 ms per 4 MiB here), so this
//!   row is bounded by how fast the kernel hands out fresh page-cache pages.
//! - `tapline segment (warm)`: the steady state of a Lambda function after its first
//!   invocations: the program writes a burst (8 MiB, or 10,000 small records; timed),
//!   then the reader reads everything and hands the full segments back (zeroed; not
//!   timed, as the extension does this after the response); the writer reuses them in
//!   place, with no syscall and no page fault.
//!
//! A record holds at most 1 MiB including its header, so 1 MiB goes to the spool as 16
//! records of 64 KiB, as the capture layer would cut it.
//!
//! Run: `cargo bench -p tapline --bench handoff` (builds release `libtapline.so`);
//! `HANDOFF_DIR=/dev/shm cargo bench ...` puts the spool and the files on tmpfs;
//! `HANDOFF_ROWS=warm,ready cargo bench ...` runs only those rows (http, file, ipc,
//! writev, ready, sustained, warm, first, setup); `HANDOFF_LIB=path` times that
//! `libtapline.so` instead of building this tree's; `HANDOFF_CLOCK=cpu` times the
//! tapline rows (not the first record, nor the floor) in the writer thread's CPU time.

use std::ffi::CString;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

type AppendFn = unsafe extern "C" fn(i32, u16, u64, *const u8, usize) -> i32;

const MODE_FILE: i32 = 1;
const MODE_SEGMENT: i32 = 2;
const DATA: u16 = 3;
const SEGMENT_BYTES: u64 = 4 << 20;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("handoff: bench");
        return;
    }
    if let Ok(dir) = std::env::var("HANDOFF_FIRST_RECORD") {
        first_record_child(&dir);
        return;
    }
    let lib = library();
    // HANDOFF_DIR=/dev/shm compares a tmpfs spool (no writeback) with the default /tmp.
    let base = std::env::var_os("HANDOFF_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("tapline-handoff-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("spool dir");
    set_mode_0700(&dir);
    std::env::set_var("TAPLINE_SPOOL_DIR", &dir);
    std::env::set_var("TAPLINE_SPOOL_MAX_BYTES", (1u64 << 50).to_string());
    std::env::set_var("TAPLINE_SPOOL_MAX_SEGMENTS", "100000");
    std::env::set_var("TAPLINE_SPOOL_FILE_BYTES", (1u64 << 40).to_string());
    let append = load(&lib);

    let http = HttpServer::start();
    let ipc = IpcReader::start();

    println!("tapline hand-off benchmark: ratio to memcpy into already-faulted memory");
    println!("spool and files in {}", base.display());
    println!("(best of 5 rounds per row; 2 CPUs shared with the readers)\n");
    for &(size, iters) in &[(1usize << 20, 100usize), (256usize, 100_000usize)] {
        let payload: Vec<u8> = (0..size).map(|i| (i * 131 % 251) as u8).collect();
        let floor = best(|| memcpy_floor(&payload, iters, 4 << 20));
        // The same into a pre-faulted region larger than the CPU caches: what writing
        // bytes that end up in fresh memory costs (a spool never rewrites hot lines).
        let cold = best(|| memcpy_floor(&payload, iters, 256 << 20));
        let mut rows: Vec<(&str, f64)> = vec![("memcpy, 256 MiB region", cold)];
        let small = size <= 4096;
        if want("http") {
            let n = if small { iters / 10 } else { iters };
            rows.push(("http POST + ack", best(|| http.post(&payload, n))));
        }
        if want("file") {
            let n = if small { iters / 10 } else { iters };
            rows.push((
                "new file + read back",
                best(|| file_roundtrip(&dir, &payload, n)),
            ));
        }
        if want("ipc") {
            rows.push(("unix socket + ack", best(|| ipc.send(&payload, iters))));
        }
        tapline_rows(append, &dir, &payload, iters, &mut rows);
        println!("payload {}:", human(size));
        println!("  {:<28} {:>12}   1.00x", "memcpy (floor)", ns(floor));
        for (name, t) in rows {
            println!("  {:<28} {:>12} {:>7.2}x", name, ns(t), t / floor);
        }
        println!();
    }
    if want("first") {
        first_record(&lib, &dir);
    }
    if want("setup") {
        segment_setup_costs(&dir);
    }
    http.stop();
    ipc.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

/// The rows of tapline's own writers: the file writer, and segments made ahead, made
/// while writing, and reused warm.
fn tapline_rows(
    append: AppendFn,
    dir: &Path,
    payload: &[u8],
    iters: usize,
    rows: &mut Vec<(&'static str, f64)>,
) {
    let size = payload.len();
    let small = size <= 4096;
    if want("writev") {
        let t = best(|| {
            clear_records(dir);
            spool(append, MODE_FILE, payload, iters)
        });
        rows.push(("tapline file (writev)", t));
        clear_records(dir);
    }
    if want("ready") {
        // The reader made enough segments ahead of the burst (not timed).
        let need = (iters * (size + 48 * (size / (64 << 10) + 1))) as u64 / SEGMENT_BYTES + 2;
        let t = best(|| {
            clear_records(dir);
            let _ = tapline::remove_free_segments(dir);
            tapline::make_free_segments(dir, need as usize, SEGMENT_BYTES).expect("free segments");
            spool(append, MODE_SEGMENT, payload, iters)
        });
        rows.push(("tapline segment (ready)", t));
        let _ = tapline::remove_free_segments(dir);
        clear_records(dir);
    }
    if want("sustained") {
        // A helper thread makes segments while the writer fills them, so the
        // writer makes its own whenever it outruns the helper.
        let refill = Refill::start(dir);
        let t = best(|| {
            clear_records(dir);
            spool(append, MODE_SEGMENT, payload, iters)
        });
        rows.push(("tapline segment (sustained)", t));
        refill.stop();
        clear_records(dir);
    }
    if want("warm") {
        // As in a Lambda function after its first invocations. The program writes
        // a burst (timed); then, as the extension does after the response, the
        // reader reads everything and hands the full segments back (not timed);
        // the writer reuses them in place on its next burst.
        let burst = if small { 10_000 } else { 8 };
        let mut warm = WarmSpool::new(dir);
        let t = best(|| warm.run(append, payload, iters, burst));
        rows.push(("tapline segment (warm)", t));
        drop(warm);
        clear_records(dir);
    }
}

/// In a fresh process (see `first_record`): times this process's first record.
fn first_record_child(dir: &str) {
    // A fresh process (see `first_record`): time this process's first record.
    let lib = PathBuf::from(std::env::var_os("HANDOFF_LIB").expect("HANDOFF_LIB"));
    std::env::set_var("TAPLINE_SPOOL_DIR", dir);
    let append = load(&lib);
    let payload = [7u8; 256];
    let t = Instant::now();
    // SAFETY: `payload` is readable for its length.
    let r = unsafe { append(MODE_SEGMENT, DATA, 1, payload.as_ptr(), payload.len()) };
    let ns = t.elapsed().as_nanos();
    assert_eq!(r, 1, "first record dropped");
    println!("{ns}");
}

/// Is row `key` selected? `HANDOFF_ROWS=warm,ready` runs only those (default: all of
/// http, file, ipc, writev, ready, sustained, warm).
fn want(key: &str) -> bool {
    match std::env::var("HANDOFF_ROWS") {
        Ok(rows) if !rows.trim().is_empty() => rows.split(',').any(|r| r.trim() == key),
        _ => true,
    }
}

/// Best (lowest) of 5 measurements, in ns per hand-off.
fn best(mut f: impl FnMut() -> f64) -> f64 {
    (0..5).map(|_| f()).fold(f64::INFINITY, f64::min)
}

fn ns(t: f64) -> String {
    if t >= 10_000.0 {
        format!("{:.1} µs", t / 1000.0)
    } else {
        format!("{t:.0} ns")
    }
}

fn human(n: usize) -> String {
    if n >= 1 << 20 {
        format!("{} MiB", n >> 20)
    } else {
        format!("{n} bytes")
    }
}

fn set_mode_0700(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
}

/// Builds release libtapline.so and returns its path; `HANDOFF_LIB=path` uses that
/// library instead (another build, e.g. main's, to compare: `bench/record_path_compare`).
fn library() -> PathBuf {
    if let Some(lib) = std::env::var_os("HANDOFF_LIB") {
        return PathBuf::from(lib);
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let status = Command::new(cargo)
        .args(["build", "-q", "--release", "-p", "libtapline", "--lib"])
        .current_dir(&root)
        .status()
        .expect("cargo build");
    assert!(status.success(), "building libtapline.so failed");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    target.join("release/libtapline.so")
}

fn load(lib: &Path) -> AppendFn {
    let path = CString::new(lib.as_os_str().as_encoded_bytes()).expect("path");
    // SAFETY: loading a library by path; its constructor only reads the environment.
    let handle = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    assert!(!handle.is_null(), "dlopen {}", lib.display());
    // SAFETY: `handle` is live; the name is NUL-terminated.
    let p = unsafe { libc::dlsym(handle, c"tapline_spool_append".as_ptr()) };
    assert!(!p.is_null(), "tapline_spool_append missing");
    // SAFETY: the exported function has this signature.
    unsafe { std::mem::transmute::<*mut libc::c_void, AppendFn>(p) }
}

/// The floor: `memcpy` into already-faulted memory, at advancing offsets of a region of
/// `region` bytes (as appends to a segment advance).
fn memcpy_floor(payload: &[u8], iters: usize, region: usize) -> f64 {
    let mut dst = vec![1u8; region];
    let mut at = 0;
    let t = Instant::now();
    for _ in 0..iters {
        if at + payload.len() > region {
            at = 0;
        }
        dst[at..at + payload.len()].copy_from_slice(payload);
        std::hint::black_box(&mut dst);
        at += (payload.len() + 48 + 7) & !7;
    }
    t.elapsed().as_nanos() as f64 / iters as f64
}

/// The library's spool writers, through its exported append.
fn spool(append: AppendFn, mode: i32, payload: &[u8], iters: usize) -> f64 {
    let chunk = 64 << 10;
    let t = clock_ns();
    for i in 0..iters {
        for part in payload.chunks(chunk) {
            // SAFETY: `part` is readable for its length.
            let r = unsafe { append(mode, DATA, i as u64, part.as_ptr(), part.len()) };
            assert_eq!(r, 1, "record dropped in the benchmark");
        }
    }
    (clock_ns() - t) as f64 / iters as f64
}

/// The clock the tapline rows are timed by: the monotonic clock, or with
/// `HANDOFF_CLOCK=cpu` this thread's CPU time (on a machine shared with other work,
/// time the writer spent preempted is not the writer's cost; its own system calls and
/// page faults still count).
fn clock_ns() -> u64 {
    let id = if std::env::var("HANDOFF_CLOCK").is_ok_and(|c| c == "cpu") {
        libc::CLOCK_THREAD_CPUTIME_ID
    } else {
        libc::CLOCK_MONOTONIC
    };
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(id, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The segment spool in its steady state: bursts of appends, each followed by the
/// reader (the real `SegmentFollower`) consuming everything and handing full
/// segments back for reuse.
struct WarmSpool {
    follower: tapline::SegmentFollower,
    warmed: bool,
}

impl WarmSpool {
    fn new(dir: &Path) -> WarmSpool {
        WarmSpool {
            follower: tapline::SegmentFollower::new(dir, true),
            warmed: false,
        }
    }

    /// Reads everything committed (twice: a segment finished by the first poll is
    /// handed back in it; the second sees nothing new).
    fn drain(&mut self) {
        for _ in 0..2 {
            self.follower.poll(&mut |_, _| {}).expect("reader poll");
        }
    }

    /// `iters` hand-offs in bursts of `burst`; returns ns per hand-off, appends only.
    fn run(&mut self, append: AppendFn, payload: &[u8], iters: usize, burst: usize) -> f64 {
        if !self.warmed {
            // The first bursts claim and map segments (the cold start); not timed. The
            // pause lets the writer give up segments parked by the rows before, which
            // no reader consumed (it does so after a second).
            for _ in 0..3 {
                spool(append, MODE_SEGMENT, payload, burst);
                self.drain();
                std::thread::sleep(Duration::from_millis(600));
            }
            self.warmed = true;
        }
        let before = self.follower.stats.recycled;
        let mut total = 0.0;
        let mut done = 0;
        while done < iters {
            let n = burst.min(iters - done);
            total += spool(append, MODE_SEGMENT, payload, n) * n as f64;
            done += n;
            self.drain();
        }
        assert!(
            self.follower.stats.recycled > before,
            "the warm row reused no segment"
        );
        total / iters as f64
    }
}

/// Removes the records written so far (not timed).
fn clear_records(dir: &Path) {
    for e in std::fs::read_dir(dir).expect("dir").flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        // (A ready-made segment a writer claimed where it is holds records too until a
        // reader names it: its header begins with the segment magic.)
        let claimed_free = name.starts_with("free-") && {
            use std::io::Read;
            let mut magic = [0u8; 8];
            std::fs::File::open(e.path())
                .and_then(|mut f| f.read_exact(&mut magic))
                .is_ok()
                && &magic == b"TLSEG001"
        };
        if name.ends_with(".tlr") || tapline::is_segment_name(&name) || claimed_free {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Keeps two ready-made segments in the spool, as `tapline run` does.
struct Refill {
    dir: PathBuf,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Refill {
    fn start(dir: &Path) -> Refill {
        tapline::make_free_segments(dir, 2, SEGMENT_BYTES).expect("free segments");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let d = dir.to_owned();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                let _ = tapline::make_free_segments(&d, 2, SEGMENT_BYTES);
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        Refill {
            dir: dir.to_owned(),
            stop,
            thread,
        }
    }
    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        let _ = tapline::remove_free_segments(&self.dir);
    }
}

/// Write a new file in the spool's filesystem (/tmp), read it back.
fn file_roundtrip(dir: &Path, payload: &[u8], iters: usize) -> f64 {
    let mut back = vec![0u8; payload.len()];
    let mut total = Duration::ZERO;
    for i in 0..iters {
        let path = dir.join(format!("handoff-{i}.bin"));
        let t = Instant::now();
        std::fs::File::create(&path)
            .and_then(|mut f| f.write_all(payload))
            .expect("write");
        std::fs::File::open(&path)
            .and_then(|mut f| f.read_exact(&mut back))
            .expect("read back");
        total += t.elapsed();
        let _ = std::fs::remove_file(&path);
    }
    total.as_nanos() as f64 / iters as f64
}

/// A local HTTP server in another process: reads each request's body, answers 200.
struct HttpServer {
    pid: libc::pid_t,
    stream: std::cell::RefCell<std::net::TcpStream>,
}

impl HttpServer {
    fn start() -> HttpServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        // SAFETY: the child only serves the listener and exits with _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            if let Ok((mut s, _)) = listener.accept() {
                let _ = s.set_nodelay(true);
                let mut body = vec![0u8; 2 << 20];
                'conn: loop {
                    let mut head = Vec::new();
                    while !head.ends_with(b"\r\n\r\n") {
                        let mut b = [0u8; 1];
                        if s.read(&mut b).unwrap_or(0) == 0 {
                            break 'conn;
                        }
                        head.push(b[0]);
                    }
                    let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
                    let len: usize = text
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if s.read_exact(&mut body[..len]).is_err() {
                        break;
                    }
                    if s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                        .is_err()
                    {
                        break;
                    }
                }
            }
            // SAFETY: leaving the forked child.
            unsafe { libc::_exit(0) };
        }
        let stream = std::net::TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        HttpServer {
            pid,
            stream: std::cell::RefCell::new(stream),
        }
    }

    fn post(&self, payload: &[u8], iters: usize) -> f64 {
        let mut s = self.stream.borrow_mut();
        let head = format!(
            "POST /capture HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n",
            payload.len()
        );
        let mut reply = [0u8; 38];
        let t = Instant::now();
        for _ in 0..iters {
            s.write_all(head.as_bytes()).expect("post head");
            s.write_all(payload).expect("post body");
            s.read_exact(&mut reply).expect("ack");
        }
        t.elapsed().as_nanos() as f64 / iters as f64
    }

    fn stop(self) {
        // SAFETY: ending and reaping our own child (other children hold copies of
        // our socket, so it would not see end-of-file).
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
            libc::waitpid(self.pid, std::ptr::null_mut(), 0);
        }
    }
}

/// A reader process on a Unix-domain socket: reads each message (length-prefixed),
/// answers one byte.
struct IpcReader {
    pid: libc::pid_t,
    stream: std::cell::RefCell<UnixStream>,
}

impl IpcReader {
    fn start() -> IpcReader {
        let (mine, theirs) = UnixStream::pair().expect("socketpair");
        // SAFETY: the child only serves its socket and exits with _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            drop(mine);
            let mut s = theirs;
            let mut buf = vec![0u8; 2 << 20];
            loop {
                let mut len = [0u8; 8];
                if s.read_exact(&mut len).is_err() {
                    break;
                }
                let n = u64::from_le_bytes(len) as usize;
                if s.read_exact(&mut buf[..n]).is_err() || s.write_all(b"k").is_err() {
                    break;
                }
            }
            // SAFETY: leaving the forked child.
            unsafe { libc::_exit(0) };
        }
        drop(theirs);
        IpcReader {
            pid,
            stream: std::cell::RefCell::new(mine),
        }
    }

    fn send(&self, payload: &[u8], iters: usize) -> f64 {
        let mut s = self.stream.borrow_mut();
        let mut ack = [0u8; 1];
        let t = Instant::now();
        for _ in 0..iters {
            s.write_all(&(payload.len() as u64).to_le_bytes())
                .expect("len");
            s.write_all(payload).expect("payload");
            s.read_exact(&mut ack).expect("ack");
        }
        t.elapsed().as_nanos() as f64 / iters as f64
    }

    fn stop(self) {
        // SAFETY: ending and reaping our own child.
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
            libc::waitpid(self.pid, std::ptr::null_mut(), 0);
        }
    }
}

/// What a process's first record costs (the claim of its first segment, at a Lambda
/// function's cold start), with two segments made ahead by the reader: median of 9
/// fresh processes.
fn first_record(lib: &Path, dir: &Path) {
    let me = std::env::current_exe().expect("own path");
    let mut times: Vec<u64> = (0..9)
        .map(|_| {
            clear_records(dir);
            let _ = tapline::remove_free_segments(dir);
            tapline::make_free_segments(dir, 2, SEGMENT_BYTES).expect("free segments");
            let out = Command::new(&me)
                .env("HANDOFF_FIRST_RECORD", dir)
                .env("HANDOFF_LIB", lib)
                .output()
                .expect("run the first-record probe");
            assert!(out.status.success(), "first-record probe failed");
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .expect("probe output")
        })
        .collect();
    times.sort_unstable();
    clear_records(dir);
    let _ = tapline::remove_free_segments(dir);
    println!(
        "first record of a process (claims a ready-made 4 MiB segment; median of 9): {:.1} µs\n",
        times[times.len() / 2] as f64 / 1000.0
    );
}

/// What claiming a segment costs, paid at a process's first record and at each
/// rotation: mapping a ready-made (cached) segment with MAP_POPULATE, then write-faulting
/// it (MADV_POPULATE_WRITE), versus making one from nothing (fallocate + the same).
fn segment_setup_costs(dir: &Path) {
    use std::os::fd::AsRawFd;
    let size = SEGMENT_BYTES as usize;
    let map = |f: &std::fs::File| -> (Duration, Duration) {
        let t = Instant::now();
        // SAFETY: mapping `size` bytes of a file we own; unmapped below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                f.as_raw_fd(),
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED);
        let populate = t.elapsed();
        let t = Instant::now();
        // SAFETY: `p` maps `size` bytes.
        unsafe { libc::madvise(p, size, libc::MADV_POPULATE_WRITE) };
        let write_fault = t.elapsed();
        // SAFETY: as above.
        unsafe { libc::munmap(p, size) };
        (populate, write_fault)
    };
    let mut ready = Vec::new();
    let mut fresh = Vec::new();
    for i in 0..5 {
        let path = dir.join(format!("setup-ready-{i}"));
        std::fs::write(&path, vec![0u8; size]).expect("ready segment");
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .expect("open");
        ready.push(map(&f));
        let path2 = dir.join(format!("setup-fresh-{i}"));
        let f2 = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path2)
            .expect("create");
        let t = Instant::now();
        // SAFETY: fallocate on a file we own.
        unsafe { libc::fallocate(f2.as_raw_fd(), 0, 0, size as libc::off_t) };
        let alloc = t.elapsed();
        let (p, w) = map(&f2);
        fresh.push((alloc + p, w));
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(&path2);
    }
    let med = |v: &mut Vec<(Duration, Duration)>| {
        v.sort();
        v[v.len() / 2]
    };
    let (rp, rw) = med(&mut ready);
    let (fp, fw) = med(&mut fresh);
    println!("segment setup, 4 MiB (median of 5):");
    println!(
        "  ready-made (cached): mmap+MAP_POPULATE {:.0} µs, MADV_POPULATE_WRITE {:.0} µs",
        rp.as_secs_f64() * 1e6,
        rw.as_secs_f64() * 1e6
    );
    println!(
        "  made on the spot:    fallocate+mmap+MAP_POPULATE {:.0} µs, MADV_POPULATE_WRITE {:.0} µs",
        fp.as_secs_f64() * 1e6,
        fw.as_secs_f64() * 1e6
    );
}
