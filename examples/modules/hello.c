/* The demo guest: greets, shows its argv and one env var, and can exit with a code. */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    printf("Hello from WebAssembly!\n");
    for (int i = 0; i < argc; i++)
        printf("argv[%d]=%s\n", i, argv[i]);
    const char *greeting = getenv("GREETING");
    if (greeting)
        printf("GREETING=%s\n", greeting);
    return argc > 1 && argv[1][0] >= '0' && argv[1][0] <= '9' ? atoi(argv[1]) : 0;
}
