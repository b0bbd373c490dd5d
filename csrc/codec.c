/*
 * codec.c - element-wise encode, decode and quantize for any fl_format.
 *
 * Every input is taken as its exact value: a float32 is widened to double (exact),
 * then split into an integer significand S and a power of two, S * 2^k.  Rounding
 * happens once, in integer arithmetic, on the grid of the format's binade:
 *
 *   |x| = (N + nu) * 2^q,   N an integer, 0 <= nu < 1,
 *
 * where 2^q is the spacing of the format's values around |x|.  The two neighbours
 * are lo = N * 2^q and hi = (N + 1) * 2^q, and their magnitude codes are consecutive
 * integers (lo_code, lo_code + 1), because a format's magnitude codes are ordered
 * like its values.  The exponent range is treated as unbounded above while
 * rounding, so overflow is a plain comparison of the chosen code with max_code.
 * The one place where the spacing is not a power of two is the gap that the Tesla
 * subnormal formula leaves between the largest subnormal and min_normal; it has
 * its own small routine.
 */
#include "fmtlab.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

static int requested_threads = 0;

int fl_max_threads(void)
{
#ifdef _OPENMP
    return requested_threads > 0 ? requested_threads : omp_get_max_threads();
#else
    return 1;
#endif
}

void fl_set_threads(int threads) { requested_threads = threads > 0 ? threads : 0; }

/* Below this many elements a parallel region costs more than it saves. */
#define PARALLEL_THRESHOLD 32768

/* ---- the format, prepared once per call ---------------------------------- */

typedef struct prepared_format {
    int man_bits;
    int bias;
    int emin;                 /* 1 - bias */
    int is_signed;
    int specials;
    int subnormals;
    int64_t max_code;         /* magnitude code of the largest finite value */
    uint32_t sign_bit;        /* 0 for unsigned formats */
    uint32_t magnitude_mask;
    uint32_t exponent_all_ones;
    uint32_t nan_magnitude;   /* canonical NaN code without its sign */
    int has_negative_zero;
    double subnormal_scale;   /* value of the subnormal code 1 */
    double tesla_max_subnormal;
    double min_normal;
    /* float32 fast path: inputs whose bits lie in [fast_lo, fast_hi] are normal in both
     * float32 and the format, so rounding is an integer add and shift on the bits. */
    int fast_shift;           /* 23 - man_bits; the fast path is off when it is <= 0 */
    int64_t fast_rebias;      /* float32 (E, M) code minus format code: (127 - bias) << m */
    uint32_t fast_lo, fast_hi;
    int fast_enabled;
    uint32_t fast_no_overflow_hi; /* float32 bits of max: inputs up to it cannot overflow */
    /* float32 inputs whose magnitude bits are below these round to zero in the nearest
     * modes / toward zero (0: no such shortcut); see prepare_format */
    uint32_t fast_zero_below_nearest, fast_zero_below_toward_zero;
    /* ieee subnormal results: |x| * 2^(m - emin) = code + fraction, scaled in two exact
     * float32 steps (one factor may not be representable); 0 = not on the fast path */
    int fast_subnormals;
    float fast_subnormal_scale_1, fast_subnormal_scale_2;
} prepared_format;

static int prepare_format(const fl_format *format, prepared_format *p)
{
    int e = format->exp_bits, m = format->man_bits;
    if (e < 1 || m < 0 || e + m + (format->is_signed ? 1 : 0) > 32 || format->specials < 0 ||
        format->specials > 3 || format->subnormals < 0 || format->subnormals > 2)
        return FL_ERROR_FORMAT;
    if (format->specials == FL_SPECIALS_IEEE && (m == 0 || e < 2))
        return FL_ERROR_FORMAT;
    memset(p, 0, sizeof *p);
    p->man_bits = m;
    p->bias = format->bias;
    p->emin = 1 - format->bias;
    p->is_signed = format->is_signed ? 1 : 0;
    p->specials = format->specials;
    p->subnormals = format->subnormals;
    p->magnitude_mask = (uint32_t)((1ULL << (e + m)) - 1);
    p->exponent_all_ones = (uint32_t)((1ULL << e) - 1);
    p->sign_bit = p->is_signed ? (uint32_t)(1ULL << (e + m)) : 0;
    switch (p->specials) {
    case FL_SPECIALS_IEEE:
        p->max_code = ((int64_t)p->exponent_all_ones << m) - 1;
        p->nan_magnitude = (p->exponent_all_ones << m) | (1u << (m - 1));
        break;
    case FL_SPECIALS_FN:
        p->max_code = (int64_t)p->magnitude_mask - 1;
        p->nan_magnitude = p->magnitude_mask;
        break;
    case FL_SPECIALS_FNUZ:
        p->max_code = p->magnitude_mask;
        p->nan_magnitude = 0; /* with the sign bit: the negative-zero code */
        break;
    default:
        p->max_code = p->magnitude_mask;
        p->nan_magnitude = 0;
        break;
    }
    p->has_negative_zero = p->is_signed && p->specials != FL_SPECIALS_FNUZ;
    p->min_normal = ldexp(1.0, p->emin);
    if (p->subnormals == FL_SUBNORMALS_TESLA) {
        p->subnormal_scale = ldexp(1.0, -p->bias - m);
        p->tesla_max_subnormal = ldexp((double)((1ULL << m) - 1), -p->bias - m);
    } else {
        p->subnormal_scale = ldexp(1.0, p->emin - m);
    }
    p->fast_shift = 23 - m;
    p->fast_rebias = (int64_t)(127 - p->bias) * ((int64_t)1 << m);
    if (p->fast_shift > 0 && p->fast_shift < 32 && p->emin <= 127) {
        int low_exponent = p->emin > -126 ? p->emin : -126;
        p->fast_lo = (uint32_t)(low_exponent + 127) << 23;
        p->fast_hi = 0x7F7FFFFFu;
        p->fast_enabled = 1;
        /* the largest finite value, as float32 bits (every float32 when max exceeds FLT_MAX) */
        int max_exponent = (int)((p->max_code >> m) - p->bias);
        if (max_exponent > 127) {
            p->fast_no_overflow_hi = 0x7F7FFFFFu;
        } else {
            uint32_t max_mantissa = (uint32_t)(p->max_code & ((1 << m) - 1));
            p->fast_no_overflow_hi = ((uint32_t)(max_exponent + 127) << 23) | (max_mantissa << p->fast_shift);
        }
    }
    /* Below half the smallest positive value every nearest mode gives zero, and below the
     * smallest positive value toward_zero does (strictly below: a tie at half goes to zero
     * only under nearest_even, so the nearest threshold is exclusive of it).  Formats that
     * flush (subnormals = none) keep the generic path, whose flush is exact. */
    if (p->fast_enabled && p->subnormals == FL_SUBNORMALS_IEEE && p->emin >= -126 && m >= 1) {
        int scale_exponent = m - p->emin;
        int first = scale_exponent > 100 ? 100 : scale_exponent;
        p->fast_subnormals = 1;
        p->fast_subnormal_scale_1 = ldexpf(1.0f, first);
        p->fast_subnormal_scale_2 = ldexpf(1.0f, scale_exponent - first);
    }
    if (p->subnormals != FL_SUBNORMALS_NONE) {
        int smallest_exponent = p->subnormals == FL_SUBNORMALS_TESLA ? -p->bias - m : p->emin - m;
        if (m == 0)
            smallest_exponent = p->emin;
        if (smallest_exponent - 1 >= -149 && smallest_exponent <= 127) {
            float half_smallest = ldexpf(1.0f, smallest_exponent - 1), smallest = ldexpf(1.0f, smallest_exponent);
            memcpy(&p->fast_zero_below_nearest, &half_smallest, sizeof half_smallest);
            memcpy(&p->fast_zero_below_toward_zero, &smallest, sizeof smallest);
        }
    }
    return 0;
}

