/*
 * scaled_lanes_avx512.h - the float32 element paths of scaled.c written with AVX-512 intrinsics,
 * for its AVX-512 copy only (scaled_avx512.c includes scaled.c with FL_SCALED_COPY 2, which
 * includes this file after its kernels; nothing else may include it).
 *
 * The same lane arithmetic as scaled.c's C kernels (read those first: their comments say why
 * each step is exact), 16 lanes of 32 bits, or two halves of 8 lanes of 64 bits, per step, with
 * mask registers for the 0/1 integers; it keeps the C kernels' contract -- every element it does
 * not flag gets the kernel's code, value and counts -- so encode_span treats its flags as the C
 * kernels' (exact_element).  Why: GCC's vectorisation of the C kernels mixed lane widths and
 * needed the per-element arrays of scales that FILL_PER_ELEMENT writes; here a block's scale
 * is broadcast once per 16 elements (block_columns a multiple of 16, so a step never straddles
 * two blocks), values go straight to the output, and the float32 x is read once.  The paths:
 *
 *   LANES_POWER       float32 x, scales 2^e (|e| <= 127): element_chunk_f32 on x's bits minus
 *                     e 2^23, every deterministic mode and exact stochastic rounding;
 *   LANES_RECIPROCAL  float32 x, scales of at most 29 significant bits that are not powers of
 *                     two: odd_quotient_by_reciprocal (RO32(x / S) from x RN64(1/S) and one exact
 *                     product), then the same float32 lanes unscaled; deterministic modes;
 *                     where S is a float32 (FP32 scales) the quotient and the correction run
 *                     in float32 lanes with two FMAs (lanes_odd_quotients_f32), and where S is
 *                     not (NVFP4) the estimate does (lanes_odd_quotients_split): the FMAs are
 *                     explicit, each result proven equal to the float64 lanes' RO32;
 *   LANES_DIVIDE      exact stochastic rounding with such scales: stochastic_divide_body, one
 *                     float64 division per element, in 64-bit lanes.
 *
 * Stochastic decisions use the same 64-bit draw as the C kernels (fl_mix64_inline of the stream
 * key plus the element's global index times the golden ratio).  On the float32 lanes the C test
 * word < remainder 2^(64 - s) (s <= 31) is, exactly, (word >> 32) >> (32 - s) < remainder: the
 * right side is a multiple of 2^(64 - s), so word lies below it iff its top s bits do.
 */
#include <immintrin.h>

#define LANES_INLINE static inline __attribute__((always_inline))

enum { LANES_NONE = 0, LANES_POWER = 1, LANES_RECIPROCAL = 2, LANES_DIVIDE = 3 };

#define LANES_GOLDEN 0x9E3779B97F4A7C15ULL

/* fl_mix64_inline of 8 lanes */
LANES_INLINE __m512i lanes_mix64(__m512i z)
{
    z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 30)), _mm512_set1_epi64((long long)0xBF58476D1CE4E5B9ULL));
    z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 27)), _mm512_set1_epi64((long long)0x94D049BB133111EBULL));
    return _mm512_xor_si512(z, _mm512_srli_epi64(z, 31));
}

/* The draws' words of elements index .. index + 7 (key: the stream key of draw 0). */
LANES_INLINE __m512i lanes_words(uint64_t key, uint64_t index)
{
    const __m512i lane = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
    const __m512i steps = _mm512_mullo_epi64(lane, _mm512_set1_epi64((long long)LANES_GOLDEN));
    return lanes_mix64(_mm512_add_epi64(_mm512_set1_epi64((long long)(key + index * LANES_GOLDEN)), steps));
}

/* The top 32 bits of the words of elements index .. index + 15. */
LANES_INLINE __m512i lanes_top_words(uint64_t key, uint64_t index)
{
    const __m256i low = _mm512_cvtepi64_epi32(_mm512_srli_epi64(lanes_words(key, index), 32));
    const __m256i high = _mm512_cvtepi64_epi32(_mm512_srli_epi64(lanes_words(key, index + 8), 32));
    return _mm512_inserti64x4(_mm512_castsi256_si512(low), high, 1);
}

typedef struct lanes_counts {
    int64_t inexact, overflow, underflow, denormal, slow;
} lanes_counts;

/*
 * element_chunk_f32's lanes on 16 float32 inputs (x's bits, or RO32 quotients with offset 0):
 * the element codes (with their sign bits), the decoded values (unscaled, signed) and the mask
 * of lanes done; counts added for those.  MODE is a constant.
 */
