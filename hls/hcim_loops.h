// Loop table and instrumentation hooks of the kernel's per-image path (the cycle model's input).
//
// HCIM_LOOP_TABLE lists every loop that matters for time, as X(id, "name", ii, depth):
//   ii    = the II of `#pragma HLS PIPELINE II=<ii>` on that loop; 0 = not pipelined (the loop costs
//           its body's loops plus 1 cycle of control per iteration);
//   depth = the intended pipeline depth in cycles (fill/drain of one entry).
// Every loop with ii > 0 carries a label equal to "name" in the kernel sources and a matching
// PIPELINE pragma (tests check the sources for this).
//
// Hooks (all expand to nothing unless HCIM_CYCLE_COUNT is defined; never under __SYNTHESIS__):
//   HCIM_LOOP_ENTER(id)       once each time the loop starts;
//   HCIM_LOOP_ITER(id)        once per iteration;
//   HCIM_LOOP_ITERS(id, n)    n iterations at once (the same count as n HCIM_LOOP_ITER, cheaper in csim);
//   HCIM_BURST(dir, bytes)    one AXI burst of `bytes` bytes, dir 0 = read, 1 = write (a single-word
//                             access is a burst of its width);
//   HCIM_PROFILE_LAYER(i)     the program layer the following events belong to (the image load counts
//                             with layer 0, the output copy with the last layer);
//   HCIM_PROFILE_RESET()      clears every counter (the top function calls it at the start of a call).
// Counts are per program layer, summed over the images of one call (csim_api.cpp exports them).
#ifndef HCIM_LOOPS_H
#define HCIM_LOOPS_H

#include "hybridcim_accel.h"

#define HCIM_LOOP_TABLE(X)                                                                                \
    X(HCIM_LP_LOAD_PIXELS, "load_pixels", 1, 4)       /* per image: one input byte per cycle -> NHWC slot */  \
    X(HCIM_LP_FETCH, "fetch", 1, 3)                   /* per layer: burst copy of one table section */       \
    X(HCIM_LP_LOAD_FILTERS, "load_filters", 1, 4)     /* per layer: one filter's requant parameters */        \
    X(HCIM_LP_LOAD_COLMAP, "load_colmap", 1, 4)       /* per layer: one group's G column-map entries */      \
    X(HCIM_LP_LOAD_SKIP, "load_skip", 1, 3)           /* per layer and group: one skip-index bit */           \
    X(HCIM_LP_PACK_PLANES, "pack_planes", 1, 4)       /* per layer: one input value -> its bit planes */     \
    X(HCIM_LP_BUILD_SCHEDULE, "build_schedule", 1, 4) /* per round and group: one row block */               \
    X(HCIM_LP_LOAD_WEIGHTS, "load_weights", 1, 3)     /* per round: one weight word (bursts) */               \
    X(HCIM_LP_TERN_SCHEDULE, "tern_schedule", 1, 4)   /* per round (dual-path): one (filter group, ternary block) */ \
    X(HCIM_LP_LOAD_TERN, "load_tern", 1, 3)           /* per round (dual-path): one ternary weight word (bursts) */ \
    X(HCIM_LP_CLEAR_TACC, "clear_tacc", 1, 2)         /* per round (dual-path): one filter group's ternary sums = 0 */ \
    X(HCIM_LP_PIXELS, "pixels", 0, 0)                 /* per round: output pixels (not pipelined) */         \
    X(HCIM_LP_WINDOW, "window", 1, 4)                 /* per pixel: one window position x 64 channels */     \
    X(HCIM_LP_SALIENCY, "saliency", 1, 4)             /* per pixel (hybrid): one row block's saliency */     \
    X(HCIM_LP_LEVELS, "levels", 1, 6)                 /* per pixel (hybrid): one group's saliency, level */  \
    X(HCIM_LP_NOISE, "noise", 1, 36)                 /* per pixel (noisy hybrid): one pair's Philox4x32-10 */ \
    X(HCIM_LP_UNITS, "units", 1, 8)                   /* per pixel: one unit = G columns x X planes (+ a ternary entry) */ \
    X(HCIM_LP_CLEAR_COLBUF, "clear_colbuf", 1, 2)     /* per round: one group's column sums = 0 */            \
    X(HCIM_LP_REQUANT, "requant", 1, 6)               /* per pixel: RQ_LANES = 4 filters */                  \
    X(HCIM_LP_PIXEL_STREAM, "pixel_stream", 1, 20)   /* per round (digital, on chip): slots of window | units + ternary units | requant of 3 pixels */ \
    X(HCIM_LP_BURST_IN, "burst_in", 1, 2)             /* per chunk of pixels: partial sums / residual in */  \
    X(HCIM_LP_BURST_OUT, "burst_out", 1, 2)           /* per chunk of pixels: outputs / partial sums out */  \
    X(HCIM_LP_MAXPOOL, "maxpool", 1, 3)               /* one output value (window unrolled) */               \
    X(HCIM_LP_AVGPOOL, "avgpool", 1, 3)               /* DDR mode: one input value */                        \
    X(HCIM_LP_AVGPOOL_PLANES, "avgpool_planes", 1, 4) /* on chip: one pixel's 64-channel word, all planes */  \
    X(HCIM_LP_AVGPOOL_OUT, "avgpool_out", 1, 6)       /* on chip: one channel's requant */                   \
    X(HCIM_LP_WRITE_OUT, "write_out", 1, 2)           /* per image: output tensor -> out buffer */

