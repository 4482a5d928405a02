// The emulated CIM datapath (docs/architecture.md §4-§6, hybrid mode §9, dual-path layers §10) and the pool units.
//
// A conv/fc layer runs as the MARS macro map prescribes: its (row block x column group) grid is
// cut into tiles of one macro (rows/rows_active blocks x cols/group_width groups), enumerated
// column-tile-major; a *round* loads the next n_macros tiles into the macros' on-chip weight
// memories (macro m <- tile round*n_macros + m), then every output pixel streams its input bit
// planes through them. Layers with more tiles than macros take several rounds; partial sums are
// kept in the output tensor's scratch slot between rounds.
//
// Per layer (burst copies into on-chip tables): per-filter requant parameters, the column map
// decoded into per-column controller words (used, sign, plane j, MSB-aligned depth P_f - 1 - j),
// the skip index as one bitmap row per group, and for a hybrid layer its level table.
// Per round: the *schedule*, one flat list of the present units of the round's tiles, ordered
// group-major (a group's units are consecutive, the last one flagged), each entry naming its row
// block, group, macro, slot and macro type; the round's weights are burst-copied into the macros.
// Per output pixel (incremental row/column counters, no divide):
//   1. window: the zero-padded input window packed into row-block words, one per input bit plane,
//      from input planes packed once per layer (bit c of a word = channel c of a pixel);
//   2. hybrid layers, the precision controller (§9.2, §9.4): the saliency of every column group
//      from the top sal_planes planes of its present row blocks, then its level (D, E);
//      a digital layer has one level (15, 15): every pair digital;
//   3. units: ONE pipelined iteration per scheduled unit computes all G columns x all input
//      planes: n = popcount(x_i & w_c), routed per pair (i, j) by the group's level through the
//      adder tree (n), the ADC (code << s, with the optional Philox noise, §9.3, §9.6) or nowhere;
//      the shift-add goes into per-column accumulators held in registers, which are flushed into
//      the column buffer (one entry per layer column, the sum of its filter's columns) when the
//      group's last unit has run: no read-modify-write of a memory inside the pipelined loop;
//   4. requant: y = clamp(rshift_rne(acc + bias + (res << res_shift), shift), lo, hi), acc read
//      from the column buffer at the filter's first column (a dual-path layer's ternary filter: from
//      the ternary sums, see "the second macro type" below).
// Accumulators add modulo 2^32 (as an adder tree does); the validator guarantees the true value
// fits int32, so the result is exact.
//
// Activity counters (architecture.md §7, §9.7): the round loader counts what it schedules -- per
// tile the absent units the skip index lets it skip and the row blocks it activates, per scheduled
// unit its used columns and their real rows -- and each round adds those totals once per input bit
// plane and output pixel (one multiply per round). The data-dependent counts are taken as the data
// flows: the 1 bits on the word lines per pixel, and in hybrid mode per (pixel, group) the decision
// and, from the level, the unit's digital / analog / skipped column reads (per-group tables built
// once per layer). Memory traffic is counted in the emulated chip's native widths (not the
// prototype's int32 scratch words).
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
#define SKIP_WORDS ((HCIM_MAX_ROWBLOCKS + 63) / 64)  // bitmap words of one group's skip-index row
#define NO_COL 0xFFFFu

#if HCIM_ROWS_ACTIVE == 8
#define LOG2_A 3
#elif HCIM_ROWS_ACTIVE == 16
#define LOG2_A 4
#elif HCIM_ROWS_ACTIVE == 32
#define LOG2_A 5
#else
#define LOG2_A 6
#endif
// ADC step 2^s counts (architecture.md §9.3): s = max(0, log2 A - adc_bits)
#define ADC_S (LOG2_A > HCIM_ADC_BITS ? LOG2_A - HCIM_ADC_BITS : 0)
#define ADC_MAX ((1 << HCIM_ADC_BITS) - 1)

// Column controller word of one layer column: used, sign (the filter's MSB plane), plane j, and the
// MSB-aligned depth P_f - 1 - j of §9.1 (0..7).
struct hcim_colw {
    uint8_t used, neg, j, dep;
};

// One entry of a round's schedule: a present unit and where its weights sit.
struct hcim_unit {
    uint16_t block, group, slot;
    uint8_t macro;
    uint8_t last;        // last unit of its group in this round: flush the column accumulators
    uint8_t macro_type;  // 0 = the SRAM CIM macro (the ternary macros have their own schedule, g_tsched)
    uint32_t stored;     // index of the unit in the layer's weight section
};

// the activation buffer: in on-chip mode every live tensor's bit planes (hcim_plan_arena), in DDR
// mode the bit planes of the layer's input (at word 0)
static word_t g_planes[HCIM_MAX_PACK_WORDS];
static word_t g_macro[HCIM_N_MACROS][HCIM_MACRO_WORDS];  // the macros' weight cells (this round)
static word_t g_stage[HCIM_STAGE_WORDS];                 // one table section (or image), burst-copied
static hcim_colw g_colw[HCIM_MAX_GROUPS][G_W];           // column controller words
static uint8_t g_owner[HCIM_MAX_GROUPS][G_W];            // first column of the same filter in the group
static uint8_t g_ncols[HCIM_MAX_GROUPS];                 // used columns per group
static uint8_t g_maxdep[HCIM_MAX_GROUPS];                // largest column depth of the group
static word_t g_skipw[HCIM_MAX_GROUPS][SKIP_WORDS];      // skip index: bit b of row g = unit (g, b) present
static uint32_t g_unit_base[HCIM_MAX_GROUPS];            // first stored unit of each group
static uint16_t g_npresent[HCIM_MAX_GROUPS];             // present units of each group
static int32_t g_bias[HCIM_MAX_FILTERS];
static int8_t g_shift[HCIM_MAX_FILTERS], g_rshift[HCIM_MAX_FILTERS];
static uint16_t g_fcol[HCIM_MAX_FILTERS];                // the filter's owner column (layer column), NO_COL if pruned
// per layer column: its filter's accumulator (this pixel); two copies, written together, so that
// requant's RQ_LANES filters a cycle read them on two ports each
#define RQ_LANES 4
// three buffers (a pixel's sums) for the pixel stream (hcim_pixel_stream); the per-pixel loops use buffer 0
static uint32_t g_colbuf[3][HCIM_MAX_GROUPS * G_W], g_colbuf2[3][HCIM_MAX_GROUPS * G_W];
// the round's schedule and events
static hcim_unit g_sched[MAX_ROUND_UNITS];
static uint16_t g_r_gunits[HCIM_MAX_GROUPS];             // units of each group in this round
static uint32_t g_r_absent, g_r_blocks[HCIM_N_MACROS], g_r_cols, g_r_bitops, g_r_rows;
static uint8_t g_r_mult[HCIM_MAX_ROWBLOCKS];             // tiles of the round that activate each row block
// requant's DDR chunks: outputs (write-combined), partial sums and residual (read ahead)
#define IO_WORDS (HCIM_MAX_FILTERS > 2048 ? HCIM_MAX_FILTERS : 2048)
// partial sums of a layer of several rounds: read from one buffer, written to the other; on chip for
// the whole layer when pixels x filters <= PSUM_WORDS in on-chip mode, else a DDR chunk of each
#define PSUM_WORDS (IO_WORDS > 4096 ? IO_WORDS : 4096)
static acc_t g_psum[2][PSUM_WORDS], g_rbuf[IO_WORDS];
// hybrid mode: the level table and per (group, level) the digital and analog pairs of one unit
static hcim_hybrid g_hy;
static uint16_t g_hy_dig[HCIM_MAX_GROUPS][HCIM_MAX_LEVELS], g_hy_ana[HCIM_MAX_GROUPS][HCIM_MAX_LEVELS];
static uint8_t g_lvl_d[HCIM_MAX_GROUPS], g_lvl_e[HCIM_MAX_GROUPS];  // this pixel's (D, E) per group
static uint16_t g_nhat[A_ROWS + 1];                      // noise-free ADC: reconstructed count of n
// noisy hybrid layers: the binomial noise of every analog pair of this pixel, per schedule entry,
// column and input plane, made by one Philox unit (the noise loop) before the units loop reads it
static int8_t g_noise[MAX_ROUND_UNITS][G_W][HCIM_MAX_IN_BITS];
// per group and level: this round's digital / analog / skipped column reads of one pixel
static uint32_t g_r_dig[HCIM_MAX_GROUPS][HCIM_MAX_LEVELS], g_r_ana[HCIM_MAX_GROUPS][HCIM_MAX_LEVELS];
static uint32_t g_r_skp[HCIM_MAX_GROUPS][HCIM_MAX_LEVELS];

// ---- the second macro type: the ternary path of a dual-path layer (architecture.md §10) ----
// The window packer compares each input word with the layer's threshold (z = [x >= theta], all 64
// channels at once, bit-sliced over the input planes) and streams z as one extra window plane (plane
// HCIM_MAX_IN_BITS, kept as 64-bit stream words). A round of the ternary path loads the next
// tern_n_macros ternary tiles (tern_cols / 2 filters x tern_rows / tern_rows_active row blocks each,
// dense: no skip index) into the ternary macros' cell memories, as (filter group of T_TG filters, row
// block) slots of T_TG positive and T_TG negative cell words, and schedules them filter-group-major.
// Per output pixel ONE pipelined iteration per scheduled (filter group, row block) computes
// n+ - n- = popcount(z & pos) - popcount(z & neg) of T_TG filters into register accumulators, flushed
// into the ternary sums g_tacc when the group's last block has run; requant adds them to the filter's
// column sum (0: a ternary filter has no SRAM column). In the pixel stream these iterations share the
// units slot with the SRAM units (the two macro types run in parallel).
#if HCIM_HAS_TERN
#define HCIM_XW_PLANES (HCIM_MAX_IN_BITS + 1)  // the input planes and the binary plane z
#define T_ROWS HCIM_TERN_ROWS_ACTIVE
#define T_S HCIM_TERN_FILTERS_PER_MACRO
#define T_B HCIM_TERN_BLOCKS_PER_MACRO
#define T_M HCIM_TERN_N_MACROS
#define T_TG 8  // ternary filters of one iteration (a filter group)
#define T_SLOTS (T_S / T_TG * T_B)  // (filter group, row block) slots of one ternary macro
#define Z_PLANE HCIM_MAX_IN_BITS
#define MAX_TERN_ROWBLOCKS ((HCIM_MAX_ROWBLOCKS * A_ROWS + T_ROWS - 1) / T_ROWS)  // K <= max_rowblocks * A
static_assert(T_S % T_TG == 0, "a filter group lies in one ternary tile: a kernel preset has tern_cols = 16k");
static_assert(64 % T_ROWS == 0, "ternary row blocks tile the 64-bit stream words");
// one entry of a round's ternary schedule: filters u0 .. u0 + nf - 1 (ternary index) on row block `block`
struct hcim_tunit {
    uint16_t block, u0, slot;
    uint8_t macro, nf, last;  // last: the group's last block in this round: flush its accumulators
};
static hcim_tunit g_tsched[T_M * T_SLOTS];
static word_t g_tmacro[T_M][T_SLOTS][T_TG][2];      // the ternary macros' cells (this round): positive, negative
static uint32_t g_tacc[3][HCIM_MAX_FILTERS];        // per ternary filter: its sum (this pixel), per stream buffer
static uint8_t g_t_mult[MAX_TERN_ROWBLOCKS];        // tiles of the round that activate each ternary row block
static uint32_t g_t_blocks[T_M], g_t_acts, g_t_cols, g_t_bitops, g_t_rows;  // the round's events
static cnt_t g_t_refresh;
#else
#define HCIM_XW_PLANES HCIM_MAX_IN_BITS
#endif
static uint32_t g_du_theta, g_du_rt;  // this layer's threshold (0: no ternary path) and ternary row blocks

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

// ---- analog path (architecture.md §9.3, §9.6) ----

// Philox4x32-10 (Salmon et al. 2011, Random123 philox4x32_R): counter c[4], key (k0, k1) -> c[4].
static void hcim_philox(uint32_t c[4], uint32_t k0, uint32_t k1) {
philox_rounds:
    for (int r = 0; r < 10; r++) {
#pragma HLS UNROLL
        if (r) {
            k0 += 0x9E3779B9u;
            k1 += 0xBB67AE85u;
        }
        const uint64_t p0 = (uint64_t)0xD2511F53u * c[0], p1 = (uint64_t)0xCD9E8D57u * c[2];
        const uint32_t n0 = (uint32_t)(p1 >> 32) ^ c[1] ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c[3] ^ k1;
        c[1] = (uint32_t)p1;
        c[3] = (uint32_t)p0;
        c[0] = n0;
        c[2] = n2;
    }
}

