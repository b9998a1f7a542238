/* The natives wrap_methods adds to Target (src/jvm/tests.rs), bound by their JNI names
 * ('$' mangles to _00024). Each prints what it was given, on fd 1 unbuffered so that
 * its lines interleave with Java's System.out (which flushes at each println). pre
 * returns a fresh token; post prints the token it got back and the result. */
#include <jni.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static jlong next_token = 100;

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

/* Copies a Java string (NULL -> "null") into buf. */
static const char *str(JNIEnv *env, jstring s, char *buf, size_t size) {
    if (s == NULL) return "null";
    const char *c = (*env)->GetStringUTFChars(env, s, NULL);
    snprintf(buf, size, "%s", c);
    (*env)->ReleaseStringUTFChars(env, s, c);
    return buf;
}

/* `this` as Target's toString() would say it: "Target(<name>)" from its field. */
static const char *who(JNIEnv *env, jobject self, char *buf, size_t size) {
    jclass c = (*env)->GetObjectClass(env, self);
    jfieldID f = (*env)->GetFieldID(env, c, "name", "Ljava/lang/String;");
    char name[256];
    snprintf(buf, size, "Target(%s)", str(env, (*env)->GetObjectField(env, self, f), name, sizeof name));
    return buf;
}

static const char *ints(JNIEnv *env, jintArray a, char *buf, size_t size) {
    jsize n = (*env)->GetArrayLength(env, a);
    jint v[16];
    if (n > 16) n = 16;
    (*env)->GetIntArrayRegion(env, a, 0, n, v);
    size_t at = snprintf(buf, size, "[");
    for (jsize i = 0; i < n && at < size; i++)
        at += snprintf(buf + at, size - at, i ? ",%d" : "%d", v[i]);
    if (at < size) snprintf(buf + at, size - at, "]");
    return buf;
}

#define PRE(m) Java_Target_tapline_00024##m##_00024pre
#define POST(m) Java_Target_tapline_00024##m##_00024post
#define SELF char me[300]; who(env, self, me, sizeof me)

JNIEXPORT jlong JNICALL PRE(add)(JNIEnv *env, jclass k, jobject self, jint a, jlong b, jdouble c) {
    SELF; jlong t = next_token++;
    say("pre add %s %d %lld %f -> %lld", me, a, (long long)b, c, (long long)t);
    return t;
}
JNIEXPORT void JNICALL POST(add)(JNIEnv *env, jclass k, jlong t, jobject self, jint a, jlong b, jdouble c, jint r) {
    SELF; say("post add %lld %s %d %lld %f = %d", (long long)t, me, a, (long long)b, c, r);
}

JNIEXPORT jlong JNICALL PRE(mul)(JNIEnv *env, jclass k, jobject self, jlong a, jint b) {
    SELF; jlong t = next_token++;
    say("pre mul %s %lld %d -> %lld", me, (long long)a, b, (long long)t);
    return t;
}
JNIEXPORT void JNICALL POST(mul)(JNIEnv *env, jclass k, jlong t, jobject self, jlong a, jint b, jlong r) {
    SELF; say("post mul %lld %s %lld %d = %lld", (long long)t, me, (long long)a, b, (long long)r);
}

JNIEXPORT jlong JNICALL PRE(half)(JNIEnv *env, jclass k, jobject self, jdouble d, jfloat f) {
    SELF; jlong t = next_token++;
    say("pre half %s %f %f -> %lld", me, d, (double)f, (long long)t);
    return t;
}
JNIEXPORT void JNICALL POST(half)(JNIEnv *env, jclass k, jlong t, jobject self, jdouble d, jfloat f, jdouble r) {
    SELF; say("post half %lld %s %f %f = %f", (long long)t, me, d, (double)f, r);
}