LANES_INLINE __m512i lanes_round_f32(const __m512i input_bits, const __m512i offset, const int mode,
                                     const element_constants *restrict k, const uint64_t stream_key,
                                     const uint64_t first_index, const __mmask16 valid, const int want_values,
                                     __m512 *value, __mmask16 *fast_out, lanes_counts *counts)
{
    const __m512i one = _mm512_set1_epi32(1), zero = _mm512_setzero_si512();
    const __m512i shift = _mm512_set1_epi32(k->shift32);
    const __m512i magnitude = _mm512_and_si512(input_bits, _mm512_set1_epi32(0x7FFFFFFF));
    const __mmask16 negative = _mm512_movepi32_mask(input_bits);
    const __m512i a = _mm512_sub_epi32(magnitude, offset);
    const __m512i span = _mm512_set1_epi32((int)(0x7F7FFFFFu - 0x00800000u));
    const __m512i low_normal = _mm512_set1_epi32(0x00800000);
    const __mmask16 x_normal = _mm512_cmple_epu32_mask(_mm512_sub_epi32(magnitude, low_normal), span);
    const __mmask16 q_normal = _mm512_cmple_epu32_mask(_mm512_sub_epi32(a, low_normal), span);
    const __mmask16 is_zero = _mm512_testn_epi32_mask(magnitude, magnitude);
    const __mmask16 in_range = x_normal & q_normal;
    const __mmask16 above = _mm512_cmpge_epu32_mask(a, _mm512_set1_epi32((int)k->normal_lo32));
    const __mmask16 is_normal = in_range & above;
    const __mmask16 is_subnormal = k->subnormals32 ? (__mmask16)(in_range & ~above) : (__mmask16)0;

    const __m512i subnormal_shift = _mm512_sub_epi32(
        _mm512_set1_epi32(k->shift32 + (int32_t)(k->normal_lo32 >> 23)), _mm512_srli_epi32(a, 23));
    const __m512i clamped = _mm512_min_epi32(_mm512_max_epi32(subnormal_shift, one), _mm512_set1_epi32(31));
    const __m512i s = _mm512_mask_blend_epi32(is_normal, clamped, shift);
    const __m512i v = _mm512_mask_blend_epi32(
        is_normal, _mm512_or_si512(_mm512_and_si512(a, _mm512_set1_epi32(0x007FFFFF)), low_normal), a);
    const __m512i base = _mm512_maskz_mov_epi32(is_normal, _mm512_set1_epi32(-k->rebias32));
    const __m512i mask = _mm512_sub_epi32(_mm512_sllv_epi32(one, s), one);
    const __m512i half = _mm512_sllv_epi32(one, _mm512_sub_epi32(s, one));
    const __m512i lo = _mm512_add_epi32(_mm512_srlv_epi32(v, s), base);
    const __m512i remainder = _mm512_and_si512(v, mask);
    __m512i code;
    __mmask16 stochastic_slow = 0;
    if (mode == FL_ROUND_STOCHASTIC) {
        const __m512i top = lanes_top_words(stream_key, first_index);
        const __mmask16 away = _mm512_cmplt_epu32_mask(_mm512_srlv_epi32(top, _mm512_sub_epi32(_mm512_set1_epi32(32), s)),
                                                       remainder);
        code = _mm512_mask_add_epi32(lo, away, lo, one);
        stochastic_slow = is_subnormal & _mm512_cmpgt_epi32_mask(subnormal_shift, _mm512_set1_epi32(31));
    } else if (mode == FL_ROUND_ODD) {
        code = _mm512_mask_or_epi32(lo, _mm512_test_epi32_mask(remainder, remainder), lo, one);
    } else {
        __m512i increment;
        switch (mode) {
        case FL_ROUND_NEAREST_EVEN:
            increment = _mm512_add_epi32(_mm512_sub_epi32(half, one), _mm512_and_si512(lo, one));
            break;
        case FL_ROUND_NEAREST_AWAY: increment = half; break;
        case FL_ROUND_UP: increment = _mm512_maskz_mov_epi32((__mmask16)~negative, mask); break;
        case FL_ROUND_DOWN: increment = _mm512_maskz_mov_epi32(negative, mask); break;
        default: increment = zero; break;
        }
        code = _mm512_add_epi32(_mm512_srlv_epi32(_mm512_add_epi32(v, increment), s), base);
    }
    const __m512i limit = _mm512_mask_blend_epi32(negative, _mm512_set1_epi32(k->positive_max_code32),
                                                  _mm512_set1_epi32(k->negative_max_code32));
    const __mmask16 saturated = _mm512_cmpgt_epi32_mask(code, limit);
    code = _mm512_maskz_mov_epi32((__mmask16)~is_zero, _mm512_min_epi32(code, limit));

    const __mmask16 sign_allowed = k->is_signed ? (__mmask16)0xFFFF : (__mmask16)(~negative | is_zero);
    const __mmask16 fast = (is_zero | is_normal | is_subnormal) & sign_allowed & (__mmask16)~stochastic_slow & valid;
    const __mmask16 nonzero = _mm512_test_epi32_mask(code, code);
    const __m512i sign_part = _mm512_mask_blend_epi32(nonzero, _mm512_set1_epi32((int)k->zero_sign_bit),
                                                      _mm512_set1_epi32((int)k->sign_bit));
    const __m512i signed_code = _mm512_mask_or_epi32(code, negative, code, sign_part);
    const __mmask16 rounded = (is_normal | is_subnormal) & fast;
    counts->inexact += __builtin_popcount(rounded & (_mm512_test_epi32_mask(remainder, remainder) | saturated));
    counts->overflow += __builtin_popcount(rounded & saturated);
    counts->underflow += __builtin_popcount(is_subnormal & fast & ~nonzero);
    counts->denormal += __builtin_popcount(
        is_subnormal & fast & nonzero &
        _mm512_cmplt_epi32_mask(code, _mm512_set1_epi32((int32_t)k->min_normal_code)));
    counts->slow += __builtin_popcount(valid & ~fast);
    *fast_out = fast;
    if (want_values) {
        const int m_bits = 23 - k->shift32;
        const __m512i min_normal_code = _mm512_set1_epi32((int32_t)k->min_normal_code);
        const __m512i field = _mm512_srlv_epi32(code, _mm512_set1_epi32(m_bits));
        const __m512i mantissa = _mm512_and_si512(code, _mm512_sub_epi32(min_normal_code, one));
        const __mmask16 field_zero = _mm512_testn_epi32_mask(field, field);
        const __m512i significand = _mm512_mask_blend_epi32(field_zero, _mm512_add_epi32(min_normal_code, mantissa),
                                                            mantissa);
        const __m512i exponent = _mm512_mask_blend_epi32(
            field_zero, _mm512_add_epi32(field, _mm512_set1_epi32((int32_t)k->normal_exponent_offset)),
            _mm512_set1_epi32((int32_t)k->subnormal_exponent));
        const __m512 power = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(exponent, _mm512_set1_epi32(127)), 23));
        const __m512 magnitude_value = _mm512_mul_ps(_mm512_cvtepi32_ps(significand), power);
        const __mmask16 negative_value = negative & (k->has_negative_zero ? (__mmask16)0xFFFF : nonzero);
        *value = _mm512_castsi512_ps(_mm512_mask_or_epi32(_mm512_castps_si512(magnitude_value), negative_value,
                                                          _mm512_castps_si512(magnitude_value),
                                                          _mm512_set1_epi32((int)0x80000000u)));
    }
    return signed_code;
}

/* Whether every valid lane is a normal float32 whose quotient (its bits minus offset) is a normal
 * float32 at or above the element's 2^emin, of a sign the element has: lanes_round_normal's case. */
LANES_INLINE int lanes_all_normal(const __m512i input_bits, const __m512i offset, const element_constants *restrict k,
                                  const __mmask16 valid)
{
    const __m512i magnitude = _mm512_and_si512(input_bits, _mm512_set1_epi32(0x7FFFFFFF));
    const __m512i a = _mm512_sub_epi32(magnitude, offset);
    const __mmask16 x_normal = _mm512_cmple_epu32_mask(_mm512_sub_epi32(magnitude, _mm512_set1_epi32(0x00800000)),
                                                       _mm512_set1_epi32((int)(0x7F7FFFFFu - 0x00800000u)));
    const __mmask16 q_normal = _mm512_cmple_epu32_mask(_mm512_sub_epi32(a, _mm512_set1_epi32((int)k->normal_lo32)),
                                                       _mm512_set1_epi32((int)(0x7F7FFFFFu - k->normal_lo32)));
    const __mmask16 sign_allowed = k->is_signed ? (__mmask16)0xFFFF : (__mmask16)~_mm512_movepi32_mask(input_bits);
    return (__mmask16)(x_normal & q_normal & sign_allowed & valid) == valid;
}

