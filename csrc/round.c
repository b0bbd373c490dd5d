/*
 * round.c - the once-per-call part of the exact definition (round.h): checking the
 * parameters and deriving a format's constants.
 */
#include "round.h"

int fl_prepare_format(const fl_format *format, prepared_format *p)
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
    return FL_OK;
}

int fl_check_rounding(const fl_rounding *rounding)
{
    if (rounding->mode < FL_ROUND_NEAREST_EVEN || rounding->mode > FL_ROUND_STOCHASTIC)
        return FL_ERROR_ROUNDING_MODE;
    if (rounding->sr_bits < 0 || rounding->sr_bits > 32)
        return FL_ERROR_SR_BITS;
    return FL_OK;
}
