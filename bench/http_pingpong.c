/* Keep-alive HTTP/1.1 ping-pong over loopback.
 *   http_pingpong server         listens on 127.0.0.1:0, prints the port, serves forever
 *   http_pingpong client PORT N [numbered] [hold]
 *                                N sequential GETs on one connection, prints requests/s;
 *                                numbered: GET /ping?i=<k> (k = 0..N-1), so that each
 *                                exchange can be told apart in a report; hold: then wait
 *                                until stdin closes (a benchmark reads the reader's memory
 *                                while the connection is still open)
 * The server answers every request with a fixed 64-byte body. Only the client is meant
 * to run under the library, so the ratio shows the hooks' cost per exchange. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char RESPONSE[] =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 64\r\n\r\n"
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/* Reads until the end of the request head (requests carry no body). */
static int read_head(int fd, char *buf, size_t cap) {
    size_t len = 0;
    for (;;) {
        ssize_t r = read(fd, buf + len, cap - len - 1);
        if (r <= 0) return -1;
        len += (size_t)r;
        buf[len] = 0;
        if (strstr(buf, "\r\n\r\n")) return 0;
        if (len + 1 >= cap) return -1;
    }
}

static void serve(int c) {
    char buf[4096];
    int one = 1;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    while (read_head(c, buf, sizeof buf) == 0)
        if (write(c, RESPONSE, sizeof RESPONSE - 1) != (ssize_t)(sizeof RESPONSE - 1)) break;
    close(c);
}

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "server") == 0) {
        int l = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {0};
        socklen_t len = sizeof sa;
        sa.sin_family = AF_INET;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (bind(l, (struct sockaddr *)&sa, sizeof sa) || listen(l, 16) ||
            getsockname(l, (struct sockaddr *)&sa, &len)) { perror("server"); return 1; }
        printf("READY %d\n", ntohs(sa.sin_port));
        fflush(stdout);
        for (;;) {
            int c = accept(l, NULL, NULL);
            if (c < 0) continue;
            if (fork() == 0) { serve(c); _exit(0); }
            close(c);
        }
    }
    if (argc < 4 || strcmp(argv[1], "client") != 0) {
        fprintf(stderr, "usage: %s server | client PORT N [numbered] [hold]\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[2]);
    long n = atol(argv[3]);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa)) { perror("connect"); return 1; }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int numbered = 0, hold = 0;
    for (int i = 4; i < argc; i++) {
        if (strcmp(argv[i], "numbered") == 0) numbered = 1;
        else if (strcmp(argv[i], "hold") == 0) hold = 1;
    }
    char req[256], buf[4096];
    int rl = snprintf(req, sizeof req, "GET /ping HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", port);
    size_t want = sizeof RESPONSE - 1;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++) {
        if (numbered)
            rl = snprintf(req, sizeof req,
                          "GET /ping?i=%ld HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", i, port);
        if (send(fd, req, rl, 0) != rl) { perror("send"); return 1; }
        size_t got = 0;
        while (got < want) {
            ssize_t r = recv(fd, buf, sizeof buf, 0);
            if (r <= 0) { perror("recv"); return 1; }
            got += (size_t)r;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double s = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
    printf("%.0f\n", n / s);
    fflush(stdout);
    if (hold)
        while (read(0, buf, sizeof buf) > 0) {}
    close(fd);
    return 0;
}
