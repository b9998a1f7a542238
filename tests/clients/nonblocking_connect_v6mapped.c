/* What Java's HttpClient does on the wire: an AF_INET6 socket, a non-blocking connect to
 * the v4-mapped address ::ffff:127.0.0.1 (EINPROGRESS), poll for writability, SO_ERROR,
 * then the request with writev and the response with read, keep-alive, N requests.
 * usage: nonblocking_connect_v6mapped HTTP_PORT [N] */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

static void die(const char *what) {
    perror(what);
    exit(2);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s HTTP_PORT [N]\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[1]);
    int n = argc > 2 ? atoi(argv[2]) : 2;
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    struct sockaddr_in6 sa = {0};
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htons(port);
    inet_pton(AF_INET6, "::ffff:127.0.0.1", &sa.sin6_addr);
    int r = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    printf("connect: %s\n", r == 0 ? "immediate" : errno == EINPROGRESS ? "in progress" : "error");
    if (r < 0 && errno != EINPROGRESS) die("connect");
    struct pollfd p = {fd, POLLOUT, 0};
    if (poll(&p, 1, 10000) != 1) die("poll out");
    int err = 0;
    socklen_t el = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
    if (err) {
        errno = err;
        die("SO_ERROR");
    }
    for (int i = 0; i < n; i++) {
        char head[256];
        int hl = snprintf(head, sizeof head,
                          "GET /hello?from=c-v6mapped&i=%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                          "User-Agent: nonblocking-c\r\n\r\n", i, port);
        struct iovec iov[1] = {{head, (size_t)hl}};
        if (writev(fd, iov, 1) != hl) die("writev");
        /* read until the whole response (headers + 15-byte hello body) is in */
        char buf[4096];
        size_t got = 0;
        for (;;) {
            struct pollfd q = {fd, POLLIN, 0};
            if (poll(&q, 1, 10000) != 1) die("poll in");
            ssize_t k = read(fd, buf + got, sizeof buf - 1 - got);
            if (k <= 0) die("read");
            got += (size_t)k;
            buf[got] = 0;
            char *end = strstr(buf, "\r\n\r\n");
            if (end && (size_t)(end + 4 - buf) + 15 <= got) break;
        }
        printf("response %d: %.15s\n", i, buf);
    }
    close(fd);
    return 0;
}
