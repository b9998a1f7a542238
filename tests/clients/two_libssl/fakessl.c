/* A second "libssl" in the process: same function names as OpenSSL, its own session
 * type, no encryption (it writes the plaintext to the socket). Handing one of its
 * sessions to the real OpenSSL's SSL_write would crash. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct fake_ssl { unsigned magic; int fd; };
#define FAKE_MAGIC 0xfa4e55u

void *SSL_new(void *ctx) { (void)ctx; struct fake_ssl *s = calloc(1, sizeof *s); s->magic = FAKE_MAGIC; s->fd = -1; return s; }
int SSL_set_fd(void *p, int fd) { ((struct fake_ssl *)p)->fd = fd; return 1; }
int SSL_get_fd(void *p) { return ((struct fake_ssl *)p)->fd; }
static void check(void *p) { if (((struct fake_ssl *)p)->magic != FAKE_MAGIC) abort(); }
int SSL_write(void *p, const void *buf, int n) { check(p); return (int)write(((struct fake_ssl *)p)->fd, buf, n); }
int SSL_read(void *p, void *buf, int n) { check(p); return (int)read(((struct fake_ssl *)p)->fd, buf, n); }
int SSL_write_ex(void *p, const void *buf, size_t n, size_t *w) { int r = SSL_write(p, buf, (int)n); if (r <= 0) return 0; *w = r; return 1; }
int SSL_read_ex(void *p, void *buf, size_t n, size_t *got) { int r = SSL_read(p, buf, (int)n); if (r <= 0) return 0; *got = r; return 1; }
int SSL_get_error(void *p, int ret) { (void)p; return ret == 0 ? 6 : 5; }
const char *SSL_get_servername(void *p, int type) { (void)p; (void)type; return "fake.localhost"; }
void SSL_get0_alpn_selected(void *p, const unsigned char **d, unsigned *len) { (void)p; *d = NULL; *len = 0; }
void SSL_free(void *p) { check(p); free(p); }
