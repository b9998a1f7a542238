//! Reading a loaded object's dynamic section: what [`super::got`] needs to find the
//! GOT slots through which an object calls the functions we hook.
//!
//! Only what the loader has mapped is read, and every table, symbol, name and slot is
//! checked to lie inside the object's own `PT_LOAD` segments before it is touched: an
//! object that does not parse is left alone, never guessed at. 64-bit ELF with `RELA`
//! relocations only (x86-64 and AArch64); anything else is "not understood".

use core::ffi::{c_char, CStr};

/// The relocation types that fill GOT slots with the address of a function.
#[cfg(target_arch = "x86_64")]
pub mod reloc {
    pub const NONE: u32 = 0;
    /// `R_X86_64_GLOB_DAT`: a GOT slot read by code that takes the address.
    pub const GLOB_DAT: u32 = 6;
    /// `R_X86_64_JUMP_SLOT`: a PLT's slot, filled at load (`-z now`) or at first call.
    pub const JUMP_SLOT: u32 = 7;
}

#[cfg(target_arch = "aarch64")]
pub mod reloc {
    pub const NONE: u32 = 0;
    /// `R_AARCH64_GLOB_DAT`.
    pub const GLOB_DAT: u32 = 1025;
    /// `R_AARCH64_JUMP_SLOT`.
    pub const JUMP_SLOT: u32 = 1026;
}

/// Elsewhere nothing is rewritten ([`super::got::init`] stays off).
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub mod reloc {
    pub const NONE: u32 = 0;
    pub const GLOB_DAT: u32 = u32::MAX;
    pub const JUMP_SLOT: u32 = u32::MAX;
}

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_GNU_RELRO: u32 = 0x6474_e552;
const PF_X: u32 = 1;
const PF_W: u32 = 2;

const DT_NULL: i64 = 0;
const DT_PLTRELSZ: i64 = 2;
const DT_STRTAB: i64 = 5;
const DT_SYMTAB: i64 = 6;
const DT_RELA: i64 = 7;
const DT_RELASZ: i64 = 8;
const DT_RELAENT: i64 = 9;
const DT_STRSZ: i64 = 10;
const DT_SYMENT: i64 = 11;
const DT_REL: i64 = 17;
const DT_PLTREL: i64 = 20;
const DT_JMPREL: i64 = 23;
const DT_GNU_HASH: i64 = 0x6fff_fef5;

/// Upper bound on the entries of a dynamic section we read (real ones have ~40).
const MAX_DYN: usize = 1024;

/// `Elf64_Rela`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Rela {
    pub offset: u64,
    pub info: u64,
    pub addend: i64,
}

impl Rela {
    pub fn kind(&self) -> u32 {
        (self.info & 0xffff_ffff) as u32
    }
    pub fn symbol(&self) -> usize {
        (self.info >> 32) as usize
    }
}

/// `Elf64_Sym`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Sym {
    pub name: u32,
    pub info: u8,
    pub other: u8,
    pub shndx: u16,
    pub value: u64,
    pub size: u64,
}

/// `Elf64_Phdr`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Phdr {
    pub kind: u32,
    pub flags: u32,
    pub offset: u64,
    pub vaddr: u64,
    pub paddr: u64,
    pub filesz: u64,
    pub memsz: u64,
    pub align: u64,
}

/// One loaded object as `dl_iterate_phdr` shows it. Valid only while the object stays
/// loaded: used inside the iteration callback, where the loader's list lock keeps it.
#[derive(Clone, Copy)]
pub struct Image<'a> {
    pub base: usize,
    pub phdrs: &'a [Phdr],
    pub name: *const c_char,
}

/// What a dynamic section says, pointers made absolute and checked.
pub struct Dynamic<'a> {
    symtab: usize,
    strtab: usize,
    strsz: usize,
    /// `DT_RELA` and `DT_JMPREL` tables.
    pub tables: [&'a [Rela]; 2],
}

