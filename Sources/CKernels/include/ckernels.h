// Element-wise kernels that need the CPU's wide vector units: the exact and tanh GELU and their
// derivatives. Each comes in an AVX2+FMA (8 lanes) and an AVX-512F (16 lanes) build of the same
// source; Swift chooses one at run time from the CPU's features (Compute/CPUFeatures.swift) and
// keeps its own portable path for machines with neither. Swift code cannot be compiled for a
// wider instruction set per function, C can (`__attribute__((target(...)))`), which is why these
// few loops live here.
#ifndef CLIPLAB_CKERNELS_H
#define CLIPLAB_CKERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// For each of `rows` rows of `width` floats: p = pre[j] + bias[j] (bias may be NULL: p = pre[j]);
/// when bias is given, pre[j] = p (the backward pass needs the pre-activation); out[j] = gelu(p).
/// `approx_tanh` = 0: exact ½p(1 + erf(p/√2)); 1: ½p(1 + tanh(√(2/π)(p + 0.044715p³))).
/// `out` may equal `pre` only when bias is NULL.
void cliplab_gelu_forward_avx2(float *pre, const float *bias, float *out, size_t rows, size_t width, int approx_tanh);
void cliplab_gelu_forward_avx512(float *pre, const float *bias, float *out, size_t rows, size_t width, int approx_tanh);

/// g[i] *= gelu'(x[i]) for i < n: GELU's backward pass, in place.
void cliplab_gelu_backward_inplace_avx2(float *g, const float *x, size_t n, int approx_tanh);
void cliplab_gelu_backward_inplace_avx512(float *g, const float *x, size_t n, int approx_tanh);

/// bfloat16 (Compute/Precision.swift, CKernels/bf16.c). `cliplab_bf16_round` rounds a float to the
/// nearest bf16 value (ties to even), returned as a float.
float cliplab_bf16_round(float x);
/// dst[i] = bf16_round(src[i]) for i < n; dst may equal src.
void cliplab_bf16_round_array(const float *src, float *dst, size_t n);
/// Copies the (rows, cols) matrix at src (leading dimension ld) into this thread's scratch `slot`
/// (0 or 1), packed (leading dimension cols) and rounded to bf16, as floats / as bf16 bit patterns.
/// NULL if the scratch cannot be allocated. The buffer stays valid until the next call with the slot.
float *cliplab_bf16_pack_rounded(const float *src, size_t rows, size_t cols, size_t ld, int slot);
uint16_t *cliplab_bf16_pack_bits(const float *src, size_t rows, size_t cols, size_t ld, int slot);
/// Whether the BLAS loaded in this process exports `cblas_sbgemm` (OpenBLAS ≥ 0.3.10 built with it).
int cliplab_sbgemm_available(void);
/// `cblas_sbgemm` with CBLAS's enum values as ints; −1 when the BLAS lacks it.
int cliplab_sbgemm(int order, int trans_a, int trans_b, int m, int n, int k, float alpha,
                   const uint16_t *a, int lda, const uint16_t *b, int ldb, float beta, float *c, int ldc);

#ifdef __cplusplus
}
#endif

#endif
