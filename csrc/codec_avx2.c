/*
 * codec_avx2.c - the float32 fast path's block kernels written with AVX2 intrinsics.
 *
 * The same kernel set and lane arithmetic as codec_avx512.c (read codec_fast.c's fast_block_body
 * for why each step is exact, and codec_avx512.c for the in-lane stochastic subnormal results),
 * 8 lanes per step.  AVX2 has no mask registers, no unsigned compares, no 64-bit multiply and no
 * masked loads or stores of bytes, so here:
 *
 * - a lane condition is a vector whose lanes are all ones (true) or zero; "add one where m" is
 *   x - m, and a select is a blend on the mask;
 * - unsigned a > b is the signed compare of a and b with their top bits flipped, a <= b is
 *   min(a, b) == a;
 * - SplitMix64's products modulo 2^64 are built from three 32 x 32 -> 64-bit multiplies
 *   (z c = zl cl + 2^32 (zl ch + zh cl) mod 2^64), and of the last product only the high half is
 *   formed: the kernels use the word's top 32 bits at most, and bits 33..63 of mix64's result
 *   z ^ (z >> 31) are those of z, bit 32 is bit 32 ^ bit 63 (the shift by 31 reaches no higher),
 *   so the last step is done only where bit 32 is compared (mix64_high);
 * - a block's last step of fewer than 8 lanes runs on a zero-padded copy and stores through
 *   a buffer.
 *
 * It keeps codec_fast.h's contract, like the other copies: every element it does not flag gets
 * encode_one's code (or float32 value) and counts, so every copy gives the same bits
 * (tests/test_codec_simd.py).  Used when fl_codec_simd_level() is 1: CPUs with AVX2 but not the
 * AVX-512 subset, and FMTLAB_SIMD=avx2.
 */
#include "codec_fast.h"

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)

#include <immintrin.h>
#include <string.h>

/* "avx2" alone: no FMA, so no product and sum can be fused into one rounding */
#define AVX2_TARGET __attribute__((target("avx2")))
#define AVX2_INLINE inline __attribute__((always_inline))
#ifndef PREFETCH_BYTES
#define PREFETCH_BYTES 4096
#endif

/* codec_avx512.c's compile-time modes of stochastic rounding with sr_bits >= 1 */
#define MODE_STOCHASTIC_BITS 100
#define MODE_STOCHASTIC_TRUNCATE 101
#define IS_STOCHASTIC_BITS(MODE) ((MODE) == MODE_STOCHASTIC_BITS || (MODE) == MODE_STOCHASTIC_TRUNCATE)
#define IS_STOCHASTIC(MODE) ((MODE) == FL_ROUND_STOCHASTIC || IS_STOCHASTIC_BITS(MODE))

#define LANES 8

static AVX2_TARGET AVX2_INLINE __m256i all_ones(void) { return _mm256_set1_epi32(-1); }
static AVX2_TARGET AVX2_INLINE __m256i not_lanes(__m256i a) { return _mm256_xor_si256(a, all_ones()); }

/* unsigned a > b */
static AVX2_TARGET AVX2_INLINE __m256i greater_u32(__m256i a, __m256i b)
{
    const __m256i flip = _mm256_set1_epi32(INT32_MIN);
    return _mm256_cmpgt_epi32(_mm256_xor_si256(a, flip), _mm256_xor_si256(b, flip));
}

/* unsigned a <= b */
static AVX2_TARGET AVX2_INLINE __m256i at_most_u32(__m256i a, __m256i b)
{
    return _mm256_cmpeq_epi32(_mm256_min_epu32(a, b), a);
}

static AVX2_TARGET AVX2_INLINE __m256i nonzero_lanes(__m256i a)
{
    return not_lanes(_mm256_cmpeq_epi32(a, _mm256_setzero_si256()));
}

static AVX2_TARGET AVX2_INLINE __m256i float_mask(__m256 a) { return _mm256_castps_si256(a); }

/* z * c modulo 2^64 in each 64-bit lane */
static AVX2_TARGET AVX2_INLINE __m256i multiply_64(__m256i z, uint64_t c)
{
    const __m256i c_low = _mm256_set1_epi64x((long long)(c & 0xFFFFFFFFu));
    const __m256i c_high = _mm256_set1_epi64x((long long)(c >> 32));
    const __m256i low = _mm256_mul_epu32(z, c_low);
    const __m256i cross = _mm256_add_epi64(_mm256_mul_epu32(z, c_high), _mm256_mul_epu32(_mm256_srli_epi64(z, 32), c_low));
    return _mm256_add_epi64(low, _mm256_slli_epi64(cross, 32));
}

