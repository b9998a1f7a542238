/* A panic in capture, as a bug in the library's capture code would raise one, then an
 * HTTP request. Run with libtapline.so preloaded: the library's self-test entry
 * `tapline_selftest_panic` panics inside a capture step (`hooks::after`), which must be
 * caught, silent (nothing on this process's stderr) and counted as a lost record; the
 * process goes on and its next request is captured as usual.
 * Usage: panic_in_capture PORT. Prints "returned R dropped D", then "status S". */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: panic_in_capture PORT\n");
        return 2;
    }
    int (*panic_fn)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "tapline_selftest_panic");
    uint64_t (*dropped)(void) = (uint64_t (*)(void))dlsym(RTLD_DEFAULT, "tapline_spool_dropped");
    if (!panic_fn || !dropped) {
        printf("no tapline\n");
        return 3;
    }
    int r = panic_fn();
    printf("returned %d dropped %llu\n", r, (unsigned long long)dropped());
    fflush(stdout);

    int port = atoi(argv[1]);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        perror("connect");
        return 4;
    }
    char req[256];
    int n = snprintf(req, sizeof req,
                     "GET /hello?after-panic=1 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                     "Connection: close\r\n\r\n", port);
    if (write(fd, req, (size_t)n) != n) {
        perror("write");
        return 5;
    }
    char buf[4096];
    size_t got = 0;
    ssize_t k;
    while (got < sizeof buf - 1 && (k = read(fd, buf + got, sizeof buf - 1 - got)) > 0)
        got += (size_t)k;
    buf[got] = 0;
    close(fd);
    int status = 0;
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1) {
        printf("no status line\n");
        return 6;
    }
    printf("status %d\n", status);
    return 0;
}
