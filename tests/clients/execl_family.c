/* Starts curl through execl, execle or execlp (argv[1]) with an environment that has
 * lost LD_PRELOAD: `unsetenv` for execl/execlp, an explicit list for execle. More list
 * items than argument registers, so some come from the stack. Prints what curl prints
 * (the status code); exits 127 if the exec itself fails. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s execl|execle|execlp URL\n", argv[0]);
        return 2;
    }
    const char *how = argv[1], *url = argv[2];
    unsetenv("LD_PRELOAD");
    if (strcmp(how, "execl") == 0) {
        execl("/usr/bin/curl", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", url,
              (char *)NULL);
    } else if (strcmp(how, "execle") == 0) {
        char *const env[] = {"PATH=/usr/bin:/bin", NULL};
        execle("/usr/bin/curl", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", url,
               (char *)NULL, env);
    } else if (strcmp(how, "execlp") == 0) {
        execlp("curl", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", url,
               (char *)NULL);
    } else {
        fprintf(stderr, "unknown: %s\n", how);
        return 2;
    }
    perror(how);
    return 127;
}
