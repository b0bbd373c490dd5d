/*
 * mma.c - bit-accurate models of NVIDIA tensor-core matrix multiply-accumulate.
 *
 * The model (docs/tensor-cores.md) computes each output element as a chain over K
 * of "blocks".  One block of n products and an addend c:
 *
 *   1. every input is s * 2^e with e >= e_min of its format (subnormals keep e_min);
 *   2. each product a_k b_k is exact and keeps the exponent e_a + e_b, unnormalised;
 *   3. M = the largest exponent of the nonzero terms (products, and c when fused),
 *      raised to the exponent floor when there is one;
 *   4. every term is cut toward zero to a multiple of 2^(M - F);
 *   5. the cut terms are summed exactly and the sum is rounded once to the output
 *      format (toward zero or to nearest-even), then optionally cut toward zero to
 *      acc_frac_bits fraction bits (the 13-bit accumulator of the FP8 paths).
 *
 * The block's result is the c of the next block.  With c_addition = SEPARATE the
 * block sums the products alone and c is added afterwards, rounding to nearest-even.
 * With promote_every = P the chain restarts from c = 0 every P elements of K and its
 * result is added to a float32 accumulator (rounding to nearest-even) that started at C.
 *
 * Why the fast path is exact in double arithmetic: inputs are float32 values, so
 * a product has at most 48 significant bits and is exact in a double.  Each term is
 * below 4 * 2^M, so term * 2^(F - M) is below 2^(F + 2); truncating it is one
 * conversion to an integer, and with (n + 1) * 2^(F + 2) <= 2^53 the sum of the cut
 * terms is exact in a double whatever the order of the additions.  That makes the
 * result independent of vectorisation and of the thread count.  Everything else
 * (F = -1 meaning "exact", sums too wide for a double, Inf and NaN, a zero result whose
 * sign must be decided) goes through block_general, which adds the cut terms into a
 * wide fixed-point accumulator (superacc) and rounds that once.
 */
#include "fmtlab.h"

#include <fenv.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
/* AVX2 and AVX-512 copies of the product loops, chosen at run time (prepared_model.simd). */
#define FL_MMA_WIDE_SIMD 1
#endif

/* Exponent given to zero (and non-finite) inputs: the sum of two stays far below any real
 * product exponent (>= -300) and still fits in int16_t, so it never wins the maximum. */
#define ZERO_EXPONENT (-16000)
/* A block whose largest exponent is below this has no nonzero term. */
#define NO_TERM_EXPONENT (-2000)
/* Below this many multiply-adds a parallel region costs more than it saves. */
#define PARALLEL_THRESHOLD 65536

/* ---- small exact helpers --------------------------------------------------- */

typedef union {
    double value;
    uint64_t bits;
} double_bits;

/* 2^e for -1022 <= e <= 1023, built from its bits (exact and much cheaper than ldexp). */
static inline double pow2(int e)
{
    double_bits u;
    u.bits = (uint64_t)(e + 1023) << 52;
    return u.value;
}

/* floor(log2|x|) of a nonzero normal double. */
static inline int exponent_of(double x)
{
    double_bits u;
    u.value = x;
    return (int)((u.bits >> 52) & 0x7FF) - 1023;
}

/* floor(log2|x|) of a nonzero float32 (float32 subnormals included). */
static inline int exponent_of_float(float x)
{
    int e;
    frexp((double)x, &e);
    return e - 1;
}

/* The canonical NaN of a format, widened to double: positive, exponent and fraction all ones
 * (float32 0x7FFFFFFF for fp32, the widening of 0x7FFF for fp16). */
static double canonical_nan(const fl_mma_format *format)
{
    union {
        float value;
        uint32_t bits;
    } u;
    u.bits = 0x7F800000u | (((1u << format->man_bits) - 1u) << (23 - format->man_bits));
    if (format->man_bits == 0)
        u.bits = 0x7FC00000u;
    return (double)u.value;
}

/* Largest finite value: (2 - 2^-m) * 2^emax. */
static double format_max(const fl_mma_format *format)
{
    return (2.0 - pow2(-format->man_bits)) * pow2(format->emax);
}

/*
 * Round a finite double x to `format`, toward zero or to nearest-even, with subnormals
 * and with overflow to +-Inf (also toward zero: docs/tensor-cores.md §1.6).  A zero
 * result keeps the sign of x.
 */
static double round_to_format(double x, const fl_mma_format *format, double max, int nearest_even)
{
    if (x == 0.0)
        return x;
    int e = exponent_of(x);
    if (e < format->emin)
        e = format->emin;
    int quantum_exponent = e - format->man_bits;
    /* |scaled| < 2^(man_bits + 1): an exact power-of-two scaling, and it fits an int64_t. */
    double scaled = x * pow2(-quantum_exponent);
    double kept = (double)(int64_t)scaled;
    if (nearest_even) {
        double rest = fabs(scaled - kept);
        if (rest > 0.5 || (rest == 0.5 && ((int64_t)kept & 1)))
            kept += scaled > 0 ? 1.0 : -1.0;
    }
    double result = kept * pow2(quantum_exponent);
    if (fabs(result) > max)
        return copysign(INFINITY, x);
    return result == 0.0 ? copysign(0.0, x) : result;
}

/* ---- the prepared model ---------------------------------------------------- */

typedef struct prepared_model {
    fl_mma_model model;
    double out_max;
    fl_mma_format acc;       /* the out format with acc_frac_bits fraction bits */
    double acc_max;
    fl_mma_format fp32;      /* the promotion accumulator */
    double fp32_max;
    double out_nan;
    int nearest_even;
    int64_t block;           /* products per block, K (or the promotion interval) for block 0 */
    int64_t chunk;           /* elements of K per promotion interval (K without promotion) */
    int fast;                /* 1: the double-arithmetic fast path is exact for this model */
    int fast_int32;          /* 1: every cut term fits an int32 (F <= 28) */
    int64_t int32_run;       /* this many cut products still sum exactly in int32 */
    int fma_equivalent;      /* 1: a block of one product is one float32 fused multiply-add */
    int float_products;      /* 1: every product and its scaled cut are exact in float32 */
    int out_is_float32;      /* 1: the output format is float32 itself */
    int simd;                /* SIMD_SSE2, SIMD_AVX2 or SIMD_AVX512: which product loops run */
    int late_fast;           /* 1: c_addition LATE without grouping, float32 nearest-even (AMD CDNA3 fp16, bf16) */
    int late_grouped_fast;   /* 1: the same with odd/even grouping (AMD CDNA3 FP8: e4m3fnuz, e5m2fnuz) */
    int exact_fast;          /* 1: an exact block sum rounded once to float32 nearest-even (AMD CDNA1):
                              * summed in double, redone by the definition where an addition was inexact */
} prepared_model;

enum { SIMD_SSE2 = 0, SIMD_AVX2 = 1, SIMD_AVX512 = 2 };

/* The widest product loops this CPU runs; FMTLAB_MMA_SIMD=sse2|avx2 asks for a narrower one
 * (the tests use it to check that every copy gives the same bits), and so does the codec's
 * switch FMTLAB_SIMD=portable|avx2 (portable: the SSE2 kernels, x86-64's baseline). */
