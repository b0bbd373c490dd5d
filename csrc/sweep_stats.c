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
#include "sweep_stats.h"

#include <stdlib.h>
#include <string.h>

#define LIMB_BITS 32
#define SQUARE_BINS 4096  /* index 2 * max(E, 1) (or E1' + E2'), exponent index - 2150 */
#define LINEAR_BINS 2048  /* index max(E, 1), exponent index - 1075 */
/* Elements between flushes of the bins (at most FLUSH_ELEMENTS + FAST_BLOCK): a wide bin gets at
 * most 3 terms below 2^108 each per element, so it stays below 2^125 (its limit is 2^127); a
 * float bin (below) at most one term below 2^49 per element of its set, below 2^63. */
#define FLUSH_ELEMENTS 32768

_Static_assert(FL_EXACT_LOWEST_EXPONENT % LIMB_BITS == 0, "the limbs start on a multiple of 32");
_Static_assert(sizeof(((fl_exact_sum *)0)->limb) == FL_EXACT_LIMBS * sizeof(int64_t), "limb count");

typedef __int128 wide;
typedef unsigned __int128 unsigned_wide;

struct exact_bins {
    wide square[SQUARE_BINS];
    wide linear[LINEAR_BINS];
    int used;  /* any bin nonzero since the last flush */
};

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

/* ---- the float32 path: most differences e = q - x, and most inputs, are float32 values --------
 * A float32 is m * 2^(k - 150), m < 2^24, k = max(field, 1): its square is an integer below 2^48
 * times 2^(2k - 300), so int64 bins indexed by k hold 2^15 squares each.  Consecutive elements go
 * to SETS interleaved copies of the bins, so that the adds of neighbouring elements (which often
 * hit the same bin) do not wait for each other's store. */
#define SETS 4
struct float_bins {
    int64_t square[SETS][512];  /* products m1 m2 2^(k1 + k2 - 300), index k1 + k2 */
    int64_t linear[SETS][256];
    int used;
};

/* k = max(field, 1) and the signed m of a float32 given by its bits (0 for a zero). */
static inline void float_add(float_bins *bins, int set, uint32_t bits, int with_linear)
{
    const int field = (int)((bits >> 23) & 0xFF);
    const int64_t m = (int64_t)((bits & 0x7FFFFFu) | (field ? 0x800000u : 0u));
    const int k = field ? field : 1;
    bins->square[set][2 * k] += m * m;
    if (with_linear) {
        const int64_t negative = -(int64_t)(bits >> 31); /* 0 or -1 */
        bins->linear[set][k] += (m ^ negative) - negative;
    }
}

/* 2 a b of two float32s (bits) into the square bins, the linear terms untouched. */
static inline void float_add_twice_product(float_bins *bins, int set, uint32_t a, uint32_t b)
{
    const int field_a = (int)((a >> 23) & 0xFF), field_b = (int)((b >> 23) & 0xFF);
    const int64_t ma = (int64_t)((a & 0x7FFFFFu) | (field_a ? 0x800000u : 0u));
    const int64_t mb = (int64_t)((b & 0x7FFFFFu) | (field_b ? 0x800000u : 0u));
    const int64_t product = 2 * ma * mb;
    bins->square[set][(field_a ? field_a : 1) + (field_b ? field_b : 1)] += ((a ^ b) >> 31) ? -product : product;
}

static void flush_float_bins(float_bins *bins, fl_exact_sum *squares, fl_exact_sum *linear)
{
    if (!bins->used)
        return;
    for (int k = 0; k < 512; k++) {
        wide square = 0;
        for (int set = 0; set < SETS; set++) {
            square += bins->square[set][k];
            bins->square[set][k] = 0;
        }
        exact_add(squares, square, k - 300);
    }
    for (int k = 0; k < 256; k++) {
        wide sum = 0;
        for (int set = 0; set < SETS; set++) {
            sum += bins->linear[set][k];
            bins->linear[set][k] = 0;
        }
        if (linear)
            exact_add(linear, sum, k - 150);
    }
    exact_normalise(squares);
    if (linear)
        exact_normalise(linear);
    bins->used = 0;
}

