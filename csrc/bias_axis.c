/*
 * bias_axis.c - the statistics of one piece at many biases of one element format in one call
 * (docs/sweep.md, "The bias axis in one pass"): equal, count for count and bit for bit in every
 * exact sum, to one fl_sweep_evaluate_f32 / _f64 call per bias.
 *
 * The elements are sorted once by their binade e (2^e <= |x| < 2^(e+1)) and, inside a binade, by
 * a small integer z (below); zeros, NaN/Inf and an unsigned format's negative inputs get keys of
 * their own.  At bias b, with L the binade of min_normal, T the binade of max and s the exponent of
 * the smallest positive value, every element falls in exactly one class:
 *
 *   interior   L + 1 <= e <= T - 1: q keeps the ulp 2^(e - man_bits), lies in [2^e, 2^(e+1)], is
 *              normal and finite, whatever b is (the stochastic draw is keyed by the element's
 *              index and compared with the discarded fraction, which does not depend on b): the
 *              binade's statistics are evaluated once, at the first bias keeping it interior.
 *              Not with man_bits = 0 in nearest_even or odd: the code's last bit, whose parity
 *              they read, is then the exponent's and depends on b (no binade is interior);
 *   saturated  e >= T + 1 where every overflow gives +-max at b (both signs, both stochastic
 *              decisions): x >= 2^(T+1) has a lower neighbour code of at least (T + 1 + bias)
 *              2^man_bits > max_code, so it overflows whatever the rounding decides, and q =
 *              sign(x) m, m = max: from per-binade integer sums
 *              sum e^2 = c m^2 - 2 m sum |x| + sum x^2 and sum e = m (c+ - c-) - sum x;
 *   zero       e + z <= zero_top (e <= L - 1 then): q = +-0 with certainty (z below), so from
 *              per-(binade, z) integer sums of x^2 and x;
 *   shared     zeros (when the format has a zero) and NaN/+-Inf: their q does not depend on b;
 *   edge       the rest (binades <= L not known zero, T, or every binade >= T where the
 *              format does not saturate, an unsigned format's negative inputs): evaluated at b.
 *
 * z and zero_top: for subnormals "none" every binade below emin flushes to zero in every mode
 * (z = 0, zero_top = emin - 1); for "ieee" and "tesla" zero_top = s and x < 2^(e+1) gives the
 * discarded fraction nu = x / 2^s < 2^(e + 1 - s) of the lowest grid step, so q = 0 when
 *   nearest_even / nearest_away: nu < 1/2, true for e <= s - 2                      (z = 2)
 *   toward_zero, and up for x < 0, down for x > 0: nu < 1                            (z = 1)
 *   stochastic, sr_bits = N >= 1, R = the draw's top N bits: away iff k + R >= 2^N with k <= ceil(nu 2^N)
 *       (every rule), so never when ceil(nu 2^N) <= D - 1, D = 2^N - R; nu 2^N < 2^(e+1-s+N) <=
 *       2^(bitlength(D-1) - 1) <= D - 1 holds for e <= s - N - 2 + bitlength(D - 1)
 *                                                              (z = N + 2 - bitlength(D - 1))
 *   stochastic, exact (sr_bits = 0), R = draw 0 (64 bits): away only if R <= floor(nu 2^64)
 *       (round.h: R < nu 2^64 when the fraction has at most 64 bits, else R < top or R = top
 *       and later draws), so never when nu 2^64 < 2^(bitlength(R) - 1) <= R, i.e. for
 *       e <= s - 2 - clz(R)                                   (z = 2 + clz(R); R = 0: never)
 *   up for x > 0, down for x < 0, odd: never (they give +-min_subnormal); subnormals "normal":
 *       never (no zero).
 * The statistics of disjoint sets merge exactly (counts and integer sums add, maxima take the
 * max), hence the equality with one pass per bias; tests/test_sweep_bias_axis.py checks it
 * against that path and against quantize-then-exact-sums.
 *
 * The work is cut into chunks of CHUNK elements so that every per-binade integer sum fits an
 * __int128 (a float64 significand s < 2^53, s^2 < 2^106, times at most 2^20 elements).
 */
#include "sweep_stats.h"

#include <stdlib.h>
#include <string.h>

#define CHUNK (1 << 20)
#define Z_SLOTS 67          /* z = 0 .. 65, and Z_NEVER */
#define Z_NEVER (Z_SLOTS - 1)
#define NO_ZERO_REGION (-100000)
#define SORT_COPIES 4       /* interleaved counters of the counting sort (a power of two) */

typedef __int128 wide;
typedef unsigned __int128 unsigned_wide;

enum { KEY_ZERO = 0, KEY_SPECIAL = 1, KEY_UNSIGNED_NEGATIVE = 2, EXTRA_KEYS = 3 };

/* How z is found (the table above). */
enum { Z_RULE_FLUSH, Z_RULE_NEVER, Z_RULE_CONSTANT, Z_RULE_UP, Z_RULE_DOWN, Z_RULE_STOCHASTIC };

/* One bias: its prepared format, window and saturation. */
typedef struct bias_plan {
    prepared_format p;
    prepared_fast_f32 fast;
    int has_fast;
    double max, min_normal;
    int lowest, top;   /* L and T */
    int zero_top;      /* NO_ZERO_REGION where no binade is known zero */
    int saturates;
    int64_t max_significand; /* max = max_significand * 2^max_exponent, the significand odd */
    int max_exponent;
} bias_plan;

/* Per-(binade, z) sums of the zero class, cumulative over z (entries 0 .. Z_NEVER - 1). */
typedef struct zero_sums {
    int64_t count[Z_NEVER];
    unsigned_wide squares[Z_NEVER]; /* sum s^2, x = +-s 2^lsb */
    wide sum[Z_NEVER];              /* sum +-s */
    uint64_t largest[Z_NEVER];      /* max s */
} zero_sums;

/* Per-binade sums of the saturated class. */
typedef struct saturated_sums {
    int64_t positive, negative;
    wide magnitudes;           /* sum s */
    unsigned_wide squares;     /* sum s^2 */
    wide sum;                  /* sum +-s */
    double largest;            /* max |x| */
    uint32_t largest_significand; /* float32 inputs: max s */
} saturated_sums;

typedef struct call_state {
    int wide_input;            /* float64 values */
    int stochastic;
    const fl_rounding *rounding;
    int z_rule, z_constant;
    uint8_t z_by_sign[2];      /* z of a positive and of a negative input (every rule but stochastic) */
    uint64_t index_base;       /* global index of the chunk's first element */
    uint64_t stream_key;       /* fl_stream_key_inline(seed, 0) */
    int lsb_floor, mantissa_bits; /* -149, 23 (float32) or -1074, 52 (float64) */
} call_state;