/// Why an object could not be read.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Unreadable {
    NoDynamic,
    NotRela,
    OutOfBounds,
}

impl<'a> Image<'a> {
    /// Builds the view from `dl_iterate_phdr`'s record.
    ///
    /// # Safety
    /// `info` is the record the loader passed to the callback that is running now.
    pub unsafe fn from_info(info: &'a libc::dl_phdr_info) -> Option<Self> {
        if info.dlpi_phdr.is_null() || info.dlpi_phnum == 0 {
            return None;
        }
        // SAFETY: the loader's program headers of this object, `dlpi_phnum` of them,
        // mapped while the object is loaded (the caller's contract); same layout.
        let phdrs = unsafe {
            core::slice::from_raw_parts(info.dlpi_phdr as *const Phdr, usize::from(info.dlpi_phnum))
        };
        Some(Image {
            base: info.dlpi_addr as usize,
            phdrs,
            name: info.dlpi_name,
        })
    }

    fn loads(&self) -> impl Iterator<Item = &Phdr> + '_ {
        self.phdrs.iter().filter(|p| p.kind == PT_LOAD)
    }

    /// The `PT_LOAD` segment holding `[addr, addr + len)` whole, if any.
    pub fn segment_of(&self, addr: usize, len: usize) -> Option<&Phdr> {
        let end = addr.checked_add(len)?;
        self.loads().find(|p| {
            let start = self.base.wrapping_add(p.vaddr as usize);
            addr >= start && end <= start.saturating_add(p.memsz as usize)
        })
    }

    /// The lowest and highest address the object's segments cover.
    pub fn range(&self) -> (usize, usize) {
        self.loads().fold((usize::MAX, 0), |(lo, hi), p| {
            let start = self.base.wrapping_add(p.vaddr as usize);
            (
                lo.min(start),
                hi.max(start.saturating_add(p.memsz as usize)),
            )
        })
    }

    /// True if `addr` lies inside one of the object's segments (a lazy PLT slot still
    /// points into its own object).
    pub fn contains(&self, addr: usize) -> bool {
        self.segment_of(addr, 1).is_some()
    }

    /// The address of the dynamic section (with the base, the object's identity).
    pub fn dynamic_addr(&self) -> Option<usize> {
        self.phdrs
            .iter()
            .find(|p| p.kind == PT_DYNAMIC)
            .map(|p| self.base.wrapping_add(p.vaddr as usize))
    }

    /// The pages the loader made read-only after relocating (`PT_GNU_RELRO`, rounded
    /// as glibc's `_dl_protect_relro` rounds: both ends down to a page).
    pub fn relro_pages(&self, page: usize) -> Option<(usize, usize)> {
        let p = self.phdrs.iter().find(|p| p.kind == PT_GNU_RELRO)?;
        let start = self.base.wrapping_add(p.vaddr as usize) & !(page - 1);
        let end = self.base.wrapping_add((p.vaddr + p.memsz) as usize) & !(page - 1);
        (end > start).then_some((start, end))
    }

    /// Whether a GOT slot can be written through `mprotect` without ever making a page
    /// executable: its segment is data (`PF_W`, not `PF_X`).
    pub fn slot_is_data(&self, slot: usize) -> bool {
        self.segment_of(slot, 8)
            .is_some_and(|p| p.flags & PF_W != 0 && p.flags & PF_X == 0)
    }

    /// A pointer from the dynamic section: glibc stores them relocated on x86-64 and
    /// AArch64; other loaders leave them as link-time addresses.
    fn absolute(&self, v: u64) -> usize {
        let v = v as usize;
        if v < self.base {
            v.wrapping_add(self.base)
        } else {
            v
        }
    }

    /// Reads the dynamic section.
    pub fn dynamic(&self) -> Result<Dynamic<'a>, Unreadable> {
        let at = self.dynamic_addr().ok_or(Unreadable::NoDynamic)?;
        let (mut symtab, mut strtab, mut strsz, mut syment) = (0, 0, 0, 24);
        let (mut rela, mut relasz, mut relaent) = (0, 0, 24);
        let (mut jmprel, mut pltrelsz, mut pltrel) = (0, 0, DT_RELA as u64);
        let mut has_rel = false;
        for i in 0..MAX_DYN {
            let entry = at + i * 16;
            if self.segment_of(entry, 16).is_none() {
                return Err(Unreadable::OutOfBounds);
            }
            // SAFETY: inside one of the object's loaded segments (checked above), and
            // the dynamic section is 8-byte aligned by the ELF format.
            let (tag, val) = unsafe { (*(entry as *const i64), *((entry + 8) as *const u64)) };
            match tag {
                DT_NULL => break,
                DT_SYMTAB => symtab = self.absolute(val),
                DT_STRTAB => strtab = self.absolute(val),
                DT_STRSZ => strsz = val as usize,
                DT_SYMENT => syment = val,
                DT_RELA => rela = self.absolute(val),
                DT_RELASZ => relasz = val as usize,
                DT_RELAENT => relaent = val,
                DT_JMPREL => jmprel = self.absolute(val),
                DT_PLTRELSZ => pltrelsz = val as usize,
                DT_PLTREL => pltrel = val,
                DT_REL => has_rel = true,
                _ => {}
            }
        }
        if has_rel || pltrel != DT_RELA as u64 || relaent != 24 || syment != 24 {
            return Err(Unreadable::NotRela);
        }
        if symtab == 0 || strtab == 0 || self.segment_of(strtab, strsz).is_none() {
            return Err(Unreadable::OutOfBounds);
        }
        let table = |at: usize, size: usize| -> Result<&'a [Rela], Unreadable> {
            if at == 0 || size == 0 {
                return Ok(&[]);
            }
            if !at.is_multiple_of(8) || self.segment_of(at, size).is_none() {
                return Err(Unreadable::OutOfBounds);
            }
            // SAFETY: `size` bytes at `at` lie in a loaded segment of the object (checked
            // above) and are aligned; `Rela` is plain data.
            Ok(unsafe { core::slice::from_raw_parts(at as *const Rela, size / 24) })
        };
        Ok(Dynamic {
            symtab,
            strtab,
            strsz,
            tables: [table(rela, relasz)?, table(jmprel, pltrelsz)?],
        })
    }

    /// Symbol `index` of `dynamic`'s table and its name, checked to lie in the object.
    pub fn symbol(&self, d: &Dynamic<'_>, index: usize) -> Option<(Sym, &'a [u8])> {
        let at = d.symtab.checked_add(index.checked_mul(24)?)?;
        self.segment_of(at, 24)?;
        // SAFETY: 24 bytes inside a loaded segment (checked), 8-byte aligned (symtab
        // is, and entries are 24 bytes); `Sym` is plain data.
        let sym = unsafe { *(at as *const Sym) };
        let start = sym.name as usize;
        if start >= d.strsz {
            return None;
        }
        // SAFETY: the string table lies in a loaded segment, `strsz` bytes (checked in
        // `dynamic`).
        let strings = unsafe { core::slice::from_raw_parts(d.strtab as *const u8, d.strsz) };
        let rest = &strings[start..];
        let len = rest.iter().position(|&b| b == 0)?;
        Some((sym, &rest[..len]))
    }
}

