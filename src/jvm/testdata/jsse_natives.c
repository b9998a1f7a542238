/* Natives for the JDK's own TLS classes wrapped by wrap_methods (src/jvm/tests.rs), bound
 * with RegisterNatives from JNI_OnLoad as the agent does. Each prints one line on fd 1:
 *   pre <method> <token> <what>   /   post <method> <token> <what>
 * so the test can pair every post with its pre and check the plaintext they saw. */
#include <jni.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static volatile jlong next_token = 1;

static void say(const char *fmt, ...) {
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if (n > (int)sizeof line - 2) n = sizeof line - 2;
    line[n++] = '\n';
    (void)!write(1, line, n);
}

static jlong token(void) { return __sync_fetch_and_add(&next_token, 1); }

/* b[off..off+len] as text (at most 64 bytes). */
static const char *text(JNIEnv *env, jbyteArray b, jint off, jint len, char *buf) {
    if (len < 0) len = 0;
    if (len > 64) len = 64;
    memset(buf, 0, 65);
    (*env)->GetByteArrayRegion(env, b, off, len, (jbyte *)buf);
    if ((*env)->ExceptionCheck(env)) { (*env)->ExceptionClear(env); return "?"; }
    return buf;
}

static int int_call(JNIEnv *env, jobject o, const char *name) {
    jclass c = (*env)->GetObjectClass(env, o);
    jmethodID m = (*env)->GetMethodID(env, c, name, "()I");
    return (*env)->CallIntMethod(env, o, m);
}

/* SSLSocketImpl$AppOutputStream.write([BII)V */
static jlong write_pre(JNIEnv *env, jclass k, jobject self, jbyteArray b, jint off, jint len) {
    char buf[65]; jlong t = token();
    say("pre write %lld %s", (long long)t, text(env, b, off, len, buf));
    return t;
}
static void write_post(JNIEnv *env, jclass k, jlong t, jobject self, jbyteArray b, jint off, jint len) {
    char buf[65];
    say("post write %lld %s", (long long)t, text(env, b, off, len, buf));
}

/* SSLSocketImpl$AppInputStream.read([BII)I */
static jlong read_pre(JNIEnv *env, jclass k, jobject self, jbyteArray b, jint off, jint len) {
    jlong t = token();
    say("pre read %lld %d", (long long)t, len);
    return t;
}
static void read_post(JNIEnv *env, jclass k, jlong t, jobject self, jbyteArray b, jint off, jint len, jint r) {
    char buf[65];
    say("post read %lld %d %s", (long long)t, r, text(env, b, off, r, buf));
}

/* SSLEngineImpl.wrap([Ljava/nio/ByteBuffer;IILjava/nio/ByteBuffer;) */
static jlong wrap4_pre(JNIEnv *env, jclass k, jobject self, jobjectArray srcs, jint off, jint len, jobject dst) {
    jlong t = token();
    say("pre wrap4 %lld %d", (long long)t, len);
    return t;
}
static void wrap4_post(JNIEnv *env, jclass k, jlong t, jobject self, jobjectArray srcs, jint off, jint len,
                       jobject dst, jobject r) {
    say("post wrap4 %lld produced %d", (long long)t, int_call(env, r, "bytesProduced"));
}

/* SSLEngineImpl.wrap([Ljava/nio/ByteBuffer;II[Ljava/nio/ByteBuffer;II) */
static jlong wrap6_pre(JNIEnv *env, jclass k, jobject self, jobjectArray srcs, jint off, jint len,
                       jobjectArray dsts, jint doff, jint dlen) {
    jlong t = token();
    say("pre wrap6 %lld %d %d", (long long)t, len, dlen);
    return t;
}
static void wrap6_post(JNIEnv *env, jclass k, jlong t, jobject self, jobjectArray srcs, jint off, jint len,
                       jobjectArray dsts, jint doff, jint dlen, jobject r) {
    say("post wrap6 %lld produced %d", (long long)t, int_call(env, r, "bytesProduced"));
}