/* The float32 bits of d when d is a float32 value (exactly), else 0 with *general = 1; zeros give 0. */
static inline uint32_t float32_bits_of(double d, int *general)
{
    const int in_range = fabs(d) <= 3.4028234663852886e38; /* (float) of a larger value is undefined */
    const float f = in_range ? (float)d : 0.0f;
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    const int exact = in_range && (double)f == d;
    *general = !exact;
    return exact ? bits : 0u;
}


static void pass_flush(stats_pass *pass)
{
    flush_float_bins(pass->error_floats, &pass->stats->error_energy, &pass->stats->error_sum);
    flush_bins(pass->error_bins, &pass->stats->error_energy, &pass->stats->error_sum);
    flush_bins(pass->signal_bins, &pass->stats->signal_excluded, NULL);
    if (pass->direct) {
        exact_normalise(&pass->stats->error_energy);
        exact_normalise(&pass->stats->error_sum);
        pass->direct = 0;
    }
    pass->since_flush = 0;
}

static int pass_begin(stats_pass *pass, fl_sweep_stats *stats, double max, double min_normal)
{
    memset(stats, 0, sizeof *stats);
    pass->stats = stats;
    pass->error_bins = calloc(1, sizeof(exact_bins));
    pass->signal_bins = calloc(1, sizeof(exact_bins));
    pass->error_floats = calloc(1, sizeof(float_bins));
    pass->since_flush = 0;
    pass->direct = 0;
    pass->max = max;
    pass->min_normal = min_normal;
    if (!pass->error_bins || !pass->signal_bins || !pass->error_floats) {
        free(pass->error_bins);
        free(pass->signal_bins);
        free(pass->error_floats);
        return FL_ERROR_OUT_OF_MEMORY;
    }
    return FL_OK;
}

static void pass_end(stats_pass *pass, int64_t n)
{
    pass_flush(pass);
    free(pass->error_bins);
    free(pass->signal_bins);
    free(pass->error_floats);
    pass->stats->n = n;
}

static inline void pass_count(stats_pass *pass, int64_t elements)
{
    pass->since_flush += elements;
    if (pass->since_flush >= FLUSH_ELEMENTS)
        pass_flush(pass);
}

/* The general terms of element j (its e not an exact float32, or a finite input outside V). */
static void general_terms(stats_pass *pass, double x, double q, int kind)
{
    if (kind & 1) {
        const double e = q - x;
        const double q_part = e + x, x_part = e - q_part;
        const double t = (q - q_part) - (x + x_part);
        if (t == 0) {
            add_square(pass->error_bins, e);
            add_linear(pass->error_bins, e);
        } else {
            add_square(pass->error_bins, q);
            add_square(pass->error_bins, x);
            add_twice_product(pass->error_bins, q, x, -1);
            add_linear(pass->error_bins, q);
            add_linear(pass->error_bins, -x);
        }
        pass->error_bins->used = 1;
        const double abs_e = fabs(e), abs_x = fabs(x);
        fl_sweep_stats *stats = pass->stats;
        if (abs_e > stats->max_abs)
            stats->max_abs = abs_e;
        if (abs_x != 0 && abs_e / abs_x > stats->max_rel)
            stats->max_rel = abs_e / abs_x;
    } else if (kind & 2) {
        add_square(pass->signal_bins, x);
        pass->signal_bins->used = 1;
    }
}

/*
 * count <= FAST_BLOCK elements at once: first a branch-free loop (the compiler vectorises it)
 * for the counts, the maxima and e = q - x with its TwoSum exactness test, then the adds of e^2
 * and e into the float32 bins; the elements whose e is not an exact float32 (rare) and the
 * finite inputs outside V go through accumulate()'s general terms.
 */
