/*
 * sweep_stats.h - the statistics pass of sweep_stats.c, shared with bias_axis.c (internal to the
 * C core, not part of the Python interface).
 *
 * A pass accumulates the mergeable statistics of docs/sweep.md (counts, maxima, exact sums) of
 * elements x with their rounded values q into the fl_sweep_stats it points at; the exact sums
 * wait in bins and reach that struct's limbs at each flush.  bias_axis.c points one pass at many
 * structs in turn (fl_pass_target), so that one set of bins serves every bias of a call.
 */
#ifndef FMTLAB_SWEEP_STATS_H
#define FMTLAB_SWEEP_STATS_H

#include "codec_fast.h"

typedef struct exact_bins exact_bins;
typedef struct float_bins float_bins;

/* The state of one statistics pass: counts and maxima in *stats, sums in bins. */
typedef struct stats_pass {
    fl_sweep_stats *stats;
    exact_bins *error_bins;   /* e^2 into square, e into linear */
    exact_bins *signal_bins;  /* x^2 of the elements outside V with x finite (signal_excluded) */
    float_bins *error_floats; /* e^2 and e of the elements whose e is a float32 value */
    int64_t since_flush;
    int direct;               /* sums added to the struct's limbs directly since the last flush */
    double max, min_normal;
    float max_f, min_normal_f; /* the largest float32 <= max, the smallest >= min_normal */
} stats_pass;

/* A pass into *stats (zeroed first).  FL_OK or FL_ERROR_OUT_OF_MEMORY. */
int fl_pass_open(stats_pass *pass, fl_sweep_stats *stats, double max, double min_normal);
/* Flush the bins into the current struct, then accumulate into *stats (not zeroed: its counts
 * and sums are added to) with the format's max and min_normal. */
void fl_pass_target(stats_pass *pass, fl_sweep_stats *stats, double max, double min_normal);
/* Flush and free the bins (stats->n is left to the caller). */
void fl_pass_close(stats_pass *pass);
/* count <= FAST_BLOCK elements x with their rounded values q (every count but n). */
void fl_pass_add_f32(stats_pass *pass, const float *x, const float *q, int count);
void fl_pass_add_f64(stats_pass *pass, const double *x, const double *q, int count);
/* fl_pass_add_f32 for a block of one binade: every x finite, nonzero, a multiple of 2^lsb below
 * 2^(lsb + 24) (the same statistics, faster when the errors are multiples of 2^lsb). */
void fl_pass_add_binade_f32(stats_pass *pass, const float *x, const float *q, int count, int lsb);

/* v * 2^exponent into *sum (exponent >= FL_EXACT_LOWEST_EXPONENT, the value a multiple of
 * 2^FL_EXACT_LOWEST_EXPONENT and within the sum's range). */
void fl_exact_add(fl_exact_sum *sum, __int128 v, int exponent);
/* Carries propagated (limbs 0 .. N-2 in 0 .. 2^32 - 1, the top limb signed); same value. */
void fl_exact_normalise(fl_exact_sum *sum);
/* *total += *part: counts and exact sums add (limb by limb, not normalised), maxima take the max. */
void fl_sweep_stats_add(fl_sweep_stats *total, const fl_sweep_stats *part);

/* The element's value as fl_quantize_f32 / _f64 gives it (round.h), the stochastic draw keyed by
 * index. */
static inline double fl_quantized_one(double x, const prepared_format *p, const fl_rounding *rounding,
                                      uint64_t index)
{
    local_stats ignored = {0, 0, 0, 0, 0};
    return decode_one_signed_nan(encode_one(x, p, rounding, index, &ignored), p);
}

#endif
