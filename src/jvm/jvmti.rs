//! The few JVMTI functions the agent calls, declared by their slot in the function
//! table (`jvmti.h`, `struct jvmtiInterface_1_`: slot 1 is reserved, the table is
//! append-only since JVMTI 1.0, so the slots are the same on every JDK since 9), and
//! the event callback and capability layouts. JNI comes from `jni-sys`.
//!
//! Why declared here and not from a crate: the agent needs a dozen of the table's 150+
//! entries; declaring each by slot and C signature keeps every `unsafe` call in this
//! one file, next to the signature it relies on.

use core::ffi::{c_char, c_uchar, c_void};
use jni_sys::{jclass, jint, jlong, jobject, JNIEnv};

/// `jthread` (jvmti.h): a thread object.
#[allow(non_camel_case_types)]
pub type jthread = jobject;

/// `jvmtiEnv`: a pointer to the function table.
pub type JvmtiEnv = *const *const c_void;
/// `jvmtiError`.
pub type Error = u32;
/// `jrawMonitorID`.
pub type RawMonitor = *mut c_void;

pub const OK: Error = 0;
/// `JVMTI_VERSION_1_2`: what `GetEnv` is asked for (every JDK since 7 gives it).
pub const VERSION_1_2: jint = 0x3001_0200;
const ENABLE: u32 = 1;

pub const EVENT_CLASS_FILE_LOAD_HOOK: u32 = 54;
pub const EVENT_CLASS_PREPARE: u32 = 56;
pub const EVENT_OBJECT_FREE: u32 = 83;

// Slots of `jvmtiInterface_1` (1-based, as numbered in jvmti.h's comments).
const SET_EVENT_NOTIFICATION_MODE: usize = 2;
const CREATE_RAW_MONITOR: usize = 31;
const RAW_MONITOR_ENTER: usize = 33;
const RAW_MONITOR_EXIT: usize = 34;
const ALLOCATE: usize = 46;
const DEALLOCATE: usize = 47;
const GET_CLASS_SIGNATURE: usize = 48;
const GET_TAG: usize = 106;
const SET_TAG: usize = 107;
const SET_EVENT_CALLBACKS: usize = 122;
const ADD_CAPABILITIES: usize = 142;

/// `jvmtiCapabilities`: 128 bits, in declaration order from bit 0 of the first word.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct Capabilities([u32; 4]);

impl Capabilities {
    pub const TAG_OBJECTS: (usize, u32) = (0, 1 << 0);
    pub const GENERATE_ALL_CLASS_HOOK_EVENTS: (usize, u32) = (0, 1 << 26);
    pub const GENERATE_OBJECT_FREE_EVENTS: (usize, u32) = (1, 1 << 0);

    pub fn with(mut self, (word, bit): (usize, u32)) -> Self {
        self.0[word] |= bit;
        self
    }
}

pub type ClassFileLoadHook = unsafe extern "system" fn(
    jvmti: JvmtiEnv,
    jni: *mut JNIEnv,
    class_being_redefined: jclass,
    loader: jobject,
    name: *const c_char,
    protection_domain: jobject,
    class_data_len: jint,
    class_data: *const c_uchar,
    new_class_data_len: *mut jint,
    new_class_data: *mut *mut c_uchar,
);
pub type ClassPrepare =
    unsafe extern "system" fn(jvmti: JvmtiEnv, jni: *mut JNIEnv, thread: jthread, class: jclass);
pub type ObjectFree = unsafe extern "system" fn(jvmti: JvmtiEnv, tag: jlong);

/// `jvmtiEventCallbacks`: one pointer per event from `JVMTI_EVENT_VM_INIT` (50) to
/// `JVMTI_EVENT_SAMPLED_OBJECT_ALLOC` (86); the size passed says how many we know.
#[repr(C)]
pub struct EventCallbacks {
    slots: [*const c_void; 37],
}

impl EventCallbacks {
    const FIRST_EVENT: u32 = 50;

