// Preset tiny-64 (docs/architecture.md §1): a small array that makes every code path
// (many tiles, weight reload rounds, 16-row blocks) show up on small test programs.
#ifndef HCIM_PRESET_TINY_64_H
#define HCIM_PRESET_TINY_64_H

#define HCIM_PRESET_NAME "tiny-64"
#define HCIM_ROWS 64
#define HCIM_COLS 64
#define HCIM_ROWS_ACTIVE 16
#define HCIM_GROUP_WIDTH 8
#define HCIM_N_MACROS 2
#define HCIM_ACC_BITS 32
#define HCIM_ADC_BITS 4
#define HCIM_PRECISION_MASK 0x8Au  // {2, 4, 8}
#define HCIM_FINGERPRINT 0xBC822145u

#define HCIM_MAX_TENSORS 128
#define HCIM_MAX_LAYERS 128
#define HCIM_MAX_FILTERS 512
#define HCIM_MAX_GROUPS 512
#define HCIM_MAX_ROWBLOCKS 512     // K <= 512 * 16 = 8192
#define HCIM_MAX_CWORDS 16
#define HCIM_MAX_PACK_WORDS 16384

#endif
