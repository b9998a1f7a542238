//! Wrapping instance methods with two native hooks, the shape that stays robust across JDKs.
//!
//! For each [`Wrap`] the original method is renamed `tapline$<method>` and made private,
//! and a method with the original's name, descriptor and flags (minus `synchronized`) is
//! added whose code has no branches, so it needs no `StackMapTable`:
//!
//! ```text
//! aload_0; <load args>; invokestatic  tapline$<m>$pre   // (Ljava/lang/Object;<args>)J
//! aload_0; <load args>; invokespecial tapline$<m>       // the original, renamed
//! <store r>                                             // token stays on the stack
//! aload_0; <load args>; <load r>; invokestatic tapline$<m>$post  // (JLjava/lang/Object;<args><r>)V
//! <load r>; <return r>
//! ```
//!
//! An exception from the original propagates through the wrapper (post is not called).
//! The two natives are `private static native`; the agent binds them with
//! `RegisterNatives` ([`native_methods`] gives their names and descriptors).
//!
//! The wrapper is not `synchronized`: for a synchronized original, pre and post run
//! outside its monitor (the renamed original keeps the flag).
//!
//! # When `wrap_methods` refuses
//!
//! It returns `Err(Shape)` and the caller loads the class untouched when any of these holds
//! (this is the rule the "deliberately altered class" test relies on):
//! - the bytes are not a class file [`super::classfile`] accepts: bad magic, a major version
//!   outside 45..=69, an unknown constant-pool tag, a truncated structure, trailing bytes;
//! - the class is an interface, annotation or module;
//! - the list is empty, or names the same (method, descriptor) twice;
//! - a descriptor is not a well-formed method descriptor, or its arguments and result take
//!   more than 252 slots (long/double count two): the post native takes the token (2),
//!   `this`, the arguments and the result, and a JVM method takes at most 255;
//! - a listed method is missing, or declared more than once with that descriptor;
//! - a listed method is `<init>`/`<clinit>`, static, abstract or native, or has no `Code`
//!   (or more than one);
//! - the class already has a method `tapline$<method>` with that descriptor or either
//!   native (it was wrapped before);
//! - `this_class` is not a `Class` entry, or the result would not fit the format (constant
//!   pool over 65534 entries, more than 65535 methods).
//!
//! An altered class that the JVM still loads and runs exactly as before, but that is
//! refused: `SSLSocketImpl$AppOutputStream` with one more method, a private no-op
//! `tapline$write([BII)V` (refused as "wrapped before"; the test
//! `altered_jdk_class_is_refused_and_runs_unchanged` builds it with
//! [`super::classfile::ClassFile`] and runs TLS through it with `--patch-module`).
//! Altering the version, a tag or the target's descriptor is refused too, but the JVM
//! itself then rejects the class or the JDK breaks.
//!
//! A class changed in any other way (a method renamed, a descriptor changed, another
//! method added) but still holding the listed methods is wrapped as usual.
#![forbid(unsafe_code)]

use core::fmt;

use super::classfile::{
    Attribute, ClassFile, Constant, Member, ACC_ABSTRACT, ACC_ANNOTATION, ACC_INTERFACE,
    ACC_MODULE, ACC_NATIVE, ACC_PRIVATE, ACC_PROTECTED, ACC_PUBLIC, ACC_STATIC, ACC_SYNCHRONIZED,
};

/// One method to wrap: its name and descriptor, e.g. `write`, `([BII)V`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wrap<'a> {
    pub method: &'a str,
    pub desc: &'a str,
}

/// Why a class was left untouched (a short reason, for the report).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape(pub &'static str);

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// The prefix of every name the wrapper adds.
pub const PREFIX: &str = "tapline$";

