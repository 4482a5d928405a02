// Program image checks of the kernel (docs/program-format.md "Reader checks").
//
// The kernel trusts nothing it needs for memory safety or for its datapath: after these
// checks every index and section the datapath touches is inside the image and inside the
// on-chip buffers, so a corrupt or hostile image yields an error code, never an
// out-of-bounds access. The checks run in the order of the reader-check table, which the host
// decoder (hybridcim.program.codec.decode) follows too, so an image with several defects gets
// the same status class from both. The rules the kernel leaves to the host (column-map
// packing, padding rows, the overflow bound, clamp ranges, the manifest) are listed in
// program-format.md; no executor runs an image the host refuses.
#include "hcim_internal.h"

#define HCIM_FAIL(code, detail) return (uint32_t)(code) | ((uint32_t)(detail) << HCIM_DETAIL_SHIFT)

// CRC-32, zlib / IEEE 802.3 polynomial (reflected 0xEDB88320), of the whole image with the
// crc32 field (bytes 16..19) read as zero (program-format.md, header).
static uint32_t hcim_crc32(const word_t *prog, uint32_t image_bytes) {
    uint32_t table[256];
crc_table:
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        table[n] = c;
    }
    uint32_t crc = 0xFFFFFFFFu;
crc_words:
    for (uint32_t w = 0; w < image_bytes / 8; w++) {
#pragma HLS LOOP_TRIPCOUNT min = 64 max = 65536
#pragma HLS PIPELINE II = 8
        word_t v = prog[w];
        if (w == HCIM_H_CRC32 / 8) v &= ~(word_t)0xFFFFFFFFull;  // the crc32 field reads as 0
        for (int b = 0; b < 8; b++) {
            crc = table[(crc ^ (uint32_t)(v >> (8 * b))) & 0xFFu] ^ (crc >> 8);
        }
    }
    return crc ^ 0xFFFFFFFFu;
}

uint32_t hcim_check_header(const word_t *prog, uint32_t prog_words, uint32_t *image_bytes) {
    if (prog_words < HCIM_HEADER_BYTES / 8) HCIM_FAIL(HCIM_ERR_SIZE, 0);
    if (prog[0] != HCIM_MAGIC_WORD) HCIM_FAIL(HCIM_ERR_MAGIC, 0);
    if (hcim_rd16(prog, HCIM_H_VERSION_MAJOR) != HCIM_FORMAT_MAJOR) HCIM_FAIL(HCIM_ERR_VERSION, 0);
    uint32_t nbytes = hcim_rd32(prog, HCIM_H_IMAGE_BYTES);
    if ((uint64_t)nbytes != (uint64_t)prog_words * 8u) HCIM_FAIL(HCIM_ERR_SIZE, 0);
    if (hcim_crc32(prog, nbytes) != hcim_rd32(prog, HCIM_H_CRC32)) HCIM_FAIL(HCIM_ERR_CHECKSUM, 0);
    bool same = hcim_rd32(prog, HCIM_H_FINGERPRINT) == HCIM_FINGERPRINT &&
                hcim_rd16(prog, HCIM_H_ROWS) == HCIM_ROWS && hcim_rd16(prog, HCIM_H_COLS) == HCIM_COLS &&
                hcim_rd16(prog, HCIM_H_ROWS_ACTIVE) == HCIM_ROWS_ACTIVE &&
                hcim_rd16(prog, HCIM_H_GROUP_WIDTH) == HCIM_GROUP_WIDTH &&
                hcim_rd16(prog, HCIM_H_N_MACROS) == HCIM_N_MACROS && hcim_rd8(prog, HCIM_H_ACC_BITS) == HCIM_ACC_BITS &&
                hcim_rd8(prog, HCIM_H_ADC_BITS) == HCIM_ADC_BITS &&
                hcim_rd8(prog, HCIM_H_PRECISION_MASK) == HCIM_PRECISION_MASK;
#if HCIM_HAS_TERN
    // this preset's fingerprint covers its second macro type: the header names that preset only in a
    // format >= 1.2 image with byte 63 bit 7 and these fields in bytes 61..63 (unused bits: row 7)
    const uint32_t b61 = hcim_rd8(prog, HCIM_H_TERN_GEOMETRY), b62 = hcim_rd8(prog, HCIM_H_TERN_GEOMETRY + 1),
                   b63 = hcim_rd8(prog, HCIM_H_TERN_GEOMETRY + 2);
    same = same && hcim_rd16(prog, HCIM_H_VERSION_MINOR) >= HCIM_FORMAT_MINOR_DUAL && (b63 & 0x80u) &&
           (1u << (b61 & 15u)) == HCIM_TERN_ROWS && (1u << (b61 >> 4)) == HCIM_TERN_COLS &&
           (8u << (b62 & 3u)) == HCIM_TERN_ROWS_ACTIVE && (1u << ((b62 >> 2) & 15u)) == HCIM_TERN_N_MACROS &&
           (1ull << (b63 & 31u)) == HCIM_TERN_REFRESH_CYCLES;
#endif
    if (!same) HCIM_FAIL(HCIM_ERR_PRESET, 0);
    *image_bytes = nbytes;
    return HCIM_OK;
}

