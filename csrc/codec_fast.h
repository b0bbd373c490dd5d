/*
 * codec_fast.h - the float32 fast path of the codec (codec_fast.c), internal to the C core.
 *
 * Contract: fl_fast_f32_block converts a block of float32 values, writing for every element
 * it does not flag the same code (or float32 value) as round.h's encode_one (then
 * decode_one) and counting the same exceptions for it; it flags the others in is_slow and
 * leaves them to the caller, who redoes them with encode_one.  Call it inside IEEE 754's
 * default floating-point environment (fl_enter_default_floating_point), like encode_one.
 */
#ifndef FMTLAB_CODEC_FAST_H
#define FMTLAB_CODEC_FAST_H

#include "round.h"

/* Elements per block: the most fl_fast_f32_block takes in one call. */
#define FAST_BLOCK 512

/* Output kinds of the fast blocks: codes of 1, 2 or 4 bytes, or float32 values. */
enum { OUT_CODES_1 = 1, OUT_CODES_2 = 2, OUT_CODES_4 = 4, OUT_VALUES_F32 = 5 };

typedef struct fast_block_result {
    int32_t slow;       /* elements flagged for encode_one */
    int32_t inexact;    /* counts among the others */
    int32_t overflow;
    int32_t underflow;
    int32_t denormal;
} fast_block_result;

typedef struct prepared_fast_f32 prepared_fast_f32;

/*
 * Stochastic rounding with sr_bits = N >= 1 on the fast path, nu = remainder / 2^shift
 * (shift = 23 - m): round.h's sr_reduced_fraction in 32-bit lanes, with every shift and mask
 * fixed per call so that the loop has no branch.  f = floor(nu 2^N) = (remainder << up) >> down;
 * the half bit is (remainder >> half_shift) & half_mask and the sticky bits remainder & sticky_mask
 * (both masks 0 when nu has at most N bits); away iff R > full_mask - k or k > full_mask.
 */
typedef struct fast_stochastic_bits {
    int up, down, half_shift;
    uint32_t half_mask, sticky_mask;
    uint32_t full_mask;       /* 2^N - 1 */
    sr_rule_bits rule;
    /* sr_rule = truncate with N <= shift (d = shift - N): k + R >= 2^N with k = remainder >> d is
     * (R << d) + remainder >= 2^shift, the carry into lo_code of magnitude + (W & truncate_high)
     * for W the word's top shift bits, truncate_low = 2^d - 1, truncate_high = 2^shift - 1 -
     * truncate_low: code = ((magnitude + (W & truncate_high)) >> shift) - rebias, the deterministic
     * modes' form (equivalently remainder > (W ^ truncate_high) | truncate_low, one step more) */
    uint32_t truncate_low, truncate_high;
    /* 2^(N + 1) for the kernels' stochastic subnormal results, computed here once per call: an
     * ldexpf in the kernel ran per 512-block and made it spill its constants around the call */
    float twice_scale;
} fast_stochastic_bits;

/* One compiled kernel: a (rounding mode, output kind) pair, lean or full (codec_fast.c). */
typedef fast_block_result (*fast_block_kernel)(const uint32_t *restrict bits, int count,
                                               void *restrict out, uint8_t *restrict is_slow,
                                               const prepared_fast_f32 *fast, uint64_t first_index);

