# Vitis HLS 2023.x flow of the hybridcim accelerator (vitis_hls -f run_hls.tcl; `make -C hls ip`).
#
# Environment (all optional):
#   PRESET (sun-mars-256), PART (xc7z020clg400-1, PYNQ-Z2), CLOCK_NS (10),
#   ADDR64 (0: 32-bit m_axi addresses for Zynq-7000; 1: 64-bit for Zynq UltraScale+),
#   URAM (0; 1: -DHCIM_URAM, the activation buffer bound to UltraRAM: Zynq UltraScale+ only,
#   refused for a Zynq-7000 part, which has none),
#   PROJ (build/hls_$PRESET), HCIM_STEPS (subset of "csim csynth cosim export";
#   default "csim csynth export": co-simulation is off unless asked for),
#   TB_DATA (tb/data/$PRESET, from `make tb-data`: the C simulation's 8-image ResNet-20 run),
#   COSIM_DATA (tb/data/$PRESET-cosim, from `make cosim-data`: one image of a small program, so
#   the RTL co-simulation takes minutes, not hours).
# Output: $PROJ/sol1/impl/ip (IP catalog + drivers/*/src/xhybridcim_accel_hw.h).
# Not run on the development machines (no Vitis there); tests/overlay runs it under tclsh with
# stub Vitis commands that record the calls.

proc env_or {name default} {
    if {[info exists ::env($name)] && $::env($name) ne ""} { return $::env($name) }
    return $default
}
proc tb_argv {dir what} {
    set files {}
    foreach f {program.cim images.u8 expected.i32 counters.u64} {
        if {![file isfile $dir/$f]} { error "run_hls: $dir/$f missing: run `make -C hls $what` first" }
        lappend files $dir/$f
    }
    return [join $files " "]
}

set here [file normalize [file dirname [info script]]]
set preset [env_or PRESET sun-mars-256]
set part [env_or PART xc7z020clg400-1]
set clock_ns [env_or CLOCK_NS 10]
set addr64 [expr {[env_or ADDR64 0] ? "true" : "false"}]
set uram [expr {[env_or URAM 0] ? 1 : 0}]
if {$uram && [string match -nocase xc7* $part]} { error "run_hls: URAM=1 but $part (Zynq-7000) has no UltraRAM" }
set steps [env_or HCIM_STEPS "csim csynth export"]
set proj [file normalize [env_or PROJ $here/build/hls_$preset]]
set tb_data [file normalize [env_or TB_DATA $here/tb/data/$preset]]
set cosim_data [file normalize [env_or COSIM_DATA $here/tb/data/$preset-cosim]]
foreach s $steps {
    if {[lsearch -exact {csim csynth cosim export} $s] < 0} { error "run_hls: unknown step $s in HCIM_STEPS" }
}

set cflags "-std=c++14 -I$here -DHCIM_PRESET_HEADER=\\\"presets/$preset.h\\\""
if {$uram} { append cflags " -DHCIM_URAM" }
open_project -reset $proj
set_top hybridcim_accel
foreach f {hybridcim_accel.cpp hcim_program.cpp hcim_layers.cpp} {
    add_files $here/$f -cflags $cflags
}
add_files -tb $here/tb/hybridcim_accel_tb.cpp -cflags $cflags
open_solution -reset sol1 -flow_target vivado
set_part $part
create_clock -period $clock_ns -name default
# the register map (docs/program-format.md "Control registers") depends on this width
config_interface -m_axi_addr64=$addr64
config_export -format ip_catalog -vendor hybridcim.org -library hls -version 1.0 \
    -display_name "hybridcim SRAM CIM accelerator ($preset)"

if {[lsearch -exact $steps csim] >= 0} { csim_design -argv [tb_argv $tb_data tb-data] }
if {[lsearch -exact $steps csynth] >= 0 || [lsearch -exact $steps cosim] >= 0 || [lsearch -exact $steps export] >= 0} {
    csynth_design
}
if {[lsearch -exact $steps cosim] >= 0} { cosim_design -argv [tb_argv $cosim_data cosim-data] }
if {[lsearch -exact $steps export] >= 0} { export_design -format ip_catalog }
exit
