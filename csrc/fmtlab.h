/*
 * fmtlab.h - the one public header of fmtlab's C core.
 *
 * It declares the parameter structs (number format, rounding, exception counts,
 * matrix multiply-accumulate model) and every entry point.  The cffi build
 * (build_native.py) reads the part between the two CDEF markers below, so that
 * part must stay in the subset of C that cffi's cdef understands: no #include,
 * no #if, no macros with arguments.
 *
 * The C core, one concern per file:
 *   fmtlab.h          this interface; after CDEF END, what the .c files share (the
 *                     generator, the floating-point environment)
 *   round.h/.c        the exact definition of every conversion (encode_one, decode_one,
 *                     the stochastic decision): the reference semantics, internal
 *   codec_fast.h/.c   the float32 block kernels in portable C and the choice of SIMD level,
 *                     which must give the same bits as round.h; internal
 *   codec_avx512.c    the same kernels in AVX-512 intrinsics; codec_avx2.c in AVX2 ones
 *   codec.c           the codec's entry points and array loops
 *   scaled.c          block-scaled formats: block amax, scales, element rounding
 *   mma.c             the tensor-core matrix multiply-accumulate
 *   scan.c            the sweep's scan pass: amaxes and the exact binade histogram
 *   sweep_stats.c     the sweep's statistics: exact sums, the fused evaluation kernel
 *   sweep_stats.h     its statistics pass, shared with bias_axis.c; internal
 *   bias_axis.c       the statistics of many biases of one format in one call
 *   sweep_scaled.c    the fused evaluation of scaled formats (scaled.c's encode into the sums)
 *   random.c          the generator, exported to Python
 *   fpenv.c           the IEEE 754 default floating-point environment
 *   threads.c         the number of threads of the loops
 */
#ifndef FMTLAB_H
#define FMTLAB_H

#include <stdint.h>
#include <stddef.h>

/* CDEF BEGIN */

/*
 * What every entry point returns: FL_OK, or one of these negative codes.  The Python
 * layer (fmtlab/_c.py) turns each into its error; the arguments fmtlab passes are checked
 * in Python first, so any code but FL_OK and FL_ERROR_OUT_OF_MEMORY there is a bug.
 */
enum fl_status {
    FL_OK = 0,
    FL_ERROR_FORMAT = -1,         /* fl_format out of range (widths, policies, IEEE without NaN code) */
    FL_ERROR_ROUNDING_MODE = -2,  /* fl_rounding.mode is not an enum fl_rounding_mode */
    FL_ERROR_SR_BITS = -3,        /* fl_rounding.sr_bits outside 0..32 */
    FL_ERROR_CODE_BYTES = -4,     /* code_bytes is not 1, 2 or 4 */
    FL_ERROR_MMA_MODEL = -5,      /* fl_mma_model or the matrix sizes out of range */
    FL_ERROR_OUT_OF_MEMORY = -6,  /* a work buffer could not be allocated */
    FL_ERROR_SATURATION = -7,     /* fl_rounding.saturate is not an enum fl_saturation */
    FL_ERROR_SR_RULE = -8,        /* fl_rounding.sr_rule is not an enum fl_sr_rule */
    FL_ERROR_SCALED_FORMAT = -9,  /* fl_scaled_format or fl_block_layout out of range (scaled.c) */
    FL_ERROR_ARGUMENT = -10       /* a negative element count, a NULL array with elements, or a
                                     thread count outside 0..FL_MAX_THREADS */
};

/* The most threads fl_set_threads takes (fmtlab.codec.MAX_THREADS may be lower: 64 per CPU). */
#define FL_MAX_THREADS 4096

enum fl_specials_policy {
    FL_SPECIALS_IEEE = 0,    /* Inf = E all ones, M = 0; NaN = E all ones, M != 0 */
    FL_SPECIALS_FN = 1,      /* no Inf; NaN = every field all ones */
    FL_SPECIALS_FNUZ = 2,    /* no Inf, no -0; NaN = the negative-zero code */
    FL_SPECIALS_FINITE = 3,  /* every code is a finite number */
    FL_SPECIALS_P3109 = 4    /* IEEE P3109 extended domain, no -0: signed: NaN = the negative-zero
                                code, +-Inf = every magnitude bit set; unsigned: NaN = every bit
                                set, +Inf = the code below it */
};

enum fl_subnormals_policy {
    FL_SUBNORMALS_IEEE = 0,  /* E = 0: 2^(1 - bias) * 0.M */
    FL_SUBNORMALS_TESLA = 1, /* E = 0: 2^(-bias) * 0.M, leaves a gap below min_normal */
    FL_SUBNORMALS_NONE = 2,  /* E = 0, M != 0 decodes to zero; tiny results flush to zero */
    FL_SUBNORMALS_NORMAL = 3 /* E = 0 is a normal binade, 2^(-bias) * 1.M: no subnormals and
                                no zero (E8M0); not with FL_SPECIALS_FNUZ, nor signed P3109 */
};

