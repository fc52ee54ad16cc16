/* The depthwise kernel's body (lib/core/conv_grouped.c includes it once per instruction set,
 * with DW_FN naming the copy and the target selected around the include). Everything here is
 * static; vectors never cross a call (-Werror=psabi): the helpers are macros. Each value is one
 * in-order sum: 0, then tap by tap (kernel row, then column, skipping taps outside the
 * source), then the bias; products and sums are separate statements, so no compiler contracts
 * them into fused multiply-adds and every copy computes the same bits. */

/* v = the source vector at s */
#define DW_LOAD(v, s) (v = *(const dw_v16f *)(s))

/* acc += source(s) * weight vector wv */
#define DW_TAP(acc, s, wv)                                                                     \
    do {                                                                                       \
        dw_v16f x_, t_;                                                                        \
        DW_LOAD(x_, s);                                                                        \
        t_ = x_ * (wv);                                                                        \
        acc = acc + t_;                                                                        \
    } while (0)

/* acc += x * w, the product rounded first */
#define DW_MAC(acc, x, w)                                                                      \
    do {                                                                                       \
        const dw_v16f m_ = (x) * (w);                                                          \
        acc = acc + m_;                                                                        \
    } while (0)

/* One kernel row of a 3x3 for four neighbouring destination columns at unit source step
 * (stride 1): the six source columns they read are loaded once. D = 1: column j's
 * tap kj reads source column j + kj (forward); D = -1: j - kj (the input gradient's mirrored
 * taps; s points at destination column 0's tap 0). Each sum still adds its taps in order. */
#define DW_ROW4(s, W0, W1, W2, D)                                                              \
    do {                                                                                       \
        const float *b_ = (s) - ((D) < 0 ? 2 * (ptrdiff_t)C : 0);                             \
        dw_v16f x0, x1, x2, x3, x4, x5;                                                        \
        DW_LOAD(x0, b_);                                                                       \
        DW_LOAD(x1, b_ + C);                                                                   \
        DW_LOAD(x2, b_ + 2 * C);                                                               \
        DW_LOAD(x3, b_ + 3 * C);                                                               \
        DW_LOAD(x4, b_ + 4 * C);                                                               \
        DW_LOAD(x5, b_ + 5 * C);                                                               \
        if ((D) > 0) {                                                                         \
            DW_MAC(a0, x0, W0); DW_MAC(a0, x1, W1); DW_MAC(a0, x2, W2);                        \
            DW_MAC(a1, x1, W0); DW_MAC(a1, x2, W1); DW_MAC(a1, x3, W2);                        \
            DW_MAC(a2, x2, W0); DW_MAC(a2, x3, W1); DW_MAC(a2, x4, W2);                        \
            DW_MAC(a3, x3, W0); DW_MAC(a3, x4, W1); DW_MAC(a3, x5, W2);                        \
        } else {                                                                               \
            DW_MAC(a0, x2, W0); DW_MAC(a0, x1, W1); DW_MAC(a0, x0, W2);                        \
            DW_MAC(a1, x3, W0); DW_MAC(a1, x2, W1); DW_MAC(a1, x1, W2);                        \
            DW_MAC(a2, x4, W0); DW_MAC(a2, x3, W1); DW_MAC(a2, x2, W2);                        \
            DW_MAC(a3, x5, W0); DW_MAC(a3, x4, W1); DW_MAC(a3, x3, W2);                        \
        }                                                                                      \
    } while (0)

/* Four destination columns p.. of the unit-step interior, D as in DW_ROW4. */
#define DW_QUAD(D)                                                                             \
    do {                                                                                       \
        dw_v16f a0 = zero, a1 = zero, a2 = zero, a3 = zero;                                    \
        DW_ROW4(rows[0] + off, w00, w01, w02, D);                                              \
        DW_ROW4(rows[1] + off, w10, w11, w12, D);                                              \
        DW_ROW4(rows[2] + off, w20, w21, w22, D);                                              \
        DW_STORE(a0, p);                                                                       \
        DW_STORE(a1, p + 1);                                                                   \
        DW_STORE(a2, p + 2);                                                                   \
        DW_STORE(a3, p + 3);                                                                   \
    } while (0)

