// Top function of the hybridcim accelerator (Vitis HLS): see hybridcim_accel.h for the
// interface and docs/program-format.md "Runtime buffers" for the DDR layout and registers.
//
// One call: check the program image (magic, version, size, CRC-32, preset), parse and check
// its tables against the kernel's capacity, check the buffer sizes, then for every image:
// bring the uint8 NCHW pixels in, run the layers in program order, copy the output tensor to `out`.
// On-chip mode (the usual one): every tensor lives as bit planes in the on-chip activation buffer
// (a place for each over its lifetime, planned once per call), so DDR sees the images, the
// program's tables and weights, the outputs and, for layers of several rounds, partial sums.
// DDR mode (trace mode, or a program whose live tensors or image do not fit on chip): every tensor
// in its scratch slot as int32 NHWC, the layer input packed into bit planes per layer.
// The activity counters of every layer are kept on chip during the call and written to
// `counters` at its end when asked for.
#include "hcim_internal.h"

static hcim_tables g_tab;
static cnt_t g_cnt[HCIM_MAX_LAYERS][HCIM_N_COUNTERS];  // performance-counter block (one row a layer)

#ifdef HCIM_CYCLE_COUNT
hcim_profile g_hcim_profile;
void hcim_profile_reset(void) {
    static const hcim_profile zero = {};
    g_hcim_profile = zero;
}
#endif

// Image n's pixels (NCHW bytes in u64 words) -> NHWC int32 input slot; checks the input bit width.
static bool hcim_load_image(const word_t *img, const hcim_tensor &t, acc_t *x) {
    const uint32_t maxv = (1u << t.bits) - 1u, hw = t.h * t.w;
    bool ok = true;
    HCIM_LOOP_ENTER(HCIM_LP_LOAD_PIXELS);
    HCIM_LOOP_ITERS(HCIM_LP_LOAD_PIXELS, t.size);
    HCIM_BURST(0, (uint64_t)(t.size + 7) / 8 * 8);
    HCIM_BURST(1, (uint64_t)t.size * 4);
    uint32_t c = 0, yx = 0;  // running channel and pixel of byte k (NCHW): no divide
load_pixels:
    for (uint32_t k = 0; k < t.size; k++) {
#pragma HLS LOOP_TRIPCOUNT min = 3072 max = 3072
#pragma HLS PIPELINE II = 1
        const pixel_t v = (pixel_t)(uint32_t)((img[k >> 3] >> ((k & 7u) * 8u)) & 0xFFu);
        ok &= (uint32_t)v <= maxv;
        x[yx * t.c + c] = (acc_t)(uint32_t)v;
        if (++yx == hw) {
            yx = 0;
            c++;
        }
    }
    return ok;
}

