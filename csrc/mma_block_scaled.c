/*
 * Blackwell block-scaled MMA (tcgen05 kind::mxf8f6f4 / mxf4 / mxf4nvf4): the C kernel of
 * fmtlab/mma_block_scaled.py, whose docstring and docs/tensor-cores.md §9 give the maths.
 *
 * Python passes the decoded element values (float32, exact) and the scales (value, integer
 * significand, exponent E(S)); this file derives the integers of the definition from them.
 *
 * Two paths give the same bits:
 *
 * - the definition (block_step): one output element, one instruction block, every cut term an
 *   int64 (|term| < 2^48, the sum < 2^53), used for every model, every lane the fast path
 *   cannot do, and the whole product when the fast path does not apply or is not asked for;
 * - the fast path (AVX-512, or its lane-for-lane AVX2 + FMA copy in mma_block_scaled_avx2.h;
 *   four rows of A against one strip of 16 columns of B packed along K), which works in float32 and double arithmetic that is exact for these formats:
 *   kind::mxf8f6f4 (group_sum 0, E8M0 scales): a product of two FP8/FP6 values has at most 8
 *   significant bits, so a_k b_k 2^(F - M + E(S_a) + E(S_b)) is exact in float32 and below
 *   2^(F + 2); its conversion to int32 is the cut toward zero; runs of them sum in int32.
 *   kind::mxf4 / mxf4nvf4 (group_sum G): the products of FP4 values are multiples of 2^-2
 *   below 2^6, so a float32 fused multiply-add chain over a group of 16 is their exact sum;
 *   the group term sum * S_a * S_b * 2^(F - M) has at most 32 significant bits, exact in
 *   double, and is cut by truncation in double.  The block total is then an integer below
 *   2^53, exact in double whatever the order of the additions.  Lanes with a NaN or Inf (an
 *   element, a scale or c), an exact zero (whose sign needs the definition), a float32
 *   subnormal result or a scale out of float32's range are redone by block_step.
 *
 * Each output element is computed by one thread from its first block to its last, so the thread
 * count cannot change a bit.  FMTLAB_MMA_SIMD=avx2 / FMTLAB_SIMD=avx2 (and AVX2 CPUs) run the AVX2
 * copy of the fast path, FMTLAB_MMA_SIMD=sse2 / FMTLAB_SIMD=portable the definition throughout.
 */
#include "fmtlab.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define BS_AVX512 1
#endif

#define BS_PARALLEL_THRESHOLD 65536
/* An AVX2 clone of the definition's loop, picked at load time (64-bit variable shifts exist from
 * AVX2 on); the arithmetic is integer and exact, so both clones give the same bits. */
#if defined(__GNUC__) && defined(__x86_64__) && defined(__linux__) && !defined(__SANITIZE_ADDRESS__)
#define BS_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define BS_CLONES
#endif
#define BS_NO_EXPONENT (-1000000)
#define LANES 16
#define ROW_GROUP 4
#define TILE_ROWS 16
/* Exponent of a zero or non-finite element on the fast path: the sum of two never wins a
 * maximum against a real product (>= -60) and still fits an int16_t. */
#define ZERO_EXPONENT (-16000)
#define NO_TERM_EXPONENT (-2000)
#define MAX_GROUPS 8 /* groups per instruction block on the fast path */

/* ---- the definition ------------------------------------------------------------ */

/* The integers of the definition and the fast path's packed operands. */
typedef struct bs_data {
    const fl_mma_block_scaled *p;
    int64_t blocks; /* instruction blocks along K */
    /* per element (A m x k, B transposed n x k): signed significand, exponent (group_sum 0:
     * alignment exponent with the scale's folded in; else the shift inside the group) and flags
     * (bits 0-1: 0 finite, 1 NaN, 2 Inf; bit 2: negative); per scale: NaN flag; per instruction
     * block: whether it holds a NaN or Inf element or a NaN scale. */
    int32_t *a_sig, *a_exp, *b_sig, *b_exp;
    uint8_t *a_flags, *b_flags, *sa_nan, *sb_nan, *a_block_special, *b_block_special;
    /* the fast path: alignment exponents of A (m x k), B's values and alignment exponents and
     * its scales' exponents and values packed by strips of LANES columns, and per strip and
     * instruction block the mask of its lanes holding specials */
    int fast;
    int64_t strips, run;
    int16_t *a_align, *b_align;
    float *b_packed;
    int32_t *sb_exp_packed;
    double *sb_value_packed;
    uint16_t *b_block_mask;
} bs_data;

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

/* One instruction block (index, from K = start) of output (i, j) by the definition, from the
 * running c; terms and exponents hold block elements each.  With group_sum 0 the element arrays
 * already hold the scales (significand and exponent folded in by prepare). */
