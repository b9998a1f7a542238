/* Java HttpClient's pattern, many times over, with other threads churning fd numbers:
 * the main thread creates a socket and starts a non-blocking connect; a second thread
 * writes the request (writev) and reads the response; meanwhile two more threads open,
 * read and close files and short-lived sockets, so the connection's fd number has just
 * been used by something else. Every one of the N exchanges must be reported.
 * usage: handoff_threads_fd_churn HTTP_PORT N */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

static int port;
static atomic_int stop;

static void die(const char *what) {
    perror(what);
    exit(2);
}

static void *churn(void *arg) {
    char buf[256];
    long kind = (long)arg;
    while (!atomic_load(&stop)) {
        int fd = kind ? socket(AF_INET, SOCK_STREAM, 0) : open("/proc/self/stat", O_RDONLY);
        if (fd < 0) continue;
        if (!kind && read(fd, buf, sizeof buf) < 0) die("churn read");
        close(fd);
    }
    return NULL;
}

struct job {
    int fd;
    int i;
    int ok;
};

static void *exchange(void *arg) {
    struct job *j = arg;
    struct pollfd p = {j->fd, POLLOUT, 0};
    if (poll(&p, 1, 10000) != 1) die("poll out");
    char head[256];
    int hl = snprintf(head, sizeof head,
                      "GET /hello?from=handoff&i=%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                      "Connection: close\r\n\r\n", j->i, port);
    struct iovec iov = {head, (size_t)hl};
    if (writev(j->fd, &iov, 1) != hl) die("writev");
    char buf[4096];
    for (;;) {
        struct pollfd q = {j->fd, POLLIN, 0};
        if (poll(&q, 1, 10000) != 1) die("poll in");
        ssize_t k = read(j->fd, buf, sizeof buf);
        if (k < 0 && errno == EAGAIN) continue;
        if (k < 0) die("read");
        if (k == 0) break;
        j->ok = 1;
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s HTTP_PORT N\n", argv[0]);
        return 2;
    }
    port = atoi(argv[1]);
    int n = atoi(argv[2]);
    pthread_t c1, c2;
    pthread_create(&c1, NULL, churn, (void *)0L);
    pthread_create(&c2, NULL, churn, (void *)1L);
    int ok = 0;
    for (int i = 0; i < n; i++) {
        int fd = socket(AF_INET6, SOCK_STREAM, 0);
        if (fd < 0) die("socket");
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        struct sockaddr_in6 sa = {0};
        sa.sin6_family = AF_INET6;
        sa.sin6_port = htons(port);
        inet_pton(AF_INET6, "::ffff:127.0.0.1", &sa.sin6_addr);
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS)
            die("connect");
        struct job j = {fd, i, 0};
        pthread_t t;
        pthread_create(&t, NULL, exchange, &j);
        pthread_join(t, NULL);
        close(fd);
        ok += j.ok;
    }
    atomic_store(&stop, 1);
    pthread_join(c1, NULL);
    pthread_join(c2, NULL);
    printf("exchanges ok: %d of %d\n", ok, n);
    return ok == n ? 0 : 1;
}