// Noise of one analog read before its scale: the centered binomial popcount(a) - popcount(b)
// (-64..64) of noise_pairs coin pairs, a | b = the words of Philox4x32-10(counter = (image, pixel,
// column, b << 8 | i << 4 | j), key = (seed, layer)); e = that << noise_shift (1/16 counts).
static int8_t hcim_noise(const hcim_ctx &ctx, uint32_t pixel, uint32_t column, uint32_t b, uint32_t i, uint32_t j) {
    uint32_t c[4] = {ctx.image, pixel, column, (b << 8) | (i << 4) | j};
    hcim_philox(c, g_hy.noise_seed, ctx.layer);
    const word_t m = g_hy.noise_pairs >= 64 ? ~(word_t)0 : (((word_t)1 << g_hy.noise_pairs) - 1);
    const word_t a = ((word_t)c[0] | (word_t)c[1] << 32) & m, bb = ((word_t)c[2] | (word_t)c[3] << 32) & m;
    return (int8_t)((int32_t)hcim_popcount(a) - (int32_t)hcim_popcount(bb));
}

// Reconstructed count n^ = code << s of a bit-line value n16 in 1/16 counts.
static inline uint32_t hcim_adc(int32_t n16) {
    wide_t code = hcim_rshift_rne((wide_t)n16, HCIM_NOISE_FRAC_BITS + ADC_S);
    code = code < 0 ? 0 : (code > ADC_MAX ? ADC_MAX : code);
    return (uint32_t)code << ADC_S;
}

// ---- per-layer tables ----

// Burst-copy one table section (off is 8-aligned, checked by the reader) into the staging buffer.
static void hcim_fetch(const word_t *prog, uint32_t off, uint32_t nbytes) {
    const uint32_t words = (nbytes + 7) / 8, base = off >> 3;
    HCIM_LOOP_ENTER(HCIM_LP_FETCH);
    HCIM_LOOP_ITERS(HCIM_LP_FETCH, words);
    if (words) HCIM_BURST(0, (uint64_t)words * 8);
fetch:
    for (uint32_t k = 0; k < words; k++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 4096
#pragma HLS PIPELINE II = 1
        g_stage[k] = prog[base + k];
    }
}

// The layer's table sections (precision, bias, shift, res_shift, column map, skip index) in ONE burst
// when the span from the first to the end of the last fits the staging buffer (the compiler writes
// them one after the other), else one burst each: hcim_section gives a section's byte offset in g_stage.
struct hcim_stage_map {
    bool one;       // all sections staged by one burst
    uint32_t base;  // its first byte in the program image
};

static hcim_stage_map hcim_stage_tables(const word_t *prog, const hcim_layer *l) {
    const uint32_t off[6] = {l->off_prec, l->off_bias, l->off_shift, l->off_rshift, l->off_colmap, l->off_skip};
    const uint32_t len[6] = {l->f, 4 * l->f, l->f, l->f, 4 * l->ng * G_W, (l->ng * l->r + 7) / 8};
    uint32_t lo = off[0], hi = off[0] + len[0];
    for (uint32_t k = 1; k < 6; k++) {
        lo = off[k] < lo ? off[k] : lo;
        hi = off[k] + len[k] > hi ? off[k] + len[k] : hi;
    }
    hcim_stage_map m;
    m.base = lo & ~7u;
    m.one = hi - m.base <= 8u * HCIM_STAGE_WORDS;
    if (m.one) hcim_fetch(prog, m.base, hi - m.base);
    return m;
}

static uint32_t hcim_section(const word_t *prog, const hcim_stage_map &m, uint32_t off, uint32_t nbytes) {
    if (m.one) return off - m.base;  // 8-aligned sections: a whole number of words
    hcim_fetch(prog, off, nbytes);
    return 0;
}

// Per-filter requant parameters, the column controller words, the skip-index rows, and for a
// hybrid layer the level table and its per-(group, level) pair counts.
static void hcim_setup_layer(const word_t *prog, const hcim_layer *l, uint32_t bits_in, bool hybrid) {
    const hcim_stage_map m = hcim_stage_tables(prog, l);
    uint8_t prec[HCIM_MAX_FILTERS];
    const uint32_t o_prec = hcim_section(prog, m, l->off_prec, l->f);
load_filters:
    for (uint32_t f = 0; f < l->f; f++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = HCIM_MAX_FILTERS
#pragma HLS PIPELINE II = 1
        prec[f] = (uint8_t)hcim_rd8(g_stage, o_prec + f);
        g_fcol[f] = NO_COL;
    }
    const uint32_t o_bias = hcim_section(prog, m, l->off_bias, 4 * l->f);
    for (uint32_t f = 0; f < l->f; f++) g_bias[f] = (int32_t)hcim_rd32(g_stage, o_bias + 4 * f);
    const uint32_t o_shift = hcim_section(prog, m, l->off_shift, l->f);
    for (uint32_t f = 0; f < l->f; f++) g_shift[f] = (int8_t)hcim_rdi8(g_stage, o_shift + f);
    const uint32_t o_rshift = hcim_section(prog, m, l->off_rshift, l->f);
    for (uint32_t f = 0; f < l->f; f++) g_rshift[f] = (int8_t)hcim_rdi8(g_stage, o_rshift + f);
    HCIM_LOOP_ENTER(HCIM_LP_LOAD_FILTERS);
    HCIM_LOOP_ITERS(HCIM_LP_LOAD_FILTERS, l->f);
    // column map (u32 per column) -> controller words; owner column of each filter
    const uint32_t o_colmap = hcim_section(prog, m, l->off_colmap, 4 * l->ng * G_W);
    HCIM_LOOP_ENTER(HCIM_LP_LOAD_COLMAP);
    HCIM_LOOP_ITERS(HCIM_LP_LOAD_COLMAP, l->ng);
load_colmap:
    for (uint32_t g = 0, e = 0; g < l->ng; g++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = HCIM_MAX_GROUPS
#pragma HLS PIPELINE II = 1
        uint32_t n = 0, maxdep = 0;
        for (uint32_t c = 0; c < G_W; c++, e++) {
            const uint32_t cm = hcim_rd32(g_stage, o_colmap + 4 * e);
            hcim_colw w = {0, 0, 0, 0};
            g_owner[g][c] = (uint8_t)c;
            if ((cm >> HCIM_CM_USED_SHIFT) & 1u) {
                const uint32_t f = cm & 0xFFFFu, j = (cm >> HCIM_CM_PLANE_SHIFT) & 0xFFu, p = prec[f];
                w.used = 1;
                w.j = (uint8_t)j;
                w.neg = j + 1u == p;
                w.dep = (uint8_t)(p - 1u - j);  // reader: j < p
                maxdep = w.dep > maxdep ? w.dep : maxdep;
                n++;
                // the filter's columns share its first column of the group (owner)
                const uint32_t col0 = g_fcol[f];
                if (col0 != NO_COL && col0 / G_W == g) {
                    g_owner[g][c] = (uint8_t)(col0 % G_W);
                } else {
                    g_fcol[f] = (uint16_t)e;
                }
            }
            g_colw[g][c] = w;
        }
        g_ncols[g] = (uint8_t)n;
        g_maxdep[g] = (uint8_t)maxdep;
    }
    // skip index -> one bitmap row per group; stored-unit base of each group
    const uint32_t o_skip = hcim_section(prog, m, l->off_skip, (l->ng * l->r + 7) / 8);
    HCIM_LOOP_ITERS(HCIM_LP_LOAD_SKIP, l->ng * l->r);
    uint32_t units = 0;
    for (uint32_t g = 0, u = 8 * o_skip; g < l->ng; g++) {  // u: bit of the skip index in g_stage
#pragma HLS LOOP_TRIPCOUNT min = 1 max = HCIM_MAX_GROUPS
        for (uint32_t k = 0; k < SKIP_WORDS; k++) g_skipw[g][k] = 0;
        uint32_t n = 0;
        word_t row = 0;  // 64 bits of the group's bitmap row, written when full
        HCIM_LOOP_ENTER(HCIM_LP_LOAD_SKIP);
    load_skip:
        for (uint32_t b = 0; b < l->r; b++, u++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = HCIM_MAX_ROWBLOCKS
#pragma HLS PIPELINE II = 1
            const word_t bit = (g_stage[u >> 6] >> (u & 63u)) & 1u;
            row |= bit << (b & 63u);
            n += (uint32_t)bit;
            if ((b & 63u) == 63u || b + 1 == l->r) {
                g_skipw[g][b >> 6] = row;
                row = 0;
            }
        }
        g_unit_base[g] = units;
        g_npresent[g] = (uint16_t)n;
        units += n;
    }
    if (!hybrid) {  // one level (15, 15): every pair digital
        for (uint32_t g = 0; g < l->ng; g++) g_lvl_d[g] = g_lvl_e[g] = HCIM_DEPTH_ALL;
        return;
    }
    // level table; per (group, level) the digital and analog pairs of one unit (§9.1):
    // a column of depth dep has clamp(D - dep, 0, X) digital planes and clamp(E - dep, 0, X) kept ones
    hcim_read_hybrid(prog, l, &g_hy);
    HCIM_BURST(0, HCIM_HY_BYTES);
level_counts:
    for (uint32_t g = 0; g < l->ng; g++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = HCIM_MAX_GROUPS
        for (uint32_t v = 0; v < g_hy.n_levels; v++) {
            uint32_t dig = 0, kept = 0;
            for (uint32_t c = 0; c < G_W; c++) {
                if (!g_colw[g][c].used) continue;
                const int32_t dep = g_colw[g][c].dep;
                const int32_t d = (int32_t)g_hy.dd[v] - dep, e = (int32_t)g_hy.kd[v] - dep, x = (int32_t)bits_in;
                dig += (uint32_t)(d < 0 ? 0 : (d > x ? x : d));
                kept += (uint32_t)(e < 0 ? 0 : (e > x ? x : e));
            }
            g_hy_dig[g][v] = (uint16_t)dig;
            g_hy_ana[g][v] = (uint16_t)(kept - dig);
        }
    }
adc_table:
    for (uint32_t n = 0; n <= A_ROWS; n++) g_nhat[n] = (uint16_t)hcim_adc((int32_t)(n << HCIM_NOISE_FRAC_BITS));
}

#define ACT_MAX_BITS 32  // bits of a tensor (architecture.md §2): bit planes of one pixel

// Value of channel c of the pixel whose bit planes start at word pix (plane i at pix + i * cw).
acc_t hcim_act_value(const hcim_tensor &t, uint32_t pix, uint32_t c) {
    uint32_t v = 0, a = pix + (c >> 6);
    for (uint32_t i = 0; i < ACT_MAX_BITS && i < t.bits; i++, a += t.cw) v |= (uint32_t)((g_planes[a] >> (c & 63u)) & 1u) << i;
    if (t.sgn && t.bits < 32 && ((v >> (t.bits - 1)) & 1u)) v |= ~0u << t.bits;
    return (acc_t)v;
}

// Value y of channel c into the plane words pw (registers) of the pixel whose planes start at word
// pix; the words go to the activation buffer when the 64-channel word (or the pixel) is complete.
static inline void hcim_act_put(const hcim_tensor &t, uint32_t pix, uint32_t c, acc_t y, word_t pw[ACT_MAX_BITS]) {
    const bool flush = (c & 63u) == 63u || c + 1 == t.c;
    uint32_t a = pix + (c >> 6);
    for (uint32_t i = 0; i < ACT_MAX_BITS && i < t.bits; i++, a += t.cw) {
        pw[i] |= (word_t)(((uint32_t)y >> i) & 1u) << (c & 63u);
        if (flush) {
            g_planes[a] = pw[i];
            pw[i] = 0;
        }
    }
}

