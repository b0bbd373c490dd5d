/*
 * round.h - the exact definition of fmtlab's conversions (internal to the C core).
 *
 * This file is the reference semantics: encode_one gives the code of any float64 value
 * under any fl_format and fl_rounding, decode_one the value of any code.  Every faster path
 * (codec_fast.c's float32 blocks) must give the same bits and the same exception counts
 * as these two, and the tests check that it does.  The functions are static inline so that
 * the array loops of codec.c inline them; round.c holds the once-per-call part.
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
 *
 * The arithmetic is exact only in IEEE 754's default floating-point environment: callers
 * run these functions between fl_enter_default_floating_point and
 * fl_leave_default_floating_point (fmtlab.h, fpenv.c).
 */
#ifndef FMTLAB_ROUND_H
#define FMTLAB_ROUND_H

#include "fmtlab.h"

#include <math.h>
#include <string.h>

/* ---- the format, prepared once per call (round.c) --------------------------- */

typedef struct prepared_format {
    int man_bits;
    int bias;
    int emin;                 /* exponent of the smallest normal: 1 - bias (-bias without zero) */
    int is_signed;
    int specials;
    int subnormals;
    int64_t max_code;         /* magnitude code of the largest finite value */
    uint32_t sign_bit;        /* 0 for unsigned formats */
    uint32_t magnitude_mask;
    uint32_t exponent_all_ones;
    uint32_t nan_positive;    /* the NaN code written for a NaN of positive sign ... */
    uint32_t nan_negative;    /* ... and of negative sign (equal where the NaN has no sign) */
    int has_nan;
    int has_inf;
    uint32_t inf_magnitude;   /* code of +Inf (with the sign bit: -Inf) where has_inf */
    int has_zero;             /* 0 for subnormals = FL_SUBNORMALS_NORMAL: code 0 is the smallest value */
    int has_negative_zero;
    double subnormal_scale;   /* value of the subnormal code 1 */
    double tesla_max_subnormal;
    double min_normal;
} prepared_format;

/* Check *format and derive the constants above; FL_OK or FL_ERROR_FORMAT. */
int fl_prepare_format(const fl_format *format, prepared_format *p);
/* FL_OK, FL_ERROR_ROUNDING_MODE, FL_ERROR_SR_BITS, FL_ERROR_SATURATION or FL_ERROR_SR_RULE. */
int fl_check_rounding(const fl_rounding *rounding);

/* ---- the stochastic decision -------------------------------------------------
 * The generator is fmtlab.h's fl_random_word_inline, keyed by (seed, element index).
 * Round away from zero with probability nu = remainder / 2^shift: exactly (sr_bits = 0,
 * comparing a uniform U in [0, 1) with nu bit by bit, 64 bits per draw), or with
 * N = sr_bits random bits R (the top N bits of draw 0): away iff k + R >= 2^N, where k is
 * nu * 2^N brought to an integer by the rule (enum fl_sr_rule), so P(away) = k / 2^N. */

/* The rule as three 0/1 masks, so that one branch-free formula serves every rule here and
 * in the float32 kernels (codec_fast.c), which must give the same bits. */
typedef struct sr_rule_bits {
    uint32_t rounds;    /* 0: truncate; 1: round nu * 2^N to nearest */
    uint32_t ties_away; /* a tie goes up (nearest_away) */
    uint32_t ties_odd;  /* a tie goes to the odd k (nearest_odd); else to the even one */
} sr_rule_bits;

static inline sr_rule_bits sr_rule_bits_of(int rule)
{
    sr_rule_bits bits = {rule != FL_SR_TRUNCATE, rule == FL_SR_NEAREST_AWAY, rule == FL_SR_NEAREST_ODD};
    return bits;
}

/* k from twice = floor(nu * 2^(N+1)) and sticky = 1 when nu * 2^(N+1) is not an integer:
 * f = floor(nu * 2^N) = twice >> 1 and h = twice & 1 say whether the fraction of nu * 2^N
 * is below 1/2 (h = 0), above it (h = 1, sticky = 1) or exactly 1/2 (h = 1, sticky = 0).
 * k can reach 2^N (a rounded nu of 1), which then rounds away whatever R is. */
static inline uint64_t sr_reduced_fraction(uint64_t twice, uint64_t sticky, sr_rule_bits rule)
{
    const uint64_t f = twice >> 1, h = twice & 1;
    return f + (h & rule.rounds & (rule.ties_away | sticky | (f ^ rule.ties_odd)));
}

/* The decision given draw 0, word = fl_random_word_inline(seed, index, 0) (a caller that has it
 * already: bias_axis.c draws it once per element for all biases); later draws, needed only when
 * the exact comparison ties over 64 bits, come from (seed, index). */
