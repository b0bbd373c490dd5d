/*
 * codec.c - the entry points of encode, decode and quantize, and their array loops.
 *
 * Each element's result is defined by round.h (encode_one, decode_one_signed_nan); float32 input goes
 * through codec_fast.c's blocks first, which hand back the elements they cannot do exactly.
 * The loops here split arrays over OpenMP threads, set the IEEE default floating-point
 * environment around every block, sum the exception counts, and store the results.
 */
#include "codec_fast.h"

#include <stdlib.h>
#include <string.h>

/* Below this many elements a parallel region costs more than it saves. */
#define PARALLEL_THRESHOLD 32768

static void store_stats(fl_stats *stats, int64_t invalid, int64_t overflow, int64_t underflow,
                      int64_t denormal, int64_t inexact)
{
    if (!stats)
        return;
    stats->invalid = invalid;
    stats->overflow = overflow;
    stats->underflow = underflow;
    stats->denormal = denormal;
    stats->inexact = inexact;
}

/* Elements per switch of the floating-point environment (fpenv.c): the switch costs a few
 * dozen cycles, and it is per thread, so each parallel loop runs over blocks and every
 * block sets the IEEE default environment around its work. */
#define ENVIRONMENT_BLOCK 4096

/* Element i through encode_one (LOAD reads it), its flags added to the loop's counts. */
#define EXACT_ELEMENT(LOAD, OUTPUT_STATEMENT)                                                    \
    {                                                                                            \
        local_stats s = {0, 0, 0, 0, 0};                                                         \
        uint32_t code = encode_one((double)(LOAD), &p, rounding, (uint64_t)index_offset + (uint64_t)i, &s); \
        OUTPUT_STATEMENT;                                                                        \
        invalid += s.invalid;                                                                    \
        overflow += s.overflow;                                                                  \
        underflow += s.underflow;                                                                \
        denormal += s.denormal;                                                                  \
        inexact += s.inexact;                                                                    \
    }

/* encode_one for every element (LOAD reads element i), counting the flags. */
#define GENERIC_ENCODE_LOOP(LOAD, OUTPUT_STATEMENT)                                              \
    _Pragma("omp parallel for schedule(static) num_threads(threads) reduction(+:invalid,overflow,underflow,denormal,inexact) if(threads > 1)") \
    for (int64_t block_start = 0; block_start < n; block_start += ENVIRONMENT_BLOCK) {           \
        const int64_t block_end = block_start + ENVIRONMENT_BLOCK < n ? block_start + ENVIRONMENT_BLOCK : n; \
        fl_floating_point_state environment;                                                     \
        fl_enter_default_floating_point(&environment);                                           \
        for (int64_t i = block_start; i < block_end; i++) {                                      \
            EXACT_ELEMENT(LOAD, OUTPUT_STATEMENT)                                                \
        }                                                                                        \
        fl_leave_default_floating_point(&environment);                                           \
    }

/* The arrays of one call: n >= 0, and both pointers set when there are elements. */
static int check_arrays(const void *input, const void *output, int64_t n)
{
    if (n < 0 || (n > 0 && (!input || !output)))
        return FL_ERROR_ARGUMENT;
    return FL_OK;
}

/* Shared start of the encode/quantize entry points: check the parameters, zero the counts,
 * choose the thread count. */
#define CODEC_PROLOGUE(OUTPUT_POINTER)                                                           \
    prepared_format p;                                                                           \
    int status = fl_prepare_format(format, &p);                                                  \
    if (status)                                                                                  \
        return status;                                                                           \
    if ((status = fl_check_rounding(rounding)))                                                  \
        return status;                                                                           \
    if ((status = check_arrays(x, OUTPUT_POINTER, n)))                                           \
        return status;                                                                           \
    int64_t invalid = 0, overflow = 0, underflow = 0, denormal = 0, inexact = 0;                 \
    int threads = n >= PARALLEL_THRESHOLD ? fl_max_threads() : 1;                                \
    (void)threads;

#define CODEC_LOOP(INPUT_TYPE, OUTPUT_POINTER, OUTPUT_STATEMENT)                                 \
    CODEC_PROLOGUE(OUTPUT_POINTER)                                                               \
    GENERIC_ENCODE_LOOP(((const INPUT_TYPE *)x)[i], OUTPUT_STATEMENT)                            \
    store_stats(stats, invalid, overflow, underflow, denormal, inexact);                         \
    return FL_OK;

