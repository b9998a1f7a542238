//! What a program file is, for the one question both halves ask: will `LD_PRELOAD`
//! see into it? The exec hooks of the library ask it before a traced process starts a
//! program; `tapline run` asks it about CMD. Here, in the shared crate, so that both
//! answer alike; pure (the caller reads the file), so that the hook can read it with
//! raw syscalls into stack buffers and the CLI with `std::fs`.

use crate::enums::NoticeKind;

pub const PT_LOAD: u32 = 1;
pub const PT_DYNAMIC: u32 = 2;
pub const PT_INTERP: u32 = 3;
pub const PT_NOTE: u32 = 4;
/// `NT_GO_BUILDID`, the type of the `Go` note every Go linker writes.
const NT_GO_BUILDID: u32 = 4;
const MAX_PHDRS: usize = 64;
const PHDR_LEN: usize = 56;
const NOTE_READ: usize = 512;
const SHSTRTAB_READ: usize = 4096;
/// Dynamic entries read (16 bytes each): the JDK launchers have about 35.
const MAX_DYN: usize = 128;
const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;
const DT_STRTAB: u64 = 5;

use crate::le::{le16, le32, le64};

/// Why `LD_PRELOAD` will not see into the ELF executable that `read_at` reads
/// (`read_at(buf, offset)` fills a prefix of `buf` and returns how much): a Go program
/// (a `Go` build id note, or a `.go.buildinfo` section), else a static executable (no
/// `PT_INTERP`). `None` for a dynamically linked non-Go program, or anything that is
/// not a little-endian 64-bit ELF executable (scripts, other formats: not our call).
pub fn elf_blind_spot(read_at: &mut dyn FnMut(&mut [u8], u64) -> usize) -> Option<NoticeKind> {
    let mut eh = [0u8; 64];
    if read_at(&mut eh, 0) < eh.len() || eh[..4] != *b"\x7fELF" || eh[4] != 2 || eh[5] != 1 {
        return None;
    }
    let e_type = le16(&eh, 16);
    if e_type != 2 && e_type != 3 {
        return None; // ET_EXEC or ET_DYN (PIE) only
    }
    let (phoff, phentsize, phnum) = (
        le64(&eh, 32),
        le16(&eh, 54) as usize,
        le16(&eh, 56) as usize,
    );
    if phentsize != PHDR_LEN || phnum == 0 || phnum > MAX_PHDRS {
        return None;
    }
    let mut ph = [0u8; PHDR_LEN * MAX_PHDRS];
    let ph = &mut ph[..PHDR_LEN * phnum];
    if read_at(ph, phoff) < ph.len() {
        return None;
    }
    let mut interp = false;
    let mut go = false;
    for h in ph.chunks_exact(PHDR_LEN) {
        match le32(h, 0) {
            PT_INTERP => interp = true,
            PT_NOTE if !go => go = has_go_note(read_at, le64(h, 8), le64(h, 32)),
            _ => {}
        }
    }
    if go || has_go_buildinfo(read_at, &eh) {
        Some(NoticeKind::GoProgram)
    } else if !interp {
        Some(NoticeKind::StaticExecutable)
    } else {
        None
    }
}

/// Whether the notes at `offset` (`size` bytes, the first [`NOTE_READ`] read) hold
/// the Go build id note (name `Go`, type 4).
fn has_go_note(read_at: &mut dyn FnMut(&mut [u8], u64) -> usize, offset: u64, size: u64) -> bool {
    let mut buf = [0u8; NOTE_READ];
    let want = (size as usize).min(NOTE_READ);
    let got = read_at(&mut buf[..want], offset);
    let notes = &buf[..got];
    let mut at = 0;
    while at + 12 <= notes.len() {
        let (namesz, descsz, kind) = (
            le32(notes, at) as usize,
            le32(notes, at + 4) as usize,
            le32(notes, at + 8),
        );
        let name = notes.get(at + 12..at + 12 + namesz);
        if kind == NT_GO_BUILDID && name == Some(b"Go\0\0".as_slice()) {
            return true;
        }
        let step = 12usize
            .saturating_add((namesz + 3) & !3)
            .saturating_add((descsz + 3) & !3);
        at = at.saturating_add(step);
    }
    false
}

