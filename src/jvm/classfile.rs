//! The class-file format (JVMS §4), read into typed values once and written back.
//!
//! Why our own: the agent needs to rename a method and add three, nothing more, and it runs
//! inside the JVM's class-loading thread, where a dependency's panic or a misread constant
//! pool would break the host program. So the reader is strict: every constant-pool tag up
//! to Java 25 (class-file major 69) is known and anything else is an error; every length is
//! checked against the bytes that are there; trailing bytes are an error. Attributes stay
//! raw bytes (the wrapper copies or builds the few it needs), so [`ClassFile::write`] of a
//! parsed class gives back the very bytes it was parsed from.
#![forbid(unsafe_code)]

use core::fmt;

/// The newest class-file major version this reader knows (Java 25).
pub const MAX_MAJOR: u16 = 69;
/// The oldest one it accepts (JDK 1.0.2).
pub const MIN_MAJOR: u16 = 45;

pub const ACC_PUBLIC: u16 = 0x0001;
pub const ACC_PRIVATE: u16 = 0x0002;
pub const ACC_PROTECTED: u16 = 0x0004;
pub const ACC_STATIC: u16 = 0x0008;
pub const ACC_SYNCHRONIZED: u16 = 0x0020;
pub const ACC_NATIVE: u16 = 0x0100;
pub const ACC_INTERFACE: u16 = 0x0200;
pub const ACC_ABSTRACT: u16 = 0x0400;
pub const ACC_ANNOTATION: u16 = 0x2000;
pub const ACC_MODULE: u16 = 0x8000;

/// Why bytes are not a class file this reader accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassError {
    /// The bytes end before the structure does.
    Truncated,
    /// Not `0xCAFEBABE`.
    BadMagic,
    /// A major version outside `MIN_MAJOR..=MAX_MAJOR`.
    UnknownVersion(u16),
    /// A constant-pool tag this reader does not know.
    UnknownTag(u8),
    /// A constant-pool count of zero (index 0 is reserved, so the count is at least 1).
    BadPoolCount,
    /// Bytes after the last attribute.
    TrailingBytes,
    /// The class would outgrow a `u16` count or a `u32` length when written.
    TooLarge,
}

impl fmt::Display for ClassError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClassError::Truncated => f.write_str("truncated class file"),
            ClassError::BadMagic => f.write_str("not a class file (magic)"),
            ClassError::UnknownVersion(v) => write!(f, "unknown class-file major version {v}"),
            ClassError::UnknownTag(t) => write!(f, "unknown constant-pool tag {t}"),
            ClassError::BadPoolCount => f.write_str("constant-pool count 0"),
            ClassError::TrailingBytes => f.write_str("bytes after the class"),
            ClassError::TooLarge => f.write_str("class too large to write"),
        }
    }
}

/// One constant-pool entry (JVMS §4.4). Indices are constant-pool indices as in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Constant {
    /// Modified UTF-8, as stored.
    Utf8(Vec<u8>),
    Integer(u32),
    Float(u32),
    Long(u64),
    Double(u64),
    Class {
        name: u16,
    },
    String {
        utf8: u16,
    },
    Fieldref {
        class: u16,
        name_and_type: u16,
    },
    Methodref {
        class: u16,
        name_and_type: u16,
    },
    InterfaceMethodref {
        class: u16,
        name_and_type: u16,
    },
    NameAndType {
        name: u16,
        descriptor: u16,
    },
    MethodHandle {
        kind: u8,
        reference: u16,
    },
    MethodType {
        descriptor: u16,
    },
    Dynamic {
        bootstrap: u16,
        name_and_type: u16,
    },
    InvokeDynamic {
        bootstrap: u16,
        name_and_type: u16,
    },
    Module {
        name: u16,
    },
    Package {
        name: u16,
    },
    /// Index 0, and the slot after a `Long` or `Double`: no entry, nothing written.
    Unusable,
}