/* ---- one element's binade, significand and z ---- */

typedef struct element_key {
    int kind;        /* -1: a binade element; else KEY_* */
    int binade;
    int negative;
} element_key;

static inline element_key key_of_f32(uint32_t bits, int is_signed)
{
    element_key key;
    const uint32_t field = (bits >> 23) & 0xFF, mantissa = bits & 0x7FFFFFu;
    key.negative = (int)(bits >> 31);
    key.binade = 0;
    if (field == 0xFF) {
        key.kind = (mantissa == 0 && key.negative && !is_signed) ? KEY_UNSIGNED_NEGATIVE : KEY_SPECIAL;
    } else if (field == 0 && mantissa == 0) {
        key.kind = KEY_ZERO;
    } else {
        key.kind = (key.negative && !is_signed) ? KEY_UNSIGNED_NEGATIVE : -1;
        key.binade = field ? (int)field - 127 : (31 - __builtin_clz(mantissa)) - 149;
    }
    return key;
}

static inline element_key key_of_f64(uint64_t bits, int is_signed)
{
    element_key key;
    const uint64_t field = (bits >> 52) & 0x7FF, mantissa = bits & 0x000FFFFFFFFFFFFFULL;
    key.negative = (int)(bits >> 63);
    key.binade = 0;
    if (field == 0x7FF) {
        key.kind = (mantissa == 0 && key.negative && !is_signed) ? KEY_UNSIGNED_NEGATIVE : KEY_SPECIAL;
    } else if (field == 0 && mantissa == 0) {
        key.kind = KEY_ZERO;
    } else {
        key.kind = (key.negative && !is_signed) ? KEY_UNSIGNED_NEGATIVE : -1;
        key.binade = field ? (int)field - 1023 : (63 - __builtin_clzll(mantissa)) - 1074;
    }
    return key;
}

/* |x| = s * 2^lsb with lsb = max(binade - mantissa_bits, lsb_floor): the integer s. */
static inline uint64_t significand_of(const call_state *call, const void *values, int64_t position)
{
    if (call->wide_input) {
        uint64_t bits;
        memcpy(&bits, (const double *)values + position, sizeof bits);
        const uint64_t field = (bits >> 52) & 0x7FF;
        return (bits & 0x000FFFFFFFFFFFFFULL) | (field ? 0x0010000000000000ULL : 0);
    }
    uint32_t bits;
    memcpy(&bits, (const float *)values + position, sizeof bits);
    const uint32_t field = (bits >> 23) & 0xFF;
    return (bits & 0x7FFFFFu) | (field ? 0x800000u : 0u);
}

static inline int negative_at(const call_state *call, const void *values, int64_t position)
{
    return call->wide_input ? signbit(((const double *)values)[position]) != 0
                            : signbit(((const float *)values)[position]) != 0;
}

static inline double magnitude_at(const call_state *call, const void *values, int64_t position)
{
    return call->wide_input ? fabs(((const double *)values)[position])
                            : fabs((double)((const float *)values)[position]);
}

static inline int lsb_of(const call_state *call, int binade)
{
    const int lsb = binade - call->mantissa_bits;
    return lsb > call->lsb_floor ? lsb : call->lsb_floor;
}

static inline int bit_length(uint64_t v)
{
    return v ? 64 - __builtin_clzll(v) : 0;
}

static int z_of(const call_state *call, int negative)
{
    switch (call->z_rule) {
    case Z_RULE_FLUSH: return 0;
    case Z_RULE_CONSTANT: return call->z_constant;
    case Z_RULE_UP: return negative ? 1 : Z_NEVER;
    case Z_RULE_DOWN: return negative ? Z_NEVER : 1;
    default: return Z_NEVER;
    }
}

/* z of a stochastic element from its draw 0 (the table at the top of this file). */
static inline int stochastic_z(const fl_rounding *rounding, uint64_t word)
{
    if (rounding->sr_bits > 0) {
        const int bits = rounding->sr_bits;
        const uint64_t full = (1ULL << bits) - 1; /* bits <= 32 */
        const uint64_t random_bits = word >> (64 - bits);
        return bits + 2 - bit_length(full - random_bits);
    }
    return word ? 2 + __builtin_clzll(word) : Z_NEVER;
}

/* ---- the plan of each bias ---- */

/* Whether every overflow at this format and rounding gives +-max (round.h's overflow_to_max for
 * both signs and both stochastic decisions): then binades >= T + 1 (whose codes all exceed
 * max_code) saturate. */
static int always_saturates(const prepared_format *p, const fl_rounding *rounding)
{
    return overflow_to_max(p, rounding, 0, 0) && overflow_to_max(p, rounding, 0, 1) &&
           overflow_to_max(p, rounding, 1, 0) && overflow_to_max(p, rounding, 1, 1);
}

static int make_plan(bias_plan *plan, const fl_format *format, const fl_rounding *rounding, double max,
                     double min_normal, int wide_input)
{
    int status = fl_prepare_format(format, &plan->p);
    if (status)
        return status;
    const prepared_format *p = &plan->p;
    plan->has_fast = !wide_input && rounding->mode != FL_ROUND_STOCHASTIC &&
                     fl_prepare_fast_f32(p, rounding, OUT_VALUES_F32, &plan->fast);
    plan->max = max;
    plan->min_normal = min_normal;
    int exponent;
    frexp(min_normal, &exponent);
    plan->lowest = exponent - 1;
    const double fraction = frexp(max, &exponent);
    plan->top = exponent - 1;
    int64_t significand = (int64_t)ldexp(fraction, 53);
    int max_exponent = exponent - 53;
    while (significand && !(significand & 1)) {
        significand >>= 1;
        max_exponent++;
    }
    plan->max_significand = significand;
    plan->max_exponent = max_exponent;
    switch (p->subnormals) {
    case FL_SUBNORMALS_NONE: plan->zero_top = p->emin - 1; break;
    case FL_SUBNORMALS_NORMAL: plan->zero_top = NO_ZERO_REGION; break;
    case FL_SUBNORMALS_TESLA: plan->zero_top = -p->bias - p->man_bits; break;
    default: plan->zero_top = p->emin - p->man_bits;
    }
    plan->saturates = always_saturates(p, rounding);
    /* a known-zero element is below 2^(zero_top + 1): it must not count as overflowing */
    if (plan->zero_top != NO_ZERO_REGION && !(max >= ldexp(1.0, plan->zero_top + 1)))
        plan->zero_top = NO_ZERO_REGION;
    if (p->man_bits == 0 && (rounding->mode == FL_ROUND_NEAREST_EVEN || rounding->mode == FL_ROUND_ODD)) {
        /* without mantissa bits a code's last bit is its exponent's: the tie of nearest_even and
         * every decision of odd depend on the bias, so no binade is interior (all are edge) */
        plan->lowest = plan->top - 1;
    }
    if (!(max > 0) || !(min_normal > 0) || !(max >= min_normal)) {
        /* a format without a positive finite value (max = 0: every finite code is a zero): no
         * window, every element is an edge element */
        plan->lowest = 1 << 20;
        plan->top = 1 << 20;
        plan->zero_top = NO_ZERO_REGION;
        plan->saturates = 0;
    }
    return FL_OK;
}