static int check_rounding(const fl_rounding *rounding)
{
    if (rounding->mode < FL_ROUND_NEAREST_EVEN || rounding->mode > FL_ROUND_STOCHASTIC)
        return FL_ERROR_ROUNDING_MODE;
    if (rounding->sr_bits < 0 || rounding->sr_bits > 32)
        return FL_ERROR_SR_BITS;
    return 0;
}

/* ---- the counter-based generator is fmtlab.h's fl_random_word_inline ---- */

static inline int stochastic_away(uint64_t remainder, int64_t shift, int sr_bits, uint64_t seed,
                                  uint64_t index)
{
    if (sr_bits > 0) {
        uint64_t scaled; /* floor(nu * 2^N) */
        if (shift <= sr_bits)
            scaled = remainder << (sr_bits - shift);
        else if (shift - sr_bits >= 64)
            scaled = 0;
        else
            scaled = remainder >> (shift - sr_bits);
        uint64_t random_bits = fl_random_word_inline(seed, index, 0) >> (64 - sr_bits);
        return scaled + random_bits >= (1ULL << sr_bits);
    }
    for (uint64_t draw = 0;; draw++) {
        uint64_t random_bits = fl_random_word_inline(seed, index, draw);
        if (shift <= 64) {
            uint64_t threshold = shift == 64 ? remainder : remainder << (64 - shift);
            return random_bits < threshold;
        }
        uint64_t top = shift - 64 >= 64 ? 0 : remainder >> (shift - 64);
        if (random_bits != top)
            return random_bits < top;
        /* The first 64 bits tie: compare the next 64 bits of U and of nu. */
        if (shift - 64 < 64)
            remainder &= (1ULL << (shift - 64)) - 1;
        shift -= 64;
    }
}

/* floor(a * 2^bits / gap) for 0 <= a < gap, exact: an estimate corrected with fma,
 * whose single rounding keeps the sign of t * gap - a * 2^bits. */
static inline uint64_t scaled_fraction_floor(double a, double gap, int bits)
{
    double target = ldexp(a, bits);
    double t = floor(target / gap);
    while (t > 0 && fma(t, gap, -target) > 0)
        t -= 1;
    while (fma(t + 1, gap, -target) <= 0)
        t += 1;
    return (uint64_t)t;
}

/* ---- encode one value -------------------------------------------------------*/

typedef struct local_stats {
    int64_t invalid, overflow, underflow, denormal, inexact;
} local_stats;

static inline uint32_t nan_code(const prepared_format *p, int negative)
{
    if (p->specials == FL_SPECIALS_FNUZ)
        return p->sign_bit;
    return p->nan_magnitude | (negative ? p->sign_bit : 0);
}

static inline uint32_t zero_code(const prepared_format *p, int negative)
{
    return (negative && p->has_negative_zero) ? p->sign_bit : 0;
}