/// Whether the section name table names `.go.buildinfo` (Go writes it even into
/// binaries whose notes were stripped).
fn has_go_buildinfo(read_at: &mut dyn FnMut(&mut [u8], u64) -> usize, eh: &[u8]) -> bool {
    let (shoff, shentsize, shnum, shstrndx) = (
        le64(eh, 40),
        le16(eh, 58) as u64,
        le16(eh, 60) as u64,
        le16(eh, 62) as u64,
    );
    if shoff == 0 || shentsize != 64 || shstrndx >= shnum {
        return false;
    }
    let mut sh = [0u8; 64];
    if read_at(&mut sh, shoff + shstrndx * 64) < sh.len() {
        return false;
    }
    let mut names = [0u8; SHSTRTAB_READ];
    let want = (le64(&sh, 32) as usize).min(SHSTRTAB_READ);
    let got = read_at(&mut names[..want], le64(&sh, 24));
    let needle = b"\0.go.buildinfo\0";
    names[..got].windows(needle.len()).any(|w| w == needle)
}

// ---------------------------------------------------------------------------
// Java launchers
// ---------------------------------------------------------------------------

/// The library every JDK launcher links (`bin/java`, but also `javac`, `keytool`,
/// `jar`, ...): the launcher's shared code.
const LIBJLI: &[u8] = b"libjli.so";

/// The argument that loads `lib` as a JVMTI agent (`-agentpath:` and the path).
pub const AGENTPATH: &[u8] = b"-agentpath:";

/// Whether `path` (a program's path or name) names the `java` launcher by its last
/// component. Only `java` accepts `-agentpath:` as its own option: `javac`, `jar`,
/// `keytool`, `jshell` are the same launcher (they link `libjli.so` too) but want
/// JVM options as `-J-agentpath:`, and would fail on ours.
pub fn is_java_name(path: &[u8]) -> bool {
    let base = match path.iter().rposition(|&b| b == b'/') {
        Some(i) => &path[i + 1..],
        None => path,
    };
    base == b"java"
}

/// Whether one command-line argument already loads libtapline as an agent
/// (`-agentpath:/…/libtapline.so[=options]`): then nothing is added.
pub fn is_tapline_agent_arg(arg: &[u8]) -> bool {
    arg.starts_with(AGENTPATH) && arg.windows(10).any(|w| w == b"libtapline")
}

/// Whether the program `path` names, read by `read_at`, is a JVM launcher tapline
/// puts its agent into: named `java` ([`is_java_name`]) and an ELF executable that
/// needs `libjli.so` ([`needs_libjli`]) — a script or another program that happens to
/// be called `java` is left alone.
pub fn is_java_launcher(path: &[u8], read_at: &mut dyn FnMut(&mut [u8], u64) -> usize) -> bool {
    is_java_name(path) && needs_libjli(read_at)
}