/* the high 32 bits of z * c modulo 2^64, in the low half of each 64-bit lane (the high half is
 * not defined) */
static AVX2_TARGET AVX2_INLINE __m256i multiply_64_high(__m256i z, uint64_t c)
{
    const __m256i c_low = _mm256_set1_epi64x((long long)(c & 0xFFFFFFFFu));
    const __m256i c_high = _mm256_set1_epi64x((long long)(c >> 32));
    const __m256i low = _mm256_mul_epu32(z, c_low);
    const __m256i cross = _mm256_add_epi64(_mm256_mul_epu32(z, c_high), _mm256_mul_epu32(_mm256_srli_epi64(z, 32), c_low));
    return _mm256_add_epi32(_mm256_srli_epi64(low, 32), cross);
}

/*
 * The top 32 bits of mix64(z) (fmtlab.h's fl_mix64_inline) of 8 elements but for the lowest
 * (codec_avx512.c's mix64_high: mix64's last step is left out, bits 33..63 are mix64's), in
 * order: `even` holds the counters of elements 0, 1, 4, 5 and `odd` those of 2, 3, 6, 7, so that
 * one in-lane shuffle of the two high halves gives them in order.
 */
static AVX2_TARGET AVX2_INLINE __m256i mix64_high(__m256i even, __m256i odd)
{
    even = multiply_64(_mm256_xor_si256(even, _mm256_srli_epi64(even, 30)), 0xBF58476D1CE4E5B9ULL);
    odd = multiply_64(_mm256_xor_si256(odd, _mm256_srli_epi64(odd, 30)), 0xBF58476D1CE4E5B9ULL);
    even = multiply_64_high(_mm256_xor_si256(even, _mm256_srli_epi64(even, 27)), 0x94D049BB133111EBULL);
    odd = multiply_64_high(_mm256_xor_si256(odd, _mm256_srli_epi64(odd, 27)), 0x94D049BB133111EBULL);
    const __m256i high = _mm256_castps_si256(
        _mm256_shuffle_ps(_mm256_castsi256_ps(even), _mm256_castsi256_ps(odd), _MM_SHUFFLE(2, 0, 2, 0)));
    return high;
}

/* mix64's top 32 bits from mix64_high's: bit 32 of mix64(z) is bit 32 ^ bit 63 of its z */
static AVX2_TARGET AVX2_INLINE __m256i full_word32(__m256i high) { return _mm256_xor_si256(high, _mm256_srli_epi32(high, 31)); }

/* The 8 lanes' results as codes of out_kind's width (truncated, like the C kernels' casts) or
 * float32 bits, and the lanes' slow flags as bytes, written for the first `lanes` of them. */
static AVX2_TARGET AVX2_INLINE void store_step(void *restrict out, const int out_kind, int i, int lanes,
                                               __m256i result, __m256i slow, uint8_t *restrict is_slow)
{
    /* one bit per lane, spread to a 0/1 byte per lane: the 8 bits copied to every byte, byte j
     * keeping bit j, and 0x7F added so that a byte's top bit says whether it was nonzero (a
     * byte is at most 0x80 then, so no carry crosses bytes) */
    const uint64_t slow_bits = (uint64_t)(uint32_t)_mm256_movemask_ps(_mm256_castsi256_ps(slow));
    const uint64_t slow_bytes = ((((slow_bits * 0x0101010101010101ULL) & 0x8040201008040201ULL) + 0x7F7F7F7F7F7F7F7FULL) >> 7) &
                                0x0101010101010101ULL;
    uint8_t buffer[LANES * 4];
    const int whole = lanes == LANES;
    if (whole)
        memcpy(is_slow + i, &slow_bytes, LANES);
    else
        memcpy(is_slow + i, &slow_bytes, (size_t)lanes);
    if (out_kind == OUT_CODES_1) {
        /* byte 0 of every lane to the first 4 bytes of each 128-bit half, then the halves' first
         * dwords together */
        const __m256i pick = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                              0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
        const __m256i bytes = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(result, pick),
                                                          _mm256_setr_epi32(0, 4, 1, 1, 1, 1, 1, 1));
        if (whole)
            _mm_storel_epi64((__m128i *)((uint8_t *)out + i), _mm256_castsi256_si128(bytes));
        else {
            _mm_storel_epi64((__m128i *)buffer, _mm256_castsi256_si128(bytes));
            memcpy((uint8_t *)out + i, buffer, (size_t)lanes);
        }
    } else if (out_kind == OUT_CODES_2) {
        const __m256i pick = _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, -1, -1, -1, -1, -1, -1, -1, -1,
                                              0, 1, 4, 5, 8, 9, 12, 13, -1, -1, -1, -1, -1, -1, -1, -1);
        const __m256i halves = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(result, pick), _MM_SHUFFLE(3, 1, 2, 0));
        if (whole)
            _mm_storeu_si128((__m128i *)((uint16_t *)out + i), _mm256_castsi256_si128(halves));
        else {
            _mm_storeu_si128((__m128i *)buffer, _mm256_castsi256_si128(halves));
            memcpy((uint16_t *)out + i, buffer, (size_t)lanes * 2);
        }
    } else {
        if (whole)
            _mm256_storeu_si256((__m256i *)((uint32_t *)out + i), result);
        else {
            _mm256_storeu_si256((__m256i *)buffer, result);
            memcpy((uint32_t *)out + i, buffer, (size_t)lanes * 4);
        }
    }
}