/// The GNU hash of a symbol name (`DT_GNU_HASH`).
pub fn gnu_hash(name: &[u8]) -> u32 {
    name.iter().fold(5381u32, |h, &b| {
        h.wrapping_mul(33).wrapping_add(u32::from(b))
    })
}

/// An object's own exported symbols, looked up through its `DT_GNU_HASH` table: how we
/// tell, without the loader, whether a name is one of ours.
pub struct Exports {
    base: usize,
    symtab: usize,
    strtab: usize,
    strsz: usize,
    nbuckets: u32,
    symoffset: u32,
    bloom: &'static [u64],
    bloom_shift: u32,
    buckets: &'static [u32],
    chain: *const u32,
}

// SAFETY: read-only views of this library's own mapped tables, which live as long as
// the library.
unsafe impl Sync for Exports {}
// SAFETY: as above.
unsafe impl Send for Exports {}

impl Exports {
    /// The export table of `image`, which must be this library itself (its tables live
    /// as long as the code reading them).
    pub fn of_self(image: &Image<'_>) -> Option<Exports> {
        let at = image.dynamic_addr()?;
        let (mut gnu, mut symtab, mut strtab, mut strsz) = (0, 0, 0, 0);
        for i in 0..MAX_DYN {
            let entry = at + i * 16;
            image.segment_of(entry, 16)?;
            // SAFETY: inside our own loaded segments (checked), aligned.
            let (tag, val) = unsafe { (*(entry as *const i64), *((entry + 8) as *const u64)) };
            match tag {
                DT_NULL => break,
                DT_GNU_HASH => gnu = image.absolute(val),
                DT_SYMTAB => symtab = image.absolute(val),
                DT_STRTAB => strtab = image.absolute(val),
                DT_STRSZ => strsz = val as usize,
                _ => {}
            }
        }
        if gnu == 0 || symtab == 0 || strtab == 0 {
            return None;
        }
        image.segment_of(gnu, 16)?;
        // SAFETY: the GNU hash header, four words inside our segment (checked).
        let head = unsafe { core::slice::from_raw_parts(gnu as *const u32, 4) };
        let (nbuckets, symoffset, bloom_size, bloom_shift) = (head[0], head[1], head[2], head[3]);
        let bloom_at = gnu + 16;
        let buckets_at = bloom_at + bloom_size as usize * 8;
        image.segment_of(bloom_at, bloom_size as usize * 8 + nbuckets as usize * 4)?;
        if nbuckets == 0 || bloom_size == 0 {
            return None;
        }
        // SAFETY: bloom words and buckets lie in our own segment (checked above) and
        // stay mapped while this library is loaded, which outlives every caller.
        let (bloom, buckets) = unsafe {
            (
                core::slice::from_raw_parts(bloom_at as *const u64, bloom_size as usize),
                core::slice::from_raw_parts(buckets_at as *const u32, nbuckets as usize),
            )
        };
        Some(Exports {
            base: image.base,
            symtab,
            strtab,
            strsz,
            nbuckets,
            symoffset,
            bloom,
            bloom_shift,
            buckets,
            chain: (buckets_at + nbuckets as usize * 4) as *const u32,
        })
    }

