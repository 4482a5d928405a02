// hybridcim accelerator: an emulated array of SRAM CIM macros as a Vitis HLS kernel.
//
// Integer semantics: docs/architecture.md (spec 1.2: digital mode §4-§7, hybrid mode §9, dual-path layers §10).
// Program image: docs/program-format.md.
// DDR buffers and control registers: docs/program-format.md, section "Runtime buffers".
//
// The preset (array geometry + kernel capacity) is chosen at compile time:
//   g++/v++ -DHCIM_PRESET_HEADER='"presets/tiny-64.h"'   (default: presets/sun-mars-256.h)
// One bitstream runs any program compiled for its preset; it refuses others.
//
// Every type and format constant the kernel uses is defined here, once; the Python side
// (hybridcim.spec.numformat, hybridcim.program.format) is checked against this file by
// tests/hls/test_types_header.py.
#ifndef HYBRIDCIM_ACCEL_H
#define HYBRIDCIM_ACCEL_H

#include <stdint.h>
#include "ap_int.h"

#ifndef HCIM_PRESET_HEADER
#define HCIM_PRESET_HEADER "presets/sun-mars-256.h"
#endif
#include HCIM_PRESET_HEADER

// The second macro type (architecture.md §10.1): a preset header without it leaves these 0 (no
// ternary macro: a dual-path layer is refused with status LAYER, reader check 12(f)).
#ifndef HCIM_TERN_N_MACROS
#define HCIM_TERN_ROWS 0
#define HCIM_TERN_COLS 0
#define HCIM_TERN_ROWS_ACTIVE 0
#define HCIM_TERN_N_MACROS 0
#define HCIM_TERN_REFRESH_CYCLES 0
#define HCIM_TERN_HEADER 0x000000u  // header bytes 61..63 (byte 61 lowest): all 0
#endif
#define HCIM_HAS_TERN (HCIM_TERN_N_MACROS > 0)

// ---- kernel version (bitstream manifest "kernel_version"; bump on any interface change) ----
#define HCIM_KERNEL_VERSION_MAJOR 1
#define HCIM_KERNEL_VERSION_MINOR 4  // 1.4: dual-path layers (format 1.2), counter layout 3; 1.3: hybrid mode, image_base

// ---- number formats (architecture.md §2; hybridcim.spec.numformat) ----
typedef ap_uint<8> pixel_t;   // UINT8: network input pixels
typedef ap_uint<4> act4_t;    // uintA, A = 4: default post-ReLU activation
typedef ap_int<2> w2_t;       // int2 weights
typedef ap_int<4> w4_t;       // int4 weights
typedef ap_int<8> w8_t;       // int8 weights
typedef ap_int<32> logit_t;   // INT32: accumulators, bias, logits
typedef ap_uint<64> rowword_t;  // one row block of one column: rows_active <= 64 bits
// Native containers used in the datapath (same bit widths; plain C types keep csim fast).
typedef uint64_t word_t;      // program words, packed input planes, weight words
typedef int32_t acc_t;        // signed acc_bits = 32 accumulator (architecture.md §4)
typedef int64_t wide_t;       // requant intermediate: acc + bias + (res << res_shift) before the shift