static inline uint32_t encode_one(double x, const prepared_format *p, const fl_rounding *rounding,
                                  uint64_t index, local_stats *stats)
{
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    int negative = (int)(bits >> 63);
    uint64_t magnitude_bits = bits & 0x7FFFFFFFFFFFFFFFULL;
    uint32_t sign = p->sign_bit & (0u - (uint32_t)negative);

    if (magnitude_bits > 0x7FF0000000000000ULL) { /* NaN */
        stats->invalid++;
        if (p->specials == FL_SPECIALS_FINITE)
            return (uint32_t)p->max_code; /* a NaN's sign means nothing: +max */
        return nan_code(p, negative && p->is_signed);
    }
    if (negative && !p->is_signed && magnitude_bits != 0) {
        stats->invalid++;
        return p->specials == FL_SPECIALS_FINITE ? 0u : nan_code(p, 0);
    }
    if (magnitude_bits == 0x7FF0000000000000ULL) { /* +-Inf */
        if (p->specials == FL_SPECIALS_IEEE)
            return sign | (p->exponent_all_ones << p->man_bits);
        stats->overflow++;
        if (p->specials == FL_SPECIALS_FINITE || rounding->saturate)
            return sign | (uint32_t)p->max_code;
        return nan_code(p, negative);
    }
    if (magnitude_bits == 0)
        return zero_code(p, negative);

    /* |x| = significand * 2^lsb_exponent; exponent = floor(log2 |x|). */
    int raw_exponent = (int)(magnitude_bits >> 52);
    uint64_t significand;
    int lsb_exponent, exponent;
    if (raw_exponent == 0) {
        significand = magnitude_bits;
        lsb_exponent = -1074;
        exponent = 63 - __builtin_clzll(significand) - 1074;
    } else {
        significand = (magnitude_bits & 0x000FFFFFFFFFFFFFULL) | 0x0010000000000000ULL;
        lsb_exponent = raw_exponent - 1075;
        exponent = raw_exponent - 1023;
    }

    const int m = p->man_bits;
    const int mode = rounding->mode;
    if (exponent < p->emin && p->subnormals == FL_SUBNORMALS_NONE) {
        stats->underflow++;
        stats->inexact++;
        return zero_code(p, negative);
    }

    int64_t lo_code;
    int away = 0, inexact = 0;
    if (exponent < p->emin && p->subnormals == FL_SUBNORMALS_TESLA && x * (negative ? -1.0 : 1.0) >= p->tesla_max_subnormal) {
        /* The Tesla gap: lo = largest subnormal, hi = min_normal, spacing not a power of two. */
        double absolute = negative ? -x : x;
        double distance = absolute - p->tesla_max_subnormal; /* exact: both lie within a factor 2 */
        double gap = p->min_normal - p->tesla_max_subnormal;
        lo_code = ((int64_t)1 << m) - 1;
        inexact = distance != 0;
        if (inexact) {
            switch (mode) {
            case FL_ROUND_NEAREST_EVEN:
                away = 2 * distance > gap || (2 * distance == gap && (lo_code & 1));
                break;
            case FL_ROUND_NEAREST_AWAY: away = 2 * distance >= gap; break;
            case FL_ROUND_TOWARD_ZERO: away = 0; break;
            case FL_ROUND_UP: away = !negative; break;
            case FL_ROUND_DOWN: away = negative; break;
            case FL_ROUND_ODD: away = !(lo_code & 1); break;
            default: {
                int n_bits = rounding->sr_bits > 0 ? rounding->sr_bits : 32;
                uint64_t scaled = scaled_fraction_floor(distance, gap, n_bits);
                uint64_t random_bits = fl_random_word_inline(rounding->seed, index, 0) >> (64 - n_bits);
                away = scaled + random_bits >= (1ULL << n_bits);
            }
            }
        }
    } else {
        int grid_exponent; /* q: the spacing of values around |x| is 2^q */
        int64_t code_base;  /* lo_code = code_base + N */
        if (exponent >= p->emin) {
            grid_exponent = exponent - m;
            code_base = ((int64_t)(exponent + p->bias - 1)) << m;
        } else if (p->subnormals == FL_SUBNORMALS_TESLA) {
            grid_exponent = -p->bias - m;
            code_base = 0;
        } else {
            grid_exponent = p->emin - m;
            code_base = 0;
        }
        int64_t shift = (int64_t)grid_exponent - lsb_exponent;
        uint64_t units, remainder;
        if (shift <= 0) {
            units = significand << (-shift);
            remainder = 0;
        } else if (shift >= 64) {
            units = 0;
            remainder = significand;
        } else {
            units = significand >> shift;
            remainder = significand & ((1ULL << shift) - 1);
        }
        lo_code = code_base + (int64_t)units;
        inexact = remainder != 0;
        if (inexact) {
            /* remainder versus half an ulp, 2^(shift - 1); significand < 2^53 */
            int above_half, at_half;
            if (shift >= 64) {
                above_half = 0;
                at_half = 0;
            } else {
                uint64_t half = 1ULL << (shift - 1);
                above_half = remainder > half;
                at_half = remainder == half;
            }
            switch (mode) {
            case FL_ROUND_NEAREST_EVEN: away = above_half || (at_half && (lo_code & 1)); break;
            case FL_ROUND_NEAREST_AWAY: away = above_half || at_half; break;
            case FL_ROUND_TOWARD_ZERO: away = 0; break;
            case FL_ROUND_UP: away = !negative; break;
            case FL_ROUND_DOWN: away = negative; break;
            case FL_ROUND_ODD: away = !(lo_code & 1); break;
            default:
                away = stochastic_away(remainder, shift, rounding->sr_bits, rounding->seed, index);
            }
        }
    }

    int64_t code = lo_code + away;
    if (code > p->max_code) {
        stats->overflow++;
        stats->inexact++;
        int to_max = rounding->saturate || p->specials == FL_SPECIALS_FINITE || mode == FL_ROUND_ODD ||
                     mode == FL_ROUND_TOWARD_ZERO || (mode == FL_ROUND_UP && negative) ||
                     (mode == FL_ROUND_DOWN && !negative) || (mode == FL_ROUND_STOCHASTIC && !away);
        if (to_max)
            return sign | (uint32_t)p->max_code;
        if (p->specials == FL_SPECIALS_IEEE)
            return sign | (p->exponent_all_ones << m);
        return nan_code(p, negative);
    }
    if (inexact)
        stats->inexact++;
    if (code == 0) {
        stats->underflow++;
        return zero_code(p, negative);
    }
    if ((code >> m) == 0)
        stats->denormal++;
    return sign | (uint32_t)code;
}