    pub fn new(cflh: ClassFileLoadHook, prepare: ClassPrepare, free: ObjectFree) -> Self {
        let mut slots = [core::ptr::null(); 37];
        slots[(EVENT_CLASS_FILE_LOAD_HOOK - Self::FIRST_EVENT) as usize] = cflh as *const c_void;
        slots[(EVENT_CLASS_PREPARE - Self::FIRST_EVENT) as usize] = prepare as *const c_void;
        slots[(EVENT_OBJECT_FREE - Self::FIRST_EVENT) as usize] = free as *const c_void;
        EventCallbacks { slots }
    }
}

/// A JVMTI environment the JVM gave us (valid for the JVM's life).
#[derive(Clone, Copy)]
pub struct Jvmti(pub JvmtiEnv);

// SAFETY: a jvmtiEnv may be used from any thread (JVMTI spec, "Environments").
unsafe impl Send for Jvmti {}
// SAFETY: as above.
unsafe impl Sync for Jvmti {}

impl Jvmti {
    /// The function in slot `n`, as a raw pointer.
    fn slot(self, n: usize) -> *const c_void {
        // SAFETY: `self.0` is a jvmtiEnv from GetEnv: it points to the function table,
        // whose slots 1..=156 exist on every JDK this agent loads into (the slots used
        // here are all below 143).
        unsafe {
            let table = *self.0 as *const *const c_void;
            *table.add(n - 1)
        }
    }

    pub fn add_capabilities(self, caps: &Capabilities) -> Error {
        type F = unsafe extern "system" fn(JvmtiEnv, *const Capabilities) -> Error;
        // SAFETY: slot 142 is `AddCapabilities(jvmtiEnv*, const jvmtiCapabilities*)`.
        let f: F = unsafe { core::mem::transmute(self.slot(ADD_CAPABILITIES)) };
        // SAFETY: a valid env and a pointer to a live capabilities struct.
        unsafe { f(self.0, caps) }
    }

    pub fn set_event_callbacks(self, cb: &EventCallbacks) -> Error {
        type F = unsafe extern "system" fn(JvmtiEnv, *const EventCallbacks, jint) -> Error;
        // SAFETY: slot 122 is `SetEventCallbacks(env, const jvmtiEventCallbacks*, jint)`.
        let f: F = unsafe { core::mem::transmute(self.slot(SET_EVENT_CALLBACKS)) };
        let size = core::mem::size_of::<EventCallbacks>() as jint;
        // SAFETY: the JVM copies the struct; its size says which slots we filled.
        unsafe { f(self.0, cb, size) }
    }

    /// Enables `event` for every thread.
    pub fn enable(self, event: u32) -> Error {
        type F = unsafe extern "C" fn(JvmtiEnv, u32, u32, jthread, ...) -> Error;
        // SAFETY: slot 2 is `SetEventNotificationMode(env, jvmtiEventMode, jvmtiEvent,
        // jthread, ...)`, a variadic C function.
        let f: F = unsafe { core::mem::transmute(self.slot(SET_EVENT_NOTIFICATION_MODE)) };
        // SAFETY: a valid env; a null thread means every thread.
        unsafe { f(self.0, ENABLE, event, core::ptr::null_mut()) }
    }

    /// `len` bytes from the JVM's allocator (what a ClassFileLoadHook must hand back).
    pub fn allocate(self, len: usize) -> Option<*mut u8> {
        type F = unsafe extern "system" fn(JvmtiEnv, jlong, *mut *mut u8) -> Error;
        // SAFETY: slot 46 is `Allocate(env, jlong size, unsigned char** mem_ptr)`.
        let f: F = unsafe { core::mem::transmute(self.slot(ALLOCATE)) };
        let mut p = core::ptr::null_mut();
        // SAFETY: a valid env and an out pointer to a local.
        let e = unsafe { f(self.0, len as jlong, &mut p) };
        (e == OK && !p.is_null()).then_some(p)
    }

    pub fn deallocate(self, p: *mut u8) {
        type F = unsafe extern "system" fn(JvmtiEnv, *mut u8) -> Error;
        // SAFETY: slot 47 is `Deallocate(env, unsigned char* mem)`.
        let f: F = unsafe { core::mem::transmute(self.slot(DEALLOCATE)) };
        // SAFETY: `p` came from `allocate` or a JVMTI function that allocates.
        unsafe { f(self.0, p) };
    }

