/*
 * scaled.c - block-scaled formats (OCP MX, NVFP4, block and per-tensor FP8): the hot loop.
 *
 * fmtlab/scaled.py states the rules and keeps a numpy implementation of them (numpy around
 * the element codec); this file computes the same bits in C, and tests/test_scaled_c.py holds
 * the two to each other bit for bit.  The work is cut into items -- a block row (a row of 1-D
 * blocks, or the r rows of a row of r x c tiles), or a range of its column blocks -- and for
 * each item:
 *
 *   1. amax: the largest magnitude of each block, as the integer maximum of the float bits
 *      with the sign cleared (accumulated row by row for tiles).  Float bits order like
 *      magnitudes and NaN bits lie above Inf's, so the same maximum says whether the block
 *      holds a NaN or an Inf;
 *   2. the block's scale code and value S from amax by the rule (exponents read off the bits
 *      of amax, never a floating log2), clamped and counted as fmtlab.scaled._compute_scales
 *      does; for rule amax the quotients amax / divisor go through the element kernel of the
 *      scale format;
 *   3. each element: the quotient q = x / S (for a power-of-two S, x * (1/S), exact; otherwise
 *      one float64 division, which every deterministic mode rounds like the exact quotient:
 *      fmtlab._scale_rules.quotient_proxy proves it), rounded to the element, saturating.
 *
 * Step 3 runs on chunks of CHUNK elements through one of these branch-free, vectorised kernels,
 * which round on the grid of q's binade in integer arithmetic as round.h's encode_one does:
 *   - float32 input and scales 2^e (|e| <= 127): the float32 kernel on x's own bits, with e
 *     taken off the exponent field (the MX presets), exact stochastic rounding included;
 *   - otherwise, for elements of at most 21 fraction bits: q rounded to float32 to odd
 *     (Boldo and Melquiond's rounding to odd keeps every deterministic mode's result), then the
 *     same float32 kernel (NVFP4, block FP8, float64 input).  For a scale S of at most 29
 *     significant bits that rounding to odd needs no division: x * RN64(1/S) and one exact
 *     correction (ROUND_TO_ODD_F32_RECIPROCAL proves it), fused with the kernel for float32 x;
 *   - exact stochastic rounding of float32 x with such scales: one fused pass of 64-bit lanes on
 *     the float64 quotient (stochastic_divide_body);
 *   - wider elements: the float64 kernel on q.
 * Each kernel flags what it does not do (NaN, Inf, quotients outside its float's normal range,
 * negative inputs to unsigned formats, Tesla or flushed subnormals ...) and exact_element
 * redoes those: encode_one itself on the quotient scaled.py defines.  Stochastic rounding
 * computes each element's (N, remainder, shift) as encode_one does and decides as round.h's
 * stochastic_away, keyed by the element's global C-order index.  Every result is a function
 * of its element, its block and the seed, so results never depend on threads or chunking.
 *
 * SIMD: this file is compiled three times (portable here, scaled_avx2.c, scaled_avx512.c) and the
 * public functions run the copy of fl_codec_simd_level() (FMTLAB_SIMD); the AVX-512 copy does the
 * float32 paths above in the intrinsics lanes of scaled_lanes_avx512.h (see the comment below
 * FL_SCALED_X86).
 *
 * Threads: items are shared statically over the threads, each done by one thread from start
 * to end.  With fewer items than threads (one tensor-wide block, a few large tiles) each block
 * row is done by all threads together: partial maxima per thread, combined, then the elements
 * split.  The kernels run in IEEE 754's default floating-point environment, entered by each
 * thread (fl_enter_default_floating_point) as codec.c does.
 */
#include "round.h"

#include <float.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* Elements per kernel call: the kernel's buffers live on the stack. */
#define CHUNK 256
/* Below this many elements a parallel region costs more than it saves (as codec.c). */
#define PARALLEL_THRESHOLD 32768
/* Columns per piece when a block row is shared by every thread. */
#define PIECE_COLUMNS 4096
/* Items per thread wanted before a block row is cut into ranges of column blocks ... */
#define ITEMS_PER_THREAD 8
/* ... and the most elements an item has when it can be cut (a quarter of a typical L2). */
#define ITEM_ELEMENTS 65536
/* The widest power-of-two range a scale format may have (float64's is 2098). */
#define MAX_POWER_RANGE 4096

#if defined(__GNUC__)
#define FL_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define FL_ALWAYS_INLINE inline
#endif

/* SIMD copies (FMTLAB_SIMD, fl_codec_simd_level): on x86-64 with GCC this whole file is also
 * compiled for AVX2 (scaled_avx2.c) and for AVX-512 (scaled_avx512.c, which adds the intrinsics
 * lanes of scaled_lanes_avx512.h), each copy defining FL_SCALED_COPY (1, 2) and one entry point,
 * fl_scaled_run_avx2 / fl_scaled_run_avx512; this portable copy's public functions call the copy
 * of the level the library chose, as the codec and the matmul do.  Every float operation is a
 * single IEEE operation in every copy (C99 mode: no contraction into fused multiply-adds, no
 * -ffast-math), so all copies give the same bits (tests/test_scaled_simd.py). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define FL_SCALED_X86 1
#else
#define FL_SCALED_X86 0
#endif
#ifndef FL_SCALED_COPY
#define FL_SCALED_COPY 0
#endif
#define FLOAT64_MAGNITUDE 0x7FFFFFFFFFFFFFFFLL
#define FLOAT64_INF_BITS 0x7FF0000000000000LL
#define FLOAT64_MIN_NORMAL_BITS 0x0010000000000000LL /* 2^-1022 */
#define TWO_52_BITS 0x4330000000000000LL             /* 2^52 */