/*
 * lanes_round_f32 where lanes_all_normal holds: every lane takes the normal branch (s = shift,
 * v = a, base = -rebias), every code is at least 2^m (nonzero), and the value of a normal code
 * N is the float32 whose bits are (N + rebias) << shift, exactly the element's value.
 */
LANES_INLINE __m512i lanes_round_normal(const __m512i input_bits, const __m512i offset, const int mode,
                                        const element_constants *restrict k, const uint64_t stream_key,
                                        const uint64_t first_index, const __mmask16 valid, const int want_values,
                                        __m512 *value, lanes_counts *counts)
{
    const __m512i one = _mm512_set1_epi32(1);
    const __m128i shift = _mm_cvtsi32_si128(k->shift32);
    const __m512i sign_mask = _mm512_set1_epi32((int)0x80000000u);
    const __m512i magnitude = _mm512_andnot_si512(sign_mask, input_bits);
    const __mmask16 negative = _mm512_movepi32_mask(input_bits);
    const __m512i a = _mm512_sub_epi32(magnitude, offset);
    const __m512i mask = _mm512_set1_epi32((int)((1u << k->shift32) - 1));
    const __m512i remainder = _mm512_and_si512(a, mask);
    const __m512i units = _mm512_srl_epi32(a, shift); /* the code plus rebias, rounded toward zero */
    __m512i rounded_units;
    if (mode == FL_ROUND_STOCHASTIC) {
        const __m512i top = lanes_top_words(stream_key, first_index);
        const __mmask16 away = _mm512_cmplt_epu32_mask(_mm512_srl_epi32(top, _mm_cvtsi32_si128(32 - k->shift32)),
                                                       remainder);
        rounded_units = _mm512_mask_add_epi32(units, away, units, one);
    } else if (mode == FL_ROUND_ODD) {
        rounded_units = _mm512_mask_or_epi32(units, _mm512_test_epi32_mask(remainder, remainder), units, one);
    } else if (mode == FL_ROUND_TOWARD_ZERO) {
        rounded_units = units;
    } else {
        const __m512i half = _mm512_set1_epi32((int)(1u << (k->shift32 - 1)));
        __m512i increment;
        switch (mode) {
        case FL_ROUND_NEAREST_EVEN:
            increment = _mm512_add_epi32(_mm512_sub_epi32(half, one), _mm512_and_si512(units, one));
            break;
        case FL_ROUND_NEAREST_AWAY: increment = half; break;
        case FL_ROUND_UP: increment = _mm512_maskz_mov_epi32((__mmask16)~negative, mask); break;
        default: increment = _mm512_maskz_mov_epi32(negative, mask); break; /* FL_ROUND_DOWN */
        }
        rounded_units = _mm512_srl_epi32(_mm512_add_epi32(a, increment), shift);
    }
    const __m512i rebias = _mm512_set1_epi32(k->rebias32);
    __m512i code = _mm512_sub_epi32(rounded_units, rebias);
    const __m512i limit = k->positive_max_code32 == k->negative_max_code32
                              ? _mm512_set1_epi32(k->positive_max_code32)
                              : _mm512_mask_blend_epi32(negative, _mm512_set1_epi32(k->positive_max_code32),
                                                        _mm512_set1_epi32(k->negative_max_code32));
    const __mmask16 saturated = _mm512_cmpgt_epi32_mask(code, limit);
    code = _mm512_min_epi32(code, limit);
    counts->inexact += __builtin_popcount(valid & (_mm512_test_epi32_mask(remainder, remainder) | saturated));
    counts->overflow += __builtin_popcount(valid & saturated);
    if (want_values)
        *value = _mm512_castsi512_ps(_mm512_or_si512(_mm512_sll_epi32(_mm512_add_epi32(code, rebias), shift),
                                                     _mm512_and_si512(input_bits, sign_mask)));
    return _mm512_mask_or_epi32(code, negative, code, _mm512_set1_epi32((int)k->sign_bit));
}

/* odd_quotient_by_reciprocal of 16 float32 x: RO32(x / S), NaN bits where it is not kept. */
LANES_INLINE __m512i lanes_odd_quotients(const __m512 x, const __m512d reciprocal, const __m512d product_scale)
{
    const __m512d sign = _mm512_set1_pd(-0.0);
    const __m512d x_low = _mm512_cvtps_pd(_mm512_castps512_ps256(x));
    const __m512d x_high = _mm512_cvtps_pd(_mm512_extractf32x8_ps(x, 1));
    const __m256 nearest_low = _mm512_cvtpd_ps(_mm512_mul_pd(x_low, reciprocal));
    const __m256 nearest_high = _mm512_cvtpd_ps(_mm512_mul_pd(x_high, reciprocal));
    const __m512d magnitude_low = _mm512_andnot_pd(sign, _mm512_cvtps_pd(nearest_low));
    const __m512d magnitude_high = _mm512_andnot_pd(sign, _mm512_cvtps_pd(nearest_high));
    const __m512d product_low = _mm512_mul_pd(magnitude_low, product_scale);
    const __m512d product_high = _mm512_mul_pd(magnitude_high, product_scale);
    const __m512d x_magnitude_low = _mm512_andnot_pd(sign, x_low), x_magnitude_high = _mm512_andnot_pd(sign, x_high);
#define LANES_BOTH(LOW, HIGH) ((__mmask16)((unsigned)(LOW) | ((unsigned)(HIGH) << 8)))
    const __mmask16 above = LANES_BOTH(_mm512_cmp_pd_mask(product_low, x_magnitude_low, _CMP_GT_OQ),
                                       _mm512_cmp_pd_mask(product_high, x_magnitude_high, _CMP_GT_OQ));
    const __mmask16 inexact = LANES_BOTH(_mm512_cmp_pd_mask(product_low, x_magnitude_low, _CMP_NEQ_UQ),
                                         _mm512_cmp_pd_mask(product_high, x_magnitude_high, _CMP_NEQ_UQ));
#undef LANES_BOTH
    const __m512i nearest = _mm512_castps_si512(
        _mm512_insertf32x8(_mm512_castps256_ps512(nearest_low), nearest_high, 1));
    /* 2^-126 < |f| <= FLT_MAX on f's bits (NaN bits lie above FLT_MAX's), or x = +-0 */
    const __m512i nearest_magnitude = _mm512_and_si512(nearest, _mm512_set1_epi32(0x7FFFFFFF));
    const __mmask16 kept = (_mm512_cmpgt_epu32_mask(nearest_magnitude, _mm512_set1_epi32(0x00800000)) &
                            _mm512_cmple_epu32_mask(nearest_magnitude, _mm512_set1_epi32(0x7F7FFFFF))) |
                           _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_EQ_OQ);
    const __m512i one = _mm512_set1_epi32(1);
    __m512i odd = _mm512_mask_sub_epi32(nearest, above, nearest, one);
    odd = _mm512_mask_or_epi32(odd, inexact, odd, one);
    return _mm512_mask_blend_epi32(kept, _mm512_set1_epi32(0x7FC00000), odd);
}

