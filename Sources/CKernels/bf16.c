// bfloat16 support for `--precision bf16` and `bf16-emulated` (Compute/Precision.swift).
//
// bf16 keeps float32's sign and 8-bit exponent and the top 7 bits of its mantissa: a float32 is
// rounded to it by adding 0x7FFF plus the lowest kept bit (round to nearest, ties to even) and
// dropping the low 16 bits; NaNs keep a quiet-NaN pattern. Since the product of two bf16 values is
// exact in float32, an sgemm over bf16-rounded operands with float32 accumulation computes what a
// bf16 GEMM such as OpenBLAS's `cblas_sbgemm` computes, up to the order of the additions.
//
// The packing routines copy an operand, rounded, into a per-thread scratch buffer that grows when a
// larger operand comes and is then reused, so a training step allocates nothing after its first.
#include "ckernels.h"

#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static inline uint32_t bf16_round_bits(uint32_t bits) {
    if ((bits & 0x7F800000u) == 0x7F800000u && (bits & 0x007FFFFFu) != 0) {
        return (bits | 0x00400000u) & 0xFFFF0000u;  // NaN stays a (quiet) NaN
    }
    return (bits + 0x7FFFu + ((bits >> 16) & 1u)) & 0xFFFF0000u;
}

float cliplab_bf16_round(float x) {
    uint32_t bits;
    memcpy(&bits, &x, 4);
    bits = bf16_round_bits(bits);
    memcpy(&x, &bits, 4);
    return x;
}

void cliplab_bf16_round_array(const float *src, float *dst, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, src + i, 4);
        bits = bf16_round_bits(bits);
        memcpy(dst + i, &bits, 4);
    }
}

/// One growable buffer per (thread, slot).
static __thread void *scratch[2];
static __thread size_t scratch_bytes[2];

static void *scratch_for(int slot, size_t bytes) {
    if (slot < 0 || slot > 1) return NULL;
    if (scratch_bytes[slot] < bytes) {
        free(scratch[slot]);
        // Grow by at least half again, so a slowly growing operand does not reallocate every time.
        size_t size = bytes + bytes / 2;
        scratch[slot] = malloc(size);
        scratch_bytes[slot] = scratch[slot] ? size : 0;
    }
    return scratch[slot];
}

float *cliplab_bf16_pack_rounded(const float *src, size_t rows, size_t cols, size_t ld, int slot) {
    float *dst = scratch_for(slot, rows * cols * sizeof(float) + 1);
    if (!dst) return NULL;
    for (size_t r = 0; r < rows; r++) cliplab_bf16_round_array(src + r * ld, dst + r * cols, cols);
    return dst;
}

uint16_t *cliplab_bf16_pack_bits(const float *src, size_t rows, size_t cols, size_t ld, int slot) {
    uint16_t *dst = scratch_for(slot, rows * cols * sizeof(uint16_t) + 1);
    if (!dst) return NULL;
    for (size_t r = 0; r < rows; r++) {
        const float *row = src + r * ld;
        uint16_t *out = dst + r * cols;
        for (size_t c = 0; c < cols; c++) {
            uint32_t bits;
            memcpy(&bits, row + c, 4);
            out[c] = (uint16_t)(bf16_round_bits(bits) >> 16);
        }
    }
    return dst;
}

typedef void (*sbgemm_fn)(int order, int trans_a, int trans_b, int m, int n, int k, float alpha,
                          const uint16_t *a, int lda, const uint16_t *b, int ldb, float beta,
                          float *c, int ldc);

static sbgemm_fn lookup_sbgemm(void) {
    static int looked;
    static sbgemm_fn fn;
    if (!__atomic_load_n(&looked, __ATOMIC_ACQUIRE)) {
        fn = (sbgemm_fn)dlsym(RTLD_DEFAULT, "cblas_sbgemm");
        __atomic_store_n(&looked, 1, __ATOMIC_RELEASE);
    }
    return fn;
}

int cliplab_sbgemm_available(void) { return lookup_sbgemm() != NULL; }

int cliplab_sbgemm(int order, int trans_a, int trans_b, int m, int n, int k, float alpha,
                   const uint16_t *a, int lda, const uint16_t *b, int ldb, float beta, float *c, int ldc) {
    sbgemm_fn fn = lookup_sbgemm();
    if (!fn) return -1;
    fn(order, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return 0;
}