static inline double double_of_bits(int64_t bits)
{
    double value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

static inline int64_t bits_of_double(double value)
{
    int64_t bits;
    memcpy(&bits, &value, sizeof bits);
    return bits;
}

/* ---- the element kernels' constants ------------------------------------------------------ */

/* The element format on the fast path, from its prepared_format.  A quotient q with
 * 2^emin <= |q| < Inf has the code (bits(|q|) >> shift) - rebias before rounding (the float
 * (exponent, mantissa) code shifted right by 52 - m, or 23 - m for float32, and rebiased),
 * and a quotient below 2^emin the subnormal code |q| 2^(m - emin) rounded to an integer. */
typedef struct element_constants {
    /* the float64 kernel */
    int64_t shift;             /* 52 - m */
    int64_t rebias;            /* (1023 - bias) * 2^m */
    int64_t mask;              /* 2^shift - 1: the discarded bits */
    int64_t half;              /* 2^(shift - 1) */
    int64_t normal_lo;         /* float64 bits of 2^emin */
    int64_t max_code;
    int64_t positive_max_code; /* the largest magnitude code by sign (max_code but for integers) */
    int64_t negative_max_code;
    int64_t min_normal_code;   /* 2^m */
    int64_t sign_bit;          /* 0 for unsigned formats */
    int64_t zero_sign_bit;     /* the sign bit where the format has -0, else 0 */
    int64_t is_signed;
    int64_t has_negative_zero;
    int64_t subnormals;        /* 1: IEEE subnormal results on the fast path */
    double subnormal_factor;   /* 2^(m - emin) */
    int64_t subnormal_exponent;       /* emin - m: a code of exponent field 0 is M * 2^this */
    int64_t normal_exponent_offset;   /* -bias - m: field E > 0 is (2^m + M) * 2^(E + this) */
    /* the float32 kernel (on float32 x with scales 2^e, or on round_to_odd_f32 quotients) */
    int has_f32;
    int32_t shift32, rebias32, max_code32, positive_max_code32, negative_max_code32;
    uint32_t normal_lo32;      /* float32 bits of 2^emin */
    int32_t subnormals32;
} element_constants;

/* Whether the float64 kernel applies to the format at all, and the constants of both. */
static int prepare_element_constants(const prepared_format *p, element_constants *k)
{
    const int m = p->man_bits;
    memset(k, 0, sizeof *k);
    /* a format without zero has no fast zero results; wider mantissas do not fit the shifts */
    if (!p->has_zero || m > 30 || p->emin - m < -1022 || p->emin > 1023)
        return 0;
    k->shift = 52 - m;
    k->rebias = (int64_t)(1023 - p->bias) * ((int64_t)1 << m);
    k->mask = ((int64_t)1 << k->shift) - 1;
    k->half = (int64_t)1 << (k->shift - 1);
    k->normal_lo = (int64_t)(p->emin + 1023) << 52;
    k->max_code = p->max_code;
    k->positive_max_code = p->max_code;
    k->negative_max_code = p->max_code;
    k->min_normal_code = (int64_t)1 << m;
    k->sign_bit = p->sign_bit;
    k->zero_sign_bit = p->has_negative_zero ? p->sign_bit : 0;
    k->is_signed = p->is_signed;
    k->has_negative_zero = p->has_negative_zero;
    k->subnormal_exponent = p->emin - m;
    k->normal_exponent_offset = -p->bias - m;
    /* |q| * 2^(m - emin) must be exact for |q| >= 2^-1022: a factor of at least 1 */
    k->subnormals = p->subnormals == FL_SUBNORMALS_IEEE && m - p->emin >= 0 && m - p->emin <= 1000;
    if (k->subnormals)
        k->subnormal_factor = ldexp(1.0, m - p->emin);
    /* the float32 kernel: every element value exact in float32, element codes below 2^31, the
     * values of code 1 normal float32s, and two bits to spare below the element's last one
     * (m <= 21: round_to_odd_f32 feeds it float64 quotients rounded to float32 to odd) */
    const int max_exponent = (int)((p->max_code >> m) - p->bias);
    k->has_f32 = m <= 21 && p->emin >= -126 && max_exponent <= 127 && p->max_code < 0x7FFFFFFF &&
                 p->emin - m >= -126;
    if (k->has_f32) {
        k->shift32 = 23 - m;
        k->rebias32 = (127 - p->bias) * (1 << m);
        k->max_code32 = (int32_t)p->max_code;
        k->positive_max_code32 = (int32_t)p->max_code;
        k->negative_max_code32 = (int32_t)p->max_code;
        k->normal_lo32 = (uint32_t)(p->emin + 127) << 23;
        k->subnormals32 = (int32_t)k->subnormals;
    }
    return 1;
}

/* ---- the element kernels -------------------------------------------------------------------- */

/*
 * Both kernels flag in slow[] every element they cannot do, leaving it to exact_element, and
 * return the counts of the others.  They round on the grid of q's binade as encode_one does,
 * |q| = (N + nu) 2^k, in integer arithmetic on the float bits (a: q's magnitude bits):
 *   normal:    2^emin <= |q| < Inf: N = (a >> shift) - rebias is already the element code of
 *              the lower neighbour (the float (exponent, mantissa) code shifted right by
 *              shift = 52 - m, or 23 - m for float32, and rebiased);
 *   subnormal: |q| < 2^emin with IEEE subnormals, q a normal float: the grid is 2^(emin - m);
 *              float32: N = significand >> (shift + emin - exponent), the shift capped at 31
 *              (every bit is then discarded, as it should); float64 (no vectorised 64-bit shift
 *              by a variable count): N and the fraction from y = |q| 2^(m - emin), exact;
 *   zero:      q = +-0.
 * With v the shifted quantity and s the shift, the mode's increment added before the shift
 * rounds: nearest-even 2^(s-1) - 1 + (N & 1), nearest-away 2^(s-1), up/down 2^s - 1 by sign;
 * odd sets the last bit when anything was discarded.  Overflow saturates to +-max, counted
 * (scaled elements always saturate).  Each kernel keeps all its lanes one width (64 or 32
 * bits) and its floating-point operations unconditional, so that GCC vectorises it.
 */

typedef struct element_counts {
    int64_t inexact, overflow, underflow, denormal, slow;
} element_counts;

/*
 * The value of an element's magnitude code with its sign, for the float64 and stochastic kernels:
 * an integer significand times a power of two, both selected as integers (exponent field E = 0:
 * M * 2^(emin - m); else (2^m + M) * 2^(E - bias - m)), then exact arithmetic: a significand
 * below 2^31 is (2^52 + significand) - 2^52.  A zero keeps its sign only where the format has -0.
 */
static FL_ALWAYS_INLINE double element_value_f64(const int64_t magnitude_code, const int64_t negative,
                                                 const int64_t m_bits, const int64_t min_normal_code,
                                                 const int64_t subnormal_exponent,
                                                 const int64_t normal_exponent_offset, const int64_t has_negative_zero)
{
    const int64_t field = magnitude_code >> m_bits, mantissa = magnitude_code & (min_normal_code - 1);
    const int64_t significand = field == 0 ? mantissa : min_normal_code + mantissa;
    const int64_t exponent = field == 0 ? subnormal_exponent : field + normal_exponent_offset;
    const double magnitude_value = (double_of_bits(significand + TWO_52_BITS) - 0x1p52) *
                                   double_of_bits((exponent + 1023) << 52);
    const int64_t negative_value = negative & ((magnitude_code != 0) | has_negative_zero);
    return double_of_bits(bits_of_double(magnitude_value) | (int64_t)((uint64_t)negative_value << 63));
}

/*
 * The float64 kernel, on quotients q[t] (the caller has put NaN where q needs exact_element:
 * a zero quotient of a nonzero x, or a subnormal x divided); values[t] = decoded value *
 * scale[t] (the block's S, NaN in a NaN block) with want_values.
 */
static FL_ALWAYS_INLINE void element_chunk_f64(const int count, const double *restrict quotients,
                                               const double *restrict scale, const int mode, const int want_values,
                                               const int want_counts, const element_constants *restrict k,
                                               int64_t *restrict codes,
                                               double *restrict values, int64_t *restrict slow,
                                               element_counts *restrict counts)
{
    const int64_t shift = k->shift, rebias = k->rebias, mask = k->mask, half = k->half;
    const int64_t normal_lo = k->normal_lo;
    const int64_t max_code = k->max_code, min_normal_code = k->min_normal_code;
    const int64_t positive_max_code = k->positive_max_code, negative_max_code = k->negative_max_code;
    const double subnormal_factor = k->subnormal_factor;
    const int64_t sign_bit = k->sign_bit, zero_sign_bit = k->zero_sign_bit, is_signed = k->is_signed;
    const int64_t has_negative_zero = k->has_negative_zero, subnormals = k->subnormals;
    const int64_t m_bits = 52 - shift, subnormal_exponent = k->subnormal_exponent;
    const int64_t normal_exponent_offset = k->normal_exponent_offset;
    int64_t inexact = 0, overflow = 0, underflow = 0, denormal = 0, slow_count = 0;
    for (int t = 0; t < count; t++) {
        const int64_t q_bits = bits_of_double(quotients[t]);
        const int64_t a = q_bits & FLOAT64_MAGNITUDE;
        const int64_t negative = (int64_t)((uint64_t)q_bits >> 63);
        const int64_t is_zero = a == 0;
        const int64_t is_normal = (a >= normal_lo) & (a < FLOAT64_INF_BITS);
        const int64_t is_subnormal = subnormals & (a < normal_lo) & (a >= FLOAT64_MIN_NORMAL_BITS);

        /* normal results: constant shifts */
        const int64_t lo = (a >> shift) - rebias;
        const int64_t remainder = a & mask;
        int64_t increment;
        switch (mode) {
        case FL_ROUND_NEAREST_EVEN: increment = half - 1 + (lo & 1); break;
        case FL_ROUND_NEAREST_AWAY: increment = half; break;
        case FL_ROUND_UP: increment = mask & (negative - 1); break;
        case FL_ROUND_DOWN: increment = mask & (0 - negative); break;
        default: increment = 0; break;
        }
        int64_t normal_code = mode == FL_ROUND_ODD ? (lo | (int64_t)(remainder != 0))
                                                   : ((a + increment) >> shift) - rebias;
        const int64_t saturated = normal_code > max_code;
        normal_code = saturated ? max_code : normal_code;

        /* subnormal results (GCC does not vectorise 64-bit shifts by a variable count, so not
         * as for float32): y = |q| 2^(m - emin) is exact and below 2^m; y + 2^52 rounds it to
         * the nearest integer, ties to even, whose bits minus those of 2^52 are that integer;
         * the floor and the fraction y - floor are exact */
        const double y = double_of_bits(a) * subnormal_factor;
        const double shifted = y + 0x1p52;
        const int64_t nearest_code = bits_of_double(shifted) - TWO_52_BITS;
        const int64_t floor_code = nearest_code - (int64_t)(shifted - 0x1p52 > y);
        const double fraction = y - (double_of_bits(floor_code + TWO_52_BITS) - 0x1p52);
        const int64_t fraction_nonzero = fraction != 0.0;
        int64_t subnormal_code;
        switch (mode) {
        case FL_ROUND_NEAREST_EVEN: subnormal_code = nearest_code; break;
        case FL_ROUND_NEAREST_AWAY: /* fraction >= 1/2, on the bits (fraction >= 0): no trapping compare */
            subnormal_code = floor_code + (int64_t)(bits_of_double(fraction) >= bits_of_double(0.5));
            break;
        case FL_ROUND_UP: subnormal_code = floor_code + (fraction_nonzero & (1 - negative)); break;
        case FL_ROUND_DOWN: subnormal_code = floor_code + (fraction_nonzero & negative); break;
        case FL_ROUND_ODD: subnormal_code = floor_code | fraction_nonzero; break;
        default: subnormal_code = floor_code; break;
        }
        /* a mask select, not ?: -- GCC would move the subnormal arithmetic under a branch */
        int64_t magnitude_code = (normal_code & (0 - is_normal)) | (subnormal_code & (0 - is_subnormal));
        /* the limit by sign: max_code but for integer elements (never passed otherwise) */
        const int64_t limit = negative ? negative_max_code : positive_max_code;
        const int64_t clamped = magnitude_code > limit;
        magnitude_code = clamped ? limit : magnitude_code;

        const int64_t sign_allowed = is_signed | (1 - negative) | is_zero;
        const int64_t fast = (is_zero | is_normal | is_subnormal) & sign_allowed;
        /* the sign: the sign bit on a nonzero code, the zero's sign bit (or none) on a zero */
        const int64_t sign_part = sign_bit & (0 - negative), zero_part = zero_sign_bit & (0 - negative);
        codes[t] = magnitude_code | (zero_part ^ ((sign_part ^ zero_part) & (0 - (int64_t)(magnitude_code != 0))));
        slow[t] = 1 - fast;
        slow_count += 1 - fast;
        if (want_counts) {
            inexact += fast & ((is_normal & ((remainder != 0) | saturated)) | (is_subnormal & fraction_nonzero) |
                               clamped);
            overflow += fast & ((is_normal & saturated) | clamped);
            underflow += fast & is_subnormal & (magnitude_code == 0);
            denormal += fast & is_subnormal & (magnitude_code != 0) & (magnitude_code < min_normal_code);
        }
        if (want_values)
            values[t] = element_value_f64(magnitude_code, negative, m_bits, min_normal_code, subnormal_exponent,
                                          normal_exponent_offset, has_negative_zero) * scale[t];
    }
    counts->inexact += inexact;
    counts->overflow += overflow;
    counts->underflow += underflow;
    counts->denormal += denormal;
    counts->slow += slow_count;
}

/*
 * The float32 kernel: float32 input x and a power-of-two scale 2^e with |e| <= 127, given per
 * element as e * 2^23 (exponent_offset[t]; 0x80000000 in a NaN block, which sends every nonzero
 * element to exact_element).  For x and q = x 2^-e both normal float32s, q's bits are x's minus
 * e * 2^23: the whole kernel is 32-bit integer and float32 arithmetic, eight lanes to an AVX2
 * register.  values[t] = decoded value * scale[t] (2^e, NaN in a NaN block), one float32
 * multiplication: the correctly rounded product, as numpy's float32 path computes it.
 */
/* RO32(x / S) by a multiplication by RN64(1/S) and one exact correction, NaN bits where it is
 * not kept: ROUND_TO_ODD_F32_RECIPROCAL below states and proves it.  tiny_x: x is a float64
 * below 2^-1000. */
static FL_ALWAYS_INLINE uint32_t odd_quotient_by_reciprocal(const double xv, const double reciprocal,
                                                            const double product_scale, const int64_t tiny_x)
{
    const double estimate = xv * reciprocal;
    const float nearest = (float)estimate;
    const double magnitude = fabs((double)nearest);
    const double product = magnitude * product_scale; /* exact: 24 + 29 significant bits at most */
    const double x_magnitude = fabs(xv);
    uint32_t nearest_bits;
    memcpy(&nearest_bits, &nearest, sizeof nearest_bits);
    const int64_t odd = ((int64_t)nearest_bits - (int64_t)(product > x_magnitude)) | (int64_t)(product != x_magnitude);
    const int64_t kept = ((magnitude > 0x1p-126) & (magnitude <= (double)FLT_MAX) & (tiny_x == 0)) | (xv == 0);
    const int64_t kept_mask = 0 - kept; /* a mask: ?: would put the arithmetic under a branch */
    return (uint32_t)((odd & kept_mask) | (0x7FC00000LL & ~kept_mask));
}

/* What the fused float32 kernel reads and writes in place of bits and exponent offsets: float32
 * x, per element RN64(1/S), S for the correction (0 in a NaN block) and S for the value (NaN in
 * a NaN block); values go to out as (float)(element value * S), S in float64, as the unfused
 * path computes them. */
typedef struct reciprocal_input {
    const float *x;
    const double *reciprocal, *product_scale, *scale;
    float *out;
} reciprocal_input;

static FL_ALWAYS_INLINE void element_chunk_f32(const int count, const uint32_t *restrict bits,
                                               const uint32_t *restrict exponent_offset,
                                               const float *restrict scale, const int mode, const int want_values,
                                               const int want_counts, const element_constants *restrict k,
                                               uint32_t *restrict codes,
                                               float *restrict values, uint32_t *restrict slow,
                                               element_counts *restrict counts, const uint64_t stream_key,
                                               const uint64_t first_index, const int from_reciprocal,
                                               const reciprocal_input *restrict input)
{
    /* from_reciprocal (a constant): the quotients are RO32(x / S) computed here, unscaled after */
    const float *restrict reciprocal_x = from_reciprocal ? input->x : NULL;
    const double *restrict reciprocal = from_reciprocal ? input->reciprocal : NULL;
    const double *restrict product_scale = from_reciprocal ? input->product_scale : NULL;
    const double *restrict value_scale = from_reciprocal ? input->scale : NULL;
    float *restrict direct_out = from_reciprocal ? input->out : NULL;
    const int32_t shift = k->shift32, rebias = k->rebias32;
    const int32_t positive_max_code = k->positive_max_code32, negative_max_code = k->negative_max_code32;
    const int32_t min_normal_code = (int32_t)k->min_normal_code;
    const uint32_t normal_lo = k->normal_lo32;
    const int32_t normal_lo_exponent = (int32_t)(k->normal_lo32 >> 23);
    const int32_t sign_bit = (int32_t)k->sign_bit, zero_sign_bit = (int32_t)k->zero_sign_bit;
    const int32_t is_signed = (int32_t)k->is_signed, has_negative_zero = (int32_t)k->has_negative_zero;
    const int32_t subnormals = k->subnormals32;
    const int32_t m_bits = 23 - shift, subnormal_exponent = (int32_t)k->subnormal_exponent;
    const int32_t normal_exponent_offset = (int32_t)k->normal_exponent_offset;
    const uint32_t float_normal_span = 0x7F7FFFFFu - 0x00800000u;
    int32_t inexact = 0, overflow = 0, underflow = 0, denormal = 0, slow_count = 0;
    for (int t = 0; t < count; t++) {
        const uint32_t input_bits = from_reciprocal
                                        ? odd_quotient_by_reciprocal((double)reciprocal_x[t], reciprocal[t],
                                                                     product_scale[t], 0)
                                        : bits[t];
        const uint32_t offset = from_reciprocal ? 0 : exponent_offset[t];
        const uint32_t magnitude = input_bits & 0x7FFFFFFFu;
        const int32_t negative = (int32_t)(input_bits >> 31);
        const uint32_t a = magnitude - offset; /* |q|'s bits when x and q are normal */
        const int32_t x_normal = magnitude - 0x00800000u <= float_normal_span;
        const int32_t q_normal = a - 0x00800000u <= float_normal_span;
        const int32_t is_zero = magnitude == 0;
        const int32_t is_normal = x_normal & q_normal & (a >= normal_lo);
        const int32_t is_subnormal = subnormals & x_normal & q_normal & (a < normal_lo);

        const int32_t subnormal_shift = shift + normal_lo_exponent - (int32_t)(a >> 23);
        /* clamped to 1..31 in every lane: lanes that are neither normal nor subnormal (their
         * result is not used) would otherwise shift by a negative count, undefined in C */
        const int32_t s = is_normal ? shift : (subnormal_shift < 1 ? 1 : subnormal_shift < 31 ? subnormal_shift : 31);
        const uint32_t v = is_normal ? a : (a & 0x007FFFFFu) | 0x00800000u;
        const int32_t base = is_normal ? -rebias : 0;
        const uint32_t mask = (1u << s) - 1, half = 1u << (s - 1);
        const int32_t lo = (int32_t)(v >> s) + base;
        const uint32_t remainder = v & mask;
        uint32_t increment;
        switch (mode) {
        case FL_ROUND_NEAREST_EVEN: increment = half - 1 + (uint32_t)(lo & 1); break;
        case FL_ROUND_NEAREST_AWAY: increment = half; break;
        case FL_ROUND_UP: increment = mask & (uint32_t)(negative - 1); break;
        case FL_ROUND_DOWN: increment = mask & (uint32_t)(0 - negative); break;
        default: increment = 0; break;
        }
        int32_t magnitude_code;
        int32_t stochastic_slow = 0;
        if (mode == FL_ROUND_STOCHASTIC) {
            /* exact stochastic rounding (sr_bits 0) as stochastic_chunk_body decides it on the
             * float64 quotient, whose (remainder, shift) are this lane's times 2^29 and plus 29:
             * its first draw's word U, away iff U < remainder 2^(64 - s).  A subnormal result
             * whose true shift passes 31 (the clamp above changed it) goes to exact_element. */
            const uint64_t word = fl_mix64_inline(stream_key + (first_index + (uint64_t)t) * 0x9E3779B97F4A7C15ULL);
            const uint64_t threshold = (uint64_t)remainder << (64 - s);
            magnitude_code = lo + (int32_t)(word < threshold);
            stochastic_slow = is_subnormal & (subnormal_shift > 31);
        } else {
            magnitude_code = mode == FL_ROUND_ODD ? (lo | (int32_t)(remainder != 0))
                                                  : (int32_t)((v + increment) >> s) + base;
        }
        /* saturate to the largest code of the sign (max_code but for integer elements) */
        const int32_t max_code = negative ? negative_max_code : positive_max_code;
        const int32_t saturated = magnitude_code > max_code;
        magnitude_code = saturated ? max_code : magnitude_code;
        magnitude_code = is_zero ? 0 : magnitude_code;

        const int32_t sign_allowed = is_signed | (1 - negative) | is_zero;
        const int32_t fast = (is_zero | is_normal | is_subnormal) & sign_allowed & (1 - stochastic_slow);
        const int32_t sign_part = sign_bit & (0 - negative), zero_part = zero_sign_bit & (0 - negative);
        const int32_t nonzero_mask = 0 - (int32_t)(magnitude_code != 0);
        codes[t] = (uint32_t)(magnitude_code | (zero_part ^ ((sign_part ^ zero_part) & nonzero_mask)));
        slow[t] = (uint32_t)(1 - fast);
        slow_count += 1 - fast;
        if (want_counts) {
            inexact += fast & ((is_normal | is_subnormal) & ((remainder != 0) | saturated));
            overflow += fast & (is_normal | is_subnormal) & saturated;
            underflow += fast & is_subnormal & (magnitude_code == 0);
            denormal += fast & is_subnormal & (magnitude_code != 0) & (magnitude_code < min_normal_code);
        }
        if (want_values) {
            const int32_t field = magnitude_code >> m_bits, mantissa = magnitude_code & (min_normal_code - 1);
            const int32_t significand = field == 0 ? mantissa : min_normal_code + mantissa;
            const int32_t exponent = field == 0 ? subnormal_exponent : field + normal_exponent_offset;
            const int32_t power_bits = (exponent + 127) << 23;
            float power;
            memcpy(&power, &power_bits, sizeof power);
            const float magnitude_value = (float)significand * power;
            const int32_t negative_value = negative & ((magnitude_code != 0) | has_negative_zero);
            uint32_t value_bits;
            memcpy(&value_bits, &magnitude_value, sizeof value_bits);
            value_bits |= (uint32_t)negative_value << 31;
            float signed_value;
            memcpy(&signed_value, &value_bits, sizeof signed_value);
            if (from_reciprocal)
                direct_out[t] = (float)((double)signed_value * value_scale[t]);
            else
                values[t] = signed_value * scale[t];
        }
    }
    counts->inexact += inexact;
    counts->overflow += overflow;
    counts->underflow += underflow;
    counts->denormal += denormal;
    counts->slow += slow_count;
}

/*
 * The stochastic kernel, on float64 quotients as element_chunk_f64: the same categories, with
 * the rounding decision of round.h's stochastic_away on the (remainder, shift) that encode_one
 * derives for q: shift = 52 - m for a normal result, and for a subnormal one (q = S53 2^(E - 52),
 * E < emin) the grid 2^(emin - m), shift = emin - m - E + 52.  Keyed by each element's global
 * index first_index + t.  The generator is not vectorisable, so this one is a plain loop.
 */
static FL_ALWAYS_INLINE void stochastic_chunk_body(const int count, const double *restrict quotients,
                                     const double *restrict scale,
                                     const int want_values, const element_constants *restrict k,
                                     const prepared_format *p, const fl_rounding *rounding, uint64_t first_index,
                                     int64_t *restrict codes, double *restrict values, int64_t *restrict slow,
                                     element_counts *restrict counts)
{
    const sr_rule_bits rule = sr_rule_bits_of(rounding->sr_rule);
    const int sr_bits = rounding->sr_bits;
    const uint64_t seed = rounding->seed;
    const int64_t subnormal_grid = (int64_t)(p->emin - p->man_bits) + 52; /* shift = this - exponent */
    int64_t lower[CHUNK], shift[CHUNK], category[CHUNK]; /* category: 0 zero or slow, 1 normal, 2 subnormal */
    uint64_t remainder[CHUNK];
    /* 1. the lower neighbour's code N, the discarded remainder and its shift, without branches */
    for (int t = 0; t < count; t++) {
        const int64_t q_bits = bits_of_double(quotients[t]);
        const int64_t a = q_bits & FLOAT64_MAGNITUDE;
        const int64_t negative = (int64_t)((uint64_t)q_bits >> 63);
        const int64_t is_normal = (a >= k->normal_lo) & (a < FLOAT64_INF_BITS);
        const int64_t is_subnormal = k->subnormals & (a < k->normal_lo) & (a >= FLOAT64_MIN_NORMAL_BITS);
        const int64_t sign_allowed = k->is_signed | (1 - negative) | (a == 0);
        const int64_t is_slow = ((a != 0) & ((is_normal | is_subnormal) == 0)) | (1 - sign_allowed);
        const uint64_t significand = (uint64_t)(a & 0x000FFFFFFFFFFFFFLL) | 0x0010000000000000ULL;
        const int64_t wide = subnormal_grid - ((a >> 52) - 1023);      /* the subnormal shift */
        /* >= 64 discards every bit; below 0 only in lanes that are not subnormal (unused there,
         * clamped so that no lane shifts by a negative count) */
        const int64_t sub_shift = wide < 0 ? 0 : wide < 63 ? wide : 63;
        const uint64_t sub_units = wide < 64 ? significand >> sub_shift : 0;
        const uint64_t sub_remainder = wide < 64 ? significand & ((1ULL << sub_shift) - 1) : significand;
        lower[t] = is_normal ? (a >> k->shift) - k->rebias : is_subnormal ? (int64_t)sub_units : 0;
        remainder[t] = is_normal ? (uint64_t)(a & k->mask) : is_subnormal ? sub_remainder : 0;
        shift[t] = is_normal ? k->shift : wide;
        category[t] = is_slow ? 0 : is_normal ? 1 : is_subnormal ? 2 : 0;
        slow[t] = is_slow;
    }
    /* 2. the decisions: round.h's stochastic_away, keyed by each element's global index.  Exact
     * stochastic rounding (sr_bits 0) with shift <= 64 -- every normal result and most subnormal
     * ones -- is its first draw alone, U < nu: the draws' words come from one vectorisable loop
     * (the stream key of draw 0 taken once, as fl_random_word_inline computes it), and only
     * wider shifts call stochastic_away, which draws the same words itself. */
    int64_t away[CHUNK];
    if (sr_bits == 0) {
        uint64_t words[CHUNK];
        const uint64_t key = fl_stream_key_inline(seed, 0);
        for (int t = 0; t < count; t++)
            words[t] = fl_mix64_inline(key + (first_index + (uint64_t)t) * 0x9E3779B97F4A7C15ULL);
        for (int t = 0; t < count; t++) {
            /* lanes without a remainder (zero, slow) may carry any shift: threshold 0 */
            const int64_t bits = shift[t] < 1 ? 64 : shift[t] > 64 ? 0 : 64 - shift[t];
            const uint64_t threshold = bits == 64 ? 0 : remainder[t] << bits;
            away[t] = words[t] < threshold;
        }
        for (int t = 0; t < count; t++)
            if (remainder[t] && shift[t] > 64)
                away[t] = stochastic_away(remainder[t], shift[t], 0, rule, seed, first_index + (uint64_t)t);
    } else {
        for (int t = 0; t < count; t++)
            away[t] = remainder[t] ? stochastic_away(remainder[t], shift[t], sr_bits, rule, seed,
                                                     first_index + (uint64_t)t)
                                   : 0;
    }
    /* 3. codes, counts and values */
    const int64_t min_normal_code = k->min_normal_code, m_bits = 52 - k->shift;
    const int64_t sign_bit = k->sign_bit, zero_sign_bit = k->zero_sign_bit, has_negative_zero = k->has_negative_zero;
    const int64_t subnormal_exponent = k->subnormal_exponent, normal_exponent_offset = k->normal_exponent_offset;
    int64_t inexact = 0, overflow = 0, underflow = 0, denormal = 0, slow_count = 0;
    for (int t = 0; t < count; t++) {
        const int64_t negative = (int64_t)((uint64_t)bits_of_double(quotients[t]) >> 63);
        const int64_t is_normal = category[t] == 1, is_subnormal = category[t] == 2;
        int64_t magnitude_code = lower[t] + away[t];
        /* the largest code of the sign: max_code but for integer elements, whose limit a
         * subnormal result may pass too */
        const int64_t limit = negative ? k->negative_max_code : k->positive_max_code;
        const int64_t saturated = (is_normal | is_subnormal) & (magnitude_code > limit);
        magnitude_code = saturated ? limit : magnitude_code;
        slow_count += slow[t];
        inexact += (is_normal | is_subnormal) & ((remainder[t] != 0) | saturated);
        overflow += saturated;
        underflow += is_subnormal & (magnitude_code == 0);
        denormal += is_subnormal & (magnitude_code != 0) & (magnitude_code < min_normal_code);
        const int64_t sign_part = sign_bit & (0 - negative), zero_part = zero_sign_bit & (0 - negative);
        codes[t] = magnitude_code | (zero_part ^ ((sign_part ^ zero_part) & (0 - (int64_t)(magnitude_code != 0))));
        if (want_values)
            values[t] = element_value_f64(magnitude_code, negative, m_bits, min_normal_code, subnormal_exponent,
                                          normal_exponent_offset, has_negative_zero) * scale[t];
    }
    counts->inexact += inexact;
    counts->overflow += overflow;
    counts->underflow += underflow;
    counts->denormal += denormal;
    counts->slow += slow_count;
}

/*
 * Exact stochastic rounding (sr_bits 0) of float32 x in blocks whose scale S is not a power of
 * two, in one pass: q = RN64(x / S) (one division: the decisions read every bit of the float64
 * quotient scaled.py defines), then stochastic_chunk_body's (N, remainder, shift) and decision
 * in 64-bit lanes without branches or arrays between the steps, the value (element value times S
 * in float64, rounded to float32) written to out[t].  Lanes it does not do are flagged for
 * exact_element, as stochastic_chunk_body flags them, and also subnormal results whose shift
 * reaches 64 (their decision can need further draws): a zero quotient of a nonzero x (and the
 * NaN block's x / Inf), NaN, Inf, quotients below float64's normal range, negative x of unsigned
 * elements.  divisor: S, +Inf in a NaN block; value_scale: S, NaN in a NaN block.
 */
static FL_ALWAYS_INLINE void stochastic_divide_body(const int count, const float *restrict x,
                                                    const double *restrict divisor,
                                                    const double *restrict value_scale, const int want_values,
                                                    const int want_counts, const element_constants *restrict k,
                                                    const int64_t subnormal_grid, const uint64_t key,
                                                    const uint64_t first_index, int64_t *restrict codes,
                                                    float *restrict out, int64_t *restrict slow,
                                                    element_counts *restrict counts)
{
    const int64_t shift = k->shift, rebias = k->rebias, mask = k->mask, normal_lo = k->normal_lo;
    const double subnormal_factor = k->subnormal_factor;
    const int64_t positive_max_code = k->positive_max_code, negative_max_code = k->negative_max_code;
    const int64_t min_normal_code = k->min_normal_code, m_bits = 52 - k->shift;
    const int64_t sign_bit = k->sign_bit, zero_sign_bit = k->zero_sign_bit, is_signed = k->is_signed;
    const int64_t has_negative_zero = k->has_negative_zero, subnormals = k->subnormals;
    const int64_t subnormal_exponent = k->subnormal_exponent, normal_exponent_offset = k->normal_exponent_offset;
    int64_t inexact = 0, overflow = 0, underflow = 0, denormal = 0, slow_count = 0;
    for (int t = 0; t < count; t++) {
        const double xv = (double)x[t];
        const double q = xv / divisor[t];
        const int64_t q_bits = bits_of_double(q);
        const int64_t a = q_bits & FLOAT64_MAGNITUDE;
        const int64_t negative = (int64_t)((uint64_t)q_bits >> 63);
        const int64_t is_zero = a == 0;
        const int64_t lost = is_zero & (xv != 0.0); /* quotient_proxy would not give 0 */
        const int64_t is_normal = (a >= normal_lo) & (a < FLOAT64_INF_BITS);
        const int64_t wide = subnormal_grid - ((a >> 52) - 1023); /* the subnormal shift */
        const int64_t is_subnormal = subnormals & (a < normal_lo) & (a >= FLOAT64_MIN_NORMAL_BITS) & (wide < 64);
        const int64_t sign_allowed = is_signed | (1 - negative) | is_zero;
        const int64_t fast = ((is_zero & (1 - lost)) | is_normal | is_subnormal) & sign_allowed;
        const int64_t rounded = (is_normal | is_subnormal) & fast;
        const int64_t subnormal = is_subnormal & fast;
        /* the decision U < remainder 2^(64 - shift), U the first draw's word.  Normal results:
         * the remainder is a's low bits, the shift constant.  Subnormal ones (GCC does not
         * vectorise 64-bit shifts by a variable count): y = |q| 2^(m - emin) is exact and below
         * 2^m; its floor N and fraction y - N = remainder / 2^shift are exact (as in
         * element_chunk_f64), so remainder 2^(64 - shift) = fraction 2^64, an integer below 2^64
         * (shift < 64), converted exactly; lanes that are not subnormal convert 0. */
        const uint64_t word = fl_mix64_inline(key + (first_index + (uint64_t)t) * 0x9E3779B97F4A7C15ULL);
        const uint64_t normal_remainder = (uint64_t)(a & mask);
        const uint64_t normal_threshold = normal_remainder << (64 - shift);
        const double y = double_of_bits(a) * subnormal_factor;
        const double shifted = y + 0x1p52;
        const int64_t nearest_code = bits_of_double(shifted) - TWO_52_BITS;
        const int64_t floor_code = nearest_code - (int64_t)(shifted - 0x1p52 > y);
        const double fraction = y - (double_of_bits(floor_code + TWO_52_BITS) - 0x1p52);
        const double kept_fraction = double_of_bits(bits_of_double(fraction) & (0 - is_subnormal));
        const uint64_t subnormal_threshold = (uint64_t)(kept_fraction * 0x1p64);
        /* mask selects, not ?: -- GCC would move the subnormal arithmetic under a branch */
        const int64_t normal_mask = 0 - is_normal;
        const uint64_t threshold = (normal_threshold & (uint64_t)normal_mask) | (subnormal_threshold & ~(uint64_t)normal_mask);
        const int64_t lower = (((a >> shift) - rebias) & normal_mask) | (floor_code & ~normal_mask);
        const int64_t inexact_lane = ((int64_t)(normal_remainder != 0) & normal_mask) |
                                     ((int64_t)(fraction != 0.0) & ~normal_mask);
        int64_t magnitude_code = (lower + (int64_t)(word < threshold)) & (0 - rounded);
        const int64_t limit = negative ? negative_max_code : positive_max_code;
        const int64_t saturated = rounded & (magnitude_code > limit);
        magnitude_code = saturated ? limit : magnitude_code;
        const int64_t sign_part = sign_bit & (0 - negative), zero_part = zero_sign_bit & (0 - negative);
        codes[t] = magnitude_code | (zero_part ^ ((sign_part ^ zero_part) & (0 - (int64_t)(magnitude_code != 0))));
        slow[t] = 1 - fast;
        slow_count += 1 - fast;
        if (want_counts) {
            inexact += rounded & (inexact_lane | saturated);
            overflow += saturated;
            underflow += subnormal & (magnitude_code == 0);
            denormal += subnormal & (magnitude_code != 0) & (magnitude_code < min_normal_code);
        }
        if (want_values)
            out[t] = (float)(element_value_f64(magnitude_code, negative, m_bits, min_normal_code, subnormal_exponent,
                                               normal_exponent_offset, has_negative_zero) * value_scale[t]);
    }
    counts->inexact += inexact;
    counts->overflow += overflow;
    counts->underflow += underflow;
    counts->denormal += denormal;
    counts->slow += slow_count;
}

typedef void (*kernel_stochastic_divide)(int count, const float *restrict x, const double *restrict divisor,
                                         const double *restrict value_scale, const element_constants *restrict k,
                                         int64_t subnormal_grid, uint64_t key, uint64_t first_index,
                                         int64_t *restrict codes, float *restrict out, int64_t *restrict slow,
                                         element_counts *restrict counts);
#define DEFINE_STOCHASTIC_DIVIDE(VALUES, COUNTS, SUFFIX)                                         \
    static void stochastic_divide_##SUFFIX(int count, const float *restrict x,  \
        const double *restrict divisor, const double *restrict value_scale, const element_constants *restrict k, \
        int64_t subnormal_grid, uint64_t key, uint64_t first_index, int64_t *restrict codes,     \
        float *restrict out, int64_t *restrict slow, element_counts *restrict counts)            \
    {                                                                                            \
        stochastic_divide_body(count, x, divisor, value_scale, VALUES, COUNTS, k, subnormal_grid, key, first_index, \
                               codes, out, slow, counts);                                        \
    }
