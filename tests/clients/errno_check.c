/* Every hooked call, made where it must fail (or succeed in a known way), printing the
 * return value and errno name. The test runs it with and without libtapline.so and
 * requires identical stdout: the library must call the real function exactly once and
 * hand back its return value and errno untouched, even for bad fds and bad buffers.
 * Whether the library is mapped goes to stderr (the test checks it separately). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

static void show(const char *what, long ret, int err) {
    printf("%-34s ret=%ld errno=%s\n", what, ret, ret < 0 ? strerrorname_np(err) : "-");
    fflush(stdout);
}

#define CALL(what, expr)            \
    do {                            \
        errno = 0;                  \
        long r_ = (long)(expr);     \
        show(what, r_, errno);      \
    } while (0)

static void all_calls(const char *tag, int fd, int sock_calls) {
    char buf[64] = "tapline";
    char label[96];
    struct iovec iov = {buf, 8};
    struct msghdr msg = {0};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    struct sockaddr_in sa = {0};
    socklen_t slen = sizeof sa;
    sa.sin_family = AF_INET;
    sa.sin_port = htons(9);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

#define L(name) (snprintf(label, sizeof label, "%s %s", tag, name), label)
    CALL(L("write"), write(fd, buf, 8));
    CALL(L("read"), read(fd, buf, sizeof buf));
    CALL(L("writev"), writev(fd, &iov, 1));
    CALL(L("readv"), readv(fd, &iov, 1));
    if (sock_calls) {
        CALL(L("send"), send(fd, buf, 8, MSG_NOSIGNAL));
        CALL(L("recv"), recv(fd, buf, sizeof buf, MSG_DONTWAIT));
        CALL(L("sendto"), sendto(fd, buf, 8, MSG_NOSIGNAL, (struct sockaddr *)&sa, sizeof sa));
        CALL(L("recvfrom"), recvfrom(fd, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)&sa, &slen));
        CALL(L("sendmsg"), sendmsg(fd, &msg, MSG_NOSIGNAL));
        CALL(L("recvmsg"), recvmsg(fd, &msg, MSG_DONTWAIT));
        CALL(L("connect"), connect(fd, (struct sockaddr *)&sa, sizeof sa));
    }
#undef L
}

static int listener(unsigned short *port) {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {0};
    socklen_t len = sizeof sa;
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(l, 4) < 0 ||
        getsockname(l, (struct sockaddr *)&sa, &len) < 0) {
        perror("listener");
        exit(2);
    }
    *port = ntohs(sa.sin_port);
    return l;
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    {
        FILE *maps = fopen("/proc/self/maps", "r");
        char line[512];
        int mapped = 0;
        while (maps && fgets(line, sizeof line, maps))
            if (strstr(line, "libtapline")) mapped = 1;
        if (maps) fclose(maps);
        fprintf(stderr, "libtapline mapped: %s\n", mapped ? "yes" : "no");
    }

    /* 1. fd -1 */
    all_calls("fd=-1", -1, 1);
    CALL("fd=-1 close", close(-1));

    /* 2. a closed fd */
    int closed = open("/dev/null", O_RDONLY);
    close(closed);
    all_calls("closed-fd", closed, 1);
    CALL("closed-fd close", close(closed));

    /* 3. a regular file: socket calls fail with ENOTSOCK, file I/O works */
    char path[] = "/tmp/tapline-errno-XXXXXX";
    int file = mkstemp(path);
    unlink(path);
    all_calls("file", file, 1);
    CALL("file close", close(file));

    /* 4. connected loopback TCP pair, non-blocking, no data: EAGAIN */
    unsigned short port;
    int l = listener(&port);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CALL("tcp connect", connect(c, (struct sockaddr *)&sa, sizeof sa));
    int s = accept(l, NULL, NULL);
    fcntl(c, F_SETFL, fcntl(c, F_GETFL) | O_NONBLOCK);
    char buf[64];
    struct iovec iov = {buf, sizeof buf};
    struct msghdr msg = {0};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    CALL("nonblock read", read(c, buf, sizeof buf));
    CALL("nonblock recv", recv(c, buf, sizeof buf, 0));
    CALL("nonblock readv", readv(c, &iov, 1));
    CALL("nonblock recvfrom", recvfrom(c, buf, sizeof buf, 0, NULL, NULL));
    CALL("nonblock recvmsg", recvmsg(c, &msg, 0));
    CALL("connect again (EISCONN)", connect(c, (struct sockaddr *)&sa, sizeof sa));

    /* 5. bad buffers on a good socket: EFAULT from the kernel, not a crash in the hook */
    /* volatile: keep the compiler from seeing (and rejecting) the bad pointers */
    void *volatile null_buf = NULL;
    void *volatile bad_buf = (void *)16;
    CALL("write NULL buf", write(c, null_buf, 16));
    CALL("send bad buf", send(c, bad_buf, 16, MSG_NOSIGNAL));
    CALL("peer write 3", write(s, "abc", 3));
    struct pollfd pfd = {c, POLLIN, 0};
    CALL("poll readable", poll(&pfd, 1, 5000));
    CALL("read NULL buf", read(c, null_buf, 16));
    CALL("recv bad buf", recv(c, bad_buf, 16, 0));
    CALL("recv data", recv(c, buf, sizeof buf, 0));

    /* 6. after our own shutdown(SHUT_WR): EPIPE */
    CALL("shutdown wr", shutdown(c, SHUT_WR));
    CALL("send after shutdown", send(c, "x", 1, MSG_NOSIGNAL));
    CALL("write after shutdown", write(c, "x", 1));
    CALL("writev after shutdown", writev(c, &iov, 1));
    CALL("close tcp", close(c));
    CALL("close tcp twice", close(c));
    close(s);

    /* 7. connection refused: a bound port that does not listen */
    int b = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in bs = {0};
    socklen_t blen = sizeof bs;
    bs.sin_family = AF_INET;
    bs.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(b, (struct sockaddr *)&bs, sizeof bs);
    getsockname(b, (struct sockaddr *)&bs, &blen);
    int r = socket(AF_INET, SOCK_STREAM, 0);
    CALL("connect refused", connect(r, (struct sockaddr *)&bs, sizeof bs));
    CALL("send on refused", send(r, "x", 1, MSG_NOSIGNAL));
    close(r);
    close(b);
    close(l);
    return 0;
}