    /// The class's JVM signature (`Lpkg/Name;`) into `out`; its length, or None.
    pub fn class_signature(self, class: jclass, out: &mut [u8]) -> Option<usize> {
        type F = unsafe extern "system" fn(
            JvmtiEnv,
            jclass,
            *mut *mut c_char,
            *mut *mut c_char,
        ) -> Error;
        // SAFETY: slot 48 is `GetClassSignature(env, jclass, char** sig, char** generic)`.
        let f: F = unsafe { core::mem::transmute(self.slot(GET_CLASS_SIGNATURE)) };
        let mut sig = core::ptr::null_mut();
        // SAFETY: a valid env and class; a null generic pointer is allowed.
        let e = unsafe { f(self.0, class, &mut sig, core::ptr::null_mut()) };
        if e != OK || sig.is_null() {
            return None;
        }
        // SAFETY: JVMTI returns a NUL-terminated modified-UTF-8 string.
        let bytes = unsafe { core::ffi::CStr::from_ptr(sig) }.to_bytes();
        let n = bytes.len().min(out.len());
        out[..n].copy_from_slice(&bytes[..n]);
        self.deallocate(sig.cast::<u8>());
        (n == bytes.len()).then_some(n)
    }

    /// The object's tag (0: none).
    pub fn tag(self, obj: jobject) -> jlong {
        type F = unsafe extern "system" fn(JvmtiEnv, jobject, *mut jlong) -> Error;
        // SAFETY: slot 106 is `GetTag(env, jobject, jlong* tag_ptr)`.
        let f: F = unsafe { core::mem::transmute(self.slot(GET_TAG)) };
        let mut tag = 0;
        // SAFETY: a valid env, a live local reference, an out pointer to a local.
        let e = unsafe { f(self.0, obj, &mut tag) };
        if e == OK {
            tag
        } else {
            0
        }
    }

    pub fn set_tag(self, obj: jobject, tag: jlong) -> Error {
        type F = unsafe extern "system" fn(JvmtiEnv, jobject, jlong) -> Error;
        // SAFETY: slot 107 is `SetTag(env, jobject, jlong)`.
        let f: F = unsafe { core::mem::transmute(self.slot(SET_TAG)) };
        // SAFETY: a valid env and a live local reference.
        unsafe { f(self.0, obj, tag) }
    }

    pub fn create_raw_monitor(self, name: &core::ffi::CStr) -> Option<RawMonitor> {
        type F = unsafe extern "system" fn(JvmtiEnv, *const c_char, *mut RawMonitor) -> Error;
        // SAFETY: slot 31 is `CreateRawMonitor(env, const char* name, jrawMonitorID*)`.
        let f: F = unsafe { core::mem::transmute(self.slot(CREATE_RAW_MONITOR)) };
        let mut m = core::ptr::null_mut();
        // SAFETY: a valid env, a NUL-terminated name, an out pointer to a local.
        let e = unsafe { f(self.0, name.as_ptr(), &mut m) };
        (e == OK && !m.is_null()).then_some(m)
    }

    pub fn raw_monitor_enter(self, m: RawMonitor) -> Error {
        type F = unsafe extern "system" fn(JvmtiEnv, RawMonitor) -> Error;
        // SAFETY: slot 33 is `RawMonitorEnter(env, jrawMonitorID)`.
        let f: F = unsafe { core::mem::transmute(self.slot(RAW_MONITOR_ENTER)) };
        // SAFETY: a monitor this env created.
        unsafe { f(self.0, m) }
    }

    pub fn raw_monitor_exit(self, m: RawMonitor) -> Error {
        type F = unsafe extern "system" fn(JvmtiEnv, RawMonitor) -> Error;
        // SAFETY: slot 34 is `RawMonitorExit(env, jrawMonitorID)`.
        let f: F = unsafe { core::mem::transmute(self.slot(RAW_MONITOR_EXIT)) };
        // SAFETY: a monitor this env created and this thread entered.
        unsafe { f(self.0, m) }
    }
}

/// The JNI environment of the current thread (valid during one native call or event).
#[derive(Clone, Copy)]
pub struct Jni(pub *mut JNIEnv);

