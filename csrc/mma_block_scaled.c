/*
 * Blackwell block-scaled MMA (tcgen05 kind::mxf8f6f4 / mxf4 / mxf4nvf4): the C kernel of
 * fmtlab/mma_block_scaled.py, whose docstring and docs/tensor-cores.md §9 give the maths.
 *
 * fmtlab/mma_block_scaled.py decodes the ScaledCodes into small integers first (element
 * significands and exponents, scale significands and exponents, special flags), so this file
 * only does the integer block arithmetic: every cut term is an int64 (|term| < 2^48, the sum
 * < 2^53, exact in a double), and each output element is computed by one thread from its first
 * block to its last, so the thread count cannot change a bit.
 */
#include "fmtlab.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#define BS_PARALLEL_THRESHOLD 65536
/* An AVX2 clone of the per-element loop, picked at load time (64-bit variable shifts exist from
 * AVX2 on); the arithmetic is integer and exact, so both clones give the same bits. */
#if defined(__GNUC__) && defined(__x86_64__) && defined(__linux__) && !defined(__SANITIZE_ADDRESS__)
#define BS_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define BS_CLONES
#endif
#define BS_NO_EXPONENT (-1000000)

/* v * 2^shift cut toward zero; branch-free (the signs and shifts of the terms are random, and
 * mispredicted branches cost more than the arithmetic). */
static inline int64_t cut_toward_zero(int64_t v, int64_t shift)
{
    uint64_t mask = (uint64_t)(v >> 63); /* all ones for v < 0 */
    uint64_t magnitude = ((uint64_t)v ^ mask) - mask;
    int64_t left = shift < 0 ? 0 : shift > 62 ? 62 : shift;
    int64_t right = shift > 0 ? 0 : -shift > 63 ? 63 : -shift;
    magnitude = (magnitude << left) >> right;
    return (int64_t)((magnitude ^ mask) - mask);
}

/* float32 of total * 2^exponent rounded toward zero (|total| < 2^53); +-Inf from 2^128. */
static float round_toward_zero_f32(int64_t total, int64_t exponent)
{
    double exact = ldexp((double)total, (int)(exponent < -2000 ? -2000 : exponent > 2000 ? 2000 : exponent));
    if (fabs(exact) >= 0x1p128)
        return exact > 0 ? INFINITY : -INFINITY;
    float nearest = (float)exact;
    if (fabs((double)nearest) > fabs(exact))
        nearest = nextafterf(nearest, 0.0f);
    return nearest;
}

static float canonical_nan_f32(void)
{
    union { uint32_t bits; float value; } nan = { 0x7FFFFFFFu };
    return nan.value;
}

/* The special values of one block (NaN element or scale, Inf * 0, +Inf with -Inf): 1 NaN,
 * 2 +Inf, 3 -Inf, 0 none. */
static int block_special(const fl_mma_block_scaled *p, const uint8_t *a_flag, const uint8_t *b_flag,
                         const int32_t *a_sig, const int32_t *b_sig, const int32_t *sa_sig, const int32_t *sb_sig,
                         const uint8_t *sa_nan, const uint8_t *sb_nan, int64_t start, int64_t end, float c)
{
    int nan = isnan(c), positive = c == INFINITY, negative = c == -INFINITY;
    for (int64_t q = start; q < end; q++) {
        int64_t s = q / p->scale_block;
        int fa = a_flag[q] & 3, fb = b_flag[q] & 3;
        if (fa == 1 || fb == 1 || sa_nan[s] || sb_nan[s])
            nan = 1;
        else if (fa == 2 || fb == 2) {
            if ((fa != 2 && a_sig[q] == 0) || (fb != 2 && b_sig[q] == 0) || sa_sig[s] == 0 || sb_sig[s] == 0)
                nan = 1;
            else if (((a_flag[q] ^ b_flag[q]) >> 2) & 1)
                negative = 1;
            else
                positive = 1;
        }
    }
    if (nan || (positive && negative))
        return 1;
    return positive ? 2 : negative ? 3 : 0;
}

/* One output element: the chain of instruction blocks over K (see the file comment).  With
 * group_sum 0 the element arrays already hold the scales (significand and exponent folded in
 * by fmtlab/mma_block_scaled.py). */
