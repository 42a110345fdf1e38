// GELU forward (with an optional fused bias add) and backward, written once with the compiler's
// vector extensions and built twice: for AVX2+FMA and for AVX-512F. Formulas as in
// Compute/GELU.swift and Compute/FastMath.swift:
//   exp(x):  2^n · e^r with n = round(x·log₂e), r = x − n·ln2 (ln2 split in two), degree-6 poly;
//   erf(x):  Abramowitz–Stegun 7.1.26, 1 − (a₁t + … + a₅t⁵)·e^(−x²), t = 1/(1 + 0.3275911|x|),
//            absolute error ≤ 1.5e-7;
//   exact:   gelu = ½x(1 + erf(x/√2)),  gelu' = ½(1 + erf(x/√2)) + x·e^(−x²/2)/√(2π);
//   tanh:    u = √(2/π)(x + 0.044715x³), th = 1 − 2/(e^(2u) + 1),
//            gelu = ½x(1 + th), gelu' = ½(1 + th) + ½x(1 − th²)·√(2/π)(1 + 3·0.044715x²).
#include "ckernels.h"

#include <stdint.h>
#include <string.h>

#define DEFINE_GELU_KERNELS(SUFFIX, TARGET, LANES)                                                  \
    typedef float vf_##SUFFIX __attribute__((vector_size(4 * LANES)));                              \
    typedef int32_t vi_##SUFFIX __attribute__((vector_size(4 * LANES)));                            \
                                                                                                    \
    __attribute__((target(TARGET), always_inline)) static inline vf_##SUFFIX                        \
    splat_##SUFFIX(float a) { return (vf_##SUFFIX){0} + a; }                                         \
                                                                                                    \
    __attribute__((target(TARGET), always_inline)) static inline vf_##SUFFIX                        \
    load_##SUFFIX(const float *p) { vf_##SUFFIX v; memcpy(&v, p, sizeof v); return v; }             \
                                                                                                    \
    __attribute__((target(TARGET), always_inline)) static inline void                               \
    store_##SUFFIX(float *p, vf_##SUFFIX v) { memcpy(p, &v, sizeof v); }                            \
                                                                                                    \
    __attribute__((target(TARGET), always_inline)) static inline vf_##SUFFIX                        \
    select_##SUFFIX(vi_##SUFFIX mask, vf_##SUFFIX a, vf_##SUFFIX b) {                               \
        return (vf_##SUFFIX)((mask & (vi_##SUFFIX)a) | (~mask & (vi_##SUFFIX)b));                   \
    }                                                                                               \
                                                                                                    \
    __attribute__((target(TARGET), always_inline)) static inline vf_##SUFFIX                        \
    exp_##SUFFIX(vf_##SUFFIX x) {                                                                   \
        vf_##SUFFIX v = select_##SUFFIX(x > 88.37f, splat_##SUFFIX(88.37f), x);                      \
        v = select_##SUFFIX(v < -87.33f, splat_##SUFFIX(-87.33f), v);                                \
        vf_##SUFFIX t = v * 1.44269504f + 12582912.0f;                                              \
        vf_##SUFFIX n = t - 12582912.0f;                                                            \
        vf_##SUFFIX r = v - n * 0.693359375f - n * -2.1219444e-4f;                                  \
        vf_##SUFFIX p = splat_##SUFFIX(1.98756915e-4f);                                             \
        p = p * r + 1.39819995e-3f;                                                                 \
        p = p * r + 8.333451907e-3f;                                                                \
        p = p * r + 4.166579589e-2f;                                                                \
        p = p * r + 1.666666546e-1f;                                                                \
        p = p * r + 5.00000012e-1f;                                                                 \
        vf_##SUFFIX y = p * (r * r) + r + 1.0f;                                                     \
        vi_##SUFFIX bits = (((vi_##SUFFIX)t - 0x4B400000) + 127) << 23;                             \
        return y * (vf_##SUFFIX)bits;                                                               \
    }                                                                                               \
                                                                                                    \
    /* erf(z) and e^(−z²). */                                                                       \
    __attribute__((target(TARGET), always_inline)) static inline void                               \
    erf_##SUFFIX(vf_##SUFFIX z, vf_##SUFFIX *erf, vf_##SUFFIX *e) {                                 \
        vf_##SUFFIX az = (vf_##SUFFIX)((vi_##SUFFIX)z & 0x7FFFFFFF);                                \
        vf_##SUFFIX t = 1.0f / (1.0f + 0.3275911f * az);                                            \
        vf_##SUFFIX p = splat_##SUFFIX(1.061405429f);                                               \
        p = p * t - 1.453152027f;                                                                   \
        p = p * t + 1.421413741f;                                                                   \
        p = p * t - 0.284496736f;                                                                   \
        p = p * t + 0.254829592f;                                                                   \
        *e = exp_##SUFFIX(-(z * z));                                                                \
        vf_##SUFFIX y = 1.0f - p * t * *e;                                                          \
        *erf = select_##SUFFIX(z < 0.0f, -y, y);                                                    \
    }                                                                                               \
                                                                                                    \
    /* GELU value and derivative. */                                                                \
    __attribute__((target(TARGET), always_inline)) static inline void                               \
    gelu_##SUFFIX(vf_##SUFFIX x, int approx_tanh, vf_##SUFFIX *value, vf_##SUFFIX *derivative) {    \
        if (!approx_tanh) {                                                                         \
            vf_##SUFFIX erf, e;                                                                     \
            erf_##SUFFIX(x * 0.70710678118654752f, &erf, &e);                                       \
            vf_##SUFFIX cdf = 0.5f * (1.0f + erf);                                                  \
            *value = x * cdf;                                                                       \
            *derivative = cdf + x * e * 0.39894228040143268f;                                       \
        } else {                                                                                    \
            const float c = 0.79788456080286536f;                                                   \
            vf_##SUFFIX x2 = x * x;                                                                 \
            vf_##SUFFIX u = c * (x + 0.044715f * x2 * x);                                           \
            vf_##SUFFIX th = 1.0f - 2.0f / (exp_##SUFFIX(2.0f * u) + 1.0f);                         \
            vf_##SUFFIX half = 0.5f * (1.0f + th);                                                  \
            *value = x * half;                                                                      \
            *derivative = half + 0.5f * x * (1.0f - th * th) * c * (1.0f + 3.0f * 0.044715f * x2);  \
        }                                                                                           \
    }                                                                                               \
                                                                                                    \
    __attribute__((target(TARGET))) void cliplab_gelu_forward_##SUFFIX(                             \
        float *pre, const float *bias, float *out, size_t rows, size_t width, int approx_tanh) {    \
        for (size_t row = 0; row < rows; row++) {                                                   \
            float *p = pre + row * width;                                                           \
            float *o = out + row * width;                                                           \
            size_t j = 0;                                                                           \
            for (; j + LANES <= width; j += LANES) {                                                \
                vf_##SUFFIX x = load_##SUFFIX(p + j), value, derivative;                            \
                if (bias) { x += load_##SUFFIX(bias + j); store_##SUFFIX(p + j, x); }               \
                gelu_##SUFFIX(x, approx_tanh, &value, &derivative);                                 \
                store_##SUFFIX(o + j, value);                                                       \
            }                                                                                       \
            if (j < width) { /* the tail, through a zero-padded vector */                           \
                float tmp[LANES] = {0};                                                             \
                size_t rest = width - j;                                                            \
                for (size_t i = 0; i < rest; i++) tmp[i] = p[j + i] + (bias ? bias[j + i] : 0.0f);  \
                vf_##SUFFIX value, derivative;                                                      \
                gelu_##SUFFIX(load_##SUFFIX(tmp), approx_tanh, &value, &derivative);                \
                if (bias) for (size_t i = 0; i < rest; i++) p[j + i] = tmp[i];                      \
                store_##SUFFIX(tmp, value);                                                         \
                for (size_t i = 0; i < rest; i++) o[j + i] = tmp[i];                                \
            }                                                                                       \
        }                                                                                           \
    }                                                                                               \
                                                                                                    \
    __attribute__((target(TARGET))) void cliplab_gelu_backward_inplace_##SUFFIX(                    \
        float *g, const float *x, size_t n, int approx_tanh) {                                      \
        size_t i = 0;                                                                               \
        for (; i + LANES <= n; i += LANES) {                                                        \
            vf_##SUFFIX value, derivative;                                                          \
            gelu_##SUFFIX(load_##SUFFIX(x + i), approx_tanh, &value, &derivative);                  \
            store_##SUFFIX(g + i, load_##SUFFIX(g + i) * derivative);                               \
        }                                                                                           \
        if (i < n) {                                                                                \
            float tx[LANES] = {0}, tg[LANES] = {0};                                                 \
            size_t rest = n - i;                                                                    \
            memcpy(tx, x + i, rest * sizeof(float));                                                \
            memcpy(tg, g + i, rest * sizeof(float));                                                \
            vf_##SUFFIX value, derivative;                                                          \
            gelu_##SUFFIX(load_##SUFFIX(tx), approx_tanh, &value, &derivative);                     \
            store_##SUFFIX(tg, load_##SUFFIX(tg) * derivative);                                     \
            memcpy(g + i, tg, rest * sizeof(float));                                                \
        }                                                                                           \
    }

DEFINE_GELU_KERNELS(avx2, "avx2,fma", 8)
DEFINE_GELU_KERNELS(avx512, "avx512f", 16)
