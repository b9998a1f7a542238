//! Tests of the class-file reader/writer and the wrapper: on the real class bytes of the
//! JDKs here, and on wrapped classes that a real JVM verifies (`-Xverify:all`) and runs with
//! natives compiled by gcc. Needs a JDK 17 (`javac`, `java`, `jimage`; CI installs
//! Debian's) and gcc: a missing tool fails the test. JDK 25 (Temurin) is used where present.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::classfile::{
    ClassError, ClassFile, ACC_NATIVE, ACC_PRIVATE, ACC_PUBLIC, ACC_STATIC, ACC_SYNCHRONIZED,
};
use super::wrap::{class_name, native_methods, wrap_methods, Shape, Wrap};
use super::JSSE_TARGETS;

// ---------------------------------------------------------------------------------------
// Tools

struct Jdk {
    label: &'static str,
    home: PathBuf,
}

impl Jdk {
    fn tool(&self, name: &str) -> PathBuf {
        let p = self.home.join("bin").join(name);
        assert!(
            p.exists(),
            "{} has no {name}: install a full JDK (scripts/setup)",
            self.label
        );
        p
    }
}

/// Debian's JDK 17 (required), then Temurin 25 where present.
fn jdks() -> Vec<Jdk> {
    let mut out = Vec::new();
    let jdk17 = std::fs::read_dir("/usr/lib/jvm")
        .ok()
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.starts_with("java-17-openjdk-") && p.join("bin/javac").exists()
        })
        .min();
    let jdk17 = jdk17.expect(
        "JDK 17 not found under /usr/lib/jvm (java-17-openjdk-*): scripts/setup installs it",
    );
    out.push(Jdk {
        label: "JDK 17",
        home: jdk17,
    });
    let t25 = PathBuf::from(if cfg!(target_arch = "aarch64") {
        "/usr/lib/jvm/temurin-25-jdk-arm64"
    } else {
        "/usr/lib/jvm/temurin-25-jdk-amd64"
    });
    if t25.join("bin/javac").exists() {
        out.push(Jdk {
            label: "JDK 25",
            home: t25,
        });
    } else {
        eprintln!("JDK 25 absent ({}): tested on JDK 17 only", t25.display());
    }
    out
}

/// Runs a command to success and returns its stdout; panics with its output otherwise.
fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {:?}: {e} (is it installed?)", cmd.get_program()));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A fresh directory under target/ for one test.
fn scratch(tag: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/jvm-tests")
        .join(tag);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/jvm/testdata")
        .join(name)
}

/// java.base of a JDK, extracted once with `jimage` into target/jvm-classes/ (kept between
/// runs, keyed by the size and mtime of lib/modules).
fn java_base(jdk: &Jdk) -> PathBuf {
    static CACHE: OnceLock<std::sync::Mutex<()>> = OnceLock::new();
    let _one_at_a_time = CACHE.get_or_init(Default::default).lock();
    let modules = jdk.home.join("lib/modules");
    let meta = std::fs::metadata(&modules).expect("lib/modules of the JDK");
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    let key = format!(
        "{}-{}-{mtime}",
        jdk.home.file_name().unwrap().to_string_lossy(),
        meta.len()
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/jvm-classes");
    let dir = root.join(&key);
    if !dir.join("complete").exists() {
        let tmp = root.join(format!("{key}.tmp"));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).unwrap();
        run(Command::new(jdk.tool("jimage"))
            .args(["extract", "--include", "regex:/java.base/.*", "--dir"])
            .arg(&tmp)
            .arg(&modules));
        std::fs::write(tmp.join("complete"), "").unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::rename(&tmp, &dir).unwrap();
    }
    dir.join("java.base")
}

fn class_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            class_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "class") {
            out.push(p);
        }
    }
}

// ---------------------------------------------------------------------------------------
// The real JDK classes

