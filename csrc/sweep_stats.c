/*
 * sweep_stats.c - the sweep's statistics, summed exactly, and the fused evaluation kernel.
 *
 * Every sum a sweep's metrics need (docs/sweep.md, "Metrics: exact definitions") is a sum of
 * exact products or exact values of float64 numbers:
 *     S = sum_V x^2,   E = sum_V (q - x)^2,   D = sum_V (q - x),
 * the differences e = q - x taken exactly.  A finite double is m * 2^u with m an integer below
 * 2^53 and u = max(E, 1) - 1075 (E its exponent field), so a square or a product of two is an
 * integer below 2^106 times 2^(u1 + u2).  Such terms are first added into bins, one __int128 per
 * exponent (a bin of squares holds 2^21 terms without overflow; they are flushed long before),
 * and the bins into a fixed-point superaccumulator, fl_exact_sum: 136 limbs of 32 bits (int64
 * with lazy carries) covering 2^-2176 .. 2^2176, wide enough for any sum of up to 2^63 such terms.
 * Integer addition is associative: the sums do not depend on the order of the elements, on how
 * an array is cut into calls, or on the threads; Python adds the limbs of pieces as ints.
 *
 * e = q - x is exact in float64 whenever the float64 difference has no rounding error, which a
 * TwoSum detects (the common case: q rounds x); otherwise (a saturated huge x, a q far from x)
 * its square goes in as q^2 - 2 q x + x^2 and its sum as q - x, each an exact term.
 */
#include "codec_fast.h"

#include <stdlib.h>
#include <string.h>

#define LIMB_BITS 32
#define SQUARE_BINS 4096  /* index 2 * max(E, 1) (or E1' + E2'), exponent index - 2150 */
#define LINEAR_BINS 2048  /* index max(E, 1), exponent index - 1075 */
/* Elements between flushes of the bins: at most 3 terms below 2^108 each per element, so a
 * bin stays below 2^126 (the __int128's limit is 2^127). */
#define FLUSH_ELEMENTS 65536

_Static_assert(FL_EXACT_LOWEST_EXPONENT % LIMB_BITS == 0, "the limbs start on a multiple of 32");
_Static_assert(sizeof(((fl_exact_sum *)0)->limb) == FL_EXACT_LIMBS * sizeof(int64_t), "limb count");

typedef __int128 wide;
typedef unsigned __int128 unsigned_wide;

typedef struct exact_bins {
    wide square[SQUARE_BINS];
    wide linear[LINEAR_BINS];
    int used;  /* any bin nonzero since the last flush */
} exact_bins;

/* Add v * 2^exponent (exponent >= FL_EXACT_LOWEST_EXPONENT) to the limbs: the magnitude's 32-bit
 * digits, each shifted by the bit offset (below 2^63), split over two limbs. */
static void exact_add(fl_exact_sum *sum, wide v, int exponent)
{
    if (!v)
        return;
    const int negative = v < 0;
    unsigned_wide magnitude = negative ? (unsigned_wide)0 - (unsigned_wide)v : (unsigned_wide)v;
    const int position = exponent - FL_EXACT_LOWEST_EXPONENT;
    int limb = position / LIMB_BITS;
    const int offset = position % LIMB_BITS;
    for (; magnitude; magnitude >>= LIMB_BITS, limb++) {
        const uint64_t digit = (uint64_t)(magnitude & 0xFFFFFFFFu) << offset;
        const int64_t low = (int64_t)(digit & 0xFFFFFFFFu), high = (int64_t)(digit >> LIMB_BITS);
        if (negative) {
            sum->limb[limb] -= low;
            sum->limb[limb + 1] -= high;
        } else {
            sum->limb[limb] += low;
            sum->limb[limb + 1] += high;
        }
    }
}

/* Carries propagated: limbs 0 .. N-2 in 0 .. 2^32 - 1, the top limb signed (the value is
 * sum limb[k] 2^(32 k + FL_EXACT_LOWEST_EXPONENT) before and after). */
static void exact_normalise(fl_exact_sum *sum)
{
    int64_t carry = 0;
    for (int k = 0; k < FL_EXACT_LIMBS - 1; k++) {
        const int64_t value = sum->limb[k] + carry;
        const int64_t digit = value & 0xFFFFFFFF;
        sum->limb[k] = digit;
        carry = (value - digit) / ((int64_t)1 << LIMB_BITS); /* exact: value - digit is a multiple */
    }
    sum->limb[FL_EXACT_LIMBS - 1] += carry;
}

/* The bins into the sums (squares into *squares, linear terms into *linear), then cleared. */
static void flush_bins(exact_bins *bins, fl_exact_sum *squares, fl_exact_sum *linear)
{
    if (!bins->used)
        return;
    for (int i = 0; i < SQUARE_BINS; i++)
        if (bins->square[i]) {
            exact_add(squares, bins->square[i], i - 2150);
            bins->square[i] = 0;
        }
    if (linear)
        for (int i = 0; i < LINEAR_BINS; i++)
            if (bins->linear[i]) {
                exact_add(linear, bins->linear[i], i - 1075);
                bins->linear[i] = 0;
            }
    exact_normalise(squares);
    if (linear)
        exact_normalise(linear);
    bins->used = 0;
}

