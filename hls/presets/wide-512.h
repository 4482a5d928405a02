// Preset wide-512 (docs/architecture.md §1): 512x512 macros, 32-row blocks, 8 macros.
#ifndef HCIM_PRESET_WIDE_512_H
#define HCIM_PRESET_WIDE_512_H

#define HCIM_PRESET_NAME "wide-512"
#define HCIM_ROWS 512
#define HCIM_COLS 512
#define HCIM_ROWS_ACTIVE 32
#define HCIM_GROUP_WIDTH 8
#define HCIM_N_MACROS 8
#define HCIM_ACC_BITS 32
#define HCIM_ADC_BITS 5
#define HCIM_PRECISION_MASK 0x8Au  // {2, 4, 8}
#define HCIM_FINGERPRINT 0xB59C4C37u

#define HCIM_MAX_TENSORS 128
#define HCIM_MAX_LAYERS 128
#define HCIM_MAX_FILTERS 512
#define HCIM_MAX_GROUPS 512
#define HCIM_MAX_ROWBLOCKS 256     // K <= 256 * 32 = 8192
#define HCIM_MAX_CWORDS 16
#define HCIM_MAX_PACK_WORDS 16384

#endif
