/* Per-call cost of the inline hooks: a stand-in for a program that carries OpenSSL
 * inside its executable (node). It exports SSL_write, SSL_write_ex, SSL_read,
 * SSL_read_ex and SSL_free (-rdynamic), each touching a counter through a
 * RIP-relative operand (which the trampoline must relocate), and calls SSL_write
 * in a loop with a "would block" result, so that only the dispatch is measured.
 * Run by inline_dispatch.sh with and without libtapline.so preloaded. */
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <time.h>

volatile long calls;

__attribute__((noinline)) int SSL_write(void *ssl, const void *buf, int num) {
    calls++;
    return num > 0 ? num : -1;
}
__attribute__((noinline)) int SSL_write_ex(void *ssl, const void *buf, size_t n, size_t *w) {
    calls++;
    if (w) *w = n;
    return n > 0;
}
__attribute__((noinline)) int SSL_read(void *ssl, void *buf, int num) {
    calls++;
    return -1;
}
__attribute__((noinline)) int SSL_read_ex(void *ssl, void *buf, size_t n, size_t *r) {
    calls++;
    return 0;
}
__attribute__((noinline)) void SSL_free(void *ssl) { calls++; }

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 20000000;
    int (*volatile w)(void *, const void *, int) = SSL_write;
    char ssl[64];
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++) w(ssl, "", 0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ns = ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n;
    printf("%.2f ns/call calls=%ld\n", ns, calls);
    return calls == n ? 0 : 1;
}