/* ---- evaluating a run of sorted elements at one bias ---- */

#define NO_BINADE (-100000) /* a run of elements of more than one binade, or of extra keys */

/*
 * Stochastic rounding of a float32 x (finite, nonzero; x > 0 or a signed format) given its draw 0,
 * on the regular grid of round.h's encode_one: the binade's grid 2^(binade - m) from emin up, the
 * ieee subnormals' 2^(emin - m) below; |x| = S 2^lsb, N = S >> shift units of the grid and the
 * remainder decided by round.h's stochastic_away_from.  Returns 0 (the caller then takes
 * fl_quantized_one) for every other case: tesla, none or normal subnormals below emin, a shift of
 * 64 or more, a result above max_code.
 */
/* The grid of one binade at one bias (regular_grid_of). */
typedef struct regular_grid {
    int usable;        /* the binade lies on a regular grid at this bias */
    int grid;          /* the grid's exponent */
    int64_t code_base; /* the code of N = 0 units */
    double step;       /* 2^grid */
} regular_grid;

static regular_grid regular_grid_of(const bias_plan *plan, int binade)
{
    const prepared_format *p = &plan->p;
    regular_grid g = {0, 0, 0, 0.0};
    if (binade >= p->emin) {
        g.grid = binade - p->man_bits;
        g.code_base = (int64_t)(binade + p->bias - 1) * ((int64_t)1 << p->man_bits);
        g.usable = 1;
    } else if (p->subnormals == FL_SUBNORMALS_IEEE) {
        g.grid = p->emin - p->man_bits;
        g.usable = 1;
    }
    g.step = ldexp(1.0, g.grid);
    return g;
}

static inline int stochastic_regular_f32(float x, const regular_grid *g, const prepared_format *p,
                                         const fl_rounding *rounding, uint64_t word, uint64_t index, float *q)
{
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    const int negative = (int)(bits >> 31);
    if (negative && !p->is_signed)
        return 0;
    const uint32_t field = (bits >> 23) & 0xFF;
    const uint64_t significand = (bits & 0x7FFFFFu) | (field ? 0x800000u : 0u);
    const int lsb = field ? (int)field - 150 : -149;
    const int shift = g->grid - lsb;
    uint64_t units, remainder;
    if (shift <= 0) {
        units = significand << -shift;
        remainder = 0;
    } else if (shift < 64) {
        units = significand >> shift;
        remainder = significand & ((1ULL << shift) - 1);
    } else {
        return 0;
    }
    const int away = remainder ? stochastic_away_from(word, remainder, shift, rounding->sr_bits,
                                                      sr_rule_bits_of(rounding->sr_rule), rounding->seed, index)
                               : 0;
    const uint64_t value_units = units + (uint64_t)away;
    if (g->code_base + (int64_t)value_units > p->max_code)
        return 0;
    if (value_units == 0) { /* zero_code: -0 only where the format has it */
        *q = (negative && p->has_negative_zero) ? -0.0f : 0.0f;
        return 1;
    }
    const double magnitude = (double)value_units * g->step; /* exact: the value is a float32 */
    *q = (float)(negative ? -magnitude : magnitude);
    return 1;
}

/*
 * stochastic_regular_f32 for a block of one binade whose grid is regular and finer than the
 * input's (1 <= shift <= 63, the same for every element: x = +-S 2^lsb with the binade's lsb), in
 * lanes: round.h's stochastic_away_from with shift <= 64 is "R < remainder 2^(64 - shift)"
 * (exact probability) or "k + (R >> (64 - N)) >= 2^N" with k from sr_reduced_fraction (sr_bits N),
 * and a zero remainder gives no away in both.  Elements whose code would pass max_code, and
 * negative inputs of an unsigned format, are flagged in slow for fl_quantized_one.
 */
typedef struct stochastic_lanes {
    int shift, sr_bits, kept_shift_up, kept_shift_down; /* twice = remainder << up >> down */
    uint64_t sticky_mask;
    sr_rule_bits rule;
    uint64_t code_base, max_code;
    uint32_t implicit_bit, negative_ok_mask, negative_zero_sign;
    double step;
} stochastic_lanes;

/* One lane's q and slow flag from its units and away decision. */
static inline __attribute__((always_inline)) void stochastic_lane_result(
    uint32_t bits, uint64_t units, uint64_t away, const stochastic_lanes *restrict c, float *restrict q,
    uint8_t *restrict slow)
{
    const uint64_t value_units = units + away;
    const uint32_t negative = bits >> 31;
    *slow = (uint8_t)((c->code_base + value_units > c->max_code) | (negative & ~c->negative_ok_mask & 1u));
    const float magnitude = (float)((double)(int64_t)value_units * c->step);
    uint32_t result;
    memcpy(&result, &magnitude, sizeof result);
    /* the input's sign, except on a zero of a format without -0 */
    result |= (negative << 31) & (0u - (uint32_t)((value_units != 0) | c->negative_zero_sign));
    memcpy(q, &result, sizeof result);
}

static inline __attribute__((always_inline)) void stochastic_lanes_body(
    const float *restrict x, const uint64_t *restrict words, int count, const stochastic_lanes *restrict c,
    float *restrict q, uint8_t *restrict slow)
{
    const int shift = c->shift, sr_bits = c->sr_bits, up = c->kept_shift_up, down = c->kept_shift_down;
    const uint64_t low_mask = (1ULL << shift) - 1, sticky_mask = c->sticky_mask;
    const uint32_t implicit_bit = c->implicit_bit;
    const sr_rule_bits rule = c->rule;
    if (sr_bits > 0) {
        const int random_shift = 64 - sr_bits;
        const uint64_t full = 1ULL << sr_bits;
        for (int j = 0; j < count; j++) {
            uint32_t bits;
            memcpy(&bits, x + j, sizeof bits);
            const uint64_t significand = (bits & 0x7FFFFFu) | implicit_bit;
            const uint64_t remainder = significand & low_mask;
            const uint64_t twice = (remainder << up) >> down;
            const uint64_t k = sr_reduced_fraction(twice, (remainder & sticky_mask) != 0, rule);
            const uint64_t away = k + (words[j] >> random_shift) >= full;
            stochastic_lane_result(bits, significand >> shift, away, c, q + j, slow + j);
        }
    } else {
        const int threshold_shift = 64 - shift;
        for (int j = 0; j < count; j++) {
            uint32_t bits;
            memcpy(&bits, x + j, sizeof bits);
            const uint64_t significand = (bits & 0x7FFFFFu) | implicit_bit;
            const uint64_t away = words[j] < ((significand & low_mask) << threshold_shift);
            stochastic_lane_result(bits, significand >> shift, away, c, q + j, slow + j);
        }
    }
}

