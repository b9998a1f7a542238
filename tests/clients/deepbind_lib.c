/* A library that makes one HTTP/1.1 GET to 127.0.0.1 with plain socket calls (connect,
 * send, recv, close). tests/test_deepbind.py builds it twice (-z lazy, -z now) and has
 * deepbind_host.c dlopen it with RTLD_DEEPBIND, so that these calls bind to libc inside
 * the library's own scope, past any LD_PRELOAD. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* GETs `path` from 127.0.0.1:port; the whole response (up to cap - 1 bytes, NUL
 * terminated) goes to `out`. Returns its length, or -1. */
int deep_get(int port, const char *path, char *out, int cap) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n",
                     path, port);
    if (send(fd, req, (size_t)n, 0) != n) {
        close(fd);
        return -1;
    }
    int len = 0;
    for (;;) {
        ssize_t r = recv(fd, out + len, (size_t)(cap - 1 - len), 0);
        if (r <= 0)
            break;
        len += (int)r;
        if (len == cap - 1)
            break;
    }
    out[len] = 0;
    close(fd);
    return len;
}
