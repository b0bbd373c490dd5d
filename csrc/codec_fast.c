/*
 * codec_fast.c - the float32 fast path of the codec: the portable C block kernels, and the
 * choice between them and the intrinsics kernels of codec_avx2.c and codec_avx512.c.
 *
 * For a float32 that is normal both in float32 and in the target format, the format's code
 * is the float32 (exponent, mantissa) code shifted right by 23 - m and rebiased, and
 * rounding is an increment added before the shift.  The kernels below do that for a block
 * of 512 elements in a branch-free loop over 32-bit lanes that the compiler vectorises, and
 * flag every element they cannot do exactly; codec.c redoes those with encode_one.  They
 * must give the same bits as round.h's encode_one (codec_fast.h states the contract);
 * tests/test_codec_reference.py checks that float32 input (this path) and float64 input
 * (encode_one alone) give the same codes.
 *
 * Two kernels per (rounding mode, output kind): the lean one handles normal results only;
 * the full one also handles in-lane saturation, inputs certain to round to zero, and ieee
 * subnormal results of the deterministic modes.  The lean one runs first; a block it leaves
 * many elements of is redone by the full one (fl_fast_f32_block).
 * Stochastic rounding has three such pairs: exact probability (sr_bits = 0), sr_rule = truncate
 * with sr_bits <= 23 - m (no rule arithmetic), and every other sr_bits >= 1 (every sr_rule, by
 * per-call masks); one loop for the first and the last ran the exact case about 30% slower.
 */
#include "codec_fast.h"

#include <stdlib.h>
#include <string.h>

/* The body must be inlined into each (mode, kind, full) copy so that those are constants
 * in it; compilers that decline to inline it still compute the same results, slower. */
#if defined(__GNUC__)
#define FL_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define FL_ALWAYS_INLINE inline
#endif

/* The kernels' own mode for stochastic rounding with sr_bits >= 1 (FL_ROUND_STOCHASTIC's kernels
 * do sr_bits = 0, the exact probability): a compile-time constant, so that neither kind of
 * kernel carries the other's arithmetic. */
#define FAST_STOCHASTIC_BITS 100 /* not an enum fl_rounding_mode value */
/* ... and its copy for sr_rule = truncate (the default) with N = sr_bits <= shift, whose test needs
 * no rule arithmetic (codec_fast.h's fast_stochastic_bits.truncate_low) */
#define FAST_STOCHASTIC_TRUNCATE 101
#define FAST_IS_STOCHASTIC(MODE) \
    ((MODE) == FL_ROUND_STOCHASTIC || (MODE) == FAST_STOCHASTIC_BITS || (MODE) == FAST_STOCHASTIC_TRUNCATE)

/* mix64 (fmtlab.h's fl_mix64_inline) without its last step z ^ (z >> 31), which changes bits
 * 0..32 only: the top 31 bits are mix64's, all that the kernels compare except sr_bits = 32. */