static int simd_level(void)
{
    int level = SIMD_SSE2;
#ifdef FL_MMA_WIDE_SIMD
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2"))
        level = SIMD_AVX2;
    /* the AVX-512 kernels (here and in mma_block_scaled.c) use the BW, DQ and VL subsets too:
     * a CPU with AVX-512F alone (Xeon Phi) runs the AVX2 ones */
    if (level == SIMD_AVX2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        level = SIMD_AVX512;
    const char *asked = getenv("FMTLAB_MMA_SIMD"), *codec_asked = getenv("FMTLAB_SIMD");
    if ((asked && strcmp(asked, "sse2") == 0) || (codec_asked && strcmp(codec_asked, "portable") == 0))
        level = SIMD_SSE2;
    else if (((asked && strcmp(asked, "avx2") == 0) || (codec_asked && strcmp(codec_asked, "avx2") == 0)) &&
             level > SIMD_AVX2)
        level = SIMD_AVX2;
#endif
    return level;
}

int fl_mma_simd_level(void)
{
    return simd_level();
}

static int valid_format(const fl_mma_format *format)
{
    return format->man_bits >= 0 && format->man_bits <= 23 && format->emin <= format->emax &&
           format->min_exponent >= -149 && format->min_exponent <= format->emin && format->emax <= 127;
}

static int prepare_model(const fl_mma_model *model, int64_t k, prepared_model *p)
{
    if (!valid_format(&model->out) || !valid_format(&model->a) || !valid_format(&model->b) ||
        model->block < 0 || model->frac_bits < -1 ||
        model->frac_bits > 200 || model->promote_every < 0 ||
        (model->out_rounding != FL_ROUND_TOWARD_ZERO && model->out_rounding != FL_ROUND_NEAREST_EVEN) ||
        model->acc_frac_bits < -1 || model->acc_frac_bits > 23 ||
        (model->use_exp_floor && (model->exp_floor < -400 || model->exp_floor > 400)) ||
        (model->c_addition != FL_MMA_C_FUSED && model->c_addition != FL_MMA_C_SEPARATE &&
         model->c_addition != FL_MMA_C_LATE) ||
        (model->summation != FL_MMA_SUM_BLOCK_FMA && model->summation != FL_MMA_SUM_PAIRWISE) ||
        (model->grouping != FL_MMA_GROUP_NONE && model->grouping != FL_MMA_GROUP_ODD_EVEN) ||
        (model->flush_outputs != 0 && model->flush_outputs != 1) ||
        (model->positive_zero != 0 && model->positive_zero != 1) ||
        model->c_emin < -149)
        return FL_ERROR_MMA_MODEL;
    /* The late addition keeps the product sum exact in a double: (block) terms below 2^(F + 2). */
    if ((model->c_addition == FL_MMA_C_LATE &&
         (model->frac_bits < 0 || model->frac_bits > 30 || model->block <= 0 || model->block > (1 << 20) ||
          model->promote_every != 0 || model->acc_frac_bits >= 0)) ||
        (model->grouping != FL_MMA_GROUP_NONE && model->c_addition != FL_MMA_C_LATE) ||
        (model->flush_outputs && model->summation != FL_MMA_SUM_PAIRWISE))
        return FL_ERROR_MMA_MODEL;
    if (model->promote_every > 0 && model->block > 0 && model->promote_every % model->block != 0)
        return FL_ERROR_MMA_MODEL;
    memset(p, 0, sizeof *p);
    p->model = *model;
    p->out_max = format_max(&model->out);
    p->acc = model->out;
    if (model->acc_frac_bits >= 0 && model->acc_frac_bits < model->out.man_bits)
        p->acc.man_bits = model->acc_frac_bits;
    p->acc_max = format_max(&p->acc);
    p->fp32.man_bits = 23;
    p->fp32.emin = -126;
    p->fp32.emax = 127;
    p->fp32_max = format_max(&p->fp32);
    p->out_nan = canonical_nan(&model->out);
    p->nearest_even = model->out_rounding == FL_ROUND_NEAREST_EVEN;
    p->chunk = model->promote_every > 0 ? model->promote_every : (k > 0 ? k : 1);
    p->block = model->block > 0 ? model->block : p->chunk;
    if (p->block > p->chunk)
        p->block = p->chunk;
    /* (block + 1) terms below 2^(F + 2) each: exact in a double while the total is <= 2^53. */
    if (model->frac_bits >= 0 && model->frac_bits <= 48) {
        double bound = (double)(p->block + 1) * pow2(model->frac_bits + 2);
        /* The late addition and the +0 rule are done by the definition only (chain_step_general). */
        p->fast = bound <= pow2(53) && model->c_addition != FL_MMA_C_LATE && !model->positive_zero;
        /* Each cut product is at most 2^(F+2) - 1 in magnitude: runs of int32_run of them sum in
         * int32, and the runs are added in double (exact, the total being below 2^53). */
        p->fast_int32 = model->frac_bits <= 28;
        if (p->fast_int32)
            p->int32_run = (int64_t)(2147483647.0 / (pow2(model->frac_bits + 2) - 1.0));
    }
    /* Products of two such values have at most 24 bits and stay within float32's normal range, so
     * a[k] * b[k] * 2^(F - M) is exact in float32 (the scale itself is checked per block). */
    p->float_products = p->fast_int32 && model->a.man_bits + model->b.man_bits + 2 <= 24 &&
                        model->a.min_exponent + model->b.min_exponent >= -126 &&
                        model->a.emax + model->b.emax + 2 <= 127;
    p->simd = simd_level();
    p->out_is_float32 = model->out.man_bits == 23 && model->out.emin == -126 && model->out.emax == 127;
    p->late_fast = model->c_addition == FL_MMA_C_LATE && model->grouping == FL_MMA_GROUP_NONE &&
                   p->out_is_float32 && p->nearest_even && model->frac_bits >= 0 && model->frac_bits <= 30 &&
                   p->block <= 64;
    /* Odd/even grouping: the same kernel with two group sums; each is 32 products at most. */
    p->late_grouped_fast = model->c_addition == FL_MMA_C_LATE && model->grouping == FL_MMA_GROUP_ODD_EVEN &&
                           p->out_is_float32 && p->nearest_even && model->frac_bits >= 0 &&
                           model->frac_bits <= 30 && p->block <= 64;
    p->exact_fast = model->frac_bits < 0 && p->out_is_float32 && p->nearest_even && p->acc.man_bits == 23 &&
                    model->c_addition == FL_MMA_C_FUSED && !model->positive_zero && !model->use_exp_floor &&
                    model->summation == FL_MMA_SUM_BLOCK_FMA;
    p->fma_equivalent = model->frac_bits < 0 && model->out.man_bits == 23 && model->out.emin == -126 &&
                        model->out.emax == 127 && p->nearest_even && p->acc.man_bits == 23 &&
                        model->c_addition == FL_MMA_C_FUSED;
    return 0;
}

/* ---- the wide accumulator of the general path -------------------------------- */
/*
 * Exact sum of doubles that are multiples of 2^SUPERACC_BASE: terms are products of two
 * float32 values (multiples of 2^-298, below 2^258), float32 values, and those cut to a
 * multiple of 2^(M - F) >= 2^-500... but a cut term is a multiple of the coarser of its
 * own last bit and 2^(M-F), so its last bit is still >= 2^-298.  32-bit chunks are added
 * into int64_t limbs without carrying; carries are resolved only when rounding.
 */
#define SUPERACC_LIMBS 24
#define SUPERACC_BASE (-352) /* exponent of bit 0 of limb 0; the top is 2^416 */
#define SUPERACC_MAX_ADDS (1 << 29)

typedef struct superacc {
    int64_t limb[SUPERACC_LIMBS];
    int64_t adds;
} superacc;

static void superacc_clear(superacc *s)
{
    memset(s, 0, sizeof *s);
}

/* Carry so that limbs 0..L-2 lie in [0, 2^32) and the top limb carries the sign. */
static void superacc_carry(superacc *s)
{
    for (int i = 0; i < SUPERACC_LIMBS - 1; i++) {
        int64_t v = s->limb[i];
        /* floor(v / 2^32), written without shifting a negative number */
        int64_t carry = v >= 0 ? v / 4294967296LL : -((-v + 4294967295LL) / 4294967296LL);
        s->limb[i] = v - carry * 4294967296LL;
        s->limb[i + 1] += carry;
    }
    s->adds = 0;
}

static void superacc_add(superacc *s, double x)
{
    if (x == 0.0)
        return;
    double_bits u;
    u.value = x;
    uint64_t mantissa = (u.bits & 0xFFFFFFFFFFFFFull) | 0x10000000000000ull;
    int position = (int)((u.bits >> 52) & 0x7FF) - 1075 - SUPERACC_BASE;
    int index = position >> 5, offset = position & 31;
    uint64_t low = (mantissa & 0xFFFFFFFFull) << offset; /* < 2^63 */
    uint64_t high = (mantissa >> 32) << offset;          /* < 2^52 */
    int64_t parts[3];
    parts[0] = (int64_t)(low & 0xFFFFFFFFull);
    parts[1] = (int64_t)(low >> 32) + (int64_t)(high & 0xFFFFFFFFull);
    parts[2] = (int64_t)(high >> 32);
    if (x < 0) {
        parts[0] = -parts[0];
        parts[1] = -parts[1];
        parts[2] = -parts[2];
    }
    s->limb[index] += parts[0];
    s->limb[index + 1] += parts[1];
    s->limb[index + 2] += parts[2];
    if (++s->adds >= SUPERACC_MAX_ADDS)
        superacc_carry(s);
}

static int superacc_bit(const superacc *s, int bit)
{
    return (int)((s->limb[bit >> 5] >> (bit & 31)) & 1);
}

/* Whether any bit below `bit` is set. */
static int superacc_any_below(const superacc *s, int bit)
{
    int index = bit >> 5;
    for (int i = 0; i < index; i++)
        if (s->limb[i])
            return 1;
    return (s->limb[index] & ((1LL << (bit & 31)) - 1)) != 0;
}

/*
 * Round the exact sum once to `format`.  Sets *is_zero when the sum is exactly zero
 * (the caller decides the sign of that zero).
 */
static double superacc_round(superacc *s, const fl_mma_format *format, double max, int nearest_even,
                             int *is_zero)
{
    superacc_carry(s);
    int negative = s->limb[SUPERACC_LIMBS - 1] < 0;
    if (negative) {
        for (int i = 0; i < SUPERACC_LIMBS; i++)
            s->limb[i] = -s->limb[i];
        superacc_carry(s);
    }
    int top = SUPERACC_LIMBS - 1;
    while (top >= 0 && s->limb[top] == 0)
        top--;
    *is_zero = top < 0;
    if (top < 0)
        return 0.0;
    int msb = 31;
    while (!((s->limb[top] >> msb) & 1))
        msb--;
    int leading = 32 * top + msb; /* bit index of the leading one */
    int e = leading + SUPERACC_BASE;
    if (e < format->emin)
        e = format->emin;
    int quantum_exponent = e - format->man_bits;
    int quantum_bit = quantum_exponent - SUPERACC_BASE; /* >= -149 - (-352) > 0 */
    int64_t kept = 0;
    for (int bit = leading; bit >= quantum_bit; bit--)
        kept = (kept << 1) | superacc_bit(s, bit);
    if (nearest_even && superacc_bit(s, quantum_bit - 1) &&
        ((kept & 1) || superacc_any_below(s, quantum_bit - 1)))
        kept++;
    double result = (double)kept * pow2(quantum_exponent);
    if (result > max)
        result = INFINITY;
    return negative ? -result : result;
}

/* ---- one block, by the definition --------------------------------------------- */

/* Cut x toward zero to a multiple of 2^(M - F); scale = 2^(F - M), unscale = 2^(M - F). */
static inline double cut_toward_zero(double x, double scale, double unscale)
{
    double scaled = x * scale;
    /* every double of magnitude >= 2^52 is an integer already */
    if (fabs(scaled) < 4503599627370496.0)
        scaled = (double)(int64_t)scaled;
    return scaled * unscale;
}

/* Exponent of a nonzero value for alignment: floor(log2|x|), at least the format's emin. */
static inline int alignment_exponent(double x, int emin)
{
    int e = exponent_of(x);
    return e < emin ? emin : e;
}

/*
 * One block by the definition, for any parameters and any values: a[q] * b[q * b_stride]
 * for q < n, plus c when include_c.  ae / be are the alignment exponents of a and b
 * (be with the same stride as b).  This is the reference the fast path must equal.
 */
static double block_general(const float *a, const float *b, int64_t b_stride, const int16_t *ae,
                            const int16_t *be, int64_t n, double c, int c_emin, int include_c,
                            const prepared_model *p, superacc *acc)
{
    const fl_mma_model *model = &p->model;
    if (p->fma_equivalent && n == 1 && include_c) {
        /* One product plus c, rounded once to float32 nearest-even: exactly fmaf. */
        double result = (double)fmaf(a[0], b[0], (float)c);
        return isnan(result) ? p->out_nan : result;
    }
    /* Special values (§1.7): any NaN or Inf * 0 gives NaN, Inf - Inf gives NaN. */
    int any_nan = include_c && isnan(c);
    int positive_inf = include_c && c == INFINITY;
    int negative_inf = include_c && c == -INFINITY;
    int all_negative_zero = !include_c || (c == 0.0 && signbit(c));
    int largest = ZERO_EXPONENT;
    for (int64_t q = 0; q < n; q++) {
        double x = a[q], y = b[q * b_stride];
        if (isnan(x) || isnan(y)) {
            any_nan = 1;
        } else if (isinf(x) || isinf(y)) {
            if (x == 0.0 || y == 0.0)
                any_nan = 1;
            else if ((signbit(x) != 0) != (signbit(y) != 0))
                negative_inf = 1;
            else
                positive_inf = 1;
        } else if (x == 0.0 || y == 0.0) {
            if ((signbit(x) != 0) == (signbit(y) != 0))
                all_negative_zero = 0;
        } else {
            all_negative_zero = 0;
            int e = ae[q] + be[q * b_stride];
            if (e > largest)
                largest = e;
        }
    }
    if (any_nan || (positive_inf && negative_inf))
        return p->out_nan;
    if (positive_inf || negative_inf)
        return positive_inf ? INFINITY : -INFINITY;
    if (include_c && c != 0.0) {
        int e = alignment_exponent(c, c_emin);
        if (e > largest)
            largest = e;
    }
    if (largest <= NO_TERM_EXPONENT) /* every term is zero: -0 only when all are -0 */
        return all_negative_zero ? -0.0 : 0.0;
    if (model->use_exp_floor && largest < model->exp_floor)
        largest = model->exp_floor;
    double scale = 1.0, unscale = 1.0;
    int cut = model->frac_bits >= 0;
    if (cut) {
        scale = pow2(model->frac_bits - largest);
        unscale = pow2(largest - model->frac_bits);
    }
    superacc_clear(acc);
    for (int64_t q = 0; q < n; q++) {
        double product = (double)a[q] * b[q * b_stride]; /* exact: at most 48 significant bits */
        if (product != 0.0)
            superacc_add(acc, cut ? cut_toward_zero(product, scale, unscale) : product);
    }
    if (include_c && c != 0.0)
        superacc_add(acc, cut ? cut_toward_zero(c, scale, unscale) : c);
    int is_zero;
    double sum = superacc_round(acc, &model->out, p->out_max, p->nearest_even, &is_zero);
    if (is_zero) /* an exact zero from nonzero terms is +0, as in IEEE 754 */
        return 0.0;
    if (p->acc.man_bits < model->out.man_bits && isfinite(sum))
        sum = round_to_format(sum, &p->acc, p->acc_max, 0);
    return sum;
}

/*
 * x + y for two values of `format`, rounded once to nearest-even: the separate adder of
 * c_addition = SEPARATE and the float32 promotion add.  Two-sum gives the exact sum as
 * hi + lo; only when hi is exactly halfway between two values of the format can lo
 * change the rounding, and then lo's sign decides.
 */
static double add_nearest_even(double x, double y, const fl_mma_format *format, double max, double nan)
{
    if (isnan(x) || isnan(y) || (isinf(x) && isinf(y) && x != y))
        return nan;
    if (isinf(x) || isinf(y))
        return isinf(x) ? x : y;
    double hi = x + y;
    double back = hi - x;
    double lo = (x - (hi - back)) + (y - back);
    if (hi == 0.0 || lo == 0.0)
        return round_to_format(hi, format, max, 1);
    int e = exponent_of(hi);
    if (e < format->emin)
        e = format->emin;
    int quantum_exponent = e - format->man_bits;
    double scaled = hi * pow2(-quantum_exponent);
    double kept = (double)(int64_t)scaled;
    if (fabs(scaled - kept) != 0.5)
        return round_to_format(hi, format, max, 1);
    /* A tie in hi: the true sum is beyond it when lo has hi's sign, short of it otherwise. */
    if ((lo > 0) == (hi > 0))
        kept += hi > 0 ? 1.0 : -1.0;
    double result = kept * pow2(quantum_exponent);
    if (fabs(result) > max)
        return copysign(INFINITY, hi);
    return result == 0.0 ? copysign(0.0, hi) : result;
}

/*
 * One block of c_addition = LATE (AMD CDNA3; docs/tensor-cores.md §1, "late"), by the definition:
 *   1. special values as everywhere (NaN, Inf * 0, Inf - Inf: NaN; else an Inf wins); then a
 *      product of magnitude >= 2^128 counts as an Inf of its sign (both signs: NaN);
 *   2. the products of a group are cut toward zero to F fraction bits below the group's largest
 *      exponent T and summed exactly.  One group, or (FL_MMA_GROUP_ODD_EVEN) the even- and the
 *      odd-indexed products apart, whose sums are then each rounded down (floor) to F fraction
 *      bits below T = the larger of the two T and added;
 *   3. J = max(T, e_c), e_c being c's exponent (at least c_emin; c = 0 counts as c_emin);
 *   4. the product sum is rounded down to a multiple of 2^(J - 31) and c to one of 2^(J - 24)
 *      (odd-even grouping: a c below 2^(J - 25) is dropped instead), the two are added exactly
 *      and the sum is rounded once to the output format.
 * Every quantity is exact in a double: F <= 30 and block <= 2^20 (prepare_model) keep the
 * product sum below 2^53 units of its last place, and the scalings are powers of two.
 */
static double block_late(const float *a, const float *b, int64_t b_stride, const int16_t *ae, const int16_t *be,
                         int64_t n, double c, int c_emin, const prepared_model *p)
{
    const fl_mma_model *model = &p->model;
    int any_nan = isnan(c), positive_inf = c == INFINITY, negative_inf = c == -INFINITY;
    int all_negative_zero = c == 0.0 && signbit(c);
    for (int64_t q = 0; q < n; q++) {
        double x = a[q], y = b[q * b_stride];
        if (isnan(x) || isnan(y))
            any_nan = 1;
        else if (isinf(x) || isinf(y)) {
            if (x == 0.0 || y == 0.0)
                any_nan = 1;
            else if ((signbit(x) != 0) != (signbit(y) != 0))
                negative_inf = 1;
            else
                positive_inf = 1;
        } else if (x * y != 0.0 || (signbit(x) != 0) == (signbit(y) != 0))
            all_negative_zero = 0;
    }
    if (any_nan || (positive_inf && negative_inf))
        return p->out_nan;
    if (positive_inf || negative_inf)
        return positive_inf ? INFINITY : -INFINITY;
    const double overflow = pow2(128);
    int over_positive = 0, over_negative = 0;
    for (int64_t q = 0; q < n; q++) {
        double product = (double)a[q] * b[q * b_stride]; /* exact */
        over_positive |= product >= overflow;
        over_negative |= product <= -overflow;
    }
    if (over_positive && over_negative)
        return p->out_nan;
    if (over_positive || over_negative)
        return over_positive ? INFINITY : -INFINITY;
    const int frac_bits = model->frac_bits, groups = model->grouping == FL_MMA_GROUP_ODD_EVEN ? 2 : 1;
    int group_top[2] = {ZERO_EXPONENT, ZERO_EXPONENT};
    double group_sum[2] = {0.0, 0.0};
    for (int64_t q = 0; q < n; q++) {
        double product = (double)a[q] * b[q * b_stride];
        int e = ae[q] + be[q * b_stride];
        if (product != 0.0 && e > group_top[q % groups])
            group_top[q % groups] = e;
    }
    for (int64_t q = 0; q < n; q++) {
        double product = (double)a[q] * b[q * b_stride];
        int g = (int)(q % groups);
        if (product != 0.0)
            group_sum[g] += cut_toward_zero(product, pow2(frac_bits - group_top[g]), pow2(group_top[g] - frac_bits));
    }
    int top = group_top[0] > group_top[1] ? group_top[0] : group_top[1];
    double sum = group_sum[0];
    if (groups == 2 && top > NO_TERM_EXPONENT) {
        sum = 0.0;
        for (int g = 0; g < 2; g++)
            sum += floor(group_sum[g] * pow2(frac_bits - top)) * pow2(top - frac_bits);
    }
    int c_exponent = c != 0.0 ? alignment_exponent(c, c_emin) : c_emin;
    int joint = top > c_exponent ? top : c_exponent;
    double products = floor(sum * pow2(31 - joint)) * pow2(joint - 31);
    double addend = 0.0;
    if (c != 0.0 && !(groups == 2 && c_exponent < joint - 25))
        addend = floor(c * pow2(24 - joint)) * pow2(joint - 24);
    double total = products + addend;
    if (total == 0.0)
        return all_negative_zero ? -0.0 : 0.0;
    return round_to_format(total, &model->out, p->out_max, p->nearest_even);
}

/* One chain step by the definition: block [k0, k0 + n) of output (i, j) from the running c. */
static double chain_step_general(const float *a, const float *b, int64_t b_stride, const int16_t *ae,
                                 const int16_t *be, int64_t n, double c, int c_emin,
                                 const prepared_model *p, superacc *acc)
{
    double result;
    if (p->model.c_addition == FL_MMA_C_LATE)
        result = block_late(a, b, b_stride, ae, be, n, c, c_emin, p);
    else if (p->model.c_addition == FL_MMA_C_FUSED)
        result = block_general(a, b, b_stride, ae, be, n, c, c_emin, 1, p, acc);
    else
        result = add_nearest_even(c, block_general(a, b, b_stride, ae, be, n, 0.0, c_emin, 0, p, acc),
                                  &p->model.out, p->out_max, p->out_nan);
    /* MMA-Sim's rule for the sign of an exact zero: always +0 (positive_zero) */
    return p->model.positive_zero && result == 0.0 ? 0.0 : result;
}

/* ---- the fast path: a strip of LANES outputs, one block at a time --------------- */
/*
 * The fast path works on LANES neighbouring outputs of one row of D at once, lane w being
 * column j0 + w.  B is kept in its own k x n layout (padded to whole strips), so for each
 * k the LANES values B[k, j0 .. j0 + LANES) are contiguous and every operation is the same
 * for all lanes: the compiler turns the lane loops into SIMD instructions.
 *
 * Why it is exact: a product has at most 48 significant bits and lies below 4 * 2^M, so
 * a * b * 2^(F - M) is exact (a power-of-two scaling) and below 2^(F + 2); converting it to
 * an integer is the cut toward zero.  With F <= 28 (p->fast_int32) runs of them sum exactly
 * in int32 and the runs and the cut c are added in double, exact while (n + 1) * 2^(F + 2)
 * <= 2^53 (p->fast).  For fp16 and FP8 inputs (p->float_products) the products are exact in
 * float32 too, which doubles the SIMD width.
 */
#define LANES 16 /* the SSE2 kernels below are written for exactly 16 */
#define TILE_ROWS 16

/*
 * The three kernels below are written twice: with SSE2 intrinsics (every x86-64 compiler
 * has them), because compilers fully unroll the 16-lane loops and then fail to re-vectorise
 * them; and as plain C, which is the definition and the fallback elsewhere.  Both compute
 * exactly the same integers: the products and scalings are exact, so no order matters.
 */

/* Largest product exponent of each lane over the block. */
static inline void strip_largest(const int16_t *restrict ae, const int16_t *restrict be, int64_t ldb,
                                 int64_t count, int16_t largest[LANES])
{
#ifdef __SSE2__
    __m128i low = _mm_set1_epi16((int16_t)(2 * ZERO_EXPONENT)), high = low;
    for (int64_t q = 0; q < count; q++) {
        __m128i e = _mm_set1_epi16(ae[q]);
        const __m128i *row = (const __m128i *)(be + q * ldb);
        low = _mm_max_epi16(low, _mm_add_epi16(e, _mm_loadu_si128(row)));
        high = _mm_max_epi16(high, _mm_add_epi16(e, _mm_loadu_si128(row + 1)));
    }
    _mm_storeu_si128((__m128i *)largest, low);
    _mm_storeu_si128((__m128i *)(largest + 8), high);
#else
    for (int w = 0; w < LANES; w++)
        largest[w] = (int16_t)(2 * ZERO_EXPONENT);
    for (int64_t q = 0; q < count; q++) {
        const int16_t *row = be + q * ldb;
        for (int w = 0; w < LANES; w++) {
            int16_t sum = (int16_t)(ae[q] + row[w]);
            largest[w] = sum > largest[w] ? sum : largest[w];
        }
    }
#endif
}

#ifdef __SSE2__
/* total[0..16) += the four int32 sums, as doubles (exact). */
static inline void add_int32_sums(double total[LANES], __m128i sum0, __m128i sum1, __m128i sum2, __m128i sum3)
{
    __m128i sums[4];
    sums[0] = sum0;
    sums[1] = sum1;
    sums[2] = sum2;
    sums[3] = sum3;
    for (int v = 0; v < 4; v++) {
        _mm_storeu_pd(total + 4 * v, _mm_add_pd(_mm_loadu_pd(total + 4 * v), _mm_cvtepi32_pd(sums[v])));
        _mm_storeu_pd(total + 4 * v + 2, _mm_add_pd(_mm_loadu_pd(total + 4 * v + 2),
                                                    _mm_cvtepi32_pd(_mm_shuffle_epi32(sums[v], 0x0E))));
    }
}
#endif

/* total[w] = sum over the block of trunc(a * b * scale[w]), in float32 (p->float_products);
 * `run` products at a time sum exactly in int32. */
static inline void strip_products_float(const float *restrict a, const float *restrict b, int64_t ldb,
                                        int64_t count, int64_t run, const float scale[LANES],
                                        double total[LANES])
{
    for (int w = 0; w < LANES; w++)
        total[w] = 0.0;
#ifdef __SSE2__
    __m128 scale0 = _mm_loadu_ps(scale), scale1 = _mm_loadu_ps(scale + 4);
    __m128 scale2 = _mm_loadu_ps(scale + 8), scale3 = _mm_loadu_ps(scale + 12);
    for (int64_t start = 0; start < count; start += run) {
        int64_t end = start + run < count ? start + run : count;
        __m128i sum0 = _mm_setzero_si128(), sum1 = sum0, sum2 = sum0, sum3 = sum0;
        for (int64_t q = start; q < end; q++) {
            __m128 x = _mm_set1_ps(a[q]);
            const float *row = b + q * ldb;
            sum0 = _mm_add_epi32(sum0, _mm_cvttps_epi32(_mm_mul_ps(_mm_mul_ps(x, _mm_loadu_ps(row)), scale0)));
            sum1 = _mm_add_epi32(sum1, _mm_cvttps_epi32(_mm_mul_ps(_mm_mul_ps(x, _mm_loadu_ps(row + 4)), scale1)));
            sum2 = _mm_add_epi32(sum2, _mm_cvttps_epi32(_mm_mul_ps(_mm_mul_ps(x, _mm_loadu_ps(row + 8)), scale2)));
            sum3 = _mm_add_epi32(sum3,
                                 _mm_cvttps_epi32(_mm_mul_ps(_mm_mul_ps(x, _mm_loadu_ps(row + 12)), scale3)));
        }
        add_int32_sums(total, sum0, sum1, sum2, sum3);
    }
#else
    (void)run;
    for (int64_t q = 0; q < count; q++)
        for (int w = 0; w < LANES; w++)
            total[w] += (double)(int32_t)(a[q] * b[q * ldb + w] * scale[w]);
#endif
}

#ifdef __SSE2__
/* trunc(x * row[0..4) * scale[0..4)) in double arithmetic, as four int32. */
static inline __m128i cut_four_double(__m128d x, __m128 row, __m128d scale_low, __m128d scale_high)
{
    __m128d low = _mm_mul_pd(_mm_mul_pd(x, _mm_cvtps_pd(row)), scale_low);
    __m128d high = _mm_mul_pd(_mm_mul_pd(x, _mm_cvtps_pd(_mm_movehl_ps(row, row))), scale_high);
    return _mm_unpacklo_epi64(_mm_cvttpd_epi32(low), _mm_cvttpd_epi32(high));
}
#endif

/* The same in double arithmetic (bf16 and tf32 products leave float32's range). */
static inline void strip_products_double(const float *restrict a, const float *restrict b, int64_t ldb,
                                         int64_t count, int64_t run, const double scale[LANES],
                                         double total[LANES])
{
    for (int w = 0; w < LANES; w++)
        total[w] = 0.0;
#ifdef __SSE2__
    __m128d s[8];
    for (int v = 0; v < 8; v++)
        s[v] = _mm_loadu_pd(scale + 2 * v);
    for (int64_t start = 0; start < count; start += run) {
        int64_t end = start + run < count ? start + run : count;
        __m128i sum0 = _mm_setzero_si128(), sum1 = sum0, sum2 = sum0, sum3 = sum0;
        for (int64_t q = start; q < end; q++) {
            __m128d x = _mm_set1_pd((double)a[q]);
            const float *row = b + q * ldb;
            sum0 = _mm_add_epi32(sum0, cut_four_double(x, _mm_loadu_ps(row), s[0], s[1]));
            sum1 = _mm_add_epi32(sum1, cut_four_double(x, _mm_loadu_ps(row + 4), s[2], s[3]));
            sum2 = _mm_add_epi32(sum2, cut_four_double(x, _mm_loadu_ps(row + 8), s[4], s[5]));
            sum3 = _mm_add_epi32(sum3, cut_four_double(x, _mm_loadu_ps(row + 12), s[6], s[7]));
        }
        add_int32_sums(total, sum0, sum1, sum2, sum3);
    }
#else
    (void)run;
    for (int64_t q = 0; q < count; q++)
        for (int w = 0; w < LANES; w++)
            total[w] += (double)(int32_t)((double)a[q] * b[q * ldb + w] * scale[w]);
#endif
}

#ifdef FL_MMA_WIDE_SIMD
/*
 * The same loops, eight or sixteen lanes to an instruction.  Each lane does exactly the
 * operations of the SSE2 and plain C loops (a float or double multiply by a[q], one by the
 * power-of-two scale, a truncating conversion, an int32 addition; the int32 run sums added in
 * double), so the bits are the same; only the width differs.
 */
__attribute__((target("avx2"))) static void strip_largest_avx2(const int16_t *restrict ae,
                                                               const int16_t *restrict be, int64_t ldb,
                                                               int64_t count, int16_t largest[LANES])
{
    __m256i top = _mm256_set1_epi16((int16_t)(2 * ZERO_EXPONENT));
    for (int64_t q = 0; q < count; q++)
        top = _mm256_max_epi16(top, _mm256_add_epi16(_mm256_set1_epi16(ae[q]),
                                                     _mm256_loadu_si256((const __m256i *)(be + q * ldb))));
    _mm256_storeu_si256((__m256i *)largest, top);
}

__attribute__((target("avx2"))) static void strip_products_float_avx2(const float *restrict a,
                                                                      const float *restrict b, int64_t ldb,
                                                                      int64_t count, int64_t run,
                                                                      const float scale[LANES], double total[LANES])
{
    const __m256 scale0 = _mm256_loadu_ps(scale), scale1 = _mm256_loadu_ps(scale + 8);
    __m256d t[4];
    for (int v = 0; v < 4; v++)
        t[v] = _mm256_setzero_pd();
    for (int64_t start = 0; start < count; start += run) {
        int64_t end = start + run < count ? start + run : count;
        __m256i sum0 = _mm256_setzero_si256(), sum1 = sum0;
        for (int64_t q = start; q < end; q++) {
            const __m256 x = _mm256_set1_ps(a[q]);
            const float *row = b + q * ldb;
            sum0 = _mm256_add_epi32(sum0, _mm256_cvttps_epi32(_mm256_mul_ps(_mm256_mul_ps(x, _mm256_loadu_ps(row)),
                                                                            scale0)));
            sum1 = _mm256_add_epi32(sum1, _mm256_cvttps_epi32(_mm256_mul_ps(
                                              _mm256_mul_ps(x, _mm256_loadu_ps(row + 8)), scale1)));
        }
        t[0] = _mm256_add_pd(t[0], _mm256_cvtepi32_pd(_mm256_castsi256_si128(sum0)));
        t[1] = _mm256_add_pd(t[1], _mm256_cvtepi32_pd(_mm256_extracti128_si256(sum0, 1)));
        t[2] = _mm256_add_pd(t[2], _mm256_cvtepi32_pd(_mm256_castsi256_si128(sum1)));
        t[3] = _mm256_add_pd(t[3], _mm256_cvtepi32_pd(_mm256_extracti128_si256(sum1, 1)));
    }
    for (int v = 0; v < 4; v++)
        _mm256_storeu_pd(total + 4 * v, t[v]);
}

__attribute__((target("avx2"))) static void strip_products_double_avx2(const float *restrict a,
                                                                       const float *restrict b, int64_t ldb,
                                                                       int64_t count, int64_t run,
                                                                       const double scale[LANES],
                                                                       double total[LANES])
{
    __m256d s[4], t[4];
    for (int v = 0; v < 4; v++) {
        s[v] = _mm256_loadu_pd(scale + 4 * v);
        t[v] = _mm256_setzero_pd();
    }
    for (int64_t start = 0; start < count; start += run) {
        int64_t end = start + run < count ? start + run : count;
        __m128i sum[4];
        for (int v = 0; v < 4; v++)
            sum[v] = _mm_setzero_si128();
        for (int64_t q = start; q < end; q++) {
            const __m256d x = _mm256_set1_pd((double)a[q]);
            const float *row = b + q * ldb;
            for (int v = 0; v < 4; v++)
                sum[v] = _mm_add_epi32(sum[v], _mm256_cvttpd_epi32(_mm256_mul_pd(
                                                   _mm256_mul_pd(x, _mm256_cvtps_pd(_mm_loadu_ps(row + 4 * v))), s[v])));
        }
        for (int v = 0; v < 4; v++)
            t[v] = _mm256_add_pd(t[v], _mm256_cvtepi32_pd(sum[v]));
    }
    for (int v = 0; v < 4; v++)
        _mm256_storeu_pd(total + 4 * v, t[v]);
}

__attribute__((target("avx512f"))) static void strip_products_float_avx512(const float *restrict a,
                                                                           const float *restrict b, int64_t ldb,
                                                                           int64_t count, int64_t run,
                                                                           const float scale[LANES],
                                                                           double total[LANES])
{
    const __m512 scale_all = _mm512_loadu_ps(scale);
    __m512d low = _mm512_setzero_pd(), high = low;
    for (int64_t start = 0; start < count; start += run) {
        int64_t end = start + run < count ? start + run : count;
        __m512i sum = _mm512_setzero_si512();
        for (int64_t q = start; q < end; q++)
            sum = _mm512_add_epi32(sum, _mm512_cvttps_epi32(_mm512_mul_ps(
                                            _mm512_mul_ps(_mm512_set1_ps(a[q]), _mm512_loadu_ps(b + q * ldb)), scale_all)));
        low = _mm512_add_pd(low, _mm512_cvtepi32_pd(_mm512_castsi512_si256(sum)));
        high = _mm512_add_pd(high, _mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(sum, 1)));
    }
    _mm512_storeu_pd(total, low);
    _mm512_storeu_pd(total + 8, high);
}