/* The constants of one call's fast path, derived by fl_prepare_fast_f32. */
struct prepared_fast_f32 {
    /* float32 inputs whose bits lie in [lo, hi] are normal in both float32 and the format,
     * so rounding is an integer add and shift on the bits */
    int shift;                /* 23 - man_bits, 1..23 */
    int64_t rebias;           /* float32 (E, M) code minus format code: (127 - bias) << m */
    uint32_t rebias_bits;     /* rebias as the lanes use it: an int32, two's complement */
    uint32_t lo, hi;          /* hi <= FLT_MAX, and lower where codes would pass INT32_MAX */
    uint32_t no_overflow_hi;  /* float32 bits of max (at most hi): inputs up to it cannot overflow */
    int always_full;          /* max < lo: every input of the range overflows */
    int lean_limit;           /* a lean block leaving more elements than this is redone by the full kernel */
    uint32_t sign_bit;        /* the format's; 0 for unsigned formats */
    int32_t max_code_lanes;   /* min(max_code, INT32_MAX): what the 32-bit lanes compare with */
    uint32_t zero_sign_bit;   /* the sign bit when the format has -0, else 0 */
    /* float32 inputs whose magnitude bits are below these round to zero in the nearest
     * modes / toward zero (0: no such shortcut) */
    uint32_t zero_below_nearest, zero_below_toward_zero;
    /* ieee subnormal results: |x| * 2^(m - emin) = code + fraction, scaled in two exact
     * float32 steps (one factor may not be representable); 0 = not on the fast path */
    int subnormals;
    float subnormal_scale_1, subnormal_scale_2;
    /* 2^(emin - m + 23), where subnormals is set: for 0 <= |x| < 2^emin the float32 sum
     * |x| + magic lies in [magic, 2 magic), whose spacing is the format's subnormal step
     * 2^(emin - m), so the sum is |x| rounded to that grid, ties to even (the environment's
     * rounding); its bits minus magic's are the code, the sum minus magic is the value */
    float subnormal_magic;
    int binade_magic;         /* nearest-even may round in float32 on the binade (codec_avx512.c) */
    uint32_t magic_hi;        /* ... for inputs whose bits are at most this */
    int sr_magic;             /* ... and exact stochastic rounding too */
    /* the rounding */
    int32_t saturating;       /* every overflow gives max (saturate=True, SatFinite, SatPropagate, ...) */
    uint64_t seed;
    int sr_bits;
    fast_stochastic_bits sr;  /* sr_bits >= 1: how nu is brought to sr_bits bits */
    /* the kernels compiled for this call's rounding mode and output kind */
    fast_block_kernel lean, full;
    /* AVX-512 nearest-even (and exact stochastic rounding) with binade_magic: the kernel for blocks with many subnormal results
     * (fl_fast_f32_block; NULL elsewhere) */
    fast_block_kernel magic;
};

/*
 * codec_avx512.c: the AVX-512 intrinsics kernel of (rounding mode, sr_bits, sr_rule, shift = 23 - m,
 * output kind), with the full kernel's semantics and stochastic subnormal results in the lanes;
 * NULL where it is not compiled (not x86-64 GCC/clang).  Run it only when fl_codec_simd_level()
 * is 2.
 */
fast_block_kernel fl_avx512_block_kernel(int mode, int sr_bits, int sr_rule, int shift, int out_kind, int binade_magic);

/*
 * codec_avx2.c: the same kernel set written with AVX2 intrinsics (8 lanes, the same semantics);
 * NULL where it is not compiled.  Run it only when fl_codec_simd_level() is 1.
 */
fast_block_kernel fl_avx2_block_kernel(int mode, int sr_bits, int sr_rule, int shift, int out_kind);

/*
 * Derive *fast for encoding to out_kind (OUT_*) with *rounding, whose mode is valid.
 * Returns 1, or 0 when the format has no fast path (every element goes to encode_one).
 */
int fl_prepare_fast_f32(const prepared_format *p, const fl_rounding *rounding, int out_kind,
                        prepared_fast_f32 *fast);

/*
 * Convert count <= FAST_BLOCK float32 values, given as bits; out points to the block's first
 * output element and first_index is the global index of bits[0] (the stochastic key).
 * *full_hint is the caller's per-thread state of the kernel choice (start it at 0); it changes
 * which kernel runs, never a result.
 */
fast_block_result fl_fast_f32_block(const prepared_fast_f32 *fast, const uint32_t *bits, int count,
                                    void *out, uint8_t *is_slow, uint64_t first_index, int *full_hint);

#endif
