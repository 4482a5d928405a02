// Testbench of the hybridcim accelerator (Vitis HLS csim/cosim, or g++: `make -C hls tb`).
//
//   hybridcim_accel_tb PROGRAM.cim IMAGES.u8 EXPECTED.i32 [COUNTERS.u64 [IMAGE_BASE]]
//
// PROGRAM.cim: the program image; IMAGES.u8: n uint8 NCHW images back to back (raw bytes);
// EXPECTED.i32: n x (output size) little-endian int32 (the golden emulator's outputs);
// COUNTERS.u64 (optional): the emulator's activity counters of the n images as the kernel's
// counters buffer: the header word, then n_layers x HCIM_N_COUNTERS little-endian u64
// (architecture.md §7, §9.7). IMAGE_BASE (default 0): the global index of the first image (the
// analog noise of hybrid layers depends on it).
// Write them with `python -m hybridcim.runtime.tb_files`. main returns 0 only when every
// output (and counter) equals the expectation exactly; 1 on any mismatch, 2 on a kernel
// error, 3 on a file or size problem.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "../hybridcim_accel.h"

static bool read_file(const char *path, std::vector<unsigned char> &buf) {
    FILE *f = std::fopen(path, "rb");
    if (!f) return false;
    unsigned char tmp[65536];
    size_t n;
    while ((n = std::fread(tmp, 1, sizeof tmp, f)) > 0) buf.insert(buf.end(), tmp, tmp + n);
    std::fclose(f);
    return true;
}