BS_CLONES static float block_step(const bs_data *data, int64_t i, int64_t j, int64_t index, float c, int64_t *terms,
                                  int64_t *exponents)
{
    const fl_mma_block_scaled *p = data->p;
    const int64_t k = p->k, nb = p->scale_blocks, G = p->group_sum;
    const int32_t *a_sig = data->a_sig + i * k, *a_exp = data->a_exp + i * k;
    const int32_t *b_sig = data->b_sig + j * k, *b_exp = data->b_exp + j * k;
    const uint8_t *a_flag = data->a_flags + i * k, *b_flag = data->b_flags + j * k;
    const int32_t *sa_sig = p->sa_sig + i * nb, *sa_exp = p->sa_exp + i * nb;
    const int32_t *sb_sig = p->sb_sig + j * nb, *sb_exp = p->sb_exp + j * nb;
    const uint8_t *sa_nan = data->sa_nan + i * nb, *sb_nan = data->sb_nan + j * nb;
    const int64_t start = index * p->block, end = start + p->block < k ? start + p->block : k;
    if (data->a_block_special[i * data->blocks + index] | data->b_block_special[j * data->blocks + index] |
        !isfinite(c)) {
        int special = block_special(p, a_flag, b_flag, a_sig, b_sig, sa_sig, sb_sig, sa_nan, sb_nan, start, end, c);
        if (special)
            return special == 1 ? canonical_nan_f32() : special == 2 ? INFINITY : -INFINITY;
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
                /* a multiplication, not a left shift of a possibly negative product */
                sum += (int64_t)a_sig[q] * b_sig[q] * ((int64_t)1 << (a_exp[q] + b_exp[q]));
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
    if (total != 0)
        return round_toward_zero_f32(total, top - p->frac_bits);
    /* an exact zero is -0 only when every term is -0 */
    int all_negative_zero = c == 0 && signbit(c);
    for (int64_t q = start; q < end && all_negative_zero; q++)
        if ((int64_t)a_sig[q] * b_sig[q] != 0 || (a_flag[q] & 3) || (b_flag[q] & 3) ||
            !(((a_flag[q] ^ b_flag[q]) >> 2) & 1))
            all_negative_zero = 0;
    return all_negative_zero ? -0.0f : 0.0f;
}

/* ---- the operands ------------------------------------------------------------------ */

/* The integers of one element x of the format (e_min >= -64: x is a float32 normal or zero):
 * significand s and exponent e (|x| = s 2^(e - man_bits), e >= e_min; zero, Inf and NaN: s = 0,
 * e = e_min), its flags, and the fast path's alignment exponent (e, or ZERO_EXPONENT for a zero,
 * Inf or NaN).  Read from the bits: exact, and cheaper than frexp. */
static inline void element_integers(float x, int emin, int man, int32_t *sig, int32_t *exp, uint8_t *flag,
                                    int16_t *align)
{
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    const int field = (int)((bits >> 23) & 0xFF);
    const uint32_t mantissa = bits & 0x7FFFFFu;
    *flag = (uint8_t)((field == 255 ? (mantissa ? 1 : 2) : 0) | (bits >> 31 ? 4 : 0));
    *sig = 0;
    *exp = emin;
    *align = ZERO_EXPONENT;
    if (field != 0 && field != 255) {
        int e = field - 127, clamped = e < emin ? emin : e;
        int32_t magnitude = (int32_t)((mantissa | 0x800000u) >> (23 - man + (clamped - e)));
        *sig = bits >> 31 ? -magnitude : magnitude;
        *exp = clamped;
        *align = (int16_t)clamped;
    }
}

static void free_data(bs_data *d)
{
    free(d->a_sig); free(d->a_exp); free(d->b_sig); free(d->b_exp);
    free(d->a_flags); free(d->b_flags); free(d->sa_nan); free(d->sb_nan);
    free(d->a_block_special); free(d->b_block_special);
    free(d->a_align); free(d->b_align); free(d->b_packed);
    free(d->sb_exp_packed); free(d->sb_value_packed); free(d->b_block_mask);
}

/* The integers of one operand row (A's row, B's column) r: values[r * row_stride + q * k_stride];
 * align (may be NULL) receives the fast path's alignment exponents. */
static void prepare_row(const fl_mma_block_scaled *p, const float *values, int64_t r, int64_t row_stride,
                        int64_t k_stride, const int32_t *s_sig, const int32_t *s_exp, const uint8_t *s_nan,
                        int64_t blocks, int32_t *sig, int32_t *exp, uint8_t *flags, uint8_t *block_special,
                        int16_t *align)
{
    const int64_t k = p->k, nb = p->scale_blocks;
    const int emin = (int)p->element_emin, man = (int)p->element_man_bits;
    const float *row = values + r * row_stride;
    for (int64_t s = 0; s < nb; s++) {
        const int64_t q1 = (s + 1) * p->scale_block < k ? (s + 1) * p->scale_block : k;
        const int32_t scale_sig = s_sig[r * nb + s], scale_exp = s_exp[r * nb + s];
        for (int64_t q = s * p->scale_block; q < q1; q++) {
            int64_t at = r * k + q;
            int16_t unused;
            element_integers(row[q * k_stride], emin, man, sig + at, exp + at, flags + at,
                             align ? align + at : &unused);
            if (p->group_sum) {
                exp[at] -= emin;
            } else {
                sig[at] *= scale_sig;
                exp[at] += scale_exp;
            }
        }
    }
    for (int64_t index = 0; index < blocks; index++) {
        uint8_t special = 0;
        int64_t end = (index + 1) * p->block < k ? (index + 1) * p->block : k;
        for (int64_t q = index * p->block; q < end; q++)
            special |= flags[r * k + q] & 3;
        for (int64_t s = index * p->block / p->scale_block; s <= (end - 1) / p->scale_block; s++)
            special |= s_nan[r * nb + s]; /* the scales of the block's elements */
        block_special[r * blocks + index] = special != 0;
    }
}

/* Whether the fast path's float arithmetic is exact for this model (see the file comment). */
static int fast_path_applies(const fl_mma_block_scaled *p)
{
    const int64_t man = p->element_man_bits, emin = p->element_emin, emax = p->element_emax, F = p->frac_bits;
    /* products exact in float32 and far inside its normal range */
    int products = 2 * (man + 1) <= 24 && 2 * (emin - man) >= -126 && 2 * (emax + 1) + 2 < 127;
    if (!products || p->k < 1 || p->reference)
        return 0;
    if (p->group_sum == 0)
        /* E8M0 scales (significand 1), one scale per instruction block, int32 runs */
        return p->value_offset == -2 * man && p->scale_block % p->block == 0 && F <= 28;
    const int64_t G = p->group_sum, groups = p->block / G;
    /* a group's sum exact in float32: G products, multiples of 2^(2 (emin - man)), below 2^(2 emax + 2) */
    double group_units = (double)G * ldexp(1.0, (int)(2 * emax + 2 - 2 * (emin - man)));
    /* the block total below 2^53: (groups + 1) terms below G 2^(2 emax + 2) 2^2 2^F */
    double total = (double)(groups + 1) * (double)G * ldexp(1.0, (int)(2 * emax + 4 + F));
    /* value_offset = 2 emin - 2 man - (scale significand bits of A and B): at most 8 of those keep
     * a group term (24 bits of sum, 2 x 5 of scales) exact in double */
    return groups <= MAX_GROUPS && p->scale_block % G == 0 && group_units <= 0x1p24 && total <= 0x1p53 &&
           p->value_offset >= 2 * emin - 2 * man - 8;
}

static int prepare(const fl_mma_block_scaled *p, bs_data *d, int simd, int threads)
{
    memset(d, 0, sizeof *d);
    d->p = p;
    const int64_t m = p->m, n = p->n, k = p->k, nb = p->scale_blocks;
    d->blocks = (k + p->block - 1) / p->block;
    size_t mk = (size_t)(m * k > 0 ? m * k : 1), nk = (size_t)(n * k > 0 ? n * k : 1);
    size_t mb = (size_t)(m * nb > 0 ? m * nb : 1), nbn = (size_t)(n * nb > 0 ? n * nb : 1);
    size_t mblocks = (size_t)(m * d->blocks > 0 ? m * d->blocks : 1);
    size_t nblocks = (size_t)(n * d->blocks > 0 ? n * d->blocks : 1);
    d->a_sig = malloc(mk * 4); d->a_exp = malloc(mk * 4); d->a_flags = malloc(mk);
    d->b_sig = malloc(nk * 4); d->b_exp = malloc(nk * 4); d->b_flags = malloc(nk);
    d->sa_nan = malloc(mb); d->sb_nan = malloc(nbn);
    d->a_block_special = malloc(mblocks); d->b_block_special = malloc(nblocks);
    if (!d->a_sig || !d->a_exp || !d->a_flags || !d->b_sig || !d->b_exp || !d->b_flags || !d->sa_nan ||
        !d->sb_nan || !d->a_block_special || !d->b_block_special)
        return FL_ERROR_OUT_OF_MEMORY;
    for (int64_t s = 0; s < m * nb; s++)
        d->sa_nan[s] = (uint8_t)isnan(p->sa_value[s]);
    for (int64_t s = 0; s < n * nb; s++)
        d->sb_nan[s] = (uint8_t)isnan(p->sb_value[s]);
    /* 2: the AVX-512 kernel, 1: its AVX2 + FMA copy (FMTLAB_MMA_SIMD=avx2 or an AVX2 CPU), 0: the
     * definition throughout (FMTLAB_MMA_SIMD=sse2, FMTLAB_SIMD=portable) */
    d->fast = 0;
#ifdef BS_AVX512
    if (fast_path_applies(p)) {
        __builtin_cpu_init();
        d->fast = simd >= 2 ? 2 : simd == 1 && __builtin_cpu_supports("fma") ? 1 : 0;
    }
#else
    (void)simd;
#endif
    if (d->fast)
        d->a_align = malloc(mk * sizeof(int16_t));
    if (d->fast && !d->a_align)
        return FL_ERROR_OUT_OF_MEMORY;
    (void)threads; /* used only by the OpenMP pragmas */
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
    for (int64_t r = 0; r < m; r++)
        prepare_row(p, p->a_values, r, k, 1, p->sa_sig, p->sa_exp, d->sa_nan, d->blocks, d->a_sig, d->a_exp,
                    d->a_flags, d->a_block_special, d->a_align);
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
    for (int64_t r = 0; r < n; r++)
        prepare_row(p, p->b_values, r, 1, n, p->sb_sig, p->sb_exp, d->sb_nan, d->blocks, d->b_sig, d->b_exp,
                    d->b_flags, d->b_block_special, NULL);
    if (!d->fast)
        return FL_OK;
    d->strips = (n + LANES - 1) / LANES;
    d->run = (int64_t)(2147483647.0 / (ldexp(1.0, (int)p->frac_bits + 2) - 1.0));
    size_t packed = (size_t)(d->strips * k * LANES);
    size_t packed_scales = (size_t)(d->strips * (nb > 0 ? nb : 1) * LANES);
    d->b_align = malloc(packed * sizeof(int16_t));
    d->b_packed = malloc(packed * sizeof(float));
    d->sb_exp_packed = malloc(packed_scales * sizeof(int32_t));
    d->sb_value_packed = malloc(packed_scales * sizeof(double));
    d->b_block_mask = calloc((size_t)(d->strips * d->blocks), sizeof(uint16_t));
    if (!d->b_align || !d->b_packed || !d->sb_exp_packed || !d->sb_value_packed || !d->b_block_mask)
        return FL_ERROR_OUT_OF_MEMORY;
    const int emin = (int)p->element_emin, man = (int)p->element_man_bits;
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
    for (int64_t strip = 0; strip < d->strips; strip++) {
        for (int64_t q = 0; q < k; q++)
            for (int w = 0; w < LANES; w++) {
                int64_t j = strip * LANES + w, at = (strip * k + q) * LANES + w;
                float x = j < n ? p->b_values[q * n + j] : 0.0f; /* padding columns: zeros */
                int32_t sig, exp;
                uint8_t flag;
                d->b_packed[at] = x;
                element_integers(x, emin, man, &sig, &exp, &flag, d->b_align + at);
            }
        for (int64_t s = 0; s < nb; s++)
            for (int w = 0; w < LANES; w++) {
                int64_t j = strip * LANES + w, at = (strip * nb + s) * LANES + w;
                d->sb_exp_packed[at] = j < n ? p->sb_exp[j * nb + s] : 0;
                d->sb_value_packed[at] = j < n ? p->sb_value[j * nb + s] : 0.0;
            }
        for (int64_t index = 0; index < d->blocks; index++)
            for (int w = 0; w < LANES; w++) {
                int64_t j = strip * LANES + w;
                if (j < n && d->b_block_special[j * d->blocks + index])
                    d->b_block_mask[strip * d->blocks + index] |= (uint16_t)(1u << w);
            }
    }
    return FL_OK;
}

/* ---- the fast path (AVX-512) ----------------------------------------------------------- */
#ifdef BS_AVX512
#define BS_TARGET __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl")))

/*
 * The end of one block of one row and strip: total (the exact integer sum of the cut terms, as
 * two halves of 8 doubles) times 2^(top - F), rounded toward zero to float32 on its bits (+-Inf
 * from 2^128); lanes with a zero total or a subnormal result are added to *flag.  The results of
 * unflagged lanes go to chain.
 */
BS_TARGET __attribute__((always_inline)) static inline void
finish_block(const __m512d total[2], __m512i top, uint16_t *flag, int64_t frac_bits, float chain[LANES])
{
    const __m512i unscale = _mm512_mask_blend_epi32(*flag, _mm512_add_epi32(top, _mm512_set1_epi32(
                                                               (int)(1023 - frac_bits))), _mm512_set1_epi32(1023));
    const __m512i abs_mask = _mm512_set1_epi64(0x7FFFFFFFFFFFFFFFll);
    const __m512i cut = _mm512_set1_epi64((long long)((1ull << 29) - 1)); /* double's bits below float32's */
    const __m512d small = _mm512_set1_pd(0x1p-126), huge = _mm512_set1_pd(0x1p128);
    __m256 result[2];
    for (int h = 0; h < 2; h++) {
        __m256i exponent32 = h ? _mm512_extracti64x4_epi64(unscale, 1) : _mm512_castsi512_si256(unscale);
        __m512d value = _mm512_mul_pd(total[h], _mm512_castsi512_pd(_mm512_slli_epi64(
                                                    _mm512_cvtepu32_epi64(exponent32), 52)));
        __m512i bits = _mm512_castpd_si512(value);
        __m512d magnitude = _mm512_castsi512_pd(_mm512_and_si512(bits, abs_mask));
        __mmask8 tiny = _mm512_cmp_pd_mask(magnitude, small, _CMP_LT_OQ); /* zero or subnormal */
        __mmask8 over = _mm512_cmp_pd_mask(magnitude, huge, _CMP_GE_OQ);
        __m512d truncated = _mm512_castsi512_pd(_mm512_andnot_si512(cut, bits));
        __m512d infinity = _mm512_castsi512_pd(_mm512_or_si512(_mm512_castpd_si512(_mm512_set1_pd(INFINITY)),
                                                               _mm512_andnot_si512(abs_mask, bits)));
        truncated = _mm512_mask_blend_pd(over, truncated, infinity);
        result[h] = _mm512_cvtpd_ps(truncated); /* exact: 24 significant bits, normal range, or Inf */
        *flag |= (__mmask16)((unsigned)tiny << (8 * h));
    }
    __m512 both = _mm512_insertf32x8(_mm512_castps256_ps512(result[0]), result[1], 1);
    _mm512_mask_storeu_ps(chain, (__mmask16)~*flag, both);
}

/* c's alignment exponent max(floor(log2|c|), -126) from its bits, and whether c is nonzero. */
BS_TARGET __attribute__((always_inline)) static inline __m512i c_exponent(__m512i c_bits, __m512i *field)
{
    *field = _mm512_and_si512(_mm512_srli_epi32(c_bits, 23), _mm512_set1_epi32(0xFF));
    return _mm512_max_epi32(_mm512_sub_epi32(*field, _mm512_set1_epi32(127)), _mm512_set1_epi32(-126));
}

/* trunc(c 2^(F - top)) as two halves of 8 doubles (0 for flagged lanes); exact, below 2^(F + 1). */
BS_TARGET __attribute__((always_inline)) static inline void c_cut(__m512i c_bits, __m512i top, __mmask16 keep,
                                                                  int64_t frac_bits, __m512d out[2])
{
    const __m512i c_value = _mm512_maskz_mov_epi32(keep, c_bits);
    const __m512i scale = _mm512_mask_blend_epi32(keep, _mm512_set1_epi32(1023),
                                                  _mm512_sub_epi32(_mm512_set1_epi32((int)(1023 + frac_bits)), top));
    for (int h = 0; h < 2; h++) {
        __m256i half_bits = h ? _mm512_extracti64x4_epi64(c_value, 1) : _mm512_castsi512_si256(c_value);
        __m256i half_scale = h ? _mm512_extracti64x4_epi64(scale, 1) : _mm512_castsi512_si256(scale);
        __m512d x = _mm512_mul_pd(_mm512_cvtps_pd(_mm256_castsi256_ps(half_bits)),
                                  _mm512_castsi512_pd(_mm512_slli_epi64(_mm512_cvtepu32_epi64(half_scale), 52)));
        out[h] = _mm512_roundscale_pd(x, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    }
}

/* The lanes of block `index` of row i that hold a special element or scale, or a non-finite c. */
BS_TARGET __attribute__((always_inline)) static inline __mmask16 special_lanes(const bs_data *d, int64_t i,
                                                                               int64_t strip, int64_t index,
                                                                               __m512i field)
{
    __mmask16 flag = d->a_block_special[i * d->blocks + index] ? (__mmask16)0xFFFF
                                                               : (__mmask16)d->b_block_mask[strip * d->blocks + index];
    return flag | _mm512_cmpeq_epi32_mask(field, _mm512_set1_epi32(0xFF));
}

/*
 * kind::mxf8f6f4 (group_sum 0): block `index` of `rows` rows from i against strip `strip`.  Per
 * lane: t = the largest e_a + e_b of the nonzero products, S = E(S_a) + E(S_b), M = max(t + S,
 * e_c when c != 0), the products cut at 2^(F - M + S) in float32 and int32, c at 2^(F - M) in
 * double.  flags[r] receives the lanes left to the definition.
 */
BS_TARGET __attribute__((always_inline)) static inline void
rows_block_plain(const bs_data *d, int64_t i, int rows, int64_t strip, int64_t index, float chain[][LANES],
                 __mmask16 flags[])
{
    const fl_mma_block_scaled *p = d->p;
    const int64_t k = p->k, F = p->frac_bits, start = index * p->block;
    const int64_t count = start + p->block < k ? p->block : k - start, s = start / p->scale_block;
    const float *b = d->b_packed + (strip * k + start) * LANES;
    const int16_t *be = d->b_align + (strip * k + start) * LANES;
    const float *a[ROW_GROUP];
    const int16_t *ae[ROW_GROUP];
    __m256i largest[ROW_GROUP];
    for (int r = 0; r < rows; r++) {
        a[r] = p->a_values + (i + r) * k + start;
        ae[r] = d->a_align + (i + r) * k + start;
        largest[r] = _mm256_set1_epi16((int16_t)(2 * ZERO_EXPONENT));
    }
    for (int64_t q = 0; q < count; q++) {
        const __m256i row = _mm256_loadu_si256((const __m256i *)(be + q * LANES));
        for (int r = 0; r < rows; r++)
            largest[r] = _mm256_max_epi16(largest[r], _mm256_add_epi16(_mm256_set1_epi16(ae[r][q]), row));
    }
    const __m512i sb = _mm512_loadu_si512((const void *)(d->sb_exp_packed + (strip * p->scale_blocks + s) * LANES));
    __m512i top[ROW_GROUP], c_bits[ROW_GROUP];
    __m512 scale[ROW_GROUP];
    for (int r = 0; r < rows; r++) {
        const __m512i t = _mm512_cvtepi16_epi32(largest[r]);
        const __m512i S = _mm512_add_epi32(_mm512_set1_epi32(p->sa_exp[(i + r) * p->scale_blocks + s]), sb);
        const __mmask16 has = _mm512_cmpgt_epi32_mask(t, _mm512_set1_epi32(NO_TERM_EXPONENT));
        __m512i field;
        c_bits[r] = _mm512_loadu_si512((const void *)chain[r]);
        const __m512i ce = c_exponent(c_bits[r], &field);
        const __mmask16 c_nonzero = _mm512_test_epi32_mask(c_bits[r], _mm512_set1_epi32(0x7FFFFFFF));
        __m512i m_top = _mm512_mask_blend_epi32(has, ce, _mm512_add_epi32(t, S));
        m_top = _mm512_mask_max_epi32(m_top, c_nonzero, m_top, ce);
        __mmask16 flag = special_lanes(d, i + r, strip, index, field) | (__mmask16)(~has & ~c_nonzero);
        /* the products' scale 2^(F - M + S) as a float32: 0 where it is below float32's normals
         * (every cut product is then 0: |a b| 2^(F - M + S) < 2^(2 emax + 2 - 126) < 1) */
        const __m512i biased = _mm512_add_epi32(_mm512_sub_epi32(S, m_top), _mm512_set1_epi32((int)(F + 127)));
        flag |= _mm512_mask_cmpgt_epi32_mask(has, biased, _mm512_set1_epi32(254));
        const __mmask16 usable = (__mmask16)(~flag & _mm512_cmpgt_epi32_mask(biased, _mm512_setzero_si512()) &
                                             _mm512_cmplt_epi32_mask(biased, _mm512_set1_epi32(255)));
        scale[r] = _mm512_castsi512_ps(_mm512_maskz_slli_epi32(usable, biased, 23));
        top[r] = m_top;
        flags[r] = flag;
    }
    __m512d total[ROW_GROUP][2];
    for (int r = 0; r < rows; r++)
        total[r][0] = total[r][1] = _mm512_setzero_pd();
    for (int64_t run0 = 0; run0 < count; run0 += d->run) {
        const int64_t run1 = run0 + d->run < count ? run0 + d->run : count;
        __m512i sum[ROW_GROUP];
        for (int r = 0; r < rows; r++)
            sum[r] = _mm512_setzero_si512();
        for (int64_t q = run0; q < run1; q++) {
            const __m512 row = _mm512_loadu_ps(b + q * LANES);
            for (int r = 0; r < rows; r++)
                sum[r] = _mm512_add_epi32(sum[r], _mm512_cvttps_epi32(_mm512_mul_ps(
                                                      _mm512_mul_ps(_mm512_set1_ps(a[r][q]), row), scale[r])));
        }
        for (int r = 0; r < rows; r++) {
            total[r][0] = _mm512_add_pd(total[r][0], _mm512_cvtepi32_pd(_mm512_castsi512_si256(sum[r])));
            total[r][1] = _mm512_add_pd(total[r][1], _mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(sum[r], 1)));
        }
    }
    for (int r = 0; r < rows; r++) {
        __m512d cut[2];
        const __mmask16 c_nonzero = _mm512_test_epi32_mask(c_bits[r], _mm512_set1_epi32(0x7FFFFFFF));
        c_cut(c_bits[r], top[r], (__mmask16)(~flags[r] & c_nonzero), F, cut);
        total[r][0] = _mm512_add_pd(total[r][0], cut[0]);
        total[r][1] = _mm512_add_pd(total[r][1], cut[1]);
        finish_block(total[r], top[r], &flags[r], F, chain[r]);
    }
}

/*
 * kind::mxf4 / mxf4nvf4 (group_sum G): per group g of the block, the exact float32 sum of its G
 * products, its alignment exponent A_g = E(S_a) + E(S_b) and S_a S_b (double); M = max(A_g, e_c)
 * (c = 0 counting as -126); each group term sum * S_a S_b * 2^(F - M) and c 2^(F - M) cut by
 * truncation in double.
 */
BS_TARGET __attribute__((always_inline)) static inline void
rows_block_grouped(const bs_data *d, int64_t i, int rows, int64_t strip, int64_t index, float chain[][LANES],
                   __mmask16 flags[])
{
    const fl_mma_block_scaled *p = d->p;
    const int64_t k = p->k, F = p->frac_bits, G = p->group_sum, nb = p->scale_blocks, start = index * p->block;
    const int64_t count = start + p->block < k ? p->block : k - start, groups = (count + G - 1) / G;
    const float *b = d->b_packed + (strip * k + start) * LANES;
    __m512i top[ROW_GROUP], c_bits[ROW_GROUP];
    for (int r = 0; r < rows; r++) {
        __m512i field;
        c_bits[r] = _mm512_loadu_si512((const void *)chain[r]);
        const __mmask16 c_nonzero = _mm512_test_epi32_mask(c_bits[r], _mm512_set1_epi32(0x7FFFFFFF));
        top[r] = _mm512_mask_mov_epi32(_mm512_set1_epi32(-126), c_nonzero, c_exponent(c_bits[r], &field));
        flags[r] = special_lanes(d, i + r, strip, index, field);
    }
    for (int64_t g = 0; g < groups; g++) {
        const int64_t s = (start + g * G) / p->scale_block;
        const __m512i sb = _mm512_loadu_si512((const void *)(d->sb_exp_packed + (strip * nb + s) * LANES));
        for (int r = 0; r < rows; r++)
            top[r] = _mm512_max_epi32(top[r], _mm512_add_epi32(_mm512_set1_epi32(p->sa_exp[(i + r) * nb + s]), sb));
    }
    __m512d total[ROW_GROUP][2], unit[ROW_GROUP][2];
    for (int r = 0; r < rows; r++) {
        /* 2^(F - M) as doubles; F - M lies within double's exponents (M between -300 and 300) */
        const __m512i exponent = _mm512_sub_epi32(_mm512_set1_epi32((int)(1023 + F)), top[r]);
        for (int h = 0; h < 2; h++) {
            __m256i half = h ? _mm512_extracti64x4_epi64(exponent, 1) : _mm512_castsi512_si256(exponent);
            unit[r][h] = _mm512_castsi512_pd(_mm512_slli_epi64(_mm512_cvtepu32_epi64(half), 52));
            total[r][h] = _mm512_setzero_pd();
        }
    }
    for (int64_t g = 0; g < groups; g++) {
        const int64_t s = (start + g * G) / p->scale_block, q1 = (g + 1) * G < count ? (g + 1) * G : count;
        __m512 sum[ROW_GROUP];
        for (int r = 0; r < rows; r++)
            sum[r] = _mm512_setzero_ps();
        for (int64_t q = g * G; q < q1; q++) {
            const __m512 row = _mm512_loadu_ps(b + q * LANES);
            for (int r = 0; r < rows; r++)
                sum[r] = _mm512_fmadd_ps(_mm512_set1_ps(p->a_values[(i + r) * k + start + q]), row, sum[r]);
        }
        const double *sb = d->sb_value_packed + (strip * nb + s) * LANES;
        for (int r = 0; r < rows; r++) {
            const __m512d sa = _mm512_set1_pd(p->sa_value[(i + r) * nb + s]);
            for (int h = 0; h < 2; h++) {
                __m256 half = h ? _mm512_extractf32x8_ps(sum[r], 1) : _mm512_castps512_ps256(sum[r]);
                __m512d factor = _mm512_mul_pd(_mm512_mul_pd(sa, _mm512_loadu_pd(sb + 8 * h)), unit[r][h]);
                __m512d term = _mm512_mul_pd(_mm512_cvtps_pd(half), factor);
                total[r][h] = _mm512_add_pd(total[r][h], _mm512_roundscale_pd(term, _MM_FROUND_TO_ZERO |
                                                                                        _MM_FROUND_NO_EXC));
            }
        }
    }
    for (int r = 0; r < rows; r++) {
        __m512d cut[2];
        c_cut(c_bits[r], top[r], (__mmask16)~flags[r], F, cut);
        total[r][0] = _mm512_add_pd(total[r][0], cut[0]);
        total[r][1] = _mm512_add_pd(total[r][1], cut[1]);
        finish_block(total[r], top[r], &flags[r], F, chain[r]);
    }
}

BS_TARGET static void rows_block_4(const bs_data *d, int64_t i, int64_t strip, int64_t index, float chain[][LANES],
                                   uint16_t flags[])
{
    if (d->p->group_sum)
        rows_block_grouped(d, i, ROW_GROUP, strip, index, chain, flags);
    else
        rows_block_plain(d, i, ROW_GROUP, strip, index, chain, flags);
}

BS_TARGET static void rows_block_1(const bs_data *d, int64_t i, int64_t strip, int64_t index, float chain[][LANES],
                                   uint16_t flags[])
{
    if (d->p->group_sum)
        rows_block_grouped(d, i, 1, strip, index, chain, flags);
    else
        rows_block_plain(d, i, 1, strip, index, chain, flags);
}

#include "mma_block_scaled_avx2.h"

/* One block of ROW_GROUP rows (or one row) against one strip: rows_block_4 / rows_block_1 or
 * their AVX2 copies; flags[r] receives the lanes of row r left to the definition. */
typedef void rows_block_fn(const bs_data *d, int64_t i, int64_t strip, int64_t index, float chain[][LANES],
                           uint16_t flags[]);

/* Rows [i0, i1) x the LANES columns of one strip, all of K: the fast path (AVX-512 when
 * d->fast is 2, AVX2 when 1) with the flagged lanes redone by the definition. */
static void fast_tile(const bs_data *d, int64_t i0, int64_t i1, int64_t strip, const float *c, float *out,
                      int64_t *terms)
{
    rows_block_fn *const four = d->fast == 2 ? rows_block_4 : rows_block_4_avx2;
    rows_block_fn *const one = d->fast == 2 ? rows_block_1 : rows_block_1_avx2;
    const fl_mma_block_scaled *p = d->p;
    const int64_t n = p->n, j0 = strip * LANES;
    const int active = (int)(j0 + LANES <= n ? LANES : n - j0);
    float chain[TILE_ROWS][LANES], before[TILE_ROWS][LANES];
    for (int64_t i = i0; i < i1; i++)
        for (int w = 0; w < LANES; w++)
            chain[i - i0][w] = c && w < active ? c[i * n + j0 + w] : 0.0f;
    for (int64_t index = 0; index < d->blocks; index++) {
        uint16_t flags[TILE_ROWS];
        memcpy(before, chain, sizeof chain);
        int64_t i = i0;
        for (; i + ROW_GROUP <= i1; i += ROW_GROUP)
            four(d, i, strip, index, chain + (i - i0), flags + (i - i0));
        for (; i < i1; i++)
            one(d, i, strip, index, chain + (i - i0), flags + (i - i0));
        for (i = i0; i < i1; i++) {
            unsigned flag = (unsigned)flags[i - i0] & ((1u << active) - 1u); /* padding lanes never matter */
            for (int w = 0; flag; w++, flag >>= 1)
                if (flag & 1)
                    chain[i - i0][w] = block_step(d, i, j0 + w, index, before[i - i0][w], terms, terms + p->block);
        }
    }
    for (int64_t i = i0; i < i1; i++)
        for (int w = 0; w < active; w++)
            out[i * n + j0 + w] = chain[i - i0][w];
}
#endif

int fl_mma_block_scaled_f32(const fl_mma_block_scaled *p, const float *c, float *d)
{
    if (p->m < 0 || p->n < 0 || p->k < 0 || p->block < 1 || p->scale_block < 1 || p->group_sum < 0 ||
        p->frac_bits < 0 || p->frac_bits > 40 || (p->group_sum && p->block % p->group_sum) ||
        p->element_man_bits < 0 || p->element_man_bits > 10 || p->element_emin > p->element_emax ||
        p->element_emin < -64 || p->element_emax > 64 ||
        p->scale_blocks != (p->k + p->scale_block - 1) / p->scale_block)
        return FL_ERROR_MMA_MODEL;
    const int64_t m = p->m, n = p->n;
    double work = (double)m * (double)n * (double)(p->k > 0 ? p->k : 1);
    int threads = work >= BS_PARALLEL_THRESHOLD ? fl_max_threads() : 1;
    bs_data data;
    int status = prepare(p, &data, fl_mma_simd_level(), threads);
    if (status) {
        free_data(&data);
        return status;
    }
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        fl_floating_point_state state;
        fl_enter_default_floating_point(&state);
        int64_t *terms = malloc((size_t)p->block * 2 * sizeof(int64_t));
        if (!terms) {
#pragma omp atomic write
            status = FL_ERROR_OUT_OF_MEMORY;
        }
#ifdef BS_AVX512
        if (data.fast) {
            const int64_t tiles_m = (m + TILE_ROWS - 1) / TILE_ROWS;
#pragma omp for schedule(dynamic, 1)
            for (int64_t tile = 0; tile < tiles_m * data.strips; tile++) {
                int64_t i0 = (tile / data.strips) * TILE_ROWS, strip = tile % data.strips;
                if (terms)
                    fast_tile(&data, i0, i0 + TILE_ROWS < m ? i0 + TILE_ROWS : m, strip, c, d, terms);
            }
        } else
#endif
        {
#pragma omp for schedule(static)
            for (int64_t i = 0; i < m; i++)
                for (int64_t j = 0; j < n && terms; j++) {
                    float value = c ? c[i * n + j] : 0.0f;
                    for (int64_t index = 0; index < data.blocks; index++)
                        value = block_step(&data, i, j, index, value, terms, terms + p->block);
                    d[i * n + j] = value;
                }
        }
        free(terms);
        fl_leave_default_floating_point(&state);
    }
    free_data(&data);
    return status;
}