// A section [off, off + bytes) must start on an 8-byte boundary past the header and end inside the image.
static bool hcim_section_ok(uint32_t off, uint64_t bytes, uint32_t image_bytes) {
    return off >= HCIM_HEADER_BYTES && (off & 7u) == 0 && (uint64_t)off + bytes <= image_bytes;
}

// Bytes [off, off + n) of the image are all zero (reserved fields; callers keep them in bounds).
static bool hcim_zero_bytes(const word_t *prog, uint32_t off, uint32_t n) {
    uint32_t any = 0;
zero_bytes:
    for (uint32_t i = 0; i < n; i++) {
#pragma HLS LOOP_TRIPCOUNT min = 3 max = 28
        any |= hcim_rd8(prog, off + i);
    }
    return any == 0;
}

void hcim_read_layer(const word_t *prog, const hcim_tables *tab, uint32_t index, hcim_layer *l) {
    uint32_t b = hcim_rd32(prog, HCIM_H_LAYER_TABLE) + index * HCIM_LAYER_BYTES;
    l->op = hcim_rd8(prog, b + HCIM_L_OP);
    l->mode = hcim_rd8(prog, b + HCIM_L_MODE);
    l->flags = hcim_rd16(prog, b + HCIM_L_FLAGS);
    l->kh = hcim_rd8(prog, b + HCIM_L_KH);
    l->kw = hcim_rd8(prog, b + HCIM_L_KW);
    l->stride = hcim_rd8(prog, b + HCIM_L_STRIDE);
    l->pad = hcim_rd8(prog, b + HCIM_L_PAD);
    l->in = hcim_rd16(prog, b + HCIM_L_IN_TENSOR);
    l->out = hcim_rd16(prog, b + HCIM_L_OUT_TENSOR);
    l->res = hcim_rd16(prog, b + HCIM_L_RES_TENSOR);
    l->f = hcim_rd16(prog, b + HCIM_L_N_FILTERS);
    l->k = hcim_rd32(prog, b + HCIM_L_K_ROWS);
    l->ng = hcim_rd16(prog, b + HCIM_L_N_GROUPS);
    l->r = hcim_rd16(prog, b + HCIM_L_N_ROWBLOCKS);
    l->lo = (int32_t)hcim_rd32(prog, b + HCIM_L_CLAMP_LO);
    l->hi = (int32_t)hcim_rd32(prog, b + HCIM_L_CLAMP_HI);
    l->pool_shift = hcim_rdi8(prog, b + HCIM_L_POOL_SHIFT);
    l->off_prec = hcim_rd32(prog, b + HCIM_L_OFF_PRECISION);
    l->off_bias = hcim_rd32(prog, b + HCIM_L_OFF_BIAS);
    l->off_shift = hcim_rd32(prog, b + HCIM_L_OFF_SHIFT);
    l->off_rshift = hcim_rd32(prog, b + HCIM_L_OFF_RES_SHIFT);
    l->off_colmap = hcim_rd32(prog, b + HCIM_L_OFF_COLMAP);
    l->off_skip = hcim_rd32(prog, b + HCIM_L_OFF_SKIP);
    l->off_weights = hcim_rd32(prog, b + HCIM_L_OFF_WEIGHTS);
    l->n_words = hcim_rd32(prog, b + HCIM_L_N_WEIGHT_WORDS);
    l->off_hybrid = hcim_rd32(prog, b + HCIM_L_OFF_HYBRID);
    l->off_dual = hcim_rd32(prog, b + HCIM_L_OFF_DUAL);
    l->reserved_ok = hcim_zero_bytes(prog, b + HCIM_L_RESERVED0, HCIM_L_RESERVED0_BYTES) &&
                     hcim_zero_bytes(prog, b + HCIM_L_RESERVED2, HCIM_L_RESERVED2_BYTES);
    (void)tab;
}

