// The emulated CIM datapath (docs/architecture.md §4-§6) and the pool units.
//
// A conv/fc layer runs as the MARS macro map prescribes: its (row block x column group)
// grid is cut into tiles of one macro (rows/rows_active blocks x cols/group_width groups),
// enumerated column-tile-major; a *round* loads the next n_macros tiles into the macros'
// on-chip weight memories (macro m <- tile round*n_macros + m), then every output pixel
// streams its input bit planes through them. Layers with more tiles than macros take
// several rounds; partial sums are kept in the output tensor's scratch slot between rounds.
//
// Per output pixel:
//   1. the input window is packed into row-block words, one per input bit plane, from
//      input planes that were packed once per layer (bit c of word = channel c of a pixel);
//   2. for every *present* unit of the round (the precision controller walks the skip index
//      and the column map: pruned units and pruned filters cost nothing), every used column
//      c of the unit's group senses n = popcount(x_i & w_c) per input plane i, and the
//      shift-add unit adds s_j * 2^(i+j) * n into the accumulator of the column's filter
//      (s_j = -1 for the filter's MSB plane);
//   3. requant: y = clamp(rshift_rne(acc + bias + (res << res_shift), shift), lo, hi).
// Accumulators add modulo 2^32 (as an adder tree does); the validator guarantees the true
// value fits int32, so the result is exact.
//
// Activity counters (architecture.md §7): the round loader counts what it schedules -- per
// tile the absent units the skip index lets it skip and the row blocks it activates, per
// scheduled unit its used columns and their real rows -- and every output pixel adds those
// round totals once per input bit plane it streams (register counters outside the column
// loop); a layer's cycles are its busiest macro's row-block activations. Memory traffic is
// counted where it happens, in the emulated chip's native widths (not the prototype's int32
// scratch words): per image the layer's tables, input, residual and output tensors (packed at
// their bit widths), the input written into the bit-plane buffer; per round the units loaded
// into the macros (G x A cells each) and the partial sums that leave and come back between
// rounds (acc_bits each); per pixel and input plane the real rows of every activated row block
// of every tile read from the buffer, and their 1 bits (input_ones).
#include "hcim_internal.h"

// The datapath as synthesized: adder-tree popcount, one shift-add unit for HCIM_MAX_IN_BITS
// planes (unused planes are zero). Defined under __SYNTHESIS__; tests also compile the csim
// library with -DHCIM_HW_DATAPATH to check this path's arithmetic against the emulator.
#if defined(__SYNTHESIS__) && !defined(HCIM_HW_DATAPATH)
#define HCIM_HW_DATAPATH 1
#endif

#define G_W HCIM_GROUP_WIDTH
#define A_ROWS HCIM_ROWS_ACTIVE
#define MAX_ROUND_UNITS (HCIM_N_MACROS * HCIM_UNITS_PER_MACRO)

// One used column of a group, as the precision controller decodes it from the column map.
struct hcim_col {
    uint16_t f;    // filter
    uint8_t c;     // column inside the group
    uint8_t j;     // weight bit plane (shift of the column result)
    uint8_t neg;   // 1 for the filter's MSB plane (two's complement: weight -2^j)
};