BS_CLONES static float block_scaled_element(const fl_mma_block_scaled *p, int64_t i, int64_t j, float c, int64_t *terms,
                                  int64_t *exponents)
{
    const int64_t k = p->k, nb = p->scale_blocks, G = p->group_sum, blocks = p->instruction_blocks;
    const int32_t *a_sig = p->a_sig + i * k, *a_exp = p->a_exp + i * k;
    const int32_t *b_sig = p->b_sig + j * k, *b_exp = p->b_exp + j * k;
    const uint8_t *a_flag = p->a_flags + i * k, *b_flag = p->b_flags + j * k;
    const int32_t *sa_sig = p->sa_sig + i * nb, *sa_exp = p->sa_exp + i * nb;
    const int32_t *sb_sig = p->sb_sig + j * nb, *sb_exp = p->sb_exp + j * nb;
    const uint8_t *sa_nan = p->sa_nan + i * nb, *sb_nan = p->sb_nan + j * nb;
    const uint8_t *a_block = p->a_block_special + i * blocks, *b_block = p->b_block_special + j * blocks;
    for (int64_t start = 0, index = 0; start < k; start += p->block, index++) {
        int64_t end = start + p->block < k ? start + p->block : k;
        if (a_block[index] | b_block[index] | !isfinite(c)) {
            int special = block_special(p, a_flag, b_flag, a_sig, b_sig, sa_sig, sb_sig, sa_nan, sb_nan, start,
                                        end, c);
            if (special) {
                c = special == 1 ? canonical_nan_f32() : special == 2 ? INFINITY : -INFINITY;
                continue;
            }
        }
        /* the terms and their alignment exponents */
        int64_t count = 0, top = BS_NO_EXPONENT;
        if (G == 0) {
            for (int64_t q = start; q < end; q++) {
                int64_t product = (int64_t)a_sig[q] * b_sig[q];
                int64_t align = product ? (int64_t)a_exp[q] + b_exp[q] : BS_NO_EXPONENT;
                terms[count] = product;
                exponents[count++] = align;
                top = align > top ? align : top;
            }
        } else {
            for (int64_t g = start; g < end; g += G) {
                int64_t g_end = g + G < end ? g + G : end, s = g / p->scale_block, sum = 0;
                for (int64_t q = g; q < g_end; q++)
                    sum += ((int64_t)a_sig[q] * b_sig[q]) << (a_exp[q] + b_exp[q]);
                int64_t align = (int64_t)sa_exp[s] + sb_exp[s];
                terms[count] = sum * sa_sig[s] * sb_sig[s];
                exponents[count++] = align;
                top = align > top ? align : top;
            }
        }
        int64_t c_sig = 0, c_align = -126;
        if (c != 0) {
            int e;
            double fraction = frexp((double)c, &e);
            c_align = e - 1 < -126 ? -126 : e - 1;
            c_sig = (int64_t)ldexp(fraction, e - (int)c_align + 23); /* exact: c is a float32 */
        }
        if ((c != 0 || G != 0) && c_align > top)
            top = c_align;
        int64_t total = 0;
        if (top != BS_NO_EXPONENT) {
            int64_t quantum = top - p->frac_bits - p->value_offset;
            for (int64_t t = 0; t < count; t++)
                total += cut_toward_zero(terms[t], exponents[t] - quantum);
            total += cut_toward_zero(c_sig, c_align - 23 - (top - p->frac_bits));
        }
        if (total != 0) {
            c = round_toward_zero_f32(total, top - p->frac_bits);
            continue;
        }
        /* an exact zero is -0 only when every term is -0 */
        int all_negative_zero = c == 0 && signbit(c);
        for (int64_t q = start; q < end && all_negative_zero; q++)
            if ((int64_t)a_sig[q] * b_sig[q] != 0 || (a_flag[q] & 3) || (b_flag[q] & 3) ||
                !(((a_flag[q] ^ b_flag[q]) >> 2) & 1))
                all_negative_zero = 0;
        c = all_negative_zero ? -0.0f : 0.0f;
    }
    return c;
}

int fl_mma_block_scaled_f32(const fl_mma_block_scaled *p, const float *c, float *d)
{
    if (p->m < 0 || p->n < 0 || p->k < 0 || p->block < 1 || p->scale_block < 1 || p->group_sum < 0 ||
        p->frac_bits < 0 || p->frac_bits > 40 || (p->group_sum && p->block % p->group_sum))
        return FL_ERROR_MMA_MODEL;
    const int64_t m = p->m, n = p->n;
    double work = (double)m * (double)n * (double)(p->k > 0 ? p->k : 1);
    int threads = work >= BS_PARALLEL_THRESHOLD ? fl_max_threads() : 1;
    (void)threads; /* used only by the OpenMP pragma */
    int status = FL_OK;
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        fl_floating_point_state state;
        fl_enter_default_floating_point(&state);
        int64_t *terms = malloc((size_t)p->block * 2 * sizeof(int64_t));
        if (!terms) {
#pragma omp atomic write
            status = FL_ERROR_OUT_OF_MEMORY;
        }
#pragma omp for schedule(static)
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n && terms; j++)
                d[i * n + j] = block_scaled_element(p, i, j, c ? c[i * n + j] : 0.0f, terms, terms + p->block);
        free(terms);
        fl_leave_default_floating_point(&state);
    }
    return status;
}