/* float32 input in blocks: codec_fast.c converts each block and flags the elements it cannot
 * do exactly; they are redone here by encode_one (SLOW_STATEMENT stores element i's code).  The
 * floating-point environment is switched once per ENVIRONMENT_BLOCK (8 fast blocks), whose
 * start is a multiple of FAST_BLOCK, so the blocks are those of one pass over the array. */
#define FAST_F32_BLOCK_LOOP(OUTPUT, SLOW_STATEMENT)                                              \
    _Pragma("omp parallel for schedule(static) num_threads(threads) firstprivate(p, fast) reduction(+:invalid,overflow,underflow,denormal,inexact) if(threads > 1)") \
    for (int64_t chunk_start = 0; chunk_start < n; chunk_start += ENVIRONMENT_BLOCK) {           \
        const int64_t chunk_end = chunk_start + ENVIRONMENT_BLOCK < n ? chunk_start + ENVIRONMENT_BLOCK : n; \
        fl_floating_point_state environment;                                                     \
        fl_enter_default_floating_point(&environment);                                           \
        int full_hint = 0; /* the kernel choice's state (fl_fast_f32_block): speed only */       \
        for (int64_t block_start = chunk_start; block_start < chunk_end; block_start += FAST_BLOCK) { \
            const int count = (int)(block_start + FAST_BLOCK < chunk_end ? FAST_BLOCK : chunk_end - block_start); \
            uint8_t is_slow[FAST_BLOCK];                                                         \
            const uint32_t *block_bits = (const uint32_t *)(const void *)(x + block_start);      \
            fast_block_result block = fl_fast_f32_block(&fast, block_bits, count, (OUTPUT) + block_start, \
                                                        is_slow, (uint64_t)index_offset + (uint64_t)block_start, \
                                                        &full_hint);                             \
            inexact += block.inexact;                                                            \
            overflow += block.overflow;                                                          \
            underflow += block.underflow;                                                        \
            denormal += block.denormal;                                                          \
            if (block.slow) {                                                                    \
                for (int j = 0; j < count; j++) {                                                \
                    if ((j & 7) == 0 && j + 8 <= count) {                                        \
                        uint64_t eight_flags;                                                    \
                        memcpy(&eight_flags, is_slow + j, sizeof eight_flags);                   \
                        if (!eight_flags) {                                                      \
                            j += 7;                                                              \
                            continue;                                                            \
                        }                                                                        \
                    }                                                                            \
                    if (!is_slow[j])                                                             \
                        continue;                                                                \
                    const int64_t i = block_start + j;                                           \
                    EXACT_ELEMENT(x[i], SLOW_STATEMENT)                                          \
                }                                                                                \
            }                                                                                    \
        }                                                                                        \
        fl_leave_default_floating_point(&environment);                                           \
    }

/* The float32 entry points: the fast blocks when the format has them, else encode_one alone. */
#define FAST_F32_CODEC(KIND, OUTPUT, OUTPUT_STATEMENT)                                           \
    CODEC_PROLOGUE(OUTPUT)                                                                       \
    prepared_fast_f32 fast;                                                                      \
    if (fl_prepare_fast_f32(&p, rounding, KIND, &fast)) {                                        \
        FAST_F32_BLOCK_LOOP(OUTPUT, OUTPUT_STATEMENT)                                            \
    } else {                                                                                     \
        GENERIC_ENCODE_LOOP(x[i], OUTPUT_STATEMENT)                                              \
    }                                                                                            \
    store_stats(stats, invalid, overflow, underflow, denormal, inexact);                         \
    return FL_OK;

static int valid_code_bytes(int code_bytes) { return code_bytes == 1 || code_bytes == 2 || code_bytes == 4; }

int fl_encode_f32(const float *x, int64_t n, const fl_format *format, const fl_rounding *rounding,
                  void *codes, int code_bytes, int64_t index_offset, fl_stats *stats)
{
    if (code_bytes == 1) {
        FAST_F32_CODEC(OUT_CODES_1, (uint8_t *)codes, ((uint8_t *)codes)[i] = (uint8_t)code)
    } else if (code_bytes == 2) {
        FAST_F32_CODEC(OUT_CODES_2, (uint16_t *)codes, ((uint16_t *)codes)[i] = (uint16_t)code)
    } else if (code_bytes == 4) {
        FAST_F32_CODEC(OUT_CODES_4, (uint32_t *)codes, ((uint32_t *)codes)[i] = code)
    }
    return FL_ERROR_CODE_BYTES;
}