// ---- program image format 1.2 (program-format.md; hybridcim.program.format) ----
#define HCIM_MAGIC_WORD 0x474F52504D494348ull  // "HCIMPROG" read as a little-endian u64
#define HCIM_FORMAT_MAJOR 1
#define HCIM_FORMAT_MINOR 0
#define HCIM_FORMAT_MINOR_HYBRID 1  // first minor version with layer mode 1
#define HCIM_FORMAT_MINOR_DUAL 2    // first minor version with layer flags bit 0 and header bytes 61..63
#define HCIM_HEADER_BYTES 64
#define HCIM_TENSOR_BYTES 16
#define HCIM_LAYER_BYTES 96
#define HCIM_NO_TENSOR 0xFFFF
#define HCIM_ALIGN 8
// header field byte offsets
#define HCIM_H_VERSION_MAJOR 8
#define HCIM_H_VERSION_MINOR 10
#define HCIM_H_IMAGE_BYTES 12
#define HCIM_H_CRC32 16
#define HCIM_H_FINGERPRINT 20
#define HCIM_H_ROWS 24
#define HCIM_H_COLS 26
#define HCIM_H_ROWS_ACTIVE 28
#define HCIM_H_GROUP_WIDTH 30
#define HCIM_H_N_MACROS 32
#define HCIM_H_ACC_BITS 34
#define HCIM_H_ADC_BITS 35
#define HCIM_H_N_TENSORS 36
#define HCIM_H_N_LAYERS 38
#define HCIM_H_INPUT_TENSOR 40
#define HCIM_H_OUTPUT_TENSOR 42
#define HCIM_H_TENSOR_TABLE 44
#define HCIM_H_LAYER_TABLE 48
#define HCIM_H_MANIFEST_OFFSET 52
#define HCIM_H_MANIFEST_BYTES 56
#define HCIM_H_PRECISION_MASK 60
#define HCIM_H_RESERVED 61        // u8[3], 0 (format < 1.2)
#define HCIM_H_RESERVED_BYTES 3
#define HCIM_H_TERN_GEOMETRY 61   // format >= 1.2: u8[3], the second macro type's geometry (HCIM_TERN_HEADER)
// tensor record field byte offsets
#define HCIM_T_CHANNELS 0
#define HCIM_T_HEIGHT 2
#define HCIM_T_WIDTH 4
#define HCIM_T_BITS 6
#define HCIM_T_SIGNED 7
#define HCIM_T_EXPONENT 8
#define HCIM_T_RESERVED 9         // u8[7], 0
#define HCIM_T_RESERVED_BYTES 7
// layer record field byte offsets
#define HCIM_L_OP 0
#define HCIM_L_MODE 1
#define HCIM_L_KH 2
#define HCIM_L_KW 3
#define HCIM_L_STRIDE 4
#define HCIM_L_PAD 5
#define HCIM_L_FLAGS 6
#define HCIM_L_IN_TENSOR 8
#define HCIM_L_OUT_TENSOR 10
#define HCIM_L_RES_TENSOR 12
#define HCIM_L_N_FILTERS 14
#define HCIM_L_K_ROWS 16
#define HCIM_L_N_GROUPS 20
#define HCIM_L_N_ROWBLOCKS 22
#define HCIM_L_CLAMP_LO 24
#define HCIM_L_CLAMP_HI 28
#define HCIM_L_POOL_SHIFT 32
#define HCIM_L_OFF_PRECISION 36
#define HCIM_L_OFF_BIAS 40
#define HCIM_L_OFF_SHIFT 44
#define HCIM_L_OFF_RES_SHIFT 48
#define HCIM_L_OFF_COLMAP 52
#define HCIM_L_OFF_SKIP 56
#define HCIM_L_OFF_WEIGHTS 60
#define HCIM_L_N_WEIGHT_WORDS 64
#define HCIM_L_RESERVED0 33       // u8[3], 0
#define HCIM_L_RESERVED0_BYTES 3
#define HCIM_L_OFF_HYBRID 68      // u32: hybrid section (mode 1); part of the reserved bytes (0) in mode 0
#define HCIM_L_RESERVED1 68       // u8[28], 0 in a digital layer (68..71 = off_hybrid in a hybrid one)
#define HCIM_L_RESERVED1_BYTES 28
#define HCIM_L_OFF_DUAL 72        // u32: dual section (flags bit 0); reserved 0 otherwise
#define HCIM_L_RESERVED2 76       // u8[20], 0 in every layer
#define HCIM_L_RESERVED2_BYTES 20
// layer flags (architecture.md §10)
#define HCIM_FLAG_DUAL 1          // bit 0: dual-path layer (conv/fc, mode 0, format >= 1.2)
// dual section (16 bytes; program-format.md "Dual section"; hybridcim.program.dualpath)
#define HCIM_DU_BYTES 16
#define HCIM_DU_RATIO 0           // u8, q = 0..8: the last floor(F * q / 8) filters are ternary
#define HCIM_DU_THRESHOLD 1       // u8, theta = 1..2^bits_in - 1: z = [x >= theta]
#define HCIM_DU_N_ROWBLOCKS 2     // u16, R_t = ceil(K / tern_rows_active)
#define HCIM_DU_N_WORDS 4         // u32, 2 * F_t * R_t
#define HCIM_DU_OFF_WEIGHTS 8     // u32, u64[n_tern_words]: word 2(u R_t + b) positive, + 1 negative cells
#define HCIM_DU_RESERVED 12       // u8[4], 0
#define HCIM_RATIO_STEPS 8
// layer modes (architecture.md §9)
#define HCIM_MODE_DIGITAL 0
#define HCIM_MODE_HYBRID 1
// hybrid section (64 bytes; program-format.md "Hybrid section"; hybridcim.program.hybrid)
#define HCIM_HY_BYTES 64
#define HCIM_HY_N_LEVELS 0        // u8, 1..8
#define HCIM_HY_SAL_PLANES 1      // u8, 1..bits_in
#define HCIM_HY_NOISE_PAIRS 2     // u8, 0..64
#define HCIM_HY_NOISE_SHIFT 3     // u8, 0..8
#define HCIM_HY_NOISE_SEED 4      // u32
#define HCIM_HY_RESERVED0 8       // u8[8], 0
#define HCIM_HY_THRESHOLDS 16     // u32[7]
#define HCIM_HY_DIGITAL_DEPTH 44  // u8[8]
#define HCIM_HY_KEEP_DEPTH 52     // u8[8]
#define HCIM_HY_RESERVED1 60      // u8[4], 0
#define HCIM_MAX_LEVELS 8
#define HCIM_DEPTH_ALL 15         // a depth no pair reaches (max 7 + 7 = 14)
#define HCIM_MAX_NOISE_PAIRS 64
#define HCIM_MAX_NOISE_SHIFT 8
#define HCIM_NOISE_FRAC_BITS 4    // the ADC input carries 1/16 counts (architecture.md §9.3)
// op codes (architecture.md §3; hybridcim.program.format.Op)
#define HCIM_OP_CONV 1
#define HCIM_OP_FC 2
#define HCIM_OP_MAXPOOL 3
#define HCIM_OP_AVGPOOL 4
// column map entry: filter | plane << 16 | used << 24
#define HCIM_CM_PLANE_SHIFT 16
#define HCIM_CM_USED_SHIFT 24

