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

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* Exponent given to zero (and non-finite) inputs: the sum of two stays far below any real
 * product exponent (>= -300) and still fits in int16_t, so it never wins the maximum. */
#define ZERO_EXPONENT (-16000)
/* A block whose largest exponent is below this has no nonzero term. */
#define NO_TERM_EXPONENT (-2000)
/* Output elements per tile side: a tile's state and its rows of A and B stay in cache. */
#define TILE 16
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
    int fast_int32;          /* 1: the products of a block also sum exactly in int32 */
    int fma_equivalent;      /* 1: a block of one product is one float32 fused multiply-add */
} prepared_model;

static int valid_format(const fl_mma_format *format)
{
    return format->man_bits >= 0 && format->man_bits <= 23 && format->emin <= format->emax &&
           format->emin - format->man_bits >= -149 && format->emax <= 127;
}

static int prepare_model(const fl_mma_model *model, int64_t k, prepared_model *p)
{
    if (!valid_format(&model->out) || model->block < 0 || model->frac_bits < -1 ||
        model->frac_bits > 200 || model->promote_every < 0 ||
        (model->out_rounding != FL_ROUND_TOWARD_ZERO && model->out_rounding != FL_ROUND_NEAREST_EVEN) ||
        model->acc_frac_bits < -1 || model->acc_frac_bits > 23 ||
        (model->use_exp_floor && (model->exp_floor < -400 || model->exp_floor > 400)) ||
        (model->c_addition != FL_MMA_C_FUSED && model->c_addition != FL_MMA_C_SEPARATE) ||
        (model->summation != FL_MMA_SUM_BLOCK_FMA && model->summation != FL_MMA_SUM_PAIRWISE) ||
        model->a_emin < -149 || model->b_emin < -149 || model->c_emin < -149)
        return -1;
    if (model->promote_every > 0 && model->block > 0 && model->promote_every % model->block != 0)
        return -1;
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
        p->fast = bound <= pow2(53);
        /* Each cut product is at most 2^(F+2) - 1; block of them must stay below 2^31. */
        p->fast_int32 = model->frac_bits <= 28 &&
                        (double)p->block * (pow2(model->frac_bits + 2) - 1.0) <= 2147483647.0;
    }
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

/* ---- one block -------------------------------------------------------------- */

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

/* The rounding every block result gets: to the output format, then the accumulator cut. */
static inline double round_block_result(double x, const prepared_model *p)
{
    double result = round_to_format(x, &p->model.out, p->out_max, p->nearest_even);
    if (p->acc.man_bits < p->model.out.man_bits && isfinite(result))
        result = round_to_format(result, &p->acc, p->acc_max, 0);
    return result;
}

/*
 * One block by the definition, for any parameters and any values: a[k] * b[k] for
 * k < n, plus c when include_c.  ae/be are the alignment exponents of a and b.
 */