/* The nine weight vectors of a 3x3 for channels [f, f + 16). */
#define DW_WEIGHTS(f)                                                                          \
    const float *w0 = P->w + (f);                                                              \
    const dw_v16f w00 = *(const dw_v16f *)(w0), w01 = *(const dw_v16f *)(w0 + C),             \
                  w02 = *(const dw_v16f *)(w0 + 2 * C), w10 = *(const dw_v16f *)(w0 + 3 * C), \
                  w11 = *(const dw_v16f *)(w0 + 4 * C), w12 = *(const dw_v16f *)(w0 + 5 * C), \
                  w20 = *(const dw_v16f *)(w0 + 6 * C), w21 = *(const dw_v16f *)(w0 + 7 * C), \
                  w22 = *(const dw_v16f *)(w0 + 8 * C)

/* The sums of destination column p, channels [f, f + 16): bias, pre-activation, activation. */
#define DW_STORE(acc, p)                                                                       \
    do {                                                                                       \
        dw_v16f z_ = acc;                                                                      \
        if (pf.n) dw_ahead_step(&pf);                                                          \
        const size_t o_ = (size_t)(p) * C + f;                                                 \
        if (P->bias) z_ = z_ + *(const dw_v16f *)(P->bias + f);                                \
        if (P->act == DW_ACT_CLAMP) {                                                          \
            if (zl != yl) *(dw_v16f *)(zl + o_) = z_;                                          \
            const dw_v16i a_ = z_ > lov;                                                       \
            const dw_v16f v_ = (dw_v16f)((a_ & (dw_v16i)z_) | (~a_ & (dw_v16i)lov));           \
            const dw_v16i b_ = v_ < hiv;                                                       \
            const dw_v16f y_ = (dw_v16f)((b_ & (dw_v16i)v_) | (~b_ & (dw_v16i)hiv));           \
            *(dw_v16f *)(yl + o_) = y_;                                                        \
        } else if (P->act == DW_ACT_NONE) {                                                    \
            if (zl != yl) *(dw_v16f *)(zl + o_) = z_;                                          \
            *(dw_v16f *)(yl + o_) = z_;                                                        \
        } else {                                                                               \
            *(dw_v16f *)(zl + o_) = z_; /* the activation follows over the line */             \
        }                                                                                      \
    } while (0)