// ---- derived preset constants ----
#if HCIM_HAS_TERN
#define HCIM_TERN_FILTERS_PER_MACRO (HCIM_TERN_COLS / 2)                     // S: two cells per ternary weight
#define HCIM_TERN_BLOCKS_PER_MACRO (HCIM_TERN_ROWS / HCIM_TERN_ROWS_ACTIVE)  // B
#endif
#define HCIM_BLOCKS_PER_MACRO (HCIM_ROWS / HCIM_ROWS_ACTIVE)
#define HCIM_GROUPS_PER_MACRO (HCIM_COLS / HCIM_GROUP_WIDTH)
#define HCIM_UNITS_PER_MACRO (HCIM_BLOCKS_PER_MACRO * HCIM_GROUPS_PER_MACRO)
#define HCIM_MACRO_WORDS (HCIM_UNITS_PER_MACRO * HCIM_GROUP_WIDTH)  // 64-bit words of one macro
#define HCIM_MAX_IN_BITS 8
#define HCIM_XW_WORDS (HCIM_MAX_ROWBLOCKS + 1)  // row-block words per input bit plane of one window (+1 spill word)

// ---- return value of the kernel: code | detail << 16 (detail: layer or tensor index) ----
#define HCIM_OK 0
#define HCIM_ERR_ARGS 1         // null pointer, or images / out / counters buffer smaller than needed
#define HCIM_ERR_MAGIC 2        // not a program image
#define HCIM_ERR_VERSION 3      // format major version != 1
#define HCIM_ERR_SIZE 4         // header image_bytes != 8 * prog_words
#define HCIM_ERR_CHECKSUM 5     // CRC-32 of the image (crc32 field as 0) != header crc32
#define HCIM_ERR_PRESET 6       // fingerprint / geometry != this bitstream's preset
#define HCIM_ERR_LIMIT 7        // program exceeds a kernel capacity (detail: layer)
#define HCIM_ERR_LAYER 8        // malformed table or layer record (detail: layer)
#define HCIM_ERR_SCRATCH 9      // scratch buffer too small
#define HCIM_ERR_INPUT 10       // an input pixel exceeds the input tensor's bit width (detail: image)
#define HCIM_ERR_TENSOR 11      // malformed tensor table (detail: tensor)
#define HCIM_ERR_HYBRID 12      // malformed hybrid section of a mode-1 layer (detail: layer)
// (a malformed dual section or ternary weights of a dual-path layer: HCIM_ERR_LAYER, detail: layer)
#define HCIM_DETAIL_SHIFT 16

// ---- flags register ----
#define HCIM_FLAG_TRACE 1u      // keep every image's tensors: image n uses scratch[n * S ... ]
#define HCIM_FLAG_VALIDATE_ONLY 2u  // check the image and buffer sizes, compute nothing
#define HCIM_FLAG_COUNTERS 4u   // write the activity counters of this call to `counters`

