//! What a program file is, for the one question both halves ask: will `LD_PRELOAD`
//! see into it? The exec hooks of the library ask it before a traced process starts a
//! program; `tapline run` asks it about CMD. Here, in the shared crate, so that both
//! answer alike; pure (the caller reads the file), so that the hook can read it with
//! raw syscalls into stack buffers and the CLI with `std::fs`.

use crate::enums::NoticeKind;

pub const PT_INTERP: u32 = 3;
pub const PT_NOTE: u32 = 4;
/// `NT_GO_BUILDID`, the type of the `Go` note every Go linker writes.
const NT_GO_BUILDID: u32 = 4;
const MAX_PHDRS: usize = 64;
const PHDR_LEN: usize = 56;
const NOTE_READ: usize = 512;
const SHSTRTAB_READ: usize = 4096;

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