#define STOCHASTIC_LANES_ARGUMENTS                                                               \
    const float *restrict x, const uint64_t *restrict words, int count, const stochastic_lanes *restrict c, \
        float *restrict q, uint8_t *restrict slow
static void stochastic_lanes_portable(STOCHASTIC_LANES_ARGUMENTS)
{
    stochastic_lanes_body(x, words, count, c, q, slow);
}
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define LANES_SIMD 1
__attribute__((target("avx2"))) static void stochastic_lanes_avx2(STOCHASTIC_LANES_ARGUMENTS)
{
    stochastic_lanes_body(x, words, count, c, q, slow);
}
__attribute__((target("avx512f,avx512dq,avx512bw,avx512vl"))) static void stochastic_lanes_avx512(
    STOCHASTIC_LANES_ARGUMENTS)
{
    stochastic_lanes_body(x, words, count, c, q, slow);
}
#else
#define LANES_SIMD 0
#endif

static void stochastic_lanes_block(const float *x, const uint64_t *words, int count, const stochastic_lanes *c,
                                   float *q, uint8_t *slow)
{
#if LANES_SIMD
    const int level = fl_codec_simd_level();
    if (level >= 2) {
        stochastic_lanes_avx512(x, words, count, c, q, slow);
        return;
    }
    if (level == 1) {
        stochastic_lanes_avx2(x, words, count, c, q, slow);
        return;
    }
#endif
    stochastic_lanes_portable(x, words, count, c, q, slow);
}

/* The lane constants of a binade at a bias; 0 where the lanes do not apply (shift outside 1..63,
 * a grid that is not regular). */
static int stochastic_lanes_of(const regular_grid *g, const bias_plan *plan, const fl_rounding *rounding,
                               int binade, stochastic_lanes *c)
{
    if (!g->usable)
        return 0;
    const int lsb = binade >= -126 ? binade - 23 : -149;
    c->shift = g->grid - lsb;
    if (c->shift < 1 || c->shift > 63)
        return 0;
    c->sr_bits = rounding->sr_bits;
    c->rule = sr_rule_bits_of(rounding->sr_rule);
    const int kept = rounding->sr_bits + 1;
    c->kept_shift_up = c->shift <= kept ? kept - c->shift : 0;
    c->kept_shift_down = c->shift <= kept ? 0 : c->shift - kept;
    c->sticky_mask = c->shift <= kept ? 0 : (1ULL << (c->shift - kept)) - 1;
    c->code_base = (uint64_t)g->code_base;
    c->max_code = (uint64_t)plan->p.max_code;
    c->implicit_bit = binade >= -126 ? 0x800000u : 0u;
    c->negative_ok_mask = plan->p.is_signed ? 1u : 0u;
    c->negative_zero_sign = plan->p.has_negative_zero ? 1u : 0u;
    c->step = g->step;
    return 1;
}

/* Sorted positions begin .. end - 1 (all of binade `binade`, or NO_BINADE) evaluated at the bias
 * of plan into the pass. */
static void evaluate_run(stats_pass *pass, const call_state *call, const bias_plan *plan, const void *values,
                         const uint32_t *local_index, const uint64_t *words, int64_t begin, int64_t end,
                         int binade)
{
    const int lsb = binade == NO_BINADE ? NO_BINADE : lsb_of(call, binade);
    const fl_rounding *rounding = call->rounding;
    regular_grid grid = {0, 0, 0, 0.0};
    stochastic_lanes lanes;
    int lanes_usable = 0;
    if (call->stochastic && !call->wide_input && binade != NO_BINADE) {
        grid = regular_grid_of(plan, binade);
        lanes_usable = stochastic_lanes_of(&grid, plan, rounding, binade, &lanes);
    }
    int full_hint = 0;
    for (int64_t start = begin; start < end; start += FAST_BLOCK) {
        const int count = (int)(start + FAST_BLOCK < end ? FAST_BLOCK : end - start);
        if (call->wide_input) {
            const double *x = (const double *)values + start;
            double q[FAST_BLOCK];
            for (int j = 0; j < count; j++)
                q[j] = fl_quantized_one(x[j], &plan->p, rounding,
                                        call->stochastic ? call->index_base + local_index[start + j] : 0);
            fl_pass_add_f64(pass, x, q, count);
            continue;
        }
        const float *x = (const float *)values + start;
        float q[FAST_BLOCK];
        if (plan->has_fast) { /* deterministic: the index does not matter */
            uint8_t is_slow[FAST_BLOCK];
            const fast_block_result block = fl_fast_f32_block(&plan->fast, (const uint32_t *)(const void *)x, count,
                                                              q, is_slow, 0, &full_hint);
            if (block.slow)
                for (int j = 0; j < count; j++)
                    if (is_slow[j])
                        q[j] = (float)fl_quantized_one((double)x[j], &plan->p, rounding, 0);
        } else if (lanes_usable) {
            uint8_t slow[FAST_BLOCK];
            stochastic_lanes_block(x, words + start, count, &lanes, q, slow);
            for (int j = 0; j < count; j++)
                if (slow[j])
                    q[j] = (float)fl_quantized_one((double)x[j], &plan->p, rounding,
                                                   call->index_base + local_index[start + j]);
        } else if (call->stochastic && binade != NO_BINADE && grid.usable) {
            for (int j = 0; j < count; j++) {
                const uint64_t index = call->index_base + local_index[start + j];
                if (!stochastic_regular_f32(x[j], &grid, &plan->p, rounding, words[start + j], index, &q[j]))
                    q[j] = (float)fl_quantized_one((double)x[j], &plan->p, rounding, index);
            }
        } else {
            for (int j = 0; j < count; j++)
                q[j] = (float)fl_quantized_one((double)x[j], &plan->p, rounding,
                                               call->stochastic ? call->index_base + local_index[start + j] : 0);
        }
        if (lsb != NO_BINADE)
            fl_pass_add_binade_f32(pass, x, q, count, lsb);
        else
            fl_pass_add_f32(pass, x, q, count);
    }
}