/* A finite double as m * 2^(index - 1075), m signed, |m| < 2^53, index = max(E, 1). */
static inline int64_t split_double(double d, int *index)
{
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    const int field = (int)((bits >> 52) & 0x7FF);
    const int64_t m = (int64_t)((bits & 0x000FFFFFFFFFFFFFULL) | (field ? 0x0010000000000000ULL : 0));
    *index = field ? field : 1;
    return (bits >> 63) ? -m : m;
}

static inline void add_square(exact_bins *bins, double d)
{
    int index;
    const int64_t m = split_double(d, &index);
    bins->square[2 * index] += (wide)m * m;
}

/* sign * 2 * a * b (sign = +-1) */
static inline void add_twice_product(exact_bins *bins, double a, double b, int sign)
{
    int ia, ib;
    const int64_t ma = split_double(a, &ia), mb = split_double(b, &ib);
    const wide product = (wide)ma * mb * 2;
    bins->square[ia + ib] += sign > 0 ? product : -product;
}

static inline void add_linear(exact_bins *bins, double d)
{
    int index;
    const int64_t m = split_double(d, &index);
    bins->linear[index] += m;
}

/* The state of one statistics pass: counts and maxima in *stats, sums in bins. */
typedef struct stats_pass {
    fl_sweep_stats *stats;
    exact_bins *error_bins;   /* e^2 into square, e into linear */
    exact_bins *signal_bins;  /* x^2 of the elements outside V with x finite (signal_excluded) */
    int64_t since_flush;
    double max, min_normal;
} stats_pass;

static void pass_flush(stats_pass *pass)
{
    flush_bins(pass->error_bins, &pass->stats->error_energy, &pass->stats->error_sum);
    flush_bins(pass->signal_bins, &pass->stats->signal_excluded, NULL);
    pass->since_flush = 0;
}

/* One element's counts, maxima and exact sums (docs/sweep.md's definitions). */
static inline void accumulate(stats_pass *pass, double x, double q)
{
    fl_sweep_stats *stats = pass->stats;
    const double abs_x = fabs(x), abs_q = fabs(q);
    const int x_finite = abs_x <= 1.7976931348623157e308, q_finite = abs_q <= 1.7976931348623157e308;
    stats->zeros_in += x == 0;
    stats->nan_in += x != x;
    stats->inf_in += abs_x == (double)INFINITY;
    stats->overflow += abs_x > pass->max;
    stats->zeros_out += q == 0;
    stats->below_normal += abs_q < pass->min_normal;
    stats->nan_out += q != q;
    stats->inf_out += abs_q == (double)INFINITY;
    if (!(x_finite && q_finite)) {
        if (x_finite) {
            add_square(pass->signal_bins, x);
            pass->signal_bins->used = 1;
        }
        return;
    }
    stats->valid++;
    /* TwoSum: e + t = q - x exactly */
    const double e = q - x;
    const double q_part = e + x, x_part = e - q_part;
    const double t = (q - q_part) - (x + x_part);
    if (t == 0) {
        add_square(pass->error_bins, e);
        add_linear(pass->error_bins, e);
    } else { /* e^2 = q^2 - 2 q x + x^2, e = q - x, each exact */
        add_square(pass->error_bins, q);
        add_square(pass->error_bins, x);
        add_twice_product(pass->error_bins, q, x, -1);
        add_linear(pass->error_bins, q);
        add_linear(pass->error_bins, -x);
    }
    pass->error_bins->used = 1;
    const double abs_e = fabs(e);
    if (abs_e > stats->max_abs)
        stats->max_abs = abs_e;
    if (abs_x != 0) {
        const double relative = abs_e / abs_x;
        if (relative > stats->max_rel)
            stats->max_rel = relative;
    }
}

static int pass_begin(stats_pass *pass, fl_sweep_stats *stats, double max, double min_normal)
{
    memset(stats, 0, sizeof *stats);
    pass->stats = stats;
    pass->error_bins = calloc(1, sizeof(exact_bins));
    pass->signal_bins = calloc(1, sizeof(exact_bins));
    pass->since_flush = 0;
    pass->max = max;
    pass->min_normal = min_normal;
    if (!pass->error_bins || !pass->signal_bins) {
        free(pass->error_bins);
        free(pass->signal_bins);
        return FL_ERROR_OUT_OF_MEMORY;
    }
    return FL_OK;
}

static void pass_end(stats_pass *pass, int64_t n)
{
    pass_flush(pass);
    free(pass->error_bins);
    free(pass->signal_bins);
    pass->stats->n = n;
}

static inline void pass_count(stats_pass *pass, int64_t elements)
{
    pass->since_flush += elements;
    if (pass->since_flush >= FLUSH_ELEMENTS)
        pass_flush(pass);
}