/*
 * The round-to-odd quotient bits from the float32 estimate f (nearest_bits, |f| >= 0) and the
 * signs of |f| S - |x| (above: > 0, inexact: != 0), shared by lanes_odd_quotients_f32 and
 * lanes_odd_quotients_split: f - 1 ulp where |f| S > |x|, the odd bit set where inexact, x's sign;
 * a lane outside 2^-110 <= |f| <= FLT_MAX (tiny_bits), unless x = +-0, gives the NaN pattern that
 * sends it to the exact path.
 */
LANES_INLINE __m512i lanes_odd_from_estimate(const __m512 x, const __m512i nearest_bits, const __mmask16 above,
                                             const __mmask16 inexact, const __m512i tiny_bits)
{
    const __m512i sign_mask = _mm512_set1_epi32((int)0x80000000u);
    const __mmask16 kept = (_mm512_cmpge_epu32_mask(nearest_bits, tiny_bits) &
                            _mm512_cmple_epu32_mask(nearest_bits, _mm512_set1_epi32(0x7F7FFFFF))) |
                           _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_EQ_OQ);
    const __m512i one = _mm512_set1_epi32(1);
    __m512i odd = _mm512_mask_sub_epi32(nearest_bits, above, nearest_bits, one);
    odd = _mm512_mask_or_epi32(odd, inexact, odd, one);
    odd = _mm512_or_si512(odd, _mm512_and_si512(_mm512_castps_si512(x), sign_mask));
    return _mm512_mask_blend_epi32(kept, _mm512_set1_epi32(0x7FC00000), odd);
}

/*
 * lanes_odd_quotients where S is a float32 in [2^-126, 2^100] (block->f32_reciprocal): RO32(x / S)
 * in 16 float32 lanes, no float64 conversion.  With r = RN64(1/S) = hi + lo + d (hi = RN32(r),
 * lo = RN32(r - hi), the difference exact in float64) and q = |x| / S:
 *   f = RN32(|x| hi + RN32(|x| lo))            (one fused multiply-add: one rounding)
 * is RN32 of q (1 + e), |e| < 2^-38: 1/S - hi - lo is below 2^-47 / S plus 2^-150 (lo may be
 * subnormal; S <= 2^100 keeps that below 2^-50 / S), RN32(|x| lo) is off by 2^-48 q plus 2^-150,
 * and the lanes kept have q > 2^-111 (below).  So q lies strictly between f's float32 neighbours
 * (they are at least 2^-26 f away), as in odd_quotient_by_reciprocal, and the sign of
 * |f| S - |x| says whether q lies below f, on it or above it.  That sign is exact: the fused
 * multiply-add rounds |f| S - |x| once, and it is a nonzero multiple of 2^(E_f + E_S - 46) or of
 * x's ulp, at least 2^-149 when |f| >= 2^(-103 - E_S), so it never rounds to zero unless it is
 * zero.  Kept: tiny_bits <= |f| <= FLT_MAX (tiny_bits is 2^max(-110, -103 - E_S), above 2^-126),
 * or x = +-0; the others get NaN bits and the caller's exact path.  The result is the same RO32
 * as lanes_odd_quotients gives for every lane either keeps (RO32 is a function of q).
 */
LANES_INLINE __m512i lanes_odd_quotients_f32(const __m512 x, const __m512 hi, const __m512 lo, const __m512 scale,
                                             const __m512i tiny_bits)
{
    const __m512i sign_mask = _mm512_set1_epi32((int)0x80000000u);
    const __m512 x_magnitude = _mm512_castsi512_ps(_mm512_andnot_si512(sign_mask, _mm512_castps_si512(x)));
    const __m512 nearest = _mm512_fmadd_ps(x_magnitude, hi, _mm512_mul_ps(x_magnitude, lo));
    const __m512 residual = _mm512_fmsub_ps(nearest, scale, x_magnitude); /* |f| S - |x|, rounded once */
    const __mmask16 above = _mm512_cmp_ps_mask(residual, _mm512_setzero_ps(), _CMP_GT_OQ);
    const __mmask16 inexact = _mm512_cmp_ps_mask(residual, _mm512_setzero_ps(), _CMP_NEQ_UQ);
    const __m512i nearest_bits = _mm512_castps_si512(nearest); /* +0 or positive: fma of magnitudes */
    return lanes_odd_from_estimate(x, nearest_bits, above, inexact, tiny_bits);
}

/*
 * lanes_odd_quotients where S is short but not a float32, in [2^-126, 2^100]
 * (block->split_reciprocal, NVFP4): the estimate f as in lanes_odd_quotients_f32 (q strictly
 * between f's float32 neighbours where 2^-110 <= |f|: the error analysis there does not use S's
 * width), the correction as in lanes_odd_quotients, |f| S exact in float64 (24 + 29 bits).
 * Kept: 2^-110 <= |f| <= FLT_MAX (tiny_bits), or x = +-0.
 */
LANES_INLINE __m512i lanes_odd_quotients_split(const __m512 x, const __m512 hi, const __m512 lo,
                                               const __m512d product_scale, const __m512i tiny_bits)
{
    const __m512i sign_mask = _mm512_set1_epi32((int)0x80000000u);
    const __m512 x_magnitude = _mm512_castsi512_ps(_mm512_andnot_si512(sign_mask, _mm512_castps_si512(x)));
    const __m512 nearest = _mm512_fmadd_ps(x_magnitude, hi, _mm512_mul_ps(x_magnitude, lo));
    const __m512d product_low = _mm512_mul_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(nearest)), product_scale);
    const __m512d product_high = _mm512_mul_pd(_mm512_cvtps_pd(_mm512_extractf32x8_ps(nearest, 1)), product_scale);
    const __m512d x_low = _mm512_cvtps_pd(_mm512_castps512_ps256(x_magnitude));
    const __m512d x_high = _mm512_cvtps_pd(_mm512_extractf32x8_ps(x_magnitude, 1));
#define LANES_BOTH(LOW, HIGH) ((__mmask16)((unsigned)(LOW) | ((unsigned)(HIGH) << 8)))
    const __mmask16 above = LANES_BOTH(_mm512_cmp_pd_mask(product_low, x_low, _CMP_GT_OQ),
                                       _mm512_cmp_pd_mask(product_high, x_high, _CMP_GT_OQ));
    const __mmask16 inexact = LANES_BOTH(_mm512_cmp_pd_mask(product_low, x_low, _CMP_NEQ_UQ),
                                         _mm512_cmp_pd_mask(product_high, x_high, _CMP_NEQ_UQ));