/// [`JSSE_TARGETS`] plus the internal six-argument `wrap`/`unwrap` the four-argument ones
/// delegate to: wrapping all of them tests overloads (two natives of one name) and shows
/// the delegation in the hooks' output.
fn all_targets() -> Vec<(&'static str, Vec<Wrap<'static>>)> {
    const SIX: &str =
        "([Ljava/nio/ByteBuffer;II[Ljava/nio/ByteBuffer;II)Ljavax/net/ssl/SSLEngineResult;";
    JSSE_TARGETS
        .iter()
        .map(|(class, wraps)| {
            let mut wraps = wraps.to_vec();
            if class.ends_with("SSLEngineImpl") {
                wraps.push(Wrap {
                    method: "wrap",
                    desc: SIX,
                });
                wraps.push(Wrap {
                    method: "unwrap",
                    desc: SIX,
                });
            }
            (*class, wraps)
        })
        .collect()
}

/// Every class of java.base, on every JDK here, parses and writes back byte for byte, and
/// `class_name` agrees with its path.
#[test]
fn every_java_base_class_round_trips() {
    for jdk in jdks() {
        let base = java_base(&jdk);
        let mut files = Vec::new();
        class_files(&base, &mut files);
        assert!(
            files.len() > 5000,
            "{}: only {} classes in java.base",
            jdk.label,
            files.len()
        );
        for f in &files {
            let bytes = std::fs::read(f).unwrap();
            let cf = ClassFile::parse(&bytes)
                .unwrap_or_else(|e| panic!("{}: {}: {e}", jdk.label, f.display()));
            assert!(
                cf.write().unwrap() == bytes,
                "{}: {} differs when written",
                jdk.label,
                f.display()
            );
            let rel = f.strip_prefix(&base).unwrap().with_extension("");
            assert_eq!(class_name(&bytes), rel.to_str(), "{}", f.display());
        }
        eprintln!(
            "{}: {} classes of java.base round-trip",
            jdk.label,
            files.len()
        );
    }
}

/// The JSSE targets wrap on every JDK here, the result has the promised shape, and the
/// other overloads are left alone.
#[test]
fn jsse_targets_wrap_on_every_jdk() {
    for jdk in jdks() {
        let base = java_base(&jdk);
        let targets = JSSE_TARGETS
            .iter()
            .map(|(c, w)| (*c, w.to_vec()))
            .chain(all_targets());
        for (class, wraps) in targets {
            let wraps = &wraps[..];
            let bytes = std::fs::read(base.join(format!("{class}.class"))).unwrap();
            let out = wrap_methods(&bytes, wraps)
                .unwrap_or_else(|s| panic!("{}: {class}: refused: {s}", jdk.label));
            let before = ClassFile::parse(&bytes).unwrap();
            let after = ClassFile::parse(&out).unwrap();
            assert_eq!(after.methods.len(), before.methods.len() + 3 * wraps.len());
            for w in wraps {
                check_wrapped(&before, &after, w);
            }
            // Wrapping again is refused: the class was wrapped before.
            assert_eq!(
                wrap_methods(&out, wraps),
                Err(Shape("the class was wrapped before"))
            );
        }
    }
}

/// The flags and names `wrap_methods` promises for one wrap.
fn check_wrapped(before: &ClassFile, after: &ClassFile, w: &Wrap) {
    let find = |cf: &ClassFile, name: &str, desc: &str| {
        let m: Vec<_> = cf
            .methods
            .iter()
            .filter(|m| {
                cf.utf8(m.name) == Some(name.as_bytes())
                    && cf.utf8(m.descriptor) == Some(desc.as_bytes())
            })
            .collect();
        assert_eq!(m.len(), 1, "{name}{desc}");
        m[0].clone()
    };
    let orig = find(before, w.method, w.desc);
    let renamed = find(after, &format!("tapline${}", w.method), w.desc);
    assert_eq!(renamed.access & (ACC_PUBLIC | 0x0004), 0);
    assert_eq!(renamed.access & ACC_PRIVATE, ACC_PRIVATE);
    assert_eq!(
        renamed.access & !(ACC_PUBLIC | 0x0004 | ACC_PRIVATE),
        orig.access & !(ACC_PUBLIC | 0x0004 | ACC_PRIVATE)
    );
    assert_eq!(renamed.attributes, orig.attributes);
    let wrapper = find(after, w.method, w.desc);
    assert_eq!(wrapper.access, orig.access & !ACC_SYNCHRONIZED);
    for (n, d) in native_methods(w) {
        let m = find(after, &n, &d);
        assert_eq!(m.access, ACC_PRIVATE | ACC_STATIC | ACC_NATIVE);
        assert!(m.attributes.is_empty());
    }
}

