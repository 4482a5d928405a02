# Vivado block design, implementation and bitstream of the hybridcim overlay.
#
#   vivado -mode batch -source overlay/hybridcim_bd.tcl      (overlay/build.sh runs it)
#
# Two PS families, chosen by the part:
#   Zynq-7000 (PYNQ-Z2, xc7z020clg400-1): processing_system7, FCLK0 = 100 MHz,
#     control  M_AXI_GP0 -> AXI interconnect -> hybridcim_accel s_axi_control
#     data     m_axi_gmem0..4 -> one AXI interconnect -> S_AXI_HP0 (64 bit) -> DDR, 32-bit addresses
#   Zynq UltraScale+ (KV260, xck26-sfvc784-2LV-c): zynq_ultra_ps_e, pl_clk0 = 100 MHz,
#     control  M_AXI_HPM0_FPD -> s_axi_control
#     data     m_axi_gmem0..4 -> one AXI interconnect -> S_AXI_HP0_FPD (128 bit) -> DDR, 64-bit addresses
# The five masters share one HP port: the kernel moves data through one master at a time (its
# loops run one after another), so more HP ports would add interconnects and PS ports without
# adding bandwidth; one HP port at 100 MHz carries 0.8 GB/s (64 bit) / 1.6 GB/s (128 bit).
# Connection automation runs once per master pin (each m_axi_gmemN is its own target).
#
# Environment: IP_REPO (the HLS IP catalog folder), OUT (folder receiving hybridcim.bit and
# hybridcim.hwh), PART, BOARD_PART (its board files must be installed: the script stops
# otherwise), PROJ_DIR (overlay/build/vivado_<part>), JOBS (4), CLOCK_MHZ (100).
# The build fails when implementation does not complete or when timing is not met (WNS < 0 or
# WHS < 0; both are printed). Reports go to OUT/utilization.txt and OUT/timing.txt.
# Not run on the development machines (no Vivado there); tests/overlay runs it under tclsh
# with stub Vivado commands that record the calls.

proc env_or {name default} {
    if {[info exists ::env($name)] && $::env($name) ne ""} { return $::env($name) }
    return $default
}
proc ipdef {name} {
    # the newest version of a Xilinx IP in this Vivado's catalog
    set defs [lsort -dictionary [get_ipdefs -filter "NAME == $name"]]
    if {[llength $defs] == 0} { error "hybridcim_bd: IP $name not found in the Vivado IP catalog" }
    return [lindex $defs end]
}
proc hp_interconnect {slave} {
    # the AXI interconnect the first automation call put in front of the HP port
    set cells [get_bd_cells -of_objects [get_bd_intf_nets -of_objects [get_bd_intf_pins $slave]] \
        -filter {VLNV =~ "xilinx.com:ip:axi_interconnect:*" || VLNV =~ "xilinx.com:ip:smartconnect:*"}]
    if {[llength $cells] != 1} { error "hybridcim_bd: expected one interconnect on $slave, found [llength $cells]" }
    return [lindex $cells 0]
}
proc connect_master {pin slave first} {
    # one connection-automation call per AXI master pin (the pin is the target): the first creates
    # the interconnect in front of the HP port, the others join it
    set intc [expr {$first ? "New AXI Interconnect" : [hp_interconnect $slave]}]
    apply_bd_automation -rule xilinx.com:bd_rule:axi4 \
        -config [list Master $pin Slave $slave Clk_master Auto Clk_slave Auto Clk_xbar Auto \
                 intc_ip $intc master_apm 0] [get_bd_intf_pins $pin]
    if {[llength [get_bd_intf_nets -of_objects [get_bd_intf_pins $pin]]] == 0} {
        error "hybridcim_bd: $pin is still unconnected after connection automation"
    }
}

set here [file normalize [file dirname [info script]]]
set part [env_or PART xc7z020clg400-1]
set board_part [env_or BOARD_PART tul.com.tw:pynq-z2:part0:1.0]
set ip_repo [file normalize [env_or IP_REPO $here/../hls/build/hls_sun-mars-256/sol1/impl/ip]]
set out [file normalize [env_or OUT $here/build/out]]
set jobs [env_or JOBS 4]
set clock_mhz [env_or CLOCK_MHZ 100]
set proj_dir [file normalize [env_or PROJ_DIR $here/build/vivado_$part]]
set zynqmp [expr {![string match -nocase xc7z* $part]}]

if {![file isdirectory $ip_repo]} { error "hybridcim_bd: no HLS IP at $ip_repo (run make -C hls ip first)" }
create_project -force hybridcim $proj_dir -part $part
if {[lsearch -exact [get_board_parts] $board_part] < 0} {
    error "hybridcim_bd: board files for $board_part are not installed in this Vivado (the PS DDR and MIO\
           settings come from them): install them (Vivado board store, or copy the vendor's board_files into\
           <Vivado>/data/boards/board_files) and run again"
}
set_property board_part $board_part [current_project]
set_property ip_repo_paths [list $ip_repo] [current_project]
update_ip_catalog