/* ---- decode one code ----------------------------------------------------- */

static inline double decode_one(uint32_t code, const prepared_format *p)
{
    const int m = p->man_bits;
    int negative = (code & p->sign_bit) != 0;
    uint32_t magnitude = code & p->magnitude_mask;
    uint32_t exponent_field = magnitude >> m;
    uint32_t mantissa = magnitude & (uint32_t)((1ULL << m) - 1);
    double value;
    switch (p->specials) {
    case FL_SPECIALS_IEEE:
        if (exponent_field == p->exponent_all_ones)
            return mantissa ? (double)NAN : (negative ? -(double)INFINITY : (double)INFINITY);
        break;
    case FL_SPECIALS_FN:
        if (magnitude == p->magnitude_mask)
            return (double)NAN;
        break;
    case FL_SPECIALS_FNUZ:
        if (negative && magnitude == 0)
            return (double)NAN;
        break;
    default:
        break;
    }
    if (exponent_field == 0) {
        if (p->subnormals == FL_SUBNORMALS_NONE)
            value = 0.0;
        else
            value = (double)mantissa * p->subnormal_scale;
        if (value == 0.0 && !p->has_negative_zero)
            return 0.0;
    } else {
        /* (1 + M/2^m) * 2^(E - bias): build the double directly; it is normal in
         * float64 because every format's range fits float64 (checked in Python). */
        int64_t double_exponent = (int64_t)exponent_field - p->bias + 1023;
        if (double_exponent >= 1 && double_exponent <= 2046) {
            uint64_t bits = ((uint64_t)double_exponent << 52) | ((uint64_t)mantissa << (52 - m));
            memcpy(&value, &bits, sizeof value);
        } else {
            value = ldexp(1.0 + ldexp((double)mantissa, -m), (int)exponent_field - p->bias);
        }
    }
    return negative ? -value : value;
}

/* ---- array loops -------------------------------------------------------------*/

static inline void store_code(void *codes, int code_bytes, int64_t i, uint32_t code)
{
    if (code_bytes == 1)
        ((uint8_t *)codes)[i] = (uint8_t)code;
    else if (code_bytes == 2)
        ((uint16_t *)codes)[i] = (uint16_t)code;
    else
        ((uint32_t *)codes)[i] = code;
}

static inline uint32_t load_code(const void *codes, int code_bytes, int64_t i)
{
    if (code_bytes == 1)
        return ((const uint8_t *)codes)[i];
    if (code_bytes == 2)
        return ((const uint16_t *)codes)[i];
    return ((const uint32_t *)codes)[i];
}

static void store_stats(fl_stats *stats, int64_t invalid, int64_t overflow, int64_t underflow,
                      int64_t denormal, int64_t inexact)
{
    if (!stats)
        return;
    stats->invalid = invalid;
    stats->overflow = overflow;
    stats->underflow = underflow;
    stats->denormal = denormal;
    stats->inexact = inexact;
}

/* Elements per switch of the floating-point environment (fpenv.c): the switch costs a few
 * dozen cycles, and it is per thread, so each parallel loop runs over blocks and every
 * block sets the IEEE default environment around its work. */
#define ENVIRONMENT_BLOCK 4096

/* Element i through encode_one (LOAD reads it), its flags added to the loop's counts. */
#define EXACT_ELEMENT(LOAD, OUTPUT_STATEMENT)                                                       \
    {                                                                                            \
        local_stats s = {0, 0, 0, 0, 0};                                                          \
        uint32_t code = encode_one((double)(LOAD), &p, rounding, (uint64_t)(index_offset + i), &s); \
        OUTPUT_STATEMENT;                                                                        \
        invalid += s.invalid;                                                                    \
        overflow += s.overflow;                                                                  \
        underflow += s.underflow;                                                                \
        denormal += s.denormal;                                                                  \
        inexact += s.inexact;                                                                    \
    }

/* encode_one for every element (LOAD reads element i), counting the flags. */
#define GENERIC_ENCODE_LOOP(LOAD, OUTPUT_STATEMENT)                                                 \
    _Pragma("omp parallel for schedule(static) num_threads(threads) reduction(+:invalid,overflow,underflow,denormal,inexact) if(threads > 1)") \
    for (int64_t block_start = 0; block_start < n; block_start += ENVIRONMENT_BLOCK) {           \
        const int64_t block_end = block_start + ENVIRONMENT_BLOCK < n ? block_start + ENVIRONMENT_BLOCK : n; \
        fl_floating_point_state environment;                                                     \
        fl_enter_default_floating_point(&environment);                                           \
        for (int64_t i = block_start; i < block_end; i++) {                                      \
            EXACT_ELEMENT(LOAD, OUTPUT_STATEMENT)                                                \
        }                                                                                        \
        fl_leave_default_floating_point(&environment);                                           \
    }

/*
 * One loop body for the four (input type) x (codes or values) combinations.
 * OUTPUT_STATEMENT stores the code `code` of element i.
 */
/* Shared start of the encode/quantize entry points: check the parameters, zero the counts,
 * choose the thread count. */
#define CODEC_PROLOGUE                                                                              \
    prepared_format p;                                                                           \
    int status = prepare_format(format, &p);                                                     \
    if (status)                                                                                  \
        return status;                                                                           \
    if ((status = check_rounding(rounding)))                                                     \
        return status;                                                                           \
    int64_t invalid = 0, overflow = 0, underflow = 0, denormal = 0, inexact = 0;                 \
    int threads = n >= PARALLEL_THRESHOLD ? fl_max_threads() : 1;                                \
    (void)threads;