impl Constant {
    const UTF8: u8 = 1;
    const INTEGER: u8 = 3;
    const FLOAT: u8 = 4;
    const LONG: u8 = 5;
    const DOUBLE: u8 = 6;
    const CLASS: u8 = 7;
    const STRING: u8 = 8;
    const FIELDREF: u8 = 9;
    const METHODREF: u8 = 10;
    const INTERFACE_METHODREF: u8 = 11;
    const NAME_AND_TYPE: u8 = 12;
    const METHOD_HANDLE: u8 = 15;
    const METHOD_TYPE: u8 = 16;
    const DYNAMIC: u8 = 17;
    const INVOKE_DYNAMIC: u8 = 18;
    const MODULE: u8 = 19;
    const PACKAGE: u8 = 20;

    /// Reads one entry; returns it and whether it takes two slots.
    fn read(r: &mut Reader<'_>) -> Result<(Constant, bool), ClassError> {
        let tag = r.u8()?;
        let c = match tag {
            Self::UTF8 => {
                let len = r.u16()? as usize;
                Constant::Utf8(r.bytes(len)?.to_vec())
            }
            Self::INTEGER => Constant::Integer(r.u32()?),
            Self::FLOAT => Constant::Float(r.u32()?),
            Self::LONG => return Ok((Constant::Long(r.u64()?), true)),
            Self::DOUBLE => return Ok((Constant::Double(r.u64()?), true)),
            Self::CLASS => Constant::Class { name: r.u16()? },
            Self::STRING => Constant::String { utf8: r.u16()? },
            Self::FIELDREF => Constant::Fieldref {
                class: r.u16()?,
                name_and_type: r.u16()?,
            },
            Self::METHODREF => Constant::Methodref {
                class: r.u16()?,
                name_and_type: r.u16()?,
            },
            Self::INTERFACE_METHODREF => Constant::InterfaceMethodref {
                class: r.u16()?,
                name_and_type: r.u16()?,
            },
            Self::NAME_AND_TYPE => Constant::NameAndType {
                name: r.u16()?,
                descriptor: r.u16()?,
            },
            Self::METHOD_HANDLE => Constant::MethodHandle {
                kind: r.u8()?,
                reference: r.u16()?,
            },
            Self::METHOD_TYPE => Constant::MethodType {
                descriptor: r.u16()?,
            },
            Self::DYNAMIC => Constant::Dynamic {
                bootstrap: r.u16()?,
                name_and_type: r.u16()?,
            },
            Self::INVOKE_DYNAMIC => Constant::InvokeDynamic {
                bootstrap: r.u16()?,
                name_and_type: r.u16()?,
            },
            Self::MODULE => Constant::Module { name: r.u16()? },
            Self::PACKAGE => Constant::Package { name: r.u16()? },
            other => return Err(ClassError::UnknownTag(other)),
        };
        Ok((c, false))
    }

    /// Skips one entry without keeping it; returns whether it takes two slots.
    fn skip(r: &mut Reader<'_>) -> Result<bool, ClassError> {
        let tag = r.u8()?;
        let (len, wide) = match tag {
            Self::UTF8 => (r.u16()? as usize, false),
            Self::CLASS | Self::STRING | Self::METHOD_TYPE | Self::MODULE | Self::PACKAGE => {
                (2, false)
            }
            Self::METHOD_HANDLE => (3, false),
            Self::INTEGER
            | Self::FLOAT
            | Self::FIELDREF
            | Self::METHODREF
            | Self::INTERFACE_METHODREF
            | Self::NAME_AND_TYPE
            | Self::DYNAMIC
            | Self::INVOKE_DYNAMIC => (4, false),
            Self::LONG | Self::DOUBLE => (8, true),
            other => return Err(ClassError::UnknownTag(other)),
        };
        r.bytes(len)?;
        Ok(wide)
    }