/* ---- one chunk ---- */

typedef struct chunk_state {
    const call_state *call;
    int64_t count;
    int binade_low, span;      /* binades binade_low .. binade_low + span - 1 */
    int64_t *start;            /* start[k * Z_SLOTS + z]: first sorted position of (binade, z); the
                                  extra keys after span * Z_SLOTS; start[buckets] = count */
    void *values;              /* sorted */
    uint32_t *local_index;     /* sorted positions' original index in the chunk (stochastic only) */
    uint64_t *words;           /* sorted positions' draw 0 (stochastic only) */
    fl_sweep_stats **interior; /* per binade, computed at the first bias needing it */
    fl_sweep_stats *extra[EXTRA_KEYS];
    zero_sums **zeros;         /* per binade, lazily */
    saturated_sums **saturated;
} chunk_state;

static inline int64_t bucket_start(const chunk_state *chunk, int k, int z)
{
    return chunk->start[(int64_t)k * Z_SLOTS + z];
}

static inline int64_t extra_start(const chunk_state *chunk, int key)
{
    return chunk->start[(int64_t)chunk->span * Z_SLOTS + key];
}

static const zero_sums *zero_sums_of(chunk_state *chunk, int k)
{
    if (chunk->zeros[k])
        return chunk->zeros[k];
    zero_sums *sums = calloc(1, sizeof *sums);
    if (!sums)
        return NULL;
    const call_state *call = chunk->call;
    for (int z = 0; z < Z_NEVER; z++) {
        int64_t count = z ? sums->count[z - 1] : 0;
        unsigned_wide squares = z ? sums->squares[z - 1] : 0;
        wide sum = z ? sums->sum[z - 1] : 0;
        uint64_t largest = z ? sums->largest[z - 1] : 0;
        for (int64_t i = bucket_start(chunk, k, z); i < bucket_start(chunk, k, z + 1); i++) {
            const uint64_t s = significand_of(call, chunk->values, i);
            count++;
            squares += (unsigned_wide)s * s;
            sum += negative_at(call, chunk->values, i) ? -(wide)s : (wide)s;
            largest = s > largest ? s : largest;
        }
        sums->count[z] = count;
        sums->squares[z] = squares;
        sums->sum[z] = sum;
        sums->largest[z] = largest;
    }
    chunk->zeros[k] = sums;
    return sums;
}

/* Sums of s, s^2 and +-s over float32 elements of one binade (bits, s < 2^24: int64 sums of
 * s^2 over at most 2^15 elements), vectorisable. */
static void float_binade_sums(const float *values, int64_t begin, int64_t end, uint32_t implicit_bit,
                              saturated_sums *sums)
{
    uint32_t largest = 0;
    for (int64_t start = begin; start < end; start += 32768) {
        const int64_t stop = start + 32768 < end ? start + 32768 : end;
        int64_t negative = 0, magnitudes = 0, squares = 0, sum = 0;
        for (int64_t i = start; i < stop; i++) {
            uint32_t bits;
            memcpy(&bits, values + i, sizeof bits);
            const int64_t s = (int64_t)((bits & 0x7FFFFFu) | implicit_bit);
            const int64_t sign = -(int64_t)(bits >> 31); /* 0 or -1 */
            negative -= sign;
            magnitudes += s;
            squares += s * s;
            sum += (s ^ sign) - sign;
            largest = (uint32_t)s > largest ? (uint32_t)s : largest;
        }
        sums->negative += negative;
        sums->positive += (stop - start) - negative;
        sums->magnitudes += magnitudes;
        sums->squares += (unsigned_wide)squares;
        sums->sum += sum;
    }
    sums->largest_significand = largest;
}

static const saturated_sums *saturated_sums_of(chunk_state *chunk, int k)
{
    if (chunk->saturated[k])
        return chunk->saturated[k];
    saturated_sums *sums = calloc(1, sizeof *sums);
    if (!sums)
        return NULL;
    const call_state *call = chunk->call;
    const int binade = chunk->binade_low + k;
    const int64_t begin = bucket_start(chunk, k, 0), end = bucket_start(chunk, k + 1, 0);
    if (!call->wide_input) {
        float_binade_sums((const float *)chunk->values, begin, end, binade >= -126 ? 0x800000u : 0u, sums);
        sums->largest = ldexp((double)sums->largest_significand, lsb_of(call, binade));
    } else {
        for (int64_t i = begin; i < end; i++) {
            const uint64_t s = significand_of(call, chunk->values, i);
            const int negative = negative_at(call, chunk->values, i);
            sums->positive += !negative;
            sums->negative += negative;
            sums->magnitudes += (wide)s;
            sums->squares += (unsigned_wide)s * s;
            sums->sum += negative ? -(wide)s : (wide)s;
            const double a = magnitude_at(call, chunk->values, i);
            sums->largest = a > sums->largest ? a : sums->largest;
        }
    }
    chunk->saturated[k] = sums;
    return sums;
}

/* The statistics of a shared group (interior binade or an extra key) at the bias of plan,
 * computed once: the pass is pointed at it and back at *current. */
static fl_sweep_stats *shared_group(stats_pass *pass, fl_sweep_stats **slot, const chunk_state *chunk,
                                    const bias_plan *plan, fl_sweep_stats *current, int64_t begin, int64_t end,
                                    int binade)
{
    if (*slot)
        return *slot;
    fl_sweep_stats *group = calloc(1, sizeof *group);
    if (!group)
        return NULL;
    fl_pass_target(pass, group, plan->max, plan->min_normal);
    evaluate_run(pass, chunk->call, plan, chunk->values, chunk->local_index, chunk->words, begin, end, binade);
    fl_pass_target(pass, current, plan->max, plan->min_normal);
    *slot = group;
    return group;
}