__attribute__((target("avx512f"))) static void strip_products_double_avx512(const float *restrict a,
                                                                            const float *restrict b, int64_t ldb,
                                                                            int64_t count, int64_t run,
                                                                            const double scale[LANES],
                                                                            double total[LANES])
{
    const __m512d scale_low = _mm512_loadu_pd(scale), scale_high = _mm512_loadu_pd(scale + 8);
    __m512d low = _mm512_setzero_pd(), high = low;
    for (int64_t start = 0; start < count; start += run) {
        int64_t end = start + run < count ? start + run : count;
        __m256i sum_low = _mm256_setzero_si256(), sum_high = sum_low;
        for (int64_t q = start; q < end; q++) {
            const __m512d x = _mm512_set1_pd((double)a[q]);
            const float *row = b + q * ldb;
            sum_low = _mm256_add_epi32(sum_low, _mm512_cvttpd_epi32(_mm512_mul_pd(
                                                    _mm512_mul_pd(x, _mm512_cvtps_pd(_mm256_loadu_ps(row))), scale_low)));
            sum_high = _mm256_add_epi32(sum_high, _mm512_cvttpd_epi32(_mm512_mul_pd(
                                                      _mm512_mul_pd(x, _mm512_cvtps_pd(_mm256_loadu_ps(row + 8))),
                                                      scale_high)));
        }
        low = _mm512_add_pd(low, _mm512_cvtepi32_pd(sum_low));
        high = _mm512_add_pd(high, _mm512_cvtepi32_pd(sum_high));
    }
    _mm512_storeu_pd(total, low);
    _mm512_storeu_pd(total + 8, high);
}
#endif

/* The product loops and the exponent maximum at the widest SIMD the model was prepared for. */
static inline void strip_largest_any(const prepared_model *p, const int16_t *ae, const int16_t *be, int64_t ldb,
                                     int64_t count, int16_t largest[LANES])
{
#ifdef FL_MMA_WIDE_SIMD
    if (p->simd >= SIMD_AVX2) {
        strip_largest_avx2(ae, be, ldb, count, largest);
        return;
    }
#endif
    (void)p;
    strip_largest(ae, be, ldb, count, largest);
}

static inline void strip_products_float_any(const prepared_model *p, const float *a, const float *b, int64_t ldb,
                                            int64_t count, const float scale[LANES], double total[LANES])
{
#ifdef FL_MMA_WIDE_SIMD
    if (p->simd == SIMD_AVX512) {
        strip_products_float_avx512(a, b, ldb, count, p->int32_run, scale, total);
        return;
    }
    if (p->simd == SIMD_AVX2) {
        strip_products_float_avx2(a, b, ldb, count, p->int32_run, scale, total);
        return;
    }
#endif
    strip_products_float(a, b, ldb, count, p->int32_run, scale, total);
}

static inline void strip_products_double_any(const prepared_model *p, const float *a, const float *b, int64_t ldb,
                                             int64_t count, const double scale[LANES], double total[LANES])
{
#ifdef FL_MMA_WIDE_SIMD
    if (p->simd == SIMD_AVX512) {
        strip_products_double_avx512(a, b, ldb, count, p->int32_run, scale, total);
        return;
    }
    if (p->simd == SIMD_AVX2) {
        strip_products_double_avx2(a, b, ldb, count, p->int32_run, scale, total);
        return;
    }
#endif
    strip_products_double(a, b, ldb, count, p->int32_run, scale, total);
}

static inline void strip_products_wide(const float *restrict a, const float *restrict b, int64_t ldb,
                                       int64_t count, const double scale[LANES], int64_t sum[LANES])
{
    for (int w = 0; w < LANES; w++)
        sum[w] = 0;
    for (int64_t q = 0; q < count; q++) {
        double x = a[q];
        const float *row = b + q * ldb;
        for (int w = 0; w < LANES; w++)
            sum[w] += (int64_t)(x * row[w] * scale[w]);
    }
}

/* A and B with what the kernels need beside the values. */
typedef struct operands {
    const float *a;              /* m x k, the caller's array */
    int16_t *a_exponents;        /* m x k alignment exponents */
    unsigned char *a_special;    /* per row of A: holds Inf or NaN */
    float *b;                    /* B packed strip by strip (b_offset), zero columns up to whole strips */
    int16_t *b_exponents;        /* the same layout */
    unsigned char *b_special;    /* per column of B */
    int64_t m, n, k;
    int64_t ldb;                 /* LANES: the distance from B[q, j] to B[q + 1, j] in the packed layout */
    int64_t padded_n;            /* n rounded up to whole strips */
} operands;

/*
 * Where B[q, j] lies in the packed layout: strip j / LANES holds its K rows of LANES values one
 * after the other, so a kernel walking down K reads one contiguous run instead of one cache line
 * per row n floats apart (a power-of-two n sends those lines to the same cache sets).
 */
static inline int64_t b_offset(const operands *ops, int64_t q, int64_t j)
{
    return (j / LANES) * ops->k * LANES + q * LANES + j % LANES;
}

/*
 * One block of one strip on the fast path; lanes at and beyond `active` are padding.
 * Every step is a loop over the lanes with the same operations for each lane (flags
 * instead of branches), so that it compiles to SIMD; lanes that need the definition
 * (no nonzero term, a zero or subnormal result, Inf or NaN in c, a scale out of range)
 * are flagged and redone by block_general at the end.
 */
