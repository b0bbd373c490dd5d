/*
 * The block-scaled fast path in AVX2 + FMA (included by mma_block_scaled.c, whose bs_data,
 * block_step and constants it uses; see that file's comment for why the arithmetic is exact).
 *
 * It is the AVX-512 kernel lane for lane: the same float32 and double operations in the same
 * order on each of the 16 lanes of a strip, only held in two 8-float (four 4-double) registers
 * instead of one, and with the lane masks as 16-bit integers built from vector compares
 * (movemask) instead of mask registers.  Every operation is a correctly rounded IEEE operation
 * (or exact integer one) on the same operands, so the results, and the lanes handed to the
 * definition, are the same bits as the AVX-512 kernel's and the definition's.
 *
 * Lane layout: lane w of the strip is element w % 8 of half w / 8 (int32 and float32), element
 * w % 4 of quarter w / 4 (double).
 */
#ifndef FL_MMA_BLOCK_SCALED_AVX2_H
#define FL_MMA_BLOCK_SCALED_AVX2_H

#define BS_AVX2_TARGET __attribute__((target("avx2,fma")))
#define BS_AVX2_INLINE BS_AVX2_TARGET __attribute__((always_inline)) static inline

/* All ones in the int32 lanes of half h whose bit is set in flag (bit w = lane w). */
BS_AVX2_INLINE __m256i lane_mask_avx2(unsigned flag, int h)
{
    const __m256i bits = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    return _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32((int)((flag >> (8 * h)) & 0xFFu)), bits), bits);
}

/* The 16-bit lane mask of two halves of all-ones / all-zeros int32 lanes. */
BS_AVX2_INLINE unsigned lanes_of_avx2(__m256i low, __m256i high)
{
    return (unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(low)) |
           ((unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(high)) << 8);
}

/* The four int32 lanes of quarter u (0..3) of a 16-lane vector held as two halves. */
BS_AVX2_INLINE __m128i quarter_avx2(const __m256i x[2], int u)
{
    return (u & 1) ? _mm256_extracti128_si256(x[u >> 1], 1) : _mm256_castsi256_si128(x[u >> 1]);
}

/* 2^e as doubles from four biased exponents e (1 .. 2046). */
BS_AVX2_INLINE __m256d pow2_quarter_avx2(__m128i biased)
{
    return _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_cvtepu32_epi64(biased), 52));
}

/* finish_block (AVX-512) on 16 lanes: total * 2^(top - F) rounded toward zero to float32 on its
 * bits, +-Inf from 2^128; zero totals and subnormal results added to *flag; unflagged lanes
 * stored to chain. */
BS_AVX2_INLINE void finish_block_avx2(const __m256d total[4], const __m256i top[2], unsigned *flag,
                                      int64_t frac_bits, float chain[LANES])
{
    __m256i unscale[2];
    for (int h = 0; h < 2; h++)
        unscale[h] = _mm256_blendv_epi8(_mm256_add_epi32(top[h], _mm256_set1_epi32((int)(1023 - frac_bits))),
                                        _mm256_set1_epi32(1023), lane_mask_avx2(*flag, h));
    const __m256i abs_mask = _mm256_set1_epi64x(0x7FFFFFFFFFFFFFFFll);
    const __m256i cut = _mm256_set1_epi64x((long long)((1ull << 29) - 1)); /* double's bits below float32's */
    const __m256d small = _mm256_set1_pd(0x1p-126), huge = _mm256_set1_pd(0x1p128);
    const __m256i infinity_bits = _mm256_castpd_si256(_mm256_set1_pd(INFINITY));
    __m128 result[4];
    unsigned tiny_lanes = 0;
    for (int u = 0; u < 4; u++) {
        __m256d value = _mm256_mul_pd(total[u], pow2_quarter_avx2(quarter_avx2(unscale, u)));
        __m256i bits = _mm256_castpd_si256(value);
        __m256d magnitude = _mm256_castsi256_pd(_mm256_and_si256(bits, abs_mask));
        __m256d tiny = _mm256_cmp_pd(magnitude, small, _CMP_LT_OQ); /* zero or subnormal */
        __m256d over = _mm256_cmp_pd(magnitude, huge, _CMP_GE_OQ);
        __m256d truncated = _mm256_castsi256_pd(_mm256_andnot_si256(cut, bits));
        __m256d infinity = _mm256_castsi256_pd(_mm256_or_si256(infinity_bits, _mm256_andnot_si256(abs_mask, bits)));
        truncated = _mm256_blendv_pd(truncated, infinity, over);
        result[u] = _mm256_cvtpd_ps(truncated); /* exact: 24 significant bits, normal range, or Inf */
        tiny_lanes |= (unsigned)_mm256_movemask_pd(tiny) << (4 * u);
    }
    *flag |= tiny_lanes;
    for (int h = 0; h < 2; h++) {
        __m256 both = _mm256_insertf128_ps(_mm256_castps128_ps256(result[2 * h]), result[2 * h + 1], 1);
        __m256 old = _mm256_loadu_ps(chain + 8 * h);
        _mm256_storeu_ps(chain + 8 * h,
                         _mm256_blendv_ps(both, old, _mm256_castsi256_ps(lane_mask_avx2(*flag, h))));
    }
}