static void accumulate_block(stats_pass *pass, const double *restrict x, const double *restrict q, int count)
{
    fl_sweep_stats *stats = pass->stats;
    uint32_t error_bits[FAST_BLOCK];
    uint8_t general[FAST_BLOCK];
    int64_t zeros_in = 0, nan_in = 0, inf_in = 0, overflow = 0, zeros_out = 0, below_normal = 0, nan_out = 0;
    int64_t inf_out = 0, valid = 0, generals = 0;
    double max_abs = stats->max_abs, max_rel = stats->max_rel;
    const double max = pass->max, min_normal = pass->min_normal;
    for (int j = 0; j < count; j++) {
        const double xj = x[j], qj = q[j];
        const double abs_x = fabs(xj), abs_q = fabs(qj);
        const int x_finite = abs_x <= 1.7976931348623157e308, q_finite = abs_q <= 1.7976931348623157e308;
        const int in_v = x_finite & q_finite;
        zeros_in += xj == 0;
        nan_in += xj != xj;
        inf_in += abs_x == (double)INFINITY;
        overflow += abs_x > max;
        zeros_out += qj == 0;
        below_normal += abs_q < min_normal;
        nan_out += qj != qj;
        inf_out += abs_q == (double)INFINITY;
        valid += in_v;
        const double e = in_v ? qj - xj : 0.0;
        const double q_part = e + xj, x_part = e - q_part;
        const double t = in_v ? (qj - q_part) - (xj + x_part) : 0.0;
        const double abs_e = fabs(e);
        max_abs = abs_e > max_abs ? abs_e : max_abs;
        const double relative = (in_v & (abs_x != 0)) ? abs_e / abs_x : 0.0;
        max_rel = relative > max_rel ? relative : max_rel;
        const int in_range = fabs(e) <= 3.4028234663852886e38; /* (float) of a larger value is undefined */
        const float f = in_range ? (float)e : 0.0f;
        uint32_t bits;
        memcpy(&bits, &f, sizeof bits);
        const int simple = (t == 0) & in_range & ((double)f == e);
        error_bits[j] = simple ? bits : 0u;
        general[j] = (uint8_t)(((!simple) & in_v) | ((x_finite & !q_finite) << 1));
        generals += general[j] != 0;
    }
    stats->zeros_in += zeros_in;
    stats->nan_in += nan_in;
    stats->inf_in += inf_in;
    stats->overflow += overflow;
    stats->zeros_out += zeros_out;
    stats->below_normal += below_normal;
    stats->nan_out += nan_out;
    stats->inf_out += inf_out;
    stats->valid += valid;
    stats->max_abs = max_abs;
    stats->max_rel = max_rel;
    float_bins *bins = pass->error_floats;
    for (int j = 0; j < count; j++)
        float_add(bins, j & (SETS - 1), error_bits[j], 1);
    bins->used = 1;
    if (generals)
        for (int j = 0; j < count; j++)
            if (general[j])
                general_terms(pass, x[j], q[j], general[j]);
    pass_count(pass, count);
}

/* The largest float32 <= v and the smallest float32 >= v (v > 0): float32 x compare with them
 * as with v, since no float32 lies strictly between. */
static float float_at_most(double v)
{
    if (!(v <= 3.4028234663852886e38))
        return 3.4028234663852886e38f;
    float f = (float)v;
    if ((double)f > v)
        f = nextafterf(f, 0.0f);
    return f;
}

static float float_at_least(double v)
{
    if (!(v <= 3.4028234663852886e38))
        return (float)INFINITY;
    float f = (float)v;
    if ((double)f < v)
        f = nextafterf(f, (float)INFINITY);
    return f;
}

/*
 * accumulate_block for float32 x and q: the same statistics in float32 lanes (the compiler
 * vectorises the first loop).  e = q - x in float32 with a float32 TwoSum: when its error is 0, e
 * is the exact difference and a float32 value (its bits go to the float bins, and |e| and
 * |e| / |x| in float64 are those of the float64 difference); otherwise the general terms.
 */