static void strip_block(const operands *ops, int64_t i, int64_t j0, int64_t k0, int64_t count, int active,
                        float chain[LANES], int c_emin, const prepared_model *p, superacc *acc)
{
    const float *a = ops->a + i * ops->k + k0;
    const int16_t *ae = ops->a_exponents + i * ops->k + k0;
    const float *b = ops->b + b_offset(ops, k0, j0);
    const int16_t *be = ops->b_exponents + b_offset(ops, k0, j0);
    const int fused = p->model.c_addition == FL_MMA_C_FUSED, frac_bits = p->model.frac_bits;
    const int32_t floor_exponent = p->model.use_exp_floor ? p->model.exp_floor : -32768;
    int16_t largest[LANES];
    uint32_t c_bits[LANES];
    int32_t top[LANES], general[LANES];
    double total[LANES];
    strip_largest_any(p, ae, be, ops->ldb, count, largest);
    memcpy(c_bits, chain, sizeof c_bits);

    /* M of each lane: the largest product exponent, c's (when fused and nonzero), the floor. */
    for (int w = 0; w < LANES; w++) {
        int32_t field = (int32_t)((c_bits[w] >> 23) & 0xFF);
        int32_t c_exponent = field - 127 < c_emin ? c_emin : field - 127;
        int32_t c_term = fused && (c_bits[w] & 0x7FFFFFFFu) != 0 ? c_exponent : 2 * ZERO_EXPONENT;
        int32_t t = largest[w] > c_term ? largest[w] : c_term;
        int32_t no_term = t <= NO_TERM_EXPONENT;
        top[w] = t < floor_exponent ? floor_exponent : t;
        general[w] = no_term | (fused & (field == 255));
    }
    /* The cut terms, summed exactly: products in int32 (or int64), c in its own integer. */
    if (p->float_products) {
        uint32_t scale_bits[LANES];
        float scale[LANES], c_value[LANES];
        int32_t c_cut[LANES];
        for (int w = 0; w < LANES; w++) {
            int32_t biased = frac_bits - top[w] + 127; /* 2^(F - M) as a float32 */
            general[w] |= (biased < 1) | (biased > 254);
            scale_bits[w] = general[w] ? 0u : (uint32_t)biased << 23;
        }
        memcpy(scale, scale_bits, sizeof scale);
        strip_products_float_any(p, a, b, ops->ldb, count, scale, total);
        for (int w = 0; w < LANES; w++)
            c_value[w] = fused && !general[w] ? chain[w] : 0.0f;
        for (int w = 0; w < LANES; w++)
            c_cut[w] = (int32_t)(c_value[w] * scale[w]);
        for (int w = 0; w < LANES; w++)
            total[w] += (double)c_cut[w];
    } else {
        uint64_t scale_bits[LANES];
        double scale[LANES];
        for (int w = 0; w < LANES; w++)
            scale_bits[w] = general[w] ? 0u : (uint64_t)(frac_bits - top[w] + 1023) << 52;
        memcpy(scale, scale_bits, sizeof scale);
        if (p->fast_int32) {
            strip_products_double_any(p, a, b, ops->ldb, count, scale, total);
        } else {
            int64_t sum[LANES];
            strip_products_wide(a, b, ops->ldb, count, scale, sum);
            for (int w = 0; w < LANES; w++)
                total[w] = (double)sum[w];
        }
        for (int w = 0; w < LANES; w++)
            total[w] += (double)(int64_t)(fused && !general[w] ? (double)chain[w] * scale[w] : 0.0);
    }
    /* Round total * 2^(M - F) on its bits: to the output format, then the accumulator cut. */
    uint64_t bits[LANES], unscale_bits[LANES];
    double value[LANES], unscale[LANES], result[LANES];
    const int drop = 52 - p->model.out.man_bits, acc_drop = 52 - p->acc.man_bits;
    const uint64_t mask = (1ull << drop) - 1, acc_mask = (1ull << acc_drop) - 1;
    const uint64_t half = mask >> 1;
    const double min_normal = pow2(p->model.out.emin), max = p->out_max;
    for (int w = 0; w < LANES; w++)
        unscale_bits[w] = (uint64_t)(general[w] ? 1023 : top[w] - frac_bits + 1023) << 52;
    memcpy(unscale, unscale_bits, sizeof unscale);
    for (int w = 0; w < LANES; w++)
        value[w] = total[w] * unscale[w]; /* exact: total < 2^53 */
    memcpy(bits, value, sizeof bits);
    if (p->nearest_even) {
        for (int w = 0; w < LANES; w++)
            bits[w] = (bits[w] + half + ((bits[w] >> drop) & 1)) & ~mask;
    } else {
        for (int w = 0; w < LANES; w++)
            bits[w] &= ~(mask | acc_mask); /* toward zero, then cut toward zero: one cut */
    }
    memcpy(result, bits, sizeof result);
    for (int w = 0; w < LANES; w++) {
        general[w] |= (total[w] == 0.0) | (fabs(value[w]) < min_normal); /* zero or subnormal */
        result[w] = fabs(result[w]) > max ? copysign(INFINITY, value[w]) : result[w];
    }
    if (p->nearest_even && acc_drop > drop) {
        /* nearest-even to the output format first, then the accumulator cut toward zero */
        memcpy(bits, result, sizeof bits);
        for (int w = 0; w < LANES; w++)
            bits[w] &= ~acc_mask;
        memcpy(result, bits, sizeof result);
    }
    for (int w = 0; w < active; w++) {
        double c = chain[w], block_result = result[w];
        if (general[w])
            block_result = block_general(a, b + w, ops->ldb, ae, be + w, count, fused ? c : 0.0, c_emin, fused, p,
                                         acc);
        chain[w] = (float)(fused ? block_result
                                 : add_nearest_even(c, block_result, &p->model.out, p->out_max, p->out_nan));
    }
}

#ifdef __SSE2__
static inline __m128i max_int32(__m128i x, __m128i y)
{
    __m128i greater = _mm_cmpgt_epi32(x, y);
    return _mm_or_si128(_mm_and_si128(greater, x), _mm_andnot_si128(greater, y));
}

/* mask ? x : y, lane by lane */
static inline __m128i select_int(__m128i mask, __m128i x, __m128i y)
{
    return _mm_or_si128(_mm_and_si128(mask, x), _mm_andnot_si128(mask, y));
}

/* Two 2-lane double masks as one 4-lane int32 mask. */
static inline __m128i narrow_masks(__m128d low, __m128d high)
{
    return _mm_castps_si128(_mm_shuffle_ps(_mm_castpd_ps(low), _mm_castpd_ps(high), _MM_SHUFFLE(2, 0, 2, 0)));
}

/*
 * strip_block with the per-lane steps in SSE2 as well: the same arithmetic, four lanes per
 * instruction, for float32 products (fp16, FP8) and double products summed in int32 (bf16, tf32).
 * Its two per-lane steps, strip_scales_sse2 (M, the flags, the scales) and strip_finish_sse2
 * (the cut c, the rounding, the definition for the flagged lanes), are also the block step of
 * each row of rows_block_avx2, which shares the loads of B between four rows.
 */
static inline void strip_scales_sse2(const int16_t largest[LANES], const float chain[LANES], int c_emin,
                                     const prepared_model *p, __m128i top[4], __m128i general[4],
                                     float scale_array[LANES], double scale_double[LANES])
{
    const int fused = p->model.c_addition == FL_MMA_C_FUSED, frac_bits = p->model.frac_bits;
    const __m128i zero = _mm_setzero_si128(), fused_mask = _mm_set1_epi32(fused ? -1 : 0);
    __m128i largest_low = _mm_loadu_si128((const __m128i *)largest);
    __m128i largest_high = _mm_loadu_si128((const __m128i *)(largest + 8));
    __m128 scale[4];
    /* int16 lanes to int32 (sign-extended) */
    top[0] = _mm_srai_epi32(_mm_unpacklo_epi16(largest_low, largest_low), 16);
    top[1] = _mm_srai_epi32(_mm_unpackhi_epi16(largest_low, largest_low), 16);
    top[2] = _mm_srai_epi32(_mm_unpacklo_epi16(largest_high, largest_high), 16);
    top[3] = _mm_srai_epi32(_mm_unpackhi_epi16(largest_high, largest_high), 16);
    /* M, the flags and the scale 2^(F - M), as in strip_block */
    for (int v = 0; v < 4; v++) {
        __m128i c_bits = _mm_loadu_si128((const __m128i *)(chain + 4 * v));
        __m128i field = _mm_and_si128(_mm_srli_epi32(c_bits, 23), _mm_set1_epi32(0xFF));
        __m128i c_exponent = max_int32(_mm_sub_epi32(field, _mm_set1_epi32(127)), _mm_set1_epi32(c_emin));
        __m128i c_nonzero =
            _mm_andnot_si128(_mm_cmpeq_epi32(_mm_and_si128(c_bits, _mm_set1_epi32(0x7FFFFFFF)), zero), fused_mask);
        __m128i t = max_int32(top[v], select_int(c_nonzero, c_exponent, _mm_set1_epi32(2 * ZERO_EXPONENT)));
        __m128i flag = _mm_cmplt_epi32(t, _mm_set1_epi32(NO_TERM_EXPONENT + 1));
        flag = _mm_or_si128(flag, _mm_and_si128(fused_mask, _mm_cmpeq_epi32(field, _mm_set1_epi32(255))));
        if (p->model.use_exp_floor)
            t = max_int32(t, _mm_set1_epi32(p->model.exp_floor));
        __m128i biased = _mm_sub_epi32(_mm_set1_epi32(frac_bits + 127), t);
        if (p->float_products) /* the scale must be a float32 */
            flag = _mm_or_si128(flag, _mm_or_si128(_mm_cmplt_epi32(biased, _mm_set1_epi32(1)),
                                                   _mm_cmpgt_epi32(biased, _mm_set1_epi32(254))));
        scale[v] = _mm_castsi128_ps(_mm_andnot_si128(flag, _mm_slli_epi32(biased, 23)));
        /* 2^(F - M) as a double: F - M + 1023 is positive for every valid model */
        __m128i biased_double = _mm_andnot_si128(flag, _mm_sub_epi32(_mm_set1_epi32(frac_bits + 1023), t));
        _mm_storeu_pd(scale_double + 4 * v, _mm_castsi128_pd(_mm_slli_epi64(_mm_unpacklo_epi32(biased_double, zero), 52)));
        _mm_storeu_pd(scale_double + 4 * v + 2,
                      _mm_castsi128_pd(_mm_slli_epi64(_mm_unpackhi_epi32(biased_double, zero), 52)));
        top[v] = t;
        general[v] = flag;
    }
    for (int v = 0; v < 4; v++)
        _mm_storeu_ps(scale_array + 4 * v, scale[v]);
}

/* The end of strip_block_sse2's block step: add the cut c to the product sums `sum`, round
 * total * 2^(M - F) on its bits, redo the flagged lanes by the definition, and leave the block
 * result in `chain` (through the separate adder when c is not fused). */
static inline void strip_finish_sse2(const float *a, const int16_t *ae, const float *b, const int16_t *be,
                                     int64_t ldb, int64_t count, int active, float chain[LANES], int c_emin,
                                     const prepared_model *p, superacc *acc, const double sum[LANES],
                                     const __m128i top[4], const __m128i general[4],
                                     const double scale_double[LANES])
{
    const int fused = p->model.c_addition == FL_MMA_C_FUSED, frac_bits = p->model.frac_bits;
    const __m128i zero = _mm_setzero_si128(), fused_mask = _mm_set1_epi32(fused ? -1 : 0);
    /* total * 2^(M - F), rounded on its bits, as in strip_block */
    const int drop = 52 - p->model.out.man_bits, acc_drop = 52 - p->acc.man_bits;
    const __m128i drop_count = _mm_cvtsi32_si128(drop);
    const __m128i mask = _mm_set1_epi64x((long long)((1ull << drop) - 1));
    const __m128i cut_mask = _mm_set1_epi64x((long long)(((1ull << drop) - 1) | ((1ull << acc_drop) - 1)));
    const __m128i acc_mask = _mm_set1_epi64x((long long)((1ull << acc_drop) - 1));
    const __m128i half = _mm_set1_epi64x((long long)(((1ull << drop) - 1) >> 1)), one = _mm_set1_epi64x(1);
    const __m128d abs_mask = _mm_castsi128_pd(_mm_set1_epi64x(0x7FFFFFFFFFFFFFFFll));
    const __m128d min_normal = _mm_set1_pd(pow2(p->model.out.emin)), max = _mm_set1_pd(p->out_max);
    const int cut_after = p->nearest_even && acc_drop > drop;
    float result[LANES], c_saved[LANES];
    int flag_bits = 0; /* bit w: lane w needs block_general */
    memcpy(c_saved, chain, sizeof c_saved);
    for (int v = 0; v < 4; v++) {
        __m128 c_value = _mm_castsi128_ps(
            _mm_andnot_si128(general[v], _mm_and_si128(fused_mask, _mm_loadu_si128((const __m128i *)(chain + 4 * v)))));
        /* c * 2^(F - M) < 2^(F + 1) <= 2^30: exact in double, and its cut fits an int32 */
        __m128i c_cut = _mm_unpacklo_epi64(
            _mm_cvttpd_epi32(_mm_mul_pd(_mm_cvtps_pd(c_value), _mm_loadu_pd(scale_double + 4 * v))),
            _mm_cvttpd_epi32(_mm_mul_pd(_mm_cvtps_pd(_mm_movehl_ps(c_value, c_value)),
                                        _mm_loadu_pd(scale_double + 4 * v + 2))));
        __m128i unscale_exponent =
            select_int(general[v], _mm_set1_epi32(1023), _mm_add_epi32(top[v], _mm_set1_epi32(1023 - frac_bits)));
        __m128d rounded[2];
        __m128i flag = general[v];
        __m128d flag_double[2];
        for (int half_index = 0; half_index < 2; half_index++) {
            __m128i c_shift = half_index ? _mm_shuffle_epi32(c_cut, 0x0E) : c_cut;
            __m128d total = _mm_add_pd(_mm_loadu_pd(sum + 4 * v + 2 * half_index), _mm_cvtepi32_pd(c_shift)); /* exact */
            __m128i exponent = half_index ? _mm_unpackhi_epi32(unscale_exponent, zero)
                                          : _mm_unpacklo_epi32(unscale_exponent, zero);
            __m128d value = _mm_mul_pd(total, _mm_castsi128_pd(_mm_slli_epi64(exponent, 52)));
            __m128i bits = _mm_castpd_si128(value);
            if (p->nearest_even)
                bits = _mm_andnot_si128(mask, _mm_add_epi64(bits, _mm_add_epi64(half, _mm_and_si128(
                                                                                    _mm_srl_epi64(bits, drop_count), one))));
            else
                bits = _mm_andnot_si128(cut_mask, bits);
            __m128d r = _mm_castsi128_pd(bits);
            if (cut_after)
                r = _mm_castsi128_pd(_mm_andnot_si128(acc_mask, _mm_castpd_si128(r)));
            rounded[half_index] = r;
            /* zero, subnormal (both below min_normal) and overflowing results: block_general */
            flag_double[half_index] = _mm_or_pd(_mm_cmplt_pd(_mm_and_pd(value, abs_mask), min_normal),
                                                _mm_cmpgt_pd(_mm_and_pd(value, abs_mask), max));
        }
        flag = _mm_or_si128(flag, narrow_masks(flag_double[0], flag_double[1]));
        __m128 four = _mm_movelh_ps(_mm_cvtpd_ps(rounded[0]), _mm_cvtpd_ps(rounded[1]));
        _mm_storeu_ps(fused ? chain + 4 * v : result + 4 * v, four); /* fused: the new chain directly */
        flag_bits |= _mm_movemask_ps(_mm_castsi128_ps(flag)) << (4 * v);
    }
    flag_bits &= (int)((1u << active) - 1u); /* padding lanes are never looked at */
    if (fused) {
        for (int w = 0; flag_bits; w++, flag_bits >>= 1)
            if (flag_bits & 1)
                chain[w] = (float)block_general(a, b + w, ldb, ae, be + w, count, c_saved[w], c_emin, 1, p, acc);
        return;
    }
    for (int w = 0; flag_bits; w++, flag_bits >>= 1)
        if (flag_bits & 1)
            result[w] = (float)block_general(a, b + w, ldb, ae, be + w, count, 0.0, c_emin, 0, p, acc);
    if (p->out_is_float32) {
        /* The separate adder for float32 output is exactly a float32 addition (nearest-even,
         * overflow to Inf, IEEE zeros); only its NaN must become the canonical one. */
        const __m128 nan = _mm_set1_ps((float)p->out_nan);
        for (int v = 0; v < 4; v++) {
            __m128 sum = _mm_add_ps(_mm_loadu_ps(c_saved + 4 * v), _mm_loadu_ps(result + 4 * v));
            __m128 is_nan = _mm_cmpunord_ps(sum, sum);
            _mm_storeu_ps(chain + 4 * v, _mm_or_ps(_mm_and_ps(is_nan, nan), _mm_andnot_ps(is_nan, sum)));
        }
        return;
    }
    for (int w = 0; w < active; w++)
        chain[w] = (float)add_nearest_even(c_saved[w], result[w], &p->model.out, p->out_max, p->out_nan);
}

static void strip_block_sse2(const operands *ops, int64_t i, int64_t j0, int64_t k0, int64_t count,
                                   int active, float chain[LANES], int c_emin, const prepared_model *p,
                                   superacc *acc)
{
    const float *a = ops->a + i * ops->k + k0;
    const int16_t *ae = ops->a_exponents + i * ops->k + k0;
    const float *b = ops->b + b_offset(ops, k0, j0);
    const int16_t *be = ops->b_exponents + b_offset(ops, k0, j0);
    int16_t largest[LANES];
    strip_largest_any(p, ae, be, ops->ldb, count, largest);
    __m128i top[4], general[4];
    float scale_array[LANES];
    double scale_double[LANES], sum[LANES];
    strip_scales_sse2(largest, chain, c_emin, p, top, general, scale_array, scale_double);
    if (p->float_products)
        strip_products_float_any(p, a, b, ops->ldb, count, scale_array, sum);
    else
        strip_products_double_any(p, a, b, ops->ldb, count, scale_double, sum);
    strip_finish_sse2(a, ae, b, be, ops->ldb, count, active, chain, c_emin, p, acc, sum, top, general, scale_double);
}
#endif


#ifdef FL_MMA_WIDE_SIMD
/*
 * strip_block_sse2 with sixteen lanes to an instruction: the same steps, lane for lane, on one
 * AVX-512 register of int32 or float and two of double, with the flags as mask registers.
 */