/* the sum of the 8 lanes' counts */
static AVX2_TARGET AVX2_INLINE int32_t lane_count(__m256i negated)
{
    __m128i sum = _mm_add_epi32(_mm256_castsi256_si128(negated), _mm256_extracti128_si256(negated, 1));
    sum = _mm_add_epi32(sum, _mm_shuffle_epi32(sum, _MM_SHUFFLE(1, 0, 3, 2)));
    sum = _mm_add_epi32(sum, _mm_shuffle_epi32(sum, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(sum);
}

/* nu 2^32 < 2^32 (a float32) to uint32 by truncation: AVX2 converts to int32 only */
static AVX2_TARGET AVX2_INLINE __m256i truncate_to_u32(__m256 value)
{
    const __m256 two_31 = _mm256_set1_ps(2147483648.0f);
    const __m256i large = float_mask(_mm256_cmp_ps(value, two_31, _CMP_GE_OQ));
    /* value - 2^31 is exact for value in [2^31, 2^32): both are multiples of value's ulp */
    const __m256i small_lanes = _mm256_cvttps_epi32(value);
    const __m256i large_lanes = _mm256_xor_si256(_mm256_cvttps_epi32(_mm256_sub_ps(value, two_31)),
                                                 _mm256_set1_epi32(INT32_MIN));
    return _mm256_blendv_epi8(small_lanes, large_lanes, large);
}

/*
 * The body, inlined into one kernel per (MODE, OUT_KIND), both constants; codec_avx512.c's
 * avx512_body step for step.
 */
static AVX2_TARGET AVX2_INLINE fast_block_result avx2_body(const uint32_t *restrict bits, int count,
                                                           void *restrict out, uint8_t *restrict is_slow,
                                                           const prepared_fast_f32 *fast, uint64_t first_index,
                                                           const int mode, const int out_kind)
{
    const int shift = fast->shift;
    const __m128i shift_count = _mm_cvtsi32_si128(shift);
    const uint32_t mask_scalar = (1u << shift) - 1;
    const __m256i mask = _mm256_set1_epi32((int)mask_scalar);
    const __m256i half_minus_one = _mm256_set1_epi32((int)(mask_scalar >> 1));
    const __m256i half = _mm256_set1_epi32((int)(1u << (shift - 1)));
    const __m256i magnitude_mask = _mm256_set1_epi32(0x7FFFFFFF);
    const __m256i range_mask = _mm256_set1_epi32(fast->sign_bit ? 0x7FFFFFFF : (int)0xFFFFFFFFu);
    const __m256i lo = _mm256_set1_epi32((int)fast->lo);
    const __m256i span = _mm256_set1_epi32((int)(fast->hi - fast->lo));
    const __m256i rebias = _mm256_set1_epi32((int)fast->rebias_bits);
    const __m256i max_code = _mm256_set1_epi32(fast->max_code_lanes);
    const __m256i sign_bit = _mm256_set1_epi32((int)fast->sign_bit);
    const __m256i zero_sign_bit = _mm256_set1_epi32((int)fast->zero_sign_bit);
    const __m256i zero_sign_f32 = _mm256_set1_epi32(fast->zero_sign_bit ? (int)0x80000000u : 0);
    const __m256i one = _mm256_set1_epi32(1);
    const __m256i sign_f32 = _mm256_set1_epi32((int)0x80000000u);
    const __m256i zero = _mm256_setzero_si256();
    const __m256i lane_index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const uint32_t zero_below_scalar = mode == FL_ROUND_TOWARD_ZERO ? fast->zero_below_toward_zero
                                       : (mode == FL_ROUND_NEAREST_EVEN || mode == FL_ROUND_NEAREST_AWAY)
                                           ? fast->zero_below_nearest : 0u;
    const __m256i zero_below = _mm256_set1_epi32((int)zero_below_scalar);
    const __m256i saturating = fast->saturating ? all_ones() : zero;
    const __m256i subnormals_enabled = fast->subnormals ? all_ones() : zero;
    const __m256 scale_1 = _mm256_set1_ps(fast->subnormal_scale_1), scale_2 = _mm256_set1_ps(fast->subnormal_scale_2);
    const __m256 inverse_1 = _mm256_set1_ps(fast->subnormals ? 1.0f / fast->subnormal_scale_1 : 0.0f);
    const __m256 inverse_2 = _mm256_set1_ps(fast->subnormals ? 1.0f / fast->subnormal_scale_2 : 0.0f);
    const __m256i y_limit = _mm256_set1_epi32(0x4B800000); /* 2^24 */
    const __m256i min_normal_code = _mm256_set1_epi32((int32_t)1 << (23 - shift));
    /* the generator: element j of the step holds stream key + (first_index + 8 s + j) * golden,
     * advanced by additions (the same sums modulo 2^64 as the multiplications) */
    const uint64_t golden = 0x9E3779B97F4A7C15ULL;
    const uint64_t stream_key = IS_STOCHASTIC(mode) ? fl_stream_key_inline(fast->seed, 0) : 0;
    const uint64_t base = stream_key + first_index * golden;
    __m256i counter_even = _mm256_setr_epi64x((long long)base, (long long)(base + golden),
                                              (long long)(base + 4 * golden), (long long)(base + 5 * golden));
    __m256i counter_odd = _mm256_setr_epi64x((long long)(base + 2 * golden), (long long)(base + 3 * golden),
                                             (long long)(base + 6 * golden), (long long)(base + 7 * golden));
    const __m256i counter_step = _mm256_set1_epi64x((long long)(8 * golden));
    /* sr_bits = 32 compares all 32 top bits of the word on the common path (mix64_high) */
    const int full_word_needed = mode == MODE_STOCHASTIC_BITS && fast->sr_bits == 32;
    /* truncate, whose kernel runs for N <= shift only: the carry of magnitude + (W & high) is the
     * increment of lo_code (codec_avx512.c); here that replaced a test of two XORs, an OR and
     * a compare, and made the kernel about as fast as sr_bits = 0 or faster */
    const int truncate_by_shift = mode == MODE_STOCHASTIC_TRUNCATE;
    const int top_bits = IS_STOCHASTIC_BITS(mode) && !truncate_by_shift ? fast->sr_bits : shift;
    const __m128i top_shift = _mm_cvtsi32_si128(32 - top_bits);
    const __m128i sr_shift = _mm_cvtsi32_si128(IS_STOCHASTIC_BITS(mode) ? 32 - fast->sr_bits : 0);
    const uint32_t truncate_low = truncate_by_shift ? (1u << fast->sr.down) - 1 : 0;
    const __m256i truncate_high_bits = _mm256_set1_epi32((int)(mask_scalar & ~truncate_low));
    const __m128i sr_up = _mm_cvtsi32_si128(fast->sr.up), sr_down = _mm_cvtsi32_si128(fast->sr.down);
    const __m128i sr_half_shift = _mm_cvtsi32_si128(fast->sr.half_shift);
    const __m256i sr_half_mask = _mm256_set1_epi32((int)fast->sr.half_mask);
    const __m256i sr_sticky_mask = _mm256_set1_epi32((int)fast->sr.sticky_mask);
    const __m256i sr_full_mask = _mm256_set1_epi32((int)fast->sr.full_mask);
    const __m256i sr_rounds = _mm256_set1_epi32((int)fast->sr.rule.rounds);
    const __m256i sr_ties_away = _mm256_set1_epi32((int)fast->sr.rule.ties_away);
    const __m256i sr_ties_odd = _mm256_set1_epi32((int)fast->sr.rule.ties_odd);
    const __m256 two_32 = _mm256_set1_ps(4294967296.0f);
    const __m256 twice_scale = _mm256_set1_ps(IS_STOCHASTIC_BITS(mode) ? fast->sr.twice_scale : 0.0f);
    const int stochastic_subnormals = IS_STOCHASTIC(mode) && fast->subnormals &&
                                      (mode == FL_ROUND_STOCHASTIC || fast->sr_bits <= 30);

    /* the counts: each step subtracts its lanes' masks, adding one where a mask is all ones */
    __m256i fast_count = zero, inexact = zero, overflow = zero, underflow = zero, denormal = zero;
    for (int i = 0; i < count; i += LANES) {
        const int lanes = count - i >= LANES ? LANES : count - i;
        uint32_t padded[LANES] = {0, 0, 0, 0, 0, 0, 0, 0};
        const uint32_t *source = bits + i;
        __m256i valid = all_ones();
        if (lanes < LANES) {
            memcpy(padded, bits + i, (size_t)lanes * sizeof *padded);
            source = padded;
            valid = _mm256_cmpgt_epi32(_mm256_set1_epi32(lanes), lane_index);
        }
        /* a long loop per 32 bytes read: fetch ahead, or it waits on memory (codec_avx512.c) */
        _mm_prefetch((const char *)(bits + i) + PREFETCH_BYTES, _MM_HINT_T0);
        const __m256i b = _mm256_loadu_si256((const __m256i *)source);
        const __m256i magnitude = _mm256_and_si256(b, magnitude_mask);
        const __m256i negative = _mm256_srai_epi32(b, 31);
        const __m256i lo_code = _mm256_sub_epi32(_mm256_srl_epi32(magnitude, shift_count), rebias);
        const __m256i remainder = _mm256_and_si256(magnitude, mask);
        const __m256i remainder_nonzero = nonzero_lanes(remainder);
        __m256i code;
        __m256i random_32 = zero; /* draw 0's top 32 bits (mix64_high) */
        if (mode == FL_ROUND_ODD) {
            code = _mm256_or_si256(lo_code, _mm256_and_si256(remainder_nonzero, one));
        } else if (IS_STOCHASTIC(mode)) {
            random_32 = mix64_high(counter_even, counter_odd);
            if (full_word_needed)
                random_32 = full_word32(random_32);
            counter_even = _mm256_add_epi64(counter_even, counter_step);
            counter_odd = _mm256_add_epi64(counter_odd, counter_step);
            const __m256i random_top = _mm256_srl_epi32(random_32, top_shift);
            __m256i away;
            if (mode == FL_ROUND_STOCHASTIC) {
                away = greater_u32(remainder, random_top);
            } else if (mode == MODE_STOCHASTIC_TRUNCATE) {
                /* the carry of magnitude + (R << d) is lo_code's increment (truncate_by_shift) */
                const __m256i increment = _mm256_and_si256(random_top, truncate_high_bits);
                code = _mm256_sub_epi32(_mm256_srl_epi32(_mm256_add_epi32(magnitude, increment), shift_count), rebias);
                away = zero;
            } else {
                const __m256i f = _mm256_srl_epi32(_mm256_sll_epi32(remainder, sr_up), sr_down);
                const __m256i h = _mm256_and_si256(_mm256_srl_epi32(remainder, sr_half_shift), sr_half_mask);
                const __m256i sticky = _mm256_and_si256(nonzero_lanes(_mm256_and_si256(remainder, sr_sticky_mask)), one);
                const __m256i tie_rule = _mm256_or_si256(_mm256_or_si256(sr_ties_away, sticky), _mm256_xor_si256(f, sr_ties_odd));
                const __m256i k = _mm256_add_epi32(f, _mm256_and_si256(_mm256_and_si256(h, sr_rounds), tie_rule));
                away = _mm256_or_si256(greater_u32(random_top, _mm256_sub_epi32(sr_full_mask, k)),
                                       greater_u32(k, sr_full_mask));
            }
            if (mode != MODE_STOCHASTIC_TRUNCATE)
                code = _mm256_sub_epi32(lo_code, away);
        } else {
            __m256i increment;
            switch (mode) {
            case FL_ROUND_NEAREST_EVEN: increment = _mm256_add_epi32(half_minus_one, _mm256_and_si256(lo_code, one)); break;
            case FL_ROUND_NEAREST_AWAY: increment = half; break;
            case FL_ROUND_UP: increment = _mm256_andnot_si256(negative, mask); break;
            case FL_ROUND_DOWN: increment = _mm256_and_si256(negative, mask); break;
            default: increment = zero; break;
            }
            code = _mm256_sub_epi32(_mm256_srl_epi32(_mm256_add_epi32(magnitude, increment), shift_count), rebias);
        }
        const __m256i range_value = _mm256_and_si256(b, range_mask);
        const __m256i in_range = at_most_u32(_mm256_sub_epi32(range_value, lo), span);
        const __m256i above_max = _mm256_cmpgt_epi32(code, max_code);
        const __m256i normal = _mm256_andnot_si256(above_max, in_range);
        if (_mm256_testc_si256(normal, valid)) {
            /* every valid lane normal in both formats (the common case): the rest of the body
             * would give these (codec_avx512.c) */
            fast_count = _mm256_sub_epi32(fast_count, valid);
            inexact = _mm256_sub_epi32(inexact, _mm256_and_si256(remainder_nonzero, valid));
            __m256i result;
            if (out_kind == OUT_VALUES_F32) {
                const __m256i normal_bits = _mm256_sll_epi32(_mm256_add_epi32(code, rebias), shift_count);
                result = _mm256_or_si256(_mm256_and_si256(normal_bits, magnitude_mask), _mm256_and_si256(b, sign_f32));
            } else {
                result = _mm256_or_si256(code, _mm256_and_si256(negative, sign_bit));
            }
            store_step(out, out_kind, i, lanes, result, zero, is_slow);
            continue;
        }
        const __m256i saturated = _mm256_and_si256(_mm256_and_si256(in_range, saturating), above_max);
        code = _mm256_blendv_epi8(code, max_code, saturated);
        const __m256i tiny = greater_u32(zero_below, range_value);
        /* ieee subnormal results: y = |x| 2^(m - emin), clamped to 2^24 on the bits */
        const __m256 scaled = _mm256_mul_ps(_mm256_mul_ps(_mm256_castsi256_ps(magnitude), scale_1), scale_2);
        const __m256 y = _mm256_castsi256_ps(_mm256_min_epu32(_mm256_castps_si256(scaled), y_limit));
        const __m256i t = _mm256_cvttps_epi32(y);
        const __m256 fraction = _mm256_sub_ps(y, _mm256_cvtepi32_ps(t));
        const __m256i subnormal_inexact = float_mask(_mm256_cmp_ps(fraction, _mm256_setzero_ps(), _CMP_NEQ_UQ));
        __m256i subnormal_code;
        __m256i subnormal_exact_path = all_ones(); /* lanes whose stochastic decision is made here */
        switch (mode) {
        case FL_ROUND_NEAREST_EVEN: {
            const __m256 rounded = _mm256_sub_ps(_mm256_add_ps(y, _mm256_set1_ps(8388608.0f)), _mm256_set1_ps(8388608.0f));
            subnormal_code = _mm256_cvttps_epi32(rounded);
            break;
        }
        case FL_ROUND_NEAREST_AWAY:
            subnormal_code = _mm256_sub_epi32(t, float_mask(_mm256_cmp_ps(fraction, _mm256_set1_ps(0.5f), _CMP_GE_OQ)));
            break;
        case FL_ROUND_UP: subnormal_code = _mm256_sub_epi32(t, _mm256_andnot_si256(negative, subnormal_inexact)); break;
        case FL_ROUND_DOWN: subnormal_code = _mm256_sub_epi32(t, _mm256_and_si256(negative, subnormal_inexact)); break;
        case FL_ROUND_ODD: subnormal_code = _mm256_or_si256(t, _mm256_and_si256(subnormal_inexact, one)); break;
        case FL_ROUND_STOCHASTIC:
        case MODE_STOCHASTIC_BITS:
        case MODE_STOCHASTIC_TRUNCATE: {
            /* stochastic_away on nu = fraction (exact) with the lane's draw 0 (codec_avx512.c) */
            __m256i away;
            if (mode == FL_ROUND_STOCHASTIC) {
                const __m256 scaled_nu = _mm256_mul_ps(fraction, two_32); /* exact, < 2^32 */
                /* nu has at most 32 bits iff nu 2^32 is an integer */
                subnormal_exact_path = float_mask(_mm256_cmp_ps(
                    _mm256_round_ps(scaled_nu, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC), scaled_nu, _CMP_EQ_OQ));
                away = greater_u32(truncate_to_u32(scaled_nu), full_word32(random_32));
            } else if (mode == MODE_STOCHASTIC_TRUNCATE) {
                const __m256i k = _mm256_srli_epi32(_mm256_cvttps_epi32(_mm256_mul_ps(fraction, twice_scale)), 1);
                const __m256i random_bits = _mm256_srl_epi32(random_32, sr_shift);
                away = greater_u32(random_bits, _mm256_sub_epi32(sr_full_mask, k));
            } else {
                const __m256 twice_value = _mm256_mul_ps(fraction, twice_scale); /* exact, < 2^31 */
                const __m256i twice = _mm256_cvttps_epi32(twice_value);
                const __m256i sticky = float_mask(_mm256_cmp_ps(_mm256_cvtepi32_ps(twice), twice_value, _CMP_NEQ_UQ));
                const __m256i f = _mm256_srli_epi32(twice, 1), h = _mm256_and_si256(twice, one);
                const __m256i tie_rule = _mm256_or_si256(_mm256_or_si256(sr_ties_away, _mm256_and_si256(sticky, one)),
                                                         _mm256_xor_si256(f, sr_ties_odd));
                const __m256i k = _mm256_add_epi32(f, _mm256_and_si256(_mm256_and_si256(h, sr_rounds), tie_rule));
                const __m256i random_bits = _mm256_srl_epi32(random_32, sr_shift);
                away = _mm256_or_si256(greater_u32(random_bits, _mm256_sub_epi32(sr_full_mask, k)),
                                       greater_u32(k, sr_full_mask));
            }
            subnormal_code = _mm256_sub_epi32(t, away);
            break;
        }
        default: subnormal_code = t; break;
        }
        __m256i subnormal_allowed = subnormals_enabled;
        if (IS_STOCHASTIC(mode))
            subnormal_allowed = stochastic_subnormals ? subnormal_exact_path : zero;
        const __m256i subnormal = _mm256_andnot_si256(tiny, _mm256_and_si256(subnormal_allowed, greater_u32(lo, range_value)));
        code = _mm256_blendv_epi8(code, subnormal_code, subnormal);
        const __m256i subnormal_zero = _mm256_cmpeq_epi32(subnormal_code, zero);
        const __m256i zero_result = _mm256_or_si256(tiny, _mm256_and_si256(subnormal, subnormal_zero));
        const __m256i nonzero = nonzero_lanes(magnitude);
        const __m256i code_fits = not_lanes(_mm256_cmpgt_epi32(code, max_code));
        const __m256i subnormal_fast = _mm256_and_si256(subnormal, code_fits);
        const __m256i is_fast = _mm256_and_si256(
            _mm256_or_si256(_mm256_or_si256(_mm256_and_si256(in_range, code_fits), tiny), subnormal_fast), valid);
        fast_count = _mm256_sub_epi32(fast_count, is_fast);
        const __m256i inexact_lanes = _mm256_or_si256(
            _mm256_or_si256(_mm256_and_si256(_mm256_and_si256(is_fast, in_range), _mm256_or_si256(remainder_nonzero, saturated)),
                            _mm256_and_si256(tiny, nonzero)),
            _mm256_and_si256(subnormal_fast, subnormal_inexact));
        inexact = _mm256_sub_epi32(inexact, _mm256_and_si256(inexact_lanes, valid));
        overflow = _mm256_sub_epi32(overflow, _mm256_and_si256(saturated, valid));
        const __m256i underflow_lanes = _mm256_and_si256(
            _mm256_or_si256(tiny, _mm256_and_si256(subnormal_fast, subnormal_zero)), nonzero);
        underflow = _mm256_sub_epi32(underflow, _mm256_and_si256(underflow_lanes, valid));
        const __m256i denormal_lanes = _mm256_andnot_si256(
            subnormal_zero, _mm256_and_si256(subnormal_fast, _mm256_cmpgt_epi32(min_normal_code, subnormal_code)));
        denormal = _mm256_sub_epi32(denormal, _mm256_and_si256(denormal_lanes, valid));
        __m256i result;
        if (out_kind == OUT_VALUES_F32) {
            /* a normal code shifted back with the bias restored; a subnormal code's value is
             * code / 2^(m - emin), exact in float32 */
            const __m256 subnormal_value = _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(subnormal_code), inverse_1), inverse_2);
            const __m256i normal_bits = _mm256_and_si256(_mm256_sll_epi32(_mm256_add_epi32(code, rebias), shift_count),
                                                         magnitude_mask);
            const __m256i magnitude_bits = _mm256_blendv_epi8(normal_bits, _mm256_castps_si256(subnormal_value), subnormal);
            const __m256i signed_bits = _mm256_or_si256(magnitude_bits, _mm256_and_si256(negative, sign_f32));
            result = _mm256_blendv_epi8(signed_bits, _mm256_and_si256(negative, zero_sign_f32), zero_result);
        } else {
            const __m256i signed_code = _mm256_or_si256(code, _mm256_and_si256(negative, sign_bit));
            result = _mm256_blendv_epi8(signed_code, _mm256_and_si256(negative, zero_sign_bit), zero_result);
        }
        store_step(out, out_kind, i, lanes, result, not_lanes(is_fast), is_slow);
    }
    fast_block_result result = {count - lane_count(fast_count), lane_count(inexact), lane_count(overflow),
                                lane_count(underflow), lane_count(denormal)};
    return result;
}