static void accumulate_block_f32(stats_pass *pass, const float *restrict x, const float *restrict q, int count,
                                 float max_f, float min_normal_f)
{
    fl_sweep_stats *stats = pass->stats;
    uint32_t error_bits[FAST_BLOCK], error_tails[FAST_BLOCK];
    uint32_t general[FAST_BLOCK];
    int32_t zeros_in = 0, nan_in = 0, inf_in = 0, overflow = 0, zeros_out = 0, below_normal = 0, nan_out = 0;
    int32_t inf_out = 0, valid = 0, generals = 0;
    uint32_t relative_bits[FAST_BLOCK];
    uint32_t max_abs_bits = 0, max_relative_bits = 0; /* non-negative float32s order as their bits do */
    for (int j = 0; j < count; j++) {
        const float xj = x[j], qj = q[j];
        const float abs_x = fabsf(xj), abs_q = fabsf(qj);
        const int32_t x_finite = abs_x <= 3.40282347e38f, q_finite = abs_q <= 3.40282347e38f;
        const int32_t in_v = x_finite & q_finite;
        zeros_in += xj == 0;
        nan_in += xj != xj;
        inf_in += abs_x == (float)INFINITY;
        overflow += abs_x > max_f;
        zeros_out += qj == 0;
        below_normal += abs_q < min_normal_f;
        nan_out += qj != qj;
        inf_out += abs_q == (float)INFINITY;
        valid += in_v;
        const float e = qj - xj;
        const float q_part = e + xj, x_part = e - q_part;
        const float t = (qj - q_part) - (xj + x_part);
        /* e + t = q - x exactly when nothing overflowed (TwoSum): both float32 values */
        const int32_t split = in_v & (fabsf(e) <= 3.40282347e38f) & (fabsf(t) <= 3.40282347e38f);
        const int32_t simple = split & (t == 0);
        uint32_t bits, tail_bits;
        memcpy(&bits, &e, sizeof bits);
        memcpy(&tail_bits, &t, sizeof tail_bits);
        const uint32_t keep = 0u - (uint32_t)simple; /* masks, not branches: the loop vectorises */
        const uint32_t keep_split = 0u - (uint32_t)split;
        error_bits[j] = bits & keep_split;
        error_tails[j] = tail_bits & keep_split & ~keep; /* 0 where t = 0 */
        const uint32_t abs_e_bits = bits & 0x7FFFFFFFu & keep;
        max_abs_bits = abs_e_bits > max_abs_bits ? abs_e_bits : max_abs_bits;
        /* |e| / |x| in float32 to find the candidates for the float64 maximum (below) */
        const float relative = fabsf(e) / (abs_x + (float)(abs_x == 0));
        uint32_t relative_bit_pattern;
        memcpy(&relative_bit_pattern, &relative, sizeof relative_bit_pattern);
        relative_bit_pattern &= keep & (0u - (uint32_t)(abs_x != 0));
        relative_bits[j] = relative_bit_pattern;
        max_relative_bits = relative_bit_pattern > max_relative_bits ? relative_bit_pattern : max_relative_bits;
        /* 1: q - x overflowed float32 (the float64 terms); 2: a finite input outside V; 4: a tail t */
        const int32_t kind = (in_v & !split) | ((x_finite & !q_finite) << 1) | ((split & !simple) << 2);
        general[j] = (uint32_t)kind;
        generals += kind != 0;
    }
    /* max fl64(|e| / |x|): the float32 quotient is within 2^-24 relative of the exact one when it
     * is normal (and at most 2^-149 off below), so every element whose exact quotient could be the
     * largest has a float32 quotient at least (1 - 2^-20) times the largest float32 one, or below
     * 2^-100; only those are divided in float64 (the maximum of rounded values is the rounded
     * maximum: rounding is monotonic). */
    float largest;
    memcpy(&largest, &max_relative_bits, sizeof largest);
    const float threshold = largest < 0x1p-100f ? 0.0f : largest * (1.0f - 0x1p-20f);
    uint32_t threshold_bits;
    memcpy(&threshold_bits, &threshold, sizeof threshold_bits);
    double max_rel = stats->max_rel;
    if (max_relative_bits)
        for (int j = 0; j < count; j++)
            if (relative_bits[j] >= threshold_bits && relative_bits[j]) {
                float e;
                memcpy(&e, &error_bits[j], sizeof e);
                const double relative = fabs((double)e) / fabs((double)x[j]);
                max_rel = relative > max_rel ? relative : max_rel;
            }
    stats->max_rel = max_rel;
    stats->zeros_in += zeros_in;
    stats->nan_in += nan_in;
    stats->inf_in += inf_in;
    stats->overflow += overflow;
    stats->zeros_out += zeros_out;
    stats->below_normal += below_normal;
    stats->nan_out += nan_out;
    stats->inf_out += inf_out;
    stats->valid += valid;
    float max_abs;
    memcpy(&max_abs, &max_abs_bits, sizeof max_abs);
    if ((double)max_abs > stats->max_abs)
        stats->max_abs = (double)max_abs;
    float_bins *bins = pass->error_floats;
    for (int j = 0; j < count; j++)
        float_add(bins, j & (SETS - 1), error_bits[j], 1);
    bins->used = 1;
    if (generals)
        for (int j = 0; j < count; j++) {
            if (general[j] & 4) { /* e = e_f + t exactly: t^2, 2 e_f t and t; |e| in float64 */
                float_add(bins, j & (SETS - 1), error_tails[j], 1);
                float_add_twice_product(bins, j & (SETS - 1), error_bits[j], error_tails[j]);
                float head, tail;
                memcpy(&head, &error_bits[j], sizeof head);
                memcpy(&tail, &error_tails[j], sizeof tail);
                const double abs_e = fabs((double)head + (double)tail), abs_x = fabs((double)x[j]);
                if (abs_e > stats->max_abs)
                    stats->max_abs = abs_e;
                if (abs_x != 0 && abs_e / abs_x > stats->max_rel)
                    stats->max_rel = abs_e / abs_x;
            } else if (general[j]) {
                general_terms(pass, (double)x[j], (double)q[j], (int)general[j]);
            }
        }
    pass_count(pass, count);
}