// Layer mode 1 is hybrid on a conv/fc layer of a format >= 1.1 image (reader check 12(b)).
static bool hcim_is_hybrid(const hcim_tables *tab, const hcim_layer *l) {
    return l->mode == HCIM_MODE_HYBRID && tab->version_minor >= HCIM_FORMAT_MINOR_HYBRID &&
           (l->op == HCIM_OP_CONV || l->op == HCIM_OP_FC);
}

// Layer flags bit 0 is a dual-path layer on a conv/fc layer of a format >= 1.2 image (reader check 12(b)).
bool hcim_is_dual(const hcim_tables *tab, const hcim_layer *l) {
    return l->flags == HCIM_FLAG_DUAL && tab->version_minor >= HCIM_FORMAT_MINOR_DUAL &&
           (l->op == HCIM_OP_CONV || l->op == HCIM_OP_FC);
}

void hcim_read_dual(const word_t *prog, const hcim_tables *tab, const hcim_layer *l, hcim_dualpath *d) {
    const bool dual = hcim_is_dual(tab, l);
    const uint32_t o = l->off_dual;
    d->ratio = dual ? hcim_rd8(prog, o + HCIM_DU_RATIO) : 0;
    d->theta = dual ? hcim_rd8(prog, o + HCIM_DU_THRESHOLD) : 0;
    d->n_rowblocks = dual ? hcim_rd16(prog, o + HCIM_DU_N_ROWBLOCKS) : 0;
    d->n_words = dual ? hcim_rd32(prog, o + HCIM_DU_N_WORDS) : 0;
    d->off_words = dual ? hcim_rd32(prog, o + HCIM_DU_OFF_WEIGHTS) : 0;
    d->f_t = (l->f * d->ratio) / HCIM_RATIO_STEPS;  // the reader checks ratio <= 8 first
    d->f0 = l->f - d->f_t;
}

void hcim_read_hybrid(const word_t *prog, const hcim_layer *l, hcim_hybrid *h) {
    const uint32_t o = l->off_hybrid;
    h->n_levels = hcim_rd8(prog, o + HCIM_HY_N_LEVELS);
    h->sal_planes = hcim_rd8(prog, o + HCIM_HY_SAL_PLANES);
    h->noise_pairs = hcim_rd8(prog, o + HCIM_HY_NOISE_PAIRS);
    h->noise_shift = hcim_rd8(prog, o + HCIM_HY_NOISE_SHIFT);
    h->noise_seed = hcim_rd32(prog, o + HCIM_HY_NOISE_SEED);
read_levels:
    for (uint32_t k = 0; k < HCIM_MAX_LEVELS; k++) {
        if (k + 1 < HCIM_MAX_LEVELS) h->thresholds[k] = hcim_rd32(prog, o + HCIM_HY_THRESHOLDS + 4 * k);
        h->dd[k] = (uint8_t)hcim_rd8(prog, o + HCIM_HY_DIGITAL_DEPTH + k);
        h->kd[k] = (uint8_t)hcim_rd8(prog, o + HCIM_HY_KEEP_DEPTH + k);
    }
}

