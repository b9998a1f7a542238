/* Plain HTTP/1.1 keep-alive from several threads, then from a forked child: the arm64
 * client of tests/arm64/test_arm64_clients.py (cross-compiled there, run under qemu).
 * Each of THREADS threads opens one connection and sends PER_THREAD requests
 * `GET /hello?t=T&i=I` on it, reading each response whole (Content-Length) before the
 * next; then the process forks and the child makes `GET /hello?child=1` on a new
 * connection, while the parent makes `GET /hello?parent=1` on another. Prints
 * `ok N` (responses read by this process) from each of parent and child.
 * usage: keepalive_threads_fork PORT THREADS PER_THREAD */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static int port, per_thread;

static void die(const char *what) {
    perror(what);
    exit(2);
}

static int dial(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) die("connect");
    return fd;
}

static void send_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0) die("write");
        p += w;
        n -= (size_t)w;
    }
}

/* One request on `fd`, its response read whole; returns the status. */
static int exchange(int fd, const char *query) {
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET /hello?%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: arm64-c\r\n\r\n",
                     query, port);
    send_all(fd, req, (size_t)n);
    char buf[8192];
    size_t have = 0;
    char *end = NULL;
    while (!(end = memmem(buf, have, "\r\n\r\n", 4))) {
        if (have == sizeof buf) die("head too long");
        ssize_t r = read(fd, buf + have, sizeof buf - have);
        if (r <= 0) die("read head");
        have += (size_t)r;
    }
    size_t head = (size_t)(end - buf) + 4;
    long len = -1;
    for (char *line = buf; line < end; line = strstr(line, "\r\n") + 2) {
        if (strncasecmp(line, "Content-Length:", 15) == 0) len = strtol(line + 15, NULL, 10);
    }
    if (len < 0) die("no Content-Length");
    int status = atoi(buf + 9); /* "HTTP/1.1 200" */
    size_t body = have - head;
    while (body < (size_t)len) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r <= 0) die("read body");
        body += (size_t)r;
    }
    if (body != (size_t)len) die("pipelined bytes");
    return status;
}

static void *worker(void *arg) {
    long t = (long)arg;
    int fd = dial();
    for (int i = 0; i < per_thread; i++) {
        char q[64];
        snprintf(q, sizeof q, "t=%ld&i=%d", t, i);
        if (exchange(fd, q) != 200) die("status");
    }
    close(fd);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s PORT THREADS PER_THREAD\n", argv[0]);
        return 2;
    }
    port = atoi(argv[1]);
    int threads = atoi(argv[2]);
    per_thread = atoi(argv[3]);
    pthread_t th[64];
    if (threads < 1 || threads > 64) return 2;
    for (long t = 0; t < threads; t++)
        if (pthread_create(&th[t], NULL, worker, (void *)t) != 0) die("pthread_create");
    for (int t = 0; t < threads; t++) pthread_join(th[t], NULL);
    fflush(stdout);
    pid_t child = fork();
    if (child < 0) die("fork");
    int fd = dial();
    int status = exchange(fd, child == 0 ? "child=1" : "parent=1");
    close(fd);
    if (status != 200) die("status");
    if (child == 0) {
        printf("ok child 1\n");
        return 0;
    }
    int ws;
    if (waitpid(child, &ws, 0) != child || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0) die("child");
    printf("ok parent %d\n", threads * per_thread + 1);
    return 0;
}