/* The saturated class at this bias: binades k_first .. span - 1 (binade >= T + 1). */
static int add_saturated(chunk_state *chunk, const bias_plan *plan, fl_sweep_stats *stats, int k_first)
{
    const call_state *call = chunk->call;
    const int64_t m_significand = plan->max_significand;
    const int t = plan->max_exponent;
    int64_t total = 0;
    int k_top = -1;
    for (int k = k_first; k < chunk->span; k++) {
        if (bucket_start(chunk, k, 0) == bucket_start(chunk, k + 1, 0))
            continue;
        const saturated_sums *sums = saturated_sums_of(chunk, k);
        if (!sums)
            return FL_ERROR_OUT_OF_MEMORY;
        const int lsb = lsb_of(call, chunk->binade_low + k);
        total += sums->positive + sums->negative;
        /* - 2 m sum|x| = -2 M A 2^(t + lsb), M A < 2^126: added twice */
        const wide product = (wide)m_significand * sums->magnitudes;
        fl_exact_add(&stats->error_energy, -product, t + lsb);
        fl_exact_add(&stats->error_energy, -product, t + lsb);
        fl_exact_add(&stats->error_energy, (wide)sums->squares, 2 * lsb);
        fl_exact_add(&stats->error_sum, (wide)m_significand * (sums->positive - sums->negative), t);
        fl_exact_add(&stats->error_sum, -sums->sum, lsb);
        k_top = k;
    }
    if (k_top < 0)
        return FL_OK;
    fl_exact_add(&stats->error_energy, (wide)total * m_significand * m_significand, 2 * t);
    stats->valid += total;
    stats->overflow += total;
    const double m = plan->max;
    const double largest = chunk->saturated[k_top]->largest;
    const double max_abs = largest - m; /* a -> fl(a - m) does not decrease */
    stats->max_abs = max_abs > stats->max_abs ? max_abs : stats->max_abs;
    /* max fl(fl(a - m) / a): g(a) <= rho(a) (1 + u)^2 with rho(a) = 1 - m / a increasing, u = 2^-53
     * (no underflow: a - m >= 2^(T+1) - m >= 2^(T - man_bits), so the quotient is at least
     * 2^(-man_bits - 2)), so only a with rho(a) >= K = g(a_max) / (1 +
     * u)^2, i.e. a >= m / (1 - K), can exceed g(a_max); a_low below is at most that bound.  g <= 1
     * always (fl(a - m) <= a), so g(a_max) = 1 ends the search. */
    double best = (largest - m) / largest;
    if (best < 1.0) {
        const double k_low = nextafter(best * (1.0 - 0x1p-51), 0.0);
        const double one_minus = nextafter(1.0 - k_low, 2.0);
        const double a_low = nextafter(m / one_minus, 0.0);
        for (int k = k_top; k >= k_first; k--) {
            if (ldexp(1.0, chunk->binade_low + k + 1) <= a_low)
                break;
            for (int64_t i = bucket_start(chunk, k, 0); i < bucket_start(chunk, k + 1, 0); i++) {
                const double a = magnitude_at(call, chunk->values, i);
                if (a >= a_low) {
                    const double g = (a - m) / a;
                    best = g > best ? g : best;
                }
            }
        }
    }
    stats->max_rel = best > stats->max_rel ? best : stats->max_rel;
    return FL_OK;
}

/* The zero class at this bias: binade k's elements with z <= zero_top - binade. */
static int add_zeros(chunk_state *chunk, const bias_plan *plan, fl_sweep_stats *stats)
{
    const call_state *call = chunk->call;
    int found = 0;
    for (int k = 0; k < chunk->span; k++) {
        const int binade = chunk->binade_low + k;
        if (binade > plan->zero_top || binade > plan->lowest)
            break;
        const int last = plan->zero_top - binade < Z_NEVER - 1 ? plan->zero_top - binade : Z_NEVER - 1;
        if (bucket_start(chunk, k, 0) == bucket_start(chunk, k, last + 1))
            continue;
        const zero_sums *sums = zero_sums_of(chunk, k);
        if (!sums)
            return FL_ERROR_OUT_OF_MEMORY;
        const int lsb = lsb_of(call, binade);
        const int64_t count = sums->count[last];
        stats->valid += count;
        stats->zeros_out += count;
        stats->below_normal += count;
        fl_exact_add(&stats->error_energy, (wide)sums->squares[last], 2 * lsb);
        fl_exact_add(&stats->error_sum, -sums->sum[last], lsb);
        const double largest = ldexp((double)sums->largest[last], lsb); /* |e| = |x| */
        stats->max_abs = largest > stats->max_abs ? largest : stats->max_abs;
        found = 1;
    }
    if (found && stats->max_rel < 1.0)
        stats->max_rel = 1.0; /* |e| / |x| = 1 exactly */
    return FL_OK;
}

static int evaluate_bias(stats_pass *pass, chunk_state *chunk, const bias_plan *plan, fl_sweep_stats *stats)
{
    const call_state *call = chunk->call;
    fl_pass_target(pass, stats, plan->max, plan->min_normal);
    const int low = chunk->binade_low, span = chunk->span;
    /* edge: binades <= L not known zero (a suffix of each binade's z order) */
    for (int k = 0; k < span && low + k <= plan->lowest; k++) {
        int first = plan->zero_top == NO_ZERO_REGION ? 0 : plan->zero_top - (low + k) + 1;
        first = first < 0 ? 0 : (first > Z_NEVER ? Z_NEVER : first);
        evaluate_run(pass, call, plan, chunk->values, chunk->local_index, chunk->words, bucket_start(chunk, k, first),
                     bucket_start(chunk, k + 1, 0), low + k);
    }
    /* edge: binades max(T, L + 1) .. T (every binade from there where the format does not saturate) */
    int k_upper = (plan->top > plan->lowest + 1 ? plan->top : plan->lowest + 1) - low;
    k_upper = k_upper < 0 ? 0 : (k_upper > span ? span : k_upper);
    int k_saturated = plan->saturates ? plan->top + 1 - low : span;
    k_saturated = k_saturated < k_upper ? k_upper : (k_saturated > span ? span : k_saturated);
    for (int k = k_upper; k < k_saturated; k++)
        evaluate_run(pass, call, plan, chunk->values, chunk->local_index, chunk->words, bucket_start(chunk, k, 0),
                     bucket_start(chunk, k + 1, 0), low + k);
    /* edge: an unsigned format's negative inputs, and zeros where the format has no zero */
    evaluate_run(pass, call, plan, chunk->values, chunk->local_index, chunk->words,
                 extra_start(chunk, KEY_UNSIGNED_NEGATIVE), extra_start(chunk, KEY_UNSIGNED_NEGATIVE + 1), NO_BINADE);
    for (int key = KEY_ZERO; key <= KEY_SPECIAL; key++) {
        const int64_t begin = extra_start(chunk, key), end = extra_start(chunk, key + 1);
        if (begin == end)
            continue;
        if (key == KEY_ZERO && !plan->p.has_zero) {
            evaluate_run(pass, call, plan, chunk->values, chunk->local_index, chunk->words, begin, end, NO_BINADE);
            continue;
        }
        const fl_sweep_stats *group = shared_group(pass, &chunk->extra[key], chunk, plan, stats, begin, end,
                                                   NO_BINADE);
        if (!group)
            return FL_ERROR_OUT_OF_MEMORY;
        fl_sweep_stats_add(stats, group);
    }
    /* interior: binades L + 1 .. T - 1 */
    for (int k = plan->lowest + 1 - low; k <= plan->top - 1 - low; k++) {
        if (k < 0 || k >= span)
            continue;
        const int64_t begin = bucket_start(chunk, k, 0), end = bucket_start(chunk, k + 1, 0);
        if (begin == end)
            continue;
        const fl_sweep_stats *group = shared_group(pass, &chunk->interior[k], chunk, plan, stats, begin, end,
                                                   low + k);
        if (!group)
            return FL_ERROR_OUT_OF_MEMORY;
        fl_sweep_stats_add(stats, group);
    }
    int status = add_zeros(chunk, plan, stats);
    if (!status && plan->saturates)
        status = add_saturated(chunk, plan, stats, k_saturated);
    return status;
}