// Pack a tensor into its bit planes at word aoff of the activation buffer: for each pixel and bit
// plane i, ceil(C/64) words, bit c = bit i of channel c. Source: its NHWC int32 values in scratch
// (x), or (image) the program input's NCHW bytes staged in g_stage. False if an image pixel
// exceeds the tensor's bit width.
static bool hcim_pack_planes(const hcim_tensor &ti, const acc_t *x, bool image, uint32_t aoff) {
    if (!image) HCIM_BURST(0, (uint64_t)ti.size * 4);
    HCIM_LOOP_ENTER(HCIM_LP_PACK_PLANES);
    HCIM_LOOP_ITERS(HCIM_LP_PACK_PLANES, ti.size);
    // one input value per iteration, its bits shifted into one register word per plane; running
    // counters (no divide): c channel, base the pixel's first word, j the image byte (c * H * W + pixel)
    word_t ppw[ACT_MAX_BITS];
#pragma HLS ARRAY_PARTITION variable = ppw complete
    for (uint32_t i = 0; i < ACT_MAX_BITS; i++) ppw[i] = 0;
    const uint32_t maxv = (1u << ti.bits) - 1u, hw = ti.h * ti.w, pix_words = ti.bits * ti.cw;
    uint32_t c = 0, base = aoff, yx = 0, j = 0;
    bool ok = true;
pack_planes:
    for (uint32_t k = 0; k < ti.size; k++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 65536
#pragma HLS PIPELINE II = 1
        const uint32_t v = image ? (uint32_t)((g_stage[j >> 3] >> ((j & 7u) * 8u)) & 0xFFu) : (uint32_t)x[k];
        ok &= v <= maxv;
        hcim_act_put(ti, base, c, (acc_t)v, ppw);
        j += hw;
        if (++c == ti.c) {
            c = 0;
            base += pix_words;
            j = ++yx;
        }
    }
    return ok;
}

bool hcim_load_image_planes(const word_t *img, const hcim_tensor &t, const acc_t *s) {
    hcim_fetch(img, 0, t.size);
    return hcim_pack_planes(t, s, true, t.aoff);
}

// The schedule of one round: the present units of tiles round*n_macros ... (+ n_macros - 1),
// group-major; loads their weights into the macros and sets the round's events (g_r_*).
static uint32_t hcim_build_round(const word_t *prog, const hcim_layer *l, uint32_t round, uint32_t n_row_tiles,
                                 uint32_t n_tiles) {
    uint32_t nu = 0;
    g_r_absent = g_r_cols = g_r_bitops = g_r_rows = 0;
    bool active[HCIM_N_MACROS][HCIM_BLOCKS_PER_MACRO];
    for (uint32_t m = 0; m < HCIM_N_MACROS; m++) {
        g_r_blocks[m] = 0;
        for (uint32_t k = 0; k < HCIM_BLOCKS_PER_MACRO; k++) active[m][k] = false;
    }
    for (uint32_t b = 0; b < l->r; b++) g_r_mult[b] = 0;
    for (uint32_t g = 0; g < l->ng; g++) g_r_gunits[g] = 0;
    const uint32_t t0 = round * HCIM_N_MACROS, t1 = t0 + HCIM_N_MACROS < n_tiles ? t0 + HCIM_N_MACROS : n_tiles;
    if (t0 >= t1) return 0;
    // absent units of the round's tiles = their units - the present ones scheduled below
    for (uint32_t t = t0; t < t1; t++) {
        const uint32_t g0 = (t / n_row_tiles) * HCIM_GROUPS_PER_MACRO, b0 = (t % n_row_tiles) * HCIM_BLOCKS_PER_MACRO;
        const uint32_t ng = l->ng - g0 < HCIM_GROUPS_PER_MACRO ? l->ng - g0 : HCIM_GROUPS_PER_MACRO;
        const uint32_t nb = l->r - b0 < HCIM_BLOCKS_PER_MACRO ? l->r - b0 : HCIM_BLOCKS_PER_MACRO;
        g_r_absent += ng * nb;
    }
    // column tiles of the round, groups in order; per group its present blocks in the round's row tiles
    const uint32_t ct0 = t0 / n_row_tiles, ct1 = (t1 - 1) / n_row_tiles;
    for (uint32_t g = ct0 * HCIM_GROUPS_PER_MACRO; g < (ct1 + 1) * HCIM_GROUPS_PER_MACRO && g < l->ng; g++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 512
        const uint32_t ct = g / HCIM_GROUPS_PER_MACRO, gi = g % HCIM_GROUPS_PER_MACRO;
        uint32_t stored = g_unit_base[g], first = nu;
        HCIM_LOOP_ENTER(HCIM_LP_BUILD_SCHEDULE);
    build_schedule:
        for (uint32_t b = 0, rt = 0, bi = 0; b < l->r; b++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = HCIM_MAX_ROWBLOCKS
#pragma HLS PIPELINE II = 1
            HCIM_LOOP_ITER(HCIM_LP_BUILD_SCHEDULE);
            const uint32_t t = ct * n_row_tiles + rt;
            if ((g_skipw[g][b >> 6] >> (b & 63u)) & 1u) {
                if (t >= t0 && t < t1) {
                    const uint32_t m = t - t0, rows = l->k - b * A_ROWS < A_ROWS ? l->k - b * A_ROWS : A_ROWS;
                    hcim_unit &e = g_sched[nu++];
                    e.block = (uint16_t)b;
                    e.group = (uint16_t)g;
                    e.slot = (uint16_t)(gi * HCIM_BLOCKS_PER_MACRO + bi);
                    e.macro = (uint8_t)m;
                    e.last = 0;
                    e.macro_type = 0;
                    e.stored = stored;
                    active[m][bi] = true;
                    g_r_cols += g_ncols[g];
                    g_r_bitops += g_ncols[g] * rows;
                    g_r_absent--;
                }
                stored++;
            }
            if (++bi == HCIM_BLOCKS_PER_MACRO) {
                bi = 0;
                rt++;
            }
        }
        if (nu > first) {
            g_sched[nu - 1].last = 1;
            g_r_gunits[g] = (uint16_t)(nu - first);
        }
    }
    // activated row blocks per macro (word lines are shared by the tile's groups)
    for (uint32_t t = t0; t < t1; t++) {
        const uint32_t b0 = (t % n_row_tiles) * HCIM_BLOCKS_PER_MACRO, m = t - t0;
        for (uint32_t k = 0; k < HCIM_BLOCKS_PER_MACRO; k++) {
            if (!active[m][k]) continue;
            const uint32_t b = b0 + k, rows = l->k - b * A_ROWS < A_ROWS ? l->k - b * A_ROWS : A_ROWS;
            g_r_blocks[m]++;
            g_r_mult[b]++;
            g_r_rows += rows;
        }
    }
    // the round's weights into the macros: one burst per run of consecutive stored units
    const uint32_t wbase = l->off_weights / 8;
#ifdef HCIM_CYCLE_COUNT
    for (uint32_t u = 0; u < nu; u++) {
        if (u == 0 || g_sched[u - 1].stored + 1 != g_sched[u].stored) {
            uint32_t run = 1;
            while (u + run < nu && g_sched[u + run].stored == g_sched[u].stored + run) run++;
            HCIM_BURST(0, (uint64_t)run * G_W * 8);
        }
    }
#endif
    HCIM_LOOP_ENTER(HCIM_LP_LOAD_WEIGHTS);
    HCIM_LOOP_ITERS(HCIM_LP_LOAD_WEIGHTS, nu * G_W);
load_weights:
    for (uint32_t k = 0, u = 0, c = 0; k < nu * G_W; k++) {  // one weight word per iteration
#pragma HLS LOOP_TRIPCOUNT min = 8 max = 4096
#pragma HLS PIPELINE II = 1
        const hcim_unit &e = g_sched[u];
        g_macro[e.macro][e.slot * G_W + c] = prog[wbase + e.stored * G_W + c];
        if (++c == G_W) {
            c = 0;
            u++;
        }
    }
    return nu;
}

#if HCIM_HAS_TERN
// The ternary path's round `round` of a dual-path layer (architecture.md §10.3): ternary tiles
// round * tern_n_macros ... (+ tern_n_macros - 1), tile t = (u / S) * n_rt + b / B on ternary macro
// t mod tern_n_macros. Sets the round's events (g_t_*: per tile its row blocks, rows and refresh events
// over `pixels` output pixels), builds its schedule (filter-group-major: each group's blocks of the
// round consecutive, the last flagged) and loads its cells into the ternary macros (one burst per
// filter: its blocks of the round are consecutive words). Returns the schedule's entries.
static uint32_t hcim_build_tern_round(const word_t *prog, const hcim_layer *l, const hcim_dualpath &d, uint32_t round,
                                      uint32_t pixels) {
    const uint32_t f_t = d.f_t, r_t = d.n_rowblocks;
    for (uint32_t b = 0; b < r_t; b++) g_t_mult[b] = 0;
    for (uint32_t m = 0; m < T_M; m++) g_t_blocks[m] = 0;
    g_t_acts = g_t_cols = g_t_bitops = g_t_rows = 0;
    g_t_refresh = 0;
    const uint32_t n_rt = (r_t + T_B - 1) / T_B, n_tiles = (f_t + T_S - 1) / T_S * n_rt;
    const uint32_t t0 = round * T_M, t1 = t0 + T_M < n_tiles ? t0 + T_M : n_tiles;
    if (t0 >= t1) return 0;
    for (uint32_t t = t0; t < t1; t++) {  // per tile: its row blocks (its macro's cycles per pixel)
        const uint32_t b_lo = (t % n_rt) * T_B, b_hi = b_lo + T_B < r_t ? b_lo + T_B : r_t, nb = b_hi - b_lo;
        g_t_blocks[t - t0] = nb;
        g_t_acts += nb;
        // every stored row of the tile refreshed at each multiple of the period of its pixels x nb cycles (§10.4)
        g_t_refresh += (cnt_t)nb * T_ROWS * (((cnt_t)pixels * nb) / HCIM_TERN_REFRESH_CYCLES);
        for (uint32_t b = b_lo; b < b_hi; b++) {
            g_t_mult[b]++;
            g_t_rows += l->k - b * T_ROWS < T_ROWS ? l->k - b * T_ROWS : T_ROWS;
        }
    }
    uint32_t nt = 0;
    const uint32_t wbase = d.off_words / 8;
    for (uint32_t ft = t0 / n_rt; ft <= (t1 - 1) / n_rt; ft++) {  // the round's filter tiles
#pragma HLS LOOP_TRIPCOUNT min = 1 max = T_M
        const uint32_t rt_lo = (t0 > ft * n_rt ? t0 : ft * n_rt) - ft * n_rt;
        const uint32_t rt_hi = (t1 < (ft + 1) * n_rt ? t1 : (ft + 1) * n_rt) - ft * n_rt;
        const uint32_t b_lo = rt_lo * T_B, b_hi = rt_hi * T_B < r_t ? rt_hi * T_B : r_t, nb = b_hi - b_lo;
        const uint32_t u_lo = ft * T_S, u_hi = u_lo + T_S < f_t ? u_lo + T_S : f_t;
        for (uint32_t u0 = u_lo; u0 < u_hi; u0 += T_TG) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = T_S / T_TG
            const uint32_t nf = u_hi - u0 < T_TG ? u_hi - u0 : T_TG;
            HCIM_LOOP_ENTER(HCIM_LP_TERN_SCHEDULE);
            HCIM_LOOP_ITERS(HCIM_LP_TERN_SCHEDULE, nb);
        tern_schedule:
            for (uint32_t b = b_lo; b < b_hi; b++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = T_M * T_B
#pragma HLS PIPELINE II = 1
                const uint32_t rows = l->k - b * T_ROWS < T_ROWS ? l->k - b * T_ROWS : T_ROWS;
                hcim_tunit &e = g_tsched[nt++];
                e.block = (uint16_t)b;
                e.u0 = (uint16_t)u0;
                e.slot = (uint16_t)((u0 % T_S) / T_TG * T_B + b % T_B);
                e.macro = (uint8_t)(ft * n_rt + b / T_B - t0);
                e.nf = (uint8_t)nf;
                e.last = b + 1 == b_hi;
                g_t_cols += 2 * nf;            // positive and negative column of each filter
                g_t_bitops += 2 * nf * rows;   // 1-bit AND + count per cell of the real rows
            }
        }
        // cells of the filter tile's blocks in this round: filter u's words 2 (u R_t + b) + {0, 1} are
        // consecutive over b, so one burst per filter
        const uint32_t n = (u_hi - u_lo) * nb * 2;
#ifdef HCIM_CYCLE_COUNT
        for (uint32_t u = u_lo; u < u_hi; u++) HCIM_BURST(0, (uint64_t)nb * 2 * 8);
#endif
        HCIM_LOOP_ENTER(HCIM_LP_LOAD_TERN);
        HCIM_LOOP_ITERS(HCIM_LP_LOAD_TERN, n);
    load_tern:
        for (uint32_t k = 0, u = u_lo, b = b_lo, pn = 0; k < n; k++) {  // one cell word per iteration
#pragma HLS LOOP_TRIPCOUNT min = 2 max = 2 * T_S * T_B
#pragma HLS PIPELINE II = 1
            const uint32_t slot = (u % T_S) / T_TG * T_B + b % T_B, m = ft * n_rt + b / T_B - t0;
            g_tmacro[m][slot][u % T_TG][pn] = prog[wbase + 2 * (u * r_t + b) + pn];
            if (++pn == 2) {
                pn = 0;
                if (++b == b_hi) {
                    b = b_lo;
                    u++;
                }
            }
        }
    }
    return nt;
}