#define CODEC_LOOP(INPUT_TYPE, OUTPUT_STATEMENT)                                                    \
    CODEC_PROLOGUE                                                                               \
    GENERIC_ENCODE_LOOP(((const INPUT_TYPE *)x)[i], OUTPUT_STATEMENT)                            \
    store_stats(stats, invalid, overflow, underflow, denormal, inexact);                            \
    return 0;

/*
 * Deterministic modes run in blocks: fast_block, a branch-free loop over 32-bit lanes
 * that the compiler vectorises, computes every element's code (sign included) and
 * flags those outside the fast range; the caller stores the block and redoes the
 * flagged elements with encode_one.
 */
#define FAST_BLOCK 512

typedef struct fast_block_result {
    int32_t slow;       /* elements that need encode_one */
    int32_t inexact;    /* counts among the fast ones */
    int32_t overflow;
    int32_t underflow;
    int32_t denormal;
} fast_block_result;

/* Output kinds of the fast blocks: codes of 1, 2 or 4 bytes, or float32 values. */
enum { OUT_CODES_1 = 1, OUT_CODES_2 = 2, OUT_CODES_4 = 4, OUT_VALUES_F32 = 5 };

/* The body must be inlined into each (mode, kind, full) copy so that those are constants
 * in it; compilers that decline to inline it still compute the same results, slower. */
#if defined(__GNUC__)
#define FL_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define FL_ALWAYS_INLINE inline
#endif

static FL_ALWAYS_INLINE fast_block_result fast_block_body(const uint32_t *restrict bits, int count,
                                                void *restrict out, const int out_kind,
                                                uint8_t *restrict is_slow,
                                                uint32_t lo, uint32_t span, int shift, uint32_t sign_bit,
                                                int32_t rebias, int32_t max_code, const int mode,
                                                const uint32_t *restrict random_top, int sr_bits,
                                                uint32_t zero_below, int32_t saturating,
                                                uint32_t zero_sign_bit, int32_t subnormals_enabled,
                                                float subnormal_scale_1, float subnormal_scale_2,
                                                const int full)
{
    /* full = 0 (a constant after inlining) leaves out saturation, the zero shortcut and
     * subnormal results: the lean kernel for blocks whose elements are almost all normal */
    if (!full) {
        saturating = 0;
        zero_below = 0;
        subnormals_enabled = 0;
    }
    const uint32_t mask = (1u << shift) - 1, range_mask = sign_bit ? 0x7FFFFFFFu : 0xFFFFFFFFu;
    const uint32_t zero_sign_f32 = zero_sign_bit ? 0x80000000u : 0u;
    int32_t fast_count = 0, inexact = 0, overflow = 0, underflow = 0, denormal = 0;
    const int32_t min_normal_code = (int32_t)1 << (shift > 23 ? 0 : 23 - shift); /* 2^m */
    for (int i = 0; i < count; i++) {
        const uint32_t magnitude = bits[i] & 0x7FFFFFFFu, negative = bits[i] >> 31;
        const int32_t lo_code = (int32_t)(magnitude >> shift) - rebias;
        const uint32_t remainder = magnitude & mask;
        uint32_t increment;
        switch (mode) {
        case FL_ROUND_NEAREST_EVEN: increment = (mask >> 1) + (uint32_t)(lo_code & 1); break;
        case FL_ROUND_NEAREST_AWAY: increment = 1u << (shift - 1); break;
        case FL_ROUND_UP: increment = mask & (negative - 1u); break;
        case FL_ROUND_DOWN: increment = mask & (0u - negative); break;
        default: increment = 0; break;
        }
        int32_t code;
        if (mode == FL_ROUND_ODD) {
            code = lo_code | (int32_t)(remainder != 0);
        } else if (mode == FL_ROUND_STOCHASTIC) {
            /* the same decisions as stochastic_away; random_top holds the top bits of
             * each element's first draw (shift bits when exact, sr_bits otherwise) */
            int32_t away;
            if (sr_bits == 0) {
                away = random_top[i] < remainder;
            } else {
                uint32_t scaled = shift <= sr_bits ? remainder << (sr_bits - shift) : remainder >> (shift - sr_bits);
                uint32_t limit = (uint32_t)(((uint64_t)1 << sr_bits) - 1) - scaled; /* away iff R >= 2^N - scaled */
                away = random_top[i] > limit;
            }
            code = lo_code + away;
        } else
            code = (int32_t)((magnitude + increment) >> shift) - rebias;
        /* For unsigned formats range_mask keeps the sign bit, so negative inputs fall
         * outside [lo, lo + span] and go to encode_one (they are invalid there). */
        const uint32_t range_value = bits[i] & range_mask;
        const int32_t in_range = range_value - lo <= span;
        /* finite formats and saturate=True turn every overflow into max, in every mode;
         * selects are written as masks so that the loop stays vectorisable */
        const int32_t saturated = in_range & saturating & (code > max_code);
        code ^= (code ^ max_code) & (0 - saturated);
        /* zero_below is 0 (no shortcut) except for modes that send tiny inputs to zero */
        const int32_t tiny = range_value < zero_below;
        /* ieee subnormal results: y = |x| * 2^(m - emin) is exact and
         * below 2^m, so its integer part t and fraction f decide the code */
        float magnitude_value;
        memcpy(&magnitude_value, &magnitude, sizeof magnitude_value);
        const float y = magnitude_value * subnormal_scale_1 * subnormal_scale_2;
        const int32_t t = (int32_t)y;
        const float fraction = y - (float)t;
        const int32_t subnormal_inexact = fraction != 0.0f;
        int32_t round_away;
        switch (mode) {
        case FL_ROUND_NEAREST_EVEN: {
            /* 0 <= y < 2^23: adding and removing 2^23 rounds y to an integer, ties to even,
             * in the default rounding mode (no -ffast-math, so this is not folded away) */
            const float rounded = (y + 8388608.0f) - 8388608.0f;
            round_away = (int32_t)rounded - t;
            break;
        }
        case FL_ROUND_NEAREST_AWAY: round_away = fraction >= 0.5f; break;
        case FL_ROUND_UP: round_away = subnormal_inexact & (int32_t)(1u - negative); break;
        case FL_ROUND_DOWN: round_away = subnormal_inexact & (int32_t)negative; break;
        default: round_away = 0; break;
        }
        const int32_t subnormal_code = mode == FL_ROUND_ODD ? (t | subnormal_inexact) : t + round_away;
        /* stochastic rounding of subnormal results stays on the exact path */
        const int32_t subnormal = (mode != FL_ROUND_STOCHASTIC) & subnormals_enabled & (range_value < lo) & (tiny ^ 1);
        const uint32_t subnormal_mask = 0u - (uint32_t)subnormal;
        code = (int32_t)(((uint32_t)subnormal_code & subnormal_mask) | ((uint32_t)code & ~subnormal_mask));
        const int32_t zero_result = tiny | (subnormal & (subnormal_code == 0));
        const uint32_t tiny_mask = 0u - (uint32_t)zero_result;
        const int32_t nonzero = magnitude != 0;
        const int32_t fast = (in_range & (code <= max_code)) | tiny | subnormal;
        is_slow[i] = (uint8_t)(1 - fast);
        fast_count += fast;
        inexact += (fast & in_range & ((remainder != 0) | saturated)) | (tiny & nonzero) | (subnormal & subnormal_inexact);
        overflow += saturated;
        underflow += zero_result & nonzero;
        denormal += subnormal & (subnormal_code != 0) & (subnormal_code < min_normal_code);
        const uint32_t sign_mask = 0u - negative;
        const uint32_t result = ((zero_sign_bit & sign_mask) & tiny_mask) |
                                (((uint32_t)code | (sign_bit & sign_mask)) & ~tiny_mask);
        if (out_kind == OUT_CODES_1)
            ((uint8_t *)out)[i] = (uint8_t)result;
        else if (out_kind == OUT_CODES_2)
            ((uint16_t *)out)[i] = (uint16_t)result;
        else if (out_kind == OUT_CODES_4)
            ((uint32_t *)out)[i] = result;
        else { /* a fast normal code is normal in float32: shift (E, M) back, restore the bias;
                  * a subnormal code's value is code / 2^(m - emin), exact in float32 */
            float subnormal_value = (float)subnormal_code * (1.0f / subnormal_scale_1) * (1.0f / subnormal_scale_2);
            uint32_t subnormal_bits;
            memcpy(&subnormal_bits, &subnormal_value, sizeof subnormal_bits);
            const uint32_t normal_bits = ((uint32_t)(code + rebias) << shift) & 0x7FFFFFFFu;
            const uint32_t magnitude_bits = (subnormal_bits & subnormal_mask) | (normal_bits & ~subnormal_mask);
            ((uint32_t *)out)[i] = ((zero_sign_f32 & sign_mask) & tiny_mask) |
                                   ((magnitude_bits | (negative << 31)) & ~tiny_mask);
        }
    }
    fast_block_result result = {count - fast_count, inexact, overflow, underflow, denormal};
    return result;
}