// Reader check 12(e): the hybrid section of a mode-1 layer (program-format.md "Hybrid section", in
// the order of hybridcim.program.hybrid.section_problem): the section rule, reserved bytes, n_levels
// 1..8, entries past n_levels 0, thresholds strictly ascending, depths <= 15, D <= E per level, both
// nondecreasing, sal_planes 1..bits_in, noise_pairs <= 64, noise_shift <= 8.
static bool hcim_hybrid_ok(const word_t *prog, const hcim_layer *l, uint32_t bits_in, uint32_t nbytes) {
    if (!hcim_section_ok(l->off_hybrid, HCIM_HY_BYTES, nbytes)) return false;
    if (!hcim_zero_bytes(prog, l->off_hybrid + HCIM_HY_RESERVED0, 8) ||
        !hcim_zero_bytes(prog, l->off_hybrid + HCIM_HY_RESERVED1, 4))
        return false;
    hcim_hybrid h;
    hcim_read_hybrid(prog, l, &h);
    const uint32_t n = h.n_levels;
    if (n < 1 || n > HCIM_MAX_LEVELS) return false;
    bool ok = true;
check_levels:
    for (uint32_t k = 0; k < HCIM_MAX_LEVELS; k++) {
        if (k + 1 < HCIM_MAX_LEVELS && k + 1 >= n && h.thresholds[k]) ok = false;  // entries past T-1 are 0
        if (k >= n && (h.dd[k] || h.kd[k])) ok = false;                          // entries past T are 0
        if (k + 1 < n && k > 0 && h.thresholds[k] <= h.thresholds[k - 1]) ok = false;  // strictly ascending
        if (k < n && (h.dd[k] > HCIM_DEPTH_ALL || h.kd[k] > HCIM_DEPTH_ALL || h.dd[k] > h.kd[k])) ok = false;
        if (k > 0 && k < n && (h.dd[k] < h.dd[k - 1] || h.kd[k] < h.kd[k - 1])) ok = false;  // monotone
    }
    if (h.sal_planes < 1 || h.sal_planes > bits_in) ok = false;
    if (h.noise_pairs > HCIM_MAX_NOISE_PAIRS || h.noise_shift > HCIM_MAX_NOISE_SHIFT) ok = false;
    return ok;
}

// Reader check 12(f): the dual section and ternary weights of a dual-path layer (program-format.md "Dual
// section", in the order of hybridcim.program.reader._check_dual): the preset has the second macro type,
// the section rule, reserved bytes 12..15, ratio 0..8, threshold 1..2^bits_in - 1, n_tern_rowblocks =
// ceil(K / tern_rows_active) and n_tern_words = 2 F_t R_t, the weights' section rule, no bits above
// tern_rows_active, no cell pair (1, 1), SRAM precision 0 of the ternary filters. Any failure: LAYER.
static bool hcim_dual_ok(const word_t *prog, const hcim_tables *tab, const hcim_layer *l, uint32_t bits_in,
                         uint32_t nbytes) {
#if HCIM_HAS_TERN
    if (!tab->has_tern) return false;  // a format < 1.2 image cannot name this preset (reader row 6)
    if (!hcim_section_ok(l->off_dual, HCIM_DU_BYTES, nbytes)) return false;
    if (!hcim_zero_bytes(prog, l->off_dual + HCIM_DU_RESERVED, 4)) return false;
    hcim_dualpath d;
    hcim_read_dual(prog, tab, l, &d);
    if (d.ratio > HCIM_RATIO_STEPS || d.theta < 1 || d.theta > (1u << bits_in) - 1u) return false;
    const uint32_t r_t = (l->k + HCIM_TERN_ROWS_ACTIVE - 1) / HCIM_TERN_ROWS_ACTIVE;
    if (d.n_rowblocks != r_t || (uint64_t)d.n_words != 2ull * d.f_t * r_t) return false;
    if (!hcim_section_ok(d.off_words, 8ull * d.n_words, nbytes)) return false;
    word_t bad = 0;
check_tern_words:
    for (uint32_t w = 0; w < d.n_words; w += 2) {  // one cell pair (positive, negative word) per iteration
#pragma HLS LOOP_TRIPCOUNT min = 0 max = 65536
#pragma HLS PIPELINE II = 1
        const word_t pos = prog[(d.off_words >> 3) + w], neg = prog[(d.off_words >> 3) + w + 1];
#if HCIM_TERN_ROWS_ACTIVE < 64
        bad |= (pos | neg) >> HCIM_TERN_ROWS_ACTIVE;  // bits above tern_rows_active
#endif
        bad |= pos & neg;  // (1, 1) is not a ternary weight
    }
    if (bad) return false;
    uint32_t prec_any = 0;
check_tern_precision:
    for (uint32_t f = d.f0; f < l->f; f++) {
#pragma HLS LOOP_TRIPCOUNT min = 0 max = HCIM_MAX_FILTERS
        prec_any |= hcim_rd8(prog, l->off_prec + f);
    }
    return prec_any == 0;
#else
    (void)prog, (void)tab, (void)l, (void)bits_in, (void)nbytes;
    return false;  // no second macro type: a dual-path layer has no macro to run on
#endif
}