DEFINE_STOCHASTIC_DIVIDE(0, 0, codes)
DEFINE_STOCHASTIC_DIVIDE(1, 0, values)
DEFINE_STOCHASTIC_DIVIDE(0, 1, codes_counted)
DEFINE_STOCHASTIC_DIVIDE(1, 1, values_counted)
/* [counts][values] */
static const kernel_stochastic_divide stochastic_divide_kernels[2][2] = {
    {stochastic_divide_codes, stochastic_divide_values},
    {stochastic_divide_codes_counted, stochastic_divide_values_counted}};

/* The stochastic kernel, with and without values (a constant inside). */
static void element_chunk_stochastic(const int count, const double *restrict quotients, const double *restrict scale,
                                     const int want_values, const element_constants *restrict k,
                                     const prepared_format *p, const fl_rounding *rounding, uint64_t first_index,
                                     int64_t *restrict codes, double *restrict values, int64_t *restrict slow,
                                     element_counts *restrict counts)
{
    if (want_values)
        stochastic_chunk_body(count, quotients, scale, 1, k, p, rounding, first_index, codes, values, slow, counts);
    else
        stochastic_chunk_body(count, quotients, scale, 0, k, p, rounding, first_index, codes, values, slow, counts);
}

typedef void (*kernel_f64)(int count, const double *restrict quotients, const double *restrict scale,
                           const element_constants *restrict k, int64_t *restrict codes, double *restrict values,
                           int64_t *restrict slow, element_counts *restrict counts);
typedef void (*kernel_f32)(int count, const uint32_t *restrict bits, const uint32_t *restrict exponent_offset,
                           const float *restrict scale, const element_constants *restrict k,
                           uint32_t *restrict codes, float *restrict values, uint32_t *restrict slow,
                           element_counts *restrict counts, uint64_t stream_key, uint64_t first_index);
typedef void (*kernel_reciprocal)(int count, const reciprocal_input *restrict input,
                                  const element_constants *restrict k, uint32_t *restrict codes,
                                  uint32_t *restrict slow, element_counts *restrict counts);

/*
 * Quotients for the float32 kernel: q = x * operand (1/S) or x / operand (S) in float64 (as
 * element_chunk_f64 takes them), then rounded to float32 to odd: truncated, with the last bit
 * set when anything was discarded.  For an element of m <= 21 fraction bits, every
 * deterministic mode rounds RO32(q) as it rounds q (Boldo and Melquiond, "Emulation of FMA and
 * correctly rounded sums: proved algorithms using rounding to odd", IEEE TC 2008: rounding to
 * odd with two extra bits, then to nearest, is rounding to nearest; the directed modes and odd
 * see the same interval between float32s and the same exactness; element subnormals lie on a
 * coarser grid still).  Where RO32(q) would not be a normal float32 or zero, or q is zero for
 * a nonzero x, or (dividing) x is a subnormal float64, the result is a NaN: exact_element.
 */
#define ROUND_TO_ODD_F32(NAME, INPUT_TYPE, QUOTIENT, SUBNORMAL_X)                                \
    static void NAME(int count, const INPUT_TYPE *restrict x, const double *restrict operand, \
                                      uint32_t *restrict out)                                    \
    {                                                                                            \
        for (int t = 0; t < count; t++) {                                                        \
            const double xv = (double)x[t];                                                      \
            const double q = (QUOTIENT);                                                         \
            /* RN32(q), one float32 ulp back toward zero if that rounded away (the truncation), \
             * then the last bit set if inexact: for 2^-126 <= |q| < 2^128 this stays normal  \
             * (and q near 2^128, which RN32 takes to Inf, gives max with its odd last bit).   \
             * Out of that range (q = 0 included) only x = +-0, whose q is +-0, is kept.      \
             * 64-bit lanes throughout, narrowed once at the store. */                         \
            const float nearest = (float)q;                                                      \
            const double back = (double)nearest;                                                 \
            const double magnitude = fabs(q);                                                    \
            uint32_t nearest_bits;                                                               \
            memcpy(&nearest_bits, &nearest, sizeof nearest_bits);                                \
            const int64_t odd = ((int64_t)nearest_bits - (int64_t)(fabs(back) > magnitude)) |    \
                                (int64_t)(back != q);                                            \
            const int64_t kept = ((magnitude >= 0x1p-126) & (magnitude < 0x1p128) & ((SUBNORMAL_X) == 0)) | \
                                 (x[t] == 0);                                                    \
            const int64_t kept_mask = 0 - kept; /* a mask: ?: would put the arithmetic under a branch */ \
            out[t] = (uint32_t)((odd & kept_mask) | (0x7FC00000LL & ~kept_mask));                \
        }                                                                                        \
    }
ROUND_TO_ODD_F32(odd_quotients_f32_multiply, float, xv * operand[t], 0)
ROUND_TO_ODD_F32(odd_quotients_f32_divide, float, xv / operand[t], 0)
ROUND_TO_ODD_F32(odd_quotients_f64_multiply, double, xv * operand[t], 0)
ROUND_TO_ODD_F32(odd_quotients_f64_divide, double, xv / operand[t], fabs(xv) < 0x1p-1022)

/*
 * RO32(x / S) without a division, for a block scale S > 0 whose significand has at most 29 bits
 * (`short_scale`: E4M3 scale values times an FP32 tensor scale, FP32 and BF16 scales ...):
 * q' = RN64(x RN64(1/S)) lies within 2^-51 |q| of the exact quotient q = x / S (two roundings of
 * relative error 2^-53 each), so f = RN32(q') is within half a float32 ulp of q' and q lies
 * strictly between f's float32 neighbours (also where f is a power of two, whose lower ulp is
 * half the upper one).  Then trunc32(q) is f or the float32 below it, and which one, and
 * whether q is exact, is the sign of |x| - |f| S: an exact product (24 + 29 <= 53 bits, in
 * float64's normal range), so that one comparison corrects the estimate -- no error bound is
 * trusted for the result itself:
 *     |f| S > |x|:  q lies below f:    RO32(q) = the float32 below f with its last bit set;
 *     |f| S = |x|:  q = f exactly:     RO32(q) = f;
 *     |f| S < |x|:  q lies above f:    RO32(q) = f with its last bit set.
 * This is RO32 of the exact quotient, which rounds in every deterministic mode as RO32 of the
 * float64 quotient that odd_quotients_*_divide computes (both round as the exact quotient:
 * fmtlab._scale_rules.quotient_proxy).  Kept only where |f| > 2^-126 (so that its lower
 * neighbour is normal) and |f| <= FLT_MAX, and x = 0 (for a float64 x also |x| >= 2^-1000, so
 * that |f| S stays normal); the rest is NaN: exact_element.  In a NaN block reciprocal and
 * product_scale are 0: q' = x * 0, which keeps x = +-0 only, as x / Inf does.
 */