static inline int stochastic_away_from(uint64_t word, uint64_t remainder, int64_t shift, int sr_bits,
                                       sr_rule_bits rule, uint64_t seed, uint64_t index)
{
    if (sr_bits > 0) {
        const int64_t kept = (int64_t)sr_bits + 1; /* nu to N + 1 bits and a sticky bit */
        uint64_t twice, sticky;
        if (shift <= kept) {
            twice = remainder << (kept - shift);
            sticky = 0;
        } else if (shift - kept >= 64) {
            twice = 0;
            sticky = remainder != 0;
        } else {
            twice = remainder >> (shift - kept);
            sticky = (remainder & ((1ULL << (shift - kept)) - 1)) != 0;
        }
        uint64_t k = sr_reduced_fraction(twice, sticky, rule);
        uint64_t random_bits = word >> (64 - sr_bits);
        return k + random_bits >= (1ULL << sr_bits);
    }
    for (uint64_t draw = 0;; draw++) {
        uint64_t random_bits = draw ? fl_random_word_inline(seed, index, draw) : word;
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

static inline int stochastic_away(uint64_t remainder, int64_t shift, int sr_bits, sr_rule_bits rule,
                                  uint64_t seed, uint64_t index)
{
    return stochastic_away_from(fl_random_word_inline(seed, index, 0), remainder, shift, sr_bits, rule, seed,
                                index);
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
    return negative ? p->nan_negative : p->nan_positive;
}

static inline uint32_t zero_code(const prepared_format *p, int negative)
{
    return (negative && p->has_negative_zero) ? p->sign_bit : 0;
}

/* Whether an overflow under *rounding ends at +-max rather than at Inf or NaN ("toward_max");
 * away is the rounding's decision (stochastic).  For P3109's SatNone (section 4.7.5) the rule
 * is the report's table: toward zero, or the directed mode pointing back into the range,
 * unsigned extended formats under ToOdd, and every format without an Inf. */
static inline int overflow_to_max(const prepared_format *p, const fl_rounding *rounding, int negative, int away)
{
    const int mode = rounding->mode;
    switch (rounding->saturate) {
    case FL_SATURATE_OFF:
        return p->specials == FL_SPECIALS_FINITE || mode == FL_ROUND_ODD || mode == FL_ROUND_TOWARD_ZERO ||
               (mode == FL_ROUND_UP && negative) || (mode == FL_ROUND_DOWN && !negative) ||
               (mode == FL_ROUND_STOCHASTIC && !away);
    case FL_SATURATE_SAT_NONE:
        return !p->has_inf || mode == FL_ROUND_TOWARD_ZERO || (negative ? mode == FL_ROUND_UP : mode == FL_ROUND_DOWN) ||
               (!negative && mode == FL_ROUND_ODD && !p->is_signed);
    default: /* ON, SatFinite, SatPropagate */
        return 1;
    }
}

/* A negative input to an unsigned format under a P3109 saturation mode, after rounding: a
 * result of zero stays zero (rounded_to_zero); below the range (M lo, the value of code 0) it
 * is clamped there, except under SatNone where only toward_zero and up clamp and the other
 * modes give NaN (report section 4.7.5; a format without NaN gives code 0 there too). */
static inline uint32_t unsigned_negative_result(const prepared_format *p, const fl_rounding *rounding,
                                                int rounded_to_zero, local_stats *stats)
{
    if (rounded_to_zero) {
        stats->underflow++;
        stats->inexact++;
        return 0;
    }
    if (rounding->saturate == FL_SATURATE_SAT_NONE && rounding->mode != FL_ROUND_TOWARD_ZERO &&
        rounding->mode != FL_ROUND_UP) {
        stats->invalid++;
        return p->has_nan ? nan_code(p, 0) : 0u;
    }
    stats->overflow++;
    stats->inexact++;
    return 0;
}

static inline uint32_t encode_one(double x, const prepared_format *p, const fl_rounding *rounding,
                                  uint64_t index, local_stats *stats)
{
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    int negative = (int)(bits >> 63);
    uint64_t magnitude_bits = bits & 0x7FFFFFFFFFFFFFFFULL;
    uint32_t sign = p->sign_bit & (0u - (uint32_t)negative);
    /* the P3109 saturation modes decide negative inputs to unsigned formats themselves */
    const int p3109_saturation = rounding->saturate >= FL_SATURATE_SAT_FINITE;

    if (magnitude_bits > 0x7FF0000000000000ULL) { /* NaN */
        stats->invalid++;
        if (p->specials == FL_SPECIALS_FINITE)
            return (uint32_t)p->max_code; /* a NaN's sign means nothing: +max */
        return nan_code(p, negative && p->is_signed);
    }
    if (negative && !p->is_signed && magnitude_bits != 0 && !p3109_saturation) {
        stats->invalid++;
        return p->specials == FL_SPECIALS_FINITE ? 0u : nan_code(p, 0);
    }
    if (magnitude_bits == 0x7FF0000000000000ULL) { /* +-Inf */
        if (p3109_saturation) {
            if (negative && !p->is_signed) { /* -Inf below an unsigned range: M lo, or NaN (SatNone) */
                if (rounding->saturate == FL_SATURATE_SAT_NONE) {
                    stats->invalid++;
                    return p->has_nan ? nan_code(p, 0) : 0u;
                }
                stats->overflow++;
                return 0;
            }
            if (rounding->saturate != FL_SATURATE_SAT_FINITE && p->has_inf)
                return sign | p->inf_magnitude;
            stats->overflow++;
            return sign | (uint32_t)p->max_code;
        }
        if (p->has_inf)
            return sign | p->inf_magnitude;
        stats->overflow++;
        if (p->specials == FL_SPECIALS_FINITE || rounding->saturate == FL_SATURATE_ON)
            return sign | (uint32_t)p->max_code;
        return nan_code(p, negative);
    }
    if (magnitude_bits == 0) {
        if (p->has_zero)
            return zero_code(p, negative);
        /* a format without zero (E8M0): zero has no code, in every mode (ml_dtypes: NaN) */
        stats->invalid++;
        return p->has_nan ? nan_code(p, 0) : 0u;
    }

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
        if (negative && !p->is_signed)
            return unsigned_negative_result(p, rounding, 1, stats);
        stats->underflow++;
        stats->inexact++;
        return zero_code(p, negative);
    }

    int64_t lo_code;
    int away = 0, inexact = 0, below_smallest = 0;
    if (exponent < p->emin && p->subnormals == FL_SUBNORMALS_NORMAL) {
        /* Below the smallest value of a format without zero: nothing lies between it and zero,
         * so every mode gives the smallest magnitude, code 0 (ml_dtypes' E8M0 cast does). */
        lo_code = 0;
        inexact = 1;
        below_smallest = 1;
    } else if (exponent < p->emin && p->subnormals == FL_SUBNORMALS_TESLA && x * (negative ? -1.0 : 1.0) >= p->tesla_max_subnormal) {
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
                /* nu = distance / gap is not dyadic: each rule's k from the exact
                 * floor(nu * 2^(N+1)) and whether it is exact (fma rounds once, so its
                 * result is 0 only when twice * gap = distance * 2^(N+1) exactly);
                 * sr_bits = 0 takes N = 32 and truncates (no finite N is exact here). */
                int n_bits = rounding->sr_bits > 0 ? rounding->sr_bits : 32;
                uint64_t scaled;
                if (rounding->sr_bits > 0) {
                    uint64_t twice = scaled_fraction_floor(distance, gap, n_bits + 1);
                    uint64_t sticky = fma((double)twice, gap, -ldexp(distance, n_bits + 1)) != 0;
                    scaled = sr_reduced_fraction(twice, sticky, sr_rule_bits_of(rounding->sr_rule));
                } else {
                    scaled = scaled_fraction_floor(distance, gap, n_bits);
                }
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
            /* (E - 1) * 2^m with E = exponent + bias, the field; N counts the implicit bit.
             * E = 0 (a format without zero) makes it negative: multiply, do not shift. */
            code_base = (int64_t)(exponent + p->bias - 1) * ((int64_t)1 << m);
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
                away = stochastic_away(remainder, shift, rounding->sr_bits, sr_rule_bits_of(rounding->sr_rule),
                                       rounding->seed, index);
            }
        }
    }

    int64_t code = lo_code + away;
    if (negative && !p->is_signed) /* reached only under a P3109 saturation mode */
        return unsigned_negative_result(p, rounding, code == 0 && p->has_zero, stats);
    if (code > p->max_code) {
        stats->overflow++;
        stats->inexact++;
        if (overflow_to_max(p, rounding, negative, away))
            return sign | (uint32_t)p->max_code;
        if (p->has_inf)
            return sign | p->inf_magnitude;
        return nan_code(p, negative);
    }
    if (inexact)
        stats->inexact++;
    if (below_smallest)
        stats->underflow++;
    if (code == 0 && p->has_zero) {
        stats->underflow++;
        return zero_code(p, negative);
    }
    if ((code >> m) == 0 && p->has_zero)
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
    case FL_SPECIALS_P3109:
        if (code == p->nan_positive)
            return (double)NAN;
        if (magnitude == p->inf_magnitude)
            return negative ? -(double)INFINITY : (double)INFINITY;
        break;
    default:
        break;
    }
    if (exponent_field == 0 && p->has_zero) {
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

/* decode_one with the codec's one rule for a NaN's sign (docs/formats.md): where the format has
 * NaN codes of both signs (ieee and fn, signed) the NaN keeps its code's sign, as encode keeps
 * the input's; a format with a single NaN code (fnuz, p3109, unsigned) gives +NaN.  (decode_one
 * itself gives +NaN for every NaN code: the block-scaled formats, scaled.c, define their NaN
 * blocks' values with it.) */
static inline double decode_one_signed_nan(uint32_t code, const prepared_format *p)
{
    const double value = decode_one(code, p);
    if (value != value && (code & p->sign_bit) && p->nan_negative != p->nan_positive)
        return copysign((double)NAN, -1.0);
    return value;
}

#endif