// Ternary row block b of the binary plane, held as 64-bit stream words.
static inline word_t hcim_tern_block(const word_t *zw, uint32_t b) {
    if (T_ROWS >= 64) return zw[b];
    const word_t mask = T_ROWS >= 64 ? ~(word_t)0 : ((((word_t)1) << (T_ROWS & 63)) - 1);
    return (zw[b / (64 / T_ROWS)] >> ((b % (64 / T_ROWS)) * T_ROWS)) & mask;
}

// Entry e of the ternary schedule for one output pixel: the column-pair results n+ - n- of its T_TG
// filters (each through an exact adder tree) into the register accumulators tacc; the group's last
// block flushes them into the ternary sums of buffer buf.
static inline void hcim_tern_step(const word_t *zw, uint32_t e_idx, int32_t tacc[T_TG], uint32_t buf) {
    const hcim_tunit e = g_tsched[e_idx];
    const word_t z = hcim_tern_block(zw, e.block);
    for (int c = 0; c < T_TG; c++) {
#pragma HLS UNROLL
        tacc[c] += (int32_t)hcim_popcount(z & g_tmacro[e.macro][e.slot][c][0]) -
                   (int32_t)hcim_popcount(z & g_tmacro[e.macro][e.slot][c][1]);
    }
    if (e.last) {
        for (int c = 0; c < T_TG; c++) {
#pragma HLS UNROLL
            if ((uint32_t)c < e.nf) g_tacc[buf][e.u0 + c] = (uint32_t)tacc[c];
            tacc[c] = 0;
        }
    }
}

// Ternary sums of the F_t filters = 0 at the start of a round (filters without a tile in it add 0).
static void hcim_clear_tacc(uint32_t f_t) {
    HCIM_LOOP_ENTER(HCIM_LP_CLEAR_TACC);
    HCIM_LOOP_ITERS(HCIM_LP_CLEAR_TACC, (f_t + T_TG - 1) / T_TG);
clear_tacc:
    for (uint32_t u0 = 0; u0 < f_t; u0 += T_TG) {  // one filter group's sums per cycle
#pragma HLS LOOP_TRIPCOUNT min = 1 max = HCIM_MAX_FILTERS / T_TG
#pragma HLS PIPELINE II = 1
        for (uint32_t c = 0; c < T_TG; c++) {
            for (uint32_t j = 0; j < 3; j++) {
                if (u0 + c < HCIM_MAX_FILTERS) g_tacc[j][u0 + c] = 0;
            }
        }
    }
}
#endif

// One burst of n int32 words from DDR (scratch) into an on-chip buffer, one word per cycle.
static void hcim_burst_in(const acc_t *src, uint32_t n, acc_t *dst) {
    HCIM_LOOP_ENTER(HCIM_LP_BURST_IN);
    HCIM_LOOP_ITERS(HCIM_LP_BURST_IN, n);
    HCIM_BURST(0, (uint64_t)n * 4);
burst_in:
    for (uint32_t k = 0; k < n; k++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 2048
#pragma HLS PIPELINE II = 1
        dst[k] = src[k];
    }
}

// One burst of n int32 words from an on-chip buffer to DDR (scratch), one word per cycle.
static void hcim_burst_out(const acc_t *src, uint32_t n, acc_t *dst) {
    HCIM_LOOP_ENTER(HCIM_LP_BURST_OUT);
    HCIM_LOOP_ITERS(HCIM_LP_BURST_OUT, n);
    HCIM_BURST(1, (uint64_t)n * 4);
burst_out:
    for (uint32_t k = 0; k < n; k++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 2048
#pragma HLS PIPELINE II = 1
        dst[k] = src[k];
    }
}

// 1 bits on the word lines of one 64-bit window stream word (all planes), each row block's count
// times its activations in the round's tiles (g_r_mult: 0 past the layer's row blocks and in a
// round without units): the input_ones counter's share of the word.
static inline cnt_t hcim_word_ones(const word_t w[HCIM_MAX_IN_BITS], uint32_t bits, uint32_t word, uint32_t r) {
    const word_t mask = A_ROWS >= 64 ? ~(word_t)0 : ((((word_t)1) << (A_ROWS & 63)) - 1);
    cnt_t n = 0;
    for (uint32_t k = 0; k < 64 / A_ROWS; k++) {  // the word's row blocks
        const uint32_t b = word * (64 / A_ROWS) + k;
        uint32_t n1 = 0;
        for (uint32_t i = 0; i < HCIM_MAX_IN_BITS && i < bits; i++) n1 += hcim_popcount((w[i] >> (k * A_ROWS)) & mask);
        n += b < r ? (cnt_t)g_r_mult[b] * n1 : 0;
    }
    return n;
}

// The window's streaming packer for one pixel: one (window position, 64-channel word) per step, all
// input planes at once, appended to a 128-bit register per plane (hi, lo: the window's rows in
// order); each full 64-bit stream word is written out (at most one per step). The plane-buffer
// address of the current position is kept by additions (it may point outside the input: padding).
struct hcim_win {
    word_t lo[HCIM_XW_PLANES], hi[HCIM_XW_PLANES];
    uint32_t fill, wout, wi;  // valid bits in (hi, lo); stream words written; channel word of the position
    int32_t iy, ix, iy0, ix0, addr, row_addr, pix_words, row_words;
};

// Start the packer at window origin (iy0, ix0), whose planes start at word org (products outside).
static inline void hcim_win_start(int32_t iy0, int32_t ix0, int32_t org, int32_t pix_words, int32_t row_words,
                                  hcim_win &ws) {
    for (uint32_t i = 0; i < HCIM_XW_PLANES; i++) ws.lo[i] = ws.hi[i] = 0;
    ws.fill = ws.wout = ws.wi = 0;
    ws.iy = ws.iy0 = iy0;
    ws.ix = ws.ix0 = ix0;
    ws.addr = ws.row_addr = org;
    ws.pix_words = pix_words;
    ws.row_words = row_words;
}

#if HCIM_HAS_TERN
// z = [x >= theta] of the 64 channels of one input word, bit-sliced over its planes v (MSB first: a
// lane stays "equal so far" while its bits match theta's, and becomes "greater" at a 1 where theta
// has a 0). Lanes past the channels and padding (all planes 0) give 0: theta >= 1.
static inline word_t hcim_ge_threshold(const word_t v[HCIM_MAX_IN_BITS], uint32_t bits, uint32_t theta) {
    word_t gt = 0, eq = ~(word_t)0;
    for (int k = 0; k < HCIM_MAX_IN_BITS; k++) {
        const int i = HCIM_MAX_IN_BITS - 1 - k;  // plane i, most significant first
        if ((uint32_t)i >= bits) continue;      // theta < 2^bits: its bits there are 0, as x's are
        if ((theta >> i) & 1u) {
            eq &= v[i];
        } else {
            gt |= eq & v[i];
            eq &= ~v[i];
        }
    }
    return gt | eq;
}

// 1 bits of z on the ternary word lines in one 64-bit stream word: each ternary row block's count
// times its activations in the round's ternary tiles (g_t_mult): the tern_input_ones counter's share.
static inline cnt_t hcim_tern_word_ones(word_t z, uint32_t word) {
    const word_t mask = T_ROWS >= 64 ? ~(word_t)0 : ((((word_t)1) << (T_ROWS & 63)) - 1);
    cnt_t n = 0;
    for (uint32_t k = 0; k < 64 / T_ROWS; k++) {
        const uint32_t b = word * (64 / T_ROWS) + k;
        n += b < g_du_rt ? (cnt_t)g_t_mult[b] * hcim_popcount((z >> (k * T_ROWS)) & mask) : 0;
    }
    return n;
}
#endif

// One step of the packer into xw; the 1 bits of a written word go to *ones (hcim_word_ones), those of
// the binary plane z (a dual-path layer) to *tones (hcim_tern_word_ones).
static inline void hcim_win_step(const hcim_tensor &ti, const hcim_layer *l, hcim_win &ws,
                                 word_t xw[HCIM_XW_PLANES][HCIM_XW_WORDS], cnt_t *ones, cnt_t *tones) {
    const bool inside = ws.iy >= 0 && ws.ix >= 0 && ws.iy < (int32_t)ti.h && ws.ix < (int32_t)ti.w;  // else padding
    const uint32_t nb = ws.wi + 1 == ti.cw ? ti.c - 64 * ws.wi : 64;  // channels in this word
    const bool emit = ws.fill + nb >= 64;
    word_t xw_emit[HCIM_MAX_IN_BITS];  // the stream word written this step (its 1 bits are counted)
    word_t vin[HCIM_MAX_IN_BITS];      // this step's input word, per plane
    uint32_t a = (uint32_t)(ws.addr + (int32_t)ws.wi);
    for (uint32_t i = 0; i < HCIM_MAX_IN_BITS; i++, a += ti.cw) {
        xw_emit[i] = 0;
        vin[i] = 0;
        if (i >= ti.bits) continue;
        const word_t v = inside ? g_planes[a] : 0;  // bits past the channels are 0
        vin[i] = v;
        ws.lo[i] |= v << ws.fill;
        ws.hi[i] |= ws.fill ? v >> (64u - ws.fill) : 0;
        if (emit) {
            xw[i][ws.wout] = ws.lo[i];
            xw_emit[i] = ws.lo[i];
            ws.lo[i] = ws.hi[i];
            ws.hi[i] = 0;
        }
    }
    if (emit) *ones += hcim_word_ones(xw_emit, ti.bits, ws.wout, l->r);
#if HCIM_HAS_TERN
    if (g_du_theta) {  // the comparator: the binary plane z of this word, streamed like the input planes
        const word_t z = hcim_ge_threshold(vin, ti.bits, g_du_theta);
        ws.lo[Z_PLANE] |= z << ws.fill;
        ws.hi[Z_PLANE] |= ws.fill ? z >> (64u - ws.fill) : 0;
        if (emit) {
            xw[Z_PLANE][ws.wout] = ws.lo[Z_PLANE];
            *tones += hcim_tern_word_ones(ws.lo[Z_PLANE], ws.wout);
            ws.lo[Z_PLANE] = ws.hi[Z_PLANE];
            ws.hi[Z_PLANE] = 0;
        }
    }
#else
    (void)vin, (void)tones;
#endif
    ws.fill = emit ? ws.fill + nb - 64 : ws.fill + nb;
    ws.wout += emit;
    if (++ws.wi == ti.cw) {
        ws.wi = 0;
        ws.addr += ws.pix_words;
        if (++ws.ix == ws.ix0 + (int32_t)l->kw) {
            ws.ix = ws.ix0;
            ws.iy++;
            ws.row_addr += ws.row_words;
            ws.addr = ws.row_addr;
        }
    }
}

// After the last step: the partial last stream word.
static inline void hcim_win_finish(const hcim_tensor &ti, const hcim_layer *l, hcim_win &ws,
                                   word_t xw[HCIM_XW_PLANES][HCIM_XW_WORDS], cnt_t *ones, cnt_t *tones) {
    if (ws.fill) {
        for (uint32_t i = 0; i < HCIM_MAX_IN_BITS && i < ti.bits; i++) xw[i][ws.wout] = ws.lo[i];
        *ones += hcim_word_ones(ws.lo, ti.bits, ws.wout, l->r);
#if HCIM_HAS_TERN
        if (g_du_theta) {
            xw[Z_PLANE][ws.wout] = ws.lo[Z_PLANE];
            *tones += hcim_tern_word_ones(ws.lo[Z_PLANE], ws.wout);
        }
#endif
    }
    (void)tones;
}