/*
 * What happens to a rounded value beyond the finite range, and to +-Inf inputs
 * (docs/formats.md section 4).  OFF and ON are fmtlab's saturate=None/False and True; the
 * other three are the saturation modes of the IEEE P3109 interim report v4.0, section 4.7.5
 * (omega-Saturate), applied with Domain = Extended iff the format has an Inf.
 */
enum fl_saturation {
    FL_SATURATE_OFF = 0,           /* the format's own rule: Inf, NaN or max by rounding direction */
    FL_SATURATE_ON = 1,            /* every finite overflow gives +-max; +-Inf inputs keep their Inf
                                      where the format has one, else give +-max */
    FL_SATURATE_SAT_FINITE = 2,    /* P3109 SatFinite: every result clamped to [min, max], Inf too */
    FL_SATURATE_SAT_PROPAGATE = 3, /* P3109 SatPropagate: finite results clamped, Inf kept */
    FL_SATURATE_SAT_NONE = 4       /* P3109 SatNone: Inf, NaN or the extreme by rounding direction */
};

enum fl_rounding_mode {
    FL_ROUND_NEAREST_EVEN = 0,
    FL_ROUND_NEAREST_AWAY = 1,
    FL_ROUND_TOWARD_ZERO = 2,
    FL_ROUND_UP = 3,
    FL_ROUND_DOWN = 4,
    FL_ROUND_ODD = 5,
    FL_ROUND_STOCHASTIC = 6
};

/*
 * Limited-precision stochastic rounding (fl_rounding.sr_bits = N >= 1): how the fraction nu
 * of an ulp that rounding toward zero discards, 0 < nu < 1, is brought to N bits before it
 * is compared with the N random bits R (uniform in 0..2^N - 1): round away iff k + R >= 2^N,
 * so P(away) = k / 2^N, with
 */
enum fl_sr_rule {
    FL_SR_TRUNCATE = 0,      /* k = floor(nu 2^N): P3109 StochasticA, gfloat StochasticFastest */
    FL_SR_NEAREST_AWAY = 1,  /* k = floor(nu 2^N + 1/2): P3109 StochasticB, written there as
                                floor(nu 2^(N+1)) + 2R + 1 >= 2^(N+1); gfloat StochasticFast */
    FL_SR_NEAREST_EVEN = 2,  /* k = nu 2^N to nearest, ties to even: P3109 StochasticC, gfloat Stochastic */
    FL_SR_NEAREST_ODD = 3    /* k = nu 2^N to nearest, ties to odd: gfloat StochasticOdd */
};

typedef struct fl_format {
    int exp_bits;     /* width of the exponent field, >= 1 */
    int man_bits;     /* width of the stored mantissa field, >= 0 (sign + exp + man <= 32 bits) */
    int bias;         /* normal value = 2^(E - bias) * 1.M; every finite value must be exact in
                         float64: emax <= 1023 and the smallest step (the subnormals', or
                         2^(emin - man_bits) in the lowest normal binade) >= 2^-1074, else
                         FL_ERROR_FORMAT */
    int is_signed;    /* 1 when the code has a sign bit (its top bit) */
    int specials;     /* enum fl_specials_policy */
    int subnormals;   /* enum fl_subnormals_policy */
} fl_format;

typedef struct fl_rounding {
    int mode;         /* enum fl_rounding_mode */
    int saturate;     /* enum fl_saturation (0: the format's own rule, 1: every overflow gives +-max) */
    uint64_t seed;    /* stochastic rounding: key of the counter-based generator */
    int sr_bits;      /* stochastic rounding: 1..32 random bits, 0 = exact probability */
    int sr_rule;      /* stochastic rounding with sr_bits >= 1: enum fl_sr_rule (ignored when 0) */
} fl_rounding;

/* Counts that mirror the Tesla whitepaper's exception flags. */
typedef struct fl_stats {
    int64_t invalid;    /* NaN input, a negative nonzero input to an unsigned format whose result is
                           NaN, or a zero input to a format without zero */
    int64_t overflow;   /* result would exceed max (also when saturated or given +-Inf / NaN), or an
                           unsigned format's negative input clamped to its smallest value */
    int64_t underflow;  /* nonzero finite input whose result is zero, or (a format without zero)
                           whose magnitude is below the smallest value */
    int64_t denormal;   /* result is a subnormal code */
    int64_t inexact;    /* finite input whose result differs from it */
} fl_stats;

/*
 * Element-wise conversion of n contiguous values.  codes has code_bytes
 * (1, 2 or 4) bytes per element.  index_offset is the global index of x[0]:
 * the stochastic generator is keyed by (seed, index), index = (index_offset + i)
 * modulo 2^64, so results do not depend on how an array is split into calls or threads.
 * stats may be NULL.  Every parameter is checked (a NULL format or rounding is
 * FL_ERROR_FORMAT or FL_ERROR_ROUNDING_MODE; n < 0, or a NULL array with n > 0,
 * FL_ERROR_ARGUMENT); nothing is written unless the call returns FL_OK.
 * Return FL_OK, FL_ERROR_FORMAT, FL_ERROR_ROUNDING_MODE, FL_ERROR_SR_BITS,
 * FL_ERROR_SATURATION, FL_ERROR_SR_RULE, FL_ERROR_CODE_BYTES or FL_ERROR_ARGUMENT
 * (enum fl_status).  Decode returns FL_OK, FL_ERROR_FORMAT, FL_ERROR_CODE_BYTES or
 * FL_ERROR_ARGUMENT; it reads only the format's bits of each code.
 */