/// Rewrites the class: for each listed *instance* method (not static/abstract/native;
/// missing method, duplicate, or anything unexpected → `Err(Shape)`, class untouched):
/// - the original method is renamed to `tapline$<method>` and made private
///   (`ACC_PUBLIC`/`ACC_PROTECTED` cleared, `ACC_PRIVATE` set; other flags and attributes
///   kept);
/// - a new method with the original's name, descriptor and access flags (minus
///   `ACC_SYNCHRONIZED`) is added; its code, with no branches (so no `StackMapTable`):
///   `token = tapline$<method>$pre(this, args...)` (static native, returns long);
///   `r = this.tapline$<method>(args...)` (invokespecial);
///   `tapline$<method>$post(token, this, args..., r)` (static native, returns void);
///   `return r`. Exceptions from the original propagate (post is then not called). The
///   new method also carries copies of the original's `Exceptions` and `Signature`
///   attributes, so reflection sees the same method;
/// - two `private static native` methods are added:
///   `tapline$<method>$pre`  descriptor `(Ljava/lang/Object;<args>)J`,
///   `tapline$<method>$post` descriptor `(JLjava/lang/Object;<args><ret>)V` (`<ret>`
///   omitted for `V`).
///
/// The module docs list every reason to refuse.
pub fn wrap_methods(class: &[u8], wraps: &[Wrap]) -> Result<Vec<u8>, Shape> {
    let mut cf = ClassFile::parse(class).map_err(|_| Shape("not a class file we read"))?;
    if cf.access & (ACC_INTERFACE | ACC_ANNOTATION | ACC_MODULE) != 0 {
        return Err(Shape("an interface, annotation or module"));
    }
    if wraps.is_empty() {
        return Err(Shape("no method to wrap"));
    }
    for (i, w) in wraps.iter().enumerate() {
        if wraps[..i].contains(w) {
            return Err(Shape("a method listed twice"));
        }
    }
    if cf.class_name(cf.this_class).is_none() {
        return Err(Shape("this_class is not a class entry"));
    }
    for w in wraps {
        wrap_one(&mut cf, w)?;
    }
    cf.write()
        .map_err(|_| Shape("the wrapped class outgrows the format"))
}

/// The (name, descriptor) of the two natives for a wrap, exactly as added to the class,
/// for `RegisterNatives`: `[pre, post]`.
pub fn native_methods(w: &Wrap) -> [(String, String); 2] {
    let (args, ret) = split_descriptor(w.desc);
    let ret = if ret == "V" { "" } else { ret };
    [
        (
            format!("{PREFIX}{}$pre", w.method),
            format!("(Ljava/lang/Object;{args})J"),
        ),
        (
            format!("{PREFIX}{}$post", w.method),
            format!("(JLjava/lang/Object;{args}{ret})V"),
        ),
    ]
}

/// The class's own name (`this_class`, internal form) without a full parse — cheap, used
/// by the agent to compare the class name first (`ClassFileLoadHook` usually already
/// gives the name). `None` if the bytes are not a readable class or the name is not UTF-8.
pub fn class_name(class: &[u8]) -> Option<&str> {
    core::str::from_utf8(super::classfile::this_class_name(class)?).ok()
}

/// `(args)ret` → (`args`, `ret`); anything malformed → the parts as far as they go
/// ([`MethodType::parse`] is the check).
fn split_descriptor(desc: &str) -> (&str, &str) {
    let inner = desc.strip_prefix('(').unwrap_or(desc);
    inner.split_once(')').unwrap_or((inner, "V"))
}

/// How a value sits in locals and on the operand stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// boolean, byte, char, short, int.
    Int,
    Long,
    Float,
    Double,
    Reference,
}

impl Kind {
    fn slots(self) -> u16 {
        match self {
            Kind::Long | Kind::Double => 2,
            _ => 1,
        }
    }
    fn load(self) -> u8 {
        match self {
            Kind::Int => 0x15,       // iload
            Kind::Long => 0x16,      // lload
            Kind::Float => 0x17,     // fload
            Kind::Double => 0x18,    // dload
            Kind::Reference => 0x19, // aload
        }
    }
    fn store(self) -> u8 {
        match self {
            Kind::Int => 0x36,       // istore
            Kind::Long => 0x37,      // lstore
            Kind::Float => 0x38,     // fstore
            Kind::Double => 0x39,    // dstore
            Kind::Reference => 0x3a, // astore
        }
    }
    fn ret(self) -> u8 {
        match self {
            Kind::Int => 0xac,       // ireturn
            Kind::Long => 0xad,      // lreturn
            Kind::Float => 0xae,     // freturn
            Kind::Double => 0xaf,    // dreturn
            Kind::Reference => 0xb0, // areturn
        }
    }
}

/// A parsed method descriptor: argument kinds and the return kind (`None` for `V`).
#[derive(Debug, PartialEq, Eq)]
struct MethodType {
    args: Vec<Kind>,
    ret: Option<Kind>,
}

impl MethodType {
    fn parse(desc: &str) -> Option<MethodType> {
        let b = desc.as_bytes();
        let mut i = 0;
        if b.first() != Some(&b'(') {
            return None;
        }
        i += 1;
        let mut args = Vec::new();
        while *b.get(i)? != b')' {
            let (k, next) = field_type(b, i)?;
            args.push(k);
            i = next;
        }
        i += 1;
        let ret = if b.get(i) == Some(&b'V') {
            i += 1;
            None
        } else {
            let (k, next) = field_type(b, i)?;
            i = next;
            Some(k)
        };
        (i == b.len()).then_some(MethodType { args, ret })
    }