    /// Our function named `name`: (symbol index, address), if we define and export it.
    pub fn find(&self, name: &[u8]) -> Option<(u32, usize)> {
        let h = gnu_hash(name);
        let word = self.bloom[(h as usize / 64) % self.bloom.len()];
        let mask = (1u64 << (h % 64)) | (1u64 << ((h >> self.bloom_shift) % 64));
        if word & mask != mask {
            return None;
        }
        let mut i = self.buckets[(h % self.nbuckets) as usize];
        if i < self.symoffset {
            return None;
        }
        loop {
            // SAFETY: chain entries run from `symoffset` to the last symbol; the walk
            // stops at the entry whose low bit marks its chain's end (the table is our
            // own, written by the linker).
            let h2 = unsafe { *self.chain.add((i - self.symoffset) as usize) };
            if h | 1 == h2 | 1 {
                let sym = self.sym(i);
                if sym.shndx != 0 && sym.info & 0xf == 2 && self.name(&sym) == Some(name) {
                    return Some((i, self.base.wrapping_add(sym.value as usize)));
                }
            }
            if h2 & 1 != 0 {
                return None;
            }
            i += 1;
        }
    }

    /// The name of our symbol `index` (one [`find`](Self::find) returned).
    pub fn name_of(&self, index: u32) -> &'static CStr {
        let sym = self.sym(index);
        let start = (sym.name as usize).min(self.strsz);
        // SAFETY: our own string table, `strsz` bytes, mapped for the library's life.
        let strings = unsafe { core::slice::from_raw_parts(self.strtab as *const u8, self.strsz) };
        CStr::from_bytes_until_nul(&strings[start..]).unwrap_or(c"")
    }

    fn sym(&self, i: u32) -> Sym {
        // SAFETY: `i` came from our own hash table, which only names symbols of our own
        // symbol table.
        unsafe { *((self.symtab + i as usize * 24) as *const Sym) }
    }

    fn name(&self, sym: &Sym) -> Option<&'static [u8]> {
        let start = sym.name as usize;
        if start >= self.strsz {
            return None;
        }
        // SAFETY: our own string table, `strsz` bytes, mapped for the library's life.
        let strings = unsafe { core::slice::from_raw_parts(self.strtab as *const u8, self.strsz) };
        let rest = &strings[start..];
        rest.iter().position(|&b| b == 0).map(|n| &rest[..n])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::ffi::c_void;

    #[test]
    fn gnu_hash_matches_the_linkers() {
        assert_eq!(gnu_hash(b""), 5381);
        assert_eq!(gnu_hash(b"printf"), 0x156b_2bb8);
    }

    /// libc as this test process loaded it: its path and what `f` found in it.
    unsafe extern "C" fn with_libc(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut c_void,
    ) -> libc::c_int {
        // SAFETY: the loader's record and our `data` pointer.
        let (info, f) = unsafe { (&*info, &mut *(data as *mut &mut dyn FnMut(&Image<'_>))) };
        // SAFETY: the record of the callback running now.
        let image = unsafe { Image::from_info(info) }.unwrap();
        if image.name.is_null() {
            return 0;
        }
        // SAFETY: the loader's NUL-terminated name.
        let name = unsafe { CStr::from_ptr(image.name) }.to_bytes();
        if name.ends_with(b"/libc.so.6") {
            f(&image);
            return 1;
        }
        0
    }

    fn on_libc(mut f: impl FnMut(&Image<'_>)) {
        let mut f: &mut dyn FnMut(&Image<'_>) = &mut f;
        // SAFETY: the callback only calls `f`.
        unsafe {
            libc::dl_iterate_phdr(
                Some(with_libc),
                &mut f as *mut &mut dyn FnMut(&Image<'_>) as *mut c_void,
            )
        };
    }

    #[test]
    fn libc_reads_its_relocations_and_symbol_names() {
        let mut seen = false;
        on_libc(|image| {
            let d = image.dynamic().expect("libc's dynamic section reads");
            let mut slots = 0;
            for r in d.tables.iter().flat_map(|t| t.iter()) {
                if r.kind() != reloc::JUMP_SLOT && r.kind() != reloc::GLOB_DAT {
                    continue;
                }
                let (_, name) = image.symbol(&d, r.symbol()).expect("symbol in bounds");
                assert!(!name.is_empty());
                let slot = image.base + r.offset as usize;
                assert!(image.segment_of(slot, 8).is_some() && image.slot_is_data(slot));
                slots += 1;
            }
            assert!(slots > 0);
            assert!(image.relro_pages(4096).is_some());
            seen = true;
        });
        assert!(seen, "libc.so.6 not among the loaded objects");
    }

    #[test]
    fn gnu_hash_lookup_finds_what_the_loader_finds() {
        let mut seen = false;
        on_libc(|image| {
            let exports = Exports::of_self(image).expect("libc has DT_GNU_HASH");
            for name in [c"connect", c"recvfrom", c"SSL_write_not_here", c"write"] {
                // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name.
                let loader = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) } as usize;
                let ours = exports.find(name.to_bytes()).map(|(_, a)| a).unwrap_or(0);
                assert_eq!(ours, loader, "{name:?}");
                if let Some((i, _)) = exports.find(name.to_bytes()) {
                    assert_eq!(exports.name_of(i), name);
                }
            }
            seen = true;
        });
        assert!(seen);
    }
}