int fl_encode_f32(const float *x, int64_t n, const fl_format *format,
                  const fl_rounding *rounding, void *codes, int code_bytes,
                  int64_t index_offset, fl_stats *stats);
int fl_encode_f64(const double *x, int64_t n, const fl_format *format,
                  const fl_rounding *rounding, void *codes, int code_bytes,
                  int64_t index_offset, fl_stats *stats);
int fl_decode_f32(const void *codes, int code_bytes, int64_t n,
                  const fl_format *format, float *out);
int fl_decode_f64(const void *codes, int code_bytes, int64_t n,
                  const fl_format *format, double *out);
int fl_quantize_f32(const float *x, int64_t n, const fl_format *format,
                    const fl_rounding *rounding, float *out,
                    int64_t index_offset, fl_stats *stats);
int fl_quantize_f64(const double *x, int64_t n, const fl_format *format,
                    const fl_rounding *rounding, double *out,
                    int64_t index_offset, fl_stats *stats);

/* ---- sweep statistics (sweep_stats.c; docs/sweep.md states the maths) ---- */

/* An exact sum: the value sum_k limb[k] * 2^(32 k + FL_EXACT_LOWEST_EXPONENT), limbs 0 .. 134
 * in 0 .. 2^32 - 1 and limb 135 signed when a call returns.  It holds any sum of up to 2^63
 * squares or products of two float64 numbers exactly (every such product is a multiple of
 * 2^-2148 below 2^2048). */
enum { FL_EXACT_LIMBS = 136, FL_EXACT_LOWEST_EXPONENT = -2176 };
typedef struct fl_exact_sum {
    int64_t limb[136];  /* FL_EXACT_LIMBS */
} fl_exact_sum;

/*
 * The mergeable statistics of n elements x_i with their quantized values q_i (docs/sweep.md),
 * V = {i : x_i and q_i finite}, e_i = q_i - x_i exactly: counts, the float64 maxima of
 * |fl(q_i - x_i)| and fl(|fl(q_i - x_i)| / |x_i|) (x_i != 0) over V, and exact sums.
 */
typedef struct fl_sweep_stats {
    int64_t n;
    int64_t valid;          /* |V| */
    int64_t zeros_in;       /* x_i == 0 */
    int64_t nan_in;         /* x_i NaN */
    int64_t inf_in;         /* x_i +-Inf */
    int64_t overflow;       /* |x_i| > max (the format's largest finite value) */
    int64_t zeros_out;      /* q_i == 0 */
    int64_t below_normal;   /* |q_i| < min_normal (zeros included) */
    int64_t nan_out;        /* q_i NaN */
    int64_t inf_out;        /* q_i +-Inf */
    double max_abs;         /* 0 when V is empty */
    double max_rel;
    fl_exact_sum signal_excluded; /* sum of x_i^2 over x_i finite, q_i not: the elements of the
                                     finite inputs' signal (fl_exact_signal_f64) outside V */
    fl_exact_sum error_energy;    /* sum_V e_i^2 */
    fl_exact_sum error_sum;       /* sum_V e_i */
} fl_sweep_stats;

/* *signal = sum of x_i^2 over the finite x_i, exactly.  FL_OK, FL_ERROR_ARGUMENT (n < 0, a NULL
 * pointer) or FL_ERROR_OUT_OF_MEMORY. */
int fl_exact_signal_f64(const double *x, int64_t n, fl_exact_sum *signal);
int fl_exact_signal_f32(const float *x, int64_t n, fl_exact_sum *signal);
/* *stats of x with the given q (both n float64 values).  FL_OK, FL_ERROR_ARGUMENT or
 * FL_ERROR_OUT_OF_MEMORY. */
int fl_sweep_statistics_f64(const double *x, const double *q, int64_t n, double max, double min_normal,
                            fl_sweep_stats *stats);
/*
 * The fused evaluation: *stats of x with q = what fl_quantize_f32 / _f64 gives for (format,
 * rounding, index_offset), bit for bit, computed element by element without storing q.  max and
 * min_normal are the format's (for the counts).  Return FL_OK, FL_ERROR_FORMAT,
 * FL_ERROR_ROUNDING_MODE, FL_ERROR_SR_BITS, FL_ERROR_SATURATION, FL_ERROR_SR_RULE,
 * FL_ERROR_ARGUMENT or FL_ERROR_OUT_OF_MEMORY (enum fl_status).
 */