    /// Slots of the arguments (u32: a long descriptor may hold more than u16 can count).
    fn arg_slots(&self) -> u32 {
        self.args.iter().map(|k| u32::from(k.slots())).sum()
    }
}

/// One field type starting at `b[i]`: its kind and the index after it.
fn field_type(b: &[u8], mut i: usize) -> Option<(Kind, usize)> {
    let mut dims = 0u16;
    while b.get(i) == Some(&b'[') {
        dims += 1;
        i += 1;
        if dims > 255 {
            return None;
        }
    }
    let k = match *b.get(i)? {
        b'B' | b'C' | b'I' | b'S' | b'Z' => Kind::Int,
        b'J' => Kind::Long,
        b'F' => Kind::Float,
        b'D' => Kind::Double,
        b'L' => {
            let len = b.get(i + 1..)?.iter().position(|&c| c == b';')?;
            let name = &b[i + 1..i + 1 + len];
            if name.is_empty() || name.iter().any(|&c| matches!(c, b'.' | b'[' | b'(' | b')')) {
                return None;
            }
            i += len + 1;
            Kind::Reference
        }
        _ => return None,
    };
    let k = if dims > 0 { Kind::Reference } else { k };
    Some((k, i + 1))
}

fn wrap_one(cf: &mut ClassFile, w: &Wrap) -> Result<(), Shape> {
    let mt = MethodType::parse(w.desc).ok_or(Shape("a malformed method descriptor"))?;
    // The post native's parameters (token, this, args, result) must fit the JVM's
    // 255-slot limit; the others then fit too.
    if 3 + mt.arg_slots() + u32::from(mt.ret.map_or(0, Kind::slots)) > 255 {
        return Err(Shape("too many argument slots"));
    }
    if w.method.starts_with('<') {
        return Err(Shape("a constructor or initializer"));
    }
    let name = w.method.as_bytes();
    let desc = w.desc.as_bytes();
    let found: Vec<usize> = (0..cf.methods.len())
        .filter(|&i| {
            let m = &cf.methods[i];
            cf.utf8(m.name) == Some(name) && cf.utf8(m.descriptor) == Some(desc)
        })
        .collect();
    let index = match found[..] {
        [i] => i,
        [] => return Err(Shape("a listed method is missing")),
        _ => return Err(Shape("a listed method is declared twice")),
    };
    let access = cf.methods[index].access;
    if access & (ACC_STATIC | ACC_ABSTRACT | ACC_NATIVE) != 0 {
        return Err(Shape("a listed method is static, abstract or native"));
    }
    let codes = cf.methods[index]
        .attributes
        .iter()
        .filter(|a| cf.utf8(a.name) == Some(b"Code"))
        .count();
    if codes != 1 {
        return Err(Shape("a listed method without exactly one Code attribute"));
    }

    let renamed = format!("{PREFIX}{}", w.method);
    let [(pre_name, pre_desc), (post_name, post_desc)] = native_methods(w);
    for (n, d) in [
        (&renamed, w.desc),
        (&pre_name, &pre_desc[..]),
        (&post_name, &post_desc[..]),
    ] {
        let taken = cf.methods.iter().any(|m| {
            cf.utf8(m.name) == Some(n.as_bytes()) && cf.utf8(m.descriptor) == Some(d.as_bytes())
        });
        if taken {
            return Err(Shape("the class was wrapped before"));
        }
    }

    let too_large = |_| Shape("the wrapped class outgrows the format");
    let this_class = cf.this_class;
    let methodref = |cf: &mut ClassFile, n: &str, d: &str| -> Result<u16, Shape> {
        let name = cf.add_utf8(n.as_bytes()).map_err(too_large)?;
        let descriptor = cf.add_utf8(d.as_bytes()).map_err(too_large)?;
        let nat = cf
            .add(Constant::NameAndType { name, descriptor })
            .map_err(too_large)?;
        cf.add(Constant::Methodref {
            class: this_class,
            name_and_type: nat,
        })
        .map_err(too_large)
    };
    let orig_ref = methodref(cf, &renamed, w.desc)?;
    let pre_ref = methodref(cf, &pre_name, &pre_desc)?;
    let post_ref = methodref(cf, &post_name, &post_desc)?;
    let renamed_idx = cf.add_utf8(renamed.as_bytes()).map_err(too_large)?;
    let pre_idx = cf.add_utf8(pre_name.as_bytes()).map_err(too_large)?;
    let pre_desc_idx = cf.add_utf8(pre_desc.as_bytes()).map_err(too_large)?;
    let post_idx = cf.add_utf8(post_name.as_bytes()).map_err(too_large)?;
    let post_desc_idx = cf.add_utf8(post_desc.as_bytes()).map_err(too_large)?;
    let code_name = cf.add_utf8(b"Code").map_err(too_large)?;

    let original = &cf.methods[index];
    let kept: Vec<Attribute> = original
        .attributes
        .iter()
        .filter(|a| matches!(cf.utf8(a.name), Some(b"Exceptions" | b"Signature")))
        .cloned()
        .collect();
    let mut attributes = vec![Attribute {
        name: code_name,
        info: wrapper_code(&mt, pre_ref, orig_ref, post_ref),
    }];
    attributes.extend(kept);
    let wrapper = Member {
        access: access & !ACC_SYNCHRONIZED,
        name: original.name,
        descriptor: original.descriptor,
        attributes,
    };

    let original = &mut cf.methods[index];
    original.name = renamed_idx;
    original.access = (access & !(ACC_PUBLIC | ACC_PROTECTED)) | ACC_PRIVATE;
    let native = ACC_PRIVATE | ACC_STATIC | ACC_NATIVE;
    cf.methods.push(wrapper);
    cf.methods.push(Member {
        access: native,
        name: pre_idx,
        descriptor: pre_desc_idx,
        attributes: Vec::new(),
    });
    cf.methods.push(Member {
        access: native,
        name: post_idx,
        descriptor: post_desc_idx,
        attributes: Vec::new(),
    });
    if cf.methods.len() > u16::MAX as usize {
        return Err(Shape("the wrapped class outgrows the format"));
    }
    Ok(())
}