uint32_t hybridcim_accel(const word_t *prog, uint32_t prog_words, const word_t *images, uint32_t image_words,
                         uint32_t n_images, acc_t *out, uint32_t out_words, acc_t *scratch, uint32_t scratch_words,
                         uint32_t flags, cnt_t *counters, uint32_t counters_words, uint32_t image_base) {
#pragma HLS INTERFACE m_axi port = prog offset = slave bundle = gmem0 depth = 65536 max_read_burst_length = 64
#pragma HLS INTERFACE m_axi port = images offset = slave bundle = gmem1 depth = 98304
#pragma HLS INTERFACE m_axi port = out offset = slave bundle = gmem2 depth = 2560
#pragma HLS INTERFACE m_axi port = scratch offset = slave bundle = gmem3 depth = 262144
    // counters: depth = HCIM_CNT_HEADER_WORDS + HCIM_MAX_LAYERS * HCIM_N_COUNTERS (cosim buffer size)
#pragma HLS INTERFACE m_axi port = counters offset = slave bundle = gmem4 depth = 4097
#pragma HLS INTERFACE s_axilite port = prog bundle = control
#pragma HLS INTERFACE s_axilite port = images bundle = control
#pragma HLS INTERFACE s_axilite port = out bundle = control
#pragma HLS INTERFACE s_axilite port = scratch bundle = control
#pragma HLS INTERFACE s_axilite port = prog_words bundle = control
#pragma HLS INTERFACE s_axilite port = image_words bundle = control
#pragma HLS INTERFACE s_axilite port = n_images bundle = control
#pragma HLS INTERFACE s_axilite port = out_words bundle = control
#pragma HLS INTERFACE s_axilite port = scratch_words bundle = control
#pragma HLS INTERFACE s_axilite port = flags bundle = control
#pragma HLS INTERFACE s_axilite port = counters bundle = control
#pragma HLS INTERFACE s_axilite port = counters_words bundle = control
#pragma HLS INTERFACE s_axilite port = image_base bundle = control
#pragma HLS INTERFACE s_axilite port = return bundle = control
#pragma HLS ARRAY_PARTITION variable = g_cnt dim = 2 complete
#pragma HLS BIND_STORAGE variable = g_cnt type = ram_2p impl = lutram
    if (!prog || !images || !out || !scratch) return HCIM_ERR_ARGS;
    uint32_t image_bytes = 0;
    uint32_t rc = hcim_check_header(prog, prog_words, &image_bytes);
    if (rc != HCIM_OK) return rc;
    rc = hcim_load_tables(prog, &g_tab);
    if (rc != HCIM_OK) return rc;
    const hcim_tensor &tin = g_tab.t[g_tab.input], &tout = g_tab.t[g_tab.output];
    const uint32_t per_image = g_tab.scratch_per_image;
    const bool trace = (flags & HCIM_FLAG_TRACE) != 0;
    if ((uint64_t)scratch_words < (uint64_t)per_image * (trace && n_images ? n_images : 1u)) return HCIM_ERR_SCRATCH;
    const uint32_t img_words = (tin.size + 7) / 8;
    if ((uint64_t)out_words < (uint64_t)tout.size * n_images) return HCIM_ERR_ARGS;
    if ((uint64_t)image_words < (uint64_t)img_words * n_images) return HCIM_ERR_ARGS;
    const bool count = (flags & HCIM_FLAG_COUNTERS) != 0;
    if (count && (!counters || (uint64_t)counters_words <
                                   HCIM_CNT_HEADER_WORDS + (uint64_t)g_tab.n_layers * HCIM_N_COUNTERS))
        return HCIM_ERR_ARGS;
    if (flags & HCIM_FLAG_VALIDATE_ONLY) return HCIM_OK;
    // On-chip mode: the activations stay in the activation buffer as bit planes between layers; only
    // the images come in and the outputs go out. Otherwise (trace mode, or a program whose live
    // tensors or image do not fit) DDR mode: every tensor in scratch as int32.
    hcim_plan_arena(prog, &g_tab);
    g_tab.onchip = g_tab.arena_ok && !trace && img_words <= HCIM_STAGE_WORDS;
    const bool onchip = g_tab.onchip != 0;
    HCIM_PROFILE_RESET();
clear_counters:
    for (uint32_t i = 0; i < g_tab.n_layers; i++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = HCIM_MAX_LAYERS
        for (uint32_t k = 0; k < HCIM_N_COUNTERS; k++) g_cnt[i][k] = 0;
    }
images_loop:
    for (uint32_t n = 0; n < n_images; n++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 256
        acc_t *s = scratch + (trace ? (uint64_t)n * per_image : 0);
        HCIM_PROFILE_LAYER(0);
        const word_t *img = images + (uint64_t)n * img_words;
        if (!(onchip ? hcim_load_image_planes(img, tin, s) : hcim_load_image(img, tin, s + tin.off)))
            return HCIM_ERR_INPUT | (n << HCIM_DETAIL_SHIFT);
    layers_loop:
        for (uint32_t i = 0; i < g_tab.n_layers; i++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = HCIM_MAX_LAYERS
            hcim_layer l;
            hcim_read_layer(prog, &g_tab, i, &l);
            HCIM_PROFILE_LAYER(i);
            HCIM_BURST(0, HCIM_LAYER_BYTES);
            cnt_t lc[HCIM_N_COUNTERS];  // this layer's activity on this image
#pragma HLS ARRAY_PARTITION variable = lc complete
            for (uint32_t k = 0; k < HCIM_N_COUNTERS; k++) lc[k] = 0;
            lc[HCIM_C_IMAGES] = 1;
            if (l.op == HCIM_OP_CONV || l.op == HCIM_OP_FC) {
                const hcim_ctx ctx = {i, image_base + n};  // global image index (wraps like a u32 register)
                hcim_cim_layer(prog, &g_tab, &l, ctx, s, lc);
            } else {  // pools: input in, output out (packed at their bit widths); avgpool requantizes each channel
                const hcim_tensor &pi = g_tab.t[l.in], &po = g_tab.t[l.out];
                if (l.op == HCIM_OP_MAXPOOL) {
                    hcim_maxpool_layer(&g_tab, &l, s);
                } else {
                    hcim_avgpool_layer(&g_tab, &l, s);
                    lc[HCIM_C_REQUANT_OPS] = po.c;
                }
                lc[HCIM_C_DRAM_BYTES] = hcim_packed_bytes(pi.size, pi.bits) + hcim_packed_bytes(po.size, po.bits);
            }
            for (uint32_t k = 0; k < HCIM_N_COUNTERS; k++) {
#pragma HLS UNROLL
                g_cnt[i][k] += lc[k];
            }
        }
        HCIM_LOOP_ENTER(HCIM_LP_WRITE_OUT);
        HCIM_LOOP_ITERS(HCIM_LP_WRITE_OUT, tout.size);
        if (!onchip) HCIM_BURST(0, (uint64_t)tout.size * 4);
        HCIM_BURST(1, (uint64_t)tout.size * 4);
        const uint32_t out_pix_words = tout.bits * tout.cw;
    write_out:
        for (uint32_t k = 0, c = 0, a = tout.aoff; k < tout.size; k++) {
#pragma HLS LOOP_TRIPCOUNT min = 10 max = 1000
#pragma HLS PIPELINE II = 1
            out[(uint64_t)n * tout.size + k] = onchip ? hcim_act_value(tout, a, c) : s[tout.off + k];
            if (++c == tout.c) {
                c = 0;
                a += out_pix_words;
            }
        }
    }
    if (count) {
        counters[0] = (cnt_t)HCIM_CNT_MAGIC | (cnt_t)HCIM_CNT_LAYOUT << 32 | (cnt_t)HCIM_N_COUNTERS << 40 |
                      (cnt_t)g_tab.n_layers << 48;
    write_counters:
        for (uint32_t i = 0; i < g_tab.n_layers; i++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = HCIM_MAX_LAYERS
            for (uint32_t k = 0; k < HCIM_N_COUNTERS; k++)
                counters[HCIM_CNT_HEADER_WORDS + i * HCIM_N_COUNTERS + k] = g_cnt[i][k];
        }
    }
    return HCIM_OK;
}