/// The wrapped JDK classes, patched into java.base, pass the verifier and carry real TLS:
/// an SSLSocket ping/pong and an SSLEngine exchange, with the natives bound by
/// `RegisterNatives` as the agent does. The program's own output is the same as without.
#[test]
fn wrapped_jsse_classes_verify_and_run() {
    for jdk in jdks() {
        let tag = jdk.label.replace(' ', "");
        let dir = scratch(&format!("jsse-{tag}"));
        let base = java_base(&jdk);
        let patch = dir.join("patch");
        for (class, wraps) in all_targets() {
            let bytes = std::fs::read(base.join(format!("{class}.class"))).unwrap();
            let out = wrap_methods(&bytes, &wraps).unwrap();
            let path = patch.join(format!("{class}.class"));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, out).unwrap();
        }
        let lib = dir.join("libjsse.so");
        gcc(&jdk, &testdata("jsse_natives.c"), &lib);
        let probe = JsseProbe::build(&jdk, &dir);
        let plain = probe.run(None, None);
        let wrapped = probe.run(Some(&patch), Some(&lib));
        let (own, hooks): (Vec<&str>, Vec<&str>) = wrapped.lines().partition(|l| {
            !l.starts_with("pre ") && !l.starts_with("post ") && !l.starts_with("bound ")
        });
        assert_eq!(
            own,
            plain.lines().collect::<Vec<_>>(),
            "{}: the program's output changed",
            jdk.label
        );
        assert!(plain.contains("client got pong:ping"), "{plain}");
        assert!(
            plain.contains("engine client got engine says hi"),
            "{plain}"
        );
        assert!(plain.contains("engine server got hello engine"), "{plain}");
        for c in ["AppOutputStream", "AppInputStream", "SSLEngineImpl"] {
            assert!(
                hooks
                    .iter()
                    .any(|l| l.starts_with("bound ") && l.ends_with(c)),
                "{}: {c} not bound:\n{wrapped}",
                jdk.label
            );
        }
        assert!(!wrapped.contains("cannot bind"), "{wrapped}");
        // Every post has its pre (same method, same token); the plaintext is seen.
        let pres: BTreeSet<(&str, &str)> = hooks
            .iter()
            .filter_map(|l| l.strip_prefix("pre "))
            .map(|l| {
                let mut f = l.split(' ');
                (f.next().unwrap(), f.next().unwrap())
            })
            .collect();
        let posts: Vec<&str> = hooks
            .iter()
            .filter_map(|l| l.strip_prefix("post "))
            .collect();
        for p in &posts {
            let mut f = p.split(' ');
            let key = (f.next().unwrap(), f.next().unwrap());
            assert!(
                pres.contains(&key),
                "{}: post without pre: {p}\n{wrapped}",
                jdk.label
            );
        }
        let has = |prefix: &str, suffix: &str| {
            posts
                .iter()
                .any(|p| p.starts_with(prefix) && p.ends_with(suffix))
        };
        assert!(
            has("write ", " ping"),
            "{}: no plaintext write:\n{wrapped}",
            jdk.label
        );
        assert!(has("write ", " pong:ping"), "{}:\n{wrapped}", jdk.label);
        assert!(
            has("read ", " 4 ping"),
            "{}: no plaintext read:\n{wrapped}",
            jdk.label
        );
        assert!(has("read ", " 9 pong:ping"), "{}:\n{wrapped}", jdk.label);
        for m in ["wrap4 ", "wrap6 ", "unwrap4 ", "unwrap6 "] {
            assert!(
                posts.iter().any(|p| p.starts_with(m)),
                "{}: no {m}:\n{wrapped}",
                jdk.label
            );
        }
        // The 4-argument overloads go through the 6-argument ones (the central pair).
        assert!(has("wrap6 ", "") && has("unwrap6 ", ""));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// testdata/JsseProbe.java compiled, with a fresh keystore: runs against a patched
/// java.base and with natives, or as is.
struct JsseProbe<'a> {
    jdk: &'a Jdk,
    classes: PathBuf,
    keystore: PathBuf,
}