// Zero-padded input window of output pixel (oy, ox) as row-block words xw[i][b], one per input bit
// plane, from the input's bit planes at word aoff of the activation buffer; adds the window's 1 bits
// on the word lines, times their row blocks' activations in the round, to *ones (the input_ones
// counter, counted as the words stream by).
static void hcim_pack_window(const hcim_tensor &ti, const hcim_layer *l, uint32_t aoff, uint32_t oy, uint32_t ox,
                             word_t xw[HCIM_XW_PLANES][HCIM_XW_WORDS], cnt_t *ones, cnt_t *tones) {
    const uint32_t cw = ti.cw, nsw = (l->k + 63) / 64;
#ifdef HCIM_HW_DATAPATH
    const uint32_t clear_bits = HCIM_MAX_IN_BITS, clear_words = l->r > nsw ? l->r : nsw;
#else
    const uint32_t clear_bits = ti.bits, clear_words = nsw;
#endif
clear_window:
    for (uint32_t w = 0; w <= clear_words; w++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = HCIM_XW_WORDS
        for (uint32_t i = 0; i < HCIM_MAX_IN_BITS && i < clear_bits; i++) xw[i][w] = 0;
#if HCIM_HAS_TERN
        xw[Z_PLANE][w] = 0;
#endif
    }
    const int32_t iy0 = (int32_t)(oy * l->stride) - (int32_t)l->pad, ix0 = (int32_t)(ox * l->stride) - (int32_t)l->pad;
    const uint32_t n = l->kh * l->kw * cw;
    HCIM_LOOP_ENTER(HCIM_LP_WINDOW);
    HCIM_LOOP_ITERS(HCIM_LP_WINDOW, n);
    const int32_t pix_words = (int32_t)(ti.bits * cw), row_words = (int32_t)ti.w * pix_words;
    hcim_win ws;
#pragma HLS ARRAY_PARTITION variable = ws.lo complete
#pragma HLS ARRAY_PARTITION variable = ws.hi complete
    hcim_win_start(iy0, ix0, (int32_t)aoff + iy0 * row_words + ix0 * pix_words, pix_words, row_words, ws);
window:
    for (uint32_t k = 0; k < n; k++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 144
#pragma HLS PIPELINE II = 1
        hcim_win_step(ti, l, ws, xw, ones, tones);
    }
    hcim_win_finish(ti, l, ws, xw, ones, tones);
#if HCIM_ROWS_ACTIVE < 64
    // split the 64-bit stream words into rows_active-bit row-block words (in place, high to low)
    const uint32_t per = 64 / A_ROWS;
    const word_t mask = (((word_t)1) << A_ROWS) - 1;
    for (uint32_t i = 0; i < HCIM_MAX_IN_BITS && i < ti.bits; i++) {
        for (int32_t b = (int32_t)l->r - 1; b >= 0; b--) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = HCIM_MAX_ROWBLOCKS
            xw[i][b] = (xw[i][(uint32_t)b / per] >> (((uint32_t)b % per) * A_ROWS)) & mask;
        }
    }
#endif
}

// Saliency of group g: the sum of the per-block saliencies over its skip-index row (a masked adder
// tree over the row in hardware; csim walks the set bits).
static inline uint32_t hcim_group_saliency(uint32_t g, const uint32_t sal[HCIM_MAX_ROWBLOCKS]) {
    uint32_t s = 0;
#ifdef HCIM_HW_DATAPATH
    for (uint32_t b = 0; b < HCIM_MAX_ROWBLOCKS; b++) {  // bits past n_rowblocks are 0
#pragma HLS UNROLL
        if ((g_skipw[g][b >> 6] >> (b & 63u)) & 1u) s += sal[b];
    }
#else
    for (uint32_t k = 0; k < SKIP_WORDS; k++) {
        for (word_t bits = g_skipw[g][k]; bits; bits &= bits - 1) {
#pragma HLS LOOP_TRIPCOUNT min = 0 max = 64
            s += sal[k * 64 + (uint32_t)__builtin_ctzll(bits)];
        }
    }
#endif
    return s;
}

// The precision controller of a hybrid layer for one output pixel (§9.4): the saliency of every
// group with a present unit, its level and (D, E); counts the decisions (histogram, once per
// image) and this round's digital / analog / skipped column reads.
static void hcim_levels(const hcim_layer *l, const word_t xw[HCIM_XW_PLANES][HCIM_XW_WORDS], uint32_t bits_in,
                        bool count_decisions, cnt_t hist[HCIM_MAX_LEVELS], cnt_t *dig, cnt_t *ana, cnt_t *skip) {
    uint32_t sal[HCIM_MAX_ROWBLOCKS];
    const uint32_t base = bits_in - g_hy.sal_planes;
    HCIM_LOOP_ENTER(HCIM_LP_SALIENCY);
    HCIM_LOOP_ITERS(HCIM_LP_SALIENCY, l->r);
saliency:
    for (uint32_t b = 0; b < l->r; b++) {  // h popcounts of A bits per row block
#pragma HLS LOOP_TRIPCOUNT min = 1 max = HCIM_MAX_ROWBLOCKS
#pragma HLS PIPELINE II = 1
        uint32_t s = 0;
        for (uint32_t k = 0; k < HCIM_MAX_IN_BITS && k < g_hy.sal_planes; k++) s += hcim_popcount(xw[base + k][b]) << k;
        sal[b] = s;
    }
    HCIM_LOOP_ENTER(HCIM_LP_LEVELS);
    HCIM_LOOP_ITERS(HCIM_LP_LEVELS, l->ng);
levels:
    for (uint32_t g = 0; g < l->ng; g++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = HCIM_MAX_GROUPS
#pragma HLS PIPELINE II = 1
        if (!g_npresent[g]) continue;  // a group with no present unit takes no decision
        const uint32_t s = hcim_group_saliency(g, sal);
        uint32_t v = 0;
        for (uint32_t t = 0; t < HCIM_MAX_LEVELS - 1 && t + 1 < g_hy.n_levels; t++) v += g_hy.thresholds[t] <= s;
        g_lvl_d[g] = g_hy.dd[v];
        g_lvl_e[g] = g_hy.kd[v];
        if (count_decisions) hist[v]++;
        *dig += g_r_dig[g][v];
        *ana += g_r_ana[g][v];
        *skip += g_r_skp[g][v];
    }
}

// Column results and shift-add of every scheduled unit for one output pixel: one iteration per
// unit, all G columns x BITS input planes; per pair (i, j) the path of the group's level (D, E):
// depth d = dep_c + X - 1 - i digital if d < D, analog if D <= d < E, skipped otherwise. HYB = false
// is the digital-only instance (every d < 15 = D) the csim uses for mode-0 layers; the synthesized
// datapath is the general one.
// Noisy hybrid layers, per output pixel: the noise of every analog pair the units loop will read,
// one Philox4x32-10 evaluation per iteration (one noise unit; a noisy layer runs at one analog read
// per cycle, the price of an SNR study), in schedule order.
static void hcim_make_noise(uint32_t n_units, uint32_t bits_in, const hcim_ctx &ctx, uint32_t pixel) {
    const uint32_t n = n_units * G_W * bits_in;
    HCIM_LOOP_ENTER(HCIM_LP_NOISE);
    HCIM_LOOP_ITERS(HCIM_LP_NOISE, n);
noise:
    for (uint32_t k = 0, u = 0, c = 0, i = 0; k < n; k++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 32768
#pragma HLS PIPELINE II = 1
        const hcim_unit &e = g_sched[u];
        const hcim_colw cw = g_colw[e.group][c];
        const int32_t d = (int32_t)cw.dep + (int32_t)bits_in - 1 - (int32_t)i;
        if (cw.used && d >= (int32_t)g_lvl_d[e.group] && d < (int32_t)g_lvl_e[e.group])  // analog pairs only
            g_noise[u][c][i] = hcim_noise(ctx, pixel, e.group * G_W + c, e.block, i, cw.j);
        if (++i == bits_in) {
            i = 0;
            if (++c == G_W) {
                c = 0;
                u++;
            }
        }
    }
}

// One scheduled unit (entry uh) for one output pixel on P plane lanes: per column n =
// popcount(x_i & w_c), routed per pair (i, j) by the group's level through the adder tree (n), the
// ADC (code << s, with the optional Philox noise) or nowhere, shift-added into the column
// accumulators colacc (registers); the group's last unit flushes them, summed per filter, into
// column buffer buf (both copies). xs: the unit's row block, one word per input plane.
template <int P, bool HYB>
static inline void hcim_unit_run(uint32_t uh, const word_t xs[P], uint32_t bits_in, uint32_t colacc[G_W], uint32_t buf) {
    const hcim_unit e = g_sched[uh];
    const uint32_t g = e.group;
    const word_t *w = &g_macro[e.macro][e.slot * G_W];
    const int32_t dlev = HYB ? (int32_t)g_lvl_d[g] : HCIM_DEPTH_ALL;
    const int32_t elev = HYB ? (int32_t)g_lvl_e[g] : HCIM_DEPTH_ALL;
    for (int c = 0; c < G_W; c++) {
#pragma HLS UNROLL
        const hcim_colw cw = g_colw[g][c];
        if (!cw.used) continue;
        const word_t wc = w[c];
        uint32_t s = 0;
        for (int i = 0; i < P; i++) {
#pragma HLS UNROLL
            const uint32_t n = hcim_popcount(xs[i] & wc);
            if (!HYB) {
                s += n << i;
                continue;
            }
            const int32_t d = (int32_t)cw.dep + (int32_t)bits_in - 1 - i;
            uint32_t v;
            if (i >= (int)bits_in) {
                v = 0;  // HW instance: planes >= bits_in do not exist
            } else if (d < dlev) {
                v = n;  // digital: the adder tree's exact count
            } else if (d < elev) {
                v = g_hy.noise_pairs ? hcim_adc((int32_t)(n << HCIM_NOISE_FRAC_BITS) +
                                                (int32_t)g_noise[uh][c][i] * (1 << g_hy.noise_shift))
                                     : g_nhat[n];
            } else {
                v = 0;  // skipped
            }
            s += v << i;
        }
        const uint32_t sv = s << cw.j;
        colacc[c] += cw.neg ? (0u - sv) : sv;
    }
    if (e.last) {  // group change: flush the columns into the column buffer (sum per filter)
        uint32_t fsum[G_W];
#pragma HLS ARRAY_PARTITION variable = fsum complete
        for (int c = 0; c < G_W; c++) fsum[c] = 0;
        for (int c = 0; c < G_W; c++) fsum[g_owner[g][c]] += colacc[c];
        for (int c = 0; c < G_W; c++) {
            g_colbuf[buf][g * G_W + c] = fsum[c];
            g_colbuf2[buf][g * G_W + c] = fsum[c];
            colacc[c] = 0;
        }
    }
}

// Two units a cycle when the input has at most half the plane lanes (bits_in <= HCIM_MAX_IN_BITS / 2)
// and the layer draws no noise (a noisy layer runs at the noise unit's pace): the second unit takes
// the plane lanes the first leaves free, so the synthesized datapath has HCIM_MAX_IN_BITS plane lanes
// for the first unit of an iteration and HCIM_MAX_IN_BITS / 2 for the second.
#define HCIM_UNIT_PLANES (HCIM_MAX_IN_BITS + HCIM_MAX_IN_BITS / 2)  // popcount lanes per column
static inline bool hcim_dual(uint32_t bits_in, bool hyb) {
    return bits_in <= HCIM_MAX_IN_BITS / 2 && !(hyb && g_hy.noise_pairs);
}

// Row block b of a window held as 64-bit stream words (STREAMED: the pixel stream's buffers) or
// already split into row-block words (hcim_pack_window).
template <bool STREAMED>
static inline word_t hcim_rowblock(const word_t *x, uint32_t b) {
    if (!STREAMED || A_ROWS >= 64) return x[b];
    const word_t mask = A_ROWS >= 64 ? ~(word_t)0 : ((((word_t)1) << (A_ROWS & 63)) - 1);
    return (x[b / (64 / A_ROWS)] >> ((b % (64 / A_ROWS)) * A_ROWS)) & mask;
}

// Iteration u of a units pipeline: unit u, and (dual) unit u + 1, on the row blocks of window xw.
template <int BITS, bool HYB, bool STREAMED>
static inline void hcim_units_step(const word_t xw[HCIM_XW_PLANES][HCIM_XW_WORDS], uint32_t u, uint32_t n_units,
                                   bool dual, uint32_t bits_in, uint32_t colacc[G_W], uint32_t buf) {
    constexpr int BITS_B = BITS <= HCIM_MAX_IN_BITS / 2 ? BITS : HCIM_MAX_IN_BITS / 2;  // second unit's planes
    word_t xa[BITS], xb[BITS_B];
    const uint32_t ba = g_sched[u].block, bb = g_sched[u + 1 < n_units ? u + 1 : u].block;
    for (int i = 0; i < BITS; i++) xa[i] = hcim_rowblock<STREAMED>(xw[i], ba);
    for (int i = 0; i < BITS_B; i++) xb[i] = hcim_rowblock<STREAMED>(xw[i], bb);
    hcim_unit_run<BITS, HYB>(u, xa, bits_in, colacc, buf);
    if (dual && u + 1 < n_units) hcim_unit_run<BITS_B, HYB>(u + 1, xb, bits_in, colacc, buf);
}

