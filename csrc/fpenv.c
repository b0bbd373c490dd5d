/*
 * fpenv.c - the IEEE 754 default floating-point environment around fmtlab's loops.
 *
 * Rounding decisions in round.h, codec_fast.c and mma.c use float32/float64 arithmetic
 * that is exact only with nearest-even rounding and without flush-to-zero (FTZ) or
 * denormals-are-zero (DAZ); both are per-thread settings a caller may have changed.
 */
#include "fmtlab.h"

#include <fenv.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

void fl_enter_default_floating_point(fl_floating_point_state *state)
{
    state->control = 0;
#ifdef __SSE2__
    state->control = _mm_getcsr();
    /* clear flush-to-zero (bit 15), denormals-are-zero (bit 6) and the rounding control (bits 13-14) */
    _mm_setcsr(state->control & ~(0x8000u | 0x0040u | 0x6000u));
#endif
    state->rounding = fegetround();
    if (state->rounding != FE_TONEAREST)
        fesetround(FE_TONEAREST);
}

void fl_leave_default_floating_point(const fl_floating_point_state *state)
{
    if (state->rounding != FE_TONEAREST)
        fesetround(state->rounding);
#ifdef __SSE2__
    _mm_setcsr(state->control);
#endif
}