impl<'a> JsseProbe<'a> {
    fn build(jdk: &'a Jdk, dir: &Path) -> Self {
        let classes = dir.join("classes");
        run(Command::new(jdk.tool("javac"))
            .arg("-d")
            .arg(&classes)
            .arg(testdata("JsseProbe.java")));
        let keystore = dir.join("ks.p12");
        run(Command::new(jdk.tool("keytool"))
            .args([
                "-genkeypair",
                "-keyalg",
                "EC",
                "-alias",
                "probe",
                "-dname",
                "CN=localhost",
            ])
            .args([
                "-validity",
                "2",
                "-storetype",
                "PKCS12",
                "-storepass",
                "secret123",
            ])
            .arg("-keystore")
            .arg(&keystore));
        JsseProbe {
            jdk,
            classes,
            keystore,
        }
    }

    fn run(&self, patch: Option<&Path>, natives: Option<&Path>) -> String {
        let mut cmd = Command::new(self.jdk.tool("java"));
        cmd.arg("-Xverify:all");
        if let Some(p) = patch {
            cmd.arg(format!("--patch-module=java.base={}", p.display()));
        }
        cmd.arg("-cp").arg(&self.classes).arg("JsseProbe");
        cmd.arg(natives.map_or("-".into(), |l| l.display().to_string()));
        cmd.arg(&self.keystore).arg("secret123");
        run(&mut cmd)
    }
}

/// The "deliberately altered class": `SSLSocketImpl$AppOutputStream` with one more
/// method, a private no-op `tapline$write([BII)V`. The JVM loads it and TLS runs as
/// before; `wrap_methods` refuses it (it looks wrapped already), so the agent would load
/// it untouched.
#[test]
fn altered_jdk_class_is_refused_and_runs_unchanged() {
    use super::classfile::{Attribute, Member};
    let jdk = jdks().remove(0);
    let dir = scratch("altered");
    let class = "sun/security/ssl/SSLSocketImpl$AppOutputStream";
    let bytes = std::fs::read(java_base(&jdk).join(format!("{class}.class"))).unwrap();
    let mut cf = ClassFile::parse(&bytes).unwrap();
    let name = cf.add_utf8(b"tapline$write").unwrap();
    let descriptor = cf.add_utf8(b"([BII)V").unwrap();
    let code = cf.add_utf8(b"Code").unwrap();
    // max_stack 0, max_locals 4 (this, byte[], int, int), code: return.
    let info = vec![0, 0, 0, 4, 0, 0, 0, 1, 0xb1, 0, 0, 0, 0];
    cf.methods.push(Member {
        access: ACC_PRIVATE,
        name,
        descriptor,
        attributes: vec![Attribute { name: code, info }],
    });
    let altered = cf.write().unwrap();
    let wraps = [Wrap {
        method: "write",
        desc: "([BII)V",
    }];
    assert_eq!(
        wrap_methods(&altered, &wraps),
        Err(Shape("the class was wrapped before"))
    );
    let patch = dir.join("patch");
    let path = patch.join(format!("{class}.class"));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, &altered).unwrap();
    let probe = JsseProbe::build(&jdk, &dir);
    let plain = probe.run(None, None);
    assert!(plain.contains("client got pong:ping"), "{plain}");
    assert_eq!(probe.run(Some(&patch), None), plain);
    let _ = std::fs::remove_dir_all(&dir);
}

fn gcc(jdk: &Jdk, src: &Path, out: &Path) {
    let inc = jdk.home.join("include");
    run(Command::new("gcc")
        .args(["-shared", "-fPIC", "-O1", "-Wall", "-o"])
        .arg(out)
        .arg(src)
        .arg(format!("-I{}", inc.display()))
        .arg(format!("-I{}", inc.join("linux").display())));
}

// ---------------------------------------------------------------------------------------
// A class of our own: every kind of value, run under -Xverify:all

fn target_wraps() -> Vec<Wrap<'static>> {
    [
        ("add", "(IJD)I"),
        ("mul", "(JI)J"),
        ("half", "(DF)D"),
        ("greet", "(Ljava/lang/String;[IBCSZ)Ljava/lang/String;"),
        ("twice", "([I)[I"),
        ("touch", "([BII)V"),
        ("boom", "(I)I"),
        ("scale", "(F)F"),
        ("odd", "(I)Z"),
    ]
    .into_iter()
    .map(|(method, desc)| Wrap { method, desc })
    .collect()
}