/* What the block step needs per lane of one strip: M (t), the lanes for block_general (flag) and
 * the scale 2^(F - M), as in strip_block; from the exponent maxima `largest` and the chain. */
typedef struct lane_scales {
    __m512i t;
    __mmask16 flag;
    __m512i biased;      /* F - M + 127, the float32 exponent field of the scale */
    __m512d scale_low;   /* 2^(F - M) as doubles, lanes 0-7 */
    __m512d scale_high;  /* lanes 8-15 */
} lane_scales;

__attribute__((target("avx512f"), always_inline)) static inline lane_scales
block_scales_avx512(const int16_t largest[LANES], const float chain[LANES], int c_emin, const prepared_model *p,
                    int doubles)
{
    const int fused = p->model.c_addition == FL_MMA_C_FUSED, frac_bits = p->model.frac_bits;
    lane_scales s;
    __m512i t = _mm512_cvtepi16_epi32(_mm256_loadu_si256((const __m256i *)largest));
    /* M, the flags and the scale 2^(F - M), as in strip_block */
    const __m512i c_bits = _mm512_loadu_si512((const void *)chain);
    const __m512i field = _mm512_and_si512(_mm512_srli_epi32(c_bits, 23), _mm512_set1_epi32(0xFF));
    const __m512i c_exponent = _mm512_max_epi32(_mm512_sub_epi32(field, _mm512_set1_epi32(127)),
                                                _mm512_set1_epi32(c_emin));
    const __mmask16 c_nonzero = fused ? _mm512_test_epi32_mask(c_bits, _mm512_set1_epi32(0x7FFFFFFF)) : 0;
    t = _mm512_mask_max_epi32(t, c_nonzero, t, c_exponent);
    __mmask16 flag = _mm512_cmplt_epi32_mask(t, _mm512_set1_epi32(NO_TERM_EXPONENT + 1));
    if (fused)
        flag |= _mm512_cmpeq_epi32_mask(field, _mm512_set1_epi32(255));
    if (p->model.use_exp_floor)
        t = _mm512_max_epi32(t, _mm512_set1_epi32(p->model.exp_floor));
    const __m512i biased = _mm512_sub_epi32(_mm512_set1_epi32(frac_bits + 127), t);
    if (p->float_products) /* the scale must be a float32 */
        flag |= _mm512_cmplt_epi32_mask(biased, _mm512_set1_epi32(1)) |
                _mm512_cmpgt_epi32_mask(biased, _mm512_set1_epi32(254));
    /* the double scales, unless the caller works in float32 only (block_finish_rz_float_avx512) */
    s.scale_low = s.scale_high = _mm512_setzero_pd();
    if (doubles) {
        const __m512i biased_double = _mm512_maskz_sub_epi32((__mmask16)~flag, _mm512_set1_epi32(frac_bits + 1023), t);
        s.scale_low = _mm512_castsi512_pd(
            _mm512_slli_epi64(_mm512_cvtepu32_epi64(_mm512_castsi512_si256(biased_double)), 52));
        s.scale_high = _mm512_castsi512_pd(
            _mm512_slli_epi64(_mm512_cvtepu32_epi64(_mm512_extracti64x4_epi64(biased_double, 1)), 52));
    }
    s.t = t;
    s.flag = flag;
    s.biased = biased;
    return s;
}

/* The float32 scale 2^(F - M) of each lane, 0 for the flagged ones. */
__attribute__((target("avx512f"), always_inline)) static inline __m512 float_scale_avx512(const lane_scales *s)
{
    return _mm512_castsi512_ps(_mm512_maskz_slli_epi32((__mmask16)~s->flag, s->biased, 23));
}

/*
 * The end of the block step of one strip: add the cut c to the product sums `sum`, round
 * total * 2^(M - F) on its bits, redo the flagged lanes by the definition, and leave the block
 * result in `chain` (through the separate adder when c is not fused).
 */
__attribute__((target("avx512f"), always_inline)) static inline void
block_finish_avx512(const float *a, const int16_t *ae, const float *b, const int16_t *be, int64_t ldb, int64_t count,
                    int active, float chain[LANES], int c_emin, const prepared_model *p, superacc *acc,
                    const double sum[LANES], const lane_scales *s)
{
    const int fused = p->model.c_addition == FL_MMA_C_FUSED, frac_bits = p->model.frac_bits;
    const __m512i c_bits = _mm512_loadu_si512((const void *)chain);
    const __mmask16 flag = s->flag;
    const __m512i t = s->t;
    const __m512d scale_low = s->scale_low, scale_high = s->scale_high;
    /* total * 2^(M - F), rounded on its bits, as in strip_block */
    const int drop = 52 - p->model.out.man_bits, acc_drop = 52 - p->acc.man_bits;
    const __m128i drop_count = _mm_cvtsi32_si128(drop);
    const __m512i mask = _mm512_set1_epi64((long long)((1ull << drop) - 1));
    const __m512i cut_mask = _mm512_set1_epi64((long long)(((1ull << drop) - 1) | ((1ull << acc_drop) - 1)));
    const __m512i acc_mask = _mm512_set1_epi64((long long)((1ull << acc_drop) - 1));
    const __m512i half = _mm512_set1_epi64((long long)(((1ull << drop) - 1) >> 1)), one = _mm512_set1_epi64(1);
    const __m512i abs_mask = _mm512_set1_epi64(0x7FFFFFFFFFFFFFFFll);
    const __m512d min_normal = _mm512_set1_pd(pow2(p->model.out.emin)), max = _mm512_set1_pd(p->out_max);
    const int cut_after = p->nearest_even && acc_drop > drop;
    float result[LANES], c_saved[LANES];
    memcpy(c_saved, chain, sizeof c_saved);
    const __m512i c_value = _mm512_maskz_mov_epi32(fused ? (__mmask16)~flag : 0, c_bits);
    /* c * 2^(F - M) < 2^(F + 1) <= 2^30: exact in double, and its cut fits an int32 */
    const __m256i c_cut[2] = {
        _mm512_cvttpd_epi32(_mm512_mul_pd(_mm512_cvtps_pd(_mm256_castsi256_ps(_mm512_castsi512_si256(c_value))),
                                          scale_low)),
        _mm512_cvttpd_epi32(_mm512_mul_pd(_mm512_cvtps_pd(_mm256_castsi256_ps(_mm512_extracti64x4_epi64(c_value, 1))),
                                          scale_high))};
    const __m512i unscale_exponent = _mm512_mask_blend_epi32(
        flag, _mm512_add_epi32(t, _mm512_set1_epi32(1023 - frac_bits)), _mm512_set1_epi32(1023));
    int flag_bits = flag;
    for (int half_index = 0; half_index < 2; half_index++) {
        __m512d total = _mm512_add_pd(_mm512_loadu_pd(sum + 8 * half_index), _mm512_cvtepi32_pd(c_cut[half_index]));
        __m256i exponent32 = half_index ? _mm512_extracti64x4_epi64(unscale_exponent, 1)
                                        : _mm512_castsi512_si256(unscale_exponent);
        __m512d value = _mm512_mul_pd(total, _mm512_castsi512_pd(_mm512_slli_epi64(_mm512_cvtepu32_epi64(exponent32), 52)));
        __m512i bits = _mm512_castpd_si512(value);
        if (p->nearest_even)
            bits = _mm512_andnot_si512(mask, _mm512_add_epi64(bits, _mm512_add_epi64(half, _mm512_and_si512(
                                                                                _mm512_srl_epi64(bits, drop_count), one))));
        else
            bits = _mm512_andnot_si512(cut_mask, bits);
        if (cut_after)
            bits = _mm512_andnot_si512(acc_mask, bits);
        /* zero, subnormal (both below min_normal) and overflowing results: block_general */
        __m512d magnitude = _mm512_castsi512_pd(_mm512_and_si512(_mm512_castpd_si512(value), abs_mask));
        int out_of_range = _mm512_cmp_pd_mask(magnitude, min_normal, _CMP_LT_OQ) |
                           _mm512_cmp_pd_mask(magnitude, max, _CMP_GT_OQ);
        flag_bits |= out_of_range << (8 * half_index);
        _mm256_storeu_ps((fused ? chain : result) + 8 * half_index, _mm512_cvtpd_ps(_mm512_castsi512_pd(bits)));
    }
    flag_bits &= (int)((1u << active) - 1u); /* padding lanes are never looked at */
    if (fused) {
        for (int w = 0; flag_bits; w++, flag_bits >>= 1)
            if (flag_bits & 1)
                chain[w] = (float)block_general(a, b + w, ldb, ae, be + w, count, c_saved[w], c_emin, 1, p,
                                                acc);
        return;
    }
    for (int w = 0; flag_bits; w++, flag_bits >>= 1)
        if (flag_bits & 1)
            result[w] = (float)block_general(a, b + w, ldb, ae, be + w, count, 0.0, c_emin, 0, p, acc);
    if (p->out_is_float32) {
        /* the separate adder for float32 output is a float32 addition; its NaN becomes the canonical one */
        const __m512 sum_value = _mm512_add_ps(_mm512_loadu_ps(c_saved), _mm512_loadu_ps(result));
        const __mmask16 is_nan = _mm512_cmp_ps_mask(sum_value, sum_value, _CMP_UNORD_Q);
        _mm512_storeu_ps(chain, _mm512_mask_blend_ps(is_nan, sum_value, _mm512_set1_ps((float)p->out_nan)));
        return;
    }
    /* The separate adder of the other output formats (FP8 with fp16 output), eight lanes at a
     * time: hi = c + result in double and its two-sum error lo.  Where lo = 0 (the sum is exact
     * in double, as for any two fp16 values) add_nearest_even is round_to_format(hi) to
     * nearest-even, i.e. the bit rounding above for a zero or normal hi, with overflow to +-Inf.
     * Every other lane (an Inf or NaN, lo != 0, a subnormal sum) is left to add_nearest_even. */
    const __m512d zero = _mm512_setzero_pd(), infinity = _mm512_set1_pd(INFINITY);
    int slow_bits = 0;
    for (int half_index = 0; half_index < 2; half_index++) {
        const __m512d x = _mm512_cvtps_pd(_mm256_loadu_ps(c_saved + 8 * half_index));
        const __m512d y = _mm512_cvtps_pd(_mm256_loadu_ps(result + 8 * half_index));
        const __m512d hi = _mm512_add_pd(x, y);
        const __m512d back = _mm512_sub_pd(hi, x);
        const __m512d lo = _mm512_add_pd(_mm512_sub_pd(x, _mm512_sub_pd(hi, back)), _mm512_sub_pd(y, back));
        const __m512i hi_bits = _mm512_castpd_si512(hi);
        const __m512d rounded = _mm512_castsi512_pd(_mm512_andnot_si512(
            mask, _mm512_add_epi64(hi_bits, _mm512_add_epi64(half, _mm512_and_si512(_mm512_srl_epi64(hi_bits, drop_count),
                                                                                  one)))));
        const __m512d hi_magnitude = _mm512_castsi512_pd(_mm512_and_si512(hi_bits, abs_mask));
        const __m512d rounded_magnitude = _mm512_castsi512_pd(_mm512_and_si512(_mm512_castpd_si512(rounded), abs_mask));
        /* lo != 0 or unordered (an Inf or NaN operand), or 0 < |hi| < 2^emin */
        const __mmask8 slow = _mm512_cmp_pd_mask(lo, zero, _CMP_NEQ_UQ) |
                              (_mm512_cmp_pd_mask(hi_magnitude, min_normal, _CMP_LT_OQ) &
                               _mm512_cmp_pd_mask(hi, zero, _CMP_NEQ_OQ));
        const __mmask8 overflow = _mm512_cmp_pd_mask(rounded_magnitude, max, _CMP_GT_OQ);
        /* copysign(Inf, hi): the sign bit of hi on Inf */
        const __m512d signed_infinity = _mm512_castsi512_pd(_mm512_or_si512(
            _mm512_castpd_si512(infinity), _mm512_andnot_si512(abs_mask, hi_bits)));
        const __m512d sum_value = _mm512_mask_blend_pd(overflow, rounded, signed_infinity);
        _mm256_storeu_ps(chain + 8 * half_index, _mm512_cvtpd_ps(sum_value));
        slow_bits |= (int)slow << (8 * half_index);
    }
    slow_bits &= (int)((1u << active) - 1u);
    for (int w = 0; slow_bits; w++, slow_bits >>= 1)
        if (slow_bits & 1)
            chain[w] = (float)add_nearest_even(c_saved[w], result[w], &p->model.out, p->out_max, p->out_nan);
}

/*
 * block_finish_avx512 for a fused c, float32 output rounded toward zero and float32 products
 * (the H100-style fp16/bf16/FP8 -> fp32 presets: p->float_products, c_addition FUSED,
 * out_is_float32, !nearest_even), sixteen lanes of float32 where that one does two halves of
 * double bit manipulation.  The same value, by these steps, each exact or the same rounding:
 *   - c * 2^(F - M) in float32: exact where the result is normal (a power-of-two scaling), and
 *     below 2^-126 where it is not, so its truncation is 0 either way, as in double; below
 *     2^(F + 1) <= 2^30, so the truncation fits an int32;
 *   - total = products + cut c, an integer below 2^53, in double as before;
 *   - its conversion to float32 toward zero keeps its 24 leading bits: the toward-zero rounding
 *     to float32's precision of total * 2^(M - F), the scaling being a power of two;
 *   - times 2^(M - F) in float32 toward zero: exact for a normal result.  A result below 2^-126
 *     (zero or subnormal, where the scaling would round) or at least 2^127 (near or past the
 *     largest float32) is flagged for block_general, and so are lanes whose 2^(M - F) is not a
 *     normal float32 (F - M + 127 = 254);
 *   - the 13-bit accumulator cut (acc_frac_bits, the FP8 presets), toward zero on a normal float32:
 *     its low 23 - acc_frac_bits fraction bits cleared, as the double path clears them.
 */
__attribute__((target("avx512f"), always_inline)) static inline void
block_finish_rz_float_avx512(const float *a, const int16_t *ae, const float *b, const int16_t *be, int64_t ldb,
                             int64_t count, int active, float chain[LANES], int c_emin, const prepared_model *p,
                             superacc *acc, __m512d sum_low, __m512d sum_high, const lane_scales *s,
                             __m512 scale)
{
    const __m512 c_value = _mm512_loadu_ps(chain);
    const __mmask16 flag = s->flag | _mm512_cmpeq_epi32_mask(s->biased, _mm512_set1_epi32(254));
    /* scale is 0 in the flagged lanes of s->flag: their cut c is 0 and they are redone anyway */
    const __m512i c_cut = _mm512_cvttps_epi32(_mm512_mul_ps(c_value, scale));
    const __m512d total_low = _mm512_add_pd(sum_low, _mm512_cvtepi32_pd(_mm512_castsi512_si256(c_cut)));
    const __m512d total_high = _mm512_add_pd(sum_high, _mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(c_cut, 1)));
    const __m256 narrow_low = _mm512_cvt_roundpd_ps(total_low, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 narrow_high = _mm512_cvt_roundpd_ps(total_high, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m512 narrow = _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_castps_pd(narrow_low)),
                                                              _mm256_castps_pd(narrow_high), 1));
    /* 2^(M - F): exponent field M - F + 127 = 254 - biased, in [1, 253] where not flagged */
    const __m512 unscale = _mm512_castsi512_ps(
        _mm512_slli_epi32(_mm512_sub_epi32(_mm512_set1_epi32(254), s->biased), 23));
    __m512 value = _mm512_mul_round_ps(narrow, unscale, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    if (p->acc.man_bits < 23)
        value = _mm512_castsi512_ps(_mm512_andnot_si512(_mm512_set1_epi32((int)((1u << (23 - p->acc.man_bits)) - 1u)),
                                                        _mm512_castps_si512(value)));
    const __m512 magnitude = _mm512_abs_ps(value);
    int flag_bits = flag | _mm512_cmp_ps_mask(magnitude, _mm512_castsi512_ps(_mm512_set1_epi32(0x00800000)), _CMP_LT_OQ) |
                    _mm512_cmp_ps_mask(magnitude, _mm512_castsi512_ps(_mm512_set1_epi32(0x7F000000)), _CMP_GE_OQ);
    float c_saved[LANES];
    _mm512_storeu_ps(c_saved, c_value);
    _mm512_storeu_ps(chain, value);
    flag_bits &= (int)((1u << active) - 1u); /* padding lanes are never looked at */
    for (int w = 0; flag_bits; w++, flag_bits >>= 1)
        if (flag_bits & 1)
            chain[w] = (float)block_general(a, b + w, ldb, ae, be + w, count, c_saved[w], c_emin, 1, p, acc);
}

/*
 * strip_block_sse2 with sixteen lanes to an instruction: the same steps, lane for lane, on one
 * AVX-512 register of int32 or float and two of double, with the flags as mask registers.
 */
