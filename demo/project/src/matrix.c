/* Integer matrix products with a fixed-seed generator: deterministic busy work. */
#include <stdlib.h>

#include "clyde_demo.h"

static uint32_t next(uint32_t *state) {
    /* xorshift32 */
    uint32_t x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    return x;
}

static void multiply(const uint64_t *a, const uint64_t *b, uint64_t *c, unsigned n) {
    unsigned i, j, k;
    for (i = 0; i < n; i++)
        for (j = 0; j < n; j++) {
            uint64_t sum = 0;
            for (k = 0; k < n; k++) sum += a[i * n + k] * b[k * n + j];
            c[i * n + j] = sum % 1000003u;
        }
}

uint64_t cd_matrix_checksum(unsigned n, unsigned rounds) {
    uint64_t *a = malloc(sizeof *a * n * n), *b = malloc(sizeof *b * n * n);
    uint64_t *c = malloc(sizeof *c * n * n), checksum = 0;
    uint32_t state = 2463534242u;
    unsigned i, r;
    if (!a || !b || !c) {
        free(a); free(b); free(c);
        return 0;
    }
    for (i = 0; i < n * n; i++) {
        a[i] = next(&state) % 1000u;
        b[i] = next(&state) % 1000u;
    }
    for (r = 0; r < rounds; r++) {
        uint64_t *t;
        multiply(a, b, c, n);
        t = a; a = c; c = t;
    }
    for (i = 0; i < n * n; i++) checksum = checksum * 31u + a[i];
    free(a); free(b); free(c);
    return checksum;
}
