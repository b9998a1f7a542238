/* N write() calls of 64 bytes on one fd (default /dev/null): prints ns per call.
 * Measures the pass-through cost of the library's write hook on a non-socket fd. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    int fd = open(argc > 2 ? argv[2] : "/dev/null", O_WRONLY);
    if (fd < 0) { perror("open"); return 1; }
    char buf[64] = {0};
    for (long i = 0; i < n / 10; i++) (void)!write(fd, buf, sizeof buf); /* warm up */
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++)
        if (write(fd, buf, sizeof buf) != sizeof buf) { perror("write"); return 1; }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ns = (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
    printf("%.1f\n", ns / n);
    return 0;
}
