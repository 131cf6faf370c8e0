/* Compute-heavy guest for the engines' benchmarks and the cache tests: fib(N) the slow
   way (N = argv[1], default 32). */
#include <stdio.h>
#include <stdlib.h>

static int fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }

int main(int argc, char **argv) {
    printf("fib=%d\n", fib(argc > 1 ? atoi(argv[1]) : 32));
    return 0;
}
