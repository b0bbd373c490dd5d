/*
 * codec_avx512.c - the float32 fast path's block kernels written with AVX-512 intrinsics.
 *
 * The same lane arithmetic as codec_fast.c's fast_block_body with full = 1 (read that first:
 * the comments there say why each step is exact), 16 lanes per step, in mask registers
 * instead of 0/1 integers, so that it keeps codec_fast.h's contract: every element it does not
 * flag gets encode_one's code (or float32 value) and counts.  GCC's vectorisation of the C body
 * mixed 8-, 32- and 64-bit lanes and ran the full kernel at about 0.7x the lean one; here the
 * full semantics (in-lane saturation, the zero shortcut, ieee subnormal results) cost little
 * more than the lean loop, so one kernel serves every block.  In addition to the C body,
 * stochastic rounding of ieee subnormal results is done in the lanes (the C kernels send those
 * to encode_one): y = |x| 2^(m - emin) is exact, nu = y - floor(y), and the decision is the one
 * stochastic_away takes on the same 64-bit draw (see stochastic_subnormal below).
 *
 * Nearest-even, exact stochastic rounding and sr_rule = truncate (sr_bits <= 23 - m) have a second
 * kernel each (binade_magic, chosen per block by fl_fast_f32_block after a block with subnormal
 * results) that rounds in float32 instead: |x| + 2^(max(e, emin) + shift) rounds |x| to the
 * format for normal and subnormal results alike (rounded toward zero: the lower neighbour), so a
 * step whose lanes straddle 2^emin stays on its common path, without the mispredicted branch into
 * the full semantics.
 *
 * Used when fl_codec_simd_level() is 2 (codec_fast.c); FMTLAB_SIMD=avx2 or =portable run the C
 * copies, and tests/test_codec_fuzz.py compares every level on its cases.
 */
#include "codec_fast.h"

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)

#include <immintrin.h>

#define AVX512_TARGET __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl")))
#define AVX512_INLINE inline __attribute__((always_inline))
#ifndef PREFETCH_BYTES
#define PREFETCH_BYTES 4096
#endif

/* codec_fast.c's compile-time mode of stochastic rounding with sr_bits >= 1 */
#define MODE_STOCHASTIC_BITS 100
/* ... and its copy for sr_rule = truncate (the default), where k = f needs no rule arithmetic */
#define MODE_STOCHASTIC_TRUNCATE 101
#define IS_STOCHASTIC_BITS(MODE) ((MODE) == MODE_STOCHASTIC_BITS || (MODE) == MODE_STOCHASTIC_TRUNCATE)
#define IS_STOCHASTIC(MODE) ((MODE) == FL_ROUND_STOCHASTIC || IS_STOCHASTIC_BITS(MODE))

static AVX512_TARGET AVX512_INLINE __m512i ones_where(__mmask16 m) { return _mm512_maskz_set1_epi32(m, 1); }

/*
 * The top 32 bits of mix64(z) (fmtlab.h's fl_mix64_inline) for 8 lanes of 64 bits, but for the
 * lowest: mix64's last step z ^ (z >> 31) changes bits 0..32 only, so it is left out here and
 * these are bits 32..63 of the z before it, of which bits 33..63 are mix64's.  Every comparison
 * on the common path (sr_bits = None: the top shift <= 23 bits; sr_bits = N <= 31) needs no
 * more; full_word32 gives the 32 bits where they are needed.  mix64_round is the word before
 * its high halves are taken: mix64_high16 takes those of two such vectors at once.
 */
static AVX512_TARGET AVX512_INLINE __m512i mix64_round(__m512i z)
{
    z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 30)), _mm512_set1_epi64((long long)0xBF58476D1CE4E5B9ULL));
    return _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 27)), _mm512_set1_epi64((long long)0x94D049BB133111EBULL));
}

/* the 16 words' high halves in element order (low's 8 then high's 8): one two-source dword
 * permute, where taking each vector's high halves (shift, narrow) and joining them took five
 * instructions per 16 lanes */
static AVX512_TARGET AVX512_INLINE __m512i mix64_high16(__m512i low, __m512i high)
{
    const __m512i odd_dwords = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    return _mm512_permutex2var_epi32(mix64_round(low), odd_dwords, mix64_round(high));
}

/* mix64's top 32 bits from mix64_high16's: bit 32 of mix64(z) is bit 32 ^ bit 63 of its z */
static AVX512_TARGET AVX512_INLINE __m512i full_word32(__m512i high) { return _mm512_xor_si512(high, _mm512_srli_epi32(high, 31)); }

/* Store the 16 results (codes or float32 bits) of lanes i.. that valid keeps. */
static AVX512_TARGET AVX512_INLINE void store_lanes(void *restrict out, const int out_kind, int i, __mmask16 valid,
                                                     __m512i result)
{
    if (out_kind == OUT_CODES_1) {
        if (valid == 0xFFFF)
            _mm_storeu_si128((__m128i *)((uint8_t *)out + i), _mm512_cvtepi32_epi8(result));
        else
            _mm512_mask_cvtepi32_storeu_epi8((uint8_t *)out + i, valid, result);
    } else if (out_kind == OUT_CODES_2) {
        if (valid == 0xFFFF)
            _mm256_storeu_si256((__m256i *)((uint16_t *)out + i), _mm512_cvtepi32_epi16(result));
        else
            _mm512_mask_cvtepi32_storeu_epi16((uint16_t *)out + i, valid, result);
    } else {
        if (valid == 0xFFFF)
            _mm512_storeu_si512((uint32_t *)out + i, result);
        else
            _mm512_mask_storeu_epi32((uint32_t *)out + i, valid, result);
    }
}