__attribute__((target("avx512f"))) static void strip_block_avx512(const operands *ops, int64_t i, int64_t j0,
                                                                  int64_t k0, int64_t count, int active,
                                                                  float chain[LANES], int c_emin,
                                                                  const prepared_model *p, superacc *acc)
{
    const float *a = ops->a + i * ops->k + k0;
    const int16_t *ae = ops->a_exponents + i * ops->k + k0;
    const float *b = ops->b + b_offset(ops, k0, j0);
    const int16_t *be = ops->b_exponents + b_offset(ops, k0, j0);
    int16_t largest[LANES];
    strip_largest_avx2(ae, be, ops->ldb, count, largest);
    const lane_scales s = block_scales_avx512(largest, chain, c_emin, p, 1);
    double sum[LANES];
    if (p->float_products) {
        float scale_array[LANES];
        _mm512_storeu_ps(scale_array, float_scale_avx512(&s));
        strip_products_float_avx512(a, b, ops->ldb, count, p->int32_run, scale_array, sum);
    } else {
        double scale_double[LANES];
        _mm512_storeu_pd(scale_double, s.scale_low);
        _mm512_storeu_pd(scale_double + 8, s.scale_high);
        strip_products_double_avx512(a, b, ops->ldb, count, p->int32_run, scale_double, sum);
    }
    block_finish_avx512(a, ae, b, be, ops->ldb, count, active, chain, c_emin, p, acc, sum, &s);
}

/*
 * strip_block_avx512 for ROW_GROUP rows of A at once against the same strip of B (fp16 and FP8
 * inputs: p->float_products with int32 runs): the exponent maxima and the product loops share
 * each load of B and keep ROW_GROUP independent chains in flight.  Each row's lanes do exactly
 * the operations of strip_block_avx512 (the same products, scalings, conversions and int32 and
 * double additions), and the block step of each row is block_finish_avx512 itself, so the bits
 * are the same.
 */
#define ROW_GROUP 4

__attribute__((target("avx512f,avx512bw"))) static void rows_block_avx512(const operands *ops, int64_t i, int64_t j0,
                                                                          int64_t k0, int64_t count, int active,
                                                                          float chain[][LANES], int c_emin,
                                                                          const prepared_model *p, superacc *acc)
{
    const int64_t ldb = ops->ldb, k = ops->k;
    const float *a[ROW_GROUP];
    const int16_t *ae[ROW_GROUP];
    for (int r = 0; r < ROW_GROUP; r++) {
        a[r] = ops->a + (i + r) * k + k0;
        ae[r] = ops->a_exponents + (i + r) * k + k0;
    }
    const float *b = ops->b + b_offset(ops, k0, j0);
    const int16_t *be = ops->b_exponents + b_offset(ops, k0, j0);
    /* the largest product exponent of each row and lane, as strip_largest_avx2 */
    __m256i top[ROW_GROUP];
    for (int r = 0; r < ROW_GROUP; r++)
        top[r] = _mm256_set1_epi16((int16_t)(2 * ZERO_EXPONENT));
    for (int64_t q = 0; q < count; q++) {
        const __m256i row = _mm256_loadu_si256((const __m256i *)(be + q * ldb));
        for (int r = 0; r < ROW_GROUP; r++)
            top[r] = _mm256_max_epi16(top[r], _mm256_add_epi16(_mm256_set1_epi16(ae[r][q]), row));
    }
    /* fused c, float32 output toward zero: the block step in float32 (block_finish_rz_float_avx512) */
    const int float_finish = p->model.c_addition == FL_MMA_C_FUSED && p->out_is_float32 && !p->nearest_even;
    lane_scales s[ROW_GROUP];
    __m512 scale[ROW_GROUP];
    for (int r = 0; r < ROW_GROUP; r++) {
        int16_t largest[LANES];
        _mm256_storeu_si256((__m256i *)largest, top[r]);
        s[r] = block_scales_avx512(largest, chain[r], c_emin, p, !float_finish);
        scale[r] = float_scale_avx512(&s[r]);
    }
    /* the cut products, as strip_products_float_avx512 */
    __m512d low[ROW_GROUP], high[ROW_GROUP];
    for (int r = 0; r < ROW_GROUP; r++)
        low[r] = high[r] = _mm512_setzero_pd();
    for (int64_t start = 0; start < count; start += p->int32_run) {
        int64_t end = start + p->int32_run < count ? start + p->int32_run : count;
        __m512i sum[ROW_GROUP];
        for (int r = 0; r < ROW_GROUP; r++)
            sum[r] = _mm512_setzero_si512();
        for (int64_t q = start; q < end; q++) {
            const __m512 row = _mm512_loadu_ps(b + q * ldb);
            for (int r = 0; r < ROW_GROUP; r++)
                sum[r] = _mm512_add_epi32(sum[r], _mm512_cvttps_epi32(_mm512_mul_ps(
                                                      _mm512_mul_ps(_mm512_set1_ps(a[r][q]), row), scale[r])));
        }
        for (int r = 0; r < ROW_GROUP; r++) {
            low[r] = _mm512_add_pd(low[r], _mm512_cvtepi32_pd(_mm512_castsi512_si256(sum[r])));
            high[r] = _mm512_add_pd(high[r], _mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(sum[r], 1)));
        }
    }
    if (float_finish) {
        for (int r = 0; r < ROW_GROUP; r++)
            block_finish_rz_float_avx512(a[r], ae[r], b, be, ldb, count, active, chain[r], c_emin, p, acc, low[r],
                                         high[r], &s[r], scale[r]);
        return;
    }
    for (int r = 0; r < ROW_GROUP; r++) {
        double total[LANES];
        _mm512_storeu_pd(total, low[r]);
        _mm512_storeu_pd(total + 8, high[r]);
        block_finish_avx512(a[r], ae[r], b, be, ldb, count, active, chain[r], c_emin, p, acc, total, &s[r]);
    }
}

/*
 * The block step of strip_block_sse2 in AVX2 for a fused c, float32 output rounded toward zero
 * (the H100-style fp16/FP8 -> fp32 presets, rows_block_avx2's float_finish): sixteen lanes as two
 * registers of int32 / float and four of double.  Lane for lane the same values as
 * strip_scales_sse2 / strip_finish_sse2: M (t), the flags and the float32 scale 2^(F - M) by the
 * same integer steps; the cut c as trunc(c * 2^(F - M)) in float32 (the product is exact where it
 * is a normal float32 and below 2^-126 where it is not, so its truncation is the double path's,
 * 0 in the second case; below 2^(F + 1), so it fits an int32); then the double steps of
 * strip_finish_sse2: total = products + cut c (exact), times 2^(M - F) (exact), the output and
 * accumulator cuts toward zero on its bits, a zero, subnormal or overflowing result flagged for
 * block_general.
 */
typedef struct rz_lanes {
    __m256i t[2];      /* M of lanes 0-7 and 8-15 */
    __m256 scale[2];   /* 2^(F - M) as float32, 0 in the flagged lanes */
    unsigned flag;     /* bit w: lane w goes to block_general */
} rz_lanes;

__attribute__((target("avx2"), always_inline)) static inline void
rz_scales_avx2(__m256i largest, const float chain[LANES], int c_emin, const prepared_model *p, rz_lanes *s)
{
    const int frac_bits = p->model.frac_bits;
    unsigned flag = 0;
    for (int h = 0; h < 2; h++) {
        __m256i t = _mm256_cvtepi16_epi32(h ? _mm256_extracti128_si256(largest, 1) : _mm256_castsi256_si128(largest));
        const __m256i c_bits = _mm256_loadu_si256((const __m256i *)(chain + 8 * h));
        const __m256i field = _mm256_and_si256(_mm256_srli_epi32(c_bits, 23), _mm256_set1_epi32(0xFF));
        const __m256i c_exponent = _mm256_max_epi32(_mm256_sub_epi32(field, _mm256_set1_epi32(127)),
                                                    _mm256_set1_epi32(c_emin));
        const __m256i c_zero = _mm256_cmpeq_epi32(_mm256_and_si256(c_bits, _mm256_set1_epi32(0x7FFFFFFF)),
                                                  _mm256_setzero_si256());
        t = _mm256_max_epi32(t, _mm256_blendv_epi8(c_exponent, _mm256_set1_epi32(2 * ZERO_EXPONENT), c_zero));
        __m256i general = _mm256_or_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32(NO_TERM_EXPONENT + 1), t),
                                          _mm256_cmpeq_epi32(field, _mm256_set1_epi32(255)));
        if (p->model.use_exp_floor)
            t = _mm256_max_epi32(t, _mm256_set1_epi32(p->model.exp_floor));
        const __m256i biased = _mm256_sub_epi32(_mm256_set1_epi32(frac_bits + 127), t);
        general = _mm256_or_si256(general, _mm256_or_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32(1), biased),
                                                           _mm256_cmpgt_epi32(biased, _mm256_set1_epi32(254))));
        s->scale[h] = _mm256_castsi256_ps(_mm256_andnot_si256(general, _mm256_slli_epi32(biased, 23)));
        s->t[h] = t;
        flag |= (unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(general)) << (8 * h);
    }
    s->flag = flag;
}

__attribute__((target("avx2"), always_inline)) static inline void
rz_finish_avx2(const float *a, const int16_t *ae, const float *b, const int16_t *be, int64_t ldb, int64_t count,
               int active, float chain[LANES], int c_emin, const prepared_model *p, superacc *acc,
               const __m256d sum[4], const rz_lanes *s)
{
    const int frac_bits = p->model.frac_bits;
    const int drop = 52 - p->model.out.man_bits, acc_drop = 52 - p->acc.man_bits;
    const __m256i cut_mask = _mm256_set1_epi64x((long long)(((1ull << drop) - 1) | ((1ull << acc_drop) - 1)));
    const __m256d abs_mask = _mm256_castsi256_pd(_mm256_set1_epi64x(0x7FFFFFFFFFFFFFFFll));
    const __m256d min_normal = _mm256_set1_pd(pow2(p->model.out.emin)), max = _mm256_set1_pd(p->out_max);
    float c_saved[LANES];
    unsigned flag = s->flag;
    __m256i c_cut[2], unscale[2];
    for (int h = 0; h < 2; h++) {
        const __m256 c_value = _mm256_loadu_ps(chain + 8 * h);
        _mm256_storeu_ps(c_saved + 8 * h, c_value);
        /* the scale is 0 in the flagged lanes: their cut c is 0 (and they are redone anyway) */
        c_cut[h] = _mm256_cvttps_epi32(_mm256_mul_ps(c_value, s->scale[h]));
        const __m256i general = _mm256_castps_si256(_mm256_cmp_ps(s->scale[h], _mm256_setzero_ps(), _CMP_EQ_OQ));
        unscale[h] = _mm256_blendv_epi8(_mm256_add_epi32(s->t[h], _mm256_set1_epi32(1023 - frac_bits)),
                                        _mm256_set1_epi32(1023), general);
    }
    __m128 result[4];
    for (int v = 0; v < 4; v++) {
        const __m128i cut = (v & 1) ? _mm256_extracti128_si256(c_cut[v >> 1], 1) : _mm256_castsi256_si128(c_cut[v >> 1]);
        const __m128i exponent = (v & 1) ? _mm256_extracti128_si256(unscale[v >> 1], 1)
                                         : _mm256_castsi256_si128(unscale[v >> 1]);
        const __m256d total = _mm256_add_pd(sum[v], _mm256_cvtepi32_pd(cut)); /* exact */
        const __m256d value = _mm256_mul_pd(total, _mm256_castsi256_pd(_mm256_slli_epi64(
                                                      _mm256_cvtepu32_epi64(exponent), 52)));
        const __m256d magnitude = _mm256_and_pd(value, abs_mask);
        /* zero, subnormal (both below min_normal) and overflowing results: block_general */
        const __m256d out_of_range = _mm256_or_pd(_mm256_cmp_pd(magnitude, min_normal, _CMP_LT_OQ),
                                                  _mm256_cmp_pd(magnitude, max, _CMP_GT_OQ));
        flag |= (unsigned)_mm256_movemask_pd(out_of_range) << (4 * v);
        result[v] = _mm256_cvtpd_ps(_mm256_castsi256_pd(_mm256_andnot_si256(cut_mask, _mm256_castpd_si256(value))));
    }
    _mm256_storeu_ps(chain, _mm256_insertf128_ps(_mm256_castps128_ps256(result[0]), result[1], 1));
    _mm256_storeu_ps(chain + 8, _mm256_insertf128_ps(_mm256_castps128_ps256(result[2]), result[3], 1));
    flag &= (1u << active) - 1u; /* padding lanes are never looked at */
    for (int w = 0; flag; w++, flag >>= 1)
        if (flag & 1)
            chain[w] = (float)block_general(a, b + w, ldb, ae, be + w, count, c_saved[w], c_emin, 1, p, acc);
}

/*
 * rows_block_avx512's grouping in AVX2: ROW_GROUP rows of A against one strip of B (float32
 * products summed in int32 runs), the exponent maxima and the product loops sharing each load of
 * B.  Per row and lane the operations are those of strip_block_sse2 with the AVX2 product loop
 * (strip_largest_avx2, strip_products_float_avx2: the same int16 maxima, float32 products,
 * scalings, truncations, int32 and double additions), and the row's block step is
 * strip_scales_sse2 and strip_finish_sse2 themselves, so the bits are strip_block_sse2's.
 */
__attribute__((target("avx2"))) static void rows_block_avx2(const operands *ops, int64_t i, int64_t j0, int64_t k0,
                                                            int64_t count, int active, float chain[][LANES],
                                                            int c_emin, const prepared_model *p, superacc *acc)
{
    const int64_t ldb = ops->ldb, k = ops->k;
    const float *a[ROW_GROUP];
    const int16_t *ae[ROW_GROUP];
    for (int r = 0; r < ROW_GROUP; r++) {
        a[r] = ops->a + (i + r) * k + k0;
        ae[r] = ops->a_exponents + (i + r) * k + k0;
    }
    const float *b = ops->b + b_offset(ops, k0, j0);
    const int16_t *be = ops->b_exponents + b_offset(ops, k0, j0);
    __m256i largest[ROW_GROUP];
    for (int r = 0; r < ROW_GROUP; r++)
        largest[r] = _mm256_set1_epi16((int16_t)(2 * ZERO_EXPONENT));
    for (int64_t q = 0; q < count; q++) {
        const __m256i row = _mm256_loadu_si256((const __m256i *)(be + q * ldb));
        for (int r = 0; r < ROW_GROUP; r++)
            largest[r] = _mm256_max_epi16(largest[r], _mm256_add_epi16(_mm256_set1_epi16(ae[r][q]), row));
    }
    /* fused c, float32 output toward zero: the block step in AVX2 (rz_scales_avx2, rz_finish_avx2) */
    const int float_finish = p->model.c_addition == FL_MMA_C_FUSED && p->out_is_float32 && !p->nearest_even;
    __m128i top[ROW_GROUP][4], general[ROW_GROUP][4];
    double scale_double[ROW_GROUP][LANES];
    rz_lanes rz[ROW_GROUP];
    __m256 scale[ROW_GROUP][2];
    __m256d total[ROW_GROUP][4];
    for (int r = 0; r < ROW_GROUP; r++) {
        if (float_finish) {
            rz_scales_avx2(largest[r], chain[r], c_emin, p, &rz[r]);
            scale[r][0] = rz[r].scale[0];
            scale[r][1] = rz[r].scale[1];
        } else {
            int16_t row_largest[LANES];
            float scale_array[LANES];
            _mm256_storeu_si256((__m256i *)row_largest, largest[r]);
            strip_scales_sse2(row_largest, chain[r], c_emin, p, top[r], general[r], scale_array, scale_double[r]);
            scale[r][0] = _mm256_loadu_ps(scale_array);
            scale[r][1] = _mm256_loadu_ps(scale_array + 8);
        }
        for (int v = 0; v < 4; v++)
            total[r][v] = _mm256_setzero_pd();
    }
    for (int64_t start = 0; start < count; start += p->int32_run) {
        const int64_t end = start + p->int32_run < count ? start + p->int32_run : count;
        __m256i sum[ROW_GROUP][2];
        for (int r = 0; r < ROW_GROUP; r++)
            sum[r][0] = sum[r][1] = _mm256_setzero_si256();
        for (int64_t q = start; q < end; q++) {
            const __m256 row0 = _mm256_loadu_ps(b + q * ldb), row1 = _mm256_loadu_ps(b + q * ldb + 8);
            for (int r = 0; r < ROW_GROUP; r++) {
                const __m256 x = _mm256_set1_ps(a[r][q]);
                sum[r][0] = _mm256_add_epi32(sum[r][0], _mm256_cvttps_epi32(_mm256_mul_ps(_mm256_mul_ps(x, row0),
                                                                                          scale[r][0])));
                sum[r][1] = _mm256_add_epi32(sum[r][1], _mm256_cvttps_epi32(_mm256_mul_ps(_mm256_mul_ps(x, row1),
                                                                                          scale[r][1])));
            }
        }
        for (int r = 0; r < ROW_GROUP; r++) {
            total[r][0] = _mm256_add_pd(total[r][0], _mm256_cvtepi32_pd(_mm256_castsi256_si128(sum[r][0])));
            total[r][1] = _mm256_add_pd(total[r][1], _mm256_cvtepi32_pd(_mm256_extracti128_si256(sum[r][0], 1)));
            total[r][2] = _mm256_add_pd(total[r][2], _mm256_cvtepi32_pd(_mm256_castsi256_si128(sum[r][1])));
            total[r][3] = _mm256_add_pd(total[r][3], _mm256_cvtepi32_pd(_mm256_extracti128_si256(sum[r][1], 1)));
        }
    }
    if (float_finish) {
        for (int r = 0; r < ROW_GROUP; r++)
            rz_finish_avx2(a[r], ae[r], b, be, ldb, count, active, chain[r], c_emin, p, acc, total[r], &rz[r]);
        return;
    }
    for (int r = 0; r < ROW_GROUP; r++) {
        double row_sum[LANES];
        for (int v = 0; v < 4; v++)
            _mm256_storeu_pd(row_sum + 4 * v, total[r][v]);
        strip_finish_sse2(a[r], ae[r], b, be, ldb, count, active, chain[r], c_emin, p, acc, row_sum, top[r],
                          general[r], scale_double[r]);
    }
}
#endif