int fl_sweep_evaluate_f32(const float *x, int64_t n, const fl_format *format, const fl_rounding *rounding,
                          int64_t index_offset, double max, double min_normal, fl_sweep_stats *stats);
int fl_sweep_evaluate_f64(const double *x, int64_t n, const fl_format *format, const fl_rounding *rounding,
                          int64_t index_offset, double max, double min_normal, fl_sweep_stats *stats);

/*
 * The bias axis in one call (bias_axis.c; docs/sweep.md, "The bias axis in one pass"): stats[b] =
 * what fl_sweep_evaluate_f32 / _f64 gives for (formats[b], rounding, index_offset, maxima[b],
 * min_normals[b]), for b < bias_count, every count, maximum and exact sum equal.  The formats
 * must differ in their bias only (else FL_ERROR_ARGUMENT); maxima and min_normals are each
 * format's.  Return FL_OK, FL_ERROR_FORMAT, FL_ERROR_ROUNDING_MODE, FL_ERROR_SR_BITS,
 * FL_ERROR_SATURATION, FL_ERROR_SR_RULE, FL_ERROR_ARGUMENT or FL_ERROR_OUT_OF_MEMORY.
 */
int fl_sweep_evaluate_biases_f32(const float *x, int64_t n, const fl_format *formats, int bias_count,
                                 const fl_rounding *rounding, int64_t index_offset, const double *maxima,
                                 const double *min_normals, fl_sweep_stats *stats);
int fl_sweep_evaluate_biases_f64(const double *x, int64_t n, const fl_format *formats, int bias_count,
                                 const fl_rounding *rounding, int64_t index_offset, const double *maxima,
                                 const double *min_normals, fl_sweep_stats *stats);

/* ---- the sweep's scan pass (scan.c) ---- */

/* Bins of floor(log2|x|) for every finite nonzero float64 (and so float32) x: -1074 .. 1023. */
enum { FL_SCAN_LOWEST_BINADE = -1074 };
#define FL_SCAN_BINS 2098

/* What one pass over a tensor's values finds (fmtlab._binades, fmtlab.sweep's scan): counts are
 * exact, so the scan of a tensor is the sum (maxima: the max) of the scans of any split of it. */
typedef struct fl_scan_stats {
    int64_t n;            /* elements scanned */
    int64_t zeros;        /* +0 and -0 */
    int64_t nan;          /* NaN of any payload */
    int64_t inf;          /* +Inf and -Inf */
    double finite_amax;   /* max |x| over the finite x; -1 when there is none */
    int64_t binades[FL_SCAN_BINS];  /* binades[e - FL_SCAN_LOWEST_BINADE]: x with 2^e <= |x| < 2^(e+1) */
} fl_scan_stats;

/* Add x[0..n) into *stats (which the caller zeroes, finite_amax = -1, before the first call).
 * Returns FL_OK, or FL_ERROR_ARGUMENT for a NULL pointer or n < 0 (enum fl_status). */
int fl_scan_f32(const float *x, int64_t n, fl_scan_stats *stats);
int fl_scan_f64(const double *x, int64_t n, fl_scan_stats *stats);

/* ---- block-scaled formats (scaled.c; fmtlab/scaled.py states the rules) ---- */

/* How a block's scale comes from its absolute maximum amax (emax: the element's largest binade). */
enum fl_scale_rule {
    FL_SCALE_FLOOR = 0,  /* 2^(floor(log2 amax) - emax): OCP MX v1.0 section 6.3 */
    FL_SCALE_CEIL = 1,   /* 2^(ceil(log2 amax) - emax): torchao CEIL */
    FL_SCALE_EVEN = 2,   /* 2^(floor(log2 RNA(amax)) - emax), amax to the element's man_bits: torchao EVEN */
    FL_SCALE_RCEIL = 3,  /* 2^ceil(log2(amax / element_max)): NVIDIA's UE8M0 round-up, torchao RCEIL */
    FL_SCALE_AMAX = 4    /* amax / (element_max [* tensor scale]) to nearest-even in the scale format,
                            saturating, at least its smallest positive value: NVFP4, block FP8 */
};

/*
 * A block-scaled format (fmtlab.scaled.ScaledFormat, flattened): an element's value is
 * element value * S, S = the block's scale value [* the tensor scale value].  The derived
 * numbers are passed rather than recomputed so that C and Python share one definition.
 */
