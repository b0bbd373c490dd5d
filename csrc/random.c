/*
 * random.c - the counter-based generator of stochastic rounding, exported.
 *
 * The definition lives in fmtlab.h (fl_mix64_inline, fl_random_word_inline) so that the
 * codec's loops inline it; these wrappers let Python call the very same function (seeds of
 * fmtlab.torch, and the pure-torch codec checked against it) instead of a copy.
 */
#include "fmtlab.h"

uint64_t fl_mix64(uint64_t z) { return fl_mix64_inline(z); }

uint64_t fl_random_word(uint64_t seed, uint64_t index, uint64_t draw)
{
    return fl_random_word_inline(seed, index, draw);
}