/* ---- operand preparation -------------------------------------------------------- */

/* Alignment exponent of one element: floor(log2|x|) but at least emin; ZERO_EXPONENT for
 * zero, Inf and NaN (those are handled by block_general). */
static inline int16_t element_exponent(float x, int emin)
{
    if (x == 0.0f || !isfinite(x))
        return ZERO_EXPONENT;
    int e = exponent_of_float(x);
    return (int16_t)(e < emin ? emin : e);
}

static void free_operands(operands *ops)
{
    free(ops->a_exponents);
    free(ops->a_special);
    free(ops->b);
    free(ops->b_exponents);
    free(ops->b_special);
    memset(ops, 0, sizeof *ops);
}

static int alloc_operands(operands *ops, int64_t m, int64_t n, int64_t k)
{
    memset(ops, 0, sizeof *ops);
    ops->m = m;
    ops->n = n;
    ops->k = k;
    ops->ldb = LANES;
    ops->padded_n = (n + LANES - 1) / LANES * LANES;
    size_t a_count = (size_t)(m * k > 0 ? m * k : 1);
    size_t b_count = (size_t)(k * ops->padded_n > 0 ? k * ops->padded_n : 1);
    ops->a_exponents = malloc(a_count * sizeof(int16_t));
    ops->a_special = calloc((size_t)(m > 0 ? m : 1), 1);
    ops->b = malloc(b_count * sizeof(float));
    ops->b_exponents = malloc(b_count * sizeof(int16_t));
    ops->b_special = calloc((size_t)(ops->padded_n > 0 ? ops->padded_n : 1), 1);
    if (!ops->a_exponents || !ops->a_special || !ops->b || !ops->b_exponents || !ops->b_special) {
        free_operands(ops);
        return FL_ERROR_OUT_OF_MEMORY;
    }
    return 0;
}

static void prepare_a(operands *ops, const float *a, int emin, int threads)
{
    (void)threads;
    ops->a = a;
    int64_t k = ops->k;
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        fl_floating_point_state state;
        fl_enter_default_floating_point(&state);
#pragma omp for schedule(static)
        for (int64_t i = 0; i < ops->m; i++) {
            unsigned char special = 0;
            for (int64_t q = 0; q < k; q++) {
                ops->a_exponents[i * k + q] = element_exponent(a[i * k + q], emin);
                special |= !isfinite(a[i * k + q]);
            }
            ops->a_special[i] = special;
        }
        fl_leave_default_floating_point(&state);
    }
}

static void prepare_b(operands *ops, const float *b, int emin, int threads)
{
    (void)threads;
    int64_t n = ops->n, padded_n = ops->padded_n;
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        fl_floating_point_state state;
        fl_enter_default_floating_point(&state);
#pragma omp for schedule(static)
        for (int64_t q = 0; q < ops->k; q++) {
            for (int64_t j = 0; j < padded_n; j++) {
                float x = j < n ? b[q * n + j] : 0.0f;
                ops->b[b_offset(ops, q, j)] = x;
                ops->b_exponents[b_offset(ops, q, j)] = element_exponent(x, emin);
            }
        }
        fl_leave_default_floating_point(&state);
    }
    memset(ops->b_special, 0, (size_t)padded_n);
    for (int64_t q = 0; q < ops->k; q++)
        for (int64_t j = 0; j < n; j++)
            ops->b_special[j] |= !isfinite(b[q * n + j]);
}

/* ---- the drivers --------------------------------------------------------------- */

/*
 * One block of one strip for an exact block sum (frac_bits = -1) rounded once to float32 with
 * nearest-even (p->exact_fast, AMD CDNA1): every product of two float32 values is exact in
 * double, and the sum c + p_1 + ... + p_n is accumulated in double with each addition's
 * rounding error found by two-sum (Knuth).  Where every error is zero the double sum is the
 * exact sum, and its conversion to float32 is the one rounding of the model (IEEE nearest-even
 * with subnormals and overflow to Inf, the sign of an exact zero by IEEE 754's rule, as in
 * block_general).  Other lanes (an inexact addition, an Inf or NaN on the way) are redone by
 * block_general.  The same C for every SIMD copy; the compiler vectorises the lane loops.
 */
#define EXACT_STRIP_BODY                                                                                          \
    {                                                                                                             \
        const float *a = ops->a + i * ops->k + k0;                                                                \
        const float *b = ops->b + b_offset(ops, k0, j0);                                                          \
        double sum[LANES];                                                                                        \
        int64_t inexact[LANES];                                                                                   \
        for (int w = 0; w < LANES; w++) {                                                                         \
            sum[w] = chain[w];                                                                                    \
            inexact[w] = 0;                                                                                       \
        }                                                                                                         \
        for (int64_t q = 0; q < count; q++) {                                                                     \
            const double x = a[q];                                                                                \
            const float *row = b + q * LANES;                                                                     \
            for (int w = 0; w < LANES; w++) {                                                                     \
                double product = x * (double)row[w], total = sum[w] + product, back = total - sum[w];           \
                double error = (sum[w] - (total - back)) + (product - back);                                      \
                inexact[w] |= error != 0.0 || error != error; /* NaN: an Inf or NaN was met */                   \
                sum[w] = total;                                                                                   \
            }                                                                                                     \
        }                                                                                                         \
        for (int w = 0; w < LANES; w++)                                                                           \
            sum[w] = inexact[w] ? (double)chain[w] : sum[w];                                                      \
        for (int w = 0; w < active; w++)                                                                          \
            chain[w] = inexact[w] ? (float)block_general(a, b + w, LANES, ops->a_exponents + i * ops->k + k0,     \
                                                         ops->b_exponents + b_offset(ops, k0, j0) + w, count,      \
                                                         sum[w], c_emin, 1, p, acc)                               \
                                  : (float)sum[w];                                                                \
    }

static void exact_strip_block(const operands *ops, int64_t i, int64_t j0, int64_t k0, int64_t count, int active,
                              float chain[LANES], int c_emin, const prepared_model *p, superacc *acc)
EXACT_STRIP_BODY

#ifdef FL_MMA_WIDE_SIMD
/* exact_strip_block with the lane loops in AVX-512: the same double operations lane for lane. */
__attribute__((target("avx512f"))) static void exact_strip_block_avx512(const operands *ops, int64_t i, int64_t j0,
                                                                        int64_t k0, int64_t count, int active,
                                                                        float chain[LANES], int c_emin,
                                                                        const prepared_model *p, superacc *acc)
{
    const float *a = ops->a + i * ops->k + k0;
    const float *b = ops->b + b_offset(ops, k0, j0);
    float before[LANES];
    memcpy(before, chain, sizeof before);
    __m512d sum[2] = {_mm512_cvtps_pd(_mm256_loadu_ps(chain)), _mm512_cvtps_pd(_mm256_loadu_ps(chain + 8))};
    __mmask8 inexact[2] = {0, 0};
    const __m512d zero = _mm512_setzero_pd();
    for (int64_t q = 0; q < count; q++) {
        const __m512d x = _mm512_set1_pd((double)a[q]);
        for (int h = 0; h < 2; h++) {
            const __m512d product = _mm512_mul_pd(x, _mm512_cvtps_pd(_mm256_loadu_ps(b + q * LANES + 8 * h)));
            const __m512d total = _mm512_add_pd(sum[h], product), back = _mm512_sub_pd(total, sum[h]);
            const __m512d error = _mm512_add_pd(_mm512_sub_pd(sum[h], _mm512_sub_pd(total, back)),
                                                _mm512_sub_pd(product, back));
            inexact[h] |= _mm512_cmp_pd_mask(error, zero, _CMP_NEQ_UQ); /* nonzero or NaN */
            sum[h] = total;
        }
    }
    _mm256_storeu_ps(chain, _mm512_cvtpd_ps(sum[0]));
    _mm256_storeu_ps(chain + 8, _mm512_cvtpd_ps(sum[1]));
    unsigned redo = ((unsigned)inexact[0] | ((unsigned)inexact[1] << 8)) & ((1u << active) - 1u);
    for (int w = 0; redo; w++, redo >>= 1)
        if (redo & 1)
            chain[w] = (float)block_general(a, b + w, LANES, ops->a_exponents + i * ops->k + k0,
                                            ops->b_exponents + b_offset(ops, k0, j0) + w, count, before[w], c_emin,
                                            1, p, acc);
}
#endif

/* A nonzero block total below float32's range rounds to a zero of its sign in the cast;
 * under MMA-Sim's rule (positive_zero) that zero result is +0, as chain_step_general makes it. */
static inline float signed_zero_of_model(float value, const prepared_model *p)
{
    return p->model.positive_zero && value == 0.0f ? 0.0f : value;
}

/*
 * The end of one lane of the late-c strips (LATE_STRIP_BODY, LATE_GROUPED_STRIP_BODY): with
 * `units` the lane's product sum in units of 2^(t - F) (an integer, t its largest product
 * exponent or 0 when it has none), the joint exponent J = max(t, c's), the products floored to a
 * multiple of 2^(J - 31) and c to one of 2^(J - 24) (block_late's two floors: power-of-two
 * scalings of integers or float32 values, so exact in double), and their sum, exact within 53
 * bits.  With drop_small_c (the grouped strips) a c below 2^(J - 25) is dropped, as block_late
 * does for grouping.  *redo is set where block_late must decide: a non-finite or subnormal c, or a
 * zero total (whose sign the strips do not decide).
 */
__attribute__((always_inline)) static inline double late_lane_total(float c, double units, int t, int frac_bits,
                                                                    int c_emin, int drop_small_c, int64_t *redo)
{
    uint32_t c_bits;
    memcpy(&c_bits, &c, sizeof c_bits);
    const int field = (int)((c_bits >> 23) & 0xFF), c_nonzero = (c_bits & 0x7FFFFFFFu) != 0;
    const int c_exponent = c_nonzero && field - 127 > c_emin ? field - 127 : c_emin;
    const int joint = t > c_exponent ? t : c_exponent;
    const double products = floor(units * pow2(t - frac_bits + 31 - joint)) * pow2(joint - 31);
    const double addend = drop_small_c && c_exponent < joint - 25
                              ? 0.0
                              : floor((double)c * pow2(24 - joint)) * pow2(joint - 24);
    const double total = products + addend;
    *redo |= (field == 255) | (total == 0.0) | (field == 0 && c_nonzero); /* c subnormal: its exponent */
    return total;
}

/*
 * One block of one strip of c_addition = LATE without grouping (p->late_fast: AMD CDNA3 fp16 and
 * bf16), the steps of block_late lane by lane in double arithmetic, every one exact: the products
 * (exact) scaled by 2^(F - T) and truncated (below 2^(F + 2) <= 2^32, the sum of at most 64 of
 * them below 2^53), the floors to 2^(J - 31) and 2^(J - 24) power-of-two scalings of integers or
 * float32 values, their sum within 53 bits, and its conversion to float32 the one nearest-even
 * rounding (subnormals, overflow to Inf).  Lanes without a nonzero product sum, a zero total,
 * T >= 125 (a product might reach 2^128) or a non-finite c are redone by block_late.
 */
#define LATE_STRIP_BODY                                                                                           \
    {                                                                                                             \
        const float *a = ops->a + i * ops->k + k0;                                                                \
        const int16_t *ae = ops->a_exponents + i * ops->k + k0;                                                   \
        const float *b = ops->b + b_offset(ops, k0, j0);                                                          \
        const int16_t *be = ops->b_exponents + b_offset(ops, k0, j0);                                             \
        const int frac_bits = p->model.frac_bits;                                                                 \
        int16_t largest[LANES];                                                                                   \
        double scale[LANES], sum[LANES], result[LANES];                                                           \
        int64_t redo[LANES];                                                                                      \
        strip_largest(ae, be, LANES, count, largest);                                                             \
        for (int w = 0; w < LANES; w++) {                                                                         \
            int t = largest[w] > NO_TERM_EXPONENT ? largest[w] : 0;                                               \
            redo[w] = largest[w] <= NO_TERM_EXPONENT || largest[w] >= 125;                                        \
            scale[w] = pow2(frac_bits - (t > 125 ? 125 : t));                                                     \
            sum[w] = 0.0;                                                                                         \
        }                                                                                                         \
        for (int64_t q = 0; q < count; q++) {                                                                     \
            const double x = a[q];                                                                                \
            const float *row = b + q * LANES;                                                                     \
            for (int w = 0; w < LANES; w++)                                                                       \
                sum[w] += trunc(x * (double)row[w] * scale[w]);                                                   \
        }                                                                                                         \
        for (int w = 0; w < LANES; w++) {                                                                         \
            int t = largest[w] > NO_TERM_EXPONENT && largest[w] < 125 ? largest[w] : 0;                           \
            result[w] = late_lane_total(chain[w], sum[w], t, frac_bits, c_emin, 0, &redo[w]);                     \
        }                                                                                                         \
        for (int w = 0; w < active; w++)                                                                          \
            chain[w] = redo[w] ? (float)chain_step_general(a, b + w, LANES, ae, be + w, count, chain[w], c_emin, p,  \
                                                           acc)                                                   \
                               : signed_zero_of_model((float)result[w], p);                                      \
    }

static void late_strip_block(const operands *ops, int64_t i, int64_t j0, int64_t k0, int64_t count, int active,
                             float chain[LANES], int c_emin, const prepared_model *p, superacc *acc)
LATE_STRIP_BODY

#ifdef FL_MMA_WIDE_SIMD
__attribute__((target("avx512f"))) static void late_strip_block_avx512(const operands *ops, int64_t i, int64_t j0,
                                                                       int64_t k0, int64_t count, int active,
                                                                       float chain[LANES], int c_emin,
                                                                       const prepared_model *p, superacc *acc)
LATE_STRIP_BODY
#endif

/*
 * One block of one strip of c_addition = LATE with odd/even grouping (p->late_grouped_fast: AMD
 * CDNA3 FP8), the steps of block_late lane by lane in double arithmetic, every one exact:
 *   - group g (g = q mod 2, q counted from the block's start as in block_late) has its own largest
 *     product exponent T_g; each product is scaled by 2^(F - T_g) (exact: a power of two, the
 *     product itself exact) and truncated, |cut| < 2^(F + 2) <= 2^32, and a group's at most 32 cut
 *     products sum exactly in a double (below 2^37);
 *   - the group sum S_g * 2^(T_g - F) rounded down to a multiple of 2^(T - F), T = max(T_0, T_1),
 *     is floor(S_g * 2^(T_g - T)) * 2^(T - F): a power-of-two scaling of an integer, then floor;
 *   - the rest is LATE_STRIP_BODY's: the floors to 2^(J - 31) and 2^(J - 24) (a c below 2^(J - 25)
 *     is dropped, as block_late does for grouping), their exact sum, and its conversion to float32
 *     the one nearest-even rounding.
 * A group without a nonzero product has S_g = 0 whatever its scale (clamped into range here).
 * Lanes without any nonzero product, a zero total, T >= 125 (a product might reach 2^128), a
 * non-finite or a subnormal c are redone by block_late.
 */
