/*
 * scaled_avx512.c - scaled.c compiled for AVX-512 (F, DQ, BW, VL): fl_scaled_run_avx512, which
 * scaled.c's public functions call when fl_codec_simd_level() is 2 (the CPU has those and
 * FMTLAB_SIMD does not lower the level).  The same source, with FL_SCALED_COPY 2 adding the
 * intrinsics lanes of scaled_lanes_avx512.h to the float32 paths (encode_span).
 */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#pragma GCC target("avx2,popcnt,avx512f,avx512dq,avx512bw,avx512vl")
#define FL_SCALED_COPY 2
#include "scaled.c"
#else
typedef int fl_scaled_avx512_not_compiled; /* ISO C: a translation unit declares something */
#endif