static word_t g_planes[HCIM_MAX_PACK_WORDS];                 // input bit planes of the layer
static word_t g_macro[HCIM_N_MACROS][HCIM_MACRO_WORDS];      // the macros' weight cells (this round)
static hcim_col g_cols[HCIM_MAX_GROUPS * G_W];               // used columns per group, compacted
static uint8_t g_ncols[HCIM_MAX_GROUPS];
static uint32_t g_unit_base[HCIM_MAX_GROUPS];                // first stored unit of each group
static int32_t g_bias[HCIM_MAX_FILTERS];
static int8_t g_shift[HCIM_MAX_FILTERS], g_rshift[HCIM_MAX_FILTERS];
// schedule of the present units of the current round
static uint16_t g_u_block[MAX_ROUND_UNITS], g_u_group[MAX_ROUND_UNITS], g_u_slot[MAX_ROUND_UNITS];
static uint8_t g_u_macro[MAX_ROUND_UNITS];
// events of the current round, per input plane and pixel: absent units of its tiles, activated
// row blocks per macro, used columns of the scheduled units, and those columns x real rows
static uint32_t g_r_absent, g_r_blocks[HCIM_N_MACROS], g_r_cols, g_r_bitops;
// per row block: in how many of the round's tiles it is activated; real rows of those activations
static uint8_t g_r_mult[HCIM_MAX_ROWBLOCKS];
static uint32_t g_r_rows;

static inline uint32_t hcim_popcount(word_t x) {
#ifndef HCIM_HW_DATAPATH
    return (uint32_t)__builtin_popcountll(x);
#else
    // balanced adder tree over the 64 bit-line cells
    uint32_t n = 0;
    for (int k = 0; k < 64; k++) {
#pragma HLS UNROLL
        n += (uint32_t)((x >> k) & 1u);
    }
    return n;
#endif
}

static inline bool hcim_present(const word_t *prog, uint32_t off_skip, uint32_t u) {
    return (hcim_rd8(prog, off_skip + (u >> 3)) >> (u & 7u)) & 1u;
}

// Per-filter requant parameters, the column controller tables and each group's first unit.
static void hcim_setup_layer(const word_t *prog, const hcim_layer *l) {
load_filters:
    for (uint32_t f = 0; f < l->f; f++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = HCIM_MAX_FILTERS
        g_bias[f] = (int32_t)hcim_rd32(prog, l->off_bias + 4 * f);
        g_shift[f] = (int8_t)hcim_rdi8(prog, l->off_shift + f);
        g_rshift[f] = (int8_t)hcim_rdi8(prog, l->off_rshift + f);
    }
    uint32_t units = 0;
walk_colmap:
    for (uint32_t g = 0; g < l->ng; g++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = HCIM_MAX_GROUPS
        uint32_t n = 0;
        for (uint32_t c = 0; c < G_W; c++) {
            uint32_t cm = hcim_rd32(prog, l->off_colmap + 4 * (g * G_W + c));
            if (!((cm >> HCIM_CM_USED_SHIFT) & 1u)) continue;
            hcim_col col;
            col.f = (uint16_t)(cm & 0xFFFFu);
            col.c = (uint8_t)c;
            col.j = (uint8_t)((cm >> HCIM_CM_PLANE_SHIFT) & 0xFFu);
            col.neg = col.j + 1u == hcim_rd8(prog, l->off_prec + col.f);
            g_cols[g * G_W + n++] = col;
        }
        g_ncols[g] = (uint8_t)n;
        g_unit_base[g] = units;
        for (uint32_t b = 0; b < l->r; b++) units += hcim_present(prog, l->off_skip, g * l->r + b);
    }
}

// Pack the layer input once: for each pixel and bit plane i, ceil(C/64) words, bit c = bit i of channel c.
static void hcim_pack_planes(const hcim_tensor &ti, const acc_t *x) {
    const uint32_t cw = (ti.c + 63) / 64, n = ti.h * ti.w * ti.bits * cw;
clear_planes:
    for (uint32_t k = 0; k < n; k++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = HCIM_MAX_PACK_WORDS
        g_planes[k] = 0;
    }
pack_pixels:
    for (uint32_t p = 0; p < ti.h * ti.w; p++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 4096
        for (uint32_t c = 0; c < ti.c; c++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 1024
            uint32_t v = (uint32_t)x[p * ti.c + c];
            for (uint32_t i = 0; i < ti.bits; i++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 8
                g_planes[(p * ti.bits + i) * cw + (c >> 6)] |= (word_t)((v >> i) & 1u) << (c & 63u);
            }
        }
    }
}

