/*
 * scan.c - the sweep's scan pass: in one read of a tensor's values, the largest finite magnitude,
 * the zeros, NaNs and infinities, and the exact histogram of floor(log2|x|) (fmtlab._binades).
 *
 * Everything is read off the bits, never a floating log2: a normal binary32/binary64 value's
 * binade is its exponent field minus the bias; a subnormal one's is that of its integer
 * significand m (|x| = m * 2^(emin - p + 1)), floor(log2 m) = bit width of m - 1.  Magnitudes of
 * finite values order like their sign-cleared bit patterns, so the amax is an integer maximum.
 * Exponent fields are counted in four interleaved tables, so that a run of equal fields does not
 * chain every increment on the previous one's store; the tables are added at the end.
 */
#include "fmtlab.h"

#include <stdlib.h>
#include <string.h>

#define FIELD_TABLES 4

static int bit_width_u64(uint64_t m)  /* m > 0 */
{
    return 64 - __builtin_clzll(m);
}

/* The field tables of one call added into *stats: field 0 holds the zeros and the subnormals (whose
 * binades the loop counted, `subnormals` of them), the top field the infinities and the NaNs. */
static void add_fields(fl_scan_stats *stats, int64_t *fields, int top_field, int bias,
                       int64_t subnormals, int64_t nan)
{
    for (int t = 1; t < FIELD_TABLES; ++t)
        for (int field = 0; field <= top_field; ++field)
            fields[field] += fields[t * (top_field + 1) + field];
    for (int field = 1; field < top_field; ++field)
        stats->binades[field - bias - FL_SCAN_LOWEST_BINADE] += fields[field];
    stats->zeros += fields[0] - subnormals;
    stats->nan += nan;
    stats->inf += fields[top_field] - nan;
}

int fl_scan_f32(const float *x, int64_t n, fl_scan_stats *stats)
{
    if ((x == NULL && n > 0) || stats == NULL || n < 0)
        return FL_ERROR_ARGUMENT;
    int64_t fields[FIELD_TABLES * 256];
    memset(fields, 0, sizeof fields);
    uint32_t amax_bits = 0;
    int any_finite = 0;
    int64_t nan = 0, subnormals = 0;
    for (int64_t i = 0; i < n; ++i) {
        uint32_t bits;
        memcpy(&bits, &x[i], sizeof bits);
        bits &= 0x7FFFFFFFu;
        uint32_t field = bits >> 23;
        fields[(i & (FIELD_TABLES - 1)) * 256 + field] += 1;
        if (field == 0xFF) {
            nan += (bits & 0x7FFFFFu) != 0;
            continue;
        }
        any_finite = 1;
        amax_bits = bits > amax_bits ? bits : amax_bits;
        if (field == 0 && bits != 0) {  /* subnormal: |x| = m * 2^-149 */
            stats->binades[bit_width_u64(bits) - 1 - 149 - FL_SCAN_LOWEST_BINADE] += 1;
            subnormals += 1;
        }
    }
    add_fields(stats, fields, 0xFF, 127, subnormals, nan);
    stats->n += n;
    if (any_finite) {
        float amax;
        memcpy(&amax, &amax_bits, sizeof amax);
        if ((double)amax > stats->finite_amax)
            stats->finite_amax = (double)amax;
    }
    return FL_OK;
}

int fl_scan_f64(const double *x, int64_t n, fl_scan_stats *stats)
{
    if ((x == NULL && n > 0) || stats == NULL || n < 0)
        return FL_ERROR_ARGUMENT;
    int64_t *fields = calloc(FIELD_TABLES * 2048, sizeof *fields);
    if (fields == NULL)
        return FL_ERROR_OUT_OF_MEMORY;
    uint64_t amax_bits = 0;
    int any_finite = 0;
    int64_t nan = 0, subnormals = 0;
    for (int64_t i = 0; i < n; ++i) {
        uint64_t bits;
        memcpy(&bits, &x[i], sizeof bits);
        bits &= 0x7FFFFFFFFFFFFFFFull;
        uint64_t field = bits >> 52;
        fields[(i & (FIELD_TABLES - 1)) * 2048 + field] += 1;
        if (field == 0x7FF) {
            nan += (bits & 0xFFFFFFFFFFFFFull) != 0;
            continue;
        }
        any_finite = 1;
        amax_bits = bits > amax_bits ? bits : amax_bits;
        if (field == 0 && bits != 0) {  /* subnormal: |x| = m * 2^-1074 */
            stats->binades[bit_width_u64(bits) - 1 - 1074 - FL_SCAN_LOWEST_BINADE] += 1;
            subnormals += 1;
        }
    }
    add_fields(stats, fields, 0x7FF, 1023, subnormals, nan);
    free(fields);
    stats->n += n;
    if (any_finite) {
        double amax;
        memcpy(&amax, &amax_bits, sizeof amax);
        if (amax > stats->finite_amax)
            stats->finite_amax = amax;
    }
    return FL_OK;
}
