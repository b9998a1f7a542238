/* Two libssl copies in one process, both loaded RTLD_LOCAL (as Python's _ssl and a
 * wheel bundling its own OpenSSL would be): the preloaded SSL_* symbols receive the
 * calls of both, and must hand each call to the copy its caller links against.
 * usage: two_libssl DIR HTTPS_PORT HTTP_PORT CA_FILE */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc < 5) { fprintf(stderr, "usage\n"); return 2; }
    char path[4096];
    snprintf(path, sizeof path, "%s/libshim_real.so", argv[1]);
    void *a = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    snprintf(path, sizeof path, "%s/libshim_fake.so", argv[1]);
    void *b = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!a || !b) { fprintf(stderr, "dlopen: %s\n", dlerror()); return 2; }
    int (*real_get)(int, const char *, char *, int) = (int (*)(int, const char *, char *, int))dlsym(a, "real_get");
    int (*fake_get)(int, char *, int) = (int (*)(int, char *, int))dlsym(b, "fake_get");
    static char buf[65536];
    int n = real_get(atoi(argv[2]), argv[4], buf, sizeof buf);
    printf("openssl: %d %s\n", n > 0, n > 0 && strstr(buf, " 200 ") ? "200" : "-");
    n = fake_get(atoi(argv[3]), buf, sizeof buf);
    printf("fakessl: %d %s\n", n > 0, n > 0 && strstr(buf, " 200 ") ? "200" : "-");
    return 0;
}
