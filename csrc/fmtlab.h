/*
 * fmtlab.h - the one header of fmtlab's C core.
 *
 * It declares the parameter structs (number format, rounding, exception counts,
 * matrix multiply-accumulate model) and every entry point.  The cffi build
 * (build_native.py) reads the part between the two CDEF markers below, so that
 * part must stay in the subset of C that cffi's cdef understands: no #include,
 * no #if, no macros with arguments.
 */
#ifndef FMTLAB_H
#define FMTLAB_H

#include <stdint.h>
#include <stddef.h>

/* CDEF BEGIN */

enum fl_specials_policy {
    FL_SPECIALS_IEEE = 0,    /* Inf = E all ones, M = 0; NaN = E all ones, M != 0 */
    FL_SPECIALS_FN = 1,      /* no Inf; NaN = every field all ones */
    FL_SPECIALS_FNUZ = 2,    /* no Inf, no -0; NaN = the negative-zero code */
    FL_SPECIALS_FINITE = 3   /* every code is a finite number */
};

enum fl_subnormals_policy {
    FL_SUBNORMALS_IEEE = 0,  /* E = 0: 2^(1 - bias) * 0.M */
    FL_SUBNORMALS_TESLA = 1, /* E = 0: 2^(-bias) * 0.M, leaves a gap below min_normal */
    FL_SUBNORMALS_NONE = 2   /* E = 0, M != 0 decodes to zero; tiny results flush to zero */
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

typedef struct fl_format {
    int exp_bits;     /* width of the exponent field, >= 1 */
    int man_bits;     /* width of the stored mantissa field, >= 0 */
    int bias;         /* normal value = 2^(E - bias) * 1.M */
    int is_signed;    /* 1 when the code has a sign bit (its top bit) */
    int specials;     /* enum fl_specials_policy */
    int subnormals;   /* enum fl_subnormals_policy */
} fl_format;

typedef struct fl_rounding {
    int mode;         /* enum fl_rounding_mode */
    int saturate;     /* 1: every overflow gives +-max */
    uint64_t seed;    /* stochastic rounding: key of the counter-based generator */
    int sr_bits;      /* stochastic rounding: 1..32 random bits, 0 = exact probability */
} fl_rounding;

/* Counts that mirror the Tesla whitepaper's exception flags. */
typedef struct fl_stats {
    int64_t invalid;    /* NaN input, or a negative nonzero input to an unsigned format */
    int64_t overflow;   /* result would exceed max (also when saturated or given +-Inf / NaN) */
    int64_t underflow;  /* nonzero finite input whose result is zero */
    int64_t denormal;   /* result is a subnormal code */
    int64_t inexact;    /* finite input whose result differs from it */
} fl_stats;

/*
 * Element-wise conversion of n contiguous values.  codes has code_bytes
 * (1, 2 or 4) bytes per element.  index_offset is the global index of x[0]:
 * the stochastic generator is keyed by (seed, index), so results do not
 * depend on how an array is split into calls or threads.
 * Return 0 on success, a negative number for invalid parameters.
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

/* Number of threads the OpenMP runtime would use (1 without OpenMP). */
int fl_max_threads(void);
/* Set the number of threads fmtlab's loops use; 0 restores the default. */
void fl_set_threads(int threads);

/* ---- matrix multiply-accumulate (mma.c) ---- */
/* MMA SECTION BEGIN (owned by the tensor-core work; see docs/tensor-cores.md) */

/* How c enters a block (docs/tensor-cores.md, "c_addition"). */
enum fl_mma_c_addition {
    FL_MMA_C_FUSED = 0,     /* c is one more term of the block: aligned, cut and summed with the products */
    FL_MMA_C_SEPARATE = 1   /* the block sums the products alone and rounds them; c is then added
                               by a separate adder that rounds to nearest-even (B200 FP8) */
};

enum fl_mma_summation {
    FL_MMA_SUM_BLOCK_FMA = 0,  /* a chain of block fused multiply-adds over K (tensor cores) */
    FL_MMA_SUM_PAIRWISE = 1    /* float32 products, pairwise float32 sum, then + c (fp32_pairwise) */
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
} fl_mma_model;

/*
 * D[t] = A[t] B[t] + C[t] for t < batch, under `model`.  A[t] is the m x k row-major
 * matrix at a + a_offsets[t], B[t] the k x n one at b + b_offsets[t], C[t] the m x n one
 * at c + c_offsets[t] (c may be NULL: C = +0); D is batch x m x n, contiguous.
 * Inputs must already be values of the model's formats (fmtlab/mma.py checks).
 * Return 0, -1 for invalid parameters, -2 when memory runs out.
 */
int fl_mma_matmul_f32(const float *a, const float *b, const float *c, float *d,
                      int64_t batch, int64_t m, int64_t n, int64_t k,
                      const int64_t *a_offsets, const int64_t *b_offsets, const int64_t *c_offsets,
                      const fl_mma_model *model);
/* MMA SECTION END */

/* CDEF END */

/* ---- internal to the C core (not part of the Python interface) ---- */

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
void fl_leave_default_floating_point(const fl_floating_point_state *state);

#endif
