// C-simulation entry points: the same kernel, compiled with g++ into a shared library that
// Python loads with ctypes (hybridcim.runtime.csim_device). The buffers are exactly the DDR
// buffers of the board (docs/program-format.md "Runtime buffers"); only the transport differs.
// Not thread-safe (the kernel keeps its on-chip memories in static arrays, as the IP does):
// the Python side serializes calls.
#include "hcim_internal.h"

extern "C" {

// Run the top function; returns its status word (code | detail << 16).
uint32_t hcim_csim_run(const uint64_t *prog, uint32_t prog_words, const uint64_t *images, uint32_t image_words,
                       uint32_t n_images, int32_t *out, uint32_t out_words, int32_t *scratch, uint32_t scratch_words,
                       uint32_t flags, uint64_t *counters, uint32_t counters_words, uint32_t image_base) {
    return hybridcim_accel(prog, prog_words, images, image_words, n_images, out, out_words, scratch, scratch_words,
                           flags, counters, counters_words, image_base);
}

// ---- loop profile of the last call (hcim_loops.h; the library is built with HCIM_CYCLE_COUNT) ----
#define HCIM_LOOP_NAME(id, name, ii, depth) name,
#define HCIM_LOOP_II(id, name, ii, depth) ii,
#define HCIM_LOOP_DEPTH(id, name, ii, depth) depth,
static const char *const k_loop_names[] = {HCIM_LOOP_TABLE(HCIM_LOOP_NAME)};
static const uint32_t k_loop_ii[] = {HCIM_LOOP_TABLE(HCIM_LOOP_II)};
static const uint32_t k_loop_depth[] = {HCIM_LOOP_TABLE(HCIM_LOOP_DEPTH)};

uint32_t hcim_csim_n_loops(void) { return HCIM_N_LOOPS; }
const char *hcim_csim_loop_name(uint32_t id) { return id < HCIM_N_LOOPS ? k_loop_names[id] : ""; }
uint32_t hcim_csim_loop_ii(uint32_t id) { return id < HCIM_N_LOOPS ? k_loop_ii[id] : 0; }
uint32_t hcim_csim_loop_depth(uint32_t id) { return id < HCIM_N_LOOPS ? k_loop_depth[id] : 0; }

// Per layer of the last call: loop entries and iterations (HCIM_N_LOOPS each); 0 ok, -1 bad layer
// (or a library built without HCIM_CYCLE_COUNT).
int hcim_csim_loop_stats(uint32_t layer, uint64_t *entries, uint64_t *iters) {
#ifdef HCIM_CYCLE_COUNT
    if (layer >= HCIM_MAX_LAYERS) return -1;
    for (uint32_t k = 0; k < HCIM_N_LOOPS; k++) {
        entries[k] = g_hcim_profile.entries[layer][k];
        iters[k] = g_hcim_profile.iters[layer][k];
    }
    return 0;
#else
    (void)layer, (void)entries, (void)iters;
    return -1;
#endif
}

// Per layer of the last call: AXI bursts and bytes, [read, write] each; 0 ok, -1 bad layer.
int hcim_csim_burst_stats(uint32_t layer, uint64_t *bursts, uint64_t *bytes) {
#ifdef HCIM_CYCLE_COUNT
    if (layer >= HCIM_MAX_LAYERS) return -1;
    for (uint32_t d = 0; d < 2; d++) {
        bursts[d] = g_hcim_profile.bursts[layer][d];
        bytes[d] = g_hcim_profile.bytes[layer][d];
    }
    return 0;
#else
    (void)layer, (void)bursts, (void)bytes;
    return -1;
#endif
}

// Check a program image and report the buffer sizes it needs: int32 scratch words per image
// (S) and int32 output words per image. Returns the kernel's status word.
uint32_t hcim_csim_layout(const uint64_t *prog, uint32_t prog_words, uint32_t *scratch_per_image,
                          uint32_t *out_per_image) {
    static hcim_tables tab;
    uint32_t image_bytes = 0;
    uint32_t rc = hcim_check_header(prog, prog_words, &image_bytes);
    if (rc == HCIM_OK) rc = hcim_load_tables(prog, &tab);
    if (rc != HCIM_OK) return rc;
    *scratch_per_image = tab.scratch_per_image;
    *out_per_image = tab.t[tab.output].size;
    return HCIM_OK;
}

// Compile-time constants of this build, in this order (returns how many were written).
uint32_t hcim_csim_info(uint32_t *buf, uint32_t n) {
    const uint32_t v[] = {HCIM_KERNEL_VERSION_MAJOR, HCIM_KERNEL_VERSION_MINOR, HCIM_FINGERPRINT,
                          HCIM_ROWS, HCIM_COLS, HCIM_ROWS_ACTIVE, HCIM_GROUP_WIDTH, HCIM_N_MACROS,
                          HCIM_ACC_BITS, HCIM_ADC_BITS, HCIM_PRECISION_MASK, HCIM_MAX_TENSORS,
                          HCIM_MAX_LAYERS, HCIM_MAX_FILTERS, HCIM_MAX_GROUPS, HCIM_MAX_ROWBLOCKS,
                          HCIM_MAX_CWORDS, HCIM_MAX_PACK_WORDS};
    uint32_t k = 0;
    for (; k < n && k < sizeof(v) / sizeof(v[0]); k++) buf[k] = v[k];
    return k;
}

const char *hcim_csim_preset_name(void) { return HCIM_PRESET_NAME; }

}  // extern "C"