typedef struct fl_scaled_format {
    fl_format element;
    fl_format scale;                  /* the block scale's format (E8M0 is exp_bits 8, man_bits 0,
                                         bias 127, unsigned, FN, subnormals NORMAL) */
    fl_format tensor_scale;           /* read only when has_tensor_scale */
    int has_tensor_scale;             /* NVFP4's second level; rule FL_SCALE_AMAX only */
    int rule;                         /* enum fl_scale_rule */
    int power_of_two;                 /* 1 when every S is a power of two (rules FLOOR..RCEIL, or AMAX
                                         into E8M0 without a tensor scale): x / S is exact */
    double element_max;               /* the element's largest finite value */
    int element_emax;                 /* exponent of the element's largest finite binade */
    int element_man_bits;             /* fraction bits of that binade (rule EVEN): element.man_bits,
                                         except integer elements (fmtlab/integers.py) */
    int element_integer;              /* 0, or the width N of an integer element: element is the
                                         float format it rounds on, a zero result is +0 (integers
                                         have no -0), codes are N-bit two's complement */
    int64_t element_positive_max_code; /* the largest magnitude codes a positive and a negative */
    int64_t element_negative_max_code; /* element may take, each at most element's max code: both
                                          that code, except integer elements, whose element is the
                                          one-exponent-bit float format they round on and whose
                                          two's complement range is 2^(N-1) - 1 up, 2^(N-1) down */
    int scale_lowest_exponent;        /* 2^e is a scale value for lowest <= e <= highest ... */
    int scale_highest_exponent;       /* ... (E8M0: -127 .. 127) */
    double scale_max;                 /* the scale's largest finite value */
    int tensor_scale_lowest_exponent; /* log2 of the tensor scale's smallest positive value */
    double tensor_scale_max;          /* the tensor scale's largest finite value */
} fl_scaled_format;

/*
 * How the blocks tile x: x is C-contiguous, viewed as outer x rows x columns, and cut into
 * block_rows x block_columns tiles over its last two dimensions (partial tiles at the ends).
 * fmtlab.scaled maps each block kind to this: 1-D blocks of k along the last axis are
 * (lead, 1, n) with 1 x k tiles, along another axis (lead, n, trail) with k x 1 tiles,
 * 2-D tiles (lead, R, C) with r x c tiles, "tensor" one tile over everything.  The scales
 * are outer x ceil(rows / block_rows) x ceil(columns / block_columns), C order.
 */
typedef struct fl_block_layout {
    int64_t outer;
    int64_t rows;
    int64_t columns;
    int64_t block_rows;
    int64_t block_columns;
} fl_block_layout;

/* Counts of one scaled conversion (fmtlab.scaled.ScaledStats). */
typedef struct fl_scaled_stats {
    fl_stats elements;             /* the element codec's counts over every quotient x / S */
    int64_t blocks;
    int64_t zero_blocks;           /* amax 0: the smallest scale */
    int64_t nan_blocks;            /* a NaN in the block: the scale's NaN code */
    int64_t scale_underflow;       /* wanted scale below the smallest positive scale (raised) */
    int64_t scale_overflow;        /* wanted scale above the largest, Inf blocks included (lowered) */
    int64_t tensor_scale_clamped;  /* 1 when the tensor scale was clamped */
} fl_scaled_stats;

/*
 * Block-scaled encode: element codes (x's layout, code_bytes each: 1, 2 or 4), scale codes
 * (scale_bytes each, the layout's scale order; NULL: not written) and the tensor scale's
 * code (*tensor_scale_code, when the format has one and the pointer is not NULL).  The
 * elements always saturate (rounding->saturate is ignored: FL_SATURATE_ON); stochastic
 * rounding is keyed by each element's C-order index in x.  Results do not depend on the
 * number of threads.  quantize writes decode(encode(x)) in x's type instead of codes.
 * stats may be NULL (nothing is counted, which is faster).
 * Return FL_OK, FL_ERROR_FORMAT, FL_ERROR_ROUNDING_MODE, FL_ERROR_SR_BITS, FL_ERROR_SATURATION,
 * FL_ERROR_SR_RULE, FL_ERROR_CODE_BYTES, FL_ERROR_SCALED_FORMAT or FL_ERROR_OUT_OF_MEMORY
 * (enum fl_status).
 */
int fl_scaled_encode_f32(const float *x, const fl_block_layout *layout, const fl_scaled_format *format,
                         const fl_rounding *rounding, void *codes, int code_bytes, void *scales,
                         int scale_bytes, uint32_t *tensor_scale_code, fl_scaled_stats *stats);
int fl_scaled_encode_f64(const double *x, const fl_block_layout *layout, const fl_scaled_format *format,
                         const fl_rounding *rounding, void *codes, int code_bytes, void *scales,
                         int scale_bytes, uint32_t *tensor_scale_code, fl_scaled_stats *stats);
int fl_scaled_quantize_f32(const float *x, const fl_block_layout *layout, const fl_scaled_format *format,
                           const fl_rounding *rounding, float *out, void *scales, int scale_bytes,
                           uint32_t *tensor_scale_code, fl_scaled_stats *stats);
int fl_scaled_quantize_f64(const double *x, const fl_block_layout *layout, const fl_scaled_format *format,
                           const fl_rounding *rounding, double *out, void *scales, int scale_bytes,
                           uint32_t *tensor_scale_code, fl_scaled_stats *stats);