#undef LANES_BOTH
    const __m512i nearest_bits = _mm512_castps_si512(nearest);
    return lanes_odd_from_estimate(x, nearest_bits, above, inexact, tiny_bits);
}

/* (float)((double)value * scale) of 16 lanes: the value times S in float64, rounded once. */
LANES_INLINE __m512 lanes_times_f64(const __m512 value, const __m512d scale)
{
    const __m256 low = _mm512_cvtpd_ps(_mm512_mul_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(value)), scale));
    const __m256 high = _mm512_cvtpd_ps(_mm512_mul_pd(_mm512_cvtps_pd(_mm512_extractf32x8_ps(value, 1)), scale));
    return _mm512_insertf32x8(_mm512_castps256_ps512(low), high, 1);
}

/* stochastic_divide_body on 8 float32 x (one half of a step): the codes (32-bit lanes), the
 * values (float32, when wanted) and the mask of lanes done; counts added for those. */
LANES_INLINE __m256i lanes_stochastic_divide(const __m256 x, const __m512d divisor, const __m512d value_scale,
                                             const element_constants *restrict k, const int64_t subnormal_grid,
                                             const uint64_t key, const uint64_t first_index, const __mmask8 valid,
                                             const int want_values, __m256 *value, __mmask8 *fast_out,
                                             lanes_counts *counts)
{
    const __m512i one = _mm512_set1_epi64(1);
    const __m512d xd = _mm512_cvtps_pd(x);
    const __m512d q = _mm512_div_pd(xd, divisor);
    const __m512i q_bits = _mm512_castpd_si512(q);
    const __m512i a = _mm512_and_si512(q_bits, _mm512_set1_epi64(FLOAT64_MAGNITUDE));
    const __mmask8 negative = _mm512_movepi64_mask(q_bits);
    const __m512i normal_lo = _mm512_set1_epi64(k->normal_lo);
    const __mmask8 is_zero = _mm512_testn_epi64_mask(a, a);
    const __mmask8 lost = is_zero & _mm512_cmp_pd_mask(xd, _mm512_setzero_pd(), _CMP_NEQ_UQ);
    const __mmask8 is_normal = _mm512_cmpge_epi64_mask(a, normal_lo) &
                               _mm512_cmplt_epi64_mask(a, _mm512_set1_epi64(FLOAT64_INF_BITS));
    const __m512i wide = _mm512_sub_epi64(_mm512_set1_epi64(subnormal_grid + 1023), _mm512_srli_epi64(a, 52));
    const __mmask8 is_subnormal = k->subnormals ? (__mmask8)(_mm512_cmplt_epi64_mask(a, normal_lo) &
                                                             _mm512_cmpge_epi64_mask(a, _mm512_set1_epi64(FLOAT64_MIN_NORMAL_BITS)) &
                                                             _mm512_cmplt_epi64_mask(wide, _mm512_set1_epi64(64)))
                                                : (__mmask8)0;
    const __mmask8 sign_allowed = k->is_signed ? (__mmask8)0xFF : (__mmask8)(~negative | is_zero);
    const __m128i shift = _mm_cvtsi64_si128(k->shift), up = _mm_cvtsi64_si128(64 - k->shift);
    const __m512i normal_remainder = _mm512_and_si512(a, _mm512_set1_epi64(k->mask));
    const __m512i normal_threshold = _mm512_sll_epi64(normal_remainder, up);
    const __m512i word = lanes_words(key, first_index);
    if ((__mmask8)(is_normal & sign_allowed & valid) == valid) {
        /* every lane normal: the normal branch alone, and a normal code N's value is the float64
         * whose bits are (N + rebias) << shift */
        const __m512i rebias = _mm512_set1_epi64(k->rebias);
        const __mmask8 away = _mm512_cmplt_epu64_mask(word, normal_threshold);
        const __m512i lower = _mm512_sub_epi64(_mm512_srl_epi64(a, shift), rebias);
        __m512i code = _mm512_mask_add_epi64(lower, away, lower, one);
        const __m512i limit = k->positive_max_code == k->negative_max_code
                                  ? _mm512_set1_epi64(k->positive_max_code)
                                  : _mm512_mask_blend_epi64(negative, _mm512_set1_epi64(k->positive_max_code),
                                                            _mm512_set1_epi64(k->negative_max_code));
        const __mmask8 saturated = _mm512_cmpgt_epi64_mask(code, limit);
        code = _mm512_min_epi64(code, limit);
        counts->inexact += __builtin_popcount(valid & (_mm512_test_epi64_mask(normal_remainder, normal_remainder) |
                                                       saturated));
        counts->overflow += __builtin_popcount(valid & saturated);
        *fast_out = valid;
        if (want_values) {
            const __m512i sign = _mm512_and_si512(q_bits, _mm512_set1_epi64((long long)0x8000000000000000ULL));
            const __m512d signed_value = _mm512_castsi512_pd(
                _mm512_or_si512(_mm512_sll_epi64(_mm512_add_epi64(code, rebias), shift), sign));
            *value = _mm512_cvtpd_ps(_mm512_mul_pd(signed_value, value_scale));
        }
        return _mm512_cvtepi64_epi32(_mm512_mask_or_epi64(code, negative, code, _mm512_set1_epi64(k->sign_bit)));
    }
    const __mmask8 fast = ((is_zero & (__mmask8)~lost) | is_normal | is_subnormal) & sign_allowed & valid;
    const __mmask8 rounded = (is_normal | is_subnormal) & fast;
    const __mmask8 subnormal = is_subnormal & fast;
    const __m512d two_52 = _mm512_set1_pd(0x1p52);
    const __m512d y = _mm512_mul_pd(_mm512_castsi512_pd(a), _mm512_set1_pd(k->subnormal_factor));
    const __m512d shifted = _mm512_add_pd(y, two_52);
    const __m512i two_52_bits = _mm512_set1_epi64(TWO_52_BITS);
    const __m512i nearest_code = _mm512_sub_epi64(_mm512_castpd_si512(shifted), two_52_bits);
    const __mmask8 rounded_up = _mm512_cmp_pd_mask(_mm512_sub_pd(shifted, two_52), y, _CMP_GT_OQ);
    const __m512i floor_code = _mm512_mask_sub_epi64(nearest_code, rounded_up, nearest_code, one);
    const __m512d fraction =
        _mm512_sub_pd(y, _mm512_sub_pd(_mm512_castsi512_pd(_mm512_add_epi64(floor_code, two_52_bits)), two_52));
    const __m512d kept_fraction = _mm512_maskz_mov_pd(is_subnormal, fraction);
    const __m512i subnormal_threshold = _mm512_cvttpd_epu64(_mm512_mul_pd(kept_fraction, _mm512_set1_pd(0x1p64)));
    const __m512i threshold = _mm512_mask_blend_epi64(is_normal, subnormal_threshold, normal_threshold);
    const __m512i lower = _mm512_mask_blend_epi64(
        is_normal, floor_code, _mm512_sub_epi64(_mm512_srl_epi64(a, shift), _mm512_set1_epi64(k->rebias)));
    const __mmask8 inexact_lane = (is_normal & _mm512_test_epi64_mask(normal_remainder, normal_remainder)) |
                                  ((__mmask8)~is_normal & _mm512_cmp_pd_mask(fraction, _mm512_setzero_pd(), _CMP_NEQ_UQ));
    const __mmask8 away = _mm512_cmplt_epu64_mask(word, threshold);
    __m512i code = _mm512_maskz_mov_epi64(rounded, _mm512_mask_add_epi64(lower, away, lower, one));
    const __m512i limit = _mm512_mask_blend_epi64(negative, _mm512_set1_epi64(k->positive_max_code),
                                                  _mm512_set1_epi64(k->negative_max_code));
    const __mmask8 saturated = rounded & _mm512_cmpgt_epi64_mask(code, limit);
    code = _mm512_mask_mov_epi64(code, saturated, limit);
    const __mmask8 nonzero = _mm512_test_epi64_mask(code, code);
    const __m512i sign_part = _mm512_mask_blend_epi64(nonzero, _mm512_set1_epi64(k->zero_sign_bit),
                                                      _mm512_set1_epi64(k->sign_bit));
    const __m512i signed_code = _mm512_mask_or_epi64(code, negative, code, sign_part);
    counts->inexact += __builtin_popcount(rounded & (inexact_lane | saturated));
    counts->overflow += __builtin_popcount(saturated);
    counts->underflow += __builtin_popcount(subnormal & ~nonzero);
    counts->denormal += __builtin_popcount(subnormal & nonzero &
                                           _mm512_cmplt_epi64_mask(code, _mm512_set1_epi64(k->min_normal_code)));
    counts->slow += __builtin_popcount(valid & ~fast);
    *fast_out = fast;
    if (want_values) {
        const __m512i min_normal_code = _mm512_set1_epi64(k->min_normal_code);
        const __m512i field = _mm512_srl_epi64(code, _mm_cvtsi64_si128(52 - k->shift));
        const __m512i mantissa = _mm512_and_si512(code, _mm512_sub_epi64(min_normal_code, one));
        const __mmask8 field_zero = _mm512_testn_epi64_mask(field, field);
        const __m512i significand = _mm512_mask_blend_epi64(field_zero, _mm512_add_epi64(min_normal_code, mantissa),
                                                            mantissa);
        const __m512i exponent = _mm512_mask_blend_epi64(
            field_zero, _mm512_add_epi64(field, _mm512_set1_epi64(k->normal_exponent_offset)),
            _mm512_set1_epi64(k->subnormal_exponent));
        const __m512d power = _mm512_castsi512_pd(_mm512_slli_epi64(_mm512_add_epi64(exponent, _mm512_set1_epi64(1023)), 52));
        const __m512d magnitude_value = _mm512_mul_pd(_mm512_cvtepi64_pd(significand), power);
        const __mmask8 negative_value = negative & (k->has_negative_zero ? (__mmask8)0xFF : nonzero);
        const __m512d signed_value = _mm512_castsi512_pd(_mm512_mask_or_epi64(
            _mm512_castpd_si512(magnitude_value), negative_value, _mm512_castpd_si512(magnitude_value),
            _mm512_set1_epi64((long long)0x8000000000000000ULL)));
        *value = _mm512_cvtpd_ps(_mm512_mul_pd(signed_value, value_scale));
    }
    return _mm512_cvtepi64_epi32(signed_code);
}