// ---- activity counters (architecture.md §7; order of hybridcim.emulator.counters.PER_IMAGE) ----
// The performance-counter block counts, per layer and summed over the images of one call, what
// the datapath does as it does it. `counters` receives a header word, then n_layers x
// HCIM_N_COUNTERS u64 words, layer-major:
//   word 0 = HCIM_CNT_MAGIC | HCIM_CNT_LAYOUT << 32 | HCIM_N_COUNTERS << 40 | n_layers << 48
// Counters are append-only: a later kernel adds new ones after the last index and a reader
// takes the count from the header. Layout 2 (kernel 1.3) appends the hybrid-mode counters of
// architecture.md §9.7 (saliency_ops, decisions_level0..7) as indices 16..24; the analog, ADC,
// skipped-plane, saliency and decision counters are 0 in digital mode. Layout 3 (kernel 1.4) appends
// the second macro type's counters of §10.4 as indices 25..31 (0 in every layer but a dual-path one).
typedef uint64_t cnt_t;
#define HCIM_CNT_MAGIC 0x544E4348u  // "HCNT" read as a little-endian u32
#define HCIM_CNT_LAYOUT 3           // header word + layer-major rows of HCIM_N_COUNTERS (layout 1: 16, 2: 25)
#define HCIM_CNT_HEADER_WORDS 1
#define HCIM_N_COUNTERS 32
#define HCIM_C_IMAGES 0
#define HCIM_C_MACS 1
#define HCIM_C_UNIT_ACTIVATIONS 2
#define HCIM_C_UNITS_SKIPPED 3
#define HCIM_C_ROWBLOCK_ACTIVATIONS 4
#define HCIM_C_CYCLES 5
#define HCIM_C_BIT_OPS 6
#define HCIM_C_DIGITAL_COLUMN_READS 7
#define HCIM_C_ANALOG_COLUMN_READS 8
#define HCIM_C_ADC_CONVERSIONS 9
#define HCIM_C_SKIPPED_BITPLANES 10
#define HCIM_C_WEIGHT_LOAD_BITS 11
#define HCIM_C_DRAM_BYTES 12
#define HCIM_C_ACT_BUFFER_BITS 13
#define HCIM_C_REQUANT_OPS 14
#define HCIM_C_INPUT_ONES 15
#define HCIM_C_SALIENCY_OPS 16
// boundary histogram of hybrid mode: decisions at level 0..7
#define HCIM_C_DECISIONS_LEVEL0 17
#define HCIM_C_DECISIONS_LEVEL1 18
#define HCIM_C_DECISIONS_LEVEL2 19
#define HCIM_C_DECISIONS_LEVEL3 20
#define HCIM_C_DECISIONS_LEVEL4 21
#define HCIM_C_DECISIONS_LEVEL5 22
#define HCIM_C_DECISIONS_LEVEL6 23
#define HCIM_C_DECISIONS_LEVEL7 24
// the second macro type (dual-path layers, architecture.md §10.4)
#define HCIM_C_TERN_ROWBLOCK_ACTIVATIONS 25
#define HCIM_C_TERN_CYCLES 26
#define HCIM_C_TERN_COLUMN_READS 27
#define HCIM_C_TERN_BIT_OPS 28
#define HCIM_C_TERN_WEIGHT_LOAD_BITS 29
#define HCIM_C_TERN_INPUT_ONES 30
#define HCIM_C_REFRESH_EVENTS 31
// bytes of `values` activations of `bits` bits packed (the dram_bytes counter's tensor size)
static inline cnt_t hcim_packed_bytes(uint64_t values, uint32_t bits) { return (values * bits + 7) / 8; }

// Top function (one call runs n_images images through the whole program).
//   prog:    program image as little-endian u64 words (prog_words = image_bytes / 8)
//   images:  n_images uint8 NCHW images, each padded to ceil(C*H*W / 8) u64 words (image_words in all)
//   out:     n_images x (output tensor H*W*C) int32, NHWC per image
//   scratch: int32 activation arena: every tensor t of one image at offset
//            sum_{t' < t} C*H*W (tensor table order); S = total; trace mode needs n_images * S.
//            Only trace mode (and DDR mode, hybridcim_accel.cpp) keeps the tensors there; otherwise
//            the activations stay on chip and scratch holds only multi-round partial sums
//   counters: with HCIM_FLAG_COUNTERS, the header word and n_layers x HCIM_N_COUNTERS u64 activity
//            counters of this call (counters_words >= HCIM_CNT_HEADER_WORDS + that); untouched otherwise
//   image_base: global index of the first image of the call (u32; keys the analog noise of hybrid
//            layers, architecture.md §9.6, so a batch split gives the same bits as one call)
// Returns HCIM_OK or an error code (| detail << 16); never reads or writes out of bounds.
// Every buffer size is checked: the kernel never reads or writes past prog_words, image_words,
// out_words, scratch_words or counters_words.
uint32_t hybridcim_accel(const word_t *prog, uint32_t prog_words, const word_t *images, uint32_t image_words,
                         uint32_t n_images, acc_t *out, uint32_t out_words, acc_t *scratch, uint32_t scratch_words,
                         uint32_t flags, cnt_t *counters, uint32_t counters_words, uint32_t image_base);

#endif  // HYBRIDCIM_ACCEL_H
