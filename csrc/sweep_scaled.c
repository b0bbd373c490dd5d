/*
 * sweep_scaled.c - the sweep's fused evaluation of a block-scaled format on a piece of a tensor.
 *
 * q_i = v_i * S_b(i) [* T]: the element value v_i times its block's scale (times the tensor scale,
 * NVFP4), exact in float64 (fmtlab.scaled.decode_codes).  The block scale plays the role a bias
 * plays for an element format: it shifts the element's grid by a power of two (or, for E4M3 and
 * FP32 scales, scales it), so the statistics are those of element formats (sweep_stats.c:
 * counts, float64 maxima, exact sums of e^2 and e) with two counts taken relative to S instead of
 * the element's own range: the elements that saturate (|v| = element max and |x| > |q|) and the
 * subnormal element codes.
 *
 * scaled.c encodes the piece exactly as fl_scaled_encode_piece_* does and hands each run of
 * element codes (at most one row of the layout, CHUNK codes) to sink() below instead of storing
 * them; the sink decodes them, multiplies by the block's scale and feeds (x, q) to the exact
 * statistics a buffer at a time (BUFFER elements per thread: the only temporaries besides the
 * piece's scale codes; no array of q or of codes).  Each OpenMP thread that runs the encode has
 * its own buffer and sums; the sums are integers, merged exactly, so the result does not depend
 * on the threads or on how the piece is cut.
 */
#include "fmtlab.h"
#include "round.h"
#include "sweep_stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#define BUFFER 16384  /* (x, q) pairs a thread gathers before one fl_sweep_statistics_f64 call */

typedef struct thread_state {
    double x[BUFFER];
    double q[BUFFER];
    int count;
    int64_t saturated;   /* |v| = element max and |x| > |q| */
    int64_t subnormal;   /* q finite, 0 < |v| < element min normal */
    int64_t cached_block;
    double cached_scale; /* S [* T] of cached_block */
    int status;
    fl_sweep_stats total;
    fl_sweep_stats part;
} thread_state;

typedef struct sink_context {
    const void *x;
    int input_f32;
    int64_t plane, columns, block_rows, block_columns, row_blocks, column_blocks;
    prepared_format element, scale, tensor_scale;
    double *values;               /* decode_one_signed_nan of every element code (codes < table_size) */
    uint32_t table_size;
    int has_tensor_scale;
    const uint32_t *scales;       /* the piece's scale codes, 4 bytes each */
    const uint32_t *tensor_code;  /* written by scaled.c before the element pass */
    double element_max, element_min_normal;
    int threads;
    thread_state **state;
    int failed;                   /* a thread number beyond the states made (set, never read racily) */
} sink_context;

static void flush(const sink_context *c, thread_state *s)
{
    if (!s->count || s->status)
        return;
    s->status = fl_sweep_statistics_f64(s->x, s->q, s->count, c->element_max, c->element_min_normal, &s->part);
    if (!s->status) {
        fl_sweep_stats_add(&s->total, &s->part);
        fl_exact_normalise(&s->total.signal_excluded); /* 3 x 136 adds per BUFFER elements */
        fl_exact_normalise(&s->total.error_energy);
        fl_exact_normalise(&s->total.error_sum);
    }
    s->count = 0;
}

/* S [* T] of a block, as fmtlab.scaled.decode_codes gives it: scale value times tensor scale. */
static double block_scale(const sink_context *c, int64_t block)
{
    const double scale = decode_one_signed_nan(c->scales[block], &c->scale);
    if (!c->has_tensor_scale)
        return scale;
    return scale * decode_one_signed_nan(*c->tensor_code, &c->tensor_scale);
}

static void sink(void *context, int64_t first, int count, const uint32_t *codes32, const int64_t *codes64)
{
    sink_context *c = context;
    int thread = 0;
#ifdef _OPENMP
    thread = omp_get_thread_num();
#endif
    if (thread >= c->threads) {
        c->failed = 1;
        return;
    }
    thread_state *s = c->state[thread];
    /* the codes lie in one row: (l, i) of the layout, columns j0 .. j0 + count - 1 */
    const int64_t l = first / c->plane, i = (first % c->plane) / c->columns, j0 = (first % c->plane) % c->columns;
    const int64_t row_base = (l * c->row_blocks + i / c->block_rows) * c->column_blocks;
    const float *x32 = (const float *)c->x + first;
    const double *x64 = (const double *)c->x + first;
    for (int t = 0; t < count; t++) {
        const int64_t block = row_base + (j0 + t) / c->block_columns;
        if (block != s->cached_block) {
            s->cached_block = block;
            s->cached_scale = block_scale(c, block);
        }
        const uint32_t code = codes32 ? codes32[t] : (uint32_t)codes64[t];
        const double value = code < c->table_size ? c->values[code] : decode_one_signed_nan(code, &c->element);
        const double q = value * s->cached_scale;
        const double xv = c->input_f32 ? (double)x32[t] : x64[t];
        const double magnitude = fabs(value);
        s->saturated += (magnitude == c->element_max) & (fabs(xv) > fabs(q));
        s->subnormal += (magnitude > 0) & (magnitude < c->element_min_normal) & (isfinite(q) != 0);
        s->x[s->count] = xv;
        s->q[s->count] = q;
        if (++s->count == BUFFER)
            flush(c, s);
    }
}

