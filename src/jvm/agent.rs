//! The JVMTI agent: `Agent_OnLoad`, exported by libtapline.so and loaded with
//! `-agentpath:<path of libtapline.so>`.
//!
//! Why inside the preload library: a JVM started under `LD_PRELOAD` maps libtapline.so
//! before `main`; `-agentpath:` with the same path makes `dlopen` return that same
//! object, so the agent's natives and the libc hooks share one state (the session
//! table, the fd table, the spool writers), and the socket call made inside a JSSE
//! call teaches the session its socket exactly as for OpenSSL.
//!
//! What it does: `ClassFileLoadHook` compares the loading class's name with the few
//! JSSE classes of [`JSSE_TARGETS`] and returns at once for every other class; a target's
//! bytes go to [`super::wrap_methods`] and the wrapped class goes back to the JVM
//! through JVMTI `Allocate`. `ClassPrepare` of a wrapped class binds its natives
//! ([`super::natives`]) with `RegisterNatives`. Any refusal (a [`super::Shape`], a
//! JVMTI error) leaves the class as it is and says so once in a `Notice`
//! (`java_class_untouched`). Nothing here may stop the JVM: every callback catches
//! panics, and `Agent_OnLoad` returns 0 whatever happens.

use core::ffi::{c_char, c_uchar, c_void};
use core::sync::atomic::{AtomicPtr, AtomicU8, AtomicUsize, Ordering};

use jni_sys::{jclass, jint, jlong, jobject, JNIEnv, JNINativeMethod, JavaVM, JNI_OK};
use tapline_record::NoticeKind;

use super::jvmti::{self, jthread, Capabilities, EventCallbacks, Jni, Jvmti};
use super::natives;
use super::{native_methods, wrap_methods, JSSE_TARGETS};
use crate::{config, hooks, spool};

/// Where a target class stands.
mod status {
    /// Not loaded yet.
    pub const WAITING: u8 = 0;
    /// Wrapped; its natives are bound when it is prepared.
    pub const WRAPPED: u8 = 1;
    /// Natives bound: the wrapped methods capture.
    pub const BOUND: u8 = 2;
    /// Left as it is (said once in a notice).
    pub const UNTOUCHED: u8 = 3;
}

/// The classes the agent instruments and their wraps: [`JSSE_TARGETS`] (`jvm/mod.rs`'s
/// list, checked on the JDKs' own classes); per class one [`status`].
static STATUS: [AtomicU8; JSSE_TARGETS.len()] =
    [const { AtomicU8::new(status::WAITING) }; JSSE_TARGETS.len()];

/// The JVMTI environment (null until `Agent_OnLoad` got one).
static JVMTI: AtomicPtr<c_void> = AtomicPtr::new(core::ptr::null_mut());
/// Wrapped classes not yet prepared: while 0, `ClassPrepare` returns at once.
static PENDING: AtomicUsize = AtomicUsize::new(0);

/// The agent's JVMTI environment, once loaded.
pub(super) fn jvmti() -> Option<Jvmti> {
    let p = JVMTI.load(Ordering::Acquire);
    (!p.is_null()).then_some(Jvmti(p as jvmti::JvmtiEnv))
}

/// Called by the JVM for `-agentpath:`. Always returns 0: a JVM must start, with or
/// without us.
///
/// # Safety
/// Called by the JVM with its `JavaVM`.
#[no_mangle]
pub unsafe extern "system" fn Agent_OnLoad(
    vm: *mut JavaVM,
    _options: *mut c_char,
    _reserved: *mut c_void,
) -> jint {
    let _ = std::panic::catch_unwind(|| load(vm));
    0
}