/// What the natives of testdata/natives.c print for testdata/Main.java.
const TARGET_HOOKS: &str = "\
pre add Target(t1) 1 2 3.500000 -> 100
post add 100 Target(t1) 1 2 3.500000 = 6
pre mul Target(t1) 1099511627776 3 -> 101
post mul 101 Target(t1) 1099511627776 3 = 3298534883328
pre half Target(t1) 5.000000 0.250000 -> 102
post half 102 Target(t1) 5.000000 0.250000 = 2.750000
pre greet Target(t1) you [1,2,3] -7 x 300 1 -> 103
post greet 103 Target(t1) you [1,2,3] -7 x 300 1 = t1 greets you 3 -7x300true
pre twice Target(t1) [4,5] -> 104
post twice 104 Target(t1) [4,5] = [8,10]
pre touch Target(t1) 0,0,0,0 2 1 -> 105
post touch 105 Target(t1) 0,0,42,0 2 1
pre boom Target(t1) 9 -> 106
pre touch Target(t1) 0,0,42,0 0 -1 -> 107
pre scale Target(t1) 2.000000 -> 108
post scale 108 Target(t1) 2.000000 = 3.000000
pre odd Target(t1) 3 -> 109
post odd 109 Target(t1) 3 = 1
pre odd Target(t1) 4 -> 110
post odd 110 Target(t1) 4 = 0
";