/*
 * One chunk of a row through a path: count <= CHUNK float32 x (x points to the chunk's first),
 * whose first element is column `offset` (a multiple of 16) of the block *block, the blocks
 * block_columns (a multiple of 16) wide and consecutive in memory.  Codes (with their sign
 * bits, before any two's complement) go to codes[] without values, or the elements' values to
 * values[] (the output row itself); slow[i / 16] is the mask of the lanes of step i that the
 * caller redoes (codes[] holds nothing there); counts are added.
 */
LANES_INLINE void lanes_chunk_body(const int path, const int mode, const float *restrict x, const int count,
                                   const block_scale *block, int64_t offset, const int64_t block_columns,
                                   const element_constants *restrict constants, const int64_t subnormal_grid,
                                   const uint64_t stream_key, const uint64_t first_index, uint32_t *restrict codes,
                                   float *restrict values, uint16_t *restrict slow, lanes_counts *total,
                                   const int want_values, const int want_counts)
{
    /* counts in registers (the library is built with -fno-strict-aliasing: counts in memory
     * would be reloaded after every store) */
    lanes_counts local = {0, 0, 0, 0, 0};
    /* the constants in a local copy, for the same reason: read through the pointer, every step
     * reloaded and rebroadcast them after the stores; a copy whose address does not escape
     * stays in registers */
    const element_constants local_constants = *constants;
    const element_constants *restrict k = &local_constants;
    lanes_counts *counts = &local;
    for (int i = 0; i < count; i += 16) {
        if (offset == block_columns) {
            block++;
            offset = 0;
        }
        offset += 16;
        const int left = count - i;
        const __mmask16 valid = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
        const __m512 xs = _mm512_maskz_loadu_ps(valid, x + i);
        __m512i code;
        __m512 value = _mm512_setzero_ps();
        __mmask16 fast;
        if (path == LANES_POWER || path == LANES_RECIPROCAL) {
            const __m512i input =
                path == LANES_POWER ? _mm512_castps_si512(xs)
                : block->f32_reciprocal
                    ? lanes_odd_quotients_f32(xs, _mm512_set1_ps(block->reciprocal_hi),
                                              _mm512_set1_ps(block->reciprocal_lo), _mm512_set1_ps(block->value32),
                                              _mm512_set1_epi32((int)block->tiny_bits))
                : block->split_reciprocal
                    ? lanes_odd_quotients_split(xs, _mm512_set1_ps(block->reciprocal_hi),
                                                _mm512_set1_ps(block->reciprocal_lo),
                                                _mm512_set1_pd(block->product_scale),
                                                _mm512_set1_epi32((int)block->tiny_bits))
                    : lanes_odd_quotients(xs, _mm512_set1_pd(block->reciprocal), _mm512_set1_pd(block->product_scale));
            const __m512i offset = path == LANES_POWER ? _mm512_set1_epi32((int)block->exponent_offset)
                                                       : _mm512_setzero_si512();
            /* elements whose smallest normal is 1 or more (E2M1, E2M3) see subnormal results in
             * nearly every step of normal data: the test would only cost there (either branch
             * gives the same bits) */
            if (k->normal_lo32 < 0x3F800000u && lanes_all_normal(input, offset, k, valid)) {
                code = lanes_round_normal(input, offset, mode, k, stream_key, first_index + (uint64_t)i, valid,
                                          want_values, &value, counts);
                fast = valid;
            } else {
                code = lanes_round_f32(input, offset, mode, k, stream_key, first_index + (uint64_t)i, valid,
                                       want_values, &value, &fast, counts);
            }
            /* the value times S: one float32 multiplication where S is a float32 (the correctly
             * rounded product, as (float)(value * S) of the exact float64 product), else in float64 */
            if (want_values)
                value = path == LANES_POWER || (double)block->value32 == block->value
                            ? _mm512_mul_ps(value, _mm512_set1_ps(block->value32))
                        : block->split_value
                            ? _mm512_mul_ps(_mm512_mul_ps(value, _mm512_set1_ps(block->value_a)),
                                            _mm512_set1_ps(block->value_b))
                            : lanes_times_f64(value, _mm512_set1_pd(block->value));
        } else {
            const __m512d divisor = _mm512_set1_pd(block->operand), value_scale = _mm512_set1_pd(block->value);
            __m256 value_low = _mm256_setzero_ps(), value_high = _mm256_setzero_ps();
            __mmask8 fast_low, fast_high;
            const __m256i code_low = lanes_stochastic_divide(_mm512_castps512_ps256(xs), divisor, value_scale, k,
                                                             subnormal_grid, stream_key, first_index + (uint64_t)i,
                                                             (__mmask8)valid, want_values, &value_low, &fast_low,
                                                             counts);
            const __m256i code_high = lanes_stochastic_divide(_mm512_extractf32x8_ps(xs, 1), divisor, value_scale, k,
                                                              subnormal_grid, stream_key, first_index + (uint64_t)i + 8,
                                                              (__mmask8)(valid >> 8), want_values, &value_high,
                                                              &fast_high, counts);
            code = _mm512_inserti64x4(_mm512_castsi256_si512(code_low), code_high, 1);
            value = _mm512_insertf32x8(_mm512_castps256_ps512(value_low), value_high, 1);
            fast = (__mmask16)((unsigned)fast_low | ((unsigned)fast_high << 8));
        }
        slow[i >> 4] = (uint16_t)(valid & ~fast);
        if (valid == 0xFFFF) {
            if (want_values)
                _mm512_storeu_ps(values + i, value);
            else
                _mm512_storeu_si512(codes + i, code);
        } else {
            if (want_values)
                _mm512_mask_storeu_ps(values + i, valid, value);
            else
                _mm512_mask_storeu_epi32(codes + i, valid, code);
        }
    }
    if (want_counts) { /* otherwise the compiler drops the counting */
        total->inexact += local.inexact;
        total->overflow += local.overflow;
        total->underflow += local.underflow;
        total->denormal += local.denormal;
    }
    total->slow += local.slow;
}