// Load the tiles of one round into the macros; returns the number of present units scheduled
// and sets the round's events (g_r_*).
static uint32_t hcim_load_round(const word_t *prog, const hcim_layer *l, uint32_t round, uint32_t n_row_tiles,
                                uint32_t n_tiles) {
    uint32_t nu = 0;
    g_r_absent = g_r_cols = g_r_bitops = g_r_rows = 0;
clear_mult:
    for (uint32_t b = 0; b < l->r; b++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = HCIM_MAX_ROWBLOCKS
        g_r_mult[b] = 0;
    }
load_macros:
    for (uint32_t m = 0; m < HCIM_N_MACROS; m++) {
        g_r_blocks[m] = 0;
        uint32_t t = round * HCIM_N_MACROS + m;
        if (t >= n_tiles) continue;
        uint32_t g0 = (t / n_row_tiles) * HCIM_GROUPS_PER_MACRO, b0 = (t % n_row_tiles) * HCIM_BLOCKS_PER_MACRO;
        bool active[HCIM_BLOCKS_PER_MACRO];
        for (uint32_t k = 0; k < HCIM_BLOCKS_PER_MACRO; k++) active[k] = false;
        for (uint32_t g = g0; g < g0 + HCIM_GROUPS_PER_MACRO && g < l->ng; g++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 32
            uint32_t unit = g_unit_base[g];
            for (uint32_t b = 0; b < l->r && b < b0 + HCIM_BLOCKS_PER_MACRO; b++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = HCIM_MAX_ROWBLOCKS
                if (!hcim_present(prog, l->off_skip, g * l->r + b)) {  // skip index: not stored
                    if (b >= b0) g_r_absent++;
                    continue;
                }
                if (b >= b0) {
                    const uint32_t rows = l->k - b * A_ROWS < A_ROWS ? l->k - b * A_ROWS : A_ROWS;  // real rows
                    active[b - b0] = true;
                    g_r_cols += g_ncols[g];
                    g_r_bitops += g_ncols[g] * rows;
                    uint32_t slot = (g - g0) * HCIM_BLOCKS_PER_MACRO + (b - b0);
                    for (uint32_t c = 0; c < G_W; c++) {
#pragma HLS PIPELINE II = 1
                        g_macro[m][slot * G_W + c] = prog[l->off_weights / 8 + unit * G_W + c];
                    }
                    g_u_block[nu] = (uint16_t)b;
                    g_u_group[nu] = (uint16_t)g;
                    g_u_slot[nu] = (uint16_t)slot;
                    g_u_macro[nu] = (uint8_t)m;
                    nu++;
                }
                unit++;
            }
        }
        for (uint32_t k = 0; k < HCIM_BLOCKS_PER_MACRO; k++) {
            if (!active[k]) continue;
            const uint32_t b = b0 + k, rows = l->k - b * A_ROWS < A_ROWS ? l->k - b * A_ROWS : A_ROWS;
            g_r_blocks[m]++;
            g_r_mult[b]++;
            g_r_rows += rows;
        }
    }
    return nu;
}