/// The `info` of the wrapper's `Code` attribute (JVMS §4.7.3): no exception table, no
/// attributes.
///
/// `mt` has passed the slot check of [`wrap_one`], so every count fits a `u16` (and the
/// `u8` of a plain load; `wide` stays for robustness).
fn wrapper_code(mt: &MethodType, pre: u16, orig: u16, post: u16) -> Vec<u8> {
    let arg_slots = u16::try_from(mt.arg_slots()).unwrap_or(u16::MAX);
    let ret_slots = mt.ret.map_or(0, Kind::slots);
    // Locals: this, the arguments, then the result.
    let result_slot = arg_slots.saturating_add(1);
    let max_locals = result_slot.saturating_add(ret_slots);
    // The deepest point is the post call: token (2), this, the arguments, the result.
    let max_stack = max_locals.saturating_add(2);

    let mut code = Vec::with_capacity(64);
    let load_this_and_args = |code: &mut Vec<u8>| {
        code.push(0x2a); // aload_0
        let mut slot = 1u16;
        for &k in &mt.args {
            local(code, k.load(), slot);
            slot = slot.saturating_add(k.slots());
        }
    };
    let invoke = |code: &mut Vec<u8>, op: u8, index: u16| {
        code.push(op);
        code.extend_from_slice(&index.to_be_bytes());
    };
    load_this_and_args(&mut code);
    invoke(&mut code, 0xb8, pre); // invokestatic
    load_this_and_args(&mut code);
    invoke(&mut code, 0xb7, orig); // invokespecial
    if let Some(k) = mt.ret {
        local(&mut code, k.store(), result_slot);
    }
    load_this_and_args(&mut code);
    if let Some(k) = mt.ret {
        local(&mut code, k.load(), result_slot);
    }
    invoke(&mut code, 0xb8, post); // invokestatic
    match mt.ret {
        Some(k) => {
            local(&mut code, k.load(), result_slot);
            code.push(k.ret());
        }
        None => code.push(0xb1), // return
    }

    let mut info = Vec::with_capacity(code.len() + 12);
    info.extend_from_slice(&max_stack.to_be_bytes());
    info.extend_from_slice(&max_locals.to_be_bytes());
    info.extend_from_slice(&(code.len() as u32).to_be_bytes());
    info.extend_from_slice(&code);
    info.extend_from_slice(&0u16.to_be_bytes()); // exception_table_length
    info.extend_from_slice(&0u16.to_be_bytes()); // attributes_count
    info
}

/// A load or store of local `slot`: the one-byte form up to 255, `wide` above.
fn local(code: &mut Vec<u8>, op: u8, slot: u16) {
    match u8::try_from(slot) {
        Ok(s) => code.extend_from_slice(&[op, s]),
        Err(_) => {
            code.push(0xc4); // wide
            code.push(op);
            code.extend_from_slice(&slot.to_be_bytes());
        }
    }
}