#define DEFINE_AVX2_KERNEL(NAME, MODE, KIND)                                                     \
    static AVX2_TARGET fast_block_result NAME(const uint32_t *restrict bits, int count,           \
                                              void *restrict out, uint8_t *restrict is_slow,      \
                                              const prepared_fast_f32 *fast, uint64_t first_index) \
    {                                                                                            \
        return avx2_body(bits, count, out, is_slow, fast, first_index, MODE, KIND);              \
    }
#define DEFINE_AVX2_KERNELS(KIND)                                                                \
    DEFINE_AVX2_KERNEL(avx2_nearest_even_##KIND, FL_ROUND_NEAREST_EVEN, KIND)                    \
    DEFINE_AVX2_KERNEL(avx2_nearest_away_##KIND, FL_ROUND_NEAREST_AWAY, KIND)                    \
    DEFINE_AVX2_KERNEL(avx2_toward_zero_##KIND, FL_ROUND_TOWARD_ZERO, KIND)                      \
    DEFINE_AVX2_KERNEL(avx2_up_##KIND, FL_ROUND_UP, KIND)                                        \
    DEFINE_AVX2_KERNEL(avx2_down_##KIND, FL_ROUND_DOWN, KIND)                                    \
    DEFINE_AVX2_KERNEL(avx2_odd_##KIND, FL_ROUND_ODD, KIND)                                      \
    DEFINE_AVX2_KERNEL(avx2_stochastic_##KIND, FL_ROUND_STOCHASTIC, KIND)                        \
    DEFINE_AVX2_KERNEL(avx2_stochastic_bits_##KIND, MODE_STOCHASTIC_BITS, KIND)                  \
    DEFINE_AVX2_KERNEL(avx2_stochastic_truncate_##KIND, MODE_STOCHASTIC_TRUNCATE, KIND)
DEFINE_AVX2_KERNELS(OUT_CODES_1)
DEFINE_AVX2_KERNELS(OUT_CODES_2)
DEFINE_AVX2_KERNELS(OUT_CODES_4)
DEFINE_AVX2_KERNELS(OUT_VALUES_F32)

#define KERNEL_TABLE_ROW(KIND)                                                                   \
    {avx2_nearest_even_##KIND, avx2_nearest_away_##KIND, avx2_toward_zero_##KIND,               \
     avx2_up_##KIND, avx2_down_##KIND, avx2_odd_##KIND, avx2_stochastic_##KIND,                 \
     avx2_stochastic_bits_##KIND, avx2_stochastic_truncate_##KIND}

fast_block_kernel fl_avx2_block_kernel(int mode, int sr_bits, int sr_rule, int shift, int out_kind)
{
    static const fast_block_kernel table[4][9] = {KERNEL_TABLE_ROW(OUT_CODES_1), KERNEL_TABLE_ROW(OUT_CODES_2),
                                                  KERNEL_TABLE_ROW(OUT_CODES_4), KERNEL_TABLE_ROW(OUT_VALUES_F32)};
    if (mode < FL_ROUND_NEAREST_EVEN || mode > FL_ROUND_STOCHASTIC)
        return NULL;
    const int row = out_kind == OUT_CODES_1 ? 0 : out_kind == OUT_CODES_2 ? 1 : out_kind == OUT_CODES_4 ? 2 : 3;
    /* the truncate kernel for N <= shift only (codec_avx512.c) */
    const int column = mode != FL_ROUND_STOCHASTIC ? mode : sr_bits == 0 ? 6 : sr_rule == FL_SR_TRUNCATE && sr_bits <= shift ? 8 : 7;
    return table[row][column];
}

#else

fast_block_kernel fl_avx2_block_kernel(int mode, int sr_bits, int sr_rule, int shift, int out_kind)
{
    (void)mode;
    (void)sr_bits;
    (void)sr_rule;
    (void)shift;
    (void)out_kind;
    return NULL;
}

#endif