// Zero-padded input window of output pixel (oy, ox) as row-block words xw[i][b], one per input bit plane.
static void hcim_pack_window(const hcim_tensor &ti, const hcim_layer *l, uint32_t oy, uint32_t ox,
                             word_t xw[HCIM_MAX_IN_BITS][HCIM_XW_WORDS]) {
    const uint32_t cw = (ti.c + 63) / 64, nsw = (l->k + 63) / 64;
#ifdef HCIM_HW_DATAPATH
    const uint32_t clear_bits = HCIM_MAX_IN_BITS, clear_words = l->r > nsw ? l->r : nsw;
#else
    const uint32_t clear_bits = ti.bits, clear_words = nsw;
#endif
    for (uint32_t i = 0; i < clear_bits; i++)
        for (uint32_t w = 0; w <= clear_words; w++) xw[i][w] = 0;
    uint32_t pos = 0;
window_rows:
    for (uint32_t ky = 0; ky < l->kh; ky++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 7
        for (uint32_t kx = 0; kx < l->kw; kx++, pos += ti.c) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 7
            int32_t iy = (int32_t)(oy * l->stride + ky) - (int32_t)l->pad;
            int32_t ix = (int32_t)(ox * l->stride + kx) - (int32_t)l->pad;
            if (iy < 0 || ix < 0 || iy >= (int32_t)ti.h || ix >= (int32_t)ti.w) continue;  // zero padding
            const word_t *src = &g_planes[((uint32_t)iy * ti.w + (uint32_t)ix) * ti.bits * cw];
            for (uint32_t i = 0; i < ti.bits; i++) {
                for (uint32_t wi = 0; wi < cw; wi++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = HCIM_MAX_CWORDS
                    word_t v = src[i * cw + wi];
                    uint32_t p = pos + 64 * wi, sh = p & 63u;
                    xw[i][p >> 6] |= v << sh;
                    if (sh) xw[i][(p >> 6) + 1] |= v >> (64u - sh);
                }
            }
        }
    }
#if HCIM_ROWS_ACTIVE < 64
    // split the 64-bit stream words into rows_active-bit row-block words (in place, high to low)
    const uint32_t per = 64 / A_ROWS;
    const word_t mask = (((word_t)1) << A_ROWS) - 1;
    for (uint32_t i = 0; i < ti.bits; i++) {
        for (int32_t b = (int32_t)l->r - 1; b >= 0; b--) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = HCIM_MAX_ROWBLOCKS
            xw[i][b] = (xw[i][(uint32_t)b / per] >> (((uint32_t)b % per) * A_ROWS)) & mask;
        }
    }
#endif
}

// Column results and shift-add of every scheduled unit for one output pixel (BITS input planes).
template <int BITS>
static void hcim_units(const word_t xw[HCIM_MAX_IN_BITS][HCIM_XW_WORDS], uint32_t n_units,
                       uint32_t *acc) {
units:
    for (uint32_t u = 0; u < n_units; u++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 512
        const uint32_t b = g_u_block[u], g = g_u_group[u];
        word_t xs[BITS];
        for (int i = 0; i < BITS; i++) xs[i] = xw[i][b];
        const word_t *w = &g_macro[g_u_macro[u]][g_u_slot[u] * G_W];
        const hcim_col *cols = &g_cols[g * G_W];
    columns:
        for (uint32_t k = 0; k < g_ncols[g]; k++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = HCIM_GROUP_WIDTH
#pragma HLS PIPELINE II = 1
            const hcim_col col = cols[k];
            const word_t wc = w[col.c];
            uint32_t s = 0;
            for (int i = 0; i < BITS; i++) s += hcim_popcount(xs[i] & wc) << i;
            const uint32_t v = s << col.j;
            acc[col.f] += col.neg ? (0u - v) : v;
        }
    }
}