int fl_exact_signal_f64(const double *x, int64_t n, fl_exact_sum *signal)
{
    if (!signal || n < 0 || (n > 0 && !x))
        return FL_ERROR_ARGUMENT;
    memset(signal, 0, sizeof *signal);
    exact_bins *bins = calloc(1, sizeof(exact_bins));
    if (!bins)
        return FL_ERROR_OUT_OF_MEMORY;
    fl_floating_point_state environment;
    fl_enter_default_floating_point(&environment);
    for (int64_t start = 0; start < n; start += FLUSH_ELEMENTS) {
        const int64_t stop = start + FLUSH_ELEMENTS < n ? start + FLUSH_ELEMENTS : n;
        for (int64_t i = start; i < stop; i++)
            if (fabs(x[i]) <= 1.7976931348623157e308)
                add_square(bins, x[i]);
        bins->used = 1;
        flush_bins(bins, signal, NULL);
    }
    fl_leave_default_floating_point(&environment);
    free(bins);
    return FL_OK;
}

int fl_sweep_statistics_f64(const double *x, const double *q, int64_t n, double max, double min_normal,
                            fl_sweep_stats *stats)
{
    if (!stats || n < 0 || (n > 0 && (!x || !q)))
        return FL_ERROR_ARGUMENT;
    stats_pass pass;
    int status = pass_begin(&pass, stats, max, min_normal);
    if (status)
        return status;
    fl_floating_point_state environment;
    fl_enter_default_floating_point(&environment);
    for (int64_t start = 0; start < n; start += FLUSH_ELEMENTS) {
        const int64_t stop = start + FLUSH_ELEMENTS < n ? start + FLUSH_ELEMENTS : n;
        for (int64_t i = start; i < stop; i++)
            accumulate(&pass, x[i], q[i]);
        pass_count(&pass, stop - start);
    }
    pass_end(&pass, n);
    fl_leave_default_floating_point(&environment);
    return FL_OK;
}

/* Shared start of the fused kernels: the codec's checks, then the pass. */
#define FUSED_PROLOGUE                                                                           \
    if (!stats || n < 0 || (n > 0 && !x))                                                        \
        return FL_ERROR_ARGUMENT;                                                                \
    prepared_format p;                                                                           \
    int status = fl_prepare_format(format, &p);                                                  \
    if (status)                                                                                  \
        return status;                                                                           \
    if ((status = fl_check_rounding(rounding)))                                                  \
        return status;                                                                           \
    stats_pass pass;                                                                             \
    if ((status = pass_begin(&pass, stats, max, min_normal)))                                    \
        return status;                                                                           \
    fl_floating_point_state environment;                                                         \
    fl_enter_default_floating_point(&environment);

/* The element's value as fl_quantize_f32 / _f64 gives it (round.h). */
static inline double quantized_one(double x, const prepared_format *p, const fl_rounding *rounding, uint64_t index)
{
    local_stats ignored = {0, 0, 0, 0, 0};
    return decode_one_signed_nan(encode_one(x, p, rounding, index, &ignored), p);
}

int fl_sweep_evaluate_f32(const float *x, int64_t n, const fl_format *format, const fl_rounding *rounding,
                          int64_t index_offset, double max, double min_normal, fl_sweep_stats *stats)
{
    FUSED_PROLOGUE
    prepared_fast_f32 fast;
    const int has_fast = fl_prepare_fast_f32(&p, rounding, OUT_VALUES_F32, &fast);
    int full_hint = 0;
    for (int64_t start = 0; start < n; start += FAST_BLOCK) {
        const int count = (int)(start + FAST_BLOCK < n ? FAST_BLOCK : n - start);
        float q[FAST_BLOCK];
        const uint64_t first = (uint64_t)index_offset + (uint64_t)start;
        if (has_fast) {
            uint8_t is_slow[FAST_BLOCK];
            const fast_block_result block = fl_fast_f32_block(&fast, (const uint32_t *)(const void *)(x + start),
                                                              count, q, is_slow, first, &full_hint);
            if (block.slow)
                for (int j = 0; j < count; j++)
                    if (is_slow[j])
                        q[j] = (float)quantized_one((double)x[start + j], &p, rounding, first + (uint64_t)j);
        } else {
            for (int j = 0; j < count; j++)
                q[j] = (float)quantized_one((double)x[start + j], &p, rounding, first + (uint64_t)j);
        }
        for (int j = 0; j < count; j++)
            accumulate(&pass, (double)x[start + j], (double)q[j]);
        pass_count(&pass, count);
    }
    pass_end(&pass, n);
    fl_leave_default_floating_point(&environment);
    return FL_OK;
}

int fl_sweep_evaluate_f64(const double *x, int64_t n, const fl_format *format, const fl_rounding *rounding,
                          int64_t index_offset, double max, double min_normal, fl_sweep_stats *stats)
{
    FUSED_PROLOGUE
    for (int64_t start = 0; start < n; start += FAST_BLOCK) {
        const int count = (int)(start + FAST_BLOCK < n ? FAST_BLOCK : n - start);
        for (int j = 0; j < count; j++) {
            const int64_t i = start + j;
            accumulate(&pass, x[i], quantized_one(x[i], &p, rounding, (uint64_t)index_offset + (uint64_t)i));
        }
        pass_count(&pass, count);
    }
    pass_end(&pass, n);
    fl_leave_default_floating_point(&environment);
    return FL_OK;
}