/// Whether the little-endian 64-bit ELF that `read_at` reads names `libjli.so` among
/// its `DT_NEEDED` entries. Bounded: 64 program headers, 128 dynamic entries, one
/// name of 16 bytes per entry; anything unexpected is "no".
pub fn needs_libjli(read_at: &mut dyn FnMut(&mut [u8], u64) -> usize) -> bool {
    let mut eh = [0u8; 64];
    if read_at(&mut eh, 0) < eh.len() || eh[..4] != *b"\x7fELF" || eh[4] != 2 || eh[5] != 1 {
        return false;
    }
    let (phoff, phentsize, phnum) = (
        le64(&eh, 32),
        le16(&eh, 54) as usize,
        le16(&eh, 56) as usize,
    );
    if phentsize != PHDR_LEN || phnum == 0 || phnum > MAX_PHDRS {
        return false;
    }
    let mut ph = [0u8; PHDR_LEN * MAX_PHDRS];
    let ph = &mut ph[..PHDR_LEN * phnum];
    if read_at(ph, phoff) < ph.len() {
        return false;
    }
    let Some(dynamic) = ph.chunks_exact(PHDR_LEN).find(|h| le32(h, 0) == PT_DYNAMIC) else {
        return false;
    };
    let mut dy = [0u8; 16 * MAX_DYN];
    let want = (le64(dynamic, 32) as usize).min(dy.len()) & !15;
    let got = read_at(&mut dy[..want], le64(dynamic, 8)) & !15;
    let entries = dy[..got].chunks_exact(16);
    let mut strtab = None;
    for e in entries.clone() {
        match le64(e, 0) {
            DT_NULL => break,
            DT_STRTAB => strtab = Some(le64(e, 8)),
            _ => {}
        }
    }
    // The string table's address → its file offset, through the PT_LOAD holding it.
    let Some(strtab) = strtab.and_then(|vaddr| {
        ph.chunks_exact(PHDR_LEN)
            .filter(|h| le32(h, 0) == PT_LOAD)
            .find(|h| le64(h, 16) <= vaddr && vaddr - le64(h, 16) < le64(h, 32))
            .map(|h| vaddr - le64(h, 16) + le64(h, 8))
    }) else {
        return false;
    };
    for e in entries {
        match le64(e, 0) {
            DT_NULL => break,
            DT_NEEDED => {
                let mut name = [0u8; LIBJLI.len() + 1];
                let n = read_at(&mut name, strtab.saturating_add(le64(e, 8)));
                if n == name.len() && name[..LIBJLI.len()] == *LIBJLI && name[LIBJLI.len()] == 0 {
                    return true;
                }
            }
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::format;
    use std::os::unix::fs::FileExt;
    use std::vec::Vec;

    fn launcher(path: &str) -> bool {
        let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        is_java_launcher(path.as_bytes(), &mut |buf, off| {
            file.read_at(buf, off).unwrap_or(0)
        })
    }

    #[test]
    fn names() {
        assert!(is_java_name(b"java"));
        assert!(is_java_name(b"/usr/lib/jvm/x/bin/java"));
        assert!(!is_java_name(b"/usr/bin/javac"));
        assert!(!is_java_name(b"java/"));
        assert!(!is_java_name(b"/opt/java/bin/keytool"));
        assert!(is_tapline_agent_arg(
            b"-agentpath:/opt/tapline/libtapline.so"
        ));
        assert!(is_tapline_agent_arg(b"-agentpath:./libtapline.so=x"));
        assert!(!is_tapline_agent_arg(b"-agentpath:/x/libyourkit.so"));
        assert!(!is_tapline_agent_arg(b"-Dlibtapline=1"));
    }

    /// The JDK's real launchers (CI installs Debian's JDK 17): `java` is one, `javac`
    /// (which needs libjli.so too) is not, and neither is a non-Java ELF nor a script.
    #[test]
    fn real_jdk_launchers() {
        let jdk = "/usr/lib/jvm/java-17-openjdk-amd64/bin";
        assert!(
            launcher(&format!("{jdk}/java")),
            "JDK 17 missing? run scripts/setup"
        );
        assert!(!launcher(&format!("{jdk}/javac")));
        let file = std::fs::File::open(format!("{jdk}/javac")).unwrap();
        assert!(needs_libjli(&mut |buf, off| file
            .read_at(buf, off)
            .unwrap_or(0)));
        let sh = std::fs::File::open("/bin/sh").unwrap();
        assert!(!needs_libjli(&mut |buf, off| sh
            .read_at(buf, off)
            .unwrap_or(0)));
        let temurin = "/usr/lib/jvm/temurin-25-jdk-amd64/bin/java";
        if std::path::Path::new(temurin).exists() {
            assert!(launcher(temurin));
        }
    }

    #[test]
    fn garbage_is_no() {
        for len in [0usize, 4, 63, 64, 200, 4096] {
            let junk: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let mut img = junk.clone();
            if len >= 6 {
                img[..6].copy_from_slice(b"\x7fELF\x02\x01");
            }
            for image in [&junk, &img] {
                assert!(!needs_libjli(&mut |buf: &mut [u8], off: u64| {
                    let off = (off as usize).min(image.len());
                    let n = buf.len().min(image.len() - off);
                    buf[..n].copy_from_slice(&image[off..off + n]);
                    n
                }));
            }
        }
    }
}