void hcim_cim_layer(const word_t *prog, const hcim_tables *tab, const hcim_layer *l, acc_t *s,
                    cnt_t cnt[HCIM_N_COUNTERS]) {
    const hcim_tensor &ti = tab->t[l->in], &to = tab->t[l->out];
    const bool has_res = l->res != HCIM_NO_TENSOR;
    const uint32_t res_off = has_res ? tab->t[l->res].off : 0, y_off = to.off;
    hcim_setup_layer(prog, l);
    hcim_pack_planes(ti, s + ti.off);
    const uint32_t n_row_tiles = (l->r + HCIM_BLOCKS_PER_MACRO - 1) / HCIM_BLOCKS_PER_MACRO;
    const uint32_t n_tiles = n_row_tiles * ((l->ng + HCIM_GROUPS_PER_MACRO - 1) / HCIM_GROUPS_PER_MACRO);
    uint32_t n_rounds = (n_tiles + HCIM_N_MACROS - 1) / HCIM_N_MACROS;
    if (n_rounds == 0) n_rounds = 1;  // every filter pruned: outputs are requant(bias [+ res])
    static word_t xw[HCIM_MAX_IN_BITS][HCIM_XW_WORDS];
    uint32_t acc[HCIM_MAX_FILTERS];
    cnt_t busy[HCIM_N_MACROS];  // row-block activations x input planes of each macro (its cycles)
#pragma HLS ARRAY_PARTITION variable = busy complete
    for (uint32_t m = 0; m < HCIM_N_MACROS; m++) busy[m] = 0;
    cnt_t macs = 0, unit_act = 0, skipped = 0, blocks = 0, col_reads = 0, bit_ops = 0;  // register counters
    cnt_t wload = 0, ones = 0, requants = 0;
    const uint32_t pixels = to.h * to.w;
    // per image: tables (precision u8, bias i32, shift i8, res_shift i8 per filter; u32 column map;
    // skip bits), input, residual and output tensors at their bit widths; the input into the bit-plane buffer
    cnt_t dram = 7ull * l->f + 4ull * l->ng * G_W + ((cnt_t)l->ng * l->r + 7) / 8 +
                 hcim_packed_bytes(ti.size, ti.bits) + hcim_packed_bytes(to.size, to.bits);
    if (has_res) dram += hcim_packed_bytes(tab->t[l->res].size, tab->t[l->res].bits);
    cnt_t act_buf = (cnt_t)ti.size * ti.bits;
rounds:
    for (uint32_t round = 0; round < n_rounds; round++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 64
        const uint32_t n_units = hcim_load_round(prog, l, round, n_row_tiles, n_tiles);  // no tiles: nothing, counters 0
        const bool first = round == 0, last = round + 1 == n_rounds;
        wload += (cnt_t)n_units * G_W * A_ROWS;
        if (!first) dram += (cnt_t)pixels * l->f * (HCIM_ACC_BITS / 8) * 2;  // partial sums out, then back in
    pixels:
        for (uint32_t p = 0; p < to.h * to.w; p++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 4096
            for (uint32_t f = 0; f < l->f; f++) acc[f] = first ? 0u : (uint32_t)s[y_off + p * l->f + f];
            if (first) macs += (cnt_t)l->f * l->k;
            unit_act += (cnt_t)n_units * ti.bits;
            skipped += (cnt_t)g_r_absent * ti.bits;
            col_reads += (cnt_t)g_r_cols * ti.bits;
            bit_ops += (cnt_t)g_r_bitops * ti.bits;
            act_buf += (cnt_t)g_r_rows * ti.bits;
            if (last) requants += l->f;
            for (uint32_t m = 0; m < HCIM_N_MACROS; m++) {
#pragma HLS UNROLL
                blocks += (cnt_t)g_r_blocks[m] * ti.bits;
                busy[m] += (cnt_t)g_r_blocks[m] * ti.bits;
            }
            if (n_units) {
                hcim_pack_window(ti, l, p / to.w, p % to.w, xw);
            count_ones:  // 1 bits on the word lines: every activated row block of every tile, every plane
                for (uint32_t b = 0; b < l->r; b++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = HCIM_MAX_ROWBLOCKS
                    if (!g_r_mult[b]) continue;
                    uint32_t n1 = 0;
                    for (uint32_t i = 0; i < ti.bits; i++) n1 += hcim_popcount(xw[i][b]);
                    ones += (cnt_t)g_r_mult[b] * n1;
                }
#ifdef HCIM_HW_DATAPATH
                hcim_units<HCIM_MAX_IN_BITS>(xw, n_units, acc);  // planes >= bits_in are zero
#else
                switch (ti.bits) {  // csim: one unrolled instance per input width
                    case 1: hcim_units<1>(xw, n_units, acc); break;
                    case 2: hcim_units<2>(xw, n_units, acc); break;
                    case 3: hcim_units<3>(xw, n_units, acc); break;
                    case 4: hcim_units<4>(xw, n_units, acc); break;
                    case 5: hcim_units<5>(xw, n_units, acc); break;
                    case 6: hcim_units<6>(xw, n_units, acc); break;
                    case 7: hcim_units<7>(xw, n_units, acc); break;
                    default: hcim_units<8>(xw, n_units, acc); break;
                }
#endif
            }
        requant:
            for (uint32_t f = 0; f < l->f; f++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = HCIM_MAX_FILTERS
                if (!last) {
                    s[y_off + p * l->f + f] = (acc_t)acc[f];
                    continue;
                }
                wide_t v = (wide_t)(acc_t)acc[f] + g_bias[f];
                if (has_res) v += (wide_t)((uint64_t)(wide_t)s[res_off + p * l->f + f] << (uint32_t)g_rshift[f]);
                s[y_off + p * l->f + f] = hcim_clamp(hcim_rshift_rne(v, g_shift[f]), l->lo, l->hi);
            }
        }
    }
    cnt_t cycles = 0;
    for (uint32_t m = 0; m < HCIM_N_MACROS; m++) cycles = busy[m] > cycles ? busy[m] : cycles;
    cnt[HCIM_C_MACS] = macs;
    cnt[HCIM_C_UNIT_ACTIVATIONS] = unit_act;
    cnt[HCIM_C_UNITS_SKIPPED] = skipped;
    cnt[HCIM_C_ROWBLOCK_ACTIVATIONS] = blocks;
    cnt[HCIM_C_CYCLES] = cycles;
    cnt[HCIM_C_BIT_OPS] = bit_ops;
    cnt[HCIM_C_DIGITAL_COLUMN_READS] = col_reads;
    cnt[HCIM_C_WEIGHT_LOAD_BITS] = wload;
    cnt[HCIM_C_DRAM_BYTES] = dram + wload / 8;
    cnt[HCIM_C_ACT_BUFFER_BITS] = act_buf;
    cnt[HCIM_C_REQUANT_OPS] = requants;
    cnt[HCIM_C_INPUT_ONES] = ones;
}