// The units of one output pixel: iteration k runs SRAM unit k (and, paired, k + 1) and, in a dual-path
// layer, ternary entry k beside it (the two macro types in parallel): max(unit iterations, n_tern) iterations.
template <int BITS, bool HYB>
static void hcim_units(const word_t xw[HCIM_XW_PLANES][HCIM_XW_WORDS], uint32_t n_units, uint32_t bits_in,
                       bool dual, uint32_t n_tern) {
    uint32_t colacc[G_W];  // per-column accumulators (registers)
#pragma HLS ARRAY_PARTITION variable = colacc complete
#pragma HLS ARRAY_PARTITION variable = g_noise dim = 2 complete
#pragma HLS ARRAY_PARTITION variable = g_noise dim = 3 complete
#pragma HLS BIND_STORAGE variable = g_noise type = ram_2p impl = lutram
    for (int c = 0; c < G_W; c++) colacc[c] = 0;
#if HCIM_HAS_TERN
    int32_t tacc[T_TG];  // the ternary entries' accumulators (registers)
#pragma HLS ARRAY_PARTITION variable = tacc complete
    for (int c = 0; c < T_TG; c++) tacc[c] = 0;
#endif
    const uint32_t step = dual ? 2 : 1, U = (n_units + step - 1) / step, n = U > n_tern ? U : n_tern;
    HCIM_LOOP_ENTER(HCIM_LP_UNITS);
    HCIM_LOOP_ITERS(HCIM_LP_UNITS, n);
units:
    for (uint32_t k = 0, u = 0; k < n; k++, u += step) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 512
#pragma HLS PIPELINE II = 1
        if (k < U) hcim_units_step<BITS, HYB, false>(xw, u, n_units, dual, bits_in, colacc, 0);
#if HCIM_HAS_TERN
        if (k < n_tern) hcim_tern_step(xw[Z_PLANE], k, tacc, 0);
#endif
    }
}

template <bool HYB>
static void hcim_units_any(const word_t xw[HCIM_XW_PLANES][HCIM_XW_WORDS], uint32_t n_units, uint32_t bits_in,
                           uint32_t n_tern) {
    const bool dual = hcim_dual(bits_in, HYB);
#ifdef HCIM_HW_DATAPATH
    hcim_units<HCIM_MAX_IN_BITS, true>(xw, n_units, bits_in, dual, n_tern);  // planes >= bits_in are zero
#else
    switch (bits_in) {  // csim: one unrolled instance per input width
        case 1: hcim_units<1, HYB>(xw, n_units, bits_in, dual, n_tern); break;
        case 2: hcim_units<2, HYB>(xw, n_units, bits_in, dual, n_tern); break;
        case 3: hcim_units<3, HYB>(xw, n_units, bits_in, dual, n_tern); break;
        case 4: hcim_units<4, HYB>(xw, n_units, bits_in, dual, n_tern); break;
        case 5: hcim_units<5, HYB>(xw, n_units, bits_in, dual, n_tern); break;
        case 6: hcim_units<6, HYB>(xw, n_units, bits_in, dual, n_tern); break;
        case 7: hcim_units<7, HYB>(xw, n_units, bits_in, dual, n_tern); break;
        default: hcim_units<8, HYB>(xw, n_units, bits_in, dual, n_tern); break;
    }
#endif
}

// Requant of one layer and round: y = clamp(rshift_rne(acc + bias + (res << res_shift), shift), lo, hi)
// in the last round, the partial sum acc otherwise.
struct hcim_rq {
    const hcim_layer *l;
    const hcim_tensor *to, *tr;  // output, residual (the output if none)
    bool first, last, has_res, onchip, to_act;
    uint32_t rd, wr;  // partial-sum buffers read (rounds after the first) and written (all but the last)
    uint32_t f0;      // first ternary filter (F - F_t; F: none): its sum comes from the ternary path
};

// One requant iteration: filters f0 .. f0 + RQ_LANES - 1 of one pixel, their column sums from column
// buffer buf; q: the pixel's first word in the DDR chunk buffers; r_pix, o_pix: the pixel's residual
// and output planes in the activation buffer (on-chip mode), opw: the output's plane words.
static inline void hcim_requant_step(const hcim_rq &rc, uint32_t f0, uint32_t buf, uint32_t q, uint32_t r_pix,
                                     uint32_t o_pix, word_t opw[ACT_MAX_BITS]) {
    const hcim_layer *l = rc.l;
    for (uint32_t k = 0; k < RQ_LANES; k++) {  // lane k: filter f0 + k
        const uint32_t f = f0 + k;
        if (f >= l->f) continue;
        const uint32_t col = g_fcol[f];
        // lanes 0, 1 read the column buffer's first copy, lanes 2, 3 its second
        uint32_t cs = col == NO_COL ? 0u : (k < RQ_LANES / 2 ? g_colbuf[buf][col] : g_colbuf2[buf][col]);
#if HCIM_HAS_TERN
        if (f >= rc.f0) cs = g_tacc[buf][f - rc.f0];  // a ternary filter: no SRAM column (NO_COL)
#endif
        const uint32_t acc = (rc.first ? 0u : (uint32_t)g_psum[rc.rd][q + f]) + cs;
        if (!rc.last) {
            g_psum[rc.wr][q + f] = (acc_t)acc;
            continue;
        }
        wide_t v = (wide_t)(acc_t)acc + g_bias[f];
        if (rc.has_res) {
            const acc_t r = rc.onchip ? hcim_act_value(*rc.tr, r_pix, f) : g_rbuf[q + f];
            v += (wide_t)((uint64_t)(wide_t)r << (uint32_t)g_rshift[f]);
        }
        const acc_t y = hcim_clamp(hcim_rshift_rne(v, g_shift[f]), l->lo, l->hi);
        if (rc.to_act) {
            hcim_act_put(*rc.to, o_pix, f, y, opw);
        } else {
            g_psum[rc.wr][q + f] = y;
        }
    }
}

// The pixel stream: a round of a digital layer in on-chip mode (its partial sums, if it has several
// rounds, on chip) as ONE pipeline over its pixels, in
// slots of L iterations, L = max(window steps, unit iterations, requant iterations, STREAM_MIN_SLOT).
// In slot s the window of pixel s is assembled into window buffer s % 3, the units of pixel s - 2
// run on buffer (s - 2) % 3 into column buffer (s - 2) % 3, and pixel s - 4 is requantized from
// column buffer (s - 4) % 3 into the activation buffer. Every buffer is read a whole slot (>= the
// units pipeline's depth) after its last write was issued, so no read waits on a write in flight.
// The same window, unit and requant steps as the per-pixel loops.
#define STREAM_MIN_SLOT 8
#define STREAM_LAG 4  // slots from a pixel's window to its requant
template <int BITS, bool HYB>
static void hcim_pixel_stream(const hcim_tensor &ti, const hcim_layer *l, const hcim_rq &rc, uint32_t in_base,
                              uint32_t n_units, uint32_t n_tern, uint32_t pixels,
                              word_t xw[3][HCIM_XW_PLANES][HCIM_XW_WORDS], cnt_t *ones, cnt_t *tones) {
    const hcim_tensor &to = *rc.to, &tr = *rc.tr;
    const uint32_t W = l->kh * l->kw * ti.cw;
    const bool dual = hcim_dual(ti.bits, false);
    const uint32_t step = dual ? 2 : 1, U = (n_units + step - 1) / step, R = (l->f + RQ_LANES - 1) / RQ_LANES;
    uint32_t L = W > U ? W : U;
    L = L > R ? L : R;
    L = L > n_tern ? L : n_tern;  // the ternary entries run beside the SRAM units (the second macro type)
    L = L > STREAM_MIN_SLOT ? L : STREAM_MIN_SLOT;
    const uint32_t n = (pixels + STREAM_LAG) * L;
    const int32_t pix_words = (int32_t)(ti.bits * ti.cw), row_words = (int32_t)ti.w * pix_words;
    const int32_t pad = (int32_t)l->pad, stride = (int32_t)l->stride;
    const int32_t dx = stride * pix_words, dy = stride * row_words;  // window origin steps (outside the loop)
    const uint32_t r_words = tr.bits * tr.cw, o_words = to.bits * to.cw;
    int32_t iy0 = -pad, ix0 = -pad, org_row = (int32_t)in_base - pad * row_words - pad * pix_words, org = org_row;
    uint32_t ox = 0, r_pix = tr.aoff, o_pix = to.aoff, q = 0;  // requant pixel: planes, partial sums
    hcim_win ws;
#pragma HLS ARRAY_PARTITION variable = ws.lo complete
#pragma HLS ARRAY_PARTITION variable = ws.hi complete
    uint32_t colacc[G_W];
#pragma HLS ARRAY_PARTITION variable = colacc complete
    for (int c = 0; c < G_W; c++) colacc[c] = 0;
#if HCIM_HAS_TERN
    int32_t tacc[T_TG];  // the ternary entries' accumulators (registers)
#pragma HLS ARRAY_PARTITION variable = tacc complete
    for (int c = 0; c < T_TG; c++) tacc[c] = 0;
#else
    (void)n_tern, (void)tones;
#endif
    word_t opw[ACT_MAX_BITS];
#pragma HLS ARRAY_PARTITION variable = opw complete
    for (uint32_t i = 0; i < ACT_MAX_BITS; i++) opw[i] = 0;
    HCIM_LOOP_ENTER(HCIM_LP_PIXEL_STREAM);
    HCIM_LOOP_ITERS(HCIM_LP_PIXEL_STREAM, n);
pixel_stream:
    for (uint32_t t = 0, sl = 0, k = 0, u = 0, bw = 0, bu = 1, br = 2; t < n; t++) {  // bw, bu, br: sl, sl - 2, sl - 4 mod 3
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 65536
#pragma HLS PIPELINE II = 1
        if (sl < pixels && k < W) {  // window of pixel sl
            if (k == 0) hcim_win_start(iy0, ix0, org, pix_words, row_words, ws);
            hcim_win_step(ti, l, ws, xw[bw], ones, tones);
            if (k + 1 == W) hcim_win_finish(ti, l, ws, xw[bw], ones, tones);
        }
        if (sl >= 2 && sl < pixels + 2 && k < U)  // units of pixel sl - 2
            hcim_units_step<BITS, HYB, true>(xw[bu], u, n_units, dual, ti.bits, colacc, bu);
#if HCIM_HAS_TERN
        if (sl >= 2 && sl < pixels + 2 && k < n_tern)  // ternary entries of pixel sl - 2, in parallel
            hcim_tern_step(xw[bu][Z_PLANE], k, tacc, bu);
#endif
        u = k + 1 == L ? 0 : u + step;
        if (sl >= STREAM_LAG && k < R) {  // requant of pixel sl - 4
            hcim_requant_step(rc, k * RQ_LANES, br, q, r_pix, o_pix, opw);
            if (k + 1 == R) {
                r_pix += r_words;
                o_pix += o_words;
                q += l->f;
            }
        }
        if (++k == L) {  // next slot
            k = 0;
            sl++;
            bw = bw == 2 ? 0 : bw + 1;
            bu = bu == 2 ? 0 : bu + 1;
            br = br == 2 ? 0 : br + 1;
            if (++ox == to.w) {
                ox = 0;
                iy0 += stride;
                ix0 = -pad;
                org_row += dy;
                org = org_row;
            } else {
                ix0 += stride;
                org += dx;
            }
        }
    }
}