/// Target's methods wrapped, verified and run: pre and post see `this`, every argument,
/// the token and the result; exceptions propagate without post; the program's output and
/// the reflected throws clause and flags are unchanged. On each JDK, for its own class
/// version and (JDK 17) for Java 8 class files too.
#[test]
fn wrapped_methods_verify_and_see_arguments_token_and_result() {
    for jdk in jdks() {
        let mut releases = vec![None];
        if jdk.label == "JDK 17" {
            releases.push(Some("8"));
        }
        for release in releases {
            let tag = format!(
                "target-{}-{}",
                jdk.label.replace(' ', ""),
                release.unwrap_or("own")
            );
            let dir = scratch(&tag);
            let plain = dir.join("plain");
            let mut javac = Command::new(jdk.tool("javac"));
            if let Some(r) = release {
                javac.args(["--release", r]);
            }
            run(javac
                .arg("-d")
                .arg(&plain)
                .arg(testdata("Target.java"))
                .arg(testdata("Main.java")));
            let wrapped = dir.join("wrapped");
            std::fs::create_dir_all(&wrapped).unwrap();
            std::fs::copy(plain.join("Main.class"), wrapped.join("Main.class")).unwrap();
            let bytes = std::fs::read(plain.join("Target.class")).unwrap();
            let out =
                wrap_methods(&bytes, &target_wraps()).unwrap_or_else(|s| panic!("{tag}: {s}"));
            std::fs::write(wrapped.join("Target.class"), out).unwrap();
            let lib = dir.join("libnatives.so");
            gcc(&jdk, &testdata("natives.c"), &lib);

            let java = |cp: &Path, lib: Option<&Path>| {
                let mut cmd = Command::new(jdk.tool("java"));
                cmd.arg("-Xverify:all").arg("-cp").arg(cp).arg("Main");
                if let Some(l) = lib {
                    cmd.arg(l);
                }
                run(&mut cmd)
            };
            let before = java(&plain, None);
            let after = java(&wrapped, Some(&lib));
            let (hooks, own): (Vec<&str>, Vec<&str>) = after
                .lines()
                .partition(|l| l.starts_with("pre ") || l.starts_with("post "));
            assert_eq!(
                own,
                before.lines().collect::<Vec<_>>(),
                "{tag}: output changed"
            );
            assert_eq!(
                hooks,
                TARGET_HOOKS.lines().collect::<Vec<_>>(),
                "{tag}:\n{after}"
            );
            assert!(
                before.contains("caught boom 9")
                    && before.contains("touch throws [class java.io.IOException] public")
            );
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

/// The slot limit: a method whose post native takes exactly 255 slots wraps and runs (the
/// result's local is slot 252, max_stack 255); one more slot is refused.
#[test]
fn widest_method_wraps_and_one_slot_more_is_refused() {
    let jdk = jdks().remove(0);
    let dir = scratch("wide");
    let longs = |n: usize| {
        (0..n)
            .map(|i| format!("long a{i}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let java = format!(
        "public class Wide {{\n\
         public int many({}, int x) {{ return (int) (a0 + a124) + x; }}\n\
         public long toomany({}) {{ return a0; }}\n\
         public void voidmany({}) {{ }}\n\
         public static void main(String[] args) {{\n\
           System.load(args[0]);\n\
           System.out.println(\"many \" + new Wide().many({}, 1000));\n\
         }}\n}}\n",
        longs(125),
        longs(126),
        longs(126),
        (1..=125)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(", "),
    );
    std::fs::write(dir.join("Wide.java"), java).unwrap();
    let jl = |n: usize| {
        (0..n)
            .map(|i| format!("jlong a{i}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let c = format!(
        "#include <jni.h>\n#include <stdio.h>\n#include <unistd.h>\n\
         static void say(const char *s) {{ (void)!write(1, s, __builtin_strlen(s)); }}\n\
         JNIEXPORT jlong JNICALL Java_Wide_tapline_00024many_00024pre(JNIEnv *e, jclass k, jobject self, {}, jint x) {{\n\
           char b[128]; snprintf(b, sizeof b, \"pre many %lld %lld %d\\n\", (long long)a0, (long long)a124, x); say(b); return 77; }}\n\
         JNIEXPORT void JNICALL Java_Wide_tapline_00024many_00024post(JNIEnv *e, jclass k, jlong t, jobject self, {}, jint x, jint r) {{\n\
           char b[128]; snprintf(b, sizeof b, \"post many %lld %lld %lld %d = %d\\n\", (long long)t, (long long)a0, (long long)a124, x, r); say(b); }}\n",
        jl(125),
        jl(125)
    );
    std::fs::write(dir.join("wide.c"), c).unwrap();
    run(Command::new(jdk.tool("javac"))
        .arg("-d")
        .arg(&dir)
        .arg(dir.join("Wide.java")));
    let class = dir.join("Wide.class");
    let bytes = std::fs::read(&class).unwrap();
    let many_desc = format!("({}I)I", "J".repeat(125));
    let too_desc = format!("({})J", "J".repeat(126));
    let void_desc = format!("({})V", "J".repeat(126));
    let many = Wrap {
        method: "many",
        desc: &many_desc,
    };
    assert_eq!(
        wrap_methods(
            &bytes,
            &[Wrap {
                method: "toomany",
                desc: &too_desc
            }]
        ),
        Err(Shape("too many argument slots"))
    );
    // 252 argument slots and no result: post takes 255, allowed.
    assert!(wrap_methods(
        &bytes,
        &[Wrap {
            method: "voidmany",
            desc: &void_desc
        }]
    )
    .is_ok());
    let out = wrap_methods(&bytes, &[many]).unwrap();
    std::fs::write(&class, out).unwrap();
    let lib = dir.join("libwide.so");
    gcc(&jdk, &dir.join("wide.c"), &lib);
    let got = run(Command::new(jdk.tool("java"))
        .arg("-Xverify:all")
        .arg("-cp")
        .arg(&dir)
        .arg("Wide")
        .arg(&lib));
    assert_eq!(
        got,
        "pre many 1 125 1000\npost many 77 1 125 1000 = 1126\nmany 1126\n"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------------
// Refusals and garbage (no JDK needed: a class file of our own, built by the writer)

/// A minimal class `T` with an instance method `m(I)I`, a static `s()V` and an abstract
/// `a()V` (the code bodies are not run).
fn tiny_class() -> Vec<u8> {
    use super::classfile::{Attribute, Constant, Member};
    let mut cf = ClassFile {
        minor: 0,
        major: 61,
        pool: vec![Constant::Unusable],
        access: ACC_PUBLIC | 0x0400,
        this_class: 0,
        super_class: 0,
        interfaces: vec![],
        fields: vec![],
        methods: vec![],
        attributes: vec![],
    };
    let t = cf.add_utf8(b"T").unwrap();
    cf.this_class = cf.add(Constant::Class { name: t }).unwrap();
    let o = cf.add_utf8(b"java/lang/Object").unwrap();
    cf.super_class = cf.add(Constant::Class { name: o }).unwrap();
    cf.pool.push(Constant::Long(1 << 40));
    cf.pool.push(Constant::Unusable);
    let code = cf.add_utf8(b"Code").unwrap();
    // iload_1; ireturn
    let body = vec![0, 1, 0, 2, 0, 0, 0, 2, 0x1b, 0xac, 0, 0, 0, 0];
    for (name, desc, access) in [
        ("m", "(I)I", ACC_PUBLIC),
        ("s", "()V", ACC_STATIC),
        ("a", "()V", 0x0400),
    ] {
        let name = cf.add_utf8(name.as_bytes()).unwrap();
        let descriptor = cf.add_utf8(desc.as_bytes()).unwrap();
        let attributes = if access & 0x0400 == 0 {
            vec![Attribute {
                name: code,
                info: body.clone(),
            }]
        } else {
            vec![]
        };
        cf.methods.push(Member {
            access,
            name,
            descriptor,
            attributes,
        });
    }
    cf.write().unwrap()
}

#[test]
fn refusals_follow_the_documented_rule() {
    let class = tiny_class();
    let m = Wrap {
        method: "m",
        desc: "(I)I",
    };
    assert!(wrap_methods(&class, &[m]).is_ok());
    assert_eq!(class_name(&class), Some("T"));
    let refused = |wraps: &[Wrap]| wrap_methods(&class, wraps).unwrap_err();
    assert_eq!(refused(&[]), Shape("no method to wrap"));
    assert_eq!(refused(&[m, m]), Shape("a method listed twice"));
    assert_eq!(
        refused(&[Wrap {
            method: "m",
            desc: "(J)I"
        }]),
        Shape("a listed method is missing")
    );
    assert_eq!(
        refused(&[Wrap {
            method: "x",
            desc: "(I)I"
        }]),
        Shape("a listed method is missing")
    );
    assert_eq!(
        refused(&[Wrap {
            method: "s",
            desc: "()V"
        }]),
        Shape("a listed method is static, abstract or native")
    );
    assert_eq!(
        refused(&[Wrap {
            method: "a",
            desc: "()V"
        }]),
        Shape("a listed method is static, abstract or native")
    );
    assert_eq!(
        refused(&[Wrap {
            method: "<init>",
            desc: "()V"
        }]),
        Shape("a constructor or initializer")
    );
    for bad in [
        "(I", "I)I", "(Q)I", "(L;)I", "(I)", "(I)II", "(La.b;)V", "([)V", "(I)[V",
    ] {
        assert_eq!(
            refused(&[Wrap {
                method: "m",
                desc: bad
            }]),
            Shape("a malformed method descriptor"),
            "{bad}"
        );
    }
    let deep = format!("({}I)V", "[".repeat(256));
    assert_eq!(
        refused(&[Wrap {
            method: "m",
            desc: &deep
        }]),
        Shape("a malformed method descriptor")
    );
    let deep = format!("({}I)V", "[".repeat(255));
    assert_eq!(
        refused(&[Wrap {
            method: "m",
            desc: &deep
        }]),
        Shape("a listed method is missing")
    );
    // A deliberately altered class: the method's descriptor changed (`m(I)I` → `m(I)J`
    // by editing one byte of its Utf8 entry): the wrap is refused, nothing else breaks.
    let at = find_bytes(&class, b"(I)I").unwrap();
    let mut altered = class.clone();
    altered[at + 3] = b'J';
    assert_eq!(
        wrap_methods(&altered, &[m]),
        Err(Shape("a listed method is missing"))
    );
    // A declared-twice method.
    let mut cf = ClassFile::parse(&class).unwrap();
    cf.methods.push(cf.methods[0].clone());
    assert_eq!(
        wrap_methods(&cf.write().unwrap(), &[m]),
        Err(Shape("a listed method is declared twice"))
    );
    // A method without Code.
    let mut cf = ClassFile::parse(&class).unwrap();
    cf.methods[0].attributes.clear();
    assert_eq!(
        wrap_methods(&cf.write().unwrap(), &[m]),
        Err(Shape("a listed method without exactly one Code attribute"))
    );
    // An interface.
    let mut cf = ClassFile::parse(&class).unwrap();
    cf.access |= 0x0200;
    assert_eq!(
        wrap_methods(&cf.write().unwrap(), &[m]),
        Err(Shape("an interface, annotation or module"))
    );
    // A class-file version newer than the reader knows.
    let mut newer = class.clone();
    newer[6..8].copy_from_slice(&70u16.to_be_bytes());
    assert_eq!(
        ClassFile::parse(&newer),
        Err(ClassError::UnknownVersion(70))
    );
    assert_eq!(
        wrap_methods(&newer, &[m]),
        Err(Shape("not a class file we read"))
    );
    assert_eq!(class_name(&newer), None);
    // An unknown constant-pool tag (2 was never assigned).
    let mut tag = class.clone();
    tag[10] = 2;
    assert_eq!(ClassFile::parse(&tag), Err(ClassError::UnknownTag(2)));
    // Trailing bytes.
    let mut trailing = class.clone();
    trailing.push(0);
    assert_eq!(ClassFile::parse(&trailing), Err(ClassError::TrailingBytes));
}

fn find_bytes(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn native_methods_follow_the_descriptor() {
    let w = Wrap {
        method: "write",
        desc: "([BII)V",
    };
    assert_eq!(
        native_methods(&w),
        [
            (
                "tapline$write$pre".to_string(),
                "(Ljava/lang/Object;[BII)J".to_string()
            ),
            (
                "tapline$write$post".to_string(),
                "(JLjava/lang/Object;[BII)V".to_string()
            ),
        ]
    );
    let w = Wrap {
        method: "read",
        desc: "([BII)I",
    };
    assert_eq!(native_methods(&w)[1].1, "(JLjava/lang/Object;[BIII)V");
}

/// Truncated and mutated class files: nothing panics; whatever parses writes back to the
/// same bytes; whatever wraps parses again; `class_name` agrees with the full parse.
#[test]
fn truncated_and_mutated_classes_never_panic() {
    let class = tiny_class();
    let m = Wrap {
        method: "m",
        desc: "(I)I",
    };
    let wrapped = wrap_methods(&class, &[m]).unwrap();
    for seed_class in [&class, &wrapped] {
        for n in 0..seed_class.len() {
            let cut = &seed_class[..n];
            assert!(
                ClassFile::parse(cut).is_err(),
                "a prefix of {n} bytes parsed"
            );
            assert!(wrap_methods(cut, &[m]).is_err());
            let _ = class_name(cut);
        }
    }
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut parsed = 0;
    for i in 0..20_000 {
        let mut b = if i % 2 == 0 {
            class.clone()
        } else {
            wrapped.clone()
        };
        for _ in 0..1 + next() % 4 {
            let at = (next() % b.len() as u64) as usize;
            match next() % 4 {
                0 => b[at] = next() as u8,
                1 => b[at] ^= 1 << (next() % 8),
                2 => b[at] = [0, 0xff, 1, 0x7f][(next() % 4) as usize],
                _ => {
                    b.insert(at, next() as u8);
                }
            }
        }
        if let Ok(cf) = ClassFile::parse(&b) {
            parsed += 1;
            assert_eq!(cf.write().unwrap(), b);
            let name = cf.class_name(cf.this_class);
            assert_eq!(
                class_name(&b).map(str::as_bytes),
                name.filter(|n| std::str::from_utf8(n).is_ok())
            );
        }
        if let Ok(out) = wrap_methods(&b, &[m]) {
            assert!(ClassFile::parse(&out).is_ok());
        }
    }
    assert!(
        parsed > 1000,
        "only {parsed} mutants parsed: the mutations are too coarse"
    );
}

#[test]
fn garbage_is_an_error() {
    assert_eq!(ClassFile::parse(b""), Err(ClassError::Truncated));
    assert_eq!(
        ClassFile::parse(b"\xca\xfe\xba\xbf\0\0\0\x34"),
        Err(ClassError::BadMagic)
    );
    // A huge constant-pool count with nothing behind it: an error, not an allocation.
    assert_eq!(
        ClassFile::parse(b"\xca\xfe\xba\xbe\0\0\0\x34\xff\xff"),
        Err(ClassError::Truncated)
    );
}
