/*
 * round.c - the once-per-call part of the exact definition (round.h): checking the
 * parameters and deriving a format's constants.
 */
#include "round.h"

/* Largest finite magnitude code of a checked format's fields (the specials table, formats.md). */
static int64_t largest_finite_code(int e, int m, int is_signed, int specials)
{
    const int64_t all_ones = ((int64_t)1 << (e + m)) - 1;
    switch (specials) {
    case FL_SPECIALS_IEEE: return ((((int64_t)1 << e) - 1) << m) - 1;
    case FL_SPECIALS_FN: return all_ones - 1;
    case FL_SPECIALS_P3109: return all_ones - (is_signed ? 1 : 2);
    default: return all_ones;
    }
}

int fl_prepare_format(const fl_format *format, prepared_format *p)
{
    if (!format || !p)
        return FL_ERROR_FORMAT;
    int e = format->exp_bits, m = format->man_bits;
    /* each width alone first, so that their sum cannot overflow */
    if (e < 1 || e > 32 || m < 0 || m > 31 || e + m + (format->is_signed ? 1 : 0) > 32 || format->specials < 0 ||
        format->specials > FL_SPECIALS_P3109 || format->subnormals < 0 || format->subnormals > FL_SUBNORMALS_NORMAL)
        return FL_ERROR_FORMAT;
    if (format->specials == FL_SPECIALS_IEEE && (m == 0 || e < 2))
        return FL_ERROR_FORMAT;
    /* P3109 needs a zero, a finite nonzero value and an Inf below its NaN: two magnitude bits */
    if (format->specials == FL_SPECIALS_P3109 && e + m < 2)
        return FL_ERROR_FORMAT;
    /* without zero there is no negative-zero code to be the NaN */
    if (format->subnormals == FL_SUBNORMALS_NORMAL &&
        (format->specials == FL_SPECIALS_FNUZ || (format->specials == FL_SPECIALS_P3109 && format->is_signed)))
        return FL_ERROR_FORMAT;
    /* Every finite value must be exact in float64: emax <= 1023 and the smallest step at least
     * 2^-1074 (fmtlab.Format checks the smallest positive value, which is the same except for
     * formats without subnormals, whose lowest binade has steps of 2^(emin - m)).  This also
     * bounds every exponent and code the conversions compute (in 64 bits) from the bias,
     * whatever int a C caller passes. */
    {
        const int64_t bias = format->bias, has_zero = format->subnormals != FL_SUBNORMALS_NORMAL;
        const int64_t emin = (has_zero ? 1 : 0) - bias;
        const int64_t emax = (largest_finite_code(e, m, format->is_signed != 0, format->specials) >> m) - bias;
        /* the smallest step: 2^(emin - m) in the lowest normal binade, and below it the
         * subnormals' (Tesla's sit one binade lower); without subnormals ("none", "normal") the
         * lowest binade's step matters on its own */
        int64_t smallest = emin - m;
        if (m > 0 && format->subnormals == FL_SUBNORMALS_TESLA)
            smallest = -bias - m;
        if (emax > 1023 || smallest < -1074)
            return FL_ERROR_FORMAT;
    }
    memset(p, 0, sizeof *p);
    p->man_bits = m;
    p->bias = format->bias;
    p->has_zero = format->subnormals != FL_SUBNORMALS_NORMAL;
    p->emin = (p->has_zero ? 1 : 0) - format->bias;
    p->is_signed = format->is_signed ? 1 : 0;
    p->specials = format->specials;
    p->subnormals = format->subnormals;
    p->magnitude_mask = (uint32_t)((1ULL << (e + m)) - 1);
    p->exponent_all_ones = (uint32_t)((1ULL << e) - 1);
    p->sign_bit = p->is_signed ? (uint32_t)(1ULL << (e + m)) : 0;
    p->has_nan = p->specials != FL_SPECIALS_FINITE;
    p->max_code = largest_finite_code(e, m, p->is_signed, p->specials);
    switch (p->specials) {
    case FL_SPECIALS_IEEE: {
        uint32_t quiet = (p->exponent_all_ones << m) | (1u << (m - 1));
        p->nan_positive = quiet;
        p->nan_negative = quiet | p->sign_bit;
        p->has_inf = 1;
        p->inf_magnitude = p->exponent_all_ones << m;
        break;
    }
    case FL_SPECIALS_FN:
        p->nan_positive = p->magnitude_mask;
        p->nan_negative = p->magnitude_mask | p->sign_bit;
        break;
    case FL_SPECIALS_FNUZ:
        p->nan_positive = p->nan_negative = p->sign_bit; /* the negative-zero code */
        break;
    case FL_SPECIALS_P3109:
        p->has_inf = 1;
        if (p->is_signed) { /* NaN = 2^(K-1), +Inf = 2^(K-1) - 1, -Inf = 2^K - 1 (report section 4.7.2) */
            p->nan_positive = p->nan_negative = p->sign_bit;
            p->inf_magnitude = p->magnitude_mask;
        } else { /* NaN = 2^K - 1, +Inf = 2^K - 2 */
            p->nan_positive = p->nan_negative = p->magnitude_mask;
            p->inf_magnitude = p->magnitude_mask - 1;
        }
        break;
    default:
        break;
    }
    p->has_negative_zero = p->is_signed && p->has_zero && p->specials != FL_SPECIALS_FNUZ &&
                           p->specials != FL_SPECIALS_P3109;
    p->min_normal = ldexp(1.0, p->emin);
    if (p->subnormals == FL_SUBNORMALS_TESLA) {
        p->subnormal_scale = ldexp(1.0, -p->bias - m);
        p->tesla_max_subnormal = ldexp((double)((1ULL << m) - 1), -p->bias - m);
    } else {
        p->subnormal_scale = ldexp(1.0, p->emin - m);
    }
    return FL_OK;
}

int fl_check_rounding(const fl_rounding *rounding)
{
    if (!rounding)
        return FL_ERROR_ROUNDING_MODE;
    if (rounding->mode < FL_ROUND_NEAREST_EVEN || rounding->mode > FL_ROUND_STOCHASTIC)
        return FL_ERROR_ROUNDING_MODE;
    if (rounding->sr_bits < 0 || rounding->sr_bits > 32)
        return FL_ERROR_SR_BITS;
    if (rounding->saturate < FL_SATURATE_OFF || rounding->saturate > FL_SATURATE_SAT_NONE)
        return FL_ERROR_SATURATION;
    if (rounding->sr_rule < FL_SR_TRUNCATE || rounding->sr_rule > FL_SR_NEAREST_ODD)
        return FL_ERROR_SR_RULE;
    return FL_OK;
}
