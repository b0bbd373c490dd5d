/*
 * scaled_avx2.c - scaled.c compiled for AVX2: fl_scaled_run_avx2, which scaled.c's public
 * functions call when fl_codec_simd_level() is 1 (an AVX2 CPU, or FMTLAB_SIMD=avx2).  The same
 * source, so the same bits: GCC vectorises its branch-free kernels for 8 lanes of 32 bits.
 */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#pragma GCC target("avx2")
#define FL_SCALED_COPY 1
#include "scaled.c"
#else
typedef int fl_scaled_avx2_not_compiled; /* ISO C: a translation unit declares something */
#endif
