/* The operations whose instruction counts bench/instr_count.py compares with and without
 * libtapline.so (under valgrind's callgrind, which counts user-space instructions only):
 *
 *   instr_ops write N       N write()s of 64 bytes to /dev/null       (untraced fd)
 *   instr_ops writev N      N writev()s of 2 x 32 bytes to /dev/null  (untraced fd)
 *   instr_ops read N        N read()s of 64 bytes from /dev/zero      (untraced fd)
 *   instr_ops sendrecv N    N send() + recv() pairs of 64 bytes on a socketpair
 *   instr_ops close N       N dup() + close() pairs of /dev/null      (dup is not hooked)
 *   instr_ops append N      N 256-byte records through tapline_spool_append (segment
 *                           writer), after 64 to warm the segment up
 *   instr_ops first N       N = 0: nothing; N = 1: one record (a process's first)
 *
 * The difference between the counts of N and 2N operations, divided by N, is the cost of
 * one operation: start-up and exit cancel out. */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

typedef int (*append_fn)(int, uint16_t, uint64_t, const uint8_t *, size_t);

static append_fn find_append(void) {
    /* The library is preloaded (its symbol is in the global scope), or, with
     * INSTR_OPS_LIB=path, loaded here: how bench/instr_count.py --base-lib compares two
     * builds (a preloaded library also runs in valgrind's launcher). */
    const char *lib = getenv("INSTR_OPS_LIB");
    void *scope = RTLD_DEFAULT;
    if (lib && !(scope = dlopen(lib, RTLD_NOW | RTLD_LOCAL))) {
        fprintf(stderr, "instr_ops: %s\n", dlerror());
        exit(2);
    }
    append_fn f = (append_fn)dlsym(scope, "tapline_spool_append");
    if (!f) {
        fprintf(stderr, "instr_ops: tapline_spool_append not found (preload libtapline.so)\n");
        exit(2);
    }
    return f;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: instr_ops write|writev|read|sendrecv|close|append|first N\n");
        return 2;
    }
    const char *mode = argv[1];
    long n = atol(argv[2]);
    char buf[256];
    memset(buf, 'x', sizeof buf);
    if (!strcmp(mode, "write")) {
        int fd = open("/dev/null", O_WRONLY);
        for (long i = 0; i < n; i++)
            if (write(fd, buf, 64) != 64) return 1;
    } else if (!strcmp(mode, "writev")) {
        int fd = open("/dev/null", O_WRONLY);
        struct iovec iov[2] = {{buf, 32}, {buf + 32, 32}};
        for (long i = 0; i < n; i++)
            if (writev(fd, iov, 2) != 64) return 1;
    } else if (!strcmp(mode, "read")) {
        int fd = open("/dev/zero", O_RDONLY);
        for (long i = 0; i < n; i++)
            if (read(fd, buf, 64) != 64) return 1;
    } else if (!strcmp(mode, "sendrecv")) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) return 1;
        for (long i = 0; i < n; i++) {
            if (send(sv[0], buf, 64, 0) != 64) return 1;
            if (recv(sv[1], buf, 64, 0) != 64) return 1;
        }
    } else if (!strcmp(mode, "close")) {
        int fd = open("/dev/null", O_WRONLY);
        for (long i = 0; i < n; i++) {
            int d = dup(fd);
            if (d < 0 || close(d)) return 1;
        }
    } else if (!strcmp(mode, "append")) {
        append_fn append = find_append();
        for (long i = 0; i < 64; i++)
            if (append(2, 3, 1, (const uint8_t *)buf, sizeof buf) != 1) return 1;
        for (long i = 0; i < n; i++)
            if (append(2, 3, 1, (const uint8_t *)buf, sizeof buf) != 1) return 1;
    } else if (!strcmp(mode, "first")) {
        append_fn append = find_append();
        for (long i = 0; i < n; i++)
            if (append(0, 3, 1, (const uint8_t *)buf, sizeof buf) != 1) return 1;
    } else {
        fprintf(stderr, "instr_ops: unknown mode %s\n", mode);
        return 2;
    }
    return 0;
}