int fl_exact_signal_f64(const double *x, int64_t n, fl_exact_sum *signal)
{
    if (!signal || n < 0 || (n > 0 && !x))
        return FL_ERROR_ARGUMENT;
    memset(signal, 0, sizeof *signal);
    exact_bins *bins = calloc(1, sizeof(exact_bins));
    float_bins *floats = calloc(1, sizeof(float_bins));
    if (!bins || !floats) {
        free(bins);
        free(floats);
        return FL_ERROR_OUT_OF_MEMORY;
    }
    fl_floating_point_state environment;
    fl_enter_default_floating_point(&environment);
    for (int64_t start = 0; start < n; start += FLUSH_ELEMENTS) {
        const int64_t stop = start + FLUSH_ELEMENTS < n ? start + FLUSH_ELEMENTS : n;
        for (int64_t block = start; block < stop; block += FAST_BLOCK) {
            const int count = (int)(block + FAST_BLOCK < stop ? FAST_BLOCK : stop - block);
            uint32_t bits[FAST_BLOCK];
            int generals = 0;
            for (int j = 0; j < count; j++) {
                int general;
                const double v = fabs(x[block + j]) <= 1.7976931348623157e308 ? x[block + j] : 0.0;
                bits[j] = float32_bits_of(v, &general);
                generals += general;
            }
            for (int j = 0; j < count; j++)
                float_add(floats, j & (SETS - 1), bits[j], 0);
            if (generals)
                for (int j = 0; j < count; j++) {
                    int general;
                    const double v = fabs(x[block + j]) <= 1.7976931348623157e308 ? x[block + j] : 0.0;
                    float32_bits_of(v, &general);
                    if (general) {
                        add_square(bins, v);
                        bins->used = 1;
                    }
                }
        }
        floats->used = 1;
        flush_float_bins(floats, signal, NULL);
        flush_bins(bins, signal, NULL);
    }
    fl_leave_default_floating_point(&environment);
    free(bins);
    free(floats);
    return FL_OK;
}

