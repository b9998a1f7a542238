//! The cost of the JVMTI agent's class-file work (`src/jvm/classfile.rs` and `wrap.rs`,
//! included by path; the rest of `src/jvm/` is the JVMTI side), on the
//! real classes of a JDK's java.base (a directory extracted with `jimage`): per class,
//! `class_name` (the cheap name read), a full parse, parse + write; and `wrap_methods` on
//! each JSSE target. Built and run by bench/jvm_classfile.sh. Prints ns per operation (thread
//! CPU time, and wall time).
#[allow(dead_code, unused_imports)]
#[path = "../src/jvm"]
mod jvm {
    pub mod classfile;
    pub mod wrap;
}

use jvm::wrap::Wrap;

/// `jvm::JSSE_TARGETS` (src/jvm/mod.rs, which this standalone build cannot include).
const JSSE_TARGETS: &[(&str, &[Wrap<'static>])] = &[
    ("sun/security/ssl/SSLSocketImpl$AppOutputStream", &[Wrap { method: "write", desc: "([BII)V" }]),
    ("sun/security/ssl/SSLSocketImpl$AppInputStream", &[Wrap { method: "read", desc: "([BII)I" }]),
    (
        "sun/security/ssl/SSLEngineImpl",
        &[
            Wrap {
                method: "wrap",
                desc: "([Ljava/nio/ByteBuffer;IILjava/nio/ByteBuffer;)Ljavax/net/ssl/SSLEngineResult;",
            },
            Wrap {
                method: "unwrap",
                desc: "(Ljava/nio/ByteBuffer;[Ljava/nio/ByteBuffer;II)Ljavax/net/ssl/SSLEngineResult;",
            },
        ],
    ),
];

use std::path::{Path, PathBuf};
use std::time::Instant;

fn classes(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            classes(&p, out);
        } else if p.extension().is_some_and(|x| x == "class") {
            out.push(p);
        }
    }
}

#[repr(C)]
struct Timespec {
    sec: i64,
    nsec: i64,
}
extern "C" {
    fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
}
const CLOCK_THREAD_CPUTIME_ID: i32 = 3;

/// CPU time of this thread in ns: on a shared, loaded machine the wall clock also counts
/// the time other processes held the CPU.
fn cpu_ns() -> u128 {
    let mut ts = Timespec { sec: 0, nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec (x86-64/aarch64 Linux layout).
    unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.sec as u128 * 1_000_000_000 + ts.nsec as u128
}

fn per_op(label: &str, ops: usize, f: impl FnOnce() -> u64) {
    let t = Instant::now();
    let c = cpu_ns();
    let sink = f();
    let cpu = (cpu_ns() - c) as f64 / ops as f64;
    let wall = t.elapsed().as_nanos() as f64 / ops as f64;
    println!("{label:<44} {cpu:>9.0} ns cpu {wall:>9.0} ns wall  ({ops} ops, check {sink})");
}

fn main() {
    let base = PathBuf::from(std::env::args().nth(1).expect("usage: jvm_classfile <java.base dir>"));
    let mut files = Vec::new();
    classes(&base, &mut files);
    let all: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    let bytes: usize = all.iter().map(Vec::len).sum();
    println!("{} classes, {} bytes (mean {} bytes)", all.len(), bytes, bytes / all.len().max(1));
    const ROUNDS: usize = 5;
    let n = all.len() * ROUNDS;
    per_op("class_name, per class", n, || {
        let mut s = 0;
        for _ in 0..ROUNDS {
            for c in &all {
                s += jvm::wrap::class_name(c).map_or(0, |n| n.len() as u64);
            }
        }
        s
    });
    per_op("parse, per class", n, || {
        let mut s = 0;
        for _ in 0..ROUNDS {
            for c in &all {
                s += jvm::classfile::ClassFile::parse(c).map_or(0, |cf| cf.methods.len() as u64);
            }
        }
        s
    });
    per_op("parse + write, per class", n, || {
        let mut s = 0;
        for _ in 0..ROUNDS {
            for c in &all {
                let cf = jvm::classfile::ClassFile::parse(c).unwrap();
                s += cf.write().unwrap().len() as u64;
            }
        }
        s
    });
    for (class, wraps) in JSSE_TARGETS {
        let c = std::fs::read(base.join(format!("{class}.class"))).expect("target class");
        const N: usize = 2000;
        per_op(&format!("wrap_methods {}", class.rsplit('/').next().unwrap()), N, || {
            let mut s = 0;
            for _ in 0..N {
                s += jvm::wrap::wrap_methods(&c, wraps).map_or(0, |o| o.len() as u64);
            }
            s
        });
    }
}
