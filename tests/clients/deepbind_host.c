/* A host that loads a library with RTLD_DEEPBIND, as PHP loads its extensions, and has
 * it make HTTP calls: deepbind_host LIB PORT lazy|now|newns ROUNDS.
 *
 * Each round dlopens LIB (RTLD_LAZY or RTLD_NOW, | RTLD_DEEPBIND; `newns`: dlmopen into
 * a new link-map namespace, with its own libc), calls its deep_get for /hello?round=N,
 * prints the status line and body, and dlcloses it again, so the second round runs in a
 * freshly loaded copy. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int (*deep_get_fn)(int, const char *, char *, int);

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s LIB PORT lazy|now|newns ROUNDS\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[2]);
    int mode = strcmp(argv[3], "lazy") == 0 ? RTLD_LAZY : RTLD_NOW;
    int newns = strcmp(argv[3], "newns") == 0;
    int rounds = atoi(argv[4]);
    static char buf[65536];
    for (int round = 1; round <= rounds; round++) {
        void *h = newns ? dlmopen(LM_ID_NEWLM, argv[1], mode)
                        : dlopen(argv[1], mode | RTLD_DEEPBIND);
        if (!h) {
            fprintf(stderr, "dlopen: %s\n", dlerror());
            return 1;
        }
        deep_get_fn get = (deep_get_fn)dlsym(h, "deep_get");
        if (!get) {
            fprintf(stderr, "dlsym: %s\n", dlerror());
            return 1;
        }
        char path[64];
        snprintf(path, sizeof path, "/hello?round=%d&mode=%s", round, argv[3]);
        int n = get(port, path, buf, sizeof buf);
        if (n < 0) {
            fprintf(stderr, "round %d: request failed\n", round);
            return 1;
        }
        const char *eol = strstr(buf, "\r\n");
        const char *body = strstr(buf, "\r\n\r\n");
        printf("round %d: %.*s | %s", round, eol ? (int)(eol - buf) : n, buf,
               body ? body + 4 : "");
        if (dlclose(h) != 0) {
            fprintf(stderr, "dlclose: %s\n", dlerror());
            return 1;
        }
    }
    return 0;
}
