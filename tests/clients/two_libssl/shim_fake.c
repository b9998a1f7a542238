/* Linked against libfakessl.so: a GET over the fake "TLS" library (plain HTTP). */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
void *SSL_new(void *); int SSL_set_fd(void *, int); int SSL_write(void *, const void *, int);
int SSL_read(void *, void *, int); void SSL_free(void *);

int fake_get(int port, char *out, int cap) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET; sa.sin_port = htons(port); inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) return -1;
    void *s = SSL_new(NULL);
    SSL_set_fd(s, fd);
    char req[256];
    int n = snprintf(req, sizeof req, "GET /hello?from=fakessl HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n", port);
    if (SSL_write(s, req, n) != n) return -2;
    int got = 0, r;
    while (got < cap - 1 && (r = SSL_read(s, out + got, cap - 1 - got)) > 0) got += r;
    out[got] = 0;
    SSL_free(s);
    close(fd);
    return got;
}
