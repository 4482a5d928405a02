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
                       uint32_t flags, uint64_t *counters, uint32_t counters_words) {
    return hybridcim_accel(prog, prog_words, images, image_words, n_images, out, out_words, scratch, scratch_words,
                           flags, counters, counters_words);
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
