/* The depthwise kernel's body (lib/core/conv_grouped.c includes it once per instruction set,
 * with DW_FN naming the copy and the target selected around the include). Everything here is
 * static; vectors never cross a call (-Werror=psabi): the helpers are macros. Each value is one
 * in-order sum: 0, then tap by tap (kernel row, then column, skipping taps outside the
 * source), then the bias; products and sums are separate statements, so no compiler contracts
 * them into fused multiply-adds and every copy computes the same bits. */

/* v = the source value at s, gated by the activation's backward (P->gate: where the gate
 * tensor fails the window, or the value is not positive when asked, 0). */
#define DW_LOAD(v, s)                                                                          \
    do {                                                                                       \
        v = *(const dw_v16f *)(s);                                                             \
        if (gm) {                                                                              \
            const dw_v16f g_ = *(const dw_v16f *)((s) + goff);                                 \
            dw_v16i m_ = ones;                                                                 \
            if (gm & DW_GATE_LO) m_ &= g_ > lov;                                               \
            if (gm & DW_GATE_HI) m_ &= g_ < hiv;                                               \
            if (gm & DW_GATE_POS) m_ &= v > zero;                                              \
            v = (dw_v16f)((dw_v16i)v & m_);                                                    \
        }                                                                                      \
    } while (0)

/* acc += source(s) * weight vector wv */
#define DW_TAP(acc, s, wv)                                                                     \
    do {                                                                                       \
        dw_v16f x_, t_;                                                                        \
        DW_LOAD(x_, s);                                                                        \
        t_ = x_ * (wv);                                                                        \
        acc = acc + t_;                                                                        \
    } while (0)