#define LATE_GROUPED_STRIP_BODY                                                                                   \
    {                                                                                                             \
        const float *a = ops->a + i * ops->k + k0;                                                                \
        const int16_t *ae = ops->a_exponents + i * ops->k + k0;                                                   \
        const float *b = ops->b + b_offset(ops, k0, j0);                                                          \
        const int16_t *be = ops->b_exponents + b_offset(ops, k0, j0);                                             \
        const int frac_bits = p->model.frac_bits;                                                                 \
        int16_t top_even[LANES], top_odd[LANES];                                                                  \
        double scale_even[LANES], scale_odd[LANES], sum_even[LANES], sum_odd[LANES], result[LANES];              \
        int64_t redo[LANES];                                                                                      \
        for (int w = 0; w < LANES; w++)                                                                           \
            top_even[w] = top_odd[w] = (int16_t)(2 * ZERO_EXPONENT);                                              \
        for (int64_t q = 0; q + 1 < count; q += 2) {                                                              \
            for (int w = 0; w < LANES; w++) {                                                                     \
                int16_t even = (int16_t)(ae[q] + be[q * LANES + w]);                                              \
                int16_t odd = (int16_t)(ae[q + 1] + be[(q + 1) * LANES + w]);                                     \
                top_even[w] = even > top_even[w] ? even : top_even[w];                                            \
                top_odd[w] = odd > top_odd[w] ? odd : top_odd[w];                                                 \
            }                                                                                                     \
        }                                                                                                         \
        if (count & 1)                                                                                            \
            for (int w = 0; w < LANES; w++) {                                                                     \
                int16_t even = (int16_t)(ae[count - 1] + be[(count - 1) * LANES + w]);                            \
                top_even[w] = even > top_even[w] ? even : top_even[w];                                            \
            }                                                                                                     \
        for (int w = 0; w < LANES; w++) {                                                                         \
            int top = top_even[w] > top_odd[w] ? top_even[w] : top_odd[w];                                        \
            redo[w] = top <= NO_TERM_EXPONENT || top >= 125;                                                      \
            int t = top > NO_TERM_EXPONENT && top < 125 ? top : 0;                                                \
            int t_even = top_even[w] > NO_TERM_EXPONENT ? top_even[w] : t;                                        \
            int t_odd = top_odd[w] > NO_TERM_EXPONENT ? top_odd[w] : t;                                           \
            scale_even[w] = pow2(frac_bits - (t_even > 125 ? 125 : t_even));                                      \
            scale_odd[w] = pow2(frac_bits - (t_odd > 125 ? 125 : t_odd));                                         \
            sum_even[w] = sum_odd[w] = 0.0;                                                                       \
        }                                                                                                         \
        for (int64_t q = 0; q + 1 < count; q += 2) {                                                              \
            const double x = a[q], y = a[q + 1];                                                                  \
            const float *row = b + q * LANES, *next = row + LANES;                                                \
            for (int w = 0; w < LANES; w++) {                                                                     \
                sum_even[w] += trunc(x * (double)row[w] * scale_even[w]);                                         \
                sum_odd[w] += trunc(y * (double)next[w] * scale_odd[w]);                                          \
            }                                                                                                     \
        }                                                                                                         \
        if (count & 1) {                                                                                          \
            const double x = a[count - 1];                                                                        \
            const float *row = b + (count - 1) * LANES;                                                           \
            for (int w = 0; w < LANES; w++)                                                                       \
                sum_even[w] += trunc(x * (double)row[w] * scale_even[w]);                                         \
        }                                                                                                         \
        for (int w = 0; w < LANES; w++) {                                                                         \
            int top = top_even[w] > top_odd[w] ? top_even[w] : top_odd[w];                                        \
            int t = top > NO_TERM_EXPONENT && top < 125 ? top : 0;                                                \
            int t_even = top_even[w] > NO_TERM_EXPONENT && top_even[w] < 125 ? top_even[w] : t;                   \
            int t_odd = top_odd[w] > NO_TERM_EXPONENT && top_odd[w] < 125 ? top_odd[w] : t;                       \
            double units = floor(sum_even[w] * pow2(t_even - t)) + floor(sum_odd[w] * pow2(t_odd - t));          \
            result[w] = late_lane_total(chain[w], units, t, frac_bits, c_emin, 1, &redo[w]);                      \
        }                                                                                                         \
        for (int w = 0; w < active; w++)                                                                          \
            chain[w] = redo[w] ? (float)chain_step_general(a, b + w, LANES, ae, be + w, count, chain[w], c_emin, p,  \
                                                           acc)                                                   \
                               : signed_zero_of_model((float)result[w], p);                                      \
    }

static void late_grouped_strip_block(const operands *ops, int64_t i, int64_t j0, int64_t k0, int64_t count,
                                     int active, float chain[LANES], int c_emin, const prepared_model *p,
                                     superacc *acc)
LATE_GROUPED_STRIP_BODY

#ifdef FL_MMA_WIDE_SIMD
__attribute__((target("avx512f"))) static void late_grouped_strip_block_avx512(const operands *ops, int64_t i,
                                                                               int64_t j0, int64_t k0, int64_t count,
                                                                               int active, float chain[LANES],
                                                                               int c_emin, const prepared_model *p,
                                                                               superacc *acc)
LATE_GROUPED_STRIP_BODY
#endif

/* Rows [i0, i1) x columns [j0, j0 + LANES) of D, all of K: the chain, and the promotion. */
static void block_fma_tile(const operands *ops, const float *c, float *d, int64_t i0, int64_t i1, int64_t j0,
                           const prepared_model *p, superacc *acc)
{
    int64_t n = ops->n, k = ops->k, ldb = ops->ldb;
    int active = (int)(j0 + LANES <= n ? LANES : n - j0);
    int promote = p->model.promote_every > 0;
    float promoted[TILE_ROWS][LANES], chain[TILE_ROWS][LANES];
    int fast_tile = p->fast || p->exact_fast || p->late_fast || p->late_grouped_fast;
    for (int64_t i = i0; i < i1; i++)
        fast_tile &= !ops->a_special[i];
    for (int w = 0; w < active; w++)
        fast_tile &= !ops->b_special[j0 + w];
    for (int64_t i = i0; i < i1; i++)
        for (int w = 0; w < LANES; w++)
            promoted[i - i0][w] = c && w < active ? c[i * n + j0 + w] : 0.0f;
    for (int64_t chunk0 = 0; chunk0 < k; chunk0 += p->chunk) {
        int64_t chunk1 = chunk0 + p->chunk < k ? chunk0 + p->chunk : k;
        for (int64_t i = i0; i < i1; i++)
            for (int w = 0; w < LANES; w++)
                chain[i - i0][w] = promote ? 0.0f : promoted[i - i0][w];
        for (int64_t k0 = chunk0; k0 < chunk1; k0 += p->block) {
            int64_t count = k0 + p->block < chunk1 ? p->block : chunk1 - k0;
            /* The first block's c is C (C's format); later ones are block results (out format). */
            int c_emin = (k0 == 0 && !promote) ? p->model.c_emin : p->model.out.emin;
            int64_t first_row = i0;
#ifdef FL_MMA_WIDE_SIMD
            if (fast_tile && p->fast && p->float_products && p->simd == SIMD_AVX512)
                for (; first_row + ROW_GROUP <= i1; first_row += ROW_GROUP)
                    rows_block_avx512(ops, first_row, j0, k0, count, active, chain + (first_row - i0), c_emin, p,
                                      acc);
            if (fast_tile && p->fast && p->float_products && p->simd == SIMD_AVX2)
                for (; first_row + ROW_GROUP <= i1; first_row += ROW_GROUP)
                    rows_block_avx2(ops, first_row, j0, k0, count, active, chain + (first_row - i0), c_emin, p, acc);
#endif
            for (int64_t i = first_row; i < i1; i++) {
                if (fast_tile && p->late_fast) {
#ifdef FL_MMA_WIDE_SIMD
                    if (p->simd == SIMD_AVX512)
                        late_strip_block_avx512(ops, i, j0, k0, count, active, chain[i - i0], c_emin, p, acc);
                    else
#endif
                        late_strip_block(ops, i, j0, k0, count, active, chain[i - i0], c_emin, p, acc);
                    continue;
                }
                if (fast_tile && p->late_grouped_fast) {
#ifdef FL_MMA_WIDE_SIMD
                    if (p->simd == SIMD_AVX512)
                        late_grouped_strip_block_avx512(ops, i, j0, k0, count, active, chain[i - i0], c_emin, p,
                                                        acc);
                    else
#endif
                        late_grouped_strip_block(ops, i, j0, k0, count, active, chain[i - i0], c_emin, p, acc);
                    continue;
                }
                if (fast_tile && p->exact_fast) {
#ifdef FL_MMA_WIDE_SIMD
                    if (p->simd == SIMD_AVX512)
                        exact_strip_block_avx512(ops, i, j0, k0, count, active, chain[i - i0], c_emin, p, acc);
                    else
#endif
                        exact_strip_block(ops, i, j0, k0, count, active, chain[i - i0], c_emin, p, acc);
                    continue;
                }
                if (fast_tile) {
#ifdef FL_MMA_WIDE_SIMD
                    if (p->fast_int32 && p->simd == SIMD_AVX512)
                        strip_block_avx512(ops, i, j0, k0, count, active, chain[i - i0], c_emin, p, acc);
                    else
#endif
#ifdef __SSE2__
                    if (p->fast_int32)
                        strip_block_sse2(ops, i, j0, k0, count, active, chain[i - i0], c_emin, p, acc);
                    else
#endif
                        strip_block(ops, i, j0, k0, count, active, chain[i - i0], c_emin, p, acc);
                    continue;
                }
                const float *a = ops->a + i * k + k0;
                const int16_t *ae = ops->a_exponents + i * k + k0;
                for (int w = 0; w < active; w++) {
                    float *state = &chain[i - i0][w];
                    if (isnan(*state))
                        continue; /* NaN absorbs everything after it */
                    *state = (float)chain_step_general(a, ops->b + b_offset(ops, k0, j0 + w), ldb, ae,
                                                       ops->b_exponents + b_offset(ops, k0, j0 + w), count, *state,
                                                       c_emin, p, acc);
                }
            }
        }
        for (int64_t i = i0; i < i1; i++)
            for (int w = 0; w < active; w++)
                promoted[i - i0][w] =
                    promote ? (float)add_nearest_even(promoted[i - i0][w], chain[i - i0][w], &p->fp32,
                                                      p->fp32_max, canonical_nan(&p->fp32))
                            : chain[i - i0][w];
    }
    /* Every NaN leaves as the canonical one, also a NaN of C that no block touched (K = 0). */
    float nan = (float)(promote ? canonical_nan(&p->fp32) : p->out_nan);
    for (int64_t i = i0; i < i1; i++)
        for (int w = 0; w < active; w++)
            d[i * n + j0 + w] = isnan(promoted[i - i0][w]) ? nan : promoted[i - i0][w];
}

/* x, or a zero of its sign when flushing and x is a float32 subnormal (AMD CDNA2's outputs). */
static inline float flushed(float x, int flush)
{
    return flush && fabsf(x) < 1.17549435e-38f ? x * 0.0f : x;
}

/* Pairwise float32 sums of LANES columns at once (the definition of fp32_pairwise, lane by lane):
 * x holds count rows of LANES values; the sum of rows [0, count) is the sum of [0, count / 2) plus
 * that of [count / 2, count), each addition rounded to float32 (and flushed when asked).  Every lane
 * does the same additions in the same order, so no lane depends on another. */
static void pairwise_sum_strip(const float *x, int64_t count, int flush, float out[LANES])
{
    if (count == 1) {
        memcpy(out, x, LANES * sizeof(float));
        return;
    }
    if (count == 2) {
        for (int w = 0; w < LANES; w++)
            out[w] = flushed(x[w] + x[LANES + w], flush);
        return;
    }
    int64_t half = count / 2;
    float left[LANES], right[LANES];
    pairwise_sum_strip(x, half, flush, left);
    pairwise_sum_strip(x + half * LANES, count - half, flush, right);
    for (int w = 0; w < LANES; w++)
        out[w] = flushed(left[w] + right[w], flush);
}

/* Pairwise summation for the outputs (i, j0 .. j0 + active) of one strip: products rounded to
 * float32; for each block (all of K when block = 0) in increasing k, c = c + the pairwise sum of the
 * block's products.  scratch holds k * LANES floats. */
static void pairwise_strip(const operands *ops, int64_t i, int64_t j0, int active, const float *c, float *d,
                           float *scratch, const prepared_model *p)
{
    const int64_t k = ops->k;
    const float *a = ops->a + i * k, *b = ops->b + b_offset(ops, 0, j0);
    const int flush = p->model.flush_outputs;
    for (int64_t q = 0; q < k; q++) /* one rounding: the double product is exact */
        for (int w = 0; w < LANES; w++)
            scratch[q * LANES + w] = flushed((float)((double)a[q] * b[q * ops->ldb + w]), flush);
    int64_t block = p->model.block > 0 ? p->model.block : (k > 0 ? k : 1);
    float sum[LANES], part[LANES];
    for (int w = 0; w < LANES; w++)
        sum[w] = c && w < active ? c[w] : 0.0f;
    for (int64_t k0 = 0; k0 < k; k0 += block) {
        pairwise_sum_strip(scratch + k0 * LANES, k0 + block < k ? block : k - k0, flush, part);
        for (int w = 0; w < LANES; w++)
            sum[w] = flushed(sum[w] + part[w], flush);
    }
    for (int w = 0; w < active; w++) {
        float value = sum[w];
        if (p->model.positive_zero && value == 0.0f)
            value = 0.0f;
        d[w] = isnan(value) ? (float)p->out_nan : value;
    }
}

int fl_mma_matmul_f32(const float *a, const float *b, const float *c, float *d,
                      int64_t batch, int64_t m, int64_t n, int64_t k,
                      const int64_t *a_offsets, const int64_t *b_offsets, const int64_t *c_offsets,
                      const fl_mma_model *model)
{
    if (batch < 0 || m < 0 || n < 0 || k < 0 || k > (1LL << 31))
        return FL_ERROR_MMA_MODEL;
    prepared_model p;
    if (prepare_model(model, k, &p))
        return FL_ERROR_MMA_MODEL;
    if (model->summation == FL_MMA_SUM_PAIRWISE &&
        (model->out.man_bits != 23 || model->out.emin != -126 || model->out.emax != 127 || !p.nearest_even))
        return FL_ERROR_MMA_MODEL; /* pairwise is defined for float32 nearest-even only */
    operands ops;
    if (alloc_operands(&ops, m, n, k))
        return FL_ERROR_OUT_OF_MEMORY;
    double work = (double)m * (double)n * (double)(k > 0 ? k : 1);
    int threads = work >= PARALLEL_THRESHOLD ? fl_max_threads() : 1;
    (void)threads; /* used only by the OpenMP pragmas */
    int64_t tiles_m = (m + TILE_ROWS - 1) / TILE_ROWS, tiles_n = ops.padded_n / LANES;
    int status = 0;
    for (int64_t t = 0; t < batch && !status; t++) {
        /* Broadcast batches repeat an operand: prepare it only when it changes. */
        if (t == 0 || a_offsets[t] != a_offsets[t - 1])
            prepare_a(&ops, a + a_offsets[t], model->a.emin, threads);
        if (t == 0 || b_offsets[t] != b_offsets[t - 1])
            prepare_b(&ops, b + b_offsets[t], model->b.emin, threads);
        const float *ct = c ? c + c_offsets[t] : NULL;
        float *dt = d + t * m * n;
        if (model->summation == FL_MMA_SUM_PAIRWISE) {
#pragma omp parallel num_threads(threads) if (threads > 1)
            {
                fl_floating_point_state state;
                fl_enter_default_floating_point(&state);
                float *scratch = malloc((size_t)(k > 0 ? k : 1) * LANES * sizeof(float));
                if (!scratch) {
#pragma omp atomic write
                    status = -2;
                }
#pragma omp for schedule(static)
                for (int64_t i = 0; i < m; i++)
                    for (int64_t j0 = 0; j0 < n && scratch; j0 += LANES)
                        pairwise_strip(&ops, i, j0, (int)(j0 + LANES <= n ? LANES : n - j0), ct ? ct + i * n + j0 : NULL,
                                       dt + i * n + j0, scratch, &p);
                free(scratch);
                fl_leave_default_floating_point(&state);
            }
            continue;
        }
#pragma omp parallel num_threads(threads) if (threads > 1)
        {
            superacc acc;
            fl_floating_point_state state;
            fl_enter_default_floating_point(&state);
#pragma omp for schedule(dynamic, 1)
            for (int64_t tile = 0; tile < tiles_m * tiles_n; tile++) {
                int64_t i0 = (tile / tiles_n) * TILE_ROWS, j0 = (tile % tiles_n) * LANES;
                int64_t i1 = i0 + TILE_ROWS < m ? i0 + TILE_ROWS : m;
                block_fma_tile(&ops, ct, dt, i0, i1, j0, &p, &acc);
            }
            fl_leave_default_floating_point(&state);
        }
    }
    free_operands(&ops);
    return status;
}
