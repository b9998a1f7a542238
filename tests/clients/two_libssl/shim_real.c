/* Linked against the system libssl: a real HTTPS GET. */
#include <arpa/inet.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

int real_get(int port, const char *ca, char *out, int cap) {
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) return -1;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET; sa.sin_port = htons(port); inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) return -2;
    SSL *s = SSL_new(ctx);
    SSL_set_fd(s, fd);
    SSL_set_tlsext_host_name(s, "localhost");
    if (SSL_connect(s) != 1) return -3;
    char req[256];
    int n = snprintf(req, sizeof req, "GET /hello?from=openssl HTTP/1.1\r\nHost: localhost:%d\r\nConnection: close\r\n\r\n", port);
    if (SSL_write(s, req, n) != n) return -4;
    int got = 0, r;
    while (got < cap - 1 && (r = SSL_read(s, out + got, cap - 1 - got)) > 0) got += r;
    out[got] = 0;
    SSL_shutdown(s);
    SSL_free(s);
    SSL_CTX_free(ctx);
    close(fd);
    return got;
}