/* The sums of destination column p, channels [f, f + 16): bias, pre-activation, activation. */
#define DW_STORE(acc, p)                                                                       \
    do {                                                                                       \
        dw_v16f z_ = acc;                                                                      \
        const size_t o_ = (size_t)(p) * C + f;                                                 \
        if (P->bias) z_ = z_ + *(const dw_v16f *)(P->bias + f);                                \
        if (P->act == DW_ACT_CLAMP) {                                                          \
            if (zl != yl) *(dw_v16f *)(zl + o_) = z_;                                          \
            const dw_v16i a_ = z_ > lov;                                                       \
            const dw_v16f v_ = (dw_v16f)((a_ & (dw_v16i)z_) | (~a_ & (dw_v16i)lov));           \
            const dw_v16i b_ = v_ < hiv;                                                       \
            *(dw_v16f *)(yl + o_) = (dw_v16f)((b_ & (dw_v16i)v_) | (~b_ & (dw_v16i)hiv));      \
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
    const size_t src_img = (size_t)P->src_h * P->src_w * C;
    const ptrdiff_t goff = P->gate ? P->gate - P->src : 0;
    const int gm = P->gate ? P->gate_mode : 0;
    const dw_v16f zero = {0}, lov = zero + P->lo, hiv = zero + P->hi;
    const dw_v16i ones = (dw_v16i){0} - 1;
    const float *rows[DW_MAX_K];
    int rk[DW_MAX_K];
    for (size_t u = J->u0; u < J->u1; u++) {
        const size_t t = u / P->chunks, ch = u % P->chunks;
        const size_t c0 = ch * P->chunk_c, c1 = ch + 1 == P->chunks ? C : c0 + P->chunk_c;
        const size_t b = t / (size_t)P->dst_h;
        const int r = (int)(t % (size_t)P->dst_h);
        const float *sb = P->src + b * src_img;
        int nr = 0;
        for (int ki = 0; ki < P->kh; ki++) {
            const int num = r * P->row_a + P->row_b + ki * P->row_d;
            if (num < 0 || num % P->row_s || num / P->row_s >= P->src_h) continue;
            rows[nr] = sb + (size_t)(num / P->row_s) * P->src_w * C;
            rk[nr++] = ki;
        }
        float *zl = P->z + t * (size_t)P->dst_w * C, *yl = P->y ? P->y + t * (size_t)P->dst_w * C : zl;
        /* the unrolled 3x3 body where all nine taps are in the source */
        const int full = P->kh == 3 && P->kw == 3 && nr == 3 && P->full_hi > P->full_lo;
        const int lo = full ? P->full_lo : P->dst_w, hi = full ? P->full_hi : P->dst_w;
        const ptrdiff_t dC = (ptrdiff_t)P->col_d * (ptrdiff_t)C;
        size_t f = c0;
        for (; f + 16 <= c1 && f < C16; f += 16) {
            for (int p = 0; p < P->dst_w; p++) {
                if (p == lo) { /* interior: weights in registers */
                    const float *w0 = P->w + f;
                    const dw_v16f w00 = *(const dw_v16f *)(w0), w01 = *(const dw_v16f *)(w0 + C),
                                  w02 = *(const dw_v16f *)(w0 + 2 * C), w10 = *(const dw_v16f *)(w0 + 3 * C),
                                  w11 = *(const dw_v16f *)(w0 + 4 * C), w12 = *(const dw_v16f *)(w0 + 5 * C),
                                  w20 = *(const dw_v16f *)(w0 + 6 * C), w21 = *(const dw_v16f *)(w0 + 7 * C),
                                  w22 = *(const dw_v16f *)(w0 + 8 * C);
                    for (; p < hi; p++) {
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
                    if (p >= P->dst_w) break;
                }
                const int *cp = P->col + (size_t)p * kw;
                dw_v16f acc = zero;
                for (int i = 0; i < nr; i++) {
                    const float *wr = P->w + (size_t)rk[i] * kw * C + f, *sr = rows[i] + f;
                    for (size_t kj = 0; kj < kw; kj++)
                        if (cp[kj] >= 0) {
                            const dw_v16f wv = *(const dw_v16f *)(wr + kj * C);
                            DW_TAP(acc, sr + (size_t)cp[kj] * C, wv);
                        }
                }
                DW_STORE(acc, p);
            }
        }
        for (; f < c1; f++) /* channels past the last 16: one at a time, the same sums */
            for (int p = 0; p < P->dst_w; p++) {
                const int *cp = P->col + (size_t)p * kw;
                float acc = 0.0f;
                for (int i = 0; i < nr; i++) {
                    const float *wr = P->w + (size_t)rk[i] * kw * C + f, *sr = rows[i] + f;
                    for (size_t kj = 0; kj < kw; kj++) {
                        if (cp[kj] < 0) continue;
                        const float *s = sr + (size_t)cp[kj] * C;
                        float v = *s;
                        if (gm) {
                            const float g = s[goff];
                            if (((gm & DW_GATE_LO) && !(g > P->lo)) || ((gm & DW_GATE_HI) && !(g < P->hi)) ||
                                ((gm & DW_GATE_POS) && !(v > 0.0f)))
                                v = 0.0f;
                        }
                        const float tv = v * wr[kj * C];
                        acc = acc + tv;
                    }
                }
                const size_t o = (size_t)p * C + f;
                float z = acc;
                if (P->bias) z = z + P->bias[f];
                if (P->act == DW_ACT_CLAMP) {
                    if (zl != yl) zl[o] = z;
                    float v = z > P->lo ? z : P->lo;
                    yl[o] = v < P->hi ? v : P->hi;
                } else if (P->act == DW_ACT_NONE) {
                    if (zl != yl) zl[o] = z;
                    yl[o] = z;
                } else {
                    zl[o] = z;
                }
            }
        if (P->act == DW_ACT_OTHER) /* one chunk per line: whole rows */
            tfx__activation_forward(P->fwd_act, P->alpha, P->beta, zl, yl, (size_t)P->dst_w, C);
    }
}

#undef DW_LOAD
#undef DW_TAP
#undef DW_STORE
