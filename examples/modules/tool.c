/* A small WASI tool for the tests: one subcommand per behaviour under test.
 *   write PATH TEXT | read PATH | ls PATH | sleep SECONDS | spin | exit CODE | isatty | pwd
 * Failures print "error: <op> <path>: <strerror>" on stderr and exit 1. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int fail(const char *op, const char *path) {
    fprintf(stderr, "error: %s %s: %s\n", op, path, strerror(errno));
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: tool write|read|ls|sleep|spin|exit|isatty|pwd ...\n");
        return 2;
    }
    const char *cmd = argv[1];
    const char *arg = argc > 2 ? argv[2] : ".";
    if (!strcmp(cmd, "write") && argc > 3) {
        FILE *f = fopen(arg, "w");
        if (!f) return fail("write", arg);
        fputs(argv[3], f);
        return fclose(f) ? fail("close", arg) : 0;
    }
    if (!strcmp(cmd, "read")) {
        FILE *f = fopen(arg, "r");
        if (!f) return fail("read", arg);
        char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, f)) > 0) fwrite(buf, 1, n, stdout);
        fclose(f);
        return 0;
    }
    if (!strcmp(cmd, "ls")) {
        DIR *d = opendir(arg);
        if (!d) return fail("ls", arg);
        struct dirent *e;
        while ((e = readdir(d))) printf("%s\n", e->d_name);
        closedir(d);
        return 0;
    }
    if (!strcmp(cmd, "sleep")) {
        printf("sleeping\n");
        fflush(stdout);
        sleep((unsigned)atoi(arg));
        printf("slept\n");
        return 0;
    }
    if (!strcmp(cmd, "spin")) {
        printf("spinning\n");
        fflush(stdout);
        volatile unsigned long n = 0;
        for (;;) n++;
    }
    if (!strcmp(cmd, "exit")) return atoi(arg);
    if (!strcmp(cmd, "isatty")) {
        printf("isatty=%d\n", isatty(1));
        return 0;
    }
    if (!strcmp(cmd, "pwd")) {
        char buf[1024];
        if (!getcwd(buf, sizeof buf)) return fail("getcwd", ".");
        printf("%s\n", buf);
        return 0;
    }
    fprintf(stderr, "unknown command %s\n", cmd);
    return 2;
}