/* Units [u0, u1) of the plan: unit u is destination line u / chunks, channel chunk u % chunks. */
static void DW_FN(dw_units)(void *arg)
{
    const dw_job *J = arg;
    const dw_plan *P = J->plan;
    const size_t C = P->C, C16 = C / 16 * 16, kw = (size_t)P->kw;
    const dw_v16f zero = {0}, lov = zero + P->lo, hiv = zero + P->hi;
    const float *rows[DW_MAX_K];
    int rk[DW_MAX_K];
    for (size_t u = J->u0; u < J->u1; u++) {
        const size_t t = u / P->chunks, ch = u % P->chunks;
        const size_t c0 = ch * P->chunk_c, c1 = ch + 1 == P->chunks ? C : c0 + P->chunk_c;
        const int nr = dw_rows(P, t, rows, rk);
        float *zl = P->z + t * (size_t)P->dst_w * C, *yl = P->y ? P->y + t * (size_t)P->dst_w * C : zl;
        const size_t fv = c1 < C16 ? c1 : C16; /* [c0, fv): whole vectors; [fv, c1): one at a time */
        dw_ahead pf;
        dw_ahead_plan(P, t, rows, nr, (fv - c0) / 16 * (size_t)P->dst_w, &pf);
        /* Columns whose nine taps of a 3x3 all land: four columns (stride 1) or one at a time,
         * all their channels 16 at a time, so the source is read in address order (a sweep
         * along the line per 16 channels strided through memory that the prefetchers did not
         * follow); the nine weight vectors are loaded per 16 channels (from L1). */
        const int full = P->kh == 3 && P->kw == 3 && nr == 3 && P->full_hi > P->full_lo;
        const int lo = full ? P->full_lo : -1, hi = full ? P->full_hi : -1;
        if (full) {
            const ptrdiff_t dC = (ptrdiff_t)P->col_d * (ptrdiff_t)C;
            int p = lo;
            if (P->col_a == 1) /* stride 1: four columns share their loads */
                for (; p + 4 <= hi; p += 4)
                    for (size_t f = c0; f < fv; f += 16) {
                        DW_WEIGHTS(f);
                        const ptrdiff_t off = ((ptrdiff_t)p + P->col_b) * (ptrdiff_t)C + (ptrdiff_t)f;
                        if (P->col_d > 0)
                            DW_QUAD(1);
                        else
                            DW_QUAD(-1);
                    }
            for (; p < hi; p++)
                for (size_t f = c0; f < fv; f += 16) {
                    DW_WEIGHTS(f);
                    const ptrdiff_t off = ((ptrdiff_t)p * P->col_a + P->col_b) * (ptrdiff_t)C + (ptrdiff_t)f;
                    const float *s0 = rows[0] + off, *s1 = rows[1] + off, *s2 = rows[2] + off;
                    dw_v16f acc = zero;
                    DW_TAP(acc, s0, w00);
                    DW_TAP(acc, s0 + dC, w01);
                    DW_TAP(acc, s0 + 2 * dC, w02);
                    DW_TAP(acc, s1, w10);
                    DW_TAP(acc, s1 + dC, w11);
                    DW_TAP(acc, s1 + 2 * dC, w12);
                    DW_TAP(acc, s2, w20);
                    DW_TAP(acc, s2 + dC, w21);
                    DW_TAP(acc, s2 + 2 * dC, w22);
                    DW_STORE(acc, p);
                }
        }
        /* The input gradient of a 3x3 at column stride 2: pairs of columns read two source
         * columns per kernel row, loaded once. */
        const int plo = P->pair_lo, phi = P->pair_hi;
        if (phi > plo)
            for (int p = plo; p < phi; p += 2) /* all channels of a pair, in address order */
                for (size_t f = c0; f < fv; f += 16) {
                    const size_t c = (size_t)P->col[(size_t)p * 3] * C + f;
                    dw_v16f a0 = zero, a1 = zero;
                    for (int i = 0; i < nr; i++) {
                        const float *wr = P->w + (size_t)rk[i] * 3 * C + f;
                        const dw_v16f w0 = *(const dw_v16f *)wr, w1 = *(const dw_v16f *)(wr + C),
                                      w2 = *(const dw_v16f *)(wr + 2 * C);
                        dw_v16f x0, x1;
                        DW_LOAD(x0, rows[i] + c);
                        DW_LOAD(x1, rows[i] + c - C);
                        DW_MAC(a0, x0, w0);
                        DW_MAC(a0, x1, w2);
                        DW_MAC(a1, x0, w1);
                    }
                    DW_STORE(a0, p);
                    DW_STORE(a1, p + 1);
                }
        /* The other columns (and the channels past the last vector of all): the taps that land
         * listed once per column, then all channels, in the memory's order. */
        for (int p = 0; p < P->dst_w; p++) {
            const int inner = (p >= lo && p < hi) || (p >= plo && p < phi);
            if (inner && fv == c1) {
                p = p < hi && p >= lo ? hi - 1 : phi - 1;
                continue;
            }
            const int *cp = P->col + (size_t)p * kw;
            const float *sp[DW_MAX_TAPS], *wp[DW_MAX_TAPS];
            int nt = 0;
            for (int i = 0; i < nr; i++)
                for (size_t kj = 0; kj < kw; kj++)
                    if (cp[kj] >= 0) {
                        sp[nt] = rows[i] + (size_t)cp[kj] * C;
                        wp[nt++] = P->w + ((size_t)rk[i] * kw + kj) * C;
                    }
            size_t f = inner ? fv : c0;
            for (; f < fv; f += 16) {
                dw_v16f acc = zero;
                for (int q = 0; q < nt; q++) {
                    const dw_v16f wv = *(const dw_v16f *)(wp[q] + f);
                    DW_TAP(acc, sp[q] + f, wv);
                }
                DW_STORE(acc, p);
            }
            for (; f < c1; f++) {
                float acc = 0.0f;
                for (int q = 0; q < nt; q++) {
                    const float v = sp[q][f];
                    const float tv = v * wp[q][f];
                    acc = acc + tv;
                }
                const size_t o = (size_t)p * C + f;
                float z = acc;
                if (P->bias) z = z + P->bias[f];
                if (P->act == DW_ACT_CLAMP) {
                    if (zl != yl) zl[o] = z;
                    const float v = z > P->lo ? z : P->lo;
                    yl[o] = v < P->hi ? v : P->hi;
                } else if (P->act == DW_ACT_NONE) {
                    if (zl != yl) zl[o] = z;
                    yl[o] = z;
                } else {
                    zl[o] = z;
                }
            }
        }
        if (P->act == DW_ACT_OTHER) /* one chunk per line: whole rows */
            tfx__activation_forward(P->fwd_act, P->alpha, P->beta, zl, yl, (size_t)P->dst_w, C);
    }
}

#undef DW_LOAD
#undef DW_TAP
#undef DW_MAC
#undef DW_ROW4
#undef DW_QUAD
#undef DW_WEIGHTS
#undef DW_STORE