    fn write(&self, out: &mut Vec<u8>) -> Result<(), ClassError> {
        let pair = |out: &mut Vec<u8>, tag: u8, a: u16, b: u16| {
            out.push(tag);
            out.extend_from_slice(&a.to_be_bytes());
            out.extend_from_slice(&b.to_be_bytes());
        };
        let one = |out: &mut Vec<u8>, tag: u8, a: u16| {
            out.push(tag);
            out.extend_from_slice(&a.to_be_bytes());
        };
        match *self {
            Constant::Utf8(ref b) => {
                let len = u16::try_from(b.len()).map_err(|_| ClassError::TooLarge)?;
                one(out, Self::UTF8, len);
                out.extend_from_slice(b);
            }
            Constant::Integer(v) => {
                out.push(Self::INTEGER);
                out.extend_from_slice(&v.to_be_bytes());
            }
            Constant::Float(v) => {
                out.push(Self::FLOAT);
                out.extend_from_slice(&v.to_be_bytes());
            }
            Constant::Long(v) => {
                out.push(Self::LONG);
                out.extend_from_slice(&v.to_be_bytes());
            }
            Constant::Double(v) => {
                out.push(Self::DOUBLE);
                out.extend_from_slice(&v.to_be_bytes());
            }
            Constant::Class { name } => one(out, Self::CLASS, name),
            Constant::String { utf8 } => one(out, Self::STRING, utf8),
            Constant::Fieldref {
                class,
                name_and_type,
            } => pair(out, Self::FIELDREF, class, name_and_type),
            Constant::Methodref {
                class,
                name_and_type,
            } => pair(out, Self::METHODREF, class, name_and_type),
            Constant::InterfaceMethodref {
                class,
                name_and_type,
            } => pair(out, Self::INTERFACE_METHODREF, class, name_and_type),
            Constant::NameAndType { name, descriptor } => {
                pair(out, Self::NAME_AND_TYPE, name, descriptor)
            }
            Constant::MethodHandle { kind, reference } => {
                out.push(Self::METHOD_HANDLE);
                out.push(kind);
                out.extend_from_slice(&reference.to_be_bytes());
            }
            Constant::MethodType { descriptor } => one(out, Self::METHOD_TYPE, descriptor),
            Constant::Dynamic {
                bootstrap,
                name_and_type,
            } => pair(out, Self::DYNAMIC, bootstrap, name_and_type),
            Constant::InvokeDynamic {
                bootstrap,
                name_and_type,
            } => pair(out, Self::INVOKE_DYNAMIC, bootstrap, name_and_type),
            Constant::Module { name } => one(out, Self::MODULE, name),
            Constant::Package { name } => one(out, Self::PACKAGE, name),
            Constant::Unusable => {}
        }
        Ok(())
    }
}

/// An attribute, kept as its name index and raw `info` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub name: u16,
    pub info: Vec<u8>,
}

/// A field or a method (`field_info` / `method_info`: the same layout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub access: u16,
    pub name: u16,
    pub descriptor: u16,
    pub attributes: Vec<Attribute>,
}

/// A whole class file. `pool[i]` is constant-pool entry `i`; `pool[0]` and the slot after
/// each `Long`/`Double` are [`Constant::Unusable`], so `pool.len()` is `constant_pool_count`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassFile {
    pub minor: u16,
    pub major: u16,
    pub pool: Vec<Constant>,
    pub access: u16,
    pub this_class: u16,
    pub super_class: u16,
    pub interfaces: Vec<u16>,
    pub fields: Vec<Member>,
    pub methods: Vec<Member>,
    pub attributes: Vec<Attribute>,
}

const MAGIC: u32 = 0xCAFE_BABE;