int fl_exact_signal_f32(const float *x, int64_t n, fl_exact_sum *signal)
{
    if (!signal || n < 0 || (n > 0 && !x))
        return FL_ERROR_ARGUMENT;
    memset(signal, 0, sizeof *signal);
    float_bins *floats = calloc(1, sizeof(float_bins));
    if (!floats)
        return FL_ERROR_OUT_OF_MEMORY;
    for (int64_t start = 0; start < n; start += FLUSH_ELEMENTS) {
        const int64_t stop = start + FLUSH_ELEMENTS < n ? start + FLUSH_ELEMENTS : n;
        for (int64_t block = start; block < stop; block += FAST_BLOCK) {
            const int count = (int)(block + FAST_BLOCK < stop ? FAST_BLOCK : stop - block);
            uint32_t bits[FAST_BLOCK];
            memcpy(bits, x + block, (size_t)count * sizeof bits[0]);
            for (int j = 0; j < count; j++) /* NaN and Inf (exponent field all ones) count as 0 */
                bits[j] &= 0u - (uint32_t)((bits[j] & 0x7F800000u) != 0x7F800000u);
            for (int j = 0; j < count; j++)
                float_add(floats, j & (SETS - 1), bits[j], 0);
        }
        floats->used = 1;
        flush_float_bins(floats, signal, NULL);
    }
    free(floats);
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
    for (int64_t start = 0; start < n; start += FAST_BLOCK)
        accumulate_block(&pass, x + start, q + start, (int)(start + FAST_BLOCK < n ? FAST_BLOCK : n - start));
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

int fl_sweep_evaluate_f32(const float *x, int64_t n, const fl_format *format, const fl_rounding *rounding,
                          int64_t index_offset, double max, double min_normal, fl_sweep_stats *stats)
{
    FUSED_PROLOGUE
    const float max_f = float_at_most(max), min_normal_f = float_at_least(min_normal);
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
                        q[j] = (float)fl_quantized_one((double)x[start + j], &p, rounding, first + (uint64_t)j);
        } else {
            for (int j = 0; j < count; j++)
                q[j] = (float)fl_quantized_one((double)x[start + j], &p, rounding, first + (uint64_t)j);
        }
        accumulate_block_f32(&pass, x + start, q, count, max_f, min_normal_f);
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
        double q[FAST_BLOCK];
        for (int j = 0; j < count; j++)
            q[j] = fl_quantized_one(x[start + j], &p, rounding, (uint64_t)index_offset + (uint64_t)(start + j));
        accumulate_block(&pass, x + start, q, count);
    }
    pass_end(&pass, n);
    fl_leave_default_floating_point(&environment);
    return FL_OK;
}

/* ---- the pass, for bias_axis.c (sweep_stats.h) ---- */

int fl_pass_open(stats_pass *pass, fl_sweep_stats *stats, double max, double min_normal)
{
    const int status = pass_begin(pass, stats, max, min_normal);
    pass->max_f = float_at_most(max);
    pass->min_normal_f = float_at_least(min_normal);
    return status;
}

void fl_pass_target(stats_pass *pass, fl_sweep_stats *stats, double max, double min_normal)
{
    pass_flush(pass);
    pass->stats = stats;
    pass->max = max;
    pass->min_normal = min_normal;
    pass->max_f = float_at_most(max);
    pass->min_normal_f = float_at_least(min_normal);
}

void fl_pass_close(stats_pass *pass)
{
    const int64_t n = pass->stats->n;
    pass_end(pass, n);
}

void fl_pass_add_f32(stats_pass *pass, const float *x, const float *q, int count)
{
    accumulate_block_f32(pass, x, q, count, pass->max_f, pass->min_normal_f);
}

void fl_pass_add_f64(stats_pass *pass, const double *x, const double *q, int count)
{
    accumulate_block(pass, x, q, count);
}

void fl_exact_add(fl_exact_sum *sum, __int128 v, int exponent)
{
    exact_add(sum, v, exponent);
}

void fl_exact_normalise(fl_exact_sum *sum)
{
    exact_normalise(sum);
}

void fl_sweep_stats_add(fl_sweep_stats *total, const fl_sweep_stats *part)
{
    total->n += part->n;
    total->valid += part->valid;
    total->zeros_in += part->zeros_in;
    total->nan_in += part->nan_in;
    total->inf_in += part->inf_in;
    total->overflow += part->overflow;
    total->zeros_out += part->zeros_out;
    total->below_normal += part->below_normal;
    total->nan_out += part->nan_out;
    total->inf_out += part->inf_out;
    total->max_abs = part->max_abs > total->max_abs ? part->max_abs : total->max_abs;
    total->max_rel = part->max_rel > total->max_rel ? part->max_rel : total->max_rel;
    for (int k = 0; k < FL_EXACT_LIMBS; k++) {
        total->signal_excluded.limb[k] += part->signal_excluded.limb[k];
        total->error_energy.limb[k] += part->error_energy.limb[k];
        total->error_sum.limb[k] += part->error_sum.limb[k];
    }
}