// Shapes and formats of one layer against the tensor table; 0 if fine, else an error code.
static uint32_t hcim_check_shapes(const hcim_tables *tab, const hcim_layer *l) {
    const hcim_tensor &ti = tab->t[l->in], &to = tab->t[l->out];
    const bool hybrid = hcim_is_hybrid(tab, l), dual = hcim_is_dual(tab, l);
    if (l->kh < 1 || l->kw < 1 || l->stride < 1 || (l->mode != HCIM_MODE_DIGITAL && !hybrid) || (l->flags != 0 && !dual))
        return HCIM_ERR_LAYER;
    if (hybrid && dual) return HCIM_ERR_LAYER;  // spec 1.2: the dual path runs with digital mode 0 only
    // off_hybrid: 0 in mode 0; off_dual: 0 unless flags bit 0
    if (!l->reserved_ok || (!hybrid && l->off_hybrid != 0) || (!dual && l->off_dual != 0)) return HCIM_ERR_LAYER;
    const bool pool = l->op == HCIM_OP_MAXPOOL || l->op == HCIM_OP_AVGPOOL;
    if (pool) {
        if (ti.sgn || to.sgn) return HCIM_ERR_LAYER;
        // pool records: no filters, rows, groups, row blocks, weights or sections; no residual
        if (l->f || l->k || l->ng || l->r || l->n_words || l->off_prec || l->off_bias || l->off_shift ||
            l->off_rshift || l->off_colmap || l->off_skip || l->off_weights || l->res != HCIM_NO_TENSOR)
            return HCIM_ERR_LAYER;
    }
    if (l->op == HCIM_OP_MAXPOOL &&
        (l->kh != l->kw || l->pad != 0 || l->lo != 0 || l->hi != 0 || l->pool_shift != 0))
        return HCIM_ERR_LAYER;
    if (l->op == HCIM_OP_AVGPOOL) {
        if (l->kh != ti.h || l->kw != ti.w || to.h != 1 || to.w != 1 || to.c != ti.c) return HCIM_ERR_LAYER;
        if (l->stride != 1 || l->pad != 0 || l->lo > 0 || l->hi < 0) return HCIM_ERR_LAYER;
        if (l->pool_shift < -31 || l->pool_shift > 31 || l->res != HCIM_NO_TENSOR) return HCIM_ERR_LAYER;
        return HCIM_OK;
    }
    uint32_t pad = l->op == HCIM_OP_MAXPOOL ? 0 : l->pad;
    if (ti.h + 2 * pad < l->kh || ti.w + 2 * pad < l->kw) return HCIM_ERR_LAYER;
    uint32_t ho = (ti.h + 2 * pad - l->kh) / l->stride + 1, wo = (ti.w + 2 * pad - l->kw) / l->stride + 1;
    if (to.h != ho || to.w != wo) return HCIM_ERR_LAYER;
    if (l->op == HCIM_OP_MAXPOOL) {
        if (to.c != ti.c || l->res != HCIM_NO_TENSOR) return HCIM_ERR_LAYER;
        return HCIM_OK;
    }
    // conv / fc
    if (ti.sgn || ti.bits > HCIM_MAX_IN_BITS || to.c != l->f || l->f < 1 || l->pool_shift != 0) return HCIM_ERR_LAYER;
    if (l->op == HCIM_OP_FC && (l->kh != ti.h || l->kw != ti.w || l->stride != 1 || l->pad != 0)) return HCIM_ERR_LAYER;
    if (l->k != l->kh * l->kw * ti.c || l->r != (l->k + HCIM_ROWS_ACTIVE - 1) / HCIM_ROWS_ACTIVE) return HCIM_ERR_LAYER;
    if (l->res != HCIM_NO_TENSOR) {
        const hcim_tensor &tr = tab->t[l->res];
        if (tr.c != to.c || tr.h != to.h || tr.w != to.w) return HCIM_ERR_LAYER;
    }
    if (l->f > HCIM_MAX_FILTERS || l->ng > HCIM_MAX_GROUPS || l->r > HCIM_MAX_ROWBLOCKS) return HCIM_ERR_LIMIT;
    uint32_t cw = (ti.c + 63) / 64;
    if (cw > HCIM_MAX_CWORDS || (uint64_t)ti.h * ti.w * ti.bits * cw > HCIM_MAX_PACK_WORDS) return HCIM_ERR_LIMIT;
    return HCIM_OK;
}