impl ClassFile {
    /// Parses a whole class file; every byte must belong to it.
    pub fn parse(bytes: &[u8]) -> Result<ClassFile, ClassError> {
        let mut r = Reader::new(bytes);
        let (minor, major) = header(&mut r)?;
        let count = r.u16()?;
        if count == 0 {
            return Err(ClassError::BadPoolCount);
        }
        // No pre-allocation from the count: a garbage count must not reserve memory.
        let mut pool = vec![Constant::Unusable];
        while pool.len() < count as usize {
            let (c, wide) = Constant::read(&mut r)?;
            pool.push(c);
            if wide {
                // JVMS: a Long/Double in the last slot makes the count one short; treat
                // the missing slot as the file's problem.
                pool.push(Constant::Unusable);
            }
        }
        if pool.len() != count as usize {
            return Err(ClassError::Truncated);
        }
        let access = r.u16()?;
        let this_class = r.u16()?;
        let super_class = r.u16()?;
        let n = r.u16()?;
        let mut interfaces = Vec::new();
        for _ in 0..n {
            interfaces.push(r.u16()?);
        }
        let fields = members(&mut r)?;
        let methods = members(&mut r)?;
        let attributes = attributes(&mut r)?;
        if !r.is_empty() {
            return Err(ClassError::TrailingBytes);
        }
        Ok(ClassFile {
            minor,
            major,
            pool,
            access,
            this_class,
            super_class,
            interfaces,
            fields,
            methods,
            attributes,
        })
    }

    /// Writes the class file. Fails only if a count or length no longer fits its field.
    pub fn write(&self) -> Result<Vec<u8>, ClassError> {
        let mut out = Vec::with_capacity(4096);
        out.extend_from_slice(&MAGIC.to_be_bytes());
        out.extend_from_slice(&self.minor.to_be_bytes());
        out.extend_from_slice(&self.major.to_be_bytes());
        put_len16(&mut out, self.pool.len())?;
        for c in self.pool.iter().skip(1) {
            c.write(&mut out)?;
        }
        out.extend_from_slice(&self.access.to_be_bytes());
        out.extend_from_slice(&self.this_class.to_be_bytes());
        out.extend_from_slice(&self.super_class.to_be_bytes());
        put_len16(&mut out, self.interfaces.len())?;
        for i in &self.interfaces {
            out.extend_from_slice(&i.to_be_bytes());
        }
        for list in [&self.fields, &self.methods] {
            put_len16(&mut out, list.len())?;
            for m in list {
                out.extend_from_slice(&m.access.to_be_bytes());
                out.extend_from_slice(&m.name.to_be_bytes());
                out.extend_from_slice(&m.descriptor.to_be_bytes());
                write_attributes(&mut out, &m.attributes)?;
            }
        }
        write_attributes(&mut out, &self.attributes)?;
        Ok(out)
    }

    /// The bytes of a `Utf8` entry, if `index` names one.
    pub fn utf8(&self, index: u16) -> Option<&[u8]> {
        match self.pool.get(index as usize)? {
            Constant::Utf8(b) => Some(b),
            _ => None,
        }
    }

    /// The internal name of a `Class` entry, if `index` names one.
    pub fn class_name(&self, index: u16) -> Option<&[u8]> {
        match self.pool.get(index as usize)? {
            Constant::Class { name } => self.utf8(*name),
            _ => None,
        }
    }

    /// The index of a `Utf8` entry equal to `s`, added if there is none.
    pub fn add_utf8(&mut self, s: &[u8]) -> Result<u16, ClassError> {
        if let Some(i) = self.find(|c| matches!(c, Constant::Utf8(b) if b == s)) {
            return Ok(i);
        }
        if s.len() > u16::MAX as usize {
            return Err(ClassError::TooLarge);
        }
        self.push(Constant::Utf8(s.to_vec()))
    }

    /// The index of an entry equal to `c` (not `Long`/`Double`), added if there is none.
    pub fn add(&mut self, c: Constant) -> Result<u16, ClassError> {
        if matches!(
            c,
            Constant::Long(_) | Constant::Double(_) | Constant::Unusable
        ) {
            // Two-slot and placeholder entries are never added by the wrapper.
            return Err(ClassError::TooLarge);
        }
        if let Some(i) = self.find(|e| *e == c) {
            return Ok(i);
        }
        self.push(c)
    }

    fn find(&self, f: impl Fn(&Constant) -> bool) -> Option<u16> {
        // The pool holds at most u16::MAX entries (checked on parse and push).
        self.pool
            .iter()
            .position(f)
            .and_then(|i| u16::try_from(i).ok())
    }

