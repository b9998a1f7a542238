// What each system call of a process's first segment claim costs, in a fresh process.
//
// Build and run (a spool directory of its own under /tmp, removed and made afresh for
// every round; ext4 /tmp on the machines the README speaks of):
//   gcc -O2 -Wl,-z,now -o target/claim_steps bench/claim_steps.c
//   target/claim_steps MODE [GAP_MS] [ROUNDS]
// MODE: "two-renames" (listing, rename to a set-up name, header, rename to the claimed
// name: the claim before issue 20), "one-rename" (rename straight to the claimed name,
// no listing), "no-rename" (the ready-made file opened and mapped where it is, as
// libtapline's claim in place does; its 64-byte pread and compare-and-swap are left
// out).
// GAP_MS: how long before the claim the reader made the ready-made segments (20).
// Each round: two 4 MiB ready-made segments written with zeros, as the reader makes
// them; then a new process (fork + exec of this program) claims one and prints the time
// of each step; this prints the median of each step over the rounds. -z now: no lazy
// binding inside the timed steps (libtapline is linked that way too).
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SEGMENT (4 << 20)
#define MAX_STEPS 16
#define MAX_ROUNDS 400

static char dir[256];

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void make_ready(int k) {
    static char zeros[65536];
    char tmp[300], name[300];
    snprintf(tmp, sizeof tmp, "%s/.free-%d.tmp", dir, k);
    snprintf(name, sizeof name, "%s/free-%d.tls", dir, k);
    int fd = open(tmp, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    for (int i = 0; i < SEGMENT / (int)sizeof zeros; i++)
        if (write(fd, zeros, sizeof zeros) != sizeof zeros) exit(1);
    close(fd);
    rename(tmp, name);
}

static int rename2(int dfd, const char *from, const char *to) {
    return (int)syscall(SYS_renameat2, dfd, from, dfd, to, RENAME_NOREPLACE);
}

static void claim(const char *mode) {
    long long t[MAX_STEPS];
    const char *what[MAX_STEPS];
    int n = 0;
    char buf[4096], name[64];
    struct stat st;
    memset(buf, 0, sizeof buf);
    snprintf(name, sizeof name, "%d-0.tls", getpid());
#define STEP(s) (t[n] = now_ns(), what[n++] = (s))
    STEP("start");
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    fstat(dfd, &st);
    STEP("open+fstat directory");
    int two = !strcmp(mode, "two-renames"), none = !strcmp(mode, "no-rename");
    const char *at = none ? "free-0.tls" : two ? ".claim-0" : name;
    if (two) {
        while (syscall(SYS_getdents64, dfd, buf, sizeof buf) > 0) {}
        STEP("getdents64");
    }
    if (!none) {
        rename2(dfd, "free-0.tls", at);
        STEP("rename");
    }
    int fd = openat(dfd, at, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    fstat(fd, &st);
    STEP("open+fstat segment");
    char *m = mmap(0, SEGMENT, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    STEP("mmap");
    madvise(m, 4096, MADV_POPULATE_WRITE);
    STEP("first page write-faulted");
    madvise(m + 4096, 12288, MADV_POPULATE_WRITE);
    STEP("next 3 pages write-faulted");
    memset(m, 1, 128);
    STEP("header");
    if (two) {
        rename2(dfd, at, name);
        STEP("second rename");
    }
    close(dfd);
    STEP("close directory");
    for (int i = 1; i < n; i++) printf("%s=%lld\n", what[i], t[i] - t[i - 1]);
    printf("total=%lld\n", t[n - 1] - t[0]);
}

static int by_value(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    snprintf(dir, sizeof dir, "/tmp/tapline-claim-steps-%d", argc > 2 && !strcmp(argv[1], "child") ? atoi(argv[3]) : getpid());
    if (argc > 3 && !strcmp(argv[1], "child")) {
        claim(argv[2]);
        return 0;
    }
    if (argc < 2) {
        fprintf(stderr, "usage: %s two-renames|one-rename|no-rename [GAP_MS] [ROUNDS]\n", argv[0]);
        return 2;
    }
    int gap_ms = argc > 2 ? atoi(argv[2]) : 20;
    int rounds = argc > 3 ? atoi(argv[3]) : 31;
    if (rounds < 1 || rounds > MAX_ROUNDS) rounds = 31;
    static long long samples[MAX_STEPS][MAX_ROUNDS];
    static char names[MAX_STEPS][128];
    int steps = 0;
    char cmd[600];
    for (int r = 0; r < rounds; r++) {
        snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -m 700 %s", dir, dir);
        if (system(cmd) != 0) return 1;
        make_ready(0);
        make_ready(1);
        usleep(gap_ms * 1000);
        snprintf(cmd, sizeof cmd, "%s child %s %d", argv[0], argv[1], getpid());
        FILE *f = popen(cmd, "r");
        char line[128];
        int i = 0;
        while (i < MAX_STEPS && fgets(line, sizeof line, f)) {
            char *eq = strchr(line, '=');
            if (!eq) continue;
            *eq = 0;
            snprintf(names[i], sizeof names[i], "%s", line);
            samples[i++][r] = atoll(eq + 1);
        }
        pclose(f);
        steps = i;
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) return 1;
    printf("%s, ready-made segments made %d ms before, median of %d fresh processes:\n", argv[1], gap_ms, rounds);
    for (int i = 0; i < steps; i++) {
        qsort(samples[i], rounds, sizeof samples[i][0], by_value);
        printf("  %-28s %7.1f us\n", names[i], samples[i][rounds / 2] / 1000.0);
    }
    return 0;
}