/*
 * count <= FAST_BLOCK float32 elements of one binade whose inputs x are finite, nonzero and
 * multiples of 2^lsb below 2^(lsb + 24) (x = +-s 2^lsb, s < 2^24: a binade of float32 values; the
 * sorted runs of bias_axis.c).  When every difference e = q - x of the block is an exact float32
 * k 2^lsb with k an integer, |k| < 2^24 (the common case: q rounds x on a grid at least as coarse
 * as x's, or is 0, or +-max next to it), the block's sum k^2 (< 2^57) and sum k go to one bin each
 * and |e| / |x| >= 2^-24 cannot underflow float32; otherwise the block takes accumulate_block_f32.
 * The statistics are those of accumulate_block_f32, exactly: only the bins the terms go to differ.
 */
/* The lane arithmetic of fl_pass_add_binade_f32, one copy per SIMD level (compiled like
 * codec_fast.c's kernels: integer sums and float compares only, so every copy gives the same
 * numbers). */
typedef struct binade_block_sums {
    int32_t overflow, zeros_out, below_normal, bad;
    int32_t largest_k;
    int64_t square_sum, linear_sum;
    uint32_t max_relative_bits;
} binade_block_sums;

static inline __attribute__((always_inline)) binade_block_sums binade_block_body(
    const float *restrict x, const float *restrict q, int count, float scale_1, float scale_2, float max_f,
    float min_normal_f, uint32_t *restrict relative_bits)
{
    int32_t overflow = 0, zeros_out = 0, below_normal = 0, bad = 0, largest_k = 0;
    int64_t square_sum = 0, linear_sum = 0;
    uint32_t max_relative_bits = 0;
    for (int j = 0; j < count; j++) {
        const float xj = x[j], qj = q[j];
        const float abs_x = fabsf(xj), abs_q = fabsf(qj);
        overflow += abs_x > max_f;
        zeros_out += qj == 0;
        below_normal += abs_q < min_normal_f;
        const float e = qj - xj;
        const float q_part = e + xj, x_part = e - q_part;
        const float t = (qj - q_part) - (xj + x_part);
        const float k_float = (e * scale_1) * scale_2;
        const int32_t in_range = fabsf(k_float) < 16777216.0f;
        /* 0 outside the range (NaN too) before the conversion, which is then defined in every
         * lane; a mask on the bits, not a branch, so that the loop vectorises */
        uint32_t k_bits;
        memcpy(&k_bits, &k_float, sizeof k_bits);
        k_bits &= 0u - (uint32_t)in_range;
        float k_safe;
        memcpy(&k_safe, &k_bits, sizeof k_safe);
        const int32_t k = (int32_t)k_safe;
        const int32_t ok = (abs_q <= 3.40282347e38f) & (abs_x <= 3.40282347e38f) & (abs_x != 0) & (t == 0) &
                           in_range & ((float)k == k_safe) & ((k != 0) == (e != 0));
        bad += !ok;
        const int32_t abs_k = k < 0 ? -k : k;
        square_sum += (int64_t)abs_k * abs_k;
        linear_sum += k;
        largest_k = abs_k > largest_k ? abs_k : largest_k;
        const float relative = fabsf(e) / (abs_x + (float)(abs_x == 0));
        uint32_t pattern;
        memcpy(&pattern, &relative, sizeof pattern);
        relative_bits[j] = pattern;
        max_relative_bits = pattern > max_relative_bits ? pattern : max_relative_bits;
    }
    binade_block_sums sums = {overflow, zeros_out, below_normal, bad, largest_k, square_sum, linear_sum,
                              max_relative_bits};
    return sums;
}

#define BINADE_BLOCK_ARGUMENTS                                                                   \
    const float *restrict x, const float *restrict q, int count, float scale_1, float scale_2, float max_f, \
        float min_normal_f, uint32_t *restrict relative_bits
