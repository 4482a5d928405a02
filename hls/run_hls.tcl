# Vitis HLS 2023.x flow of the hybridcim accelerator (vitis_hls -f run_hls.tcl).
#
# Environment (all optional): PRESET (sun-mars-256), PART (xc7z020clg400-1, PYNQ-Z2),
# CLOCK_NS (10), HCIM_STEPS (subset of "csim csynth cosim export", default all),
# TB_DATA (tb/data/$PRESET: program.cim, images.u8, expected.i32, counters.u64 from `make tb-data`).
# Run from hls/. Output: build/hls_$PRESET/sol1/impl/ip (IP catalog zip + xhybridcim_accel_hw.h).
# This script has not been run on the development machines (no Vitis there); see README.md.

proc env_or {name default} {
    if {[info exists ::env($name)] && $::env($name) ne ""} { return $::env($name) }
    return $default
}
set preset [env_or PRESET sun-mars-256]
set part [env_or PART xc7z020clg400-1]
set clock_ns [env_or CLOCK_NS 10]
set steps [env_or HCIM_STEPS "csim csynth cosim export"]
set here [file normalize [file dirname [info script]]]
set tb_data [file normalize [env_or TB_DATA $here/tb/data/$preset]]

set cflags "-std=c++14 -I$here -DHCIM_PRESET_HEADER=\\\"presets/$preset.h\\\""
open_project -reset $here/build/hls_$preset
set_top hybridcim_accel
foreach f {hybridcim_accel.cpp hcim_program.cpp hcim_layers.cpp} {
    add_files $here/$f -cflags $cflags
}
add_files -tb $here/tb/hybridcim_accel_tb.cpp -cflags $cflags
open_solution -reset sol1 -flow_target vivado
set_part $part
create_clock -period $clock_ns -name default
config_interface -m_axi_addr64=false
config_export -format ip_catalog -vendor hybridcim.org -library hls -version 1.0 \
    -display_name "hybridcim SRAM CIM accelerator ($preset)"

set argv_tb "$tb_data/program.cim $tb_data/images.u8 $tb_data/expected.i32 $tb_data/counters.u64"
if {[lsearch $steps csim] >= 0} { csim_design -argv $argv_tb }
if {[lsearch $steps csynth] >= 0} { csynth_design }
if {[lsearch $steps cosim] >= 0} { cosim_design -argv $argv_tb }
if {[lsearch $steps export] >= 0} { export_design -format ip_catalog }
exit
