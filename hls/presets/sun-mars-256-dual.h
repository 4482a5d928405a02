// Preset sun-mars-256-dual (docs/architecture.md §1, §10.1): sun-mars-256 plus the second macro type,
// four 256 x 512 eDRAM-like ternary macros (256 ternary filters x 4 row blocks of 64 rows each),
// every stored row refreshed each 2^14 cycles. Must equal
// hybridcim.spec.hardware.HOST_PRESETS["sun-mars-256-dual"]; tests/hls/test_csim_dual.py checks every
// value, the fingerprint and the header bytes 61..63 included.
#ifndef HCIM_PRESET_SUN_MARS_256_DUAL_H
#define HCIM_PRESET_SUN_MARS_256_DUAL_H

#define HCIM_PRESET_NAME "sun-mars-256-dual"
#define HCIM_ROWS 256
#define HCIM_COLS 256
#define HCIM_ROWS_ACTIVE 64
#define HCIM_GROUP_WIDTH 8
#define HCIM_N_MACROS 4
#define HCIM_ACC_BITS 32
#define HCIM_ADC_BITS 5
#define HCIM_PRECISION_MASK 0x8Au  // bit p-1 set <=> precision p allowed: {2, 4, 8}
#define HCIM_FINGERPRINT 0x18485310u

// The second macro type (§10.1)
#define HCIM_TERN_ROWS 256
#define HCIM_TERN_COLS 512
#define HCIM_TERN_ROWS_ACTIVE 64
#define HCIM_TERN_N_MACROS 4
#define HCIM_TERN_REFRESH_CYCLES 16384
#define HCIM_TERN_HEADER 0x8E0B98u  // header bytes 61..63 = 0x98 0x0B 0x8E (program-format.md)

// Kernel capacity (on-chip buffers); a program over these is refused with HCIM_ERR_LIMIT.
#define HCIM_MAX_TENSORS 128
#define HCIM_MAX_LAYERS 128
#define HCIM_MAX_FILTERS 512       // filters of one conv/fc layer
#define HCIM_MAX_GROUPS 512        // column groups of one layer
#define HCIM_MAX_ROWBLOCKS 128     // row blocks of one layer: K <= 128 * 64 = 8192
#define HCIM_MAX_CWORDS 16         // 64-bit words per pixel per bit plane: channels <= 1024
#define HCIM_MAX_PACK_WORDS 16384  // H*W*bits_in*ceil(C/64) of a CIM layer's input (128 KiB)

#endif