#define ROUND_TO_ODD_F32_RECIPROCAL(NAME, INPUT_TYPE, TINY_X)                                     \
    static void NAME(int count, const INPUT_TYPE *restrict x, const double *restrict reciprocal, \
                                      const double *restrict product_scale, uint32_t *restrict out) \
    {                                                                                            \
        for (int t = 0; t < count; t++) {                                                        \
            const double xv = (double)x[t];                                                      \
            out[t] = odd_quotient_by_reciprocal(xv, reciprocal[t], product_scale[t], (int64_t)(TINY_X)); \
        }                                                                                        \
    }
ROUND_TO_ODD_F32_RECIPROCAL(odd_quotients_f64_reciprocal, double, fabs(xv) < 0x1p-1000)

/* The float64 kernel's quotients: q, or NaN where it is zero for a nonzero x or where
 * SUBNORMAL_X holds (quotient_proxy would not keep it): exact_element does those. */
#define FLOAT64_QUOTIENTS(NAME, INPUT_TYPE, QUOTIENT, SUBNORMAL_X)                               \
    static void NAME(int count, const INPUT_TYPE *restrict x, const double *restrict operand, \
                                      double *restrict quotients)                                \
    {                                                                                            \
        for (int t = 0; t < count; t++) {                                                        \
            const double xv = (double)x[t];                                                      \
            const double q = (QUOTIENT);                                                         \
            const int bad = ((q == 0.0) | (SUBNORMAL_X)) & (xv != 0.0);                          \
            quotients[t] = bad ? (double)NAN : q;                                                \
        }                                                                                        \
    }
FLOAT64_QUOTIENTS(quotients_f32_multiply, float, xv * operand[t], 0)
FLOAT64_QUOTIENTS(quotients_f32_divide, float, xv / operand[t], 0)
FLOAT64_QUOTIENTS(quotients_f64_multiply, double, xv * operand[t], 0)
FLOAT64_QUOTIENTS(quotients_f64_divide, double, xv / operand[t], fabs(xv) < 0x1p-1022)

/* One out-of-line copy per (mode, values, counts) and kernel: all three are constants inside
 * (the counts cost a tenth of the kernel, and most calls do not ask for them). */
#define DEFINE_KERNEL_F32(MODE, VALUES, COUNTS, SUFFIX)                                          \
    static void kernel_f32_##SUFFIX(int count, const uint32_t *restrict bits,   \
        const uint32_t *restrict exponent_offset, const float *restrict scale,                   \
        const element_constants *restrict k, uint32_t *restrict codes, float *restrict values,   \
        uint32_t *restrict slow, element_counts *restrict counts, uint64_t stream_key, uint64_t first_index) \
    {                                                                                            \
        element_chunk_f32(count, bits, exponent_offset, scale, MODE, VALUES, COUNTS, k, codes, values, slow, \
                          counts, stream_key, first_index, 0, NULL);                             \
    }
#define DEFINE_KERNEL_RECIPROCAL(MODE, VALUES, COUNTS, SUFFIX)                                   \
    static void kernel_reciprocal_##SUFFIX(int count, const reciprocal_input *restrict input, \
        const element_constants *restrict k, uint32_t *restrict codes, uint32_t *restrict slow,  \
        element_counts *restrict counts)                                                         \
    {                                                                                            \
        element_chunk_f32(count, NULL, NULL, NULL, MODE, VALUES, COUNTS, k, codes, NULL, slow, counts, 0, 0, 1, \
                          input);                                                                \
    }
#define DEFINE_KERNELS(MODE, VALUES, COUNTS, SUFFIX)                                             \
    static void kernel_f64_##SUFFIX(int count, const double *restrict quotients, \
        const double *restrict scale, const element_constants *restrict k, int64_t *restrict codes, \
        double *restrict values, int64_t *restrict slow, element_counts *restrict counts)        \
    {                                                                                            \
        element_chunk_f64(count, quotients, scale, MODE, VALUES, COUNTS, k, codes, values, slow, counts); \
    }                                                                                            \
    DEFINE_KERNEL_F32(MODE, VALUES, COUNTS, SUFFIX)                                              \
    DEFINE_KERNEL_RECIPROCAL(MODE, VALUES, COUNTS, SUFFIX)