int fl_encode_f64(const double *x, int64_t n, const fl_format *format, const fl_rounding *rounding,
                  void *codes, int code_bytes, int64_t index_offset, fl_stats *stats)
{
    if (!valid_code_bytes(code_bytes))
        return FL_ERROR_CODE_BYTES;
    CODEC_LOOP(double, codes, fl_store_code(codes, code_bytes, i, code))
}

int fl_quantize_f32(const float *x, int64_t n, const fl_format *format, const fl_rounding *rounding,
                    float *out, int64_t index_offset, fl_stats *stats)
{
    FAST_F32_CODEC(OUT_VALUES_F32, (uint32_t *)(void *)out, out[i] = (float)decode_one_signed_nan(code, &p))
}

int fl_quantize_f64(const double *x, int64_t n, const fl_format *format, const fl_rounding *rounding,
                    double *out, int64_t index_offset, fl_stats *stats)
{
    CODEC_LOOP(double, out, out[i] = decode_one_signed_nan(code, &p))
}

/* Formats of 16 bits or fewer decode large arrays through a table of every code's value. */
#define DECODE_LOOP(OUTPUT_TYPE)                                                                 \
    prepared_format p;                                                                           \
    if (!valid_code_bytes(code_bytes))                                                           \
        return FL_ERROR_CODE_BYTES;                                                              \
    int status = fl_prepare_format(format, &p);                                                  \
    if (status)                                                                                  \
        return status;                                                                           \
    if ((status = check_arrays(codes, out, n)))                                                  \
        return status;                                                                           \
    int threads = n >= PARALLEL_THRESHOLD ? fl_max_threads() : 1;                                \
    (void)threads;                                                                               \
    const int bits = format->exp_bits + format->man_bits + (format->is_signed ? 1 : 0);          \
    if (code_bytes <= 2 && bits <= 16 && n >= ((int64_t)1 << bits)) {                            \
        OUTPUT_TYPE *table = malloc(sizeof(OUTPUT_TYPE) << bits);                                \
        if (table) {                                                                             \
            fl_floating_point_state environment;                                                 \
            fl_enter_default_floating_point(&environment);                                       \
            for (uint32_t code = 0; code < (1u << bits); code++)                                 \
                table[code] = (OUTPUT_TYPE)decode_one_signed_nan(code, &p);                                 \
            fl_leave_default_floating_point(&environment);                                       \
            const uint32_t code_mask = (1u << bits) - 1;                                         \
            _Pragma("omp parallel for schedule(static) num_threads(threads) if(threads > 1)")      \
            for (int64_t i = 0; i < n; i++)                                                      \
                out[i] = table[fl_load_code(codes, code_bytes, i) & code_mask];                  \
            free(table);                                                                         \
            return FL_OK;                                                                        \
        }                                                                                        \
    }                                                                                            \
    _Pragma("omp parallel for schedule(static) num_threads(threads) if(threads > 1)")              \
    for (int64_t block_start = 0; block_start < n; block_start += ENVIRONMENT_BLOCK) {           \
        const int64_t block_end = block_start + ENVIRONMENT_BLOCK < n ? block_start + ENVIRONMENT_BLOCK : n; \
        fl_floating_point_state environment;                                                     \
        fl_enter_default_floating_point(&environment);                                           \
        for (int64_t i = block_start; i < block_end; i++)                                        \
            out[i] = (OUTPUT_TYPE)decode_one_signed_nan(fl_load_code(codes, code_bytes, i), &p); \
        fl_leave_default_floating_point(&environment);                                           \
    }                                                                                            \
    return FL_OK;

int fl_decode_f32(const void *codes, int code_bytes, int64_t n, const fl_format *format, float *out)
{
    DECODE_LOOP(float)
}

int fl_decode_f64(const void *codes, int code_bytes, int64_t n, const fl_format *format, double *out)
{
    DECODE_LOOP(double)
}