/* Sort the chunk by (binade, z), extra keys last; the sorted values (and original positions
 * when stochastic) into chunk. */
static int sort_chunk(chunk_state *chunk, const void *x, int is_signed, int16_t *binades, uint8_t *slots,
                      int32_t *buckets, uint64_t *element_words)
{
    const call_state *call = chunk->call;
    const int64_t count = chunk->count;
    int low = 1 << 20, high = -(1 << 20);
    for (int64_t i = 0; i < count; i++) {
        element_key key;
        if (call->wide_input) {
            uint64_t bits;
            memcpy(&bits, (const double *)x + i, sizeof bits);
            key = key_of_f64(bits, is_signed);
        } else {
            uint32_t bits;
            memcpy(&bits, (const float *)x + i, sizeof bits);
            key = key_of_f32(bits, is_signed);
        }
        if (key.kind < 0) {
            binades[i] = (int16_t)key.binade;
            if (call->stochastic) {
                const uint64_t word = fl_mix64_inline(call->stream_key + (call->index_base + (uint64_t)i) *
                                                      0x9E3779B97F4A7C15ULL); /* fl_random_word_inline */
                element_words[i] = word;
                slots[i] = (uint8_t)stochastic_z(call->rounding, word);
            } else {
                slots[i] = call->z_by_sign[key.negative];
            }
            low = key.binade < low ? key.binade : low;
            high = key.binade > high ? key.binade : high;
        } else {
            binades[i] = INT16_MIN;
            slots[i] = (uint8_t)key.kind;
        }
    }
    if (low > high)
        low = high = 0;
    chunk->binade_low = low;
    chunk->span = high - low + 1;
    const int64_t buckets_count = (int64_t)chunk->span * Z_SLOTS + EXTRA_KEYS;
    chunk->start = calloc((size_t)buckets_count + 1, sizeof(int64_t));
    if (!chunk->start)
        return FL_ERROR_OUT_OF_MEMORY;
    /* SORT_COPIES interleaved counters per bucket (element i counts in copy i mod SORT_COPIES), so
     * that neighbouring elements of one bucket do not wait on each other's increment; each copy's
     * elements are contiguous inside their bucket (the order inside a bucket changes no statistic:
     * every sum is exact, and a stochastic element keeps its own index and draw) */
    int64_t *start = chunk->start;
    int64_t *next = calloc((size_t)buckets_count * SORT_COPIES, sizeof(int64_t));
    if (!next)
        return FL_ERROR_OUT_OF_MEMORY;
    for (int64_t i = 0; i < count; i++) {
        const int32_t bucket = binades[i] == INT16_MIN ? chunk->span * Z_SLOTS + slots[i]
                                                       : (binades[i] - low) * Z_SLOTS + slots[i];
        buckets[i] = bucket;
        next[(int64_t)bucket * SORT_COPIES + (i & (SORT_COPIES - 1))]++;
    }
    int64_t position = 0;
    for (int64_t b = 0; b < buckets_count; b++) {
        start[b] = position;
        for (int copy = 0; copy < SORT_COPIES; copy++) {
            const int64_t copies = next[b * SORT_COPIES + copy];
            next[b * SORT_COPIES + copy] = position;
            position += copies;
        }
    }
    start[buckets_count] = position;
    int64_t *restart = NULL;
    if (chunk->local_index) {
        restart = malloc((size_t)buckets_count * SORT_COPIES * sizeof(int64_t));
        if (!restart) {
            free(next);
            return FL_ERROR_OUT_OF_MEMORY;
        }
        memcpy(restart, next, (size_t)buckets_count * SORT_COPIES * sizeof(int64_t));
    }
#define SORTED_POSITION(next, i) (next)[(int64_t)buckets[i] * SORT_COPIES + ((i) & (SORT_COPIES - 1))]++
    if (call->wide_input) {
        const double *source = x;
        double *sorted = chunk->values;
        for (int64_t i = 0; i < count; i++)
            sorted[SORTED_POSITION(next, i)] = source[i];
    } else {
        const float *source = x;
        float *sorted = chunk->values;
        for (int64_t i = 0; i < count; i++)
            sorted[SORTED_POSITION(next, i)] = source[i];
    }
    if (restart) { /* the same positions again */
        for (int64_t i = 0; i < count; i++) {
            const int64_t sorted_position = SORTED_POSITION(restart, i);
            chunk->local_index[sorted_position] = (uint32_t)i;
            chunk->words[sorted_position] = element_words[i];
        }
        free(restart);
    }
#undef SORTED_POSITION
    free(next);
    return FL_OK;
}

static void free_chunk(chunk_state *chunk)
{
    for (int k = 0; k < chunk->span; k++) {
        if (chunk->interior)
            free(chunk->interior[k]);
        if (chunk->zeros)
            free(chunk->zeros[k]);
        if (chunk->saturated)
            free(chunk->saturated[k]);
    }
    for (int key = 0; key < EXTRA_KEYS; key++)
        free(chunk->extra[key]);
    free(chunk->interior);
    free(chunk->zeros);
    free(chunk->saturated);
    free(chunk->start);
}

