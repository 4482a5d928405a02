// Standalone driver of the HLS kernel for sanitizer runs (g++ -fsanitize=address,undefined).
//
//   hcim_fuzz_driver IMAGE.cim [IMAGE.cim ...]
//
// For each program image: copy it into a heap buffer of exactly image-size words, ask the
// kernel for its verdict and buffer sizes (hcim_csim_layout); if it accepts, run two images
// of deterministic in-range pixels (TRACE and COUNTERS on) with every buffer sized exactly,
// so any read or write past a buffer is an AddressSanitizer report; then the same program
// once more without TRACE. Prints one line per image: "<file> <layout status> <run status>".
// Exit status 0 unless a file cannot be read (sanitizer reports abort with their own status).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "hcim_internal.h"

extern "C" uint32_t hcim_csim_layout(const uint64_t *prog, uint32_t prog_words, uint32_t *scratch_per_image,
                                     uint32_t *out_per_image);

#ifndef HCIM_CNT_HEADER_WORDS
#define HCIM_CNT_HEADER_WORDS 0
#endif

static bool read_file(const char *path, std::vector<uint8_t> &data) {
    FILE *f = std::fopen(path, "rb");
    if (!f) return false;
    uint8_t buf[65536];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) data.insert(data.end(), buf, buf + n);
    std::fclose(f);
    return true;
}

static uint32_t run(const uint64_t *prog, uint32_t words, uint32_t per_image, uint32_t out_per_image, bool trace) {
    const uint32_t n = 2;
    uint32_t toff = hcim_rd32(prog, HCIM_H_TENSOR_TABLE) + HCIM_TENSOR_BYTES * hcim_rd16(prog, HCIM_H_INPUT_TENSOR);
    uint32_t c = hcim_rd16(prog, toff + HCIM_T_CHANNELS), h = hcim_rd16(prog, toff + HCIM_T_HEIGHT),
             w = hcim_rd16(prog, toff + HCIM_T_WIDTH), bits = hcim_rd8(prog, toff + HCIM_T_BITS);
    uint64_t pixels = (uint64_t)c * h * w, img_words = (pixels + 7) / 8;
    std::vector<uint64_t> images(img_words * n);
    uint8_t *px = reinterpret_cast<uint8_t *>(images.data());
    uint32_t seed = 12345;
    for (uint64_t i = 0; i < n; i++)
        for (uint64_t p = 0; p < pixels; p++) {
            seed = seed * 1103515245u + 12345u;
            px[i * img_words * 8 + p] = (uint8_t)((seed >> 16) & ((1u << bits) - 1u));
        }
    std::vector<int32_t> out((size_t)out_per_image * n), scratch((size_t)per_image * (trace ? n : 1));
    uint32_t n_layers = hcim_rd16(prog, HCIM_H_N_LAYERS);
    std::vector<uint64_t> counters(HCIM_CNT_HEADER_WORDS + (size_t)n_layers * HCIM_N_COUNTERS);
    uint32_t flags = HCIM_FLAG_COUNTERS | (trace ? HCIM_FLAG_TRACE : 0u);
    return hybridcim_accel(prog, words, images.data(), (uint32_t)images.size(), n, out.data(), (uint32_t)out.size(),
                           scratch.data(), (uint32_t)scratch.size(), flags, counters.data(),
                           (uint32_t)counters.size(), 0u);
}

int main(int argc, char **argv) {
    for (int a = 1; a < argc; a++) {
        std::vector<uint8_t> data;
        if (!read_file(argv[a], data)) {
            std::fprintf(stderr, "cannot read %s\n", argv[a]);
            return 2;
        }
        uint32_t words = (uint32_t)((data.size() + 7) / 8);
        uint64_t *prog = static_cast<uint64_t *>(std::calloc(words ? words : 1, sizeof(uint64_t)));
        std::memcpy(prog, data.data(), data.size());
        uint32_t per_image = 0, out_per_image = 0;
        uint32_t rc = hcim_csim_layout(prog, words, &per_image, &out_per_image), rc_run = 0xFFFFFFFFu;
        // run only what fits a test machine: <= 2^24 scratch words per image
        if (rc == HCIM_OK && per_image <= (1u << 24)) {
            rc_run = run(prog, words, per_image, out_per_image, true);
            uint32_t again = run(prog, words, per_image, out_per_image, false);
            if (again != rc_run) std::printf("MISMATCH trace/no-trace %u %u\n", rc_run, again);
        }
        std::printf("%s %u %u\n", argv[a], rc, rc_run);
        std::free(prog);
    }
    return 0;
}
