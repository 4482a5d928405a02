// Preset tiny-64-dual (docs/architecture.md §1, §10.1): tiny-64 plus two 64 x 32 ternary macros
// (16 ternary filters x 4 row blocks of 16 rows) refreshed every 256 cycles, so that ternary rounds,
// several row tiles and refresh events show up on small test programs. Must equal
// hybridcim.spec.hardware.HOST_PRESETS["tiny-64-dual"]; tests/hls/test_csim_dual.py checks it.
#ifndef HCIM_PRESET_TINY_64_DUAL_H
#define HCIM_PRESET_TINY_64_DUAL_H

#define HCIM_PRESET_NAME "tiny-64-dual"
#define HCIM_ROWS 64
#define HCIM_COLS 64
#define HCIM_ROWS_ACTIVE 16
#define HCIM_GROUP_WIDTH 8
#define HCIM_N_MACROS 2
#define HCIM_ACC_BITS 32
#define HCIM_ADC_BITS 4
#define HCIM_PRECISION_MASK 0x8Au  // {2, 4, 8}
#define HCIM_FINGERPRINT 0x84E691DFu

#define HCIM_TERN_ROWS 64
#define HCIM_TERN_COLS 32
#define HCIM_TERN_ROWS_ACTIVE 16
#define HCIM_TERN_N_MACROS 2
#define HCIM_TERN_REFRESH_CYCLES 256
#define HCIM_TERN_HEADER 0x880556u  // header bytes 61..63 = 0x56 0x05 0x88

#define HCIM_MAX_TENSORS 128
#define HCIM_MAX_LAYERS 128
#define HCIM_MAX_FILTERS 512
#define HCIM_MAX_GROUPS 512
#define HCIM_MAX_ROWBLOCKS 512     // K <= 512 * 16 = 8192
#define HCIM_MAX_CWORDS 16
#define HCIM_MAX_PACK_WORDS 16384

#endif