// Sections, per-filter parameters, column map and skip index of a conv/fc layer.
static uint32_t hcim_check_cim_sections(const word_t *prog, const hcim_layer *l, uint32_t nbytes) {
    const uint32_t G = HCIM_GROUP_WIDTH;
    if (!hcim_section_ok(l->off_prec, l->f, nbytes) || !hcim_section_ok(l->off_bias, 4ull * l->f, nbytes) ||
        !hcim_section_ok(l->off_shift, l->f, nbytes) || !hcim_section_ok(l->off_rshift, l->f, nbytes) ||
        !hcim_section_ok(l->off_colmap, 4ull * l->ng * G, nbytes) ||
        !hcim_section_ok(l->off_skip, (l->ng * l->r + 7) / 8, nbytes) ||
        !hcim_section_ok(l->off_weights, 8ull * l->n_words, nbytes))
        return HCIM_ERR_LAYER;
check_filters:
    for (uint32_t f = 0; f < l->f; f++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = HCIM_MAX_FILTERS
        uint32_t p = hcim_rd8(prog, l->off_prec + f);
        int32_t s = hcim_rdi8(prog, l->off_shift + f), rs = hcim_rdi8(prog, l->off_rshift + f);
        if (p > 8 || (p && !((HCIM_PRECISION_MASK >> (p - 1)) & 1u))) return HCIM_ERR_LAYER;
        if (s < -31 || s > 31 || rs < 0 || rs > 31) return HCIM_ERR_LAYER;
    }
check_colmap:
    for (uint32_t e = 0; e < l->ng * G; e++) {
#pragma HLS LOOP_TRIPCOUNT min = 8 max = 4096
        uint32_t cm = hcim_rd32(prog, l->off_colmap + 4 * e);
        if (cm >> (HCIM_CM_USED_SHIFT + 1)) return HCIM_ERR_LAYER;  // bits 25..31 are 0
        if (!((cm >> HCIM_CM_USED_SHIFT) & 1u)) {
            if (cm != 0) return HCIM_ERR_LAYER;  // an unused column's entry is 0
            continue;
        }
        uint32_t f = cm & 0xFFFFu, j = (cm >> HCIM_CM_PLANE_SHIFT) & 0xFFu;
        if (f >= l->f || j >= hcim_rd8(prog, l->off_prec + f)) return HCIM_ERR_LAYER;
    }
    uint32_t present = 0;
check_skip:
    for (uint32_t u = 0; u < l->ng * l->r; u++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 65536
        present += (hcim_rd8(prog, l->off_skip + (u >> 3)) >> (u & 7u)) & 1u;
    }
    if ((uint64_t)present * G != l->n_words) return HCIM_ERR_LAYER;
#if HCIM_ROWS_ACTIVE < 64
    word_t high = 0;
check_word_bits:
    for (uint32_t w = 0; w < l->n_words; w++) {  // bits above rows_active are 0
#pragma HLS LOOP_TRIPCOUNT min = 8 max = 65536
#pragma HLS PIPELINE II = 1
        high |= prog[(l->off_weights >> 3) + w] >> HCIM_ROWS_ACTIVE;
    }
    if (high) return HCIM_ERR_LAYER;
#endif
    return HCIM_OK;
}