static int evaluate_biases(const void *x, int wide_input, int64_t n, const fl_format *formats, int bias_count,
                           const fl_rounding *rounding, int64_t index_offset, const double *maxima,
                           const double *min_normals, fl_sweep_stats *stats)
{
    if (!stats || !formats || !maxima || !min_normals || bias_count < 0 || n < 0 || (n > 0 && !x))
        return FL_ERROR_ARGUMENT;
    if (!rounding)
        return FL_ERROR_ROUNDING_MODE;
    int status = fl_check_rounding(rounding);
    if (status)
        return status;
    for (int b = 0; b < bias_count; b++) {
        const fl_format *f = &formats[b];
        if (f->exp_bits != formats[0].exp_bits || f->man_bits != formats[0].man_bits ||
            f->is_signed != formats[0].is_signed || f->specials != formats[0].specials ||
            f->subnormals != formats[0].subnormals)
            return FL_ERROR_ARGUMENT;
    }
    if (bias_count == 0)
        return FL_OK;
    bias_plan *plans = calloc((size_t)bias_count, sizeof *plans);
    if (!plans)
        return FL_ERROR_OUT_OF_MEMORY;
    for (int b = 0; b < bias_count && !status; b++)
        status = make_plan(&plans[b], &formats[b], rounding, maxima[b], min_normals[b], wide_input);
    if (status) {
        free(plans);
        return status;
    }
    memset(stats, 0, (size_t)bias_count * sizeof *stats);
    call_state call;
    call.wide_input = wide_input;
    call.stochastic = rounding->mode == FL_ROUND_STOCHASTIC;
    call.rounding = rounding;
    call.lsb_floor = wide_input ? -1074 : -149;
    call.mantissa_bits = wide_input ? 52 : 23;
    call.z_constant = 0;
    call.stream_key = fl_stream_key_inline(rounding->seed, 0);
    switch (plans[0].p.subnormals) {
    case FL_SUBNORMALS_NONE: call.z_rule = Z_RULE_FLUSH; break;
    case FL_SUBNORMALS_NORMAL: call.z_rule = Z_RULE_NEVER; break;
    default:
        switch (rounding->mode) {
        case FL_ROUND_NEAREST_EVEN:
        case FL_ROUND_NEAREST_AWAY: call.z_rule = Z_RULE_CONSTANT; call.z_constant = 2; break;
        case FL_ROUND_TOWARD_ZERO: call.z_rule = Z_RULE_CONSTANT; call.z_constant = 1; break;
        case FL_ROUND_UP: call.z_rule = Z_RULE_UP; break;
        case FL_ROUND_DOWN: call.z_rule = Z_RULE_DOWN; break;
        case FL_ROUND_STOCHASTIC: call.z_rule = Z_RULE_STOCHASTIC; break;
        default: call.z_rule = Z_RULE_NEVER;
        }
    }
    call.z_by_sign[0] = (uint8_t)z_of(&call, 0);
    call.z_by_sign[1] = (uint8_t)z_of(&call, 1);
    const int64_t chunk_size = n < CHUNK ? n : CHUNK;
    const size_t size = wide_input ? sizeof(double) : sizeof(float);
    int16_t *binades = malloc((size_t)(chunk_size ? chunk_size : 1) * sizeof *binades);
    uint8_t *slots = malloc((size_t)(chunk_size ? chunk_size : 1));
    int32_t *buckets = malloc((size_t)(chunk_size ? chunk_size : 1) * sizeof *buckets);
    void *values = malloc((size_t)(chunk_size ? chunk_size : 1) * size);
    uint32_t *local_index = call.stochastic ? malloc((size_t)(chunk_size ? chunk_size : 1) * sizeof(uint32_t)) : NULL;
    uint64_t *words = call.stochastic ? malloc((size_t)(chunk_size ? chunk_size : 1) * sizeof(uint64_t)) : NULL;
    uint64_t *element_words = call.stochastic ? malloc((size_t)(chunk_size ? chunk_size : 1) * sizeof(uint64_t))
                                              : NULL;
    stats_pass pass;
    fl_sweep_stats scratch;
    if (!binades || !slots || !buckets || !values || (call.stochastic && (!local_index || !words || !element_words)) ||
        fl_pass_open(&pass, &scratch, plans[0].max, plans[0].min_normal)) {
        free(binades);
        free(slots);
        free(buckets);
        free(values);
        free(local_index);
        free(words);
        free(element_words);
        free(plans);
        return FL_ERROR_OUT_OF_MEMORY;
    }
    fl_floating_point_state environment;
    fl_enter_default_floating_point(&environment);
    for (int64_t chunk_begin = 0; chunk_begin < n && !status; chunk_begin += CHUNK) {
        chunk_state chunk;
        memset(&chunk, 0, sizeof chunk);
        chunk.call = &call;
        chunk.count = n - chunk_begin < CHUNK ? n - chunk_begin : CHUNK;
        chunk.values = values;
        chunk.local_index = local_index;
        chunk.words = words;
        call.index_base = (uint64_t)index_offset + (uint64_t)chunk_begin;
        status = sort_chunk(&chunk, (const char *)x + (size_t)chunk_begin * size, formats[0].is_signed, binades,
                            slots, buckets, element_words);
        if (!status) {
            chunk.interior = calloc((size_t)chunk.span, sizeof *chunk.interior);
            chunk.zeros = calloc((size_t)chunk.span, sizeof *chunk.zeros);
            chunk.saturated = calloc((size_t)chunk.span, sizeof *chunk.saturated);
            if (!chunk.interior || !chunk.zeros || !chunk.saturated)
                status = FL_ERROR_OUT_OF_MEMORY;
        }
        for (int b = 0; b < bias_count && !status; b++)
            status = evaluate_bias(&pass, &chunk, &plans[b], &stats[b]);
        fl_pass_target(&pass, &scratch, plans[0].max, plans[0].min_normal); /* flush */
        for (int b = 0; b < bias_count; b++) {
            stats[b].n += chunk.count;
            fl_exact_normalise(&stats[b].signal_excluded);
            fl_exact_normalise(&stats[b].error_energy);
            fl_exact_normalise(&stats[b].error_sum);
        }
        free_chunk(&chunk);
    }
    fl_pass_close(&pass);
    fl_leave_default_floating_point(&environment);
    free(binades);
    free(slots);
    free(buckets);
    free(values);
    free(local_index);
    free(words);
    free(element_words);
    free(plans);
    return status;
}

int fl_sweep_evaluate_biases_f32(const float *x, int64_t n, const fl_format *formats, int bias_count,
                                 const fl_rounding *rounding, int64_t index_offset, const double *maxima,
                                 const double *min_normals, fl_sweep_stats *stats)
{
    return evaluate_biases(x, 0, n, formats, bias_count, rounding, index_offset, maxima, min_normals, stats);
}

int fl_sweep_evaluate_biases_f64(const double *x, int64_t n, const fl_format *formats, int bias_count,
                                 const fl_rounding *rounding, int64_t index_offset, const double *maxima,
                                 const double *min_normals, fl_sweep_stats *stats)
{
    return evaluate_biases(x, 1, n, formats, bias_count, rounding, index_offset, maxima, min_normals, stats);
}