/*
 * A piece of a larger tensor (the sweep's row ranges: fmtlab/_sweep_scaled.py): x holds whole
 * blocks of the tensor, and its first element is element index_offset (C order) of the tensor,
 * so stochastic rounding is keyed by index_offset + i, as inside the whole tensor.  With
 * has_tensor_amax, tensor_amax (>= 0, or NaN) is the whole tensor's amax: max |x| over all its
 * elements, NaN when one is NaN, +Inf when one is infinite (what the whole tensor's own pass would
 * find); it replaces the piece's own in the tensor scale (NVFP4's second level) and, with
 * tensor_amax_is_block, is the amax of the piece's one block (block "tensor": the layout must then
 * have exactly one block).
 */
typedef struct fl_scaled_piece {
    int64_t index_offset;
    int has_tensor_amax;
    int tensor_amax_is_block;
    double tensor_amax;
} fl_scaled_piece;

/* fl_scaled_encode_* on a piece (piece not NULL): the codes, scales and tensor-scale code of x's
 * elements as the whole tensor's encode gives them.  Also FL_ERROR_ARGUMENT (piece NULL, a
 * negative offset or amax, tensor_amax_is_block without has_tensor_amax) and FL_ERROR_SCALED_FORMAT
 * (tensor_amax_is_block on a layout of more than one block). */
int fl_scaled_encode_piece_f32(const float *x, const fl_block_layout *layout, const fl_scaled_format *format,
                               const fl_rounding *rounding, const fl_scaled_piece *piece, void *codes, int code_bytes,
                               void *scales, int scale_bytes, uint32_t *tensor_scale_code, fl_scaled_stats *stats);
int fl_scaled_encode_piece_f64(const double *x, const fl_block_layout *layout, const fl_scaled_format *format,
                               const fl_rounding *rounding, const fl_scaled_piece *piece, void *codes, int code_bytes,
                               void *scales, int scale_bytes, uint32_t *tensor_scale_code, fl_scaled_stats *stats);

/*
 * The sweep's fused evaluation of a scaled format on a piece (sweep_scaled.c): *stats of x and
 * q = decode(encode_piece(x)) (element value * block scale [* tensor scale], exact in float64), as
 * fl_sweep_statistics_f64 gives them for those q, computed block row by block row without an
 * array of q or of codes (only the piece's scale codes are kept), except two counts, relative to
 * each block's scale S: overflow = #{i : |element value_i| = element_max and |x_i| > |q_i|} (the
 * elements above element_max * S) and below_normal = zeros_out + #{i : q_i finite,
 * 0 < |element value_i| < element_min_normal} (so below_normal - zeros_out counts the subnormal
 * element codes).  element_max and element_min_normal are the element format's.  Returns as
 * fl_scaled_encode_piece_*, or FL_ERROR_OUT_OF_MEMORY.
 */
int fl_sweep_scaled_evaluate_f32(const float *x, const fl_block_layout *layout, const fl_scaled_format *format,
                                 const fl_rounding *rounding, const fl_scaled_piece *piece, double element_max,
                                 double element_min_normal, fl_sweep_stats *stats);
int fl_sweep_scaled_evaluate_f64(const double *x, const fl_block_layout *layout, const fl_scaled_format *format,
                                 const fl_rounding *rounding, const fl_scaled_piece *piece, double element_max,
                                 double element_min_normal, fl_sweep_stats *stats);

/*
 * The counter-based generator of stochastic rounding (SplitMix64's finaliser mix64 used
 * as a counter-based generator; defined once, below CDEF END, and exported by random.c):
 *     fl_random_word(seed, index, draw) = mix64(stream_key + index * 0x9E3779B97F4A7C15),
 *     stream_key = mix64(mix64(seed) + draw * 0xD1B54A32D192ED03)      (modulo 2^64)
 * Exported so that Python (seeds of fmtlab.torch, the pure-torch codec's tests) uses the
 * same function rather than a copy.
 */
uint64_t fl_mix64(uint64_t z);
uint64_t fl_random_word(uint64_t seed, uint64_t index, uint64_t draw);

/* The codec's float32 kernels in use, chosen when the library loads: 2 AVX-512, 1 AVX2, 0 the
 * portable C (the environment variable FMTLAB_SIMD=portable or =avx2 lowers the CPU's best).
 * Every copy gives the same bits. */
int fl_codec_simd_level(void);

/* Number of threads the OpenMP runtime would use (1 without OpenMP). */
int fl_max_threads(void);
/* Set the number of threads fmtlab's loops use; 0 restores the default.  FL_OK, or
 * FL_ERROR_ARGUMENT (nothing changed) outside 0..FL_MAX_THREADS. */
int fl_set_threads(int threads);

/* ---- matrix multiply-accumulate (mma.c) ---- */

/* How c enters a block (docs/tensor-cores.md, "c_addition"). */
enum fl_mma_c_addition {
    FL_MMA_C_FUSED = 0,     /* c is one more term of the block: aligned, cut and summed with the products */
    FL_MMA_C_SEPARATE = 1,  /* the block sums the products alone and rounds them; c is then added
                               by a separate adder that rounds to nearest-even (B200 FP8) */
    FL_MMA_C_LATE = 2       /* AMD CDNA3: the exact sum of the cut products and c are aligned to the
                               larger of their exponents and rounded down (toward -Inf), the sum to
                               31 and c to 24 fraction bits, then added and rounded once */
};