uint32_t hcim_load_tables(const word_t *prog, hcim_tables *tab) {
    uint32_t nbytes = hcim_rd32(prog, HCIM_H_IMAGE_BYTES);
    tab->image_bytes = nbytes;
    tab->version_minor = hcim_rd16(prog, HCIM_H_VERSION_MINOR);
    tab->n_tensors = hcim_rd16(prog, HCIM_H_N_TENSORS);
    tab->n_layers = hcim_rd16(prog, HCIM_H_N_LAYERS);
    tab->input = hcim_rd16(prog, HCIM_H_INPUT_TENSOR);
    tab->output = hcim_rd16(prog, HCIM_H_OUTPUT_TENSOR);
    // row 7: header bytes 61..63 are 0 before format 1.2, else exactly this preset's second macro type
    const uint32_t tern_hdr = hcim_rd8(prog, HCIM_H_TERN_GEOMETRY) | hcim_rd8(prog, HCIM_H_TERN_GEOMETRY + 1) << 8 |
                              hcim_rd8(prog, HCIM_H_TERN_GEOMETRY + 2) << 16;
    if (tern_hdr != (tab->version_minor < HCIM_FORMAT_MINOR_DUAL ? 0u : (uint32_t)HCIM_TERN_HEADER))
        HCIM_FAIL(HCIM_ERR_LAYER, 0xFFFF);
    tab->has_tern = HCIM_HAS_TERN && tab->version_minor >= HCIM_FORMAT_MINOR_DUAL;
    if (tab->n_tensors > HCIM_MAX_TENSORS || tab->n_layers > HCIM_MAX_LAYERS) HCIM_FAIL(HCIM_ERR_LIMIT, 0xFFFF);
    uint32_t toff = hcim_rd32(prog, HCIM_H_TENSOR_TABLE), loff = hcim_rd32(prog, HCIM_H_LAYER_TABLE);
    if (tab->n_tensors < 2 || tab->n_layers < 1 || !hcim_section_ok(toff, 16ull * tab->n_tensors, nbytes))
        HCIM_FAIL(HCIM_ERR_TENSOR, 0xFFFF);
    if (!hcim_section_ok(loff, 96ull * tab->n_layers, nbytes)) HCIM_FAIL(HCIM_ERR_LAYER, 0xFFFF);
    uint64_t offset = 0;
read_tensors:
    for (uint32_t i = 0; i < tab->n_tensors; i++) {
#pragma HLS LOOP_TRIPCOUNT min = 2 max = HCIM_MAX_TENSORS
        uint32_t b = toff + i * HCIM_TENSOR_BYTES;
        hcim_tensor &t = tab->t[i];
        t.c = hcim_rd16(prog, b + HCIM_T_CHANNELS);
        t.h = hcim_rd16(prog, b + HCIM_T_HEIGHT);
        t.w = hcim_rd16(prog, b + HCIM_T_WIDTH);
        t.bits = hcim_rd8(prog, b + HCIM_T_BITS);
        t.sgn = hcim_rd8(prog, b + HCIM_T_SIGNED);
        // shape >= 1, signed byte 0/1, 1..32 bits signed and 1..31 unsigned (int32 datapath), reserved 0
        if (!t.c || !t.h || !t.w || t.bits < 1 || t.sgn > 1 || t.bits > (t.sgn ? 32u : 31u) ||
            !hcim_zero_bytes(prog, b + HCIM_T_RESERVED, HCIM_T_RESERVED_BYTES))
            HCIM_FAIL(HCIM_ERR_TENSOR, i);
        uint64_t size = (uint64_t)t.c * t.h * t.w;
        offset += size;
        if (offset > 0x7FFFFFFFull) HCIM_FAIL(HCIM_ERR_LIMIT, 0xFFFF);
        t.size = (uint32_t)size;
        t.off = (uint32_t)(offset - size);
        t.cw = (t.c + 63) / 64;
        t.aoff = 0;
    }
    tab->scratch_per_image = (uint32_t)offset;
    if (tab->input >= tab->n_tensors || tab->output >= tab->n_tensors || tab->input == tab->output)
        HCIM_FAIL(HCIM_ERR_TENSOR, 0xFFFF);
    const hcim_tensor &tin = tab->t[tab->input];
    if (tin.sgn || tin.bits > 8) HCIM_FAIL(HCIM_ERR_TENSOR, tab->input);
    bool produced[HCIM_MAX_TENSORS];
init_produced:
    for (uint32_t i = 0; i < HCIM_MAX_TENSORS; i++) produced[i] = i == tab->input;
check_layers:
    for (uint32_t i = 0; i < tab->n_layers; i++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = HCIM_MAX_LAYERS
        hcim_layer l;
        hcim_read_layer(prog, tab, i, &l);
        if (l.op < HCIM_OP_CONV || l.op > HCIM_OP_AVGPOOL) HCIM_FAIL(HCIM_ERR_LAYER, i);
        if (l.in >= tab->n_tensors || !produced[l.in] || l.out >= tab->n_tensors || produced[l.out])
            HCIM_FAIL(HCIM_ERR_LAYER, i);
        if (l.res != HCIM_NO_TENSOR && (l.res >= tab->n_tensors || !produced[l.res])) HCIM_FAIL(HCIM_ERR_LAYER, i);
        uint32_t rc = hcim_check_shapes(tab, &l);
        if (rc == HCIM_OK && (l.op == HCIM_OP_CONV || l.op == HCIM_OP_FC)) rc = hcim_check_cim_sections(prog, &l, nbytes);
        if (rc == HCIM_OK && hcim_is_hybrid(tab, &l) && !hcim_hybrid_ok(prog, &l, tab->t[l.in].bits, nbytes))
            rc = HCIM_ERR_HYBRID;
        if (rc == HCIM_OK && hcim_is_dual(tab, &l) && !hcim_dual_ok(prog, tab, &l, tab->t[l.in].bits, nbytes))
            rc = HCIM_ERR_LAYER;
        if (rc != HCIM_OK) HCIM_FAIL(rc, i);
        produced[l.out] = true;
    }
    if (!produced[tab->output]) HCIM_FAIL(HCIM_ERR_TENSOR, tab->output);
    return HCIM_OK;
}