/* c's float32 exponent field and alignment exponent max(floor(log2|c|), -126), per half. */
BS_AVX2_INLINE __m256i c_exponent_avx2(__m256i c_bits, __m256i *field)
{
    *field = _mm256_and_si256(_mm256_srli_epi32(c_bits, 23), _mm256_set1_epi32(0xFF));
    return _mm256_max_epi32(_mm256_sub_epi32(*field, _mm256_set1_epi32(127)), _mm256_set1_epi32(-126));
}

/* The lanes whose c is nonzero (either sign). */
BS_AVX2_INLINE unsigned c_nonzero_avx2(const __m256i c_bits[2])
{
    const __m256i abs = _mm256_set1_epi32(0x7FFFFFFF), zero = _mm256_setzero_si256();
    return ~lanes_of_avx2(_mm256_cmpeq_epi32(_mm256_and_si256(c_bits[0], abs), zero),
                          _mm256_cmpeq_epi32(_mm256_and_si256(c_bits[1], abs), zero)) & 0xFFFFu;
}

/* c_cut (AVX-512): trunc(c 2^(F - top)) in four quarters of doubles, 0 outside keep. */
BS_AVX2_INLINE void c_cut_avx2(const __m256i c_bits[2], const __m256i top[2], unsigned keep, int64_t frac_bits,
                               __m256d out[4])
{
    __m256i c_value[2], scale[2];
    for (int h = 0; h < 2; h++) {
        const __m256i kept = lane_mask_avx2(keep, h);
        c_value[h] = _mm256_and_si256(c_bits[h], kept);
        scale[h] = _mm256_blendv_epi8(_mm256_set1_epi32(1023),
                                      _mm256_sub_epi32(_mm256_set1_epi32((int)(1023 + frac_bits)), top[h]), kept);
    }
    for (int u = 0; u < 4; u++) {
        __m256d x = _mm256_mul_pd(_mm256_cvtps_pd(_mm_castsi128_ps(quarter_avx2(c_value, u))),
                                  pow2_quarter_avx2(quarter_avx2(scale, u)));
        out[u] = _mm256_round_pd(x, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    }
}

/* special_lanes (AVX-512): lanes of block `index` of row i with a special element or scale, or
 * a non-finite c. */
BS_AVX2_INLINE unsigned special_lanes_avx2(const bs_data *d, int64_t i, int64_t strip, int64_t index,
                                           const __m256i field[2])
{
    unsigned flag = d->a_block_special[i * d->blocks + index] ? 0xFFFFu : d->b_block_mask[strip * d->blocks + index];
    const __m256i all = _mm256_set1_epi32(0xFF);
    return flag | lanes_of_avx2(_mm256_cmpeq_epi32(field[0], all), _mm256_cmpeq_epi32(field[1], all));
}

/* rows_block_plain (AVX-512), kind::mxf8f6f4, in AVX2. */
BS_AVX2_INLINE void rows_block_plain_avx2(const bs_data *d, int64_t i, int rows, int64_t strip, int64_t index,
                                          float chain[][LANES], uint16_t flags[])
{
    const fl_mma_block_scaled *p = d->p;
    const int64_t k = p->k, F = p->frac_bits, start = index * p->block;
    const int64_t count = start + p->block < k ? p->block : k - start, s = start / p->scale_block;
    const float *b = d->b_packed + (strip * k + start) * LANES;
    const int16_t *be = d->b_align + (strip * k + start) * LANES;
    const float *a[ROW_GROUP];
    const int16_t *ae[ROW_GROUP];
    __m256i largest[ROW_GROUP];
    for (int r = 0; r < rows; r++) {
        a[r] = p->a_values + (i + r) * k + start;
        ae[r] = d->a_align + (i + r) * k + start;
        largest[r] = _mm256_set1_epi16((int16_t)(2 * ZERO_EXPONENT));
    }
    for (int64_t q = 0; q < count; q++) {
        const __m256i row = _mm256_loadu_si256((const __m256i *)(be + q * LANES));
        for (int r = 0; r < rows; r++)
            largest[r] = _mm256_max_epi16(largest[r], _mm256_add_epi16(_mm256_set1_epi16(ae[r][q]), row));
    }
    const int32_t *sb_exp = d->sb_exp_packed + (strip * p->scale_blocks + s) * LANES;
    __m256i top[ROW_GROUP][2], c_bits[ROW_GROUP][2];
    __m256 scale[ROW_GROUP][2];
    unsigned flag_of[ROW_GROUP];
    for (int r = 0; r < rows; r++) {
        __m256i t[2], S[2], has[2], field[2], ce[2], biased[2];
        const __m256i sa = _mm256_set1_epi32(p->sa_exp[(i + r) * p->scale_blocks + s]);
        for (int h = 0; h < 2; h++) {
            t[h] = _mm256_cvtepi16_epi32(h ? _mm256_extracti128_si256(largest[r], 1)
                                           : _mm256_castsi256_si128(largest[r]));
            S[h] = _mm256_add_epi32(sa, _mm256_loadu_si256((const __m256i *)(sb_exp + 8 * h)));
            has[h] = _mm256_cmpgt_epi32(t[h], _mm256_set1_epi32(NO_TERM_EXPONENT));
            c_bits[r][h] = _mm256_loadu_si256((const __m256i *)(chain[r] + 8 * h));
            ce[h] = c_exponent_avx2(c_bits[r][h], &field[h]);
        }
        const unsigned has_lanes = lanes_of_avx2(has[0], has[1]), c_nonzero = c_nonzero_avx2(c_bits[r]);
        for (int h = 0; h < 2; h++) {
            __m256i m_top = _mm256_blendv_epi8(ce[h], _mm256_add_epi32(t[h], S[h]), has[h]);
            m_top = _mm256_blendv_epi8(m_top, _mm256_max_epi32(m_top, ce[h]), lane_mask_avx2(c_nonzero, h));
            top[r][h] = m_top;
            biased[h] = _mm256_add_epi32(_mm256_sub_epi32(S[h], m_top), _mm256_set1_epi32((int)(F + 127)));
        }
        unsigned flag = special_lanes_avx2(d, i + r, strip, index, field) | (~has_lanes & ~c_nonzero & 0xFFFFu);
        /* the products' scale 2^(F - M + S) as a float32: 0 where it is below float32's normals */
        flag |= has_lanes & lanes_of_avx2(_mm256_cmpgt_epi32(biased[0], _mm256_set1_epi32(254)),
                                          _mm256_cmpgt_epi32(biased[1], _mm256_set1_epi32(254)));
        for (int h = 0; h < 2; h++) {
            const __m256i usable = _mm256_andnot_si256(
                lane_mask_avx2(flag, h), _mm256_and_si256(_mm256_cmpgt_epi32(biased[h], _mm256_setzero_si256()),
                                                          _mm256_cmpgt_epi32(_mm256_set1_epi32(255), biased[h])));
            scale[r][h] = _mm256_castsi256_ps(_mm256_and_si256(_mm256_slli_epi32(biased[h], 23), usable));
        }
        flag_of[r] = flag;
    }
    __m256d total[ROW_GROUP][4];
    for (int r = 0; r < rows; r++)
        for (int u = 0; u < 4; u++)
            total[r][u] = _mm256_setzero_pd();
    for (int64_t run0 = 0; run0 < count; run0 += d->run) {
        const int64_t run1 = run0 + d->run < count ? run0 + d->run : count;
        __m256i sum[ROW_GROUP][2];
        for (int r = 0; r < rows; r++)
            sum[r][0] = sum[r][1] = _mm256_setzero_si256();
        for (int64_t q = run0; q < run1; q++) {
            const __m256 row0 = _mm256_loadu_ps(b + q * LANES), row1 = _mm256_loadu_ps(b + q * LANES + 8);
            for (int r = 0; r < rows; r++) {
                const __m256 x = _mm256_set1_ps(a[r][q]);
                sum[r][0] = _mm256_add_epi32(sum[r][0], _mm256_cvttps_epi32(_mm256_mul_ps(_mm256_mul_ps(x, row0),
                                                                                          scale[r][0])));
                sum[r][1] = _mm256_add_epi32(sum[r][1], _mm256_cvttps_epi32(_mm256_mul_ps(_mm256_mul_ps(x, row1),
                                                                                          scale[r][1])));
            }
        }
        for (int r = 0; r < rows; r++)
            for (int u = 0; u < 4; u++)
                total[r][u] = _mm256_add_pd(total[r][u], _mm256_cvtepi32_pd(quarter_avx2(sum[r], u)));
    }
    for (int r = 0; r < rows; r++) {
        __m256d cut[4];
        c_cut_avx2(c_bits[r], top[r], ~flag_of[r] & c_nonzero_avx2(c_bits[r]), F, cut);
        for (int u = 0; u < 4; u++)
            total[r][u] = _mm256_add_pd(total[r][u], cut[u]);
        finish_block_avx2(total[r], top[r], &flag_of[r], F, chain[r]);
        flags[r] = (uint16_t)flag_of[r];
    }
}

/* rows_block_grouped (AVX-512), kind::mxf4 / mxf4nvf4, in AVX2 + FMA. */
BS_AVX2_INLINE void rows_block_grouped_avx2(const bs_data *d, int64_t i, int rows, int64_t strip, int64_t index,
                                            float chain[][LANES], uint16_t flags[])
{
    const fl_mma_block_scaled *p = d->p;
    const int64_t k = p->k, F = p->frac_bits, G = p->group_sum, nb = p->scale_blocks, start = index * p->block;
    const int64_t count = start + p->block < k ? p->block : k - start, groups = (count + G - 1) / G;
    const float *b = d->b_packed + (strip * k + start) * LANES;
    __m256i top[ROW_GROUP][2], c_bits[ROW_GROUP][2];
    unsigned flag_of[ROW_GROUP];
    for (int r = 0; r < rows; r++) {
        __m256i field[2], ce[2];
        for (int h = 0; h < 2; h++) {
            c_bits[r][h] = _mm256_loadu_si256((const __m256i *)(chain[r] + 8 * h));
            ce[h] = c_exponent_avx2(c_bits[r][h], &field[h]);
        }
        const unsigned c_nonzero = c_nonzero_avx2(c_bits[r]);
        for (int h = 0; h < 2; h++)
            top[r][h] = _mm256_blendv_epi8(_mm256_set1_epi32(-126), ce[h], lane_mask_avx2(c_nonzero, h));
        flag_of[r] = special_lanes_avx2(d, i + r, strip, index, field);
    }
    for (int64_t g = 0; g < groups; g++) {
        const int64_t s = (start + g * G) / p->scale_block;
        const int32_t *sb = d->sb_exp_packed + (strip * nb + s) * LANES;
        const __m256i sb0 = _mm256_loadu_si256((const __m256i *)sb), sb1 = _mm256_loadu_si256((const __m256i *)(sb + 8));
        for (int r = 0; r < rows; r++) {
            const __m256i sa = _mm256_set1_epi32(p->sa_exp[(i + r) * nb + s]);
            top[r][0] = _mm256_max_epi32(top[r][0], _mm256_add_epi32(sa, sb0));
            top[r][1] = _mm256_max_epi32(top[r][1], _mm256_add_epi32(sa, sb1));
        }
    }
    __m256d total[ROW_GROUP][4], unit[ROW_GROUP][4];
    for (int r = 0; r < rows; r++) {
        /* 2^(F - M) as doubles; F - M lies within double's exponents (M between -300 and 300) */
        __m256i exponent[2];
        for (int h = 0; h < 2; h++)
            exponent[h] = _mm256_sub_epi32(_mm256_set1_epi32((int)(1023 + F)), top[r][h]);
        for (int u = 0; u < 4; u++) {
            unit[r][u] = pow2_quarter_avx2(quarter_avx2(exponent, u));
            total[r][u] = _mm256_setzero_pd();
        }
    }
    for (int64_t g = 0; g < groups; g++) {
        const int64_t s = (start + g * G) / p->scale_block, q1 = (g + 1) * G < count ? (g + 1) * G : count;
        __m256 sum[ROW_GROUP][2];
        for (int r = 0; r < rows; r++)
            sum[r][0] = sum[r][1] = _mm256_setzero_ps();
        for (int64_t q = g * G; q < q1; q++) {
            const __m256 row0 = _mm256_loadu_ps(b + q * LANES), row1 = _mm256_loadu_ps(b + q * LANES + 8);
            for (int r = 0; r < rows; r++) {
                const __m256 x = _mm256_set1_ps(p->a_values[(i + r) * k + start + q]);
                sum[r][0] = _mm256_fmadd_ps(x, row0, sum[r][0]);
                sum[r][1] = _mm256_fmadd_ps(x, row1, sum[r][1]);
            }
        }
        const double *sb = d->sb_value_packed + (strip * nb + s) * LANES;
        for (int r = 0; r < rows; r++) {
            const __m256d sa = _mm256_set1_pd(p->sa_value[(i + r) * nb + s]);
            for (int u = 0; u < 4; u++) {
                __m128 part = (u & 1) ? _mm256_extractf128_ps(sum[r][u >> 1], 1) : _mm256_castps256_ps128(sum[r][u >> 1]);
                __m256d factor = _mm256_mul_pd(_mm256_mul_pd(sa, _mm256_loadu_pd(sb + 4 * u)), unit[r][u]);
                __m256d term = _mm256_mul_pd(_mm256_cvtps_pd(part), factor);
                total[r][u] = _mm256_add_pd(total[r][u], _mm256_round_pd(term, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC));
            }
        }
    }
    for (int r = 0; r < rows; r++) {
        __m256d cut[4];
        c_cut_avx2(c_bits[r], top[r], ~flag_of[r] & 0xFFFFu, F, cut);
        for (int u = 0; u < 4; u++)
            total[r][u] = _mm256_add_pd(total[r][u], cut[u]);
        finish_block_avx2(total[r], top[r], &flag_of[r], F, chain[r]);
        flags[r] = (uint16_t)flag_of[r];
    }
}

BS_AVX2_TARGET static void rows_block_4_avx2(const bs_data *d, int64_t i, int64_t strip, int64_t index,
                                             float chain[][LANES], uint16_t flags[])
{
    if (d->p->group_sum)
        rows_block_grouped_avx2(d, i, ROW_GROUP, strip, index, chain, flags);
    else
        rows_block_plain_avx2(d, i, ROW_GROUP, strip, index, chain, flags);
}

BS_AVX2_TARGET static void rows_block_1_avx2(const bs_data *d, int64_t i, int64_t strip, int64_t index,
                                             float chain[][LANES], uint16_t flags[])
{
    if (d->p->group_sum)
        rows_block_grouped_avx2(d, i, 1, strip, index, chain, flags);
    else
        rows_block_plain_avx2(d, i, 1, strip, index, chain, flags);
}

#endif