use jni_sys::{jarray, jfieldID, jmethodID, jobjectArray, jsize, jstring, jvalue, JNINativeMethod};

/// `JNI_ABORT`: release a critical array without copying anything back.
const JNI_ABORT: jint = 2;

impl Jni {
    /// The JNI function table.
    fn f(self) -> &'static jni_sys::JNINativeInterface_ {
        // SAFETY: `self.0` is the JNIEnv the JVM passed to this native or event; it
        // points to the table, which lives as long as the JVM.
        unsafe { &**self.0 }
    }

    /// Clears a pending exception (one a JNI call of ours raised); true if there was one.
    pub fn clear_exception(self) -> bool {
        // SAFETY: a valid env on its own thread.
        let pending = unsafe { (self.f().v1_4.ExceptionCheck)(self.0) };
        if pending {
            // SAFETY: as above.
            unsafe { (self.f().v1_4.ExceptionClear)(self.0) };
        }
        pending
    }

    pub fn find_class(self, name: &core::ffi::CStr) -> Option<jclass> {
        // SAFETY: a valid env and a NUL-terminated class name.
        let c = unsafe { (self.f().v1_4.FindClass)(self.0, name.as_ptr()) };
        (!self.clear_exception() && !c.is_null()).then_some(c)
    }

    pub fn field_id(
        self,
        class: jclass,
        name: &core::ffi::CStr,
        sig: &core::ffi::CStr,
    ) -> Option<jfieldID> {
        // SAFETY: a valid env and class, NUL-terminated name and signature.
        let id = unsafe { (self.f().v1_4.GetFieldID)(self.0, class, name.as_ptr(), sig.as_ptr()) };
        (!self.clear_exception() && !id.is_null()).then_some(id)
    }

    pub fn method_id(
        self,
        class: jclass,
        name: &core::ffi::CStr,
        sig: &core::ffi::CStr,
    ) -> Option<jmethodID> {
        // SAFETY: a valid env and class, NUL-terminated name and signature.
        let id = unsafe { (self.f().v1_4.GetMethodID)(self.0, class, name.as_ptr(), sig.as_ptr()) };
        (!self.clear_exception() && !id.is_null()).then_some(id)
    }

    /// # Safety
    /// `field` must be an object field of `obj`'s class.
    pub unsafe fn object_field(self, obj: jobject, field: jfieldID) -> jobject {
        // SAFETY: the caller's contract.
        unsafe { (self.f().v1_4.GetObjectField)(self.0, obj, field) }
    }

    /// # Safety
    /// `field` must be an `int` field of `obj`'s class.
    pub unsafe fn int_field(self, obj: jobject, field: jfieldID) -> jint {
        // SAFETY: the caller's contract.
        unsafe { (self.f().v1_4.GetIntField)(self.0, obj, field) }
    }

    pub fn array_length(self, a: jarray) -> jsize {
        if a.is_null() {
            return 0;
        }
        // SAFETY: a valid env and a non-null array reference.
        unsafe { (self.f().v1_4.GetArrayLength)(self.0, a) }
    }

    /// Element `i` of an object array (a new local reference, or null).
    pub fn element(self, a: jobjectArray, i: jsize) -> jobject {
        if a.is_null() || i < 0 || i >= self.array_length(a) {
            return core::ptr::null_mut();
        }
        // SAFETY: a valid env, a non-null array and an index within its length.
        let o = unsafe { (self.f().v1_4.GetObjectArrayElement)(self.0, a, i) };
        if self.clear_exception() {
            return core::ptr::null_mut();
        }
        o
    }

    /// The class of `obj` (a new local reference).
    pub fn object_class(self, obj: jobject) -> jclass {
        if obj.is_null() {
            return core::ptr::null_mut();
        }
        // SAFETY: a valid env and a non-null object reference.
        unsafe { (self.f().v1_4.GetObjectClass)(self.0, obj) }
    }

    pub fn delete_local(self, o: jobject) {
        if !o.is_null() {
            // SAFETY: a valid env and a local reference this native made.
            unsafe { (self.f().v1_4.DeleteLocalRef)(self.0, o) };
        }
    }

    /// The address a direct buffer's memory starts at (null for a heap buffer).
    pub fn direct_address(self, buf: jobject) -> *mut u8 {
        // SAFETY: a valid env and a buffer reference (null is answered with null).
        unsafe { (self.f().v1_4.GetDirectBufferAddress)(self.0, buf) as *mut u8 }
    }

    /// Runs `f` on the bytes `[from, to)` of a Java `byte[]`, read in place inside a
    /// JNI critical region (no JNI calls may happen in `f`; capture makes none).
    pub fn with_bytes(self, a: jarray, from: usize, to: usize, f: impl FnOnce(&[u8])) {
        let len = self.array_length(a).max(0) as usize;
        if a.is_null() || from > to || to > len {
            return;
        }
        // SAFETY: a valid env and a non-null primitive array.
        let p =
            unsafe { (self.f().v1_4.GetPrimitiveArrayCritical)(self.0, a, core::ptr::null_mut()) };
        if p.is_null() {
            self.clear_exception();
            return;
        }
        // SAFETY: `p` points to the array's `len` bytes until released; `to <= len`.
        let bytes = unsafe { core::slice::from_raw_parts((p as *const u8).add(from), to - from) };
        let _ = std::panic::catch_unwind(core::panic::AssertUnwindSafe(|| f(bytes)));
        // SAFETY: releasing what GetPrimitiveArrayCritical returned, copying nothing back.
        unsafe { (self.f().v1_4.ReleasePrimitiveArrayCritical)(self.0, a, p, JNI_ABORT) };
    }

    /// Calls an `Object m()` method (null on an exception, which is cleared).
    ///
    /// # Safety
    /// `m` must be a method of `obj`'s class with descriptor `()Ljava/lang/...;`.
    pub unsafe fn call_object(self, obj: jobject, m: jmethodID) -> jobject {
        let args: [jvalue; 0] = [];
        // SAFETY: the caller's contract; no arguments.
        let o = unsafe { (self.f().v1_4.CallObjectMethodA)(self.0, obj, m, args.as_ptr()) };
        if self.clear_exception() {
            return core::ptr::null_mut();
        }
        o
    }

    /// Calls an `int m()` method (None on an exception, which is cleared).
    ///
    /// # Safety
    /// `m` must be a method of `obj`'s class with descriptor `()I`.
    pub unsafe fn call_int(self, obj: jobject, m: jmethodID) -> Option<jint> {
        let args: [jvalue; 0] = [];
        // SAFETY: the caller's contract; no arguments.
        let v = unsafe { (self.f().v1_4.CallIntMethodA)(self.0, obj, m, args.as_ptr()) };
        (!self.clear_exception()).then_some(v)
    }

    /// A Java string's modified UTF-8 into `out`; its length (0 for null or too long).
    pub fn string_into(self, s: jstring, out: &mut [u8]) -> usize {
        if s.is_null() {
            return 0;
        }
        // SAFETY: a valid env and a non-null string reference.
        let chars = unsafe { (self.f().v1_4.GetStringLength)(self.0, s) };
        // SAFETY: as above.
        let bytes = unsafe { (self.f().v1_4.GetStringUTFLength)(self.0, s) };
        if chars < 0 || bytes < 0 || bytes as usize >= out.len() {
            return 0;
        }
        // SAFETY: `out` holds `bytes` + 1 (the NUL GetStringUTFRegion appends).
        unsafe {
            (self.f().v1_4.GetStringUTFRegion)(self.0, s, 0, chars, out.as_mut_ptr() as *mut c_char)
        };
        if self.clear_exception() {
            return 0;
        }
        bytes as usize
    }

    /// Binds `methods` (NUL-terminated names and descriptors) to `class`.
    pub fn register_natives(self, class: jclass, methods: &[JNINativeMethod]) -> bool {
        // SAFETY: a valid env and class; each entry's strings are NUL-terminated and
        // outlive the call, each pointer a function of the described signature.
        let r = unsafe {
            (self.f().v1_4.RegisterNatives)(self.0, class, methods.as_ptr(), methods.len() as jint)
        };
        !self.clear_exception() && r == 0
    }
}