/* SSLEngineImpl.unwrap(Ljava/nio/ByteBuffer;[Ljava/nio/ByteBuffer;II) */
static jlong unwrap4_pre(JNIEnv *env, jclass k, jobject self, jobject src, jobjectArray dsts, jint off, jint len) {
    jlong t = token();
    say("pre unwrap4 %lld %d", (long long)t, int_call(env, src, "remaining"));
    return t;
}
static void unwrap4_post(JNIEnv *env, jclass k, jlong t, jobject self, jobject src, jobjectArray dsts, jint off,
                         jint len, jobject r) {
    say("post unwrap4 %lld consumed %d", (long long)t, int_call(env, r, "bytesConsumed"));
}

/* SSLEngineImpl.unwrap([Ljava/nio/ByteBuffer;II[Ljava/nio/ByteBuffer;II) */
static jlong unwrap6_pre(JNIEnv *env, jclass k, jobject self, jobjectArray srcs, jint off, jint len,
                         jobjectArray dsts, jint doff, jint dlen) {
    jlong t = token();
    say("pre unwrap6 %lld %d %d", (long long)t, len, dlen);
    return t;
}
static void unwrap6_post(JNIEnv *env, jclass k, jlong t, jobject self, jobjectArray srcs, jint off, jint len,
                         jobjectArray dsts, jint doff, jint dlen, jobject r) {
    say("post unwrap6 %lld consumed %d", (long long)t, int_call(env, r, "bytesConsumed"));
}

#define BB "Ljava/nio/ByteBuffer;"
#define BBS "[Ljava/nio/ByteBuffer;"
#define RES "Ljavax/net/ssl/SSLEngineResult;"
#define OBJ "Ljava/lang/Object;"

static JNINativeMethod out_natives[] = {
    {"tapline$write$pre", "(" OBJ "[BII)J", (void *)write_pre},
    {"tapline$write$post", "(J" OBJ "[BII)V", (void *)write_post},
};
static JNINativeMethod in_natives[] = {
    {"tapline$read$pre", "(" OBJ "[BII)J", (void *)read_pre},
    {"tapline$read$post", "(J" OBJ "[BIII)V", (void *)read_post},
};
static JNINativeMethod engine_natives[] = {
    {"tapline$wrap$pre", "(" OBJ BBS "II" BB ")J", (void *)wrap4_pre},
    {"tapline$wrap$post", "(J" OBJ BBS "II" BB RES ")V", (void *)wrap4_post},
    {"tapline$wrap$pre", "(" OBJ BBS "II" BBS "II)J", (void *)wrap6_pre},
    {"tapline$wrap$post", "(J" OBJ BBS "II" BBS "II" RES ")V", (void *)wrap6_post},
    {"tapline$unwrap$pre", "(" OBJ BB BBS "II)J", (void *)unwrap4_pre},
    {"tapline$unwrap$post", "(J" OBJ BB BBS "II" RES ")V", (void *)unwrap4_post},
    {"tapline$unwrap$pre", "(" OBJ BBS "II" BBS "II)J", (void *)unwrap6_pre},
    {"tapline$unwrap$post", "(J" OBJ BBS "II" BBS "II" RES ")V", (void *)unwrap6_post},
};

static int bind(JNIEnv *env, const char *cls, JNINativeMethod *m, int n) {
    jclass c = (*env)->FindClass(env, cls);
    if (c == NULL || (*env)->RegisterNatives(env, c, m, n) != 0) {
        (*env)->ExceptionDescribe(env);
        say("cannot bind %s", cls);
        return -1;
    }
    say("bound %s", cls);
    return 0;
}

JNIEXPORT jint JNICALL JNI_OnLoad(JavaVM *vm, void *reserved) {
    JNIEnv *env;
    if ((*vm)->GetEnv(vm, (void **)&env, JNI_VERSION_1_8) != JNI_OK) return JNI_ERR;
    bind(env, "sun/security/ssl/SSLSocketImpl$AppOutputStream", out_natives, 2);
    bind(env, "sun/security/ssl/SSLSocketImpl$AppInputStream", in_natives, 2);
    bind(env, "sun/security/ssl/SSLEngineImpl", engine_natives, 8);
    return JNI_VERSION_1_8;
}