// Lifetimes in layer steps: a layer's output lives from its layer to the last layer reading it (as
// input or residual), the program input from layer 0, the program output to the end (write-out).
// Placement in layer order, each tensor at the lowest word where it overlaps no placed tensor whose
// lifetime meets its own (so a layer's output never overlaps its input or residual).
void hcim_plan_arena(const word_t *prog, hcim_tables *tab) {
    uint16_t born[HCIM_MAX_TENSORS], dies[HCIM_MAX_TENSORS];
    uint16_t order[HCIM_MAX_TENSORS];  // placement order: the program input, then the layers' outputs
    uint32_t words[HCIM_MAX_TENSORS];
    uint32_t n = 0;
    order[n++] = (uint16_t)tab->input;
    born[tab->input] = dies[tab->input] = 0;
arena_lifetimes:
    for (uint32_t i = 0; i < tab->n_layers; i++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = HCIM_MAX_LAYERS
        hcim_layer l;
        hcim_read_layer(prog, tab, i, &l);
        order[n++] = (uint16_t)l.out;
        born[l.out] = dies[l.out] = (uint16_t)i;
        dies[l.in] = (uint16_t)i;  // layers run in order: the latest reader is the last
        if (l.res != HCIM_NO_TENSOR) dies[l.res] = (uint16_t)i;
    }
    dies[tab->output] = (uint16_t)tab->n_layers;
    tab->arena_ok = 1;
arena_place:
    for (uint32_t k = 0; k < n; k++) {
#pragma HLS LOOP_TRIPCOUNT min = 2 max = HCIM_MAX_TENSORS
        hcim_tensor &t = tab->t[order[k]];
        const uint64_t need = (uint64_t)t.h * t.w * t.bits * t.cw;
        uint64_t at = 0;
        bool moved = true;
    arena_fit:
        while (moved) {  // raise the candidate past every colliding placed tensor until none collides
#pragma HLS LOOP_TRIPCOUNT min = 1 max = HCIM_MAX_TENSORS
            moved = false;
            for (uint32_t j = 0; j < k; j++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = HCIM_MAX_TENSORS
                const uint32_t o = order[j];
                if (born[o] > dies[order[k]] || born[order[k]] > dies[o]) continue;  // lifetimes apart
                const uint64_t end = (uint64_t)tab->t[o].aoff + words[j];
                if (at < end && tab->t[o].aoff < at + need) {
                    at = end;
                    moved = true;
                }
            }
        }
        words[k] = (uint32_t)(need < HCIM_MAX_PACK_WORDS ? need : HCIM_MAX_PACK_WORDS);
        if (at + need > HCIM_MAX_PACK_WORDS) {
            tab->arena_ok = 0;
            at = 0;
        }
        t.aoff = (uint32_t)at;
    }
}
