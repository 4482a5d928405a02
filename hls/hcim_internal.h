// Internal interfaces of the kernel: program readers, the parsed tables, layer units.
// Not part of the IP's interface; included by the kernel sources only.
#ifndef HCIM_INTERNAL_H
#define HCIM_INTERNAL_H

#include "hybridcim_accel.h"
#include "hcim_loops.h"

// Parsed tensor table (on-chip): shape, format, scratch offset and activation-buffer place of every tensor.
struct hcim_tensor {
    uint32_t c, h, w, bits, sgn;
    uint32_t off;   // int32 words from the start of one image's scratch slice
    uint32_t size;  // c * h * w
    uint32_t cw;    // ceil(c / 64): 64-bit words per pixel per bit plane
    uint32_t aoff;  // on-chip mode: first word of its bit planes in the activation buffer (hcim_plan_arena)
};

// Parsed layer record (fields of program-format.md "Layer record").
struct hcim_layer {
    uint32_t op, mode, flags, kh, kw, stride, pad;
    uint32_t in, out, res;  // res = HCIM_NO_TENSOR if none
    uint32_t f, k, ng, r;
    int32_t lo, hi, pool_shift;
    uint32_t off_prec, off_bias, off_shift, off_rshift, off_colmap, off_skip, off_weights, n_words;
    uint32_t off_hybrid;  // bytes 68..71: the hybrid section's offset (mode 1), reserved 0 otherwise
    uint32_t off_dual;    // bytes 72..75: the dual section's offset (flags bit 0), reserved 0 otherwise
    bool reserved_ok;     // reserved bytes 33..35 and 76..95 of the record are 0
};

// Parsed dual section of a dual-path layer (architecture.md §10.2, program-format.md "Dual section").
// A layer without one runs as a dual-path layer with q = 0 (no ternary filter).
struct hcim_dualpath {
    uint32_t ratio, theta, n_rowblocks, n_words, off_words;
    uint32_t f_t, f0;  // ternary filters F_t = floor(F q / 8); the first of them, F - F_t
};

// Parsed hybrid section of a mode-1 layer (architecture.md §9.4-§9.6). A digital layer runs the
// same datapath with one level (D, E) = (15, 15): every pair digital.
struct hcim_hybrid {
    uint32_t n_levels, sal_planes, noise_pairs, noise_shift, noise_seed;
    uint32_t thresholds[HCIM_MAX_LEVELS - 1];
    uint8_t dd[HCIM_MAX_LEVELS], kd[HCIM_MAX_LEVELS];  // digital_depth D, keep_depth E per level
};

// Where a conv/fc layer runs: its index in the layer table and the global index of the image
// (image_base + position in the call): the analog noise's key and counter (§9.6).
struct hcim_ctx {
    uint32_t layer, image;
};

struct hcim_tables {
    uint32_t n_tensors, n_layers, input, output, image_bytes, version_minor;
    uint32_t has_tern;           // format >= 1.2 image of a preset with the second macro type (reader row 6)
    uint32_t scratch_per_image;  // S, int32 words
    uint32_t arena_ok;           // every produced tensor has a place in the activation buffer (hcim_plan_arena)
    uint32_t onchip;             // this call keeps the activations on chip (set by the top function)
    hcim_tensor t[HCIM_MAX_TENSORS];
};

// Words of the staging buffer of one table section (or, in on-chip mode, of one input image).
#define HCIM_STAGE_WORDS 4096

// Little-endian field readers over the program words; callers guarantee off + size <= image bytes
// and natural alignment (every field of the format is naturally aligned, so no read straddles words).
static inline uint32_t hcim_rd8(const word_t *p, uint32_t off) {
    return (uint32_t)(p[off >> 3] >> ((off & 7u) * 8u)) & 0xFFu;
}
static inline uint32_t hcim_rd16(const word_t *p, uint32_t off) {
    return (uint32_t)(p[off >> 3] >> ((off & 7u) * 8u)) & 0xFFFFu;
}
static inline uint32_t hcim_rd32(const word_t *p, uint32_t off) {
    return (uint32_t)(p[off >> 3] >> ((off & 7u) * 8u));
}
static inline int32_t hcim_rdi8(const word_t *p, uint32_t off) { return (int32_t)(int8_t)hcim_rd8(p, off); }

// round-half-to-even right shift for s > 0, exact left shift for s < 0 (architecture.md §6).
// Wrapping (unsigned) arithmetic: a valid program never overflows, a corrupt one cannot crash.
static inline wide_t hcim_rshift_rne(wide_t v, int32_t s) {
    if (s == 0) return v;
    if (s < 0) return (wide_t)((uint64_t)v << (uint32_t)(-s));
    wide_t q = v >> s;  // arithmetic shift: floor(v / 2^s)
    wide_t r = v - (wide_t)((uint64_t)q << (uint32_t)s);
    wide_t half = (wide_t)1 << (s - 1);
    return (r > half || (r == half && (q & 1))) ? q + 1 : q;
}
static inline acc_t hcim_clamp(wide_t v, int32_t lo, int32_t hi) {
    return (acc_t)(v < lo ? lo : (v > hi ? hi : v));
}

// hcim_program.cpp: header, CRC and table checks (return HCIM_OK or an error code).
uint32_t hcim_check_header(const word_t *prog, uint32_t prog_words, uint32_t *image_bytes);
uint32_t hcim_load_tables(const word_t *prog, hcim_tables *tab);
void hcim_read_layer(const word_t *prog, const hcim_tables *tab, uint32_t index, hcim_layer *l);
// The hybrid section at l->off_hybrid (checked by hcim_load_tables before any run).
void hcim_read_hybrid(const word_t *prog, const hcim_layer *l, hcim_hybrid *h);
// Layer flags bit 0 on a conv/fc layer of a format >= 1.2 image: a dual-path layer (reader check 12(b)).
bool hcim_is_dual(const hcim_tables *tab, const hcim_layer *l);
// The dual section at l->off_dual of a dual-path layer (checked by hcim_load_tables), else q = 0.
void hcim_read_dual(const word_t *prog, const hcim_tables *tab, const hcim_layer *l, hcim_dualpath *d);
// On-chip activations: a place in the activation buffer (HCIM_MAX_PACK_WORDS words of bit planes)
// for every produced tensor, first fit over the tensors' lifetimes in layer order; sets arena_ok.
void hcim_plan_arena(const word_t *prog, hcim_tables *tab);

// hcim_layers.cpp: one layer on one image's scratch slice; a conv/fc layer writes its activity on
// this image to cnt (every counter but images, which the caller counts; reserved ones untouched).
void hcim_cim_layer(const word_t *prog, const hcim_tables *tab, const hcim_layer *l, const hcim_ctx &ctx,
                    acc_t *s, cnt_t cnt[HCIM_N_COUNTERS]);
void hcim_maxpool_layer(const hcim_tables *tab, const hcim_layer *l, acc_t *s);
void hcim_avgpool_layer(const hcim_tables *tab, const hcim_layer *l, acc_t *s);
// On-chip mode: image n's NCHW pixels (u64 words) staged and packed into the input tensor's bit
// planes (s: the scratch buffer, not read); false if a pixel exceeds the tensor's bit width.
bool hcim_load_image_planes(const word_t *img, const hcim_tensor &t, const acc_t *s);
// On-chip mode: value of channel c of the pixel whose planes start at word pix of the activation
// buffer (t's bits, sign-extended if signed).
acc_t hcim_act_value(const hcim_tensor &t, uint32_t pix, uint32_t c);

#endif  // HCIM_INTERNAL_H