#define BINADE_BLOCK_CALL binade_block_body(x, q, count, scale_1, scale_2, max_f, min_normal_f, relative_bits)

static binade_block_sums binade_block_portable(BINADE_BLOCK_ARGUMENTS) { return BINADE_BLOCK_CALL; }
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define BINADE_SIMD 1
__attribute__((target("avx2"))) static binade_block_sums binade_block_avx2(BINADE_BLOCK_ARGUMENTS)
{
    return BINADE_BLOCK_CALL;
}
__attribute__((target("avx512f,avx512dq,avx512bw,avx512vl"))) static binade_block_sums binade_block_avx512(
    BINADE_BLOCK_ARGUMENTS)
{
    return BINADE_BLOCK_CALL;
}
#else
#define BINADE_SIMD 0
#endif

void fl_pass_add_binade_f32(stats_pass *pass, const float *restrict x, const float *restrict q, int count, int lsb)
{
    if (lsb < -149 || lsb > 104) {
        fl_pass_add_f32(pass, x, q, count);
        return;
    }
    /* 2^-lsb in two float32 factors (each exact, no intermediate over- or underflow for the k
     * that pass the checks) */
    const float scale_1 = ldexpf(1.0f, -lsb / 2), scale_2 = ldexpf(1.0f, -lsb - (-lsb / 2));
    const float max_f = pass->max_f, min_normal_f = pass->min_normal_f;
    uint32_t relative_bits[FAST_BLOCK];
    binade_block_sums sums;
#if BINADE_SIMD
    const int level = fl_codec_simd_level();
    if (level >= 2)
        sums = binade_block_avx512(x, q, count, scale_1, scale_2, max_f, min_normal_f, relative_bits);
    else if (level == 1)
        sums = binade_block_avx2(x, q, count, scale_1, scale_2, max_f, min_normal_f, relative_bits);
    else
#endif
        sums = binade_block_portable(x, q, count, scale_1, scale_2, max_f, min_normal_f, relative_bits);
    const int32_t overflow = sums.overflow, zeros_out = sums.zeros_out, below_normal = sums.below_normal;
    const int32_t bad = sums.bad, largest_k = sums.largest_k;
    const int64_t square_sum = sums.square_sum, linear_sum = sums.linear_sum;
    const uint32_t max_relative_bits = sums.max_relative_bits;
    if (bad) {
        fl_pass_add_f32(pass, x, q, count);
        return;
    }
    fl_sweep_stats *stats = pass->stats;
    stats->valid += count;
    stats->overflow += overflow;
    stats->zeros_out += zeros_out;
    stats->below_normal += below_normal;
    /* straight into the limbs (a few limb adds per block, no bins for a flush to scan): each add
     * puts below 2^33 on a limb, and fewer than 2^16 blocks come between two flushes (at most
     * FLUSH_ELEMENTS + FAST_BLOCK elements), which normalise the limbs (pass->direct) */
    exact_add(&stats->error_energy, (wide)square_sum, 2 * lsb);
    exact_add(&stats->error_sum, (wide)linear_sum, lsb);
    pass->direct = 1;
    const double max_abs = ldexp((double)largest_k, lsb);
    if (max_abs > stats->max_abs)
        stats->max_abs = max_abs;
    /* max fl64(|e| / |x|): both quotients are correctly rounded divisions of the same exact
     * values, and rounding does not decrease, so the element of the largest exact quotient has the
     * largest float32 one: only the elements of that float32 quotient are divided in float64 */
    if (max_relative_bits) {
        double max_rel = stats->max_rel;
        for (int group = 0; group < count; group += 16) { /* a vectorisable test per 16 elements */
            const int stop = group + 16 < count ? group + 16 : count;
            uint32_t any = 0;
            for (int j = group; j < stop; j++)
                any |= relative_bits[j] == max_relative_bits;
            if (any)
                for (int j = group; j < stop; j++)
                    if (relative_bits[j] == max_relative_bits) {
                        const double relative = fabs((double)q[j] - (double)x[j]) / fabs((double)x[j]);
                        max_rel = relative > max_rel ? relative : max_rel;
                    }
        }
        stats->max_rel = max_rel;
    }
    pass_count(pass, count);
}