/*
 * The second common step (inside avx512_body's loop, for a step that is not all normal: on
 * e4m3fn's standard-normal data about one in five, each with one or two subnormal results):
 * every valid lane is normal in both formats, or lies below lo (ALLOWED lanes: those whose subnormal result the full semantics
 * compute in the lane) with SUB_CODE <= max_code.  Then no saturation, encode_one or zero
 * shortcut applies: inputs below zero_below are among the lanes below lo and get code 0 from
 * SUB_CODE as well (y < 1/2 rounds to 0 in the nearest modes, y < 1 truncates to 0 toward
 * zero), with the same counts (inexact and underflow when x != 0), so this stores what the
 * full semantics store, and goes on to the next step (saving their saturation, zero and slow-lane
 * bookkeeping: e4m3fn nearest-even encode of 2^20 values 1.10x, bias-9 e4m3 1.10x, stochastic
 * 1.03x, one thread).  SUB_INEXACT: the subnormal lanes'
 * inexact flags; SUB_VALUE: their float32 value bits (evaluated for float32 outputs only).
 */
#define WIDE_STEP(ALLOWED, SUB_CODE, SUB_INEXACT, SUB_VALUE)                                     \
    {                                                                                            \
        const __mmask16 sub_range = (ALLOWED) & _mm512_cmplt_epu32_mask(range_value, lo);        \
        const __m512i sub_code = (SUB_CODE);                                                     \
        const __m512i merged = _mm512_mask_mov_epi32(code, sub_range, sub_code);                 \
        const __mmask16 simple = (in_range | sub_range) & _mm512_cmple_epi32_mask(merged, max_code) & valid; \
        if (simple == valid) {                                                                   \
            if (valid == 0xFFFF)                                                                 \
                _mm_storeu_si128((__m128i *)(is_slow + i), _mm_setzero_si128());                 \
            else                                                                                 \
                _mm_mask_storeu_epi8(is_slow + i, valid, _mm_setzero_si128());                   \
            fast_count = _mm512_mask_add_epi32(fast_count, valid, fast_count, one);              \
            const __mmask16 sub_lanes = sub_range & valid;                                       \
            inexact = _mm512_mask_add_epi32(                                                     \
                inexact, ((remainder_nonzero & (__mmask16)~sub_range) | ((SUB_INEXACT) & sub_range)) & valid, inexact, one); \
            /* zero results (underflow where x != 0) and subnormal ones (1 <= code < 2^m) */     \
            const __mmask16 sub_zero = _mm512_mask_cmpeq_epi32_mask(sub_lanes, sub_code, zero);  \
            underflow = _mm512_mask_add_epi32(underflow, sub_zero & _mm512_test_epi32_mask(magnitude, magnitude), \
                                              underflow, one);                                   \
            denormal = _mm512_mask_add_epi32(                                                    \
                denormal, _mm512_mask_cmplt_epu32_mask(sub_lanes, _mm512_sub_epi32(sub_code, one), min_normal_code_minus_one), \
                denormal, one);                                                                  \
            /* a zero result keeps the sign only in a format with -0 */                          \
            const __mmask16 signed_lanes = negative & (__mmask16)~(sub_zero & no_negative_zero); \
            __m512i result;                                                                      \
            if (out_kind == OUT_VALUES_F32) {                                                    \
                const __m512i normal_bits =                                                      \
                    _mm512_and_si512(_mm512_sll_epi32(_mm512_add_epi32(code, rebias), shift_count), magnitude_mask); \
                const __m512i magnitude_bits = _mm512_mask_mov_epi32(normal_bits, sub_range, (SUB_VALUE)); \
                result = _mm512_mask_or_epi32(magnitude_bits, signed_lanes, magnitude_bits, sign_f32); \
            } else {                                                                             \
                result = _mm512_mask_or_epi32(merged, signed_lanes, merged, sign_bit);           \
            }                                                                                    \
            store_lanes(out, out_kind, i, valid, result);                                        \
            continue;                                                                            \
        }                                                                                        \
    }

/*
 * The body, inlined into one kernel per (MODE, OUT_KIND), both constants.
 * Lanes past count are loaded as 0 and neither stored nor counted.
 */