static int evaluate(const void *x, int input_f32, const fl_block_layout *layout, const fl_scaled_format *format,
                    const fl_rounding *rounding, const fl_scaled_piece *piece, double element_max,
                    double element_min_normal, fl_sweep_stats *stats)
{
    if (!x || !layout || !format || !rounding || !piece || !stats)
        return FL_ERROR_ARGUMENT;
    if (layout->outer < 0 || layout->rows < 0 || layout->columns < 0 || layout->block_rows < 1 ||
        layout->block_columns < 1)
        return FL_ERROR_SCALED_FORMAT;
    memset(stats, 0, sizeof *stats);
    sink_context c;
    memset(&c, 0, sizeof c);
    int status;
    if ((status = fl_prepare_format(&format->element, &c.element)) ||
        (status = fl_prepare_format(&format->scale, &c.scale)) ||
        (format->has_tensor_scale && (status = fl_prepare_format(&format->tensor_scale, &c.tensor_scale))))
        return status;
    c.x = x;
    c.input_f32 = input_f32;
    c.columns = layout->columns;
    c.plane = layout->rows * layout->columns;
    c.block_rows = layout->block_rows;
    c.block_columns = layout->block_columns;
    c.row_blocks = (layout->rows + layout->block_rows - 1) / layout->block_rows;
    c.column_blocks = (layout->columns + layout->block_columns - 1) / layout->block_columns;
    c.has_tensor_scale = format->has_tensor_scale;
    c.element_max = element_max;
    c.element_min_normal = element_min_normal;
    const int64_t n = layout->outer * c.plane;
    if (n == 0 || c.columns == 0)
        return FL_OK;
    const int64_t blocks = layout->outer * c.row_blocks * c.column_blocks;
    uint32_t *scales = malloc((size_t)blocks * sizeof *scales);
    uint32_t tensor_code = 0;
    /* the element's values by code (at most 2^16 of them: every element format of a scaled one) */
    const uint64_t codes = (uint64_t)(c.element.sign_bit ? 2u * c.element.sign_bit : c.element.magnitude_mask + 1u);
    if (codes <= 65536) {
        c.values = malloc((size_t)codes * sizeof *c.values);
        if (c.values) {
            c.table_size = (uint32_t)codes;
            for (uint32_t code = 0; code < c.table_size; code++)
                c.values[code] = decode_one_signed_nan(code, &c.element);
        }
    }
    c.threads = fl_max_threads() > 0 ? fl_max_threads() : 1;
    c.state = calloc((size_t)c.threads, sizeof *c.state);
    status = scales && c.state ? FL_OK : FL_ERROR_OUT_OF_MEMORY;
    for (int t = 0; !status && t < c.threads; t++) {
        c.state[t] = calloc(1, sizeof(thread_state));
        if (!c.state[t])
            status = FL_ERROR_OUT_OF_MEMORY;
        else
            c.state[t]->cached_block = -1;
    }
    c.scales = scales;
    c.tensor_code = &tensor_code;
    if (!status)
        status = fl_scaled_encode_piece_to_sink(x, input_f32, layout, format, rounding, piece, scales, 4,
                                                &tensor_code, sink, &c);
    if (!status && c.failed)
        status = FL_ERROR_ARGUMENT; /* more threads ran the encode than fl_max_threads() said */
    int64_t saturated = 0, subnormal = 0;
    for (int t = 0; c.state && t < c.threads; t++) {
        thread_state *s = c.state[t];
        if (!s)
            continue;
        if (!status) {
            flush(&c, s);
            status = s->status;
            fl_sweep_stats_add(stats, &s->total);
            saturated += s->saturated;
            subnormal += s->subnormal;
        }
        free(s);
    }
    free(c.state);
    free(scales);
    free(c.values);
    if (status) {
        memset(stats, 0, sizeof *stats);
        return status;
    }
    fl_exact_normalise(&stats->signal_excluded);
    fl_exact_normalise(&stats->error_energy);
    fl_exact_normalise(&stats->error_sum);
    stats->overflow = saturated;
    stats->below_normal = stats->zeros_out + subnormal;
    return FL_OK;
}

int fl_sweep_scaled_evaluate_f32(const float *x, const fl_block_layout *layout, const fl_scaled_format *format,
                                 const fl_rounding *rounding, const fl_scaled_piece *piece, double element_max,
                                 double element_min_normal, fl_sweep_stats *stats)
{
    return evaluate(x, 1, layout, format, rounding, piece, element_max, element_min_normal, stats);
}

int fl_sweep_scaled_evaluate_f64(const double *x, const fl_block_layout *layout, const fl_scaled_format *format,
                                 const fl_rounding *rounding, const fl_scaled_piece *piece, double element_max,
                                 double element_min_normal, fl_sweep_stats *stats)
{
    return evaluate(x, 0, layout, format, rounding, piece, element_max, element_min_normal, stats);
}