/* The copies of lanes_chunk_body, one per (path, mode), and the choice among them. */
typedef void (*lanes_chunk_function)(const float *restrict x, int count, const block_scale *block, int64_t offset,
                                     int64_t block_columns, const element_constants *restrict k,
                                     int64_t subnormal_grid, uint64_t stream_key, uint64_t first_index,
                                     uint32_t *restrict codes, float *restrict values, uint16_t *restrict slow,
                                     int want_counts, lanes_counts *counts);
#define DEFINE_LANES_CHUNK(PATH, MODE, NAME)                                                     \
    static void NAME(const float *restrict x, int count, const block_scale *block, int64_t offset, \
                     int64_t block_columns, const element_constants *restrict k, int64_t subnormal_grid, \
                     uint64_t stream_key, uint64_t first_index, uint32_t *restrict codes,         \
                     float *restrict values, uint16_t *restrict slow, int want_counts,            \
                     lanes_counts *counts)                                                        \
    {                                                                                            \
        /* values and counts as constants: four copies */                                      \
        if (values && want_counts)                                                               \
            lanes_chunk_body(PATH, MODE, x, count, block, offset, block_columns, k, subnormal_grid, stream_key, \
                             first_index, codes, values, slow, counts, 1, 1);                    \
        else if (values)                                                                         \
            lanes_chunk_body(PATH, MODE, x, count, block, offset, block_columns, k, subnormal_grid, stream_key, \
                             first_index, codes, values, slow, counts, 1, 0);                    \
        else if (want_counts)                                                                    \
            lanes_chunk_body(PATH, MODE, x, count, block, offset, block_columns, k, subnormal_grid, stream_key, \
                             first_index, codes, values, slow, counts, 0, 1);                    \
        else                                                                                     \
            lanes_chunk_body(PATH, MODE, x, count, block, offset, block_columns, k, subnormal_grid, stream_key, \
                             first_index, codes, values, slow, counts, 0, 0);                    \
    }