/* On x86-64 Linux with GCC the lean kernels of the deterministic modes that write codes are
 * also compiled for AVX2, and the copy to run is picked when the library loads (an ifunc).
 * They use integer operations only, so both copies give the same bits.  (For the stochastic
 * generator and for float32 outputs the AVX2 copies measured slower, so those have one.) */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define FL_SIMD_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define FL_SIMD_CLONES
#endif

/* One out-of-line copy per (mode, output kind): both are constants inside, and the
 * loop stays small enough for the vectoriser (inlined into the OpenMP region it is not). */
#define DEFINE_FAST_BLOCK_VARIANT(MODE, KIND, FULL, NAME, ATTRIBUTES)                               \
    ATTRIBUTES static fast_block_result NAME(                                                    \
        const uint32_t *restrict bits, int count, void *restrict out, uint8_t *restrict is_slow,  \
        const prepared_format *p, const fl_rounding *rounding, int64_t first_index)               \
    {                                                                                            \
        uint32_t random_top[MODE == FL_ROUND_STOCHASTIC ? FAST_BLOCK : 1];                       \
        const int sr_bits = rounding->sr_bits;                                                   \
        random_top[0] = 0; /* read only by the stochastic mode, which fills the block */         \
        if (MODE == FL_ROUND_STOCHASTIC) {                                                       \
            const int top_bits = sr_bits ? sr_bits : p->fast_shift;                              \
            const uint64_t key = fl_stream_key_inline(rounding->seed, 0);                                  \
            uint64_t counter = key + (uint64_t)first_index * 0x9E3779B97F4A7C15ULL;              \
            for (int i = 0; i < count; i++, counter += 0x9E3779B97F4A7C15ULL)                    \
                random_top[i] = (uint32_t)(fl_mix64_inline(counter) >> (64 - top_bits));                  \
        }                                                                                        \
        uint32_t zero_below = MODE == FL_ROUND_TOWARD_ZERO ? p->fast_zero_below_toward_zero       \
                              : (MODE == FL_ROUND_NEAREST_EVEN || MODE == FL_ROUND_NEAREST_AWAY) \
                                    ? p->fast_zero_below_nearest : 0u;                           \
        int32_t saturating = rounding->saturate || p->specials == FL_SPECIALS_FINITE;            \
        return fast_block_body(bits, count, out, KIND, is_slow, p->fast_lo, p->fast_hi - p->fast_lo, \
                               p->fast_shift, p->sign_bit, (int32_t)p->fast_rebias,              \
                               (int32_t)p->max_code, MODE, random_top, sr_bits, zero_below,      \
                               saturating, p->has_negative_zero ? p->sign_bit : 0u,              \
                               p->fast_subnormals, p->fast_subnormal_scale_1,                    \
                               p->fast_subnormal_scale_2, FULL);                                 \
    }