static double block_general(const double *a, const double *b, const int16_t *ae, const int16_t *be,
                            int64_t n, double c, int c_emin, int include_c, const prepared_model *p,
                            superacc *acc)
{
    const fl_mma_model *model = &p->model;
    if (p->fma_equivalent && n == 1 && include_c) {
        /* One product plus c, rounded once to float32 nearest-even: exactly fmaf. */
        double result = (double)fmaf((float)a[0], (float)b[0], (float)c);
        return isnan(result) ? p->out_nan : result;
    }
    /* Special values (§1.7): any NaN or Inf * 0 gives NaN, Inf - Inf gives NaN. */
    int any_nan = include_c && isnan(c);
    int positive_inf = include_c && c == INFINITY;
    int negative_inf = include_c && c == -INFINITY;
    int all_negative_zero = !include_c || (c == 0.0 && signbit(c));
    int largest = ZERO_EXPONENT;
    for (int64_t i = 0; i < n; i++) {
        double x = a[i], y = b[i];
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
            int e = ae[i] + be[i];
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
    for (int64_t i = 0; i < n; i++) {
        double product = a[i] * b[i]; /* exact: at most 48 significant bits */
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

/* Cut products of one block, summed in int32: exact when p->fast_int32 (see prepare_model). */
static inline int32_t cut_products_int32(const double *restrict a, const double *restrict b, int64_t n,
                                         double scale)
{
    int32_t sum = 0;
    for (int64_t i = 0; i < n; i++)
        sum += (int32_t)(a[i] * b[i] * scale);
    return sum;
}

/* The same summed in int64 (wider F or longer blocks; still exact when p->fast). */
static inline int64_t cut_products_int64(const double *restrict a, const double *restrict b, int64_t n,
                                         double scale)
{
    int64_t sum = 0;
    for (int64_t i = 0; i < n; i++)
        sum += (int64_t)(a[i] * b[i] * scale);
    return sum;
}

static inline int largest_product_exponent(const int16_t *restrict ae, const int16_t *restrict be, int64_t n)
{
    int16_t largest = (int16_t)(2 * ZERO_EXPONENT);
    for (int64_t i = 0; i < n; i++) {
        int16_t e = (int16_t)(ae[i] + be[i]);
        largest = e > largest ? e : largest;
    }
    return largest;
}

/*
 * One block on the fast path (finite inputs, p->fast).  Returns 0 and the result, or 1
 * when the block needs block_general: a zero result (its sign needs the terms' signs)
 * or a non-finite c.
 */
static inline int block_fast(const double *a, const double *b, const int16_t *ae, const int16_t *be,
                             int64_t n, double c, int c_emin, int include_c, const prepared_model *p,
                             double *result)
{
    if (include_c && !isfinite(c))
        return 1;
    int largest = largest_product_exponent(ae, be, n);
    if (include_c && c != 0.0) {
        int e = alignment_exponent(c, c_emin);
        if (e > largest)
            largest = e;
    }
    if (largest <= NO_TERM_EXPONENT)
        return 1;
    if (p->model.use_exp_floor && largest < p->model.exp_floor)
        largest = p->model.exp_floor;
    int frac_bits = p->model.frac_bits;
    double scale = pow2(frac_bits - largest);
    double sum = p->fast_int32 ? (double)cut_products_int32(a, b, n, scale)
                               : (double)cut_products_int64(a, b, n, scale);
    if (include_c)
        sum += (double)(int64_t)(c * scale);
    if (sum == 0.0)
        return 1;
    *result = round_block_result(sum * pow2(largest - frac_bits), p);
    return 0;
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

/* ---- prepared operands ------------------------------------------------------- */
/*
 * A as rows of doubles with their alignment exponents, B transposed the same way, so that
 * a block of products reads two contiguous runs.  `special` marks rows holding Inf or NaN.
 */
typedef struct prepared_operand {
    double *values;
    int16_t *exponents;
    unsigned char *special;
} prepared_operand;

static void free_operand(prepared_operand *operand)
{
    free(operand->values);
    free(operand->exponents);
    free(operand->special);
    operand->values = NULL;
    operand->exponents = NULL;
    operand->special = NULL;
}

static int alloc_operand(prepared_operand *operand, int64_t rows, int64_t cols)
{
    size_t count = (size_t)(rows * cols > 0 ? rows * cols : 1);
    operand->values = malloc(count * sizeof(double));
    operand->exponents = malloc(count * sizeof(int16_t));
    operand->special = calloc((size_t)(rows > 0 ? rows : 1), 1);
    if (!operand->values || !operand->exponents || !operand->special) {
        free_operand(operand);
        return -2;
    }
    return 0;
}

/* Row r, column q of the source is source[r * row_stride + q * col_stride]. */
static void prepare_operand(const float *source, int64_t rows, int64_t cols, int64_t row_stride,
                            int64_t col_stride, int emin, int threads, prepared_operand *operand)
{
    (void)threads;
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
    for (int64_t r = 0; r < rows; r++) {
        unsigned char special = 0;
        for (int64_t q = 0; q < cols; q++) {
            float x = source[r * row_stride + q * col_stride];
            int64_t index = r * cols + q;
            operand->values[index] = (double)x;
            if (isfinite(x) && x != 0.0f) {
                int e = exponent_of_float(x);
                operand->exponents[index] = (int16_t)(e < emin ? emin : e);
            } else {
                operand->exponents[index] = ZERO_EXPONENT;
                special |= !isfinite(x);
            }
        }
        operand->special[r] = special;
    }
}

/* ---- the drivers --------------------------------------------------------------- */

/* One chain step: the block [k0, k0 + n) of output (i, j), from the running c. */
static inline double chain_step(const prepared_operand *pa, const prepared_operand *pb, int64_t i, int64_t j,
                                int64_t k, int64_t k0, int64_t n, double c, int c_emin, int fast,
                                const prepared_model *p, superacc *acc)
{
    const double *a = pa->values + i * k + k0, *b = pb->values + j * k + k0;
    const int16_t *ae = pa->exponents + i * k + k0, *be = pb->exponents + j * k + k0;
    if (p->model.c_addition == FL_MMA_C_FUSED) {
        double result;
        if (fast && !block_fast(a, b, ae, be, n, c, c_emin, 1, p, &result))
            return result;
        return block_general(a, b, ae, be, n, c, c_emin, 1, p, acc);
    }
    double products;
    if (!(fast && !block_fast(a, b, ae, be, n, 0.0, c_emin, 0, p, &products)))
        products = block_general(a, b, ae, be, n, 0.0, c_emin, 0, p, acc);
    return add_nearest_even(c, products, &p->model.out, p->out_max, p->out_nan);
}

/* One tile of outputs, all of K: the chain (and the promotion) for each element. */
static void block_fma_tile(const prepared_operand *pa, const prepared_operand *pb, const float *c, float *d,
                           int64_t n, int64_t k, int64_t i0, int64_t i1, int64_t j0, int64_t j1,
                           const prepared_model *p, superacc *acc)
{
    double promoted[TILE][TILE], chain[TILE][TILE];
    int promote = p->model.promote_every > 0;
    for (int64_t i = i0; i < i1; i++)
        for (int64_t j = j0; j < j1; j++)
            promoted[i - i0][j - j0] = c ? (double)c[i * n + j] : 0.0;
    for (int64_t chunk0 = 0; chunk0 < k; chunk0 += p->chunk) {
        int64_t chunk1 = chunk0 + p->chunk < k ? chunk0 + p->chunk : k;
        for (int64_t i = i0; i < i1; i++)
            for (int64_t j = j0; j < j1; j++)
                chain[i - i0][j - j0] = promote ? 0.0 : promoted[i - i0][j - j0];
        for (int64_t k0 = chunk0; k0 < chunk1; k0 += p->block) {
            int64_t count = k0 + p->block < chunk1 ? p->block : chunk1 - k0;
            /* The first block's c is C (C's format); later ones are block results (out format). */
            int c_emin = (k0 == 0 && !promote) ? p->model.c_emin : p->model.out.emin;
            for (int64_t i = i0; i < i1; i++) {
                for (int64_t j = j0; j < j1; j++) {
                    double *state = &chain[i - i0][j - j0];
                    if (isnan(*state))
                        continue; /* NaN absorbs everything after it */
                    int fast = p->fast && !pa->special[i] && !pb->special[j];
                    *state = chain_step(pa, pb, i, j, k, k0, count, *state, c_emin, fast, p, acc);
                }
            }
        }
        for (int64_t i = i0; i < i1; i++)
            for (int64_t j = j0; j < j1; j++)
                promoted[i - i0][j - j0] =
                    promote ? add_nearest_even(promoted[i - i0][j - j0], chain[i - i0][j - j0], &p->fp32,
                                               p->fp32_max, canonical_nan(&p->fp32))
                            : chain[i - i0][j - j0];
    }
    for (int64_t i = i0; i < i1; i++)
        for (int64_t j = j0; j < j1; j++)
            d[i * n + j] = (float)promoted[i - i0][j - j0];
}

/* Pairwise float32 sum of x[0..count), splitting at count / 2 (the definition of fp32_pairwise). */
static float pairwise_sum(const float *x, int64_t count)
{
    if (count == 1)
        return x[0];
    int64_t half = count / 2;
    return pairwise_sum(x, half) + pairwise_sum(x + half, count - half);
}

/* fp32_pairwise for one output: products rounded to float32, summed pairwise, then + c. */
static double pairwise_element(const prepared_operand *pa, const prepared_operand *pb, int64_t i, int64_t j,
                               int64_t k, double c, float *scratch, const prepared_model *p)
{
    const double *a = pa->values + i * k, *b = pb->values + j * k;
    for (int64_t q = 0; q < k; q++)
        scratch[q] = (float)(a[q] * b[q]); /* one rounding: the double product is exact */
    float sum = k > 0 ? pairwise_sum(scratch, k) + (float)c : (float)c;
    return isnan(sum) ? p->out_nan : (double)sum;
}

int fl_mma_matmul_f32(const float *a, const float *b, const float *c, float *d,
                      int64_t batch, int64_t m, int64_t n, int64_t k,
                      const int64_t *a_offsets, const int64_t *b_offsets, const int64_t *c_offsets,
                      const fl_mma_model *model)
{
    if (batch < 0 || m < 0 || n < 0 || k < 0 || k > (1LL << 31))
        return -1;
    prepared_model p;
    if (prepare_model(model, k, &p))
        return -1;
    if (model->summation == FL_MMA_SUM_PAIRWISE &&
        (model->out.man_bits != 23 || model->out.emin != -126 || model->out.emax != 127 || !p.nearest_even))
        return -1; /* pairwise is defined for float32 nearest-even only */
    prepared_operand pa = {NULL, NULL, NULL}, pb = {NULL, NULL, NULL};
    if (alloc_operand(&pa, m, k) || alloc_operand(&pb, n, k)) {
        free_operand(&pa);
        free_operand(&pb);
        return -2;
    }
    double work = (double)m * (double)n * (double)(k > 0 ? k : 1);
    int threads = work >= PARALLEL_THRESHOLD ? fl_max_threads() : 1;
    (void)threads; /* used only by the OpenMP pragmas */
    int64_t tiles_m = (m + TILE - 1) / TILE, tiles_n = (n + TILE - 1) / TILE;
    int status = 0;
    for (int64_t t = 0; t < batch && !status; t++) {
        /* Broadcast batches repeat an operand: prepare it only when it changes. */
        if (t == 0 || a_offsets[t] != a_offsets[t - 1])
            prepare_operand(a + a_offsets[t], m, k, k, 1, model->a_emin, threads, &pa);
        if (t == 0 || b_offsets[t] != b_offsets[t - 1])
            prepare_operand(b + b_offsets[t], n, k, 1, n, model->b_emin, threads, &pb);
        const float *ct = c ? c + c_offsets[t] : NULL;
        float *dt = d + t * m * n;
        if (model->summation == FL_MMA_SUM_PAIRWISE) {
#pragma omp parallel num_threads(threads) if (threads > 1)
            {
                float *scratch = malloc((size_t)(k > 0 ? k : 1) * sizeof(float));
                if (!scratch) {
#pragma omp atomic write
                    status = -2;
                }
#pragma omp for schedule(static)
                for (int64_t i = 0; i < m; i++)
                    for (int64_t j = 0; j < n && scratch; j++)
                        dt[i * n + j] = (float)pairwise_element(&pa, &pb, i, j, k,
                                                                ct ? (double)ct[i * n + j] : 0.0, scratch, &p);
                free(scratch);
            }
            continue;
        }
#pragma omp parallel num_threads(threads) if (threads > 1)
        {
            superacc acc;
#pragma omp for schedule(dynamic, 1)
            for (int64_t tile = 0; tile < tiles_m * tiles_n; tile++) {
                int64_t i0 = (tile / tiles_n) * TILE, j0 = (tile % tiles_n) * TILE;
                int64_t i1 = i0 + TILE < m ? i0 + TILE : m, j1 = j0 + TILE < n ? j0 + TILE : n;
                block_fma_tile(&pa, &pb, ct, dt, n, k, i0, i1, j0, j1, &p, &acc);
            }
        }
    }
    free_operand(&pa);
    free_operand(&pb);
    return status;
}