void hcim_maxpool_layer(const hcim_tables *tab, const hcim_layer *l, acc_t *s) {
    const hcim_tensor &ti = tab->t[l->in], &to = tab->t[l->out];
    const acc_t *x = s + ti.off;
    acc_t *y = s + to.off;
maxpool_pixels:
    for (uint32_t p = 0; p < to.h * to.w; p++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 4096
        const uint32_t oy = p / to.w, ox = p % to.w;
        for (uint32_t c = 0; c < to.c; c++) {
            acc_t m = x[((oy * l->stride) * ti.w + ox * l->stride) * ti.c + c];
            for (uint32_t ky = 0; ky < l->kh; ky++)
                for (uint32_t kx = 0; kx < l->kw; kx++) {
                    acc_t v = x[((oy * l->stride + ky) * ti.w + ox * l->stride + kx) * ti.c + c];
                    m = v > m ? v : m;
                }
            y[p * to.c + c] = m;
        }
    }
}

void hcim_avgpool_layer(const hcim_tables *tab, const hcim_layer *l, acc_t *s) {
    const hcim_tensor &ti = tab->t[l->in], &to = tab->t[l->out];
    const acc_t *x = s + ti.off;
    acc_t *y = s + to.off;
avgpool_channels:
    for (uint32_t c = 0; c < ti.c; c++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 1024
        wide_t sum = 0;
        for (uint32_t p = 0; p < ti.h * ti.w; p++) sum += x[p * ti.c + c];
        y[c] = hcim_clamp(hcim_rshift_rne(sum, l->pool_shift), l->lo, l->hi);
    }
}
