# Vivado block design of the hybridcim overlay for PYNQ boards (default PYNQ-Z2, xc7z020clg400-1):
# Zynq-7000 PS (DDR, FCLK0 = 100 MHz) + the hybridcim_accel HLS IP.
#   control: PS M_AXI_GP0 -> AXI interconnect -> hybridcim_accel s_axi_control
#   data:    hybridcim_accel m_axi_gmem0..4 (program, images, out, scratch, counters) -> AXI interconnect -> PS S_AXI_HP0 (DDR)
#
# Run by overlay/build.sh:  vivado -mode batch -source overlay/hybridcim_bd.tcl
# Environment: IP_REPO (HLS export, hls/build/hls_<preset>/sol1/impl/ip), OUT (bitstreams/<board>),
# PART (xc7z020clg400-1), BOARD_PART (tul.com.tw:pynq-z2:part0:1.0; optional), JOBS (4).
# NOT RUN on the development machines (no Vivado there): untested until someone with Vivado runs it.

proc env_or {name default} {
    if {[info exists ::env($name)] && $::env($name) ne ""} { return $::env($name) }
    return $default
}
set here [file normalize [file dirname [info script]]]
set part [env_or PART xc7z020clg400-1]
set board_part [env_or BOARD_PART tul.com.tw:pynq-z2:part0:1.0]
set ip_repo [file normalize [env_or IP_REPO $here/../hls/build/hls_sun-mars-256/sol1/impl/ip]]
set out [file normalize [env_or OUT $here/../bitstreams/pynq-z2]]
set jobs [env_or JOBS 4]
set proj_dir $here/build/vivado

create_project -force hybridcim $proj_dir -part $part
if {[lsearch [get_board_parts] $board_part] >= 0} {
    set_property board_part $board_part [current_project]
} else {
    puts "WARNING: board part $board_part not installed; PS7 DDR/MIO settings fall back to defaults"
}
set_property ip_repo_paths [list $ip_repo] [current_project]
update_ip_catalog

create_bd_design hybridcim
set ps [create_bd_cell -type ip -vlnv xilinx.com:ip:processing_system7:5.5 ps7]
apply_bd_automation -rule xilinx.com:bd_rule:processing_system7 \
    -config {make_external "FIXED_IO, DDR" apply_board_preset "1" Master "Disable" Slave "Disable"} $ps
set_property -dict [list CONFIG.PCW_USE_M_AXI_GP0 {1} CONFIG.PCW_USE_S_AXI_HP0 {1} \
    CONFIG.PCW_S_AXI_HP0_DATA_WIDTH {64} CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ {100}] $ps

set accel [create_bd_cell -type ip -vlnv hybridcim.org:hls:hybridcim_accel:1.0 hybridcim_accel_0]

# control path: GP0 -> s_axi_control (interconnect, reset and clock by automation)
apply_bd_automation -rule xilinx.com:bd_rule:axi4 \
    -config {Master "/ps7/M_AXI_GP0" Clk_master "Auto" Clk_slave "Auto" Clk_xbar "Auto" intc_ip "New AXI Interconnect"} \
    [get_bd_intf_pins $accel/s_axi_control]
# data path: the five AXI masters share HP0 through one interconnect
set first 1
foreach m {m_axi_gmem0 m_axi_gmem1 m_axi_gmem2 m_axi_gmem3 m_axi_gmem4} {
    set intc [expr {$first ? "New AXI Interconnect" : "/axi_mem_intercon"}]
    apply_bd_automation -rule xilinx.com:bd_rule:axi4 \
        -config [list Master "/hybridcim_accel_0/$m" Slave "/ps7/S_AXI_HP0" Clk_master "Auto" Clk_slave "Auto" \
                 Clk_xbar "Auto" intc_ip $intc master_apm "0"] \
        [get_bd_intf_pins ps7/S_AXI_HP0]
    set first 0
}
assign_bd_address
validate_bd_design
save_bd_design

make_wrapper -files [get_files hybridcim.bd] -top
add_files -norecurse [glob $proj_dir/hybridcim.gen/sources_1/bd/hybridcim/hdl/hybridcim_wrapper.v]
set_property top hybridcim_wrapper [current_fileset]
launch_runs impl_1 -to_step write_bitstream -jobs $jobs
wait_on_run impl_1
if {[get_property PROGRESS [get_runs impl_1]] ne "100%"} { error "implementation failed" }

file mkdir $out
file copy -force [lindex [glob $proj_dir/hybridcim.runs/impl_1/*.bit] 0] $out/hybridcim.bit
file copy -force $proj_dir/hybridcim.gen/sources_1/bd/hybridcim/hw_handoff/hybridcim.hwh $out/hybridcim.hwh
report_utilization -file $out/utilization.txt
report_timing_summary -file $out/timing.txt
puts "overlay written to $out"