static void hcim_pixel_stream_any(const hcim_tensor &ti, const hcim_layer *l, const hcim_rq &rc, uint32_t in_base,
                                  uint32_t n_units, uint32_t n_tern, uint32_t pixels,
                                  word_t xw[3][HCIM_XW_PLANES][HCIM_XW_WORDS], cnt_t *ones, cnt_t *tones) {
#ifdef HCIM_HW_DATAPATH
    // the synthesized units datapath (planes >= bits_in zero in every window buffer)
    for (uint32_t w = 0; w < HCIM_XW_WORDS; w++) {
        for (uint32_t j = 0; j < 3; j++) {
            for (uint32_t i = 0; i < HCIM_MAX_IN_BITS; i++) xw[j][i][w] = 0;
        }
    }
    hcim_pixel_stream<HCIM_MAX_IN_BITS, true>(ti, l, rc, in_base, n_units, n_tern, pixels, xw, ones, tones);
#else
    switch (ti.bits) {  // csim: one unrolled instance per input width
        case 1: hcim_pixel_stream<1, false>(ti, l, rc, in_base, n_units, n_tern, pixels, xw, ones, tones); break;
        case 2: hcim_pixel_stream<2, false>(ti, l, rc, in_base, n_units, n_tern, pixels, xw, ones, tones); break;
        case 3: hcim_pixel_stream<3, false>(ti, l, rc, in_base, n_units, n_tern, pixels, xw, ones, tones); break;
        case 4: hcim_pixel_stream<4, false>(ti, l, rc, in_base, n_units, n_tern, pixels, xw, ones, tones); break;
        case 5: hcim_pixel_stream<5, false>(ti, l, rc, in_base, n_units, n_tern, pixels, xw, ones, tones); break;
        case 6: hcim_pixel_stream<6, false>(ti, l, rc, in_base, n_units, n_tern, pixels, xw, ones, tones); break;
        case 7: hcim_pixel_stream<7, false>(ti, l, rc, in_base, n_units, n_tern, pixels, xw, ones, tones); break;
        default: hcim_pixel_stream<8, false>(ti, l, rc, in_base, n_units, n_tern, pixels, xw, ones, tones); break;
    }
#endif
}

void hcim_cim_layer(const word_t *prog, const hcim_tables *tab, const hcim_layer *l, const hcim_ctx &ctx, acc_t *s,
                    cnt_t cnt[HCIM_N_COUNTERS]) {
    const hcim_tensor &ti = tab->t[l->in], &to = tab->t[l->out];
    const bool has_res = l->res != HCIM_NO_TENSOR, hybrid = l->mode == HCIM_MODE_HYBRID;
    const uint32_t res_off = has_res ? tab->t[l->res].off : 0, y_off = to.off, bits = ti.bits;
    hcim_setup_layer(prog, l, bits, hybrid);
    // on-chip mode: the input's planes are in the activation buffer; DDR mode: packed from scratch
    const bool onchip = tab->onchip != 0;
    const uint32_t in_base = onchip ? ti.aoff : 0;
    if (!onchip) hcim_pack_planes(ti, s + ti.off, false, 0);
    const hcim_tensor &tr = tab->t[has_res ? l->res : l->out];
    const uint32_t r_words = tr.bits * tr.cw, o_words = to.bits * to.cw;  // plane words of a pixel
    const uint32_t n_row_tiles = (l->r + HCIM_BLOCKS_PER_MACRO - 1) / HCIM_BLOCKS_PER_MACRO;
    const uint32_t n_tiles = n_row_tiles * ((l->ng + HCIM_GROUPS_PER_MACRO - 1) / HCIM_GROUPS_PER_MACRO);
    uint32_t n_rounds = (n_tiles + HCIM_N_MACROS - 1) / HCIM_N_MACROS;
    if (n_rounds == 0) n_rounds = 1;  // every filter pruned: outputs are requant(bias [+ res])
    const uint32_t sram_rounds = n_rounds;
    // a dual-path layer (§10): its last F_t filters on the ternary macros, in rounds of their own; the
    // layer runs max(SRAM rounds, ternary rounds) rounds, each loading both macro types
    hcim_dualpath du;
    hcim_read_dual(prog, tab, l, &du);
    const bool dualpath = hcim_is_dual(tab, l);
    g_du_theta = du.f_t ? du.theta : 0;
    g_du_rt = du.n_rowblocks;
#if HCIM_HAS_TERN
    const uint32_t tern_tiles = (du.f_t + T_S - 1) / T_S * ((du.n_rowblocks + T_B - 1) / T_B);
    const uint32_t tern_rounds = tern_tiles > T_M ? (tern_tiles + T_M - 1) / T_M : 1;
    n_rounds = tern_rounds > n_rounds ? tern_rounds : n_rounds;
    cnt_t tbusy[T_M];  // ternary row-block activations of each ternary macro (its cycles)
#pragma HLS ARRAY_PARTITION variable = tbusy complete
    for (uint32_t m = 0; m < T_M; m++) tbusy[m] = 0;
#pragma HLS ARRAY_PARTITION variable = g_tacc dim = 2 cyclic factor = T_TG
#pragma HLS ARRAY_PARTITION variable = g_tmacro dim = 3 complete
#pragma HLS ARRAY_PARTITION variable = g_tmacro dim = 4 complete
#endif
    cnt_t t_acts = 0, t_cols = 0, t_bitops = 0, t_wload = 0, t_refresh = 0, tones = 0;
    static word_t xw3[3][HCIM_XW_PLANES][HCIM_XW_WORDS];  // window buffers (the per-pixel loops use 0)
#pragma HLS ARRAY_PARTITION variable = xw3 dim = 2 complete
    word_t(*xw)[HCIM_XW_WORDS] = xw3[0];
#pragma HLS ARRAY_PARTITION variable = g_colbuf dim = 2 cyclic factor = G_W
#pragma HLS ARRAY_PARTITION variable = g_colbuf2 dim = 2 cyclic factor = G_W
#ifdef HCIM_URAM
    // the board's build (overlay/build.sh: URAM=1 on the KV260) puts the activation buffer in
    // UltraRAM (72-bit words, 4096 deep: 4 blocks for 16,384 words) instead of 32 BRAM36, as a true
    // dual-port RAM (ram_t2p: both ports read and write, the most a block RAM HLS picks itself can
    // have). A synthesis directive only: the C simulation is the same with or without it.
#pragma HLS BIND_STORAGE variable = g_planes type = ram_t2p impl = uram
#endif
    // requant's RQ_LANES consecutive filters (and their chunk words) sit in distinct banks
#pragma HLS ARRAY_PARTITION variable = g_fcol cyclic factor = RQ_LANES
#pragma HLS ARRAY_PARTITION variable = g_bias cyclic factor = RQ_LANES
#pragma HLS ARRAY_PARTITION variable = g_shift cyclic factor = RQ_LANES
#pragma HLS ARRAY_PARTITION variable = g_rshift cyclic factor = RQ_LANES
#pragma HLS ARRAY_PARTITION variable = g_psum dim = 2 cyclic factor = RQ_LANES
#pragma HLS ARRAY_PARTITION variable = g_rbuf cyclic factor = RQ_LANES
    cnt_t busy[HCIM_N_MACROS];  // row-block activations x input planes of each macro (its cycles)
#pragma HLS ARRAY_PARTITION variable = busy complete
    for (uint32_t m = 0; m < HCIM_N_MACROS; m++) busy[m] = 0;
    cnt_t unit_act = 0, skipped = 0, blocks = 0, col_reads = 0, bit_ops = 0, wload = 0, ones = 0;
    cnt_t ana_reads = 0, skip_reads = 0, hist[HCIM_MAX_LEVELS] = {0, 0, 0, 0, 0, 0, 0, 0};
    const uint32_t pixels = to.h * to.w;
    // per image: tables (precision u8, bias i32, shift i8, res_shift i8 per filter; u32 column map;
    // skip bits), input, residual and output tensors at their bit widths; the input into the bit-plane buffer
    cnt_t dram = 7ull * l->f + 4ull * l->ng * G_W + ((cnt_t)l->ng * l->r + 7) / 8 +
                 hcim_packed_bytes(ti.size, ti.bits) + hcim_packed_bytes(to.size, to.bits);
    if (has_res) dram += hcim_packed_bytes(tab->t[l->res].size, tab->t[l->res].bits);
    cnt_t act_buf = (cnt_t)ti.size * ti.bits;
    // partial sums on chip for the whole layer, or through DDR in chunks of whole pixels (>= 1: F <= HCIM_MAX_FILTERS)
    const bool psum_onchip = onchip && (uint64_t)pixels * l->f <= PSUM_WORDS;
    const uint32_t chunk_px = psum_onchip ? pixels : IO_WORDS / l->f;
rounds:
    for (uint32_t round = 0; round < n_rounds; round++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 64
        const uint32_t n_units = hcim_build_round(prog, l, round, n_row_tiles, n_tiles);  // no tiles: nothing, counters 0
        const bool first = round == 0, last = round + 1 == n_rounds;
        wload += (cnt_t)n_units * G_W * A_ROWS;
        uint32_t n_tern = 0;  // this round's ternary entries (per pixel)
#if HCIM_HAS_TERN
        if (du.f_t) {
            n_tern = hcim_build_tern_round(prog, l, du, round, pixels);
            hcim_clear_tacc(du.f_t);
            t_acts += (cnt_t)g_t_acts * pixels;
            t_cols += (cnt_t)g_t_cols * pixels;
            t_bitops += (cnt_t)g_t_bitops * pixels;
            t_refresh += g_t_refresh;
            act_buf += (cnt_t)g_t_rows * pixels;
            for (uint32_t m = 0; m < T_M; m++) tbusy[m] += (cnt_t)g_t_blocks[m] * pixels;
        }
#endif
        if (hybrid) {  // this round's column reads per (group, level) of one pixel
            for (uint32_t g = 0; g < l->ng; g++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = HCIM_MAX_GROUPS
                for (uint32_t v = 0; v < HCIM_MAX_LEVELS && v < g_hy.n_levels; v++) {
                    const uint32_t n = g_r_gunits[g];
                    g_r_dig[g][v] = n * g_hy_dig[g][v];
                    g_r_ana[g][v] = n * g_hy_ana[g][v];
                    g_r_skp[g][v] = n * (g_ncols[g] * bits - g_hy_dig[g][v] - g_hy_ana[g][v]);
                }
            }
        }
        // column sums of groups without a unit in this round are 0 (those with one are written every pixel)
        HCIM_LOOP_ENTER(HCIM_LP_CLEAR_COLBUF);
        HCIM_LOOP_ITERS(HCIM_LP_CLEAR_COLBUF, l->ng);
    clear_colbuf:
        for (uint32_t g = 0; g < l->ng; g++) {  // one group's row of G_W columns per cycle
#pragma HLS LOOP_TRIPCOUNT min = 1 max = HCIM_MAX_GROUPS
#pragma HLS PIPELINE II = 1
            for (uint32_t c = 0; c < G_W; c++) {
                for (uint32_t j = 0; j < 3; j++) {
                    g_colbuf[j][g * G_W + c] = 0;
                    g_colbuf2[j][g * G_W + c] = 0;
                }
            }
        }
        // the round's events, once per input plane and pixel
        const cnt_t per = (cnt_t)bits * pixels;
        unit_act += n_units * per;
        skipped += g_r_absent * per;
        if (!hybrid) col_reads += g_r_cols * per;
        bit_ops += g_r_bitops * per;
        act_buf += g_r_rows * per;
        for (uint32_t m = 0; m < HCIM_N_MACROS; m++) {
#pragma HLS UNROLL
            blocks += g_r_blocks[m] * per;
            busy[m] += g_r_blocks[m] * per;
        }
        // on-chip mode, last round: residual from and outputs into the activation buffer
        const uint32_t rd = psum_onchip ? (round & 1u) ^ 1u : 0u, wr = psum_onchip ? round & 1u : 1u;
        const hcim_rq rc = {l, &to, &tr, first, last, has_res, onchip, onchip && last, rd, wr, du.f0};
        if (onchip && !hybrid && (n_units || n_tern) && (n_rounds == 1 || psum_onchip)) {  // digital: the pixel stream
            hcim_pixel_stream_any(ti, l, rc, in_base, n_units, n_tern, pixels, xw3, &ones, &tones);
            continue;
        }
        HCIM_LOOP_ENTER(HCIM_LP_PIXELS);
        HCIM_LOOP_ITERS(HCIM_LP_PIXELS, pixels);
        uint32_t r_pix = tr.aoff, o_pix = to.aoff;  // on-chip mode: the pixel's residual and output planes
    pixels:
        for (uint32_t p = 0, oy = 0, ox = 0, pf = 0, q = 0; p < pixels; p++, pf += l->f) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 4096
            if (n_units || n_tern) {
                hcim_pack_window(ti, l, in_base, oy, ox, xw, &ones, &tones);
                if (hybrid) {
                    hcim_levels(l, xw, bits, first, hist, &col_reads, &ana_reads, &skip_reads);
                    if (g_hy.noise_pairs) hcim_make_noise(n_units, bits, ctx, p);
                    hcim_units_any<true>(xw, n_units, bits, 0);
                } else {  // the SRAM units and the ternary entries (in parallel)
                    hcim_units_any<false>(xw, n_units, bits, n_tern);
                }
            } else if (hybrid && first) {  // no unit in this round: the decisions are still taken
                hcim_pack_window(ti, l, in_base, oy, ox, xw, &ones, &tones);
                hcim_levels(l, xw, bits, true, hist, &col_reads, &ana_reads, &skip_reads);
            }
            // the DDR side of requant works in chunks of whole pixels (IO_WORDS values): partial sums
            // and the residual are read ahead one burst a chunk, outputs written back one burst a chunk
            if (q == 0) {
                const uint32_t n = (pixels - p < chunk_px ? pixels - p : chunk_px) * l->f;
                if (!first && !psum_onchip) hcim_burst_in(s + y_off + pf, n, g_psum[0]);
                if (last && has_res && !onchip) hcim_burst_in(s + res_off + pf, n, g_rbuf);
            }
            word_t opw[ACT_MAX_BITS];  // the output's plane words of this pixel (on-chip mode, last round)
#pragma HLS ARRAY_PARTITION variable = opw complete
            for (uint32_t i = 0; i < ACT_MAX_BITS; i++) opw[i] = 0;
            // requant (last round) or partial sums out: RQ_LANES filters per iteration
            HCIM_LOOP_ENTER(HCIM_LP_REQUANT);
            HCIM_LOOP_ITERS(HCIM_LP_REQUANT, (l->f + RQ_LANES - 1) / RQ_LANES);
        requant:
            for (uint32_t f0 = 0; f0 < l->f; f0 += RQ_LANES) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = HCIM_MAX_FILTERS / RQ_LANES
#pragma HLS PIPELINE II = 1
                hcim_requant_step(rc, f0, 0, q, r_pix, o_pix, opw);
            }
            q += l->f;
            r_pix += r_words;
            o_pix += o_words;
            if (q == chunk_px * l->f || p + 1 == pixels) {  // chunk done: one burst out
                if (!rc.to_act && !psum_onchip) hcim_burst_out(g_psum[1], q, s + y_off + pf + l->f - q);
                q = 0;
            }
            if (++ox == to.w) {
                ox = 0;
                oy++;
            }
        }
    }
    cnt_t cycles = 0, t_cycles = 0;
    for (uint32_t m = 0; m < HCIM_N_MACROS; m++) cycles = busy[m] > cycles ? busy[m] : cycles;
    // partial sums of every pixel leave after each round but the last and come back: the SRAM path's
    // F - F_t filters over its rounds (architecture.md §7, §10.4)
    dram += (cnt_t)(sram_rounds - 1) * pixels * du.f0 * (HCIM_ACC_BITS / 8) * 2;