static AVX512_TARGET AVX512_INLINE fast_block_result avx512_body(const uint32_t *restrict bits, int count,
                                                                  void *restrict out, uint8_t *restrict is_slow,
                                                                  const prepared_fast_f32 *fast,
                                                                  uint64_t first_index, const int mode,
                                                                  const int out_kind, const int binade_magic)
{
    const int shift = fast->shift;
    const __m128i shift_count = _mm_cvtsi32_si128(shift);
    const uint32_t mask_scalar = (1u << shift) - 1;
    const __m512i mask = _mm512_set1_epi32((int)mask_scalar);
    const __m512i half_minus_one = _mm512_set1_epi32((int)(mask_scalar >> 1));
    const __m512i half = _mm512_set1_epi32((int)(1u << (shift - 1)));
    const __m512i magnitude_mask = _mm512_set1_epi32(0x7FFFFFFF);
    const __m512i range_mask = _mm512_set1_epi32(fast->sign_bit ? 0x7FFFFFFF : (int)0xFFFFFFFFu);
    const __m512i lo = _mm512_set1_epi32((int)fast->lo);
    const __m512i span = _mm512_set1_epi32((int)(fast->hi - fast->lo));
    const __m512i rebias = _mm512_set1_epi32((int)fast->rebias_bits);
    const __m512i max_code = _mm512_set1_epi32(fast->max_code_lanes);
    const __m512i sign_bit = _mm512_set1_epi32((int)fast->sign_bit);
    const __m512i zero_sign_bit = _mm512_set1_epi32((int)fast->zero_sign_bit);
    const __m512i zero_sign_f32 = _mm512_set1_epi32(fast->zero_sign_bit ? (int)0x80000000u : 0);
    const __m512i one = _mm512_set1_epi32(1);
    const __m512i sign_f32 = _mm512_set1_epi32((int)0x80000000u);
    const __m512i zero = _mm512_setzero_si512();
    const uint32_t zero_below_scalar = mode == FL_ROUND_TOWARD_ZERO ? fast->zero_below_toward_zero
                                       : (mode == FL_ROUND_NEAREST_EVEN || mode == FL_ROUND_NEAREST_AWAY)
                                           ? fast->zero_below_nearest : 0u;
    const __m512i zero_below = _mm512_set1_epi32((int)zero_below_scalar);
    const __mmask16 saturating = fast->saturating ? 0xFFFF : 0;
    const __mmask16 subnormals_enabled = fast->subnormals ? 0xFFFF : 0;
    const __m512 scale_1 = _mm512_set1_ps(fast->subnormal_scale_1), scale_2 = _mm512_set1_ps(fast->subnormal_scale_2);
    const __m512 inverse_1 = _mm512_set1_ps(fast->subnormals ? 1.0f / fast->subnormal_scale_1 : 0.0f);
    const __m512 inverse_2 = _mm512_set1_ps(fast->subnormals ? 1.0f / fast->subnormal_scale_2 : 0.0f);
    const __m512i y_limit = _mm512_set1_epi32(0x4B800000); /* 2^24 */
    const __m512i min_normal_code = _mm512_set1_epi32((int32_t)1 << (23 - shift));
    const __m512i min_normal_code_minus_one = _mm512_set1_epi32(((int32_t)1 << (23 - shift)) - 1);
    const __mmask16 no_negative_zero = fast->zero_sign_bit ? 0 : 0xFFFF;
    const __m512 magic = _mm512_set1_ps(fast->subnormal_magic);
    const __m512i exponent_mask = _mm512_set1_epi32(0x7F800000);
    const __m512i magic_exponent = _mm512_set1_epi32(shift << 23);
    const __m512i magic_hi = _mm512_set1_epi32((int)fast->magic_hi);
    const __m512i nu_scale_bits = _mm512_set1_epi32((int)((127u + 127u + 55u) << 23)); /* minus magic's: 2^55 / magic */
    const __m512i magic_bits = _mm512_castps_si512(magic);
    /* the generator: lane j of step s holds stream key + (first_index + 16 s + j) * golden,
     * advanced by additions (the same sums modulo 2^64 as the multiplications) */
    const uint64_t golden = 0x9E3779B97F4A7C15ULL;
    const uint64_t stream_key = IS_STOCHASTIC(mode) ? fl_stream_key_inline(fast->seed, 0) : 0;
    const uint64_t base = stream_key + first_index * golden;
    __m512i counter_low = _mm512_add_epi64(_mm512_set1_epi64((long long)base),
                                           _mm512_mullo_epi64(_mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0),
                                                              _mm512_set1_epi64((long long)golden)));
    __m512i counter_high = _mm512_add_epi64(counter_low, _mm512_set1_epi64((long long)(8 * golden)));
    const __m512i counter_step = _mm512_set1_epi64((long long)(16 * golden));
    /* truncate (its kernel runs only for N <= shift, fl_avx512_block_kernel; d = shift - N >= 0):
     * R + f >= 2^N, f = remainder >> d, is (R << d) + remainder >= 2^shift, the carry out of the
     * remainder when R << d = W & high is added to the magnitude (W = the word's top shift bits,
     * high = mask - (2^d - 1)): code = ((magnitude + (W & high)) >> shift) - rebias, the
     * deterministic modes' increment, one AND where sr_bits = 0 compares W < remainder and adds
     * the result to lo_code (the former test remainder > (W ^ high) | (2^d - 1) took a
     * ternary-logic step more and ran about 0.93x of sr_bits = 0) */
    const int truncate_by_shift = mode == MODE_STOCHASTIC_TRUNCATE;
    /* sr_bits = 32 compares all 32 top bits of the word on the common path (mix64_high16) */
    const int full_word_needed = mode == MODE_STOCHASTIC_BITS && fast->sr_bits == 32;
    const int top_bits = IS_STOCHASTIC_BITS(mode) && !truncate_by_shift ? fast->sr_bits : shift;
    const __m128i top_shift = _mm_cvtsi32_si128(32 - top_bits); /* applied to the word's top 32 bits */
    const __m128i sr_shift = _mm_cvtsi32_si128(IS_STOCHASTIC_BITS(mode) ? 32 - fast->sr_bits : 0);
    const uint32_t truncate_low = truncate_by_shift ? (1u << fast->sr.down) - 1 : 0;
    const __m512i truncate_high_bits = _mm512_set1_epi32((int)(mask_scalar & ~truncate_low));
    /* sr_bits >= 1 (codec_fast.h's fast_stochastic_bits) */
    const __m128i sr_up = _mm_cvtsi32_si128(fast->sr.up), sr_down = _mm_cvtsi32_si128(fast->sr.down);
    const __m128i sr_half_shift = _mm_cvtsi32_si128(fast->sr.half_shift);
    const __m512i sr_half_mask = _mm512_set1_epi32((int)fast->sr.half_mask);
    const __m512i sr_sticky_mask = _mm512_set1_epi32((int)fast->sr.sticky_mask);
    const __m512i sr_full_mask = _mm512_set1_epi32((int)fast->sr.full_mask);
    const __m512i sr_rounds = _mm512_set1_epi32((int)fast->sr.rule.rounds);
    const __m512i sr_ties_away = _mm512_set1_epi32((int)fast->sr.rule.ties_away);
    const __m512i sr_ties_odd = _mm512_set1_epi32((int)fast->sr.rule.ties_odd);
    /* stochastic subnormal results (stochastic_subnormal): nu 2^32, or nu 2^(N + 1) */
    const __m512 two_32 = _mm512_set1_ps(4294967296.0f);
    const __m512 twice_scale = _mm512_set1_ps(IS_STOCHASTIC_BITS(mode) ? fast->sr.twice_scale : 0.0f);
    const int stochastic_subnormals = IS_STOCHASTIC(mode) && fast->subnormals &&
                                      (mode == FL_ROUND_STOCHASTIC || fast->sr_bits <= 30);

    __m512i fast_count = zero, inexact = zero, overflow = zero, underflow = zero, denormal = zero;
    for (int i = 0; i < count; i += 16) {
        const __mmask16 valid = count - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (count - i)) - 1);
        /* the loop is long (about 120 instructions per 64 bytes read), so few of its loads are
         * in flight at once: fetch ahead, or it waits on memory (about 0.35x in-cache speed) */
        _mm_prefetch((const char *)(bits + i) + PREFETCH_BYTES, _MM_HINT_T0);
        const __m512i b = valid == 0xFFFF ? _mm512_loadu_si512(bits + i) : _mm512_maskz_loadu_epi32(valid, bits + i);
        const __m512i magnitude = _mm512_and_si512(b, magnitude_mask);
        const __mmask16 negative = _mm512_movepi32_mask(b);
        __m512i random_32 = zero; /* draw 0's top 32 bits (mix64_high16) */
        if (IS_STOCHASTIC(mode)) {
            random_32 = mix64_high16(counter_low, counter_high);
            if (full_word_needed)
                random_32 = full_word32(random_32);
            counter_low = _mm512_add_epi64(counter_low, counter_step);
            counter_high = _mm512_add_epi64(counter_high, counter_step);
        }
        if (binade_magic && (mode == FL_ROUND_STOCHASTIC || mode == MODE_STOCHASTIC_TRUNCATE)) {
            /* exact stochastic rounding on the binade (see the nearest-even step below): the
             * float32 sum |x| + magic rounded toward zero (embedded rounding, whatever the
             * environment) is the lower neighbour, steps its step count, rem = |x| - its value
             * (exact, below one step) and nu 2^32 = rem 2^55 / magic (one exact product by a
             * power of two built on magic's exponent bits; fl_prepare_fast_f32 keeps it finite).
             * Where nu 2^32 is an integer n32 (every normal lane: n32 = remainder << (32 - shift);
             * subnormal lanes with nu of at most 32 bits), away iff (w >> 32) < n32, the
             * decision of the other lanes and of stochastic_away; other lanes take the rest. */
            const __m512i exponent = _mm512_max_epu32(_mm512_and_si512(magnitude, exponent_mask), lo);
            const __m512i binade_bits = _mm512_add_epi32(exponent, magic_exponent);
            const __m512 binade = _mm512_castsi512_ps(binade_bits);
            const __m512 sum = _mm512_add_round_ps(_mm512_castsi512_ps(magnitude), binade, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
            const __m512 rem = _mm512_sub_ps(_mm512_castsi512_ps(magnitude), _mm512_sub_ps(sum, binade));
            const __m512 scaled_nu = _mm512_mul_ps(rem, _mm512_castsi512_ps(_mm512_sub_epi32(nu_scale_bits, binade_bits)));
            const __m512i n32 = _mm512_cvttps_epu32(scaled_nu);
            /* sr_rule = truncate (N = sr_bits <= shift): k = floor(nu 2^N) = n32 >> (32 - N)
             * (cvtt truncates, so this holds where nu has more than 32 bits too) and away iff
             * R + k >= 2^N, R the word's top N bits, as sr_reduced_fraction decides */
            const __mmask16 away =
                mode == FL_ROUND_STOCHASTIC
                    ? _mm512_cmplt_epu32_mask(full_word32(random_32), n32)
                    : _mm512_cmpgt_epu32_mask(_mm512_srl_epi32(random_32, sr_shift),
                                              _mm512_sub_epi32(sr_full_mask, _mm512_srl_epi32(n32, sr_shift)));
            const __m512i rounded = _mm512_mask_add_epi32(_mm512_castps_si512(sum), away, _mm512_castps_si512(sum), one);
            const __m512i magic_code = _mm512_add_epi32(_mm512_sub_epi32(rounded, binade_bits),
                                                        _mm512_srl_epi32(_mm512_sub_epi32(exponent, lo), shift_count));
            const __m512i range_value = _mm512_and_si512(b, range_mask);
            const __mmask16 simple = _mm512_cmple_epu32_mask(range_value, magic_hi) &
                                     _mm512_cmple_epi32_mask(magic_code, max_code) &
                                     (mode == FL_ROUND_STOCHASTIC ? _mm512_cmp_ps_mask(_mm512_cvtepu32_ps(n32), scaled_nu, _CMP_EQ_OQ)
                                                                  : (__mmask16)0xFFFF);
            if ((simple & valid) == valid) {
                if (valid == 0xFFFF)
                    _mm_storeu_si128((__m128i *)(is_slow + i), _mm_setzero_si128());
                else
                    _mm_mask_storeu_epi8(is_slow + i, valid, _mm_setzero_si128());
                fast_count = _mm512_mask_add_epi32(fast_count, valid, fast_count, one);
                const __mmask16 value_inexact = _mm512_mask_test_epi32_mask(valid, _mm512_castps_si512(rem),
                                                                             _mm512_castps_si512(rem));
                inexact = _mm512_mask_add_epi32(inexact, value_inexact, inexact, one);
                const __mmask16 zero_code = _mm512_mask_cmpeq_epi32_mask(valid, magic_code, zero);
                const __mmask16 small_code = _mm512_mask_cmplt_epu32_mask(valid, magic_code, min_normal_code);
                underflow = _mm512_mask_add_epi32(underflow, zero_code & value_inexact, underflow, one);
                denormal = _mm512_mask_add_epi32(denormal, small_code & (__mmask16)~zero_code, denormal, one);
                const __mmask16 signed_lanes = negative & (__mmask16)~(zero_code & no_negative_zero);
                __m512i result;
                if (out_kind == OUT_VALUES_F32) {
                    const __m512i value = _mm512_castps_si512(_mm512_sub_ps(_mm512_castsi512_ps(rounded), binade));
                    result = _mm512_mask_or_epi32(value, signed_lanes, value, sign_f32);
                } else {
                    result = _mm512_mask_or_epi32(magic_code, signed_lanes, magic_code, sign_bit);
                }
                store_lanes(out, out_kind, i, valid, result);
                continue;
            }
        }
        if (binade_magic && mode == FL_ROUND_NEAREST_EVEN) {
            /* nearest-even for normal and subnormal results alike, in float32 (the kernel of
             * fl_avx512_block_kernel's binade_magic): with E = max(the exponent bits of |x|, lo)
             * and magic = 2^(e + shift) (bits E + (shift << 23)), |x| + magic lies in [magic,
             * 2 magic], whose spacing is |x|'s step in the format (2^(e - m) in a normal binade,
             * 2^(emin - m) below lo), so the float32 sum rounds |x| to the format, ties to even;
             * the value is sum - magic (exact), and the code N + ((E - lo) >> shift) with
             * N = bits(sum) - bits(magic) the step count: ((e - emin) << m) + N is
             * ((e + bias) << m) | (N - 2^m) for normal results, N for subnormal ones.
             * fl_prepare_fast_f32 allows it only where the format has ieee subnormals (so lo is
             * 2^emin), and for inputs up to magic_hi, where E + (shift << 23) stays a finite
             * float32 and the codes are within int32 (hi); the other lanes take the rest. */
            const __m512i exponent = _mm512_max_epu32(_mm512_and_si512(magnitude, exponent_mask), lo);
            const __m512 binade = _mm512_castsi512_ps(_mm512_add_epi32(exponent, magic_exponent));
            const __m512 sum = _mm512_add_ps(_mm512_castsi512_ps(magnitude), binade);
            const __m512i value = _mm512_castps_si512(_mm512_sub_ps(sum, binade));
            const __m512i steps = _mm512_sub_epi32(_mm512_castps_si512(sum), _mm512_castps_si512(binade));
            const __m512i magic_code = _mm512_add_epi32(steps, _mm512_srl_epi32(_mm512_sub_epi32(exponent, lo), shift_count));
            const __m512i range_value = _mm512_and_si512(b, range_mask);
            const __mmask16 simple = _mm512_cmple_epu32_mask(range_value, magic_hi) & _mm512_cmple_epi32_mask(magic_code, max_code);
            if ((simple & valid) == valid) {
                if (valid == 0xFFFF)
                    _mm_storeu_si128((__m128i *)(is_slow + i), _mm_setzero_si128());
                else
                    _mm_mask_storeu_epi8(is_slow + i, valid, _mm_setzero_si128());
                fast_count = _mm512_mask_add_epi32(fast_count, valid, fast_count, one);
                const __mmask16 value_inexact = _mm512_mask_cmpneq_epi32_mask(valid, value, magnitude);
                inexact = _mm512_mask_add_epi32(inexact, value_inexact, inexact, one);
                /* code 0: a zero result (underflow where x != 0, that is where inexact);
                 * 1 <= code < 2^m: a subnormal one (normal codes are >= 2^m) */
                const __mmask16 zero_code = _mm512_mask_cmpeq_epi32_mask(valid, magic_code, zero);
                const __mmask16 small_code = _mm512_mask_cmplt_epu32_mask(valid, magic_code, min_normal_code);
                underflow = _mm512_mask_add_epi32(underflow, zero_code & value_inexact, underflow, one);
                denormal = _mm512_mask_add_epi32(denormal, small_code & (__mmask16)~zero_code, denormal, one);
                /* a zero result keeps the sign only in a format with -0 */
                const __mmask16 signed_lanes = negative & (__mmask16)~(zero_code & no_negative_zero);
                __m512i result;
                if (out_kind == OUT_VALUES_F32)
                    result = _mm512_mask_or_epi32(value, signed_lanes, value, sign_f32);
                else
                    result = _mm512_mask_or_epi32(magic_code, signed_lanes, magic_code, sign_bit);
                store_lanes(out, out_kind, i, valid, result);
                continue;
            }
        }
        const __m512i lo_code = _mm512_sub_epi32(_mm512_srl_epi32(magnitude, shift_count), rebias);
        const __m512i remainder = _mm512_and_si512(magnitude, mask);
        const __mmask16 remainder_nonzero = _mm512_test_epi32_mask(remainder, remainder);
        __m512i code;
        __m512i random_top = zero; /* draw 0's top top_bits */
        if (mode == FL_ROUND_ODD) {
            code = _mm512_mask_or_epi32(lo_code, remainder_nonzero, lo_code, one);
        } else if (IS_STOCHASTIC(mode)) {
            random_top = _mm512_srl_epi32(random_32, top_shift);
            __mmask16 away;
            if (mode == FL_ROUND_STOCHASTIC) {
                away = _mm512_cmplt_epu32_mask(random_top, remainder);
            } else if (mode == MODE_STOCHASTIC_TRUNCATE) {
                /* the carry of magnitude + (R << d) is lo_code's increment (truncate_by_shift) */
                const __m512i increment = _mm512_and_si512(random_top, truncate_high_bits);
                code = _mm512_sub_epi32(_mm512_srl_epi32(_mm512_add_epi32(magnitude, increment), shift_count), rebias);
                away = 0;
            } else {
                const __m512i f = _mm512_srl_epi32(_mm512_sll_epi32(remainder, sr_up), sr_down);
                const __m512i h = _mm512_and_si512(_mm512_srl_epi32(remainder, sr_half_shift), sr_half_mask);
                const __m512i sticky = ones_where(_mm512_test_epi32_mask(remainder, sr_sticky_mask));
                const __m512i tie_rule = _mm512_or_si512(_mm512_or_si512(sr_ties_away, sticky), _mm512_xor_si512(f, sr_ties_odd));
                const __m512i k = _mm512_add_epi32(f, _mm512_and_si512(_mm512_and_si512(h, sr_rounds), tie_rule));
                away = _mm512_cmpgt_epu32_mask(random_top, _mm512_sub_epi32(sr_full_mask, k)) |
                       _mm512_cmpgt_epu32_mask(k, sr_full_mask);
            }
            if (mode != MODE_STOCHASTIC_TRUNCATE)
                code = _mm512_mask_add_epi32(lo_code, away, lo_code, one);
        } else {
            __m512i increment;
            switch (mode) {
            case FL_ROUND_NEAREST_EVEN: increment = _mm512_add_epi32(half_minus_one, _mm512_and_si512(lo_code, one)); break;
            case FL_ROUND_NEAREST_AWAY: increment = half; break;
            case FL_ROUND_UP: increment = _mm512_maskz_mov_epi32((__mmask16)~negative, mask); break;
            case FL_ROUND_DOWN: increment = _mm512_maskz_mov_epi32(negative, mask); break;
            default: increment = zero; break;
            }
            code = _mm512_sub_epi32(_mm512_srl_epi32(_mm512_add_epi32(magnitude, increment), shift_count), rebias);
        }
        const __m512i range_value = _mm512_and_si512(b, range_mask);
        const __mmask16 in_range = _mm512_cmple_epu32_mask(_mm512_sub_epi32(range_value, lo), span);
        const __mmask16 normal = in_range & _mm512_cmple_epi32_mask(code, max_code);
        if (normal == valid) {
            /* every lane normal in both formats (the common case): no saturation, zero
             * shortcut or subnormal result can apply, so the rest of the body would give these */
            if (valid == 0xFFFF)
                _mm_storeu_si128((__m128i *)(is_slow + i), _mm_setzero_si128());
            else
                _mm_mask_storeu_epi8(is_slow + i, valid, _mm_setzero_si128());
            fast_count = _mm512_mask_add_epi32(fast_count, valid, fast_count, one);
            inexact = _mm512_mask_add_epi32(inexact, remainder_nonzero & valid, inexact, one);
            __m512i result;
            if (out_kind == OUT_VALUES_F32) {
                const __m512i normal_bits = _mm512_sll_epi32(_mm512_add_epi32(code, rebias), shift_count);
                result = _mm512_or_si512(_mm512_and_si512(normal_bits, magnitude_mask), _mm512_and_si512(b, sign_f32));
            } else {
                result = _mm512_mask_or_epi32(code, negative, code, sign_bit);
            }
            store_lanes(out, out_kind, i, valid, result);
            continue;
        }
        if (mode == FL_ROUND_NEAREST_EVEN) {
            /* nearest-even subnormal results from one float32 addition (codec_fast.h's
             * subnormal_magic): the code is the sum's bits minus magic's, the value the sum
             * minus magic (exact: both lie in [magic, 2 magic) or are magic) */
            const __m512 sum = _mm512_add_ps(_mm512_castsi512_ps(magnitude), magic);
            const __m512i magic_code = _mm512_sub_epi32(_mm512_castps_si512(sum), magic_bits);
            const __m512i magic_value = _mm512_castps_si512(_mm512_sub_ps(sum, magic));
            WIDE_STEP(subnormals_enabled, magic_code, _mm512_cmpneq_epi32_mask(magic_value, magnitude), magic_value);
        }
        /* ieee subnormal results (codec_fast.c): y = |x| 2^(m - emin), clamped to 2^24 on the bits */
        const __m512 scaled = _mm512_mul_ps(_mm512_mul_ps(_mm512_castsi512_ps(magnitude), scale_1), scale_2);
        const __m512 y = _mm512_castsi512_ps(_mm512_min_epu32(_mm512_castps_si512(scaled), y_limit));
        const __m512i t = _mm512_cvttps_epi32(y);
        const __m512 fraction = _mm512_sub_ps(y, _mm512_cvtepi32_ps(t));
        const __mmask16 subnormal_inexact = _mm512_cmp_ps_mask(fraction, _mm512_setzero_ps(), _CMP_NEQ_UQ);
        __m512i subnormal_code;
        __mmask16 subnormal_exact_path = 0xFFFF; /* lanes whose stochastic decision is made here */
        switch (mode) {
        case FL_ROUND_NEAREST_EVEN: {
            const __m512 rounded = _mm512_sub_ps(_mm512_add_ps(y, _mm512_set1_ps(8388608.0f)), _mm512_set1_ps(8388608.0f));
            subnormal_code = _mm512_cvttps_epi32(rounded);
            break;
        }
        case FL_ROUND_NEAREST_AWAY:
            subnormal_code = _mm512_mask_add_epi32(t, _mm512_cmp_ps_mask(fraction, _mm512_set1_ps(0.5f), _CMP_GE_OQ), t, one);
            break;
        case FL_ROUND_UP: subnormal_code = _mm512_mask_add_epi32(t, subnormal_inexact & (__mmask16)~negative, t, one); break;
        case FL_ROUND_DOWN: subnormal_code = _mm512_mask_add_epi32(t, subnormal_inexact & negative, t, one); break;
        case FL_ROUND_ODD: subnormal_code = _mm512_mask_or_epi32(t, subnormal_inexact, t, one); break;
        case FL_ROUND_STOCHASTIC:
        case MODE_STOCHASTIC_BITS:
        case MODE_STOCHASTIC_TRUNCATE: {
            /* stochastic_away on nu = fraction (exact), with the lane's draw 0, word w:
             * sr_bits = 0: away iff w < nu 2^64 when nu has at most 32 bits (nu 2^32 an integer
             * n32: then w < n32 2^32 iff (w >> 32) < n32); other lanes go to encode_one, which
             * may need more draws.  sr_bits = N (<= 30 here): twice = floor(nu 2^(N+1)) and
             * sticky (nu 2^(N+1) not an integer) give k as in sr_reduced_fraction, and away
             * iff k + (w >> (64 - N)) >= 2^N. */
            __mmask16 away;
            if (mode == FL_ROUND_STOCHASTIC) {
                const __m512 scaled_nu = _mm512_mul_ps(fraction, two_32); /* exact, < 2^32 */
                const __m512i n32 = _mm512_cvttps_epu32(scaled_nu);
                subnormal_exact_path = _mm512_cmp_ps_mask(_mm512_cvtepu32_ps(n32), scaled_nu, _CMP_EQ_OQ);
                away = _mm512_cmplt_epu32_mask(full_word32(random_32), n32);
            } else if (mode == MODE_STOCHASTIC_TRUNCATE) {
                /* k = floor(nu 2^N) = floor(twice / 2) < 2^N: away iff R > 2^N - 1 - k */
                const __m512i k = _mm512_srli_epi32(_mm512_cvttps_epi32(_mm512_mul_ps(fraction, twice_scale)), 1);
                const __m512i random_bits = _mm512_srl_epi32(random_32, sr_shift); /* R, N bits */
                away = _mm512_cmpgt_epu32_mask(random_bits, _mm512_sub_epi32(sr_full_mask, k));
            } else {
                const __m512 twice_value = _mm512_mul_ps(fraction, twice_scale); /* exact, < 2^31 */
                const __m512i twice = _mm512_cvttps_epi32(twice_value);
                const __mmask16 sticky_mask = _mm512_cmp_ps_mask(_mm512_cvtepi32_ps(twice), twice_value, _CMP_NEQ_UQ);
                const __m512i f = _mm512_srli_epi32(twice, 1), h = _mm512_and_si512(twice, one);
                const __m512i tie_rule = _mm512_or_si512(_mm512_or_si512(sr_ties_away, ones_where(sticky_mask)),
                                                         _mm512_xor_si512(f, sr_ties_odd));
                const __m512i k = _mm512_add_epi32(f, _mm512_and_si512(_mm512_and_si512(h, sr_rounds), tie_rule));
                const __m512i random_bits = _mm512_srl_epi32(random_32, sr_shift); /* R, N bits */
                away = _mm512_cmpgt_epu32_mask(random_bits, _mm512_sub_epi32(sr_full_mask, k)) |
                       _mm512_cmpgt_epu32_mask(k, sr_full_mask);
            }
            subnormal_code = _mm512_mask_add_epi32(t, away, t, one);
            break;
        }
        default: subnormal_code = t; break;
        }
        __mmask16 subnormal_allowed = subnormals_enabled;
        if (IS_STOCHASTIC(mode))
            subnormal_allowed = stochastic_subnormals ? subnormal_exact_path : 0;
        if (mode != FL_ROUND_NEAREST_EVEN)
            WIDE_STEP(subnormal_allowed, subnormal_code, subnormal_inexact,
                      _mm512_castps_si512(_mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(subnormal_code), inverse_1), inverse_2)));
        const __mmask16 saturated = in_range & saturating & _mm512_cmpgt_epi32_mask(code, max_code);
        code = _mm512_mask_mov_epi32(code, saturated, max_code);
        const __mmask16 tiny = _mm512_cmplt_epu32_mask(range_value, zero_below);
        const __mmask16 subnormal = subnormal_allowed & _mm512_cmplt_epu32_mask(range_value, lo) & (__mmask16)~tiny;
        code = _mm512_mask_mov_epi32(code, subnormal, subnormal_code);
        const __mmask16 subnormal_zero = _mm512_cmpeq_epi32_mask(subnormal_code, zero);
        const __mmask16 zero_result = tiny | (subnormal & subnormal_zero);
        const __mmask16 nonzero = _mm512_test_epi32_mask(magnitude, magnitude);
        const __mmask16 code_fits = _mm512_cmple_epi32_mask(code, max_code);
        const __mmask16 subnormal_fast = subnormal & code_fits;
        const __mmask16 is_fast = ((in_range & code_fits) | tiny | subnormal_fast) & valid;
        const __m128i slow_bytes = _mm_maskz_mov_epi8((__mmask16)~is_fast, _mm_set1_epi8(1));
        if (valid == 0xFFFF)
            _mm_storeu_si128((__m128i *)(is_slow + i), slow_bytes);
        else
            _mm_mask_storeu_epi8(is_slow + i, valid, slow_bytes);
        fast_count = _mm512_mask_add_epi32(fast_count, is_fast, fast_count, one);
        const __mmask16 inexact_lanes = (is_fast & in_range & (remainder_nonzero | saturated)) | (tiny & nonzero) |
                                        (subnormal_fast & subnormal_inexact);
        inexact = _mm512_mask_add_epi32(inexact, inexact_lanes & valid, inexact, one);
        overflow = _mm512_mask_add_epi32(overflow, saturated & valid, overflow, one);
        underflow = _mm512_mask_add_epi32(underflow, (tiny | (subnormal_fast & subnormal_zero)) & nonzero & valid,
                                          underflow, one);
        const __mmask16 denormal_lanes = subnormal_fast & (__mmask16)~subnormal_zero &
                                         _mm512_cmplt_epi32_mask(subnormal_code, min_normal_code);
        denormal = _mm512_mask_add_epi32(denormal, denormal_lanes & valid, denormal, one);
        __m512i result;
        if (out_kind == OUT_VALUES_F32) {
            /* a normal code shifted back with the bias restored; a subnormal code's value is
             * code / 2^(m - emin), exact in float32 */
            const __m512 subnormal_value = _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(subnormal_code), inverse_1), inverse_2);
            const __m512i normal_bits = _mm512_and_si512(_mm512_sll_epi32(_mm512_add_epi32(code, rebias), shift_count),
                                                         magnitude_mask);
            const __m512i magnitude_bits = _mm512_mask_mov_epi32(normal_bits, subnormal, _mm512_castps_si512(subnormal_value));
            const __m512i signed_bits = _mm512_mask_or_epi32(magnitude_bits, negative, magnitude_bits, sign_f32);
            result = _mm512_mask_mov_epi32(signed_bits, zero_result, _mm512_maskz_mov_epi32(negative, zero_sign_f32));
        } else {
            const __m512i signed_code = _mm512_mask_or_epi32(code, negative, code, sign_bit);
            result = _mm512_mask_mov_epi32(signed_code, zero_result, _mm512_maskz_mov_epi32(negative, zero_sign_bit));
        }
        store_lanes(out, out_kind, i, valid, result);
    }
    fast_block_result result = {count - _mm512_reduce_add_epi32(fast_count), _mm512_reduce_add_epi32(inexact),
                                _mm512_reduce_add_epi32(overflow), _mm512_reduce_add_epi32(underflow),
                                _mm512_reduce_add_epi32(denormal)};
    return result;
}

