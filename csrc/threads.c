/*
 * threads.c - how many OpenMP threads fmtlab's loops (codec.c, mma.c) use.
 *
 * Results never depend on it: every element is a pure function of its inputs, its index
 * and the seed.
 */
#include "fmtlab.h"

#ifdef _OPENMP
#include <omp.h>
#endif

static int requested_threads = 0;

int fl_max_threads(void)
{
#ifdef _OPENMP
    return requested_threads > 0 ? requested_threads : omp_get_max_threads();
#else
    return 1;
#endif
}

int fl_set_threads(int threads)
{
    /* a bound, because the OpenMP runtime aborts the process (libgomp: "Thread creation
     * failed") or crashes when asked for tens of thousands of threads */
    if (threads < 0 || threads > FL_MAX_THREADS)
        return FL_ERROR_ARGUMENT;
    requested_threads = threads;
    return FL_OK;
}