create_bd_design hybridcim
if {$zynqmp} {
    set ps [create_bd_cell -type ip -vlnv [ipdef zynq_ultra_ps_e] zynq_ultra_ps_e_0]
    apply_bd_automation -rule xilinx.com:bd_rule:zynq_ultra_ps_e -config {apply_board_preset "1"} $ps
    set_property -dict [list CONFIG.PSU__USE__M_AXI_GP0 {1} CONFIG.PSU__USE__M_AXI_GP1 {0} \
        CONFIG.PSU__USE__M_AXI_GP2 {0} CONFIG.PSU__USE__S_AXI_GP2 {1} CONFIG.PSU__SAXIGP2__DATA_WIDTH {128} \
        CONFIG.PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ $clock_mhz] $ps
    set ctrl_master /zynq_ultra_ps_e_0/M_AXI_HPM0_FPD
    set hp_slave /zynq_ultra_ps_e_0/S_AXI_HP0_FPD
} else {
    set ps [create_bd_cell -type ip -vlnv [ipdef processing_system7] ps7]
    apply_bd_automation -rule xilinx.com:bd_rule:processing_system7 \
        -config {make_external "FIXED_IO, DDR" apply_board_preset "1" Master "Disable" Slave "Disable"} $ps
    set_property -dict [list CONFIG.PCW_USE_M_AXI_GP0 {1} CONFIG.PCW_USE_S_AXI_HP0 {1} \
        CONFIG.PCW_S_AXI_HP0_DATA_WIDTH {64} CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ $clock_mhz] $ps
    set ctrl_master /ps7/M_AXI_GP0
    set hp_slave /ps7/S_AXI_HP0
}
set accel [create_bd_cell -type ip -vlnv hybridcim.org:hls:hybridcim_accel:1.0 hybridcim_accel_0]

# control: the PS master -> s_axi_control (interconnect, clock and reset by automation)
apply_bd_automation -rule xilinx.com:bd_rule:axi4 \
    -config [list Master $ctrl_master Slave /hybridcim_accel_0/s_axi_control Clk_master Auto Clk_slave Auto \
             Clk_xbar Auto intc_ip "New AXI Interconnect" master_apm 0] [get_bd_intf_pins /hybridcim_accel_0/s_axi_control]
# data: each AXI master pin -> the one HP port
set first 1
foreach m {m_axi_gmem0 m_axi_gmem1 m_axi_gmem2 m_axi_gmem3 m_axi_gmem4} {
    connect_master /hybridcim_accel_0/$m $hp_slave $first
    set first 0
}
assign_bd_address
validate_bd_design
save_bd_design
generate_target all [get_files hybridcim.bd]

make_wrapper -files [get_files hybridcim.bd] -top
set wrapper [glob -nocomplain $proj_dir/hybridcim.gen/sources_1/bd/hybridcim/hdl/hybridcim_wrapper.v \
                               $proj_dir/hybridcim.srcs/sources_1/bd/hybridcim/hdl/hybridcim_wrapper.v]
if {[llength $wrapper] == 0} { error "hybridcim_bd: make_wrapper wrote no hybridcim_wrapper.v" }
add_files -norecurse [lindex $wrapper 0]
set_property top hybridcim_wrapper [current_fileset]

launch_runs impl_1 -to_step write_bitstream -jobs $jobs
wait_on_run impl_1
set progress [get_property PROGRESS [get_runs impl_1]]
set status [get_property STATUS [get_runs impl_1]]
if {$progress ne "100%"} { error "hybridcim_bd: implementation stopped at $progress ($status): see $proj_dir/hybridcim.runs" }

# reports and timing on the implemented design (it must be open first)
open_run impl_1
file mkdir $out
report_utilization -file $out/utilization.txt
report_timing_summary -max_paths 10 -file $out/timing.txt
set wns [get_property SLACK [get_timing_paths -delay_type max -max_paths 1 -nworst 1]]
set whs [get_property SLACK [get_timing_paths -delay_type min -max_paths 1 -nworst 1]]
if {$wns eq "" || $whs eq ""} { error "hybridcim_bd: no timing paths found in the implemented design" }
puts "hybridcim_bd: WNS = $wns ns, WHS = $whs ns at $clock_mhz MHz"
if {$wns < 0} { error "hybridcim_bd: timing not met: WNS = $wns ns (setup) at $clock_mhz MHz; see $out/timing.txt" }
if {$whs < 0} { error "hybridcim_bd: timing not met: WHS = $whs ns (hold); see $out/timing.txt" }

set bit [glob -nocomplain $proj_dir/hybridcim.runs/impl_1/*.bit]
set hwh [glob -nocomplain $proj_dir/hybridcim.gen/sources_1/bd/hybridcim/hw_handoff/hybridcim.hwh \
                          $proj_dir/hybridcim.srcs/sources_1/bd/hybridcim/hw_handoff/hybridcim.hwh]
if {[llength $bit] != 1} { error "hybridcim_bd: expected one .bit in $proj_dir/hybridcim.runs/impl_1, found [llength $bit]" }
if {[llength $hwh] == 0} { error "hybridcim_bd: no hybridcim.hwh (hardware handoff) was generated" }
file copy -force [lindex $bit 0] $out/hybridcim.bit
file copy -force [lindex $hwh 0] $out/hybridcim.hwh
puts "hybridcim_bd: wrote $out/hybridcim.bit and $out/hybridcim.hwh"
