/* Network and file I/O that is not HTTP: UDP datagrams, Unix stream and datagram
 * sockets, a line protocol over TCP to tests/servers/echo_server.py, and a file that
 * holds HTTP-looking text. tapline must report no exchange for any of it.
 * With a second argument (the HTTP test server's port) it then makes one real HTTP GET,
 * which must be the only exchange reported: the control that shows capture was on.
 * usage: non_http_traffic ECHO_PORT [HTTP_PORT] */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
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

static struct sockaddr_in loopback(unsigned short port) {
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sa;
}

static int tcp_connect(unsigned short port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = loopback(port);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) die("connect");
    return fd;
}

static void read_exact(int fd, char *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r <= 0) die("read");
        got += (size_t)r;
    }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s ECHO_PORT [HTTP_PORT]\n", argv[0]);
        return 2;
    }
    char buf[4096];
    {
        /* to stderr: whether libtapline.so is in this process (a run without it proves nothing) */
        FILE *maps = fopen("/proc/self/maps", "r");
        char line[512];
        int mapped = 0;
        while (maps && fgets(line, sizeof line, maps))
            if (strstr(line, "libtapline")) mapped = 1;
        if (maps) fclose(maps);
        fprintf(stderr, "libtapline mapped: %s\n", mapped ? "yes" : "no");
    }

    /* UDP to ourselves: sendto/recvfrom, send/recv on a connected UDP socket */
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in us = loopback(0);
    socklen_t ulen = sizeof us;
    if (bind(u, (struct sockaddr *)&us, sizeof us) < 0) die("bind udp");
    getsockname(u, (struct sockaddr *)&us, &ulen);
    const unsigned char dns_like[] = {0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0};
    if (sendto(u, dns_like, sizeof dns_like, 0, (struct sockaddr *)&us, sizeof us) < 0) die("sendto");
    if (recvfrom(u, buf, sizeof buf, 0, NULL, NULL) != sizeof dns_like) die("recvfrom");
    if (connect(u, (struct sockaddr *)&us, sizeof us) < 0) die("connect udp");
    if (send(u, "STAT 1", 6, 0) != 6 || recv(u, buf, sizeof buf, 0) != 6) die("udp send/recv");
    close(u);
    printf("udp ok\n");

    /* Unix stream socketpair, then a datagram socketpair */
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) < 0) die("socketpair");
    if (write(sp[0], "HELO unix\n", 10) != 10) die("unix write");
    read_exact(sp[1], buf, 10);
    struct iovec iov[2] = {{"QUIT", 4}, {"\n", 1}};
    if (writev(sp[1], iov, 2) != 5) die("unix writev");
    read_exact(sp[0], buf, 5);
    close(sp[0]);
    close(sp[1]);
    if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sp) < 0) die("socketpair dgram");
    if (send(sp[0], "ping", 4, 0) != 4 || recv(sp[1], buf, sizeof buf, 0) != 4) die("unix dgram");
    close(sp[0]);
    close(sp[1]);
    printf("unix ok\n");

    /* A line protocol over TCP (not HTTP) to the echo server */
    int t = tcp_connect((unsigned short)atoi(argv[1]));
    for (int i = 0; i < 5; i++) {
        char line[64];
        int n = snprintf(line, sizeof line, "PING %d\r\n", i);
        if (send(t, line, n, 0) != n) die("send");
        read_exact(t, buf, n + 1);
        if (buf[0] != '+' || memcmp(buf + 1, line, n) != 0) die("echo mismatch");
    }
    struct iovec lines[2] = {{"SET a 1\r\n", 9}, {"GET a\r\n", 7}};
    if (writev(t, lines, 2) != 16) die("writev");
    read_exact(t, buf, 18);
    close(t);
    printf("tcp line protocol ok\n");

    /* A file with HTTP-looking content */
    char path[] = "/tmp/tapline-nonhttp-XXXXXX";
    int f = mkstemp(path);
    const char *fake = "GET /not-a-request HTTP/1.1\r\nHost: example.invalid\r\n\r\n";
    if (f < 0 || write(f, fake, strlen(fake)) != (ssize_t)strlen(fake)) die("file write");
    lseek(f, 0, SEEK_SET);
    read_exact(f, buf, strlen(fake));
    close(f);
    unlink(path);
    printf("file ok\n");

    if (argc > 2) {
        unsigned short hp = (unsigned short)atoi(argv[2]);
        int h = tcp_connect(hp);
        char req[256];
        int n = snprintf(req, sizeof req,
                         "GET /hello?from=c-control HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n"
                         "Connection: close\r\n\r\n", hp);
        if (write(h, req, n) != n) die("http write");
        size_t total = 0;
        ssize_t r;
        while ((r = read(h, buf, sizeof buf)) > 0) total += (size_t)r;
        close(h);
        printf("http control ok (%s)\n", total > 0 ? "got response" : "empty");
    }
    return 0;
}