fn load(vm: *mut JavaVM) {
    if vm.is_null() || !config::active() || !config::java() {
        return;
    }
    let mut env: *mut c_void = core::ptr::null_mut();
    // SAFETY: `vm` is the JavaVM the JVM passed to Agent_OnLoad; GetEnv writes an env
    // pointer for the asked version into `env`.
    let r = unsafe { ((**vm).v1_2.GetEnv)(vm, &mut env, jvmti::VERSION_1_2) };
    if r != JNI_OK || env.is_null() {
        return;
    }
    let jv = Jvmti(env as jvmti::JvmtiEnv);
    let caps = Capabilities::default()
        .with(Capabilities::TAG_OBJECTS)
        .with(Capabilities::GENERATE_ALL_CLASS_HOOK_EVENTS)
        .with(Capabilities::GENERATE_OBJECT_FREE_EVENTS);
    if jv.add_capabilities(&caps) != jvmti::OK {
        return;
    }
    if !natives::init(jv) {
        return;
    }
    let callbacks = EventCallbacks::new(class_file_load_hook, class_prepare, object_free);
    if jv.set_event_callbacks(&callbacks) != jvmti::OK {
        return;
    }
    JVMTI.store(env, Ordering::Release);
    let _ = jv.enable(jvmti::EVENT_OBJECT_FREE);
    let _ = jv.enable(jvmti::EVENT_CLASS_PREPARE);
    let _ = jv.enable(jvmti::EVENT_CLASS_FILE_LOAD_HOOK);
}

/// The target whose internal name is the NUL-terminated `name`: compared byte by byte,
/// leaving at the first difference (most classes differ at the first byte).
///
/// # Safety
/// `name` is a NUL-terminated string.
unsafe fn target_named(name: *const c_char) -> Option<usize> {
    'targets: for (i, (target, _)) in JSSE_TARGETS.iter().enumerate() {
        for (k, &b) in target.as_bytes().iter().enumerate() {
            // SAFETY: every byte before `k` matched a non-NUL byte of the target's
            // name, so the string has not ended before `k`.
            if unsafe { *name.cast::<u8>().add(k) } != b {
                continue 'targets;
            }
        }
        // SAFETY: as above, for the byte after the whole name.
        if unsafe { *name.add(target.len()) } == 0 {
            return Some(i);
        }
    }
    None
}

#[allow(clippy::too_many_arguments)]
unsafe extern "system" fn class_file_load_hook(
    _jvmti: jvmti::JvmtiEnv,
    _jni: *mut JNIEnv,
    class_being_redefined: jclass,
    _loader: jobject,
    name: *const c_char,
    _protection_domain: jobject,
    class_data_len: jint,
    class_data: *const c_uchar,
    new_class_data_len: *mut jint,
    new_class_data: *mut *mut c_uchar,
) {
    if name.is_null() || !class_being_redefined.is_null() {
        return;
    }
    // SAFETY: the JVM passes the class's NUL-terminated internal name.
    let Some(i) = (unsafe { target_named(name) }) else {
        return;
    };
    if class_data.is_null() || class_data_len <= 0 || new_class_data.is_null() {
        return;
    }
    // SAFETY: the JVM passes `class_data_len` bytes of class file at `class_data`.
    let bytes = unsafe { core::slice::from_raw_parts(class_data, class_data_len as usize) };
    let _ = std::panic::catch_unwind(|| {
        // SAFETY: the out pointers are the JVM's, checked non-null above.
        unsafe { transform(i, bytes, new_class_data_len, new_class_data) }
    });
}

/// Wraps target `i`'s methods in `bytes` and hands the new class to the JVM.
///
/// # Safety
/// The out pointers are the ones `ClassFileLoadHook` received.
unsafe fn transform(i: usize, bytes: &[u8], out_len: *mut jint, out: *mut *mut c_uchar) {
    let (_, wraps) = JSSE_TARGETS[i];
    if STATUS[i].load(Ordering::Acquire) != status::WAITING {
        // Another loader defines the same name (not the JDK's): left alone.
        return;
    }
    let Some(jv) = jvmti() else { return };
    let class_name = JSSE_TARGETS[i].0;
    if wraps
        .iter()
        .any(|w| natives::for_method(class_name, w.method, w.desc).is_none())
    {
        return untouched(i, "no natives for a wrapped method");
    }
    let wrapped = match wrap_methods(bytes, wraps) {
        Ok(w) => w,
        Err(shape) => return untouched(i, shape.0),
    };
    let Ok(len) = jint::try_from(wrapped.len()) else {
        return untouched(i, "wrapped class too large");
    };
    let Some(mem) = jv.allocate(wrapped.len()) else {
        return untouched(i, "JVMTI Allocate failed");
    };
    // SAFETY: `mem` holds `wrapped.len()` bytes just allocated for us.
    unsafe { core::ptr::copy_nonoverlapping(wrapped.as_ptr(), mem, wrapped.len()) };
    STATUS[i].store(status::WRAPPED, Ordering::Release);
    PENDING.fetch_add(1, Ordering::AcqRel);
    // SAFETY: the JVM's out pointers; it takes ownership of `mem`.
    unsafe {
        *out_len = len;
        *out = mem;
    }
}