JNIEXPORT jlong JNICALL PRE(greet)(JNIEnv *env, jclass k, jobject self, jstring s, jintArray xs,
                                    jbyte bt, jchar ch, jshort sh, jboolean z) {
    SELF; char sb[256], xb[256]; jlong t = next_token++;
    say("pre greet %s %s %s %d %c %d %d -> %lld", me, str(env, s, sb, sizeof sb),
        ints(env, xs, xb, sizeof xb), bt, (char)ch, sh, z, (long long)t);
    return t;
}
JNIEXPORT void JNICALL POST(greet)(JNIEnv *env, jclass k, jlong t, jobject self, jstring s, jintArray xs,
                                   jbyte bt, jchar ch, jshort sh, jboolean z, jstring r) {
    SELF; char sb[256], xb[256], rb[256];
    say("post greet %lld %s %s %s %d %c %d %d = %s", (long long)t, me, str(env, s, sb, sizeof sb),
        ints(env, xs, xb, sizeof xb), bt, (char)ch, sh, z, str(env, r, rb, sizeof rb));
}

JNIEXPORT jlong JNICALL PRE(twice)(JNIEnv *env, jclass k, jobject self, jintArray xs) {
    SELF; char xb[256]; jlong t = next_token++;
    say("pre twice %s %s -> %lld", me, ints(env, xs, xb, sizeof xb), (long long)t);
    return t;
}
JNIEXPORT void JNICALL POST(twice)(JNIEnv *env, jclass k, jlong t, jobject self, jintArray xs, jintArray r) {
    SELF; char xb[256], rb[256];
    say("post twice %lld %s %s = %s", (long long)t, me, ints(env, xs, xb, sizeof xb), ints(env, r, rb, sizeof rb));
}

/* touch(byte[], int, int): pre sees the buffer before the call, post after it. */
JNIEXPORT jlong JNICALL PRE(touch)(JNIEnv *env, jclass k, jobject self, jbyteArray buf, jint off, jint len) {
    SELF; jbyte b[4] = {0}; jlong t = next_token++;
    (*env)->GetByteArrayRegion(env, buf, 0, 4, b);
    say("pre touch %s %d,%d,%d,%d %d %d -> %lld", me, b[0], b[1], b[2], b[3], off, len, (long long)t);
    return t;
}
JNIEXPORT void JNICALL POST(touch)(JNIEnv *env, jclass k, jlong t, jobject self, jbyteArray buf, jint off, jint len) {
    SELF; jbyte b[4] = {0};
    (*env)->GetByteArrayRegion(env, buf, 0, 4, b);
    say("post touch %lld %s %d,%d,%d,%d %d %d", (long long)t, me, b[0], b[1], b[2], b[3], off, len);
}

JNIEXPORT jlong JNICALL PRE(boom)(JNIEnv *env, jclass k, jobject self, jint x) {
    SELF; jlong t = next_token++;
    say("pre boom %s %d -> %lld", me, x, (long long)t);
    return t;
}
JNIEXPORT void JNICALL POST(boom)(JNIEnv *env, jclass k, jlong t, jobject self, jint x, jint r) {
    SELF; say("post boom %lld %s %d = %d", (long long)t, me, x, r);
}

JNIEXPORT jlong JNICALL PRE(scale)(JNIEnv *env, jclass k, jobject self, jfloat f) {
    SELF; jlong t = next_token++;
    say("pre scale %s %f -> %lld", me, (double)f, (long long)t);
    return t;
}
JNIEXPORT void JNICALL POST(scale)(JNIEnv *env, jclass k, jlong t, jobject self, jfloat f, jfloat r) {
    SELF; say("post scale %lld %s %f = %f", (long long)t, me, (double)f, (double)r);
}

JNIEXPORT jlong JNICALL PRE(odd)(JNIEnv *env, jclass k, jobject self, jint x) {
    SELF; jlong t = next_token++;
    say("pre odd %s %d -> %lld", me, x, (long long)t);
    return t;
}
JNIEXPORT void JNICALL POST(odd)(JNIEnv *env, jclass k, jlong t, jobject self, jint x, jboolean r) {
    SELF; say("post odd %lld %s %d = %d", (long long)t, me, x, r);
}