static FL_ALWAYS_INLINE uint64_t mix64_top_bits(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    return (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
}

static FL_ALWAYS_INLINE fast_block_result fast_block_body(const uint32_t *restrict bits, int count,
                                                void *restrict out, const int out_kind,
                                                uint8_t *restrict is_slow,
                                                uint32_t lo, uint32_t span, int shift, uint32_t sign_bit,
                                                uint32_t rebias, int32_t max_code, const int mode,
                                                uint64_t stream_key, uint64_t first_index, int top_bits,
                                                fast_stochastic_bits sr,
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
    /* Lane arithmetic is unsigned (wrapping) and converted to int32 only to compare: lanes
     * outside the fast range compute garbage that is masked off, and must not overflow a
     * signed type.  For lanes inside it fl_prepare_fast_f32 proved every code to lie in
     * 0..INT32_MAX, so there the conversions are exact. */
    for (int i = 0; i < count; i++) {
        const uint32_t magnitude = bits[i] & 0x7FFFFFFFu, negative = bits[i] >> 31;
        const int32_t lo_code = (int32_t)((magnitude >> shift) - rebias);
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
        } else if (FAST_IS_STOCHASTIC(mode)) {
            /* the same decisions as stochastic_away on the top bits of the element's first
             * draw (shift bits when exact, sr_bits otherwise), generated here in the lane:
             * fl_random_word_inline(seed, index, 0) = mix64(stream key + index * golden) */
            uint64_t word = mix64_top_bits(stream_key + (first_index + (uint64_t)i) * 0x9E3779B97F4A7C15ULL);
            if (mode == FAST_STOCHASTIC_BITS) /* N may be 32, one bit more than mix64_top_bits keeps */
                word ^= word >> 31;
            const uint32_t random_top = (uint32_t)(word >> (64 - top_bits));
            int32_t away;
            if (mode == FL_ROUND_STOCHASTIC) {
                away = random_top < remainder;
            } else if (mode == FAST_STOCHASTIC_TRUNCATE) {
                /* k = remainder >> d (d = shift - N >= 0) and R = the top N of the top shift bits W:
                 * k + R >= 2^N iff (R << d) + remainder >= 2^shift, the carry of the magnitude
                 * plus W & high into lo_code (codec_fast.h), added below like an increment */
                away = 0;
            } else {
                /* k = nu * 2^N brought to an integer by the rule (codec_fast.h); k <= 2^N */
                const uint32_t f = (remainder << sr.up) >> sr.down;
                const uint32_t h = (remainder >> sr.half_shift) & sr.half_mask;
                const uint32_t sticky = (remainder & sr.sticky_mask) != 0;
                const uint32_t k = f + (h & sr.rule.rounds & (sr.rule.ties_away | sticky | (f ^ sr.rule.ties_odd)));
                away = (random_top > sr.full_mask - k) | (k > sr.full_mask); /* R + k >= 2^N */
            }
            if (mode == FAST_STOCHASTIC_TRUNCATE)
                code = (int32_t)(((magnitude + (random_top & sr.truncate_high)) >> shift) - rebias);
            else
                code = (int32_t)((uint32_t)lo_code + (uint32_t)away);
        } else
            code = (int32_t)(((magnitude + increment) >> shift) - rebias);
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
        const float scaled = magnitude_value * subnormal_scale_1 * subnormal_scale_2;
        /* clamped to 2^24 so that the conversion below is defined in every lane (Inf, NaN and
         * large inputs scale beyond int32); subnormal lanes have y < 2^m <= 2^22 and keep their
         * value.  On the bits: y >= 0 (or a positive NaN), so its bits are ordered like its
         * values and an integer minimum clamps it (a float compare here keeps GCC's vectoriser
         * away, as -ftrapping-math forbids if-converting it) */
        uint32_t scaled_bits;
        memcpy(&scaled_bits, &scaled, sizeof scaled_bits);
        const uint32_t y_bits = scaled_bits < 0x4B800000u ? scaled_bits : 0x4B800000u; /* 2^24 */
        float y;
        memcpy(&y, &y_bits, sizeof y);
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
        const int32_t subnormal = (1 - FAST_IS_STOCHASTIC(mode)) & subnormals_enabled & (range_value < lo) & (tiny ^ 1);
        const uint32_t subnormal_mask = 0u - (uint32_t)subnormal;
        code = (int32_t)(((uint32_t)subnormal_code & subnormal_mask) | ((uint32_t)code & ~subnormal_mask));
        const int32_t zero_result = tiny | (subnormal & (subnormal_code == 0));
        const uint32_t tiny_mask = 0u - (uint32_t)zero_result;
        const int32_t nonzero = magnitude != 0;
        /* a subnormal result may round up to min_normal's code 2^m, which can lie above
         * max_code (unsigned P3109 e1m1: max is the subnormal 1): encode_one decides those */
        const int32_t subnormal_fast = subnormal & (code <= max_code);
        const int32_t fast = (in_range & (code <= max_code)) | tiny | subnormal_fast;
        is_slow[i] = (uint8_t)(1 - fast);
        fast_count += fast;
        /* counts of the lanes done here only (the flagged ones are counted by encode_one) */
        inexact += (fast & in_range & ((remainder != 0) | saturated)) | (tiny & nonzero) |
                   (subnormal_fast & subnormal_inexact);
        overflow += saturated;
        underflow += (tiny | (subnormal_fast & (subnormal_code == 0))) & nonzero;
        denormal += subnormal_fast & (subnormal_code != 0) & (subnormal_code < min_normal_code);
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
            const uint32_t normal_bits = (((uint32_t)code + rebias) << shift) & 0x7FFFFFFFu;
            const uint32_t magnitude_bits = (subnormal_bits & subnormal_mask) | (normal_bits & ~subnormal_mask);
            ((uint32_t *)out)[i] = ((zero_sign_f32 & sign_mask) & tiny_mask) |
                                   ((magnitude_bits | (negative << 31)) & ~tiny_mask);
        }
    }
    fast_block_result result = {count - fast_count, inexact, overflow, underflow, denormal};
    return result;
}