#define DEFINE_FAST_BLOCK(MODE, KIND, CLONES)                                                       \
    DEFINE_FAST_BLOCK_VARIANT(MODE, KIND, 1, fast_block_##MODE##_##KIND, )                        \
    DEFINE_FAST_BLOCK_VARIANT(MODE, KIND, 0, lean_block_##MODE##_##KIND, CLONES)
#define DEFINE_FAST_BLOCKS(KIND, CLONES)                                                            \
    DEFINE_FAST_BLOCK(FL_ROUND_NEAREST_EVEN, KIND, CLONES)                                       \
    DEFINE_FAST_BLOCK(FL_ROUND_NEAREST_AWAY, KIND, CLONES)                                       \
    DEFINE_FAST_BLOCK(FL_ROUND_TOWARD_ZERO, KIND, CLONES)                                        \
    DEFINE_FAST_BLOCK(FL_ROUND_UP, KIND, CLONES)                                                 \
    DEFINE_FAST_BLOCK(FL_ROUND_DOWN, KIND, CLONES)                                               \
    DEFINE_FAST_BLOCK(FL_ROUND_ODD, KIND, CLONES)                                                \
    DEFINE_FAST_BLOCK(FL_ROUND_STOCHASTIC, KIND, )
DEFINE_FAST_BLOCKS(OUT_CODES_1, FL_SIMD_CLONES)
DEFINE_FAST_BLOCKS(OUT_CODES_2, FL_SIMD_CLONES)
DEFINE_FAST_BLOCKS(OUT_CODES_4, FL_SIMD_CLONES)
DEFINE_FAST_BLOCKS(OUT_VALUES_F32, )

/* A block with at most this many elements outside the normal range takes the lean kernel. */
#define LEAN_OUTLIER_LIMIT 16

#define FAST_F32_BLOCK_LOOP(MODE, KIND, OUTPUT, SLOW_STATEMENT)                                     \
    _Pragma("omp parallel for schedule(static) num_threads(threads) firstprivate(p) reduction(+:invalid,overflow,underflow,denormal,inexact) if(threads > 1)") \
    for (int64_t block_start = 0; block_start < n; block_start += FAST_BLOCK) {                  \
        const int count = (int)(block_start + FAST_BLOCK < n ? FAST_BLOCK : n - block_start);    \
        uint8_t is_slow[FAST_BLOCK];                                                             \
        const uint32_t *block_bits = (const uint32_t *)(const void *)(x + block_start);         \
        fl_floating_point_state environment;                                                     \
        fl_enter_default_floating_point(&environment);                                           \
        /* count the elements outside [min_normal, max]: few of them go to encode_one after \
         * the lean kernel, many make the full kernel worth its extra work */                    \
        int32_t outliers = 0;                                                                    \
        for (int j = 0; j < count; j++)                                                          \
            outliers += ((block_bits[j] & lean_range_mask) - p.fast_lo) > lean_span;              \
        fast_block_result block = outliers <= LEAN_OUTLIER_LIMIT                                 \
            ? lean_block_##MODE##_##KIND(block_bits, count, (OUTPUT) + block_start, is_slow, &p,  \
                                         rounding, index_offset + block_start)                    \
            : fast_block_##MODE##_##KIND(block_bits, count, (OUTPUT) + block_start, is_slow, &p,  \
                                         rounding, index_offset + block_start);                   \
        inexact += block.inexact;                                                                \
        overflow += block.overflow;                                                              \
        underflow += block.underflow;                                                            \
        denormal += block.denormal;                                                              \
        if (block.slow) {                                                                        \
            for (int j = 0; j < count; j++) {                                                    \
                if ((j & 7) == 0 && j + 8 <= count) {                                            \
                    uint64_t eight_flags;                                                        \
                    memcpy(&eight_flags, is_slow + j, sizeof eight_flags);                       \
                    if (!eight_flags) {                                                          \
                        j += 7;                                                                  \
                        continue;                                                                \
                    }                                                                            \
                }                                                                                \
                if (!is_slow[j])                                                                 \
                    continue;                                                                    \
                const int64_t i = block_start + j;                                               \
                EXACT_ELEMENT(x[i], SLOW_STATEMENT)                                              \
            }                                                                                    \
        }                                                                                        \
        fl_leave_default_floating_point(&environment);                                           \
    }

