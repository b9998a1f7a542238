/* HTTPS through the system's OpenSSL (libssl3, arm64 multiarch in the test): N requests
 * `GET /hello?tls=I` on one keep-alive TLS connection to 127.0.0.1 (SNI localhost,
 * verified against CAFILE), each response read whole, with SSL_write/SSL_read. Then a
 * forked child makes `GET /hello?tls-child=1` on a connection of its own. Exercises the
 * library's SSL_* trampolines (on aarch64: the return address taken from x30).
 * usage: tls_keepalive PORT CAFILE N */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static int port;
static SSL_CTX *ctx;

static void die(const char *what) {
    fprintf(stderr, "%s\n", what);
    ERR_print_errors_fp(stderr);
    exit(2);
}

static SSL *dial(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) die("connect");
    SSL *ssl = SSL_new(ctx);
    if (!ssl) die("SSL_new");
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, "localhost");
    SSL_set1_host(ssl, "localhost");
    if (SSL_connect(ssl) != 1) die("SSL_connect");
    return ssl;
}

static void hang_up(SSL *ssl) {
    int fd = SSL_get_fd(ssl);
    SSL_shutdown(ssl);
    SSL_free(ssl);
    close(fd);
}

static int exchange(SSL *ssl, const char *query) {
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET /hello?%s HTTP/1.1\r\nHost: localhost:%d\r\nUser-Agent: arm64-c-tls\r\n\r\n",
                     query, port);
    if (SSL_write(ssl, req, n) != n) die("SSL_write");
    char buf[8192];
    int have = 0;
    char *end = NULL;
    while (!(end = memmem(buf, (size_t)have, "\r\n\r\n", 4))) {
        if (have == (int)sizeof buf) die("head too long");
        int r = SSL_read(ssl, buf + have, (int)sizeof buf - have);
        if (r <= 0) die("SSL_read head");
        have += r;
    }
    int head = (int)(end - buf) + 4;
    long len = -1;
    for (char *line = buf; line < end; line = strstr(line, "\r\n") + 2) {
        if (strncasecmp(line, "Content-Length:", 15) == 0) len = strtol(line + 15, NULL, 10);
    }
    if (len < 0) die("no Content-Length");
    int status = atoi(buf + 9); /* "HTTP/1.1 200" */
    long body = have - head;
    while (body < len) {
        int r = SSL_read(ssl, buf, (int)sizeof buf);
        if (r <= 0) die("SSL_read body");
        body += r;
    }
    return status;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s PORT CAFILE N\n", argv[0]);
        return 2;
    }
    port = atoi(argv[1]);
    int n = atoi(argv[3]);
    ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) die("SSL_CTX_new");
    if (SSL_CTX_load_verify_locations(ctx, argv[2], NULL) != 1) die("CA");
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL *ssl = dial();
    for (int i = 0; i < n; i++) {
        char q[32];
        snprintf(q, sizeof q, "tls=%d", i);
        if (exchange(ssl, q) != 200) die("status");
    }
    hang_up(ssl);
    fflush(stdout);
    pid_t child = fork();
    if (child < 0) die("fork");
    if (child == 0) {
        ssl = dial();
        int status = exchange(ssl, "tls-child=1");
        hang_up(ssl);
        if (status != 200) die("child status");
        printf("ok child 1\n");
        return 0;
    }
    int ws;
    if (waitpid(child, &ws, 0) != child || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0) die("child");
    printf("ok parent %d\n", n);
    return 0;
}