/* The SIMD levels, chosen when the library loads (fl_codec_simd_level): on x86-64 with GCC or
 * clang the AVX2 level runs the intrinsics kernels of codec_avx2.c and the AVX-512 (F, DQ, BW,
 * VL) level those of codec_avx512.c (the same lane arithmetic, written out) instead of the C
 * kernels below.  All copies run in the default floating-point environment, with no fused or
 * reassociated float arithmetic (no -ffast-math; -std=c99 keeps -ffp-contract=off), so every
 * copy gives the same bits; the portable C copy stays and can be forced with
 * FMTLAB_SIMD=portable (tested on its own). */
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define FL_X86_SIMD 1
#else
#define FL_X86_SIMD 0
#endif

/* One out-of-line copy per (mode, output kind, lean or full): all three are constants
 * inside, and the loop stays small enough for the vectoriser. */
#define DEFINE_FAST_BLOCK_VARIANT(MODE, KIND, FULL, NAME, ATTRIBUTES)                            \
    ATTRIBUTES static fast_block_result NAME(                                                    \
        const uint32_t *restrict bits, int count, void *restrict out, uint8_t *restrict is_slow, \
        const prepared_fast_f32 *fast, uint64_t first_index)                                     \
    {                                                                                            \
        /* the generator's stream key of draw 0 (fmtlab.h), once per block; the lanes mix      \
         * each element's index with it */                                                       \
        const uint64_t stream_key = FAST_IS_STOCHASTIC(MODE) ? fl_stream_key_inline(fast->seed, 0) : 0; \
        const int top_bits = MODE == FAST_STOCHASTIC_BITS ? fast->sr_bits : fast->shift;         \
        uint32_t zero_below = MODE == FL_ROUND_TOWARD_ZERO ? fast->zero_below_toward_zero        \
                              : (MODE == FL_ROUND_NEAREST_EVEN || MODE == FL_ROUND_NEAREST_AWAY) \
                                    ? fast->zero_below_nearest : 0u;                             \
        return fast_block_body(bits, count, out, KIND, is_slow, fast->lo, fast->hi - fast->lo,   \
                               fast->shift, fast->sign_bit, fast->rebias_bits,                   \
                               fast->max_code_lanes, MODE, stream_key, first_index, top_bits,    \
                               fast->sr,                                                         \
                               zero_below,                                                       \
                               fast->saturating, fast->zero_sign_bit, fast->subnormals,          \
                               fast->subnormal_scale_1, fast->subnormal_scale_2, FULL);          \
    }