#define FAST_F32_CODEC(KIND, OUTPUT, OUTPUT_STATEMENT)                                                            \
    CODEC_PROLOGUE                                                                               \
    if (!p.fast_enabled) {                                                                       \
        GENERIC_ENCODE_LOOP(x[i], OUTPUT_STATEMENT)                                              \
        store_stats(stats, invalid, overflow, underflow, denormal, inexact);                        \
        return 0;                                                                                \
    }                                                                                            \
    const uint32_t lean_range_mask = p.sign_bit ? 0x7FFFFFFFu : 0xFFFFFFFFu;                     \
    const uint32_t lean_span = p.fast_no_overflow_hi - p.fast_lo;                                 \
    switch (rounding->mode) {                                                                    \
    case FL_ROUND_NEAREST_EVEN: FAST_F32_BLOCK_LOOP(FL_ROUND_NEAREST_EVEN, KIND, OUTPUT, OUTPUT_STATEMENT) break;    \
    case FL_ROUND_NEAREST_AWAY: FAST_F32_BLOCK_LOOP(FL_ROUND_NEAREST_AWAY, KIND, OUTPUT, OUTPUT_STATEMENT) break;    \
    case FL_ROUND_TOWARD_ZERO: FAST_F32_BLOCK_LOOP(FL_ROUND_TOWARD_ZERO, KIND, OUTPUT, OUTPUT_STATEMENT) break;      \
    case FL_ROUND_UP: FAST_F32_BLOCK_LOOP(FL_ROUND_UP, KIND, OUTPUT, OUTPUT_STATEMENT) break;                        \
    case FL_ROUND_DOWN: FAST_F32_BLOCK_LOOP(FL_ROUND_DOWN, KIND, OUTPUT, OUTPUT_STATEMENT) break;                    \
    case FL_ROUND_ODD: FAST_F32_BLOCK_LOOP(FL_ROUND_ODD, KIND, OUTPUT, OUTPUT_STATEMENT) break;                      \
    default: FAST_F32_BLOCK_LOOP(FL_ROUND_STOCHASTIC, KIND, OUTPUT, OUTPUT_STATEMENT) break;                         \
    }                                                                                            \
    store_stats(stats, invalid, overflow, underflow, denormal, inexact);                            \
    return 0;

static int valid_code_bytes(int code_bytes) { return code_bytes == 1 || code_bytes == 2 || code_bytes == 4; }

int fl_encode_f32(const float *x, int64_t n, const fl_format *format, const fl_rounding *rounding,
                  void *codes, int code_bytes, int64_t index_offset, fl_stats *stats)
{
    if (code_bytes == 1) {
        FAST_F32_CODEC(OUT_CODES_1, (uint8_t *)codes, ((uint8_t *)codes)[i] = (uint8_t)code)
    } else if (code_bytes == 2) {
        FAST_F32_CODEC(OUT_CODES_2, (uint16_t *)codes, ((uint16_t *)codes)[i] = (uint16_t)code)
    } else if (code_bytes == 4) {
        FAST_F32_CODEC(OUT_CODES_4, (uint32_t *)codes, ((uint32_t *)codes)[i] = code)
    }
    return FL_ERROR_CODE_BYTES;
}

int fl_encode_f64(const double *x, int64_t n, const fl_format *format, const fl_rounding *rounding,
                  void *codes, int code_bytes, int64_t index_offset, fl_stats *stats)
{
    if (!valid_code_bytes(code_bytes))
        return FL_ERROR_CODE_BYTES;
    CODEC_LOOP(double, store_code(codes, code_bytes, i, code))
}

int fl_quantize_f32(const float *x, int64_t n, const fl_format *format, const fl_rounding *rounding,
                    float *out, int64_t index_offset, fl_stats *stats)
{
    FAST_F32_CODEC(OUT_VALUES_F32, (uint32_t *)(void *)out, out[i] = (float)decode_one(code, &p))
}

int fl_quantize_f64(const double *x, int64_t n, const fl_format *format, const fl_rounding *rounding,
                    double *out, int64_t index_offset, fl_stats *stats)
{
    CODEC_LOOP(double, out[i] = decode_one(code, &p))
}

/* Formats of 16 bits or fewer decode large arrays through a table of every code's value. */
#define DECODE_LOOP(OUTPUT_TYPE)                                                                   \
    prepared_format p;                                                                           \
    if (!valid_code_bytes(code_bytes))                                                           \
        return FL_ERROR_CODE_BYTES;                                                                               \
    int status = prepare_format(format, &p);                                                     \
    if (status)                                                                                  \
        return status;                                                                           \
    int threads = n >= PARALLEL_THRESHOLD ? fl_max_threads() : 1;                                \
    (void)threads;                                                                               \
    const int bits = format->exp_bits + format->man_bits + (format->is_signed ? 1 : 0);          \
    if (code_bytes <= 2 && bits <= 16 && n >= ((int64_t)1 << bits)) {                             \
        OUTPUT_TYPE *table = malloc(sizeof(OUTPUT_TYPE) << bits);                                \
        if (table) {                                                                             \
            fl_floating_point_state environment;                                                 \
            fl_enter_default_floating_point(&environment);                                       \
            for (uint32_t code = 0; code < (1u << bits); code++)                                 \
                table[code] = (OUTPUT_TYPE)decode_one(code, &p);                                 \
            fl_leave_default_floating_point(&environment);                                       \
            const uint32_t code_mask = (1u << bits) - 1;                                         \
            _Pragma("omp parallel for schedule(static) num_threads(threads) if(threads > 1)")      \
            for (int64_t i = 0; i < n; i++)                                                      \
                out[i] = table[load_code(codes, code_bytes, i) & code_mask];                     \
            free(table);                                                                         \
            return 0;                                                                            \
        }                                                                                        \
    }                                                                                            \
    _Pragma("omp parallel for schedule(static) num_threads(threads) if(threads > 1)")              \
    for (int64_t block_start = 0; block_start < n; block_start += ENVIRONMENT_BLOCK) {           \
        const int64_t block_end = block_start + ENVIRONMENT_BLOCK < n ? block_start + ENVIRONMENT_BLOCK : n; \
        fl_floating_point_state environment;                                                     \
        fl_enter_default_floating_point(&environment);                                           \
        for (int64_t i = block_start; i < block_end; i++)                                        \
            out[i] = (OUTPUT_TYPE)decode_one(load_code(codes, code_bytes, i), &p);                \
        fl_leave_default_floating_point(&environment);                                           \
    }                                                                                            \
    return 0;

int fl_decode_f32(const void *codes, int code_bytes, int64_t n, const fl_format *format, float *out)
{
    DECODE_LOOP(float)
}

int fl_decode_f64(const void *codes, int code_bytes, int64_t n, const fl_format *format, double *out)
{
    DECODE_LOOP(double)
}