#if HCIM_HAS_TERN
    for (uint32_t m = 0; m < T_M; m++) t_cycles = tbusy[m] > t_cycles ? tbusy[m] : t_cycles;
    // every ternary tile written once per image, whole row blocks: 2 F_t R_t tern_rows_active cells
    t_wload = 2ull * du.f_t * du.n_rowblocks * T_ROWS;
    if (dualpath) {
        dram += HCIM_DU_BYTES + t_wload / 8 + (cnt_t)(tern_rounds - 1) * pixels * du.f_t * (HCIM_ACC_BITS / 8) * 2;
        if (du.f_t) act_buf += ti.size;  // the binary plane written once per image
    }
#endif
    (void)dualpath;
    cycles = t_cycles > cycles ? t_cycles : cycles;  // the two macro types run in parallel (§10.3)
    cnt[HCIM_C_MACS] = (cnt_t)l->f * l->k * pixels;
    cnt[HCIM_C_UNIT_ACTIVATIONS] = unit_act;
    cnt[HCIM_C_UNITS_SKIPPED] = skipped;
    cnt[HCIM_C_ROWBLOCK_ACTIVATIONS] = blocks;
    cnt[HCIM_C_CYCLES] = cycles;
    cnt[HCIM_C_BIT_OPS] = bit_ops;
    cnt[HCIM_C_DIGITAL_COLUMN_READS] = col_reads;
    cnt[HCIM_C_ANALOG_COLUMN_READS] = ana_reads;
    cnt[HCIM_C_ADC_CONVERSIONS] = ana_reads;  // one conversion per analog read (spec 1.1)
    cnt[HCIM_C_SKIPPED_BITPLANES] = skip_reads;
    cnt[HCIM_C_WEIGHT_LOAD_BITS] = wload;
    cnt[HCIM_C_DRAM_BYTES] = dram + wload / 8;
    cnt[HCIM_C_ACT_BUFFER_BITS] = act_buf;
    cnt[HCIM_C_REQUANT_OPS] = (cnt_t)l->f * pixels;
    cnt[HCIM_C_INPUT_ONES] = ones;
    cnt[HCIM_C_TERN_ROWBLOCK_ACTIVATIONS] = t_acts;
    cnt[HCIM_C_TERN_CYCLES] = t_cycles;
    cnt[HCIM_C_TERN_COLUMN_READS] = t_cols;
    cnt[HCIM_C_TERN_BIT_OPS] = t_bitops;
    cnt[HCIM_C_TERN_WEIGHT_LOAD_BITS] = t_wload;
    cnt[HCIM_C_TERN_INPUT_ONES] = tones;
    cnt[HCIM_C_REFRESH_EVENTS] = t_refresh;
    if (hybrid) {
        // saliency_ops: h x (row blocks present in at least one group) per pixel
        uint32_t any_blocks = 0;
        for (uint32_t b = 0; b < l->r; b++) {
            word_t any = 0;
            for (uint32_t g = 0; g < l->ng; g++) any |= g_skipw[g][b >> 6] >> (b & 63u);
            any_blocks += (uint32_t)(any & 1u);
        }
        cnt[HCIM_C_SALIENCY_OPS] = (cnt_t)g_hy.sal_planes * any_blocks * pixels;
        for (uint32_t v = 0; v < HCIM_MAX_LEVELS; v++) cnt[HCIM_C_DECISIONS_LEVEL0 + v] = hist[v];
    }
}

// Pools read and write their tensors in scratch (DDR mode) or in the activation buffer (on-chip mode).
void hcim_maxpool_layer(const hcim_tables *tab, const hcim_layer *l, acc_t *s) {
    const hcim_tensor &ti = tab->t[l->in], &to = tab->t[l->out];
    const bool onchip = tab->onchip != 0;
    const acc_t *x = s + ti.off;
    acc_t *y = s + to.off;
    const uint32_t win = l->kh * l->kw;
    const uint32_t pix_words = ti.bits * ti.cw, row_words = ti.w * pix_words;  // on-chip: input plane words
    HCIM_LOOP_ITERS(HCIM_LP_MAXPOOL, (uint64_t)to.size * win);
    if (!onchip) {
        for (uint32_t p = 0; p < to.h * to.w; p++) {  // per output pixel: kh window rows in, one pixel out
            for (uint32_t ky = 0; ky < l->kh; ky++) HCIM_BURST(0, (uint64_t)l->kw * ti.c * 4);
            HCIM_BURST(1, (uint64_t)to.c * 4);
        }
    }
    word_t mpw[ACT_MAX_BITS];
#pragma HLS ARRAY_PARTITION variable = mpw complete
    for (uint32_t i = 0; i < ACT_MAX_BITS; i++) mpw[i] = 0;
    uint32_t oy = 0, ox = 0, c = 0, o_pix = to.aoff;
    for (uint32_t k = 0; k < to.size; k++) {  // one output value per entry of the window loop
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 65536
        const uint32_t x0 = ((oy * l->stride) * ti.w + ox * l->stride) * ti.c + c;
        const uint32_t a0 = ti.aoff + (oy * l->stride) * row_words + (ox * l->stride) * pix_words;
        acc_t m = onchip ? hcim_act_value(ti, a0, c) : x[x0];
        HCIM_LOOP_ENTER(HCIM_LP_MAXPOOL);
    maxpool:
        for (uint32_t q = 0, ky = 0, kx = 0, a = a0, ar = a0; q < win; q++) {  // one window value per iteration
#pragma HLS LOOP_TRIPCOUNT min = 4 max = 9
#pragma HLS PIPELINE II = 1
            const acc_t v = onchip ? hcim_act_value(ti, a, c) : x[x0 + (ky * ti.w + kx) * ti.c];
            m = v > m ? v : m;
            a += pix_words;
            if (++kx == l->kw) {
                kx = 0;
                ky++;
                ar += row_words;
                a = ar;
            }
        }
        if (onchip) {
            hcim_act_put(to, o_pix, c, m, mpw);
        } else {
            y[k] = m;
        }
        if (++c == to.c) {
            c = 0;
            o_pix += to.bits * to.cw;
            if (++ox == to.w) {
                ox = 0;
                oy++;
            }
        }
    }
}

// On-chip mode: one 64-channel word of the input per pass, a pixel's plane words per cycle into 64
// channel sums (registers), then one channel a cycle through requant into the output's planes.
static void hcim_avgpool_planes(const hcim_tensor &ti, const hcim_tensor &to, const hcim_layer *l) {
    const uint32_t hw = ti.h * ti.w, pix_words = ti.bits * ti.cw;
    word_t apw[ACT_MAX_BITS];
#pragma HLS ARRAY_PARTITION variable = apw complete
    for (uint32_t i = 0; i < ACT_MAX_BITS; i++) apw[i] = 0;
    for (uint32_t wi = 0; wi < ti.cw; wi++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = HCIM_MAX_CWORDS
        wide_t sum[64];
#pragma HLS ARRAY_PARTITION variable = sum complete
        for (uint32_t c = 0; c < 64; c++) sum[c] = 0;
        HCIM_LOOP_ENTER(HCIM_LP_AVGPOOL_PLANES);
        HCIM_LOOP_ITERS(HCIM_LP_AVGPOOL_PLANES, hw);
    avgpool_planes:
        for (uint32_t p = 0, a = ti.aoff + wi; p < hw; p++, a += pix_words) {  // one pixel's word per iteration
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 1024
#pragma HLS PIPELINE II = 1
            word_t x[ACT_MAX_BITS];
            for (uint32_t i = 0, ai = a; i < ACT_MAX_BITS; i++, ai += ti.cw) x[i] = i < ti.bits ? g_planes[ai] : 0;
            for (uint32_t c = 0; c < 64; c++) {
#pragma HLS UNROLL
                uint32_t v = 0;
                for (uint32_t i = 0; i < ACT_MAX_BITS && i < ti.bits; i++) v |= (uint32_t)((x[i] >> c) & 1u) << i;
                sum[c] += v;  // pools take unsigned tensors
            }
        }
        const uint32_t nc = ti.c - 64 * wi < 64 ? ti.c - 64 * wi : 64;
        HCIM_LOOP_ENTER(HCIM_LP_AVGPOOL_OUT);
        HCIM_LOOP_ITERS(HCIM_LP_AVGPOOL_OUT, nc);
    avgpool_out:
        for (uint32_t c = 0; c < nc; c++) {  // one channel's requant per iteration
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 64
#pragma HLS PIPELINE II = 1
            hcim_act_put(to, to.aoff, 64 * wi + c, hcim_clamp(hcim_rshift_rne(sum[c], l->pool_shift), l->lo, l->hi), apw);
        }
    }
}

void hcim_avgpool_layer(const hcim_tables *tab, const hcim_layer *l, acc_t *s) {
    const hcim_tensor &ti = tab->t[l->in], &to = tab->t[l->out];
    if (tab->onchip) {
        hcim_avgpool_planes(ti, to, l);
        return;
    }
    const acc_t *x = s + ti.off;
    acc_t *y = s + to.off;
    const uint32_t hw = ti.h * ti.w;
    HCIM_LOOP_ITERS(HCIM_LP_AVGPOOL, ti.size);
    for (uint32_t k = 0; k < ti.size; k++) HCIM_BURST(0, 4);  // strided: single-word reads
    HCIM_BURST(1, (uint64_t)to.size * 4);
    for (uint32_t c = 0; c < ti.c; c++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 1024
        wide_t sum = 0;  // a register
        HCIM_LOOP_ENTER(HCIM_LP_AVGPOOL);
    avgpool:
        for (uint32_t p = 0, k = c; p < hw; p++, k += ti.c) {  // one input value of channel c per iteration
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 1024
#pragma HLS PIPELINE II = 1
            sum += x[k];
        }
        y[c] = hcim_clamp(hcim_rshift_rne(sum, l->pool_shift), l->lo, l->hi);
    }
}