#define DEFINE_FAST_BLOCK(MODE, KIND)                                                            \
    DEFINE_FAST_BLOCK_VARIANT(MODE, KIND, 1, full_block_##MODE##_##KIND, )                       \
    DEFINE_FAST_BLOCK_VARIANT(MODE, KIND, 0, lean_block_##MODE##_##KIND, )
#define DEFINE_FAST_BLOCKS(KIND)                                                                 \
    DEFINE_FAST_BLOCK(FL_ROUND_NEAREST_EVEN, KIND)                                               \
    DEFINE_FAST_BLOCK(FL_ROUND_NEAREST_AWAY, KIND)                                               \
    DEFINE_FAST_BLOCK(FL_ROUND_TOWARD_ZERO, KIND)                                                \
    DEFINE_FAST_BLOCK(FL_ROUND_UP, KIND)                                                         \
    DEFINE_FAST_BLOCK(FL_ROUND_DOWN, KIND)                                                       \
    DEFINE_FAST_BLOCK(FL_ROUND_ODD, KIND)                                                        \
    DEFINE_FAST_BLOCK(FL_ROUND_STOCHASTIC, KIND)                                                 \
    DEFINE_FAST_BLOCK(FAST_STOCHASTIC_BITS, KIND)                                                \
    DEFINE_FAST_BLOCK(FAST_STOCHASTIC_TRUNCATE, KIND)
DEFINE_FAST_BLOCKS(OUT_CODES_1)
DEFINE_FAST_BLOCKS(OUT_CODES_2)
DEFINE_FAST_BLOCKS(OUT_CODES_4)
DEFINE_FAST_BLOCKS(OUT_VALUES_F32)

/* ---- which copy runs ---------------------------------------------------------------------- */

static int simd_level = -1;

/* The best copy the CPU runs (2 AVX-512, 1 AVX2, 0 portable), lowered by FMTLAB_SIMD
 * ("portable", "avx2"; anything else leaves the CPU's best). */
static int detect_simd_level(void)
{
    int level = 0;
#if FL_X86_SIMD
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2"))
        level = 1;
    if (level && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
        level = 2;
#endif
    const char *wanted = getenv("FMTLAB_SIMD");
    if (wanted && strcmp(wanted, "portable") == 0)
        level = 0;
    else if (wanted && strcmp(wanted, "avx2") == 0 && level > 1)
        level = 1;
    return level;
}

#if defined(__GNUC__) || defined(__clang__)
/* when the library loads, so that every thread sees the level without a race */
__attribute__((constructor)) static void choose_simd_level(void) { simd_level = detect_simd_level(); }
#endif

int fl_codec_simd_level(void)
{
    if (simd_level < 0) /* compilers without constructors: the first call (same value every time) */
        simd_level = detect_simd_level();
    return simd_level;
}

/* The pair of C kernels for one (mode, output kind). */
#define SELECT_KERNELS(MODE, KIND)                                                               \
    fast->lean = lean_block_##MODE##_##KIND;                                                     \
    fast->full = full_block_##MODE##_##KIND;
#define SELECT_MODE_KERNELS(KIND)                                                                \
    switch (rounding->mode) {                                                                    \
    case FL_ROUND_NEAREST_EVEN: SELECT_KERNELS(FL_ROUND_NEAREST_EVEN, KIND) break;               \
    case FL_ROUND_NEAREST_AWAY: SELECT_KERNELS(FL_ROUND_NEAREST_AWAY, KIND) break;               \
    case FL_ROUND_TOWARD_ZERO: SELECT_KERNELS(FL_ROUND_TOWARD_ZERO, KIND) break;                 \
    case FL_ROUND_UP: SELECT_KERNELS(FL_ROUND_UP, KIND) break;                                   \
    case FL_ROUND_DOWN: SELECT_KERNELS(FL_ROUND_DOWN, KIND) break;                               \
    case FL_ROUND_ODD: SELECT_KERNELS(FL_ROUND_ODD, KIND) break;                                 \
    default:                                                                                     \
        if (rounding->sr_bits > 0 && rounding->sr_rule == FL_SR_TRUNCATE &&                      \
            rounding->sr_bits <= fast->shift) {                                                  \
            SELECT_KERNELS(FAST_STOCHASTIC_TRUNCATE, KIND)                                       \
        } else if (rounding->sr_bits > 0) {                                                      \
            SELECT_KERNELS(FAST_STOCHASTIC_BITS, KIND)                                           \
        } else {                                                                                 \
            SELECT_KERNELS(FL_ROUND_STOCHASTIC, KIND)                                            \
        }                                                                                        \
        break;                                                                                   \
    }

int fl_prepare_fast_f32(const prepared_format *p, const fl_rounding *rounding, int out_kind,
                        prepared_fast_f32 *fast)
{
    /* The range reasoning is done here once, in 64 bits, from the format's limits: the
     * kernels may only see inputs for which their 32-bit lanes are exact. */
    const int m = p->man_bits;
    memset(fast, 0, sizeof *fast);
    /* the format's normal binades must overlap float32's, with fewer fraction bits */
    if (m > 22 || p->emin > 127)
        return 0;
    fast->shift = 23 - m;
    const int64_t mask = ((int64_t)1 << fast->shift) - 1;
    /* bias is bounded by fl_prepare_format (|bias| < 2^12), so this is exact in 64 bits */
    fast->rebias = (int64_t)(127 - (int64_t)p->bias) * ((int64_t)1 << m);
    const int low_exponent = p->emin > -126 ? p->emin : -126;
    fast->lo = (uint32_t)(low_exponent + 127) << 23;
    /* The largest code a lane computes from bits b is ((b + mask) >> shift) - rebias (the
     * increment of every mode is at most mask, and odd and stochastic add 1 only to a
     * nonzero remainder), increasing in b.  The fast range stops where that would pass
     * INT32_MAX: code(lo) = (max(emin, -126) + bias) << m >= 0 is the smallest, so every
     * code of the range, and then rebias, fits an int32. */
    const int64_t limit = (int64_t)INT32_MAX + fast->rebias + 1; /* (b + mask) >> shift < limit */
    if (limit <= 0)
        return 0;
    const int64_t bound = (limit << fast->shift) - 1 - mask;
    const int64_t hi = bound < 0x7F7FFFFF ? bound : 0x7F7FFFFF;
    if (hi < (int64_t)fast->lo)
        return 0;
    fast->hi = (uint32_t)hi;
    fast->rebias_bits = (uint32_t)(int32_t)fast->rebias; /* two's complement, for unsigned lanes */
    /* Codes above INT32_MAX cannot come from the range: the lanes compare with the smaller of
     * the two, which then never saturates (correctly: no lane reaches max_code). */
    fast->max_code_lanes = p->max_code < INT32_MAX ? (int32_t)p->max_code : INT32_MAX;
    /* the float32 bits of max where it is a float32 normal in the range (for the outlier count
     * and for float32 outputs of saturated lanes) */
    const int64_t max_bits = (p->max_code + fast->rebias) * ((int64_t)1 << fast->shift);
    int saturated_value_exact = 1;
    if (max_bits >= hi) {
        fast->no_overflow_hi = fast->hi;
    } else if (max_bits >= (int64_t)fast->lo) {
        fast->no_overflow_hi = (uint32_t)max_bits;
    } else {
        /* every input of the range overflows (max < lo): the full kernel for every block, and
         * float32 outputs take saturated lanes to encode_one (max may be no float32 normal) */
        fast->always_full = 1;
        fast->no_overflow_hi = fast->lo;
        saturated_value_exact = 0;
    }
    fast->sign_bit = p->sign_bit;
    fast->zero_sign_bit = p->has_negative_zero ? p->sign_bit : 0u;
    /* |x| * 2^(m - emin) is exact in float32 for every float32 below 2^emin only when the
     * scale is at least 1 (a smaller one pushes the smallest inputs below 2^-149) */
    if (p->subnormals == FL_SUBNORMALS_IEEE && p->emin >= -126 && p->emin <= m && m >= 1) {
        int scale_exponent = m - p->emin;
        int first = scale_exponent > 100 ? 100 : scale_exponent;
        fast->subnormals = 1;
        fast->subnormal_scale_1 = ldexpf(1.0f, first);
        fast->subnormal_scale_2 = ldexpf(1.0f, scale_exponent - first);
        fast->subnormal_magic = ldexpf(1.0f, 23 - scale_exponent); /* 2^-125 .. 2^23: normal */
        /* nearest-even in float32 on the binade's magic 2^(e + shift) (codec_avx512.c), for
         * inputs up to magic_hi: there the magic's exponent bits, those of max(|x|, 2^emin)
         * plus shift, stay below Inf's (e + shift <= 127), and the codes within int32 (hi) */
        const uint32_t finite_magic_hi = ((uint32_t)(255 - fast->shift) << 23) - 1u;
        fast->binade_magic = 1;
        /* exact stochastic rounding's nu 2^32 = rem 2^55 / magic: 2^55 / magic a float32 normal,
         * that is magic's biased exponent (of 2^emin's plus shift at least) >= 55 */
        fast->sr_magic = (int)(fast->lo >> 23) + fast->shift >= 55;
        fast->magic_hi = fast->hi < finite_magic_hi ? fast->hi : finite_magic_hi;
    }
    /* Below half the smallest positive value every nearest mode gives zero, and below the
     * smallest positive value toward_zero does (strictly below: a tie at half goes to zero
     * only under nearest_even, so the nearest threshold is exclusive of it).  Formats that
     * flush (subnormals = none) keep the exact path, whose flush is exact; formats without
     * zero (subnormals = normal) have no such inputs. */
    if (p->subnormals != FL_SUBNORMALS_NONE && p->has_zero) {
        int smallest_exponent = p->subnormals == FL_SUBNORMALS_TESLA ? -p->bias - m : p->emin - m;
        if (m == 0)
            smallest_exponent = p->emin;
        if (smallest_exponent - 1 >= -149 && smallest_exponent <= 127) {
            float half_smallest = ldexpf(1.0f, smallest_exponent - 1), smallest = ldexpf(1.0f, smallest_exponent);
            memcpy(&fast->zero_below_nearest, &half_smallest, sizeof half_smallest);
            memcpy(&fast->zero_below_toward_zero, &smallest, sizeof smallest);
        }
    }
    /* every overflow of an in-range input gives +-max: saturate=True, P3109's SatFinite and
     * SatPropagate, SatNone in a format without Inf, and the finite formats' own rule;
     * otherwise overflows are flagged for encode_one, which knows the direction rules */
    const int saturation = rounding->saturate;
    fast->saturating = saturation == FL_SATURATE_ON || saturation == FL_SATURATE_SAT_FINITE ||
                       saturation == FL_SATURATE_SAT_PROPAGATE || (saturation == FL_SATURATE_SAT_NONE && !p->has_inf) ||
                       (saturation == FL_SATURATE_OFF && p->specials == FL_SPECIALS_FINITE);
    if (out_kind == OUT_VALUES_F32 && !saturated_value_exact)
        fast->saturating = 0;
    fast->seed = rounding->seed;
    fast->sr_bits = rounding->sr_bits;
    if (rounding->sr_bits > 0) {
        const int n = rounding->sr_bits, shift = fast->shift; /* 1 <= shift <= 23, n <= 32 */
        fast->sr.up = shift <= n ? n - shift : 0;
        fast->sr.down = shift <= n ? 0 : shift - n;
        fast->sr.half_shift = shift <= n ? 0 : shift - n - 1;
        fast->sr.half_mask = shift <= n ? 0u : 1u;
        fast->sr.sticky_mask = shift <= n + 1 ? 0u : (1u << (shift - n - 1)) - 1u;
        fast->sr.full_mask = (uint32_t)(((uint64_t)1 << n) - 1);
        fast->sr.rule = sr_rule_bits_of(rounding->sr_rule);
        fast->sr.truncate_low = shift <= n ? 0u : (1u << (shift - n)) - 1u;
        fast->sr.truncate_high = ((1u << shift) - 1u) & ~fast->sr.truncate_low;
        fast->sr.twice_scale = ldexpf(1.0f, n + 1);
    }
    /* The lean kernel plus encode_one for up to 16 leftovers beat the full kernel (about 1.3x on
     * e4m3fn's standard-normal data, 6 subnormal results per block; 4 was 0.75x of 16 on the
     * portable copy and the former autovectorised AVX2 one), for every mode; more leftovers than
     * that take the full one.  (Gathering up to 16 leftovers into one short block for the full
     * kernel instead of encode_one was tried: about 0.85x on the same data.) */
    fast->lean_limit = 16;
    const int level = fl_codec_simd_level();
    switch (out_kind) {
    case OUT_CODES_1: SELECT_MODE_KERNELS(OUT_CODES_1) break;
    case OUT_CODES_2: SELECT_MODE_KERNELS(OUT_CODES_2) break;
    case OUT_CODES_4: SELECT_MODE_KERNELS(OUT_CODES_4) break;
    default: SELECT_MODE_KERNELS(OUT_VALUES_F32) break;
    }
    if (level >= 1) {
        /* an intrinsics kernel does every block the full C kernel does, about as fast as the
         * lean one, so it serves as both (codec_avx512.c, codec_avx2.c) */
        fast_block_kernel kernel =
            level == 2 ? fl_avx512_block_kernel(rounding->mode, rounding->sr_bits, rounding->sr_rule, fast->shift, out_kind, 0)
                       : fl_avx2_block_kernel(rounding->mode, rounding->sr_bits, rounding->sr_rule, fast->shift, out_kind);
        if (kernel)
            fast->lean = fast->full = kernel;
        /* AVX-512 nearest-even: the binade-magic kernel too, for blocks with many subnormal
         * or zero results (fl_fast_f32_block) */
        if (kernel && level == 2 && fast->binade_magic &&
            (rounding->mode == FL_ROUND_NEAREST_EVEN ||
             (rounding->mode == FL_ROUND_STOCHASTIC && fast->sr_magic &&
              (rounding->sr_bits == 0 || (rounding->sr_rule == FL_SR_TRUNCATE && rounding->sr_bits <= fast->shift)))))
            fast->magic = fl_avx512_block_kernel(rounding->mode, rounding->sr_bits, rounding->sr_rule, fast->shift,
                                                 out_kind, 1);
    }
    return 1;
}

/* A block whose lean run leaves more than fast->lean_limit elements to encode_one is redone by
 * the full kernel (while it is still in the L1 cache); the next FULL_RUN blocks then take the
 * full kernel directly, since neighbouring blocks tend to be alike (saturating sweeps, e4m3fn's
 * subnormal range), before the lean kernel is tried again. */
#define FULL_RUN 8
/* subnormal or zero results in a block after which the binade-magic kernel runs (break-even:
 * about 3 steps with such a result per 512-block, measured as said below) */
#define MAGIC_SWITCH 3

fast_block_result fl_fast_f32_block(const prepared_fast_f32 *fast, const uint32_t *bits, int count,
                                    void *out, uint8_t *is_slow, uint64_t first_index, int *full_hint)
{
    /* One pass per block: the lean kernel, which flags what it cannot do, unless the previous
     * blocks needed the full one; both kernels keep the contract (codec_fast.h), so which one
     * runs changes the speed only, never a result. */
    if (fast->magic && !fast->always_full) {
        /* AVX-512 nearest-even: the binade-magic kernel (codec_avx512.c) handles subnormal
         * results in its common step but runs about 0.7x the other on all-normal blocks, whose
         * mispredicted branch costs about 17 ns for each step with a subnormal result (e4m3fn
         * of 2^20 standard-normal values, one thread): so it runs after a block with at least
         * MAGIC_SWITCH subnormal or zero results (speed only, never a result) */
        const fast_block_kernel kernel = *full_hint > 0 ? fast->magic : fast->full;
        const fast_block_result result = kernel(bits, count, out, is_slow, fast, first_index);
        *full_hint = result.denormal + result.underflow >= MAGIC_SWITCH;
        return result;
    }
    if (fast->always_full || fast->lean == fast->full) /* (one kernel for both: AVX-512) */
        return fast->full(bits, count, out, is_slow, fast, first_index);
#if defined(__GNUC__) || defined(__clang__)
    /* the block 4 KiB ahead, one cache line at a time: the C kernels' loop alone keeps too few
     * loads in flight to stream from memory at full speed */
    for (int line = 0; line < count; line += 16)
        __builtin_prefetch(bits + line + 1024);
#endif
    if (*full_hint > 0) {
        --*full_hint;
        return fast->full(bits, count, out, is_slow, fast, first_index);
    }
    const fast_block_result lean = fast->lean(bits, count, out, is_slow, fast, first_index);
    if (lean.slow <= fast->lean_limit)
        return lean;
    *full_hint = FULL_RUN;
    return fast->full(bits, count, out, is_slow, fast, first_index);
}