/// Says once that target `i` is left as it is, and why.
fn untouched(i: usize, why: &str) {
    let prev = STATUS[i].swap(status::UNTOUCHED, Ordering::AcqRel);
    if prev == status::UNTOUCHED {
        return;
    }
    let mut text = [0u8; 256];
    let mut n = 0;
    for part in [JSSE_TARGETS[i].0.as_bytes(), b": ", why.as_bytes()] {
        let k = part.len().min(text.len() - n);
        text[n..n + k].copy_from_slice(&part[..k]);
        n += k;
    }
    hooks::after(|| {
        spool::notice(NoticeKind::JavaClassUntouched, spool::pid(), &text[..n]);
    });
}

unsafe extern "system" fn class_prepare(
    _jvmti: jvmti::JvmtiEnv,
    jni: *mut JNIEnv,
    _thread: jthread,
    class: jclass,
) {
    if PENDING.load(Ordering::Acquire) == 0 || jni.is_null() || class.is_null() {
        return;
    }
    let _ = std::panic::catch_unwind(|| prepare(Jni(jni), class));
}

/// A class was prepared while a wrapped one waits: if it is that one, bind its natives.
fn prepare(jni: Jni, class: jclass) {
    let Some(jv) = jvmti() else { return };
    let mut sig = [0u8; 96];
    let Some(n) = jv.class_signature(class, &mut sig) else {
        return;
    };
    // "Lname;" → name
    let Some(name) = sig[..n]
        .strip_prefix(b"L")
        .and_then(|s| s.strip_suffix(b";"))
    else {
        return;
    };
    let Some(i) = JSSE_TARGETS.iter().position(|t| t.0.as_bytes() == name) else {
        return;
    };
    let (class_name, wraps) = JSSE_TARGETS[i];
    if STATUS[i]
        .compare_exchange(
            status::WRAPPED,
            status::BOUND,
            Ordering::AcqRel,
            Ordering::Acquire,
        )
        .is_err()
    {
        return;
    }
    PENDING.fetch_sub(1, Ordering::AcqRel);
    let mut names: Vec<std::ffi::CString> = Vec::with_capacity(wraps.len() * 4);
    let mut methods: Vec<JNINativeMethod> = Vec::with_capacity(wraps.len() * 2);
    for w in wraps {
        let Some(ptrs) = natives::for_method(class_name, w.method, w.desc) else {
            return untouched(i, "no natives for a wrapped method");
        };
        for ((name, desc), f) in native_methods(w).into_iter().zip(ptrs) {
            let (Ok(name), Ok(desc)) = (std::ffi::CString::new(name), std::ffi::CString::new(desc))
            else {
                return untouched(i, "native method name");
            };
            methods.push(JNINativeMethod {
                name: name.as_ptr() as *mut c_char,
                signature: desc.as_ptr() as *mut c_char,
                fnPtr: f,
            });
            names.push(name);
            names.push(desc);
        }
    }
    if !jni.register_natives(class, &methods) {
        // The wrapped methods now throw UnsatisfiedLinkError: this must never happen
        // for a class `wrap_methods` accepted (the descriptors come from the same
        // place); said so the report shows it.
        untouched(i, "RegisterNatives failed");
    }
}

unsafe extern "system" fn object_free(_jvmti: jvmti::JvmtiEnv, tag: jlong) {
    let _ = std::panic::catch_unwind(|| natives::object_freed(tag));
}