#define DEFINE_LANES_MODES(PATH, NAME)                                                           \
    DEFINE_LANES_CHUNK(PATH, FL_ROUND_NEAREST_EVEN, NAME##_nearest_even)                         \
    DEFINE_LANES_CHUNK(PATH, FL_ROUND_NEAREST_AWAY, NAME##_nearest_away)                         \
    DEFINE_LANES_CHUNK(PATH, FL_ROUND_TOWARD_ZERO, NAME##_toward_zero)                           \
    DEFINE_LANES_CHUNK(PATH, FL_ROUND_UP, NAME##_up)                                             \
    DEFINE_LANES_CHUNK(PATH, FL_ROUND_DOWN, NAME##_down)                                         \
    DEFINE_LANES_CHUNK(PATH, FL_ROUND_ODD, NAME##_odd)
DEFINE_LANES_MODES(LANES_POWER, lanes_power)
DEFINE_LANES_MODES(LANES_RECIPROCAL, lanes_reciprocal)
DEFINE_LANES_CHUNK(LANES_POWER, FL_ROUND_STOCHASTIC, lanes_power_stochastic)
DEFINE_LANES_CHUNK(LANES_DIVIDE, FL_ROUND_STOCHASTIC, lanes_divide_stochastic)

/* The chunk function of a path and rounding mode (modes in enum fl_rounding_mode's order, the
 * deterministic ones first); NULL where no lanes path applies. */
static lanes_chunk_function lanes_chunk_function_of(int path, int mode)
{
    static const lanes_chunk_function power[6] = {lanes_power_nearest_even, lanes_power_nearest_away,
                                                  lanes_power_toward_zero,  lanes_power_up,
                                                  lanes_power_down,         lanes_power_odd};
    static const lanes_chunk_function reciprocal[6] = {lanes_reciprocal_nearest_even, lanes_reciprocal_nearest_away,
                                                       lanes_reciprocal_toward_zero,  lanes_reciprocal_up,
                                                       lanes_reciprocal_down,         lanes_reciprocal_odd};
    if (mode == FL_ROUND_STOCHASTIC)
        return path == LANES_POWER ? lanes_power_stochastic : path == LANES_DIVIDE ? lanes_divide_stochastic : NULL;
    if (mode < 0 || mode >= 6)
        return NULL;
    return path == LANES_POWER ? power[mode] : path == LANES_RECIPROCAL ? reciprocal[mode] : NULL;
}

/* ---- block maxima ------------------------------------------------------------------------ */

/* The 16 block maxima of 16 consecutive blocks of VECTORS (1 or 2) x 16 float32 magnitudes, in
 * block order: a reduction network that halves the partial maxima of every block at each level
 * while packing two blocks' partials into one register (three operations per pair and level,
 * instead of a horizontal reduction per block), then a 4 x 4 transpose of the result. */
LANES_INLINE __m512i lanes_maxima_of_16_blocks(const uint32_t *restrict bits, const int vectors)
{
    const __m512i magnitude = _mm512_set1_epi32(0x7FFFFFFF);
    __m512i m[16];
    for (int b = 0; b < 16; b++) {
        m[b] = _mm512_and_si512(_mm512_loadu_si512(bits + 16 * vectors * b), magnitude);
        if (vectors == 2)
            m[b] = _mm512_max_epu32(m[b], _mm512_and_si512(_mm512_loadu_si512(bits + 16 * vectors * b + 16), magnitude));
    }
    __m512i c[8], d[4], g[2];
    for (int i = 0; i < 8; i++) /* block 2i in lanes 0-7, 2i + 1 in lanes 8-15 */
        c[i] = _mm512_max_epu32(_mm512_shuffle_i32x4(m[2 * i], m[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                                _mm512_shuffle_i32x4(m[2 * i], m[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    for (int i = 0; i < 4; i++) /* block 4i + k in the 128-bit lane k */
        d[i] = _mm512_max_epu32(_mm512_shuffle_i32x4(c[2 * i], c[2 * i + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                                _mm512_shuffle_i32x4(c[2 * i], c[2 * i + 1], _MM_SHUFFLE(3, 1, 3, 1)));
    for (int i = 0; i < 2; i++) /* 128-bit lane k: two partials of block 8i + k, two of 8i + 4 + k */
        g[i] = _mm512_max_epu32(_mm512_unpacklo_epi64(d[2 * i], d[2 * i + 1]),
                                _mm512_unpackhi_epi64(d[2 * i], d[2 * i + 1]));
    /* 128-bit lane k: blocks k, 4 + k, 8 + k, 12 + k */
    const __m512 g0 = _mm512_castsi512_ps(g[0]), g1 = _mm512_castsi512_ps(g[1]);
    const __m512i r = _mm512_max_epu32(_mm512_castps_si512(_mm512_shuffle_ps(g0, g1, _MM_SHUFFLE(2, 0, 2, 0))),
                                       _mm512_castps_si512(_mm512_shuffle_ps(g0, g1, _MM_SHUFFLE(3, 1, 3, 1))));
    return _mm512_permutexvar_epi32(_mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0), r);
}

/*
 * amax_f32's work on the whole blocks at the start of columns [j0, j1) of a row, j0 a multiple of
 * block_columns (a multiple of 16): acc[b - first_block] = max(acc, the block's largest magnitude
 * bits).  Returns the first column it did not do (amax_f32 does the rest).
 */
static int64_t lanes_amax_f32(const uint32_t *restrict bits, int64_t j0, int64_t j1, int64_t block_columns,
                              uint32_t *restrict acc, int64_t first_block)
{
    const __m512i magnitude = _mm512_set1_epi32(0x7FFFFFFF);
    int64_t j = j0;
    uint32_t *target = acc + (j0 / block_columns - first_block);
    if (block_columns == 16 || block_columns == 32) {
        const int vectors = (int)(block_columns / 16);
        for (; j + 16 * block_columns <= j1; j += 16 * block_columns, target += 16) {
            const __m512i maxima = vectors == 1 ? lanes_maxima_of_16_blocks(bits + j, 1)
                                                : lanes_maxima_of_16_blocks(bits + j, 2);
            _mm512_storeu_si512(target, _mm512_max_epu32(maxima, _mm512_loadu_si512(target)));
        }
    }
    for (; j + block_columns <= j1; j += block_columns, target++) {
        __m512i largest = _mm512_setzero_si512();
        for (int64_t i = 0; i < block_columns; i += 16)
            largest = _mm512_max_epu32(largest, _mm512_and_si512(_mm512_loadu_si512(bits + j + i), magnitude));
        const uint32_t block_largest = _mm512_reduce_max_epu32(largest);
        *target = block_largest > *target ? block_largest : *target;
    }
    return j;
}

/*
 * The whole blocks of a tile row (rows rows of `columns` float32 from bits, columns [j0, j1), j0 a
 * multiple of block_columns, itself a multiple of 16): acc[b - first_block] = max(acc, the tile's
 * largest magnitude bits), the rows combined lane by lane in vectors (up to 64 tiles at a time)
 * and each tile reduced once.  Returns the first column it did not do.
 */
static int64_t lanes_tile_amax_f32(const uint32_t *restrict bits, int64_t rows, int64_t columns, int64_t j0,
                                   int64_t j1, int64_t block_columns, uint32_t *restrict acc, int64_t first_block)
{
    const __m512i magnitude = _mm512_set1_epi32(0x7FFFFFFF);
    __m512i partial[64];
    int64_t j = j0;
    while (j + block_columns <= j1) {
        const int64_t tiles = (j1 - j) / block_columns < 64 ? (j1 - j) / block_columns : 64;
        for (int64_t t = 0; t < tiles; t++)
            partial[t] = _mm512_setzero_si512();
        for (int64_t r = 0; r < rows; r++) {
            const uint32_t *row = bits + r * columns + j;
            for (int64_t t = 0; t < tiles; t++) {
                __m512i largest = partial[t];
                for (int64_t i = 0; i < block_columns; i += 16)
                    largest = _mm512_max_epu32(largest,
                                               _mm512_and_si512(_mm512_loadu_si512(row + t * block_columns + i), magnitude));
                partial[t] = largest;
            }
        }
        uint32_t *target = acc + (j / block_columns - first_block);
        for (int64_t t = 0; t < tiles; t++) {
            const uint32_t tile_largest = _mm512_reduce_max_epu32(partial[t]);
            target[t] = tile_largest > target[t] ? tile_largest : target[t];
        }
        j += tiles * block_columns;
    }
    return j;
}