enum hcim_loop_id {
#define HCIM_LOOP_ENUM(id, name, ii, depth) id,
    HCIM_LOOP_TABLE(HCIM_LOOP_ENUM)
#undef HCIM_LOOP_ENUM
    HCIM_N_LOOPS
};

#if defined(HCIM_CYCLE_COUNT) && !defined(__SYNTHESIS__)
struct hcim_profile {
    uint32_t layer;                                   // layer the current events belong to
    uint64_t entries[HCIM_MAX_LAYERS][HCIM_N_LOOPS];  // loop starts
    uint64_t iters[HCIM_MAX_LAYERS][HCIM_N_LOOPS];    // loop iterations
    uint64_t bursts[HCIM_MAX_LAYERS][2];              // AXI bursts [read, write]
    uint64_t bytes[HCIM_MAX_LAYERS][2];               // bytes moved [read, write]
};
extern hcim_profile g_hcim_profile;
void hcim_profile_reset(void);
#define HCIM_LOOP_ENTER(id) (g_hcim_profile.entries[g_hcim_profile.layer][id]++)
#define HCIM_LOOP_ITER(id) (g_hcim_profile.iters[g_hcim_profile.layer][id]++)
#define HCIM_LOOP_ITERS(id, n) (g_hcim_profile.iters[g_hcim_profile.layer][id] += (uint64_t)(n))
#define HCIM_BURST(dir, nbytes)                                      \
    do {                                                             \
        g_hcim_profile.bursts[g_hcim_profile.layer][(dir)]++;        \
        g_hcim_profile.bytes[g_hcim_profile.layer][(dir)] += (nbytes); \
    } while (0)
#define HCIM_PROFILE_LAYER(i) (g_hcim_profile.layer = (uint32_t)(i))
#define HCIM_PROFILE_RESET() hcim_profile_reset()
#else
#define HCIM_LOOP_ENTER(id) ((void)0)
#define HCIM_LOOP_ITER(id) ((void)0)
#define HCIM_LOOP_ITERS(id, n) ((void)0)
#define HCIM_BURST(dir, nbytes) ((void)0)
#define HCIM_PROFILE_LAYER(i) ((void)0)
#define HCIM_PROFILE_RESET() ((void)0)
#endif

#endif  // HCIM_LOOPS_H