    fn push(&mut self, c: Constant) -> Result<u16, ClassError> {
        let i = u16::try_from(self.pool.len()).map_err(|_| ClassError::TooLarge)?;
        if i == u16::MAX {
            // constant_pool_count is a u16: the last usable index is 65534.
            return Err(ClassError::TooLarge);
        }
        self.pool.push(c);
        Ok(i)
    }
}

/// The class's own internal name (`this_class`), read without keeping the constant pool:
/// three walks over it, no allocation. `None` for anything that is not a readable class.
pub fn this_class_name(bytes: &[u8]) -> Option<&[u8]> {
    let mut r = Reader::new(bytes);
    header(&mut r).ok()?;
    let count = r.u16().ok()?;
    let pool_start = r.pos;
    let mut r = Reader {
        bytes,
        pos: pool_start,
    };
    // Walk past the pool to this_class.
    let mut i = 1u32;
    while i < count as u32 {
        i += if Constant::skip(&mut r).ok()? { 2 } else { 1 };
    }
    r.u16().ok()?; // access_flags
    let this_class = r.u16().ok()?;
    // The Class entry, then its Utf8.
    let entry = |index: u16| -> Option<Reader<'_>> {
        if index == 0 || index >= count {
            return None;
        }
        let mut r = Reader {
            bytes,
            pos: pool_start,
        };
        let mut i = 1u32;
        while i < index as u32 {
            i += if Constant::skip(&mut r).ok()? { 2 } else { 1 };
        }
        (i == index as u32).then_some(r)
    };
    let mut c = entry(this_class)?;
    if c.u8().ok()? != Constant::CLASS {
        return None;
    }
    let name = c.u16().ok()?;
    let mut u = entry(name)?;
    if u.u8().ok()? != Constant::UTF8 {
        return None;
    }
    let len = u.u16().ok()? as usize;
    u.bytes(len).ok()
}

fn header(r: &mut Reader<'_>) -> Result<(u16, u16), ClassError> {
    if r.u32()? != MAGIC {
        return Err(ClassError::BadMagic);
    }
    let minor = r.u16()?;
    let major = r.u16()?;
    if !(MIN_MAJOR..=MAX_MAJOR).contains(&major) {
        return Err(ClassError::UnknownVersion(major));
    }
    Ok((minor, major))
}

fn members(r: &mut Reader<'_>) -> Result<Vec<Member>, ClassError> {
    let n = r.u16()?;
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(Member {
            access: r.u16()?,
            name: r.u16()?,
            descriptor: r.u16()?,
            attributes: attributes(r)?,
        });
    }
    Ok(out)
}

fn attributes(r: &mut Reader<'_>) -> Result<Vec<Attribute>, ClassError> {
    let n = r.u16()?;
    let mut out = Vec::new();
    for _ in 0..n {
        let name = r.u16()?;
        let len = r.u32()? as usize;
        out.push(Attribute {
            name,
            info: r.bytes(len)?.to_vec(),
        });
    }
    Ok(out)
}

fn write_attributes(out: &mut Vec<u8>, attrs: &[Attribute]) -> Result<(), ClassError> {
    put_len16(out, attrs.len())?;
    for a in attrs {
        out.extend_from_slice(&a.name.to_be_bytes());
        let len = u32::try_from(a.info.len()).map_err(|_| ClassError::TooLarge)?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&a.info);
    }
    Ok(())
}

fn put_len16(out: &mut Vec<u8>, n: usize) -> Result<(), ClassError> {
    let n = u16::try_from(n).map_err(|_| ClassError::TooLarge)?;
    out.extend_from_slice(&n.to_be_bytes());
    Ok(())
}

/// A bounds-checked big-endian cursor: every read either returns what is there or
/// `Truncated`.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    fn is_empty(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], ClassError> {
        let end = self.pos.checked_add(n).ok_or(ClassError::Truncated)?;
        let b = self.bytes.get(self.pos..end).ok_or(ClassError::Truncated)?;
        self.pos = end;
        Ok(b)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ClassError> {
        let b = self.bytes(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(b);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, ClassError> {
        Ok(self.array::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, ClassError> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, ClassError> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, ClassError> {
        Ok(u64::from_be_bytes(self.array()?))
    }
}