/* How the products of a block are grouped before they are summed (c_addition = LATE only). */
enum fl_mma_grouping {
    FL_MMA_GROUP_NONE = 0,     /* one group: every product is aligned to the block's largest */
    FL_MMA_GROUP_ODD_EVEN = 1  /* AMD CDNA3 FP8: even- and odd-indexed products summed apart, each
                                  aligned to its own largest exponent, then joined (rounded down) */
};

enum fl_mma_summation {
    FL_MMA_SUM_BLOCK_FMA = 0,  /* a chain of block fused multiply-adds over K (tensor cores) */
    FL_MMA_SUM_PAIRWISE = 1    /* float32 products, pairwise float32 sum of each block (all of K when
                                  block = 0), each added to the running float32 c (fp32_pairwise,
                                  AMD CDNA1/CDNA2) */
};

/* A binary format whose every value is exact in float32 (fp32, fp16, bf16, e4m3fn, ...). */
typedef struct fl_mma_format {
    int man_bits;       /* stored fraction bits, 0..23 */
    int emin;           /* exponent of the smallest normal; a subnormal counts as this exponent */
    int emax;           /* exponent of the largest finite binade */
    int min_exponent;   /* log2 of the smallest positive value */
} fl_mma_format;

/*
 * The parameters of one MMA model (fmtlab/mma.py's MMAModel, flattened).
 * D = A B + C is computed per output element as a chain over K of blocks of
 * `block` products: each block's result is rounded to `out` (and cut to
 * acc_frac_bits) and becomes the c of the next block.
 */
typedef struct fl_mma_model {
    fl_mma_format a;     /* format of A's elements (out-format fields: emin decides alignment) */
    fl_mma_format b;     /* format of B's elements */
    int block;           /* products per block; 0: the whole of K (or of a promotion interval) */
    int frac_bits;       /* F: fraction bits kept below the block's largest exponent; -1: exact sum */
    fl_mma_format out;   /* each block's result is rounded to this format */
    int out_rounding;    /* FL_ROUND_TOWARD_ZERO or FL_ROUND_NEAREST_EVEN */
    int acc_frac_bits;   /* -1, or block results are then cut toward zero to this many fraction bits */
    int use_exp_floor;   /* 1: the block's alignment exponent is at least exp_floor */
    int exp_floor;
    int c_emin;          /* exponent a subnormal element of C counts as (C's format's emin) */
    int c_addition;      /* enum fl_mma_c_addition */
    int promote_every;   /* 0, or: every this many elements of K the partial sum (a chain started
                            from c = 0) is added to a float32 accumulator, rounding to nearest-even */
    int summation;       /* enum fl_mma_summation */
    int grouping;        /* enum fl_mma_grouping */
    int flush_outputs;   /* 1 (pairwise only): every float32 product, partial sum and running c
                            below 2^-126 becomes a zero of its sign (AMD CDNA2) */
    int positive_zero;   /* 1: an exact zero block result is +0 (MMA-Sim); 0: IEEE 754's rule,
                            -0 only when every term is -0 */
} fl_mma_model;

/*
 * D[t] = A[t] B[t] + C[t] for t < batch, under `model`.  A[t] is the m x k row-major
 * matrix at a + a_offsets[t], B[t] the k x n one at b + b_offsets[t], C[t] the m x n one
 * at c + c_offsets[t] (c may be NULL: C = +0); D is batch x m x n, contiguous.
 * Inputs must already be values of the model's formats (fmtlab/mma.py checks).
 * Return FL_OK, FL_ERROR_MMA_MODEL or FL_ERROR_OUT_OF_MEMORY (enum fl_status).
 */
int fl_mma_matmul_f32(const float *a, const float *b, const float *c, float *d,
                      int64_t batch, int64_t m, int64_t n, int64_t k,
                      const int64_t *a_offsets, const int64_t *b_offsets, const int64_t *c_offsets,
                      const fl_mma_model *model);

/*
 * Blackwell block-scaled MMA (mma_block_scaled.c; fmtlab/mma_block_scaled.py prepares the
 * arrays and states the maths).  The elements are given decoded (float32, exact): A m x k,
 * B k x n; the element format by its e_min, e_max and fraction bits.  Per scale block (A:
 * m x scale_blocks, B transposed: n x scale_blocks): the scale's value (NaN for a NaN scale),
 * integer significand and exponent E(S), the value being significand 2^(E(S) - bits).  A
 * term's value is its integer times 2^(alignment exponent + value_offset), value_offset =
 * (group_sum ? 2 e_min : 0) - 2 man_bits - (the scale significand bits of A and of B).
 * reference = 1 computes every element by the definition (the tests' peer of the fast path).
 */