#define DEFINE_MODE_KERNELS(MODE, NAME)                                                          \
    DEFINE_KERNELS(MODE, 0, 0, NAME##_codes)                                                     \
    DEFINE_KERNELS(MODE, 1, 0, NAME##_values)                                                    \
    DEFINE_KERNELS(MODE, 0, 1, NAME##_codes_counted)                                             \
    DEFINE_KERNELS(MODE, 1, 1, NAME##_values_counted)
DEFINE_MODE_KERNELS(FL_ROUND_NEAREST_EVEN, nearest_even)
DEFINE_MODE_KERNELS(FL_ROUND_NEAREST_AWAY, nearest_away)
DEFINE_MODE_KERNELS(FL_ROUND_TOWARD_ZERO, toward_zero)
DEFINE_MODE_KERNELS(FL_ROUND_UP, up)
DEFINE_MODE_KERNELS(FL_ROUND_DOWN, down)
DEFINE_MODE_KERNELS(FL_ROUND_ODD, odd)

/* [counts][values][mode], the deterministic modes in enum fl_rounding_mode's order */
#define KERNEL_TABLE(PREFIX, KIND)                                                               \
    {PREFIX##nearest_even_##KIND, PREFIX##nearest_away_##KIND, PREFIX##toward_zero_##KIND,       \
     PREFIX##up_##KIND, PREFIX##down_##KIND, PREFIX##odd_##KIND}
static const kernel_f64 kernels_f64[2][2][6] = {
    {KERNEL_TABLE(kernel_f64_, codes), KERNEL_TABLE(kernel_f64_, values)},
    {KERNEL_TABLE(kernel_f64_, codes_counted), KERNEL_TABLE(kernel_f64_, values_counted)}};
static const kernel_f32 kernels_f32[2][2][6] = {
    {KERNEL_TABLE(kernel_f32_, codes), KERNEL_TABLE(kernel_f32_, values)},
    {KERNEL_TABLE(kernel_f32_, codes_counted), KERNEL_TABLE(kernel_f32_, values_counted)}};
static const kernel_reciprocal kernels_reciprocal[2][2][6] = {
    {KERNEL_TABLE(kernel_reciprocal_, codes), KERNEL_TABLE(kernel_reciprocal_, values)},
    {KERNEL_TABLE(kernel_reciprocal_, codes_counted), KERNEL_TABLE(kernel_reciprocal_, values_counted)}};
/* exact stochastic rounding (sr_bits 0) on the float32 kernel: [counts][values] */
DEFINE_KERNEL_F32(FL_ROUND_STOCHASTIC, 0, 0, stochastic_codes)
DEFINE_KERNEL_F32(FL_ROUND_STOCHASTIC, 1, 0, stochastic_values)
DEFINE_KERNEL_F32(FL_ROUND_STOCHASTIC, 0, 1, stochastic_codes_counted)
DEFINE_KERNEL_F32(FL_ROUND_STOCHASTIC, 1, 1, stochastic_values_counted)
static const kernel_f32 stochastic_kernels_f32[2][2] = {
    {kernel_f32_stochastic_codes, kernel_f32_stochastic_values},
    {kernel_f32_stochastic_codes_counted, kernel_f32_stochastic_values_counted}};

/* ---- the plan of one call ----------------------------------------------------------------- */

typedef struct scaled_plan {
    prepared_format element, scale, tensor;
    fl_rounding rounding;            /* the caller's, saturating */
    fl_rounding scale_rounding;      /* nearest-even, saturating: how quotients become scale codes */
    element_constants constants;
    int use_f32;                     /* the float32 kernel on x (float32 input, power-of-two scales) */
    int use_odd32;                   /* the float32 kernel on round_to_odd_f32 of the quotients */
    kernel_f32 kernel32;
    kernel_reciprocal kernel_reciprocal32; /* use_odd32 with float32 x and S not a power of two */
    kernel_stochastic_divide stochastic_divide; /* exact stochastic rounding, float32 x, S not 2^e */
    uint64_t stream_key;             /* stochastic rounding: the key of draw 0 (fl_stream_key_inline) */
    kernel_f64 kernel64;             /* the float64 kernel of the mode ... */
    int stochastic;                  /* ... or the stochastic one; neither: exact_element alone */
    int input_f32, want_values;
    int rule, power_of_two, has_tensor_scale;
    int element_emax, element_man_bits;
    int integer;                     /* an integer element: limits by sign, no -0 ... */
    uint32_t integer_mask;           /* ... and codes 2^N - 1 masked two's complement */
    int max_exponent;                /* element_max = max_mantissa * 2^max_exponent (frexp) ... */
    int64_t max_fraction;            /* ... max_mantissa's 52 bits below the leading one */
    int64_t even_carry_fraction;     /* rule even: 2^52 - 2^(51 - m), the fraction of 2 - 2^-(m + 1) */
    double element_max;
    element_constants scale_constants; /* the scale format on the float64 kernel ... */
    kernel_f64 scale_kernel;         /* ... nearest-even, values; NULL: round_scale alone */
    int lowest, highest;             /* the scale's powers of two */
    double smallest_scale, largest_scale;
    uint32_t scale_nan_code, scale_smallest_code;
    uint32_t power_codes[MAX_POWER_RANGE + 1]; /* code of 2^(lowest + i), power-of-two rules */
    uint32_t zero_offsets[CHUNK];    /* the float32 kernel unscaled: offsets 0, scales 1 */
    float ones[CHUNK];
    double tensor_value;             /* T (1 without a tensor scale; NaN for a NaN tensor) */
    double divisor;                  /* element_max * T: amax / divisor is a block's wanted scale */
    uint64_t index_offset;           /* the tensor's C-order index of x[0] (a piece: fl_scaled_piece) */
    /* the AVX-512 copy's intrinsics lanes (scaled_lanes_avx512.h) for float32 x in blocks of a
     * multiple of 16 columns: LANES_POWER, LANES_RECIPROCAL (used for a chunk whose blocks all have
     * short scales) or LANES_DIVIDE; 0: the C kernels */
    int lanes_path;
    int want_counts;                 /* the caller asked for stats */
} scaled_plan;

static const local_stats no_stats = {0, 0, 0, 0, 0};

/* The code of a positive quotient (or +Inf) rounded to nearest-even into a scale format,
 * saturating at its largest value; zero (and a result of zero) gives the smallest positive
 * value (fmtlab.scaled._round_scale). */
static uint32_t round_scale(const prepared_format *fmt, const fl_rounding *nearest_even, double proxy,
                            uint32_t smallest_code)
{
    if (proxy == 0)
        return smallest_code;
    if (proxy == (double)INFINITY)
        proxy = DBL_MAX; /* the codec keeps Inf in formats that have one, even saturating */
    local_stats ignored = no_stats;
    uint32_t code = encode_one(proxy, fmt, nearest_even, 0, &ignored);
    return code == 0 ? smallest_code : code;
}

/* quotient_proxy (fmtlab._scale_rules) of a positive amax over a divisor that need not be a power
 * of two: the float64 quotient, or 2^-1074 when it or amax is below float64's normal range. */
static double amax_quotient_proxy(double amax, double divisor)
{
    double quotient = amax / divisor;
    if (amax != 0 && (quotient < 0x1p-1022 || amax < 0x1p-1022))
        quotient = 0x1p-1074;
    return quotient;
}

/* The block kinds, from a block's largest magnitude. */
enum { BLOCK_NORMAL = 0, BLOCK_ZERO = 1, BLOCK_INF = 2, BLOCK_NAN = 3 };

typedef struct block_counts {
    int64_t blocks, zero_blocks, nan_blocks, scale_underflow, scale_overflow;
} block_counts;

/* What the element loop needs of one block. */
typedef struct block_scale {
    double operand;            /* 1/S (power-of-two S) or S; NaN block: 0 or +Inf (q = x * 0 or x / Inf) */
    double value;              /* S, NaN for a NaN block: decoded elements are multiplied by it */
    uint32_t exponent_offset;  /* the float32 kernel: e * 2^23 for S = 2^e; 0x80000000 in a NaN block */
    float value32;             /* the float32 kernel: S as a float32 (exact), NaN in a NaN block */
    uint32_t code;             /* the scale code */
    /* S not a power of two: RN64(1/S) and S for ROUND_TO_ODD_F32_RECIPROCAL (both 0 in a NaN
     * block), and whether S's significand has at most 29 bits (so that it applies) */
    double reciprocal, product_scale;
    int short_scale;
    /* The AVX-512 lanes' float32 reciprocal (lanes_odd_quotients_f32), where S is a float32 in
     * [2^-126, 2^100] (the FP32 scales of fp8_block* and fp8_tensor): RN64(1/S) split into
     * reciprocal_hi = RN32 of it and reciprocal_lo = RN32 of the rest, and tiny_bits, the float32
     * bits of 2^max(-110, -103 - e) (S in [2^e, 2^(e+1))), below which a quotient is not kept
     * there.  f32_reciprocal is 0 where the path does not apply (NaN blocks among them). */
    float reciprocal_hi, reciprocal_lo;
    uint32_t tiny_bits;
    int f32_reciprocal;
    /* split_reciprocal: S in [2^-126, 2^100], short, not a float32 (NVFP4's E4M3 x FP32): the
     * lanes take the estimate from reciprocal_hi and _lo as above, the correction in float64
     * (lanes_odd_quotients_split).  split_value: S = value_a value_b, both float32, with every
     * element value times value_a exact in float32, so the value times S is
     * RN32((value value_a) value_b), two float32 multiplications (the second rounds the exact
     * product once, as (float)(value * S) in float64 does). */
    int split_reciprocal, split_value;
    float value_a, value_b;
} block_scale;

#if FL_SCALED_COPY == 2
#include "scaled_lanes_avx512.h"
#endif

static uint64_t load_amax(const scaled_plan *plan, const void *acc, int64_t i)
{
    return plan->input_f32 ? ((const uint32_t *)acc)[i] : ((const uint64_t *)acc)[i];
}

/* The kind and float64 value of a block maximum (magnitude bits of the input type). */
static double amax_value(const scaled_plan *plan, uint64_t bits, int *kind)
{
    if (plan->input_f32) {
        const uint32_t b = (uint32_t)bits;
        *kind = b > 0x7F800000u ? BLOCK_NAN : b == 0x7F800000u ? BLOCK_INF : b == 0 ? BLOCK_ZERO : BLOCK_NORMAL;
        float value;
        memcpy(&value, &b, sizeof value);
        return (double)value;
    }
    *kind = bits > 0x7FF0000000000000ULL ? BLOCK_NAN : bits == 0x7FF0000000000000ULL ? BLOCK_INF
            : bits == 0 ? BLOCK_ZERO : BLOCK_NORMAL;
    return double_of_bits((int64_t)bits);
}

/* The unclamped exponent of a power-of-two rule for a positive finite amax (_scale_rules.rule_exponent):
 * with amax = mantissa 2^exponent, mantissa in [1/2, 1) (frexp), each rule compares mantissas;
 * for a normal float64 amax they are read off its bits. */
static int64_t rule_exponent(const scaled_plan *plan, double amax)
{
    const int64_t bits = bits_of_double(amax);
    int64_t exponent; /* frexp's */
    int64_t fraction; /* the 52 bits below the leading one: mantissa = (1 + fraction 2^-52) / 2 */
    if (bits >= FLOAT64_MIN_NORMAL_BITS) {
        exponent = (bits >> 52) - 1022;
        fraction = bits & 0x000FFFFFFFFFFFFFLL;
    } else {
        int e;
        const double mantissa = frexp(amax, &e);
        exponent = e;
        fraction = bits_of_double(2.0 * mantissa) & 0x000FFFFFFFFFFFFFLL;
    }
    const int64_t floor_log2 = exponent - 1;
    switch (plan->rule) {
    case FL_SCALE_FLOOR: return floor_log2 - plan->element_emax;
    case FL_SCALE_CEIL: return floor_log2 + (fraction != 0) - plan->element_emax;
    case FL_SCALE_EVEN: /* mantissa >= 1 - 2^-(m + 2), i.e. 2 mantissa >= 2 - 2^-(m + 1) */
        return floor_log2 + (fraction >= plan->even_carry_fraction) - plan->element_emax;
    default: /* FL_SCALE_RCEIL: mantissa > max's mantissa */
        return exponent - plan->max_exponent + (fraction > plan->max_fraction);
    }
}

/* 2^e as a float64, from its bits where it is normal. */
static double power_of_two(int64_t e)
{
    return e >= -1022 && e <= 1023 ? double_of_bits((e + 1023) << 52) : ldexp(1.0, (int)e);
}

/*
 * The scales of `count` blocks whose maxima (magnitude bits of the input type) are acc[0 ..
 * count), as fmtlab.scaled._compute_scales computes them: the kind of each block, the rule's
 * exponent clamped to the scale's powers of two (power-of-two rules), or amax / divisor rounded
 * to nearest-even into the scale format (rule amax: the quotients of a chunk of blocks go
 * through the float64 kernel of the scale format, the rest through round_scale).
 */
static void scales_of_blocks(const scaled_plan *plan, const void *acc, int64_t count, block_scale *blocks,
                             block_counts *counts)
{
    /* local counts and branch-free loops: this runs once per block, up to one per 16 elements */
    int64_t zero_blocks = 0, nan_blocks = 0, underflow = 0, overflow = 0;
    for (int64_t start = 0; start < count; start += CHUNK) {
        const int n = (int)(count - start < CHUNK ? count - start : CHUNK);
        block_scale *out = blocks + start;
        double amax[CHUNK], value[CHUNK];
        int kind[CHUNK];
        uint32_t code[CHUNK];
        double own[CHUNK]; /* the block scale's own value before the tensor scale (split_value) */
        int has_own = 0;
        int64_t nan_here = 0;
        if (plan->input_f32) {
            const uint32_t *bits = (const uint32_t *)acc + start;
            for (int i = 0; i < n; i++) {
                const uint32_t b = bits[i];
                float value32;
                memcpy(&value32, &b, sizeof value32);
                amax[i] = (double)value32;
                kind[i] = b > 0x7F800000u ? BLOCK_NAN : b == 0x7F800000u ? BLOCK_INF
                          : b == 0 ? BLOCK_ZERO : BLOCK_NORMAL;
            }
        } else {
            const uint64_t *bits = (const uint64_t *)acc + start;
            for (int i = 0; i < n; i++)
                amax[i] = amax_value(plan, bits[i], &kind[i]);
        }
        for (int i = 0; i < n; i++) {
            zero_blocks += kind[i] == BLOCK_ZERO;
            nan_here += kind[i] == BLOCK_NAN;
        }
        nan_blocks += nan_here;
        if (plan->rule != FL_SCALE_AMAX) {
            for (int i = 0; i < n; i++) {
                int64_t exponent = plan->lowest;
                if (kind[i] == BLOCK_NORMAL) {
                    exponent = rule_exponent(plan, amax[i]);
                    underflow += exponent < plan->lowest;
                    overflow += exponent > plan->highest;
                } else if (kind[i] == BLOCK_INF) {
                    exponent = plan->highest;
                    overflow++;
                }
                exponent = exponent < plan->lowest ? plan->lowest : exponent > plan->highest ? plan->highest : exponent;
                code[i] = plan->power_codes[exponent - plan->lowest];
                value[i] = power_of_two(exponent);
            }
        } else {
            double proxy[CHUNK], ones[CHUNK], decoded[CHUNK];
            int64_t codes64[CHUNK], slow[CHUNK];
            if (plan->tensor_value != plan->tensor_value) {
                /* a NaN tensor scale: every block is NaN; the wanted scales count as 0 (scaled.py) */
                for (int i = 0; i < n; i++) {
                    underflow += kind[i] == BLOCK_NORMAL;
                    overflow += kind[i] == BLOCK_INF;
                    kind[i] = BLOCK_NAN;
                    proxy[i] = 0;
                }
                nan_here = n;
            } else {
                const double divisor = plan->divisor, smallest = plan->smallest_scale, largest = plan->largest_scale;
                for (int i = 0; i < n; i++) {
                    /* amax_quotient_proxy, written out: the quotient, 2^-1074 where it or amax is
                     * below float64's normal range; Inf for an Inf block, 0 for the others */
                    const double quotient = amax[i] / divisor;
                    const int tiny = (quotient < 0x1p-1022) | (amax[i] < 0x1p-1022);
                    const int normal = kind[i] == BLOCK_NORMAL, infinite = kind[i] == BLOCK_INF;
                    const double wanted = tiny ? 0x1p-1074 : quotient;
                    proxy[i] = normal ? wanted : infinite ? (double)INFINITY : 0.0;
                    underflow += normal & (wanted < smallest);
                    overflow += (normal & (wanted > largest)) | infinite;
                }
            }
            for (int i = 0; i < n; i++)
                ones[i] = 1.0;
            element_counts ignored = {0, 0, 0, 0, 0};
            if (plan->scale_kernel) {
                plan->scale_kernel(n, proxy, ones, &plan->scale_constants, codes64, decoded, slow, &ignored);
            } else {
                for (int i = 0; i < n; i++)
                    slow[i] = 1;
                ignored.slow = n;
            }
            const uint32_t smallest_code = plan->scale_smallest_code;
            for (int i = 0; i < n; i++) { /* zero: the smallest positive scale */
                const int zero = codes64[i] == 0;
                code[i] = zero ? smallest_code : (uint32_t)codes64[i];
                value[i] = zero ? plan->smallest_scale : decoded[i];
            }
            for (int i = 0; ignored.slow && i < n; i++) {
                if (slow[i]) {
                    code[i] = round_scale(&plan->scale, &plan->scale_rounding, proxy[i], smallest_code);
                    value[i] = decode_one(code[i], &plan->scale);
                }
            }
            if (plan->has_tensor_scale) {
                for (int i = 0; i < n; i++) {
                    own[i] = value[i];
                    value[i] *= plan->tensor_value;
                }
                has_own = 1;
            }
        }
        for (int i = 0; i < n; i++) {
            out[i].code = code[i];
            out[i].value = value[i];
            out[i].value32 = (float)value[i];
            out[i].exponent_offset = 0;
            out[i].operand = value[i];
        }
        /* S not a power of two: RN64(1/S) for ROUND_TO_ODD_F32_RECIPROCAL where S has at most 29
         * significant bits (the low 23 of its 52 fraction bits zero), normal with a normal
         * reciprocal (power-of-two rules never read these: no division per block there) */
        const double element_max = plan->element_max;
        const double element_min = ldexp(1.0, (int)plan->constants.subnormal_exponent);
        const int element_significand = 24 - (int)plan->constants.shift32;
        for (int i = 0; !plan->power_of_two && i < n; i++) {
            const int64_t value_bits = bits_of_double(value[i]);
            /* & rather than &&: one branch-free pass (this runs once per block of 16 in NVFP4) */
            const int short_scale = ((value_bits & 0x7FFFFF) == 0) & (value[i] >= 0x1p-1000) & (value[i] <= 0x1p1000);
            out[i].short_scale = short_scale;
            out[i].reciprocal = 1.0 / value[i];
            out[i].product_scale = value[i];
            const float value32 = (float)value[i];
            const int in_range = (value[i] >= 0x1p-126) & (value[i] <= 0x1p100);
            const int f32_reciprocal = ((double)value32 == value[i]) & in_range;
            const float reciprocal_hi = (float)out[i].reciprocal;
            /* exact in float64: RN32 of a float64 differs from it by at most half a float32 ulp */
            const double rest = out[i].reciprocal - (double)reciprocal_hi;
            const int64_t e = (value_bits >> 52 & 0x7FF) - 1023;
            const int64_t tiny_exponent = -103 - e > -110 ? -103 - e : -110;
            const int split_reciprocal = (f32_reciprocal ^ 1) & short_scale & in_range;
            out[i].f32_reciprocal = f32_reciprocal;
            out[i].split_reciprocal = split_reciprocal;
            out[i].reciprocal_hi = reciprocal_hi; /* read only where one of the two holds */
            out[i].reciprocal_lo = (float)rest;
            out[i].tiny_bits = (uint32_t)((f32_reciprocal ? tiny_exponent : -110) + 127) << 23;
        }
        /* split_value: S = a T (a the block scale's own value, T the tensor scale), the same for
         * every block of the plan: T a float32, the scale format's values float32s (between
         * 2^-126 and 2^127), a times the element's largest value below 2^120 and times its
         * smallest positive value at or above 2^-120 (normal: exact), and the significands of
         * the scale format and of the element fitting 24 bits together */
        const int split_value = has_own && !plan->power_of_two && (double)(float)plan->tensor_value == plan->tensor_value &&
                                plan->scale.man_bits + 1 + element_significand <= 24;
        const double lowest_own = 0x1p-120 / element_min, highest_own = 0x1p120 / element_max; /* exact or safe */
        for (int i = 0; split_value && i < n; i++) {
            const float a = (float)own[i];
            out[i].split_value = ((double)a == own[i]) & (own[i] >= lowest_own) & (own[i] >= 0x1p-126) &
                                 (own[i] <= highest_own);
            out[i].value_a = a;
            out[i].value_b = (float)plan->tensor_value;
        }
        for (int i = 0; !split_value && i < n; i++)
            out[i].split_value = 0;
        if (plan->power_of_two) {
            for (int i = 0; i < n; i++) { /* value = 2^e: 1/value is exact */
                const int64_t e = (bits_of_double(value[i]) >> 52) - 1023;
                out[i].operand = value[i] < 0x1p-1022 ? 1.0 / value[i] : power_of_two(-e);
                if (plan->use_f32) /* |e| <= 127 */
                    out[i].exponent_offset = (uint32_t)e << 23;
            }
        }
        for (int i = 0; nan_here && i < n; i++) {
            if (kind[i] == BLOCK_NAN) {
                out[i].code = plan->scale_nan_code;
                out[i].value = (double)NAN;
                out[i].operand = plan->power_of_two ? 0.0 : (double)INFINITY;
                out[i].exponent_offset = 0x80000000u;
                out[i].value32 = NAN;
                out[i].reciprocal = 0.0;
                out[i].product_scale = 0.0;
                out[i].short_scale = 1;
                out[i].f32_reciprocal = 0;
                out[i].split_reciprocal = 0;
                out[i].split_value = 0;
            }
        }
    }
    counts->blocks += count;
    counts->zero_blocks += zero_blocks;
    counts->nan_blocks += nan_blocks;
    counts->scale_underflow += underflow;
    counts->scale_overflow += overflow;
}

/*
 * scales_of_blocks for the float32 kernel's plans (use_f32: float32 x, a power-of-two rule, scale
 * exponents within +-127), on the blocks whose maximum is a normal float32 -- the rule's exponent
 * read off the float32 bits (E = the exponent field, f = the 23 fraction bits: frexp's exponent is
 * E - 126, its 52 fraction bits below the leading one are f 2^29), no float64 conversion, no
 * branch but the rule's, hoisted -- and scales_of_blocks itself, one block at a time, on the
 * others (zero, subnormal, Inf, NaN maxima), so that both give the same fields and counts.
 */
/* one loop per rule (POWER_SCALES_LOOP with the rule's exponent): the switch inside the loop
 * was not hoisted by GCC (perf: about 15% of an in-cache mxfp8_e5m2 quantize in this loop,
 * the rule's compare and jump on every block); the arithmetic is the same, so are the fields */
#define POWER_SCALES_LOOP(EXPONENT)                                                              \
    for (int64_t i = 0; i < count; i++) {                                                        \
        const uint32_t b = bits[i];                                                              \
        if (b - 0x00800000u >= 0x7F000000u) { /* not a normal float32: below */                  \
            others++;                                                                            \
            continue;                                                                            \
        }                                                                                        \
        const int64_t field = (int64_t)(b >> 23);                                                \
        const uint64_t fraction = (uint64_t)(b & 0x007FFFFFu) << 29;                             \
        (void)fraction;                                                                          \
        int64_t exponent = (EXPONENT);                                                           \
        underflow += exponent < lowest;                                                          \
        overflow += exponent > highest;                                                          \
        exponent = exponent < lowest ? lowest : exponent > highest ? highest : exponent;         \
        block_scale *out = &blocks[i];                                                           \
        out->code = plan->power_codes[exponent - lowest];                                        \
        out->value = double_of_bits((exponent + 1023) << 52);                                    \
        out->value32 = (float)out->value;                                                        \
        out->exponent_offset = (uint32_t)exponent << 23;                                         \
        out->operand = double_of_bits((1023 - exponent) << 52);                                  \
    }

static void power_scales_f32(const scaled_plan *plan, const uint32_t *bits, int64_t count, block_scale *blocks,
                             block_counts *counts)
{
    const int64_t lowest = plan->lowest, highest = plan->highest, emax = plan->element_emax;
    const int rule = plan->rule;
    int64_t underflow = 0, overflow = 0, others = 0;
    switch (rule) {
    case FL_SCALE_FLOOR: POWER_SCALES_LOOP(field - 127 - emax) break;
    case FL_SCALE_CEIL: POWER_SCALES_LOOP(field - 127 + (fraction != 0) - emax) break;
    case FL_SCALE_EVEN:
        POWER_SCALES_LOOP(field - 127 + (fraction >= (uint64_t)plan->even_carry_fraction) - emax) break;
    default:
        POWER_SCALES_LOOP(field - 126 - plan->max_exponent + (fraction > (uint64_t)plan->max_fraction)) break;
    }
#undef POWER_SCALES_LOOP
    counts->blocks += count - others;
    counts->scale_underflow += underflow;
    counts->scale_overflow += overflow;
    for (int64_t i = 0; others && i < count; i++)
        if (bits[i] - 0x00800000u >= 0x7F000000u)
            scales_of_blocks(plan, bits + i, 1, blocks + i, counts);
}

/* ---- elements the kernel does not do ---------------------------------------------------- */

/* The element code of x in a block whose operand is `operand`, by scaled.py's definition:
 * NaN block: the code of x * 0; else q = quotient_proxy(x, S) -- +-2^-1074 for a nonzero x
 * whose quotient (or, dividing by a non-power of two, x itself) is below float64's normal
 * range -- with an Inf quotient saturated to +-DBL_MAX where the element has an Inf (the
 * element codec keeps Inf there even when saturating), then encode_one. */
static uint32_t exact_element(const scaled_plan *plan, double x, double operand, uint64_t index, local_stats *stats)
{
    const int divide = !plan->power_of_two;
    double q;
    if (divide ? operand == (double)INFINITY : operand == 0.0) {
        q = x * 0.0;
    } else {
        q = divide ? x / operand : x * operand;
        if (x != 0 && (fabs(q) < 0x1p-1022 || (divide && fabs(x) < 0x1p-1022)))
            q = copysign(0x1p-1074, x);
        if (isinf(q) && plan->element.has_inf)
            q = copysign(DBL_MAX, q);
    }
    if (!plan->integer)
        return encode_one(q, &plan->element, &plan->rounding, index, stats);
    /* an integer element: encode_one on its float format, then the limit of the sign; a finite
     * input the limit changes is an overflow and inexact, counted once (encode_one counts those
     * it saturated itself) */
    const int64_t overflow_before = stats->overflow, inexact_before = stats->inexact;
    const uint32_t code = encode_one(q, &plan->element, &plan->rounding, index, stats);
    const uint32_t sign = code & (uint32_t)plan->element.sign_bit, magnitude = code & ~sign;
    if (magnitude == 0)
        return 0;  /* the float format's -0 is the integer 0 */
    const int64_t limit = sign ? plan->constants.negative_max_code : plan->constants.positive_max_code;
    if ((int64_t)magnitude <= limit)
        return code;
    if (isfinite(q)) {  /* encode_one counted +-Inf as an overflow already, and a NaN is none */
        stats->overflow = overflow_before + 1;
        stats->inexact = inexact_before + 1;
    }
    return sign | (uint32_t)limit;
}

/* ---- thread-local work -------------------------------------------------------------------- */

typedef struct thread_counts {
    local_stats elements;
    block_counts blocks;
} thread_counts;

static void add_counts(thread_counts *total, const thread_counts *part)
{
    total->elements.invalid += part->elements.invalid;
    total->elements.overflow += part->elements.overflow;
    total->elements.underflow += part->elements.underflow;
    total->elements.denormal += part->elements.denormal;
    total->elements.inexact += part->elements.inexact;
    total->blocks.blocks += part->blocks.blocks;
    total->blocks.zero_blocks += part->blocks.zero_blocks;
    total->blocks.nan_blocks += part->blocks.nan_blocks;
    total->blocks.scale_underflow += part->blocks.scale_underflow;
    total->blocks.scale_overflow += part->blocks.scale_overflow;
}

/* Where one call writes (codes or values, and the scales). */
typedef struct scaled_output {
    void *codes;
    int code_bytes;
    void *values;       /* float or double, as the input */
    void *scales;
    int scale_bytes;
    fl_scaled_code_sink sink;  /* when set, the element codes go to it instead of codes (the
                                  sweep's fused statistics, sweep_scaled.c) */
    void *sink_context;
} scaled_output;

/* Integer elements: the float format's sign-magnitude codes become the integers' N-bit two's
 * complement (fmtlab/integers.py: -M is 2^N - M); an unsigned integer's codes already are. */
static void twos_complement_codes(const scaled_plan *plan, int count, uint32_t *codes32, int64_t *codes64)
{
    const uint32_t sign = plan->element.sign_bit, mask = plan->integer_mask;
    if (!sign)
        return;
    if (codes32) {
        for (int t = 0; t < count; t++) {
            const uint32_t magnitude = codes32[t] & (sign - 1);
            codes32[t] = (codes32[t] & sign) ? (0u - magnitude) & mask : magnitude;
        }
    } else {
        for (int t = 0; t < count; t++) {
            const uint32_t code = (uint32_t)codes64[t], magnitude = code & (sign - 1);
            codes64[t] = (code & sign) ? (0u - magnitude) & mask : magnitude;
        }
    }
}

/* Store count codes (as code_bytes each) or values at element `first` of the output. */
static void store_codes(const scaled_output *output, int64_t first, int count, const uint32_t *codes32,
                        const int64_t *codes64)
{
    if (output->code_bytes == 1) {
        uint8_t *out = (uint8_t *)output->codes + first;
        if (codes32)
            for (int t = 0; t < count; t++)
                out[t] = (uint8_t)codes32[t];
        else
            for (int t = 0; t < count; t++)
                out[t] = (uint8_t)codes64[t];
    } else if (output->code_bytes == 2) {
        uint16_t *out = (uint16_t *)output->codes + first;
        if (codes32)
            for (int t = 0; t < count; t++)
                out[t] = (uint16_t)codes32[t];
        else
            for (int t = 0; t < count; t++)
                out[t] = (uint16_t)codes64[t];
    } else {
        uint32_t *out = (uint32_t *)output->codes + first;
        if (codes32)
            memcpy(out, codes32, (size_t)count * sizeof *out);
        else
            for (int t = 0; t < count; t++)
                out[t] = (uint32_t)codes64[t];
    }
}

/* store_codes of the element codes, two's complement for an integer element. */
static void store_element_codes(const scaled_plan *plan, const scaled_output *output, int64_t first, int count,
                                uint32_t *codes32, int64_t *codes64)
{
    if (output->sink) {  /* the element format's own codes (an integer element's float codes) */
        output->sink(output->sink_context, first, count, codes32, codes64);
        return;
    }
    if (plan->integer)
        twos_complement_codes(plan, count, codes32, codes64);
    store_codes(output, first, count, codes32, codes64);
}

/* The blocks' entries repeated over their columns: for t < count, column start + t lies in
 * column block b = (start + t) / block_columns, whose scale is blocks[b - first_block]. */
#define FILL_PER_ELEMENT(ASSIGNMENTS)                                                            \
    {                                                                                            \
        const int64_t first_column_block = start / block_columns;                               \
        const block_scale *block = &blocks[first_column_block - first_block];                    \
        int64_t end_column = (first_column_block + 1) * block_columns - start;                   \
        for (int t = 0; t < count; block++, end_column += block_columns) {                       \
            const int end = (int)(end_column < count ? end_column : count);                      \
            for (; t < end; t++) {                                                               \
                ASSIGNMENTS;                                                                     \
            }                                                                                    \
        }                                                                                        \
    }

#if FL_SCALED_COPY == 2
/*
 * One chunk (columns start .. start + count of a row, element `first` of x and of the output)
 * through the intrinsics lanes, then exact_element for the elements they flag, as encode_span
 * does after the C kernels; 0 (nothing done) for LANES_RECIPROCAL when a block of the chunk has a
 * scale that is not short (the C kernels divide there).
 */
static int lanes_chunk_done(const scaled_plan *plan, lanes_chunk_function lanes, const float *x, int count,
                            int64_t start, int64_t block_columns, const block_scale *blocks, int64_t first_block,
                            uint64_t index_base, const scaled_output *output, int64_t first, thread_counts *counts)
{
    const int64_t first_column_block = start / block_columns;
    const block_scale *block = &blocks[first_column_block - first_block];
    if (plan->lanes_path == LANES_RECIPROCAL) {
        const int64_t last_column_block = (start + count - 1) / block_columns;
        for (int64_t b = 0; b <= last_column_block - first_column_block; b++)
            if (!block[b].short_scale)
                return 0;
    }
    uint32_t codes[CHUNK];
    uint16_t slow[CHUNK / 16];
    float *values = plan->want_values ? (float *)output->values + first : NULL;
    lanes_counts fast = {0, 0, 0, 0, 0};
    lanes(x, count, block, start - first_column_block * block_columns, block_columns, &plan->constants,
          (int64_t)(plan->element.emin - plan->element.man_bits) + 52, plan->stream_key, index_base, codes, values,
          slow, plan->want_counts, &fast);
    for (int t = 0; fast.slow && t < count; t++) {
        if (!(slow[t / 16] >> (t % 16) & 1))
            continue;
        const block_scale *own = &blocks[(start + t) / block_columns - first_block];
        /* the operand exact_element takes: 1/S for S = 2^e (0 in a NaN block), else S (+Inf there) */
        double operand = own->operand;
        if (plan->lanes_path == LANES_POWER) {
            const double value = (double)own->value32;
            operand = value != value ? 0.0 : 1.0 / value;
        }
        codes[t] = exact_element(plan, (double)x[t], operand, index_base + (uint64_t)t, &counts->elements);
        if (values) {
            const double scale = plan->lanes_path == LANES_POWER ? (double)own->value32 : own->value;
            values[t] = (float)(decode_one(codes[t], &plan->element) * scale);
        }
    }
    if (!values)
        store_element_codes(plan, output, first, count, codes, NULL);
    counts->elements.inexact += fast.inexact;
    counts->elements.overflow += fast.overflow;
    counts->elements.underflow += fast.underflow;
    counts->elements.denormal += fast.denormal;
    return 1;
}
#endif

/*
 * The elements [j0, j1) of the row that starts at element `row_start` of x (its global index):
 * blocks[b - first_block] is the scale of column block b (block_columns wide).  Chunks of CHUNK
 * elements go through one of the kernels; the elements it flags through exact_element.
 */
static void encode_span(const scaled_plan *plan, const void *x, int64_t row_start, int64_t j0,
                                         int64_t j1, int64_t block_columns, const block_scale *blocks,
                                         int64_t first_block, const scaled_output *output, thread_counts *counts)
{
    const element_constants *k = &plan->constants;
    const int input_f32 = plan->input_f32, divide = !plan->power_of_two, want_values = plan->want_values;
#if FL_SCALED_COPY == 2
    /* the lanes take every chunk of the span (a chunk starts a multiple of CHUNK columns after
     * j0, itself a multiple of block_columns: every 16 lanes lie in one block) */
    const lanes_chunk_function lanes = plan->lanes_path && block_columns % 16 == 0 && j0 % 16 == 0
                                           ? lanes_chunk_function_of(plan->lanes_path, plan->rounding.mode)
                                           : NULL;
#endif
    for (int64_t start = j0; start < j1; start += CHUNK) {
        const int count = (int)(j1 - start < CHUNK ? j1 - start : CHUNK);
        const int64_t first = row_start + start;
        const uint64_t index_base = plan->index_offset + (uint64_t)first; /* the key of element first */
        const float *input32 = (const float *)x + first;
        const double *input64 = (const double *)x + first;
#if defined(__GNUC__)
        /* the chunk after next, a cache line at a time: with a tensor scale x comes back from
         * memory for this pass (the first one read all of it) */
        {
            const char *ahead = (const char *)x + (first + 2 * CHUNK) * (input_f32 ? 4 : 8);
            const int64_t bytes = (int64_t)CHUNK * (input_f32 ? 4 : 8);
            if (start + 3 * CHUNK <= j1)
                for (int64_t offset = 0; offset < bytes; offset += 64)
                    __builtin_prefetch(ahead + offset);
            /* and the same chunk of the next span (the next row of an item, or the next item's
             * first row or column range, which starts j1 - j0 elements on): the block maxima
             * read this span from memory in a short loop, but this pass is long and has no loads
             * of its own in flight, so without it each item waits on memory twice over (a
             * prefetch past the end of x is harmless: prefetches do not fault) */
            const char *next = (const char *)x + (first + (j1 - j0)) * (input_f32 ? 4 : 8);
            for (int64_t offset = 0; offset < bytes; offset += 64)
                __builtin_prefetch(next + offset);
        }
#endif
        element_counts fast = {0, 0, 0, 0, 0};
#if FL_SCALED_COPY == 2
        if (lanes && lanes_chunk_done(plan, lanes, input32, count, start, block_columns, blocks, first_block,
                                      index_base, output, first, counts))
            continue;
#endif
        if (plan->use_f32) {
            /* float32 x, S = 2^e: the kernel shifts x's exponent by e */
            uint32_t offsets[CHUNK], codes[CHUNK], slow[CHUNK];
            float scale[CHUNK], values[CHUNK];
            FILL_PER_ELEMENT(offsets[t] = block->exponent_offset; scale[t] = block->value32)
            plan->kernel32(count, (const uint32_t *)(const void *)input32, offsets, scale, k, codes, values, slow,
                           &fast, plan->stream_key, index_base);
            for (int t = 0; fast.slow && t < count; t++) {
                if (!slow[t])
                    continue;
                const double value = (double)scale[t], operand = value != value ? 0.0 : 1.0 / value;
                codes[t] = exact_element(plan, (double)input32[t], operand, index_base + (uint64_t)t,
                                         &counts->elements);
                if (want_values)
                    values[t] = (float)(decode_one(codes[t], &plan->element) * value);
            }
            if (want_values)
                memcpy((float *)output->values + first, values, (size_t)count * sizeof(float));
            else
                store_element_codes(plan, output, first, count, codes, NULL);
        } else if (plan->use_odd32) {
            /* the quotients rounded to float32 to odd, then the float32 kernel unscaled; a value
             * is the element's value (exact in float32) times S in float64 */
            double operand[CHUNK], scale[CHUNK], reciprocal[CHUNK], product_scale[CHUNK];
            uint32_t odd[CHUNK], codes[CHUNK], slow[CHUNK];
            float values[CHUNK];
            int short_scales = 1;
            if (divide) {
                FILL_PER_ELEMENT(operand[t] = block->operand; scale[t] = block->value;
                                 reciprocal[t] = block->reciprocal; product_scale[t] = block->product_scale;
                                 short_scales &= block->short_scale)
            } else {
                FILL_PER_ELEMENT(operand[t] = block->operand; scale[t] = block->value)
            }
            if (divide && short_scales && input_f32) {
                /* one pass: the quotient by the reciprocal, its rounding, the value times S */
                const reciprocal_input input = {input32, reciprocal, product_scale, scale,
                                                want_values ? (float *)output->values + first : NULL};
                plan->kernel_reciprocal32(count, &input, k, codes, slow, &fast);
            } else {
                if (divide && short_scales)
                    odd_quotients_f64_reciprocal(count, input64, reciprocal, product_scale, odd);
                else if (input_f32)
                    (divide ? odd_quotients_f32_divide : odd_quotients_f32_multiply)(count, input32, operand, odd);
                else
                    (divide ? odd_quotients_f64_divide : odd_quotients_f64_multiply)(count, input64, operand, odd);
                plan->kernel32(count, odd, plan->zero_offsets, plan->ones, k, codes, values, slow, &fast, 0, 0);
                if (want_values) {
                    if (input_f32) {
                        float *out = (float *)output->values + first;
                        for (int t = 0; t < count; t++)
                            out[t] = (float)((double)values[t] * scale[t]);
                    } else {
                        double *out = (double *)output->values + first;
                        for (int t = 0; t < count; t++)
                            out[t] = (double)values[t] * scale[t];
                    }
                }
            }
            for (int t = 0; fast.slow && t < count; t++) {
                if (!slow[t])
                    continue;
                const double xv = input_f32 ? (double)input32[t] : input64[t];
                codes[t] = exact_element(plan, xv, operand[t], index_base + (uint64_t)t, &counts->elements);
                if (want_values) {
                    const double value = decode_one(codes[t], &plan->element) * scale[t];
                    if (input_f32)
                        ((float *)output->values)[first + t] = (float)value;
                    else
                        ((double *)output->values)[first + t] = value;
                }
            }
            if (!want_values)
                store_element_codes(plan, output, first, count, codes, NULL);
        } else {
            double operand[CHUNK], scale[CHUNK], quotients[CHUNK], values[CHUNK];
            int64_t codes[CHUNK], slow[CHUNK];
            FILL_PER_ELEMENT(operand[t] = block->operand; scale[t] = block->value)
            if (plan->stochastic_divide) {
                /* one pass: quotient, decision, value (written to the output directly) */
                float *out = want_values ? (float *)output->values + first : NULL;
                plan->stochastic_divide(count, input32, operand, scale, k,
                                        (int64_t)(plan->element.emin - plan->element.man_bits) + 52, plan->stream_key,
                                        index_base, codes, out, slow, &fast);
                for (int t = 0; fast.slow && t < count; t++) {
                    if (!slow[t])
                        continue;
                    codes[t] = exact_element(plan, (double)input32[t], operand[t], index_base + (uint64_t)t,
                                             &counts->elements);
                    if (want_values)
                        out[t] = (float)(decode_one((uint32_t)codes[t], &plan->element) * scale[t]);
                }
                if (!want_values)
                    store_element_codes(plan, output, first, count, NULL, codes);
                counts->elements.inexact += fast.inexact;
                counts->elements.overflow += fast.overflow;
                counts->elements.underflow += fast.underflow;
                counts->elements.denormal += fast.denormal;
                continue;
            }
            if (input_f32)
                (divide ? quotients_f32_divide : quotients_f32_multiply)(count, input32, operand, quotients);
            else
                (divide ? quotients_f64_divide : quotients_f64_multiply)(count, input64, operand, quotients);
            if (plan->kernel64) {
                plan->kernel64(count, quotients, scale, k, codes, values, slow, &fast);
            } else if (plan->stochastic) {
                element_chunk_stochastic(count, quotients, scale, want_values, k, &plan->element, &plan->rounding,
                                         index_base, codes, values, slow, &fast);
            } else {
                for (int t = 0; t < count; t++)
                    slow[t] = 1;
                fast.slow = count;
            }
            for (int t = 0; fast.slow && t < count; t++) {
                if (!slow[t])
                    continue;
                const double xv = input_f32 ? (double)input32[t] : input64[t];
                codes[t] = exact_element(plan, xv, operand[t], index_base + (uint64_t)t, &counts->elements);
                if (want_values)
                    values[t] = decode_one((uint32_t)codes[t], &plan->element) * scale[t];
            }
            if (want_values) {
                if (input_f32) {
                    float *out = (float *)output->values + first;
                    for (int t = 0; t < count; t++)
                        out[t] = (float)values[t];
                } else {
                    memcpy((double *)output->values + first, values, (size_t)count * sizeof(double));
                }
            } else {
                store_element_codes(plan, output, first, count, NULL, codes);
            }
        }
        counts->elements.inexact += fast.inexact;
        counts->elements.overflow += fast.overflow;
        counts->elements.underflow += fast.underflow;
        counts->elements.denormal += fast.denormal;
    }
}

/* ---- block maxima ----------------------------------------------------------------------- */

/* acc[b - first_block] = max(acc, |x| bits) over columns [j0, j1) of a row, for each column
 * block b (block_columns wide) that the range touches.  Integer maxima of the magnitude bits:
 * they order like the magnitudes, and every NaN lies above +Inf. */
#define DEFINE_AMAX(NAME, TYPE, BITS, MAGNITUDE)                                                 \
    static void NAME(const TYPE *restrict row, int64_t j0, int64_t j1,          \
                                      int64_t block_columns, BITS *restrict acc, int64_t first_block) \
    {                                                                                            \
        const BITS *restrict bits = (const BITS *)(const void *)row;                             \
        LANES_AMAX_HOOK                                                                          \
        if (block_columns == 1) {                                                                \
            BITS *restrict target = acc + (j0 - first_block);                                    \
            const BITS *restrict source = bits + j0;                                             \
            for (int64_t j = 0; j < j1 - j0; j++) {                                              \
                const BITS magnitude = source[j] & MAGNITUDE;                                    \
                target[j] = magnitude > target[j] ? magnitude : target[j];                       \
            }                                                                                    \
            return;                                                                              \
        }                                                                                        \
        /* whole blocks of the common widths: a constant trip count, one vector per block */  \
        if (j0 % block_columns == 0 && (block_columns == 16 || block_columns == 32)) {           \
            const int64_t whole = (j1 - j0) / block_columns;                                     \
            BITS *restrict target = acc + (j0 / block_columns - first_block);                    \
            const BITS *restrict source = bits + j0;                                             \
            if (block_columns == 16)                                                             \
                for (int64_t b = 0; b < whole; b++) {                                            \
                    BITS largest = target[b];                                                    \
                    for (int i = 0; i < 16; i++) {                                               \
                        const BITS magnitude = source[16 * b + i] & MAGNITUDE;                   \
                        largest = magnitude > largest ? magnitude : largest;                     \
                    }                                                                            \
                    target[b] = largest;                                                         \
                }                                                                                \
            else                                                                                 \
                for (int64_t b = 0; b < whole; b++) {                                            \
                    BITS largest = target[b];                                                    \
                    for (int i = 0; i < 32; i++) {                                               \
                        const BITS magnitude = source[32 * b + i] & MAGNITUDE;                   \
                        largest = magnitude > largest ? magnitude : largest;                     \
                    }                                                                            \
                    target[b] = largest;                                                         \
                }                                                                                \
            j0 += whole * block_columns;                                                         \
        }                                                                                        \
        for (int64_t j = j0; j < j1;) {                                                          \
            const int64_t b = j / block_columns;                                                 \
            const int64_t block_end = (b + 1) * block_columns < j1 ? (b + 1) * block_columns : j1; \
            BITS largest = acc[b - first_block];                                                 \
            for (int64_t i = j; i < block_end; i++) {                                            \
                const BITS magnitude = bits[i] & MAGNITUDE;                                      \
                largest = magnitude > largest ? magnitude : largest;                             \
            }                                                                                    \
            acc[b - first_block] = largest;                                                      \
            j = block_end;                                                                       \
        }                                                                                        \
    }
/* the AVX-512 copy takes the whole blocks of float32 rows in its lanes (lanes_amax_f32) */
#if FL_SCALED_COPY == 2
#define LANES_AMAX_HOOK                                                                          \
    if (block_columns % 16 == 0 && j0 % block_columns == 0)                                      \
        j0 = lanes_amax_f32(bits, j0, j1, block_columns, acc, first_block);
#else
#define LANES_AMAX_HOOK
#endif
DEFINE_AMAX(amax_f32, float, uint32_t, 0x7FFFFFFFu)
#undef LANES_AMAX_HOOK
#define LANES_AMAX_HOOK
DEFINE_AMAX(amax_f64, double, uint64_t, 0x7FFFFFFFFFFFFFFFULL)

/* The largest magnitude bits of n values (the tensor's amax). */
static uint64_t largest_magnitude_f32(const uint32_t *restrict bits, int64_t n)
{
    uint32_t largest = 0;
    for (int64_t i = 0; i < n; i++) {
        const uint32_t magnitude = bits[i] & 0x7FFFFFFFu;
        largest = magnitude > largest ? magnitude : largest;
    }
    return largest;
}

static uint64_t largest_magnitude_f64(const uint64_t *restrict bits, int64_t n)
{
    uint64_t largest = 0;
    for (int64_t i = 0; i < n; i++) {
        const uint64_t magnitude = bits[i] & 0x7FFFFFFFFFFFFFFFULL;
        largest = magnitude > largest ? magnitude : largest;
    }
    return largest;
}

/* Block maxima are kept as uint64 magnitude bits of the input type. */
static void accumulate_amax(const scaled_plan *plan, const void *x, int64_t row_start, int64_t j0, int64_t j1,
                            int64_t block_columns, void *acc, int64_t first_block)
{
    if (plan->input_f32)
        amax_f32((const float *)x + row_start, j0, j1, block_columns, (uint32_t *)acc, first_block);
    else
        amax_f64((const double *)x + row_start, j0, j1, block_columns, (uint64_t *)acc, first_block);
}

/* The block maxima of rows [i0, i1) (of the matrix whose row 0 is row `first_row` of x), columns
 * [j0, j1): accumulate_amax row by row, or, in the AVX-512 copy, the lanes' tiles (one
 * horizontal reduction per tile instead of one per tile row). */
static void tile_amax(const scaled_plan *plan, const void *x, int64_t first_row, int64_t i0, int64_t i1,
                      int64_t columns, int64_t j0, int64_t j1, int64_t block_columns, void *acc, int64_t first_block)
{
#if FL_SCALED_COPY == 2
    if (plan->input_f32 && i1 - i0 > 1 && block_columns % 16 == 0 && j0 % block_columns == 0) {
        j0 = lanes_tile_amax_f32((const uint32_t *)x + (first_row + i0) * columns, i1 - i0, columns, j0, j1,
                                 block_columns, (uint32_t *)acc, first_block);
        if (j0 >= j1)
            return;
    }
#endif
    for (int64_t i = i0; i < i1; i++)
        accumulate_amax(plan, x, (first_row + i) * columns, j0, j1, block_columns, acc, first_block);
}

/* The scale codes of blocks[0 .. count) at index .. index + count (where scales are wanted): the
 * width's switch once per call, not once per block (perf: that loop, with the switch inside, was several per cent of an
 * in-cache mxfp8_e5m2 quantize, one scale per 32 elements) */
static void store_scales(const scaled_output *output, int64_t index, const block_scale *blocks, int64_t count)
{
    if (!output->scales)
        return;
    switch (output->scale_bytes) {
    case 1: {
        uint8_t *out = (uint8_t *)output->scales + index;
        for (int64_t b = 0; b < count; b++)
            out[b] = (uint8_t)blocks[b].code;
        break;
    }
    case 2: {
        uint16_t *out = (uint16_t *)output->scales + index;
        for (int64_t b = 0; b < count; b++)
            out[b] = (uint16_t)blocks[b].code;
        break;
    }
    default:
        for (int64_t b = 0; b < count; b++)
            fl_store_code(output->scales, output->scale_bytes, index + b, blocks[b].code);
        break;
    }
}

/* ---- the call ------------------------------------------------------------------------------ */

static int valid_bytes(int bytes) { return bytes == 1 || bytes == 2 || bytes == 4; }

/* Check the parameters and fill *plan (except the tensor scale). */
static int prepare_plan(const fl_scaled_format *format, const fl_rounding *rounding, int input_f32,
                        int want_values, int want_counts, scaled_plan *plan)
{
    int status;
    if ((status = fl_prepare_format(&format->element, &plan->element)) ||
        (status = fl_prepare_format(&format->scale, &plan->scale)))
        return status;
    if (format->has_tensor_scale && (status = fl_prepare_format(&format->tensor_scale, &plan->tensor)))
        return status;
    if ((status = fl_check_rounding(rounding)))
        return status;
    if (format->rule < FL_SCALE_FLOOR || format->rule > FL_SCALE_AMAX ||
        (format->has_tensor_scale && format->rule != FL_SCALE_AMAX) ||
        format->scale_lowest_exponent > format->scale_highest_exponent ||
        (int64_t)format->scale_highest_exponent - format->scale_lowest_exponent > MAX_POWER_RANGE ||
        format->scale_lowest_exponent < -1100 || format->scale_highest_exponent > 1100 ||
        !(format->element_max > 0) || !(format->scale_max > 0) ||
        (format->has_tensor_scale && !(format->tensor_scale_max > 0)) ||
        (format->rule != FL_SCALE_AMAX && !format->power_of_two) ||
        !plan->scale.has_nan || (format->has_tensor_scale && !plan->tensor.has_nan) ||
        format->element_man_bits < 0 || format->element_man_bits > format->element.man_bits ||
        format->element_positive_max_code < 0 || format->element_positive_max_code > plan->element.max_code ||
        format->element_negative_max_code < 0 || format->element_negative_max_code > plan->element.max_code ||
        format->element_integer < 0 || format->element_integer > 32 ||
        (!format->element_integer && (format->element_positive_max_code != plan->element.max_code ||
                                      format->element_negative_max_code != plan->element.max_code)))
        return FL_ERROR_SCALED_FORMAT;
    plan->rounding = *rounding;
    plan->rounding.saturate = FL_SATURATE_ON;
    memset(&plan->scale_rounding, 0, sizeof plan->scale_rounding);
    plan->scale_rounding.mode = FL_ROUND_NEAREST_EVEN;
    plan->scale_rounding.saturate = FL_SATURATE_ON;
    plan->input_f32 = input_f32;
    plan->want_values = want_values;
    plan->rule = format->rule;
    plan->power_of_two = format->power_of_two != 0;
    plan->has_tensor_scale = format->has_tensor_scale != 0;
    plan->element_emax = format->element_emax;
    plan->element_man_bits = format->element_man_bits;
    plan->element_max = format->element_max;
    const double max_mantissa = frexp(format->element_max, &plan->max_exponent);
    plan->max_fraction = bits_of_double(2.0 * max_mantissa) & 0x000FFFFFFFFFFFFFLL;
    plan->even_carry_fraction = format->element_man_bits > 51 ? 0x000FFFFFFFFFFFFFLL + 1
                                : ((int64_t)1 << 52) - ((int64_t)1 << (51 - format->element_man_bits));
    plan->lowest = format->scale_lowest_exponent;
    plan->highest = format->scale_highest_exponent;
    plan->smallest_scale = ldexp(1.0, plan->lowest);
    plan->largest_scale = format->scale_max;
    local_stats ignored = no_stats;
    plan->scale_nan_code = encode_one((double)NAN, &plan->scale, &plan->scale_rounding, 0, &ignored);
    plan->scale_smallest_code = encode_one(plan->smallest_scale, &plan->scale, &plan->scale_rounding, 0, &ignored);
    if (plan->rule != FL_SCALE_AMAX)
        for (int e = plan->lowest; e <= plan->highest; e++)
            plan->power_codes[e - plan->lowest] =
                encode_one(ldexp(1.0, e), &plan->scale, &plan->scale_rounding, 0, &ignored);
    plan->tensor_value = 1.0;
    plan->divisor = plan->element_max;
    for (int t = 0; t < CHUNK; t++) {
        plan->zero_offsets[t] = 0;
        plan->ones[t] = 1.0f;
    }
    plan->scale_kernel = NULL;
    if (prepare_element_constants(&plan->scale, &plan->scale_constants))
        plan->scale_kernel = kernels_f64[0][1][FL_ROUND_NEAREST_EVEN];
    plan->use_f32 = 0;
    plan->use_odd32 = 0;
    plan->kernel32 = NULL;
    plan->kernel_reciprocal32 = NULL;
    plan->stochastic_divide = NULL;
    plan->stream_key = 0;
    plan->kernel64 = NULL;
    plan->stochastic = 0;
    plan->integer = format->element_integer != 0;
    plan->integer_mask = plan->integer ? (uint32_t)(((uint64_t)1 << format->element_integer) - 1) : 0;
    const int fast_element = prepare_element_constants(&plan->element, &plan->constants);
    if (plan->integer) {  /* a zero result is +0: no sign on the code, nor on the value */
        plan->constants.zero_sign_bit = 0;
        plan->constants.has_negative_zero = 0;
    }
    /* the limits by sign, read by exact_element too (the constants are zero without a kernel) */
    plan->constants.positive_max_code = format->element_positive_max_code;
    plan->constants.negative_max_code = format->element_negative_max_code;
    plan->constants.positive_max_code32 = (int32_t)format->element_positive_max_code;
    plan->constants.negative_max_code32 = (int32_t)format->element_negative_max_code;
    if (fast_element) {
        /* float32 input and scales 2^e, |e| <= 127: the float32 kernel on x's own bits (exact
         * stochastic rounding too: its decisions need q's remainder only, exact there) */
        const int f32_scales = input_f32 && plan->power_of_two && plan->constants.has_f32 && plan->lowest >= -127 &&
                               plan->highest <= 127;
        if (rounding->mode == FL_ROUND_STOCHASTIC && rounding->sr_bits == 0 && f32_scales) {
            plan->use_f32 = 1;
            plan->kernel32 = stochastic_kernels_f32[want_counts][want_values];
            plan->stream_key = fl_stream_key_inline(rounding->seed, 0);
        } else if (rounding->mode == FL_ROUND_STOCHASTIC) {
            plan->stochastic = 1;
            if (rounding->sr_bits == 0 && input_f32 && !plan->power_of_two) {
                plan->stochastic_divide = stochastic_divide_kernels[want_counts][want_values];
                plan->stream_key = fl_stream_key_inline(rounding->seed, 0);
            }
        } else {
            plan->kernel64 = kernels_f64[want_counts][want_values][rounding->mode];
            plan->kernel32 = kernels_f32[want_counts][want_values][rounding->mode];
            plan->kernel_reciprocal32 = kernels_reciprocal[want_counts][want_values][rounding->mode];
            plan->use_f32 = f32_scales;
            /* otherwise, where the element allows: on the quotients rounded to float32 to odd */
            plan->use_odd32 = !plan->use_f32 && plan->constants.has_f32;
        }
    }
    plan->lanes_path = 0;
    plan->want_counts = want_counts;
#if FL_SCALED_COPY == 2
    if (plan->use_f32)
        plan->lanes_path = LANES_POWER;
    /* integer elements with a non-power-of-two scale stay on the C kernels: the reciprocal and
     * divide lanes do not write two's complement codes (tests/test_integers.py caught it) */
    else if (plan->use_odd32 && !plan->power_of_two && input_f32 && !plan->integer)
        plan->lanes_path = LANES_RECIPROCAL;
    else if (plan->stochastic_divide && !plan->integer)
        plan->lanes_path = LANES_DIVIDE;
#endif
    return FL_OK;
}

/* The tensor scale T = amax_tensor / (element_max * scale_max) to nearest-even into its format
 * (fmtlab.scaled._tensor_scale): its code, and plan->tensor_value and divisor. */
static uint32_t prepare_tensor_scale(scaled_plan *plan, const fl_scaled_format *format, double amax_tensor,
                                     int64_t *clamped)
{
    *clamped = 0;
    local_stats ignored = no_stats;
    if (amax_tensor != amax_tensor) {
        plan->tensor_value = (double)NAN;
        plan->divisor = (double)NAN;
        return encode_one((double)NAN, &plan->tensor, &plan->scale_rounding, 0, &ignored);
    }
    const double smallest = ldexp(1.0, format->tensor_scale_lowest_exponent);
    const uint32_t smallest_code = encode_one(smallest, &plan->tensor, &plan->scale_rounding, 0, &ignored);
    const double proxy = amax_quotient_proxy(amax_tensor, format->element_max * format->scale_max);
    const uint32_t code = round_scale(&plan->tensor, &plan->scale_rounding, proxy, smallest_code);
    *clamped = proxy > format->tensor_scale_max || (0 < proxy && proxy < smallest) || amax_tensor == (double)INFINITY;
    plan->tensor_value = decode_one(code, &plan->tensor);
    plan->divisor = plan->element_max * plan->tensor_value;
    return code;
}

/* One conversion of x; piece is NULL for a whole tensor, else what fl_scaled_piece says of x. */
static int scaled_run(const void *x, int input_f32, const fl_block_layout *layout, const fl_scaled_format *format,
                      const fl_rounding *rounding, const fl_scaled_piece *piece, const scaled_output *output,
                      uint32_t *tensor_scale_code, fl_scaled_stats *stats)
{
    const int64_t outer = layout->outer, rows = layout->rows, columns = layout->columns;
    const int64_t block_rows = layout->block_rows, block_columns = layout->block_columns;
    if (outer < 0 || rows < 0 || columns < 0 || block_rows < 1 || block_columns < 1)
        return FL_ERROR_SCALED_FORMAT;
    if ((!output->values && !valid_bytes(output->code_bytes)) || (output->scales && !valid_bytes(output->scale_bytes)))
        return FL_ERROR_CODE_BYTES;
    if (piece && (piece->index_offset < 0 || (piece->tensor_amax_is_block && !piece->has_tensor_amax) ||
                  (piece->has_tensor_amax && piece->tensor_amax < 0)))
        return FL_ERROR_ARGUMENT;
    scaled_plan *plan = malloc(sizeof *plan);
    if (!plan)
        return FL_ERROR_OUT_OF_MEMORY;
    int status = prepare_plan(format, rounding, input_f32, output->values != NULL, stats != NULL, plan);
    if (status) {
        free(plan);
        return status;
    }
    plan->index_offset = piece ? (uint64_t)piece->index_offset : 0;
    const int64_t row_blocks = (rows + block_rows - 1) / block_rows;
    const int64_t column_blocks = (columns + block_columns - 1) / block_columns;
    const int64_t units = outer * row_blocks;
    /* A piece of a tensor of one block (block "tensor"): that block's amax is the tensor's, given,
     * as the magnitude bits of x's type (exact: the amax is one of the tensor's values). */
    uint32_t given_bits32 = 0;
    uint64_t given_bits64 = 0;
    const void *given_block = NULL;
    if (piece && piece->tensor_amax_is_block) {
        if (units * column_blocks != 1) {
            free(plan);
            return FL_ERROR_SCALED_FORMAT;
        }
        if (input_f32) {
            const float magnitude = (float)piece->tensor_amax;
            memcpy(&given_bits32, &magnitude, sizeof given_bits32);
            given_block = &given_bits32;
        } else {
            given_bits64 = (uint64_t)bits_of_double(piece->tensor_amax);
            given_block = &given_bits64;
        }
    }
    const int64_t total = outer * rows * columns;
    int threads = total >= PARALLEL_THRESHOLD ? fl_max_threads() : 1;
    if (threads < 1)
        threads = 1;
    thread_counts counts;
    memset(&counts, 0, sizeof counts);
    int64_t tensor_clamped = 0;
    int failed = 0;

    const size_t amax_bytes = input_f32 ? sizeof(uint32_t) : sizeof(uint64_t);
    /* items: a block row, or a range of its column blocks when there are few block rows */
    int64_t range = column_blocks;
    const int64_t wanted_items = (int64_t)threads * ITEMS_PER_THREAD;
    if (threads > 1 && units < wanted_items && column_blocks > 1) {
        const int64_t per_unit = (wanted_items + units - 1) / units;
        range = (column_blocks + per_unit - 1) / per_unit;
        if (range < 1)
            range = 1;
    }
    /* and at most ITEM_ELEMENTS elements (at least one block): an item's elements stay in
     * cache between its amax pass and its element pass */
    const int64_t block_elements = block_columns * (rows < block_rows ? rows : block_rows);
    if (range > 1 && range * block_elements > ITEM_ELEMENTS)
        range = ITEM_ELEMENTS / block_elements > 1 ? ITEM_ELEMENTS / block_elements : 1;
    const int64_t ranges = column_blocks ? (column_blocks + range - 1) / range : 0;
    const int64_t items = units * ranges;

    /* With a tensor scale, the block maxima are needed before any block scale: in one pass over x
     * they are stored (when every thread works on whole items), their maximum is the tensor's
     * amax, and the element pass reads them back; otherwise the tensor's amax is a pass of its own. */
    const int whole_items = threads == 1 || items >= threads;
    char *stored = NULL;
    if (plan->has_tensor_scale) {
        uint64_t largest = 0;
        const int64_t block_count = units * column_blocks;
        if (whole_items && block_count > 0)
            stored = calloc((size_t)block_count, amax_bytes);
        if (stored) {
            _Pragma("omp parallel for schedule(static) num_threads(threads) if(threads > 1)")
            for (int64_t item = 0; item < items; item++) {
                const int64_t unit = item / ranges, first_block = (item % ranges) * range;
                const int64_t last_block = first_block + range < column_blocks ? first_block + range : column_blocks;
                const int64_t l = unit / row_blocks, i0 = (unit % row_blocks) * block_rows;
                const int64_t i1 = i0 + block_rows < rows ? i0 + block_rows : rows;
                const int64_t j0 = first_block * block_columns;
                const int64_t j1 = last_block * block_columns < columns ? last_block * block_columns : columns;
                char *acc = stored + (size_t)(unit * column_blocks + first_block) * amax_bytes;
                tile_amax(plan, x, l * rows, i0, i1, columns, j0, j1, block_columns, acc, first_block);
            }
            largest = input_f32 ? largest_magnitude_f32((const uint32_t *)(const void *)stored, block_count)
                                : largest_magnitude_f64((const uint64_t *)(const void *)stored, block_count);
        } else {
            /* the largest magnitude bits of all of x, a slice per thread */
            const int64_t slices = threads > 1 ? (int64_t)threads * 4 : 1;
            _Pragma("omp parallel for schedule(static) num_threads(threads) reduction(max:largest) if(threads > 1)")
            for (int64_t slice = 0; slice < slices; slice++) {
                const int64_t begin = total / slices * slice + (slice < total % slices ? slice : total % slices);
                const int64_t end = begin + total / slices + (slice < total % slices);
                const uint64_t part = input_f32 ? largest_magnitude_f32((const uint32_t *)x + begin, end - begin)
                                                : largest_magnitude_f64((const uint64_t *)x + begin, end - begin);
                largest = part > largest ? part : largest;
            }
        }
        fl_floating_point_state environment;
        fl_enter_default_floating_point(&environment);
        int kind;
        double amax_tensor = amax_value(plan, largest, &kind);
        if (kind == BLOCK_NAN)
            amax_tensor = (double)NAN;
        if (piece && piece->has_tensor_amax)
            amax_tensor = piece->tensor_amax;  /* a piece: the whole tensor's amax, not its own */
        const uint32_t code = prepare_tensor_scale(plan, format, amax_tensor, &tensor_clamped);
        fl_leave_default_floating_point(&environment);
        if (tensor_scale_code)
            *tensor_scale_code = code;
    }

    if (whole_items) {
        _Pragma("omp parallel num_threads(threads) if(threads > 1)")
        {
            fl_floating_point_state environment;
            fl_enter_default_floating_point(&environment);
            thread_counts local;
            memset(&local, 0, sizeof local);
            void *acc = malloc((size_t)(range ? range : 1) * amax_bytes);
            block_scale *blocks = malloc((size_t)(range ? range : 1) * sizeof *blocks);
            if (!acc || !blocks) {
                _Pragma("omp atomic write")
                failed = 1;
            }
            _Pragma("omp for schedule(static)")
            for (int64_t item = 0; item < items; item++) {
                if (!acc || !blocks)
                    continue;
                const int64_t unit = item / ranges, first_block = (item % ranges) * range;
                const int64_t last_block = first_block + range < column_blocks ? first_block + range : column_blocks;
                const int64_t l = unit / row_blocks, row_block = unit % row_blocks;
                const int64_t i0 = row_block * block_rows;
                const int64_t i1 = i0 + block_rows < rows ? i0 + block_rows : rows;
                const int64_t j0 = first_block * block_columns;
                const int64_t j1 = last_block * block_columns < columns ? last_block * block_columns : columns;
                const void *maxima = acc;
                if (stored) {
                    maxima = stored + (size_t)(unit * column_blocks + first_block) * amax_bytes;
                } else {
                    memset(acc, 0, (size_t)(last_block - first_block) * amax_bytes);
                    tile_amax(plan, x, l * rows, i0, i1, columns, j0, j1, block_columns, acc, first_block);
                }
                if (plan->use_f32 && plan->rule != FL_SCALE_AMAX && !given_block)
                    power_scales_f32(plan, (const uint32_t *)maxima, last_block - first_block, blocks, &local.blocks);
                else
                    scales_of_blocks(plan, given_block ? given_block : maxima, last_block - first_block, blocks,
                                     &local.blocks);
                store_scales(output, unit * column_blocks + first_block, blocks, last_block - first_block);
                for (int64_t i = i0; i < i1; i++)
                    encode_span(plan, x, (l * rows + i) * columns, j0, j1, block_columns, blocks, first_block,
                                output, &local);
            }
            free(acc);
            free(blocks);
            fl_leave_default_floating_point(&environment);
            _Pragma("omp critical(fl_scaled_counts)")
            add_counts(&counts, &local);
        }
    } else {
        /* Few items: every thread works on each block row.  Pieces are (row, range of at most
         * PIECE_COLUMNS columns); each thread keeps its own maxima, which are then combined. */
        const int64_t column_pieces = (columns + PIECE_COLUMNS - 1) / PIECE_COLUMNS;
        void *partial = calloc((size_t)threads * (size_t)column_blocks, amax_bytes);
        block_scale *blocks = malloc((size_t)column_blocks * sizeof *blocks);
        if (!partial || !blocks)
            failed = 1;
        for (int64_t unit = 0; unit < units && !failed; unit++) {
            const int64_t l = unit / row_blocks, row_block = unit % row_blocks;
            const int64_t i0 = row_block * block_rows;
            const int64_t i1 = i0 + block_rows < rows ? i0 + block_rows : rows;
            const int64_t pieces = (i1 - i0) * column_pieces;
            memset(partial, 0, (size_t)threads * (size_t)column_blocks * amax_bytes);
            _Pragma("omp parallel num_threads(threads)")
            {
                fl_floating_point_state environment;
                fl_enter_default_floating_point(&environment);
                thread_counts local;
                memset(&local, 0, sizeof local);
                int thread = 0;
#ifdef _OPENMP
                thread = omp_get_thread_num();
#endif
                char *mine = (char *)partial + (size_t)thread * (size_t)column_blocks * amax_bytes;
                _Pragma("omp for schedule(static)")
                for (int64_t piece = 0; piece < pieces; piece++) {
                    const int64_t i = i0 + piece / column_pieces, j0 = (piece % column_pieces) * PIECE_COLUMNS;
                    const int64_t j1 = j0 + PIECE_COLUMNS < columns ? j0 + PIECE_COLUMNS : columns;
                    accumulate_amax(plan, x, (l * rows + i) * columns, j0, j1, block_columns, mine, 0);
                }
                /* the maxima combined into thread 0's row: each block is read and written by one
                 * iteration only */
                _Pragma("omp for schedule(static)")
                for (int64_t b = 0; b < column_blocks; b++) {
                    uint64_t largest = 0;
                    for (int t = 0; t < threads; t++) {
                        const char *theirs = (const char *)partial + (size_t)t * (size_t)column_blocks * amax_bytes;
                        const uint64_t candidate = load_amax(plan, theirs, b);
                        largest = candidate > largest ? candidate : largest;
                    }
                    if (input_f32)
                        ((uint32_t *)partial)[b] = (uint32_t)largest;
                    else
                        ((uint64_t *)partial)[b] = largest;
                }
                const int64_t block_chunks = (column_blocks + CHUNK - 1) / CHUNK;
                _Pragma("omp for schedule(static)")
                for (int64_t chunk = 0; chunk < block_chunks; chunk++) {
                    const int64_t b0 = chunk * CHUNK, b1 = b0 + CHUNK < column_blocks ? b0 + CHUNK : column_blocks;
                    scales_of_blocks(plan, given_block ? given_block : (const char *)partial + (size_t)b0 * amax_bytes,
                                     b1 - b0, blocks + b0,
                                     &local.blocks);
                    store_scales(output, unit * column_blocks + b0, blocks + b0, b1 - b0);
                }
                _Pragma("omp for schedule(static)")
                for (int64_t piece = 0; piece < pieces; piece++) {
                    const int64_t i = i0 + piece / column_pieces, j0 = (piece % column_pieces) * PIECE_COLUMNS;
                    const int64_t j1 = j0 + PIECE_COLUMNS < columns ? j0 + PIECE_COLUMNS : columns;
                    encode_span(plan, x, (l * rows + i) * columns, j0, j1, block_columns, blocks, 0, output, &local);
                }
                fl_leave_default_floating_point(&environment);
                _Pragma("omp critical(fl_scaled_counts)")
                add_counts(&counts, &local);
            }
        }
        free(partial);
        free(blocks);
    }
    free(stored);
    free(plan);
    if (failed)
        return FL_ERROR_OUT_OF_MEMORY;
    if (stats) {
        stats->elements.invalid = counts.elements.invalid;
        stats->elements.overflow = counts.elements.overflow;
        stats->elements.underflow = counts.elements.underflow;
        stats->elements.denormal = counts.elements.denormal;
        stats->elements.inexact = counts.elements.inexact;
        stats->blocks = counts.blocks.blocks;
        stats->zero_blocks = counts.blocks.zero_blocks;
        stats->nan_blocks = counts.blocks.nan_blocks;
        stats->scale_underflow = counts.blocks.scale_underflow;
        stats->scale_overflow = counts.blocks.scale_overflow;
        stats->tensor_scale_clamped = tensor_clamped;
    }
    return FL_OK;
}

/* The entry point of a SIMD copy, and the portable copy's choice among them. */
typedef int (*scaled_run_function)(const void *x, int input_f32, const fl_block_layout *layout,
                                   const fl_scaled_format *format, const fl_rounding *rounding,
                                   const fl_scaled_piece *piece, const scaled_output *output,
                                   uint32_t *tensor_scale_code, fl_scaled_stats *stats);
#if FL_SCALED_X86
int fl_scaled_run_avx2(const void *x, int input_f32, const fl_block_layout *layout, const fl_scaled_format *format,
                       const fl_rounding *rounding, const fl_scaled_piece *piece, const scaled_output *output,
                       uint32_t *tensor_scale_code, fl_scaled_stats *stats);
int fl_scaled_run_avx512(const void *x, int input_f32, const fl_block_layout *layout, const fl_scaled_format *format,
                         const fl_rounding *rounding, const fl_scaled_piece *piece, const scaled_output *output,
                         uint32_t *tensor_scale_code, fl_scaled_stats *stats);
#endif

#if FL_SCALED_COPY == 1
int fl_scaled_run_avx2(const void *x, int input_f32, const fl_block_layout *layout, const fl_scaled_format *format,
                       const fl_rounding *rounding, const fl_scaled_piece *piece, const scaled_output *output,
                       uint32_t *tensor_scale_code, fl_scaled_stats *stats)
{
    return scaled_run(x, input_f32, layout, format, rounding, piece, output, tensor_scale_code, stats);
}
#elif FL_SCALED_COPY == 2
int fl_scaled_run_avx512(const void *x, int input_f32, const fl_block_layout *layout, const fl_scaled_format *format,
                         const fl_rounding *rounding, const fl_scaled_piece *piece, const scaled_output *output,
                         uint32_t *tensor_scale_code, fl_scaled_stats *stats)
{
    return scaled_run(x, input_f32, layout, format, rounding, piece, output, tensor_scale_code, stats);
}
#else
/* The copy of the library's SIMD level (fl_codec_simd_level: 2 AVX-512, 1 AVX2, 0 portable;
 * FMTLAB_SIMD lowers it), fixed when the library loads. */
static scaled_run_function chosen_copy(void)
{
#if FL_SCALED_X86
    const int level = fl_codec_simd_level();
    if (level >= 2)
        return fl_scaled_run_avx512;
    if (level == 1)
        return fl_scaled_run_avx2;
#endif
    return scaled_run;
}

int fl_scaled_encode_f32(const float *x, const fl_block_layout *layout, const fl_scaled_format *format,
                         const fl_rounding *rounding, void *codes, int code_bytes, void *scales,
                         int scale_bytes, uint32_t *tensor_scale_code, fl_scaled_stats *stats)
{
    scaled_output output = {codes, code_bytes, NULL, scales, scale_bytes};
    return chosen_copy()(x, 1, layout, format, rounding, NULL, &output, tensor_scale_code, stats);
}

int fl_scaled_encode_f64(const double *x, const fl_block_layout *layout, const fl_scaled_format *format,
                         const fl_rounding *rounding, void *codes, int code_bytes, void *scales,
                         int scale_bytes, uint32_t *tensor_scale_code, fl_scaled_stats *stats)
{
    scaled_output output = {codes, code_bytes, NULL, scales, scale_bytes};
    return chosen_copy()(x, 0, layout, format, rounding, NULL, &output, tensor_scale_code, stats);
}

int fl_scaled_quantize_f32(const float *x, const fl_block_layout *layout, const fl_scaled_format *format,
                           const fl_rounding *rounding, float *out, void *scales, int scale_bytes,
                           uint32_t *tensor_scale_code, fl_scaled_stats *stats)
{
    scaled_output output = {NULL, 4, out, scales, scale_bytes};
    return chosen_copy()(x, 1, layout, format, rounding, NULL, &output, tensor_scale_code, stats);
}

int fl_scaled_quantize_f64(const double *x, const fl_block_layout *layout, const fl_scaled_format *format,
                           const fl_rounding *rounding, double *out, void *scales, int scale_bytes,
                           uint32_t *tensor_scale_code, fl_scaled_stats *stats)
{
    scaled_output output = {NULL, 4, out, scales, scale_bytes};
    return chosen_copy()(x, 0, layout, format, rounding, NULL, &output, tensor_scale_code, stats);
}

int fl_scaled_encode_piece_f32(const float *x, const fl_block_layout *layout, const fl_scaled_format *format,
                               const fl_rounding *rounding, const fl_scaled_piece *piece, void *codes, int code_bytes,
                               void *scales, int scale_bytes, uint32_t *tensor_scale_code, fl_scaled_stats *stats)
{
    if (!piece)
        return FL_ERROR_ARGUMENT;
    scaled_output output = {codes, code_bytes, NULL, scales, scale_bytes};
    return chosen_copy()(x, 1, layout, format, rounding, piece, &output, tensor_scale_code, stats);
}

int fl_scaled_encode_piece_f64(const double *x, const fl_block_layout *layout, const fl_scaled_format *format,
                               const fl_rounding *rounding, const fl_scaled_piece *piece, void *codes, int code_bytes,
                               void *scales, int scale_bytes, uint32_t *tensor_scale_code, fl_scaled_stats *stats)
{
    if (!piece)
        return FL_ERROR_ARGUMENT;
    scaled_output output = {codes, code_bytes, NULL, scales, scale_bytes};
    return chosen_copy()(x, 0, layout, format, rounding, piece, &output, tensor_scale_code, stats);
}
int fl_scaled_encode_piece_to_sink(const void *x, int input_f32, const fl_block_layout *layout,
                                   const fl_scaled_format *format, const fl_rounding *rounding,
                                   const fl_scaled_piece *piece, void *scales, int scale_bytes,
                                   uint32_t *tensor_scale_code, fl_scaled_code_sink sink, void *context)
{
    if (!piece || !sink)
        return FL_ERROR_ARGUMENT;
    scaled_output output = {NULL, 4, NULL, scales, scale_bytes, sink, context};
    return chosen_copy()(x, input_f32, layout, format, rounding, piece, &output, tensor_scale_code, NULL);
}
#endif /* FL_SCALED_COPY */