int main(int argc, char **argv) {
    const char *pp = argc > 1 ? argv[1] : "tb/data/program.cim";
    const char *ip = argc > 2 ? argv[2] : "tb/data/images.u8";
    const char *ep = argc > 3 ? argv[3] : "tb/data/expected.i32";
    const char *cp = argc > 4 ? argv[4] : nullptr;
    std::vector<unsigned char> prog_b, img_b, exp_b, cnt_b;
    if (!read_file(pp, prog_b) || !read_file(ip, img_b) || !read_file(ep, exp_b) || (cp && !read_file(cp, cnt_b))) {
        std::fprintf(stderr, "tb: cannot read %s / %s / %s%s%s\n", pp, ip, ep, cp ? " / " : "", cp ? cp : "");
        return 3;
    }
    if (prog_b.size() < 64 || prog_b.size() % 8) {
        std::fprintf(stderr, "tb: program image of %zu bytes is not a multiple of 8 bytes >= 64\n", prog_b.size());
        return 3;
    }
    std::vector<word_t> prog(prog_b.size() / 8);
    std::memcpy(prog.data(), prog_b.data(), prog_b.size());
    // sizes from the program: input C*H*W bytes per image, output / scratch words per image
    const uint32_t t_off = (uint32_t)(prog[HCIM_H_TENSOR_TABLE / 8] >> 32);
    const uint32_t n_t = (uint32_t)(prog[HCIM_H_N_TENSORS / 8] >> 32) & 0xFFFF;
    const uint32_t t_in = (uint32_t)prog[HCIM_H_INPUT_TENSOR / 8] & 0xFFFF;
    const uint32_t t_out = (uint32_t)(prog[HCIM_H_OUTPUT_TENSOR / 8] >> 16) & 0xFFFF;
    const uint32_t n_l = (uint32_t)(prog[HCIM_H_N_LAYERS / 8] >> 48) & 0xFFFF;
    if (t_off + 16ull * n_t > prog_b.size() || t_in >= n_t || t_out >= n_t) {
        std::fprintf(stderr, "tb: malformed tensor table\n");
        return 3;
    }
    uint64_t scratch_per_image = 0, in_size = 0, out_size = 0;
    for (uint32_t t = 0; t < n_t; t++) {
        const unsigned char *r = &prog_b[t_off + 16 * t];
        uint64_t size = (uint64_t)(r[0] | r[1] << 8) * (r[2] | r[3] << 8) * (r[4] | r[5] << 8);
        scratch_per_image += size;
        if (t == t_in) in_size = size;
        if (t == t_out) out_size = size;
    }
    if (!in_size || img_b.size() % in_size) {
        std::fprintf(stderr, "tb: %zu image bytes is not a multiple of the %llu-byte input\n", img_b.size(),
                     (unsigned long long)in_size);
        return 3;
    }
    const uint32_t n = (uint32_t)(img_b.size() / in_size);
    if (exp_b.size() != 4ull * n * out_size) {
        std::fprintf(stderr, "tb: expected file has %zu bytes, want %llu (%u images x %llu int32)\n", exp_b.size(),
                     (unsigned long long)(4ull * n * out_size), n, (unsigned long long)out_size);
        return 3;
    }
    const uint64_t img_words = (in_size + 7) / 8;
    std::vector<word_t> images(img_words * n, 0);
    for (uint32_t k = 0; k < n; k++) std::memcpy(&images[k * img_words], &img_b[k * in_size], in_size);
    const uint64_t n_cnt = HCIM_CNT_HEADER_WORDS + (uint64_t)n_l * HCIM_N_COUNTERS;
    if (cp && cnt_b.size() != 8ull * n_cnt) {
        std::fprintf(stderr, "tb: counters file has %zu bytes, want %llu (header + %u layers x %d u64)\n",
                     cnt_b.size(), (unsigned long long)(8ull * n_cnt), n_l, HCIM_N_COUNTERS);
        return 3;
    }
    std::vector<acc_t> out(n * out_size, 0), expected(n * out_size), scratch(scratch_per_image, 0);
    std::vector<cnt_t> counters(n_cnt, 0), expected_cnt(counters.size(), 0);
    std::memcpy(expected.data(), exp_b.data(), exp_b.size());
    if (cp) std::memcpy(expected_cnt.data(), cnt_b.data(), cnt_b.size());
    const uint32_t rc = hybridcim_accel(prog.data(), (uint32_t)prog.size(), images.data(), (uint32_t)images.size(), n, out.data(),
                                        (uint32_t)out.size(), scratch.data(), (uint32_t)scratch.size(), HCIM_FLAG_COUNTERS,
                                        counters.data(), (uint32_t)counters.size(),
                                        argc > 5 ? (uint32_t)std::strtoul(argv[5], nullptr, 0) : 0u);
    if (rc != HCIM_OK) {
        std::fprintf(stderr, "tb: kernel returned error %u (detail %u)\n", rc & 0xFFFF, rc >> HCIM_DETAIL_SHIFT);
        return 2;
    }
    uint64_t bad = 0;
    for (uint64_t k = 0; k < out.size(); k++) {
        if (out[k] != expected[k]) {
            if (bad < 10)
                std::fprintf(stderr, "tb: MISMATCH image %llu output %llu: expected %d, got %d\n",
                             (unsigned long long)(k / out_size), (unsigned long long)(k % out_size), expected[k], out[k]);
            bad++;
        }
    }
    for (uint64_t k = 0; cp && k < counters.size(); k++) {
        if (counters[k] != expected_cnt[k]) {
            if (bad < 10 && k < HCIM_CNT_HEADER_WORDS)
                std::fprintf(stderr, "tb: MISMATCH counters header: expected %#llx, got %#llx\n",
                             (unsigned long long)expected_cnt[k], (unsigned long long)counters[k]);
            else if (bad < 10)
                std::fprintf(stderr, "tb: MISMATCH layer %llu counter %llu: expected %llu, got %llu\n",
                             (unsigned long long)((k - HCIM_CNT_HEADER_WORDS) / HCIM_N_COUNTERS),
                             (unsigned long long)((k - HCIM_CNT_HEADER_WORDS) % HCIM_N_COUNTERS),
                             (unsigned long long)expected_cnt[k], (unsigned long long)counters[k]);
            bad++;
        }
    }
    std::printf("tb: %u images, %llu outputs, %s%llu mismatches: %s\n", n, (unsigned long long)out.size(),
                cp ? "counters checked, " : "", (unsigned long long)bad, bad ? "FAIL" : "PASS");
    return bad ? 1 : 0;
}
