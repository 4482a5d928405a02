// Preset sun-mars-256 (docs/architecture.md §1): the default 256x256 SUN/MARS-class array.
// Geometry must equal hybridcim.spec.hardware.PRESETS["sun-mars-256"]; tests/hls/test_types_header.py
// checks every value, the fingerprint included.
#ifndef HCIM_PRESET_SUN_MARS_256_H
#define HCIM_PRESET_SUN_MARS_256_H

#define HCIM_PRESET_NAME "sun-mars-256"
#define HCIM_ROWS 256
#define HCIM_COLS 256
#define HCIM_ROWS_ACTIVE 64
#define HCIM_GROUP_WIDTH 8
#define HCIM_N_MACROS 4
#define HCIM_ACC_BITS 32
#define HCIM_ADC_BITS 5
#define HCIM_PRECISION_MASK 0x8Au  // bit p-1 set <=> precision p allowed: {2, 4, 8}
#define HCIM_FINGERPRINT 0x25DA3F27u

// Kernel capacity (on-chip buffers); a program over these is refused with HCIM_ERR_LIMIT.
#define HCIM_MAX_TENSORS 128
#define HCIM_MAX_LAYERS 128
#define HCIM_MAX_FILTERS 512       // filters of one conv/fc layer
#define HCIM_MAX_GROUPS 512        // column groups of one layer
#define HCIM_MAX_ROWBLOCKS 128     // row blocks of one layer: K <= 128 * 64 = 8192
#define HCIM_MAX_CWORDS 16         // 64-bit words per pixel per bit plane: channels <= 1024
#define HCIM_MAX_PACK_WORDS 16384  // H*W*bits_in*ceil(C/64) of a CIM layer's input (128 KiB)

#endif