#define DEFINE_AVX512_KERNEL(NAME, MODE, KIND, MAGIC)                                            \
    static AVX512_TARGET fast_block_result NAME(const uint32_t *restrict bits, int count,         \
                                                void *restrict out, uint8_t *restrict is_slow,    \
                                                const prepared_fast_f32 *fast, uint64_t first_index) \
    {                                                                                            \
        return avx512_body(bits, count, out, is_slow, fast, first_index, MODE, KIND, MAGIC);     \
    }
#define DEFINE_AVX512_KERNELS(KIND)                                                              \
    DEFINE_AVX512_KERNEL(avx512_nearest_even_##KIND, FL_ROUND_NEAREST_EVEN, KIND, 0)             \
    DEFINE_AVX512_KERNEL(avx512_nearest_away_##KIND, FL_ROUND_NEAREST_AWAY, KIND, 0)             \
    DEFINE_AVX512_KERNEL(avx512_toward_zero_##KIND, FL_ROUND_TOWARD_ZERO, KIND, 0)               \
    DEFINE_AVX512_KERNEL(avx512_up_##KIND, FL_ROUND_UP, KIND, 0)                                 \
    DEFINE_AVX512_KERNEL(avx512_down_##KIND, FL_ROUND_DOWN, KIND, 0)                             \
    DEFINE_AVX512_KERNEL(avx512_odd_##KIND, FL_ROUND_ODD, KIND, 0)                               \
    DEFINE_AVX512_KERNEL(avx512_stochastic_##KIND, FL_ROUND_STOCHASTIC, KIND, 0)                 \
    DEFINE_AVX512_KERNEL(avx512_stochastic_bits_##KIND, MODE_STOCHASTIC_BITS, KIND, 0)           \
    DEFINE_AVX512_KERNEL(avx512_stochastic_truncate_##KIND, MODE_STOCHASTIC_TRUNCATE, KIND, 0)   \
    DEFINE_AVX512_KERNEL(avx512_nearest_even_magic_##KIND, FL_ROUND_NEAREST_EVEN, KIND, 1)       \
    DEFINE_AVX512_KERNEL(avx512_stochastic_magic_##KIND, FL_ROUND_STOCHASTIC, KIND, 1)           \
    DEFINE_AVX512_KERNEL(avx512_stochastic_truncate_magic_##KIND, MODE_STOCHASTIC_TRUNCATE, KIND, 1)
DEFINE_AVX512_KERNELS(OUT_CODES_1)
DEFINE_AVX512_KERNELS(OUT_CODES_2)
DEFINE_AVX512_KERNELS(OUT_CODES_4)
DEFINE_AVX512_KERNELS(OUT_VALUES_F32)

#define KERNEL_TABLE_ROW(KIND)                                                                   \
    {avx512_nearest_even_##KIND, avx512_nearest_away_##KIND, avx512_toward_zero_##KIND,         \
     avx512_up_##KIND, avx512_down_##KIND, avx512_odd_##KIND, avx512_stochastic_##KIND,         \
     avx512_stochastic_bits_##KIND, avx512_stochastic_truncate_##KIND,                          \
     avx512_nearest_even_magic_##KIND, avx512_stochastic_magic_##KIND,                          \
     avx512_stochastic_truncate_magic_##KIND}

fast_block_kernel fl_avx512_block_kernel(int mode, int sr_bits, int sr_rule, int shift, int out_kind, int binade_magic)
{
    static const fast_block_kernel table[4][12] = {KERNEL_TABLE_ROW(OUT_CODES_1), KERNEL_TABLE_ROW(OUT_CODES_2),
                                                   KERNEL_TABLE_ROW(OUT_CODES_4), KERNEL_TABLE_ROW(OUT_VALUES_F32)};
    const int row = out_kind == OUT_CODES_1 ? 0 : out_kind == OUT_CODES_2 ? 1 : out_kind == OUT_CODES_4 ? 2 : 3;
    /* the truncate kernel for N <= shift only (its increment needs d = shift - N >= 0); the
     * sr_bits kernel does every rule, truncate with N > shift too */
    const int column = mode != FL_ROUND_STOCHASTIC ? mode : sr_bits == 0 ? 6 : sr_rule == FL_SR_TRUNCATE && sr_bits <= shift ? 8 : 7;
    if (mode < FL_ROUND_NEAREST_EVEN || mode > FL_ROUND_STOCHASTIC)
        return NULL;
    if (binade_magic && column == FL_ROUND_NEAREST_EVEN)
        return table[row][9];
    if (binade_magic && column == 6) /* exact stochastic rounding */
        return table[row][10];
    if (binade_magic && column == 8) /* truncate, N <= shift */
        return table[row][11];
    return table[row][column];
}

#else

fast_block_kernel fl_avx512_block_kernel(int mode, int sr_bits, int sr_rule, int shift, int out_kind, int binade_magic)
{
    (void)binade_magic;
    (void)mode;
    (void)sr_bits;
    (void)sr_rule;
    (void)shift;
    (void)out_kind;
    return NULL;
}

#endif