typedef struct fl_mma_block_scaled {
    int64_t m, n, k;
    int64_t block;        /* elements of K per instruction block */
    int64_t scale_block;  /* elements per scale */
    int64_t scale_blocks; /* scales per row of A / column of B: ceil(k / scale_block) */
    int64_t group_sum;    /* 0: products aligned one by one; G: exact sums of G products */
    int64_t frac_bits;    /* F */
    int64_t value_offset;
    int64_t element_emin, element_emax, element_man_bits;
    const float *a_values, *b_values;
    const double *sa_value, *sb_value;
    const int32_t *sa_sig, *sa_exp, *sb_sig, *sb_exp;
    int64_t reference;
} fl_mma_block_scaled;

/* D (m x n float32) of the block-scaled model; c may be NULL (C = +0).  FL_OK,
 * FL_ERROR_MMA_MODEL or FL_ERROR_OUT_OF_MEMORY. */
int fl_mma_block_scaled_f32(const fl_mma_block_scaled *p, const float *c, float *d);

/* CDEF END */

/* ---- internal to the C core (not part of the Python interface) ---- */

/* One code of a code array of code_bytes (1, 2 or 4) bytes per element (codec.c, scaled.c). */
static inline void fl_store_code(void *codes, int code_bytes, int64_t i, uint32_t code)
{
    if (code_bytes == 1)
        ((uint8_t *)codes)[i] = (uint8_t)code;
    else if (code_bytes == 2)
        ((uint16_t *)codes)[i] = (uint16_t)code;
    else
        ((uint32_t *)codes)[i] = code;
}

static inline uint32_t fl_load_code(const void *codes, int code_bytes, int64_t i)
{
    if (code_bytes == 1)
        return ((const uint8_t *)codes)[i];
    if (code_bytes == 2)
        return ((const uint16_t *)codes)[i];
    return ((const uint32_t *)codes)[i];
}

/*
 * The counter-based generator, defined once here so that the codec's loops inline it;
 * fl_mix64 and fl_random_word (random.c) export the same functions.  It is a pure function
 * of (seed, index, draw): no state is carried between elements, so results cannot depend
 * on threads or on how an array is chunked.  Draw 0 serves every element; later draws are
 * needed only by exact stochastic rounding when the first 64 bits tie (probability 2^-64).
 */
static inline uint64_t fl_mix64_inline(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static inline uint64_t fl_stream_key_inline(uint64_t seed, uint64_t draw)
{
    return fl_mix64_inline(fl_mix64_inline(seed) + draw * 0xD1B54A32D192ED03ULL);
}

static inline uint64_t fl_random_word_inline(uint64_t seed, uint64_t index, uint64_t draw)
{
    return fl_mix64_inline(fl_stream_key_inline(seed, draw) + index * 0x9E3779B97F4A7C15ULL);
}

/*
 * fmtlab's arithmetic is exact only in IEEE 754's default environment: nearest-even
 * rounding and no flushing of subnormals.  A caller may have changed either
 * (torch.set_flush_denormal sets FTZ/DAZ), per thread, so every thread that runs fmtlab's
 * loops sets the default on entry and restores the caller's on exit (fpenv.c).
 */
typedef struct fl_floating_point_state {
    int rounding;
    unsigned int control; /* MXCSR where the target has SSE2 */
} fl_floating_point_state;

void fl_enter_default_floating_point(fl_floating_point_state *state);
/* The matmul kernels' SIMD copy (mma.c): 0 SSE2, 1 AVX2, 2 AVX-512; FMTLAB_MMA_SIMD=sse2|avx2 and
 * FMTLAB_SIMD=portable|avx2 lower the CPU's best.  Every copy gives the same bits. */
int fl_mma_simd_level(void);
void fl_leave_default_floating_point(const fl_floating_point_state *state);

/*
 * The hook of the sweep's fused scaled statistics (sweep_scaled.c) into scaled.c: the encode of a
 * piece (fl_scaled_encode_piece_*, x float32 when input_f32, else float64) with each run of
 * element codes handed to sink(context, first, count, codes32, codes64) instead of being stored:
 * elements first .. first + count - 1 (C order in x, all in one row of the layout), their codes
 * in codes32 (or, when it is NULL, codes64) as the element format's own codes (an integer
 * element's: those of the float format it rounds on, before two's complement).  The scales of
 * their blocks are in scales (scale_bytes each) before the sink sees them, the tensor scale's
 * code in *tensor_scale_code.  sink may run on several OpenMP threads at once.  Returns as
 * fl_scaled_encode_piece_*; FL_ERROR_ARGUMENT for a NULL piece or sink.
 */
typedef void (*fl_scaled_code_sink)(void *context, int64_t first, int count, const uint32_t *codes32,
                                    const int64_t *codes64);
int fl_scaled_encode_piece_to_sink(const void *x, int input_f32, const fl_block_layout *layout,
                                   const fl_scaled_format *format, const fl_rounding *rounding,
                                   const fl_scaled_piece *piece, void *scales, int scale_bytes,
                                   uint32_t *tensor_scale_code, fl_scaled_code_sink sink, void *context);

#endif
