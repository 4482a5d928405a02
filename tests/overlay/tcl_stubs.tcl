# Stub Vivado and Vitis HLS commands: each records its call (name and arguments) and does the
# least the scripts rely on (the files a real run would write, the values a real run would
# return). Then the script $STUB_SCRIPT runs; the call log goes to $STUB_LOG, one call a line,
# words separated by \x1f. Settings: STUB_BOARD_PARTS, STUB_PROGRESS, STUB_WNS, STUB_WHS,
# STUB_HW_HEADER (file export_design copies as the HLS driver header).
# Any command that is neither Tcl's nor stubbed here fails the run ("unstubbed command").

proc stub_env {name default} {
    if {[info exists ::env($name)]} { return $::env($name) }
    return $default
}
set ::calls {}
set ::connected [dict create]
set ::hp_intc ""
set ::proj_dir ""
set ::hls_proj ""

proc record {args} { lappend ::calls $args }
proc stub_write_log {} {
    set f [open $::env(STUB_LOG) w]
    foreach c $::calls {
        set words {}
        foreach w $c { lappend words [string map [list \n \\n] $w] }
        puts $f [join $words \x1f]
    }
    close $f
}
proc touch {path {text stub}} {
    file mkdir [file dirname $path]
    set f [open $path w]; puts -nonewline $f $text; close $f
}
proc opt {lst name {default ""}} {
    set i [lsearch -exact $lst $name]
    if {$i < 0} { return $default }
    return [lindex $lst [expr {$i + 1}]]
}
proc pin {p} { return /[string trimleft $p /] }

if {[llength [info commands exit]]} {
    rename exit __real_exit
} else {  # Python's tkinter removes `exit`: its runner (tcl_harness) turns this error into the exit code
    proc __real_exit {{code 0}} { flush stdout; flush stderr; error "__stub_exit__ $code" }
}
proc exit {{code 0}} { record exit $code; stub_write_log; __real_exit $code }
rename unknown __real_unknown
proc unknown {args} { error "unstubbed command: $args" }

# ---- Vivado ----
proc create_project {args} { record create_project {*}$args; set ::proj_dir [lindex $args 2]; return hybridcim }
proc current_project {args} { return hybridcim }
proc current_fileset {args} { return sources_1 }
proc get_board_parts {args} { record get_board_parts {*}$args; return [stub_env STUB_BOARD_PARTS \
    "tul.com.tw:pynq-z2:part0:1.0 xilinx.com:kv260_som:part0:1.4"] }
proc set_property {args} { record set_property {*}$args }
proc update_ip_catalog {args} { record update_ip_catalog {*}$args }
proc create_bd_design {args} { record create_bd_design {*}$args }
proc get_ipdefs {args} {
    record get_ipdefs {*}$args
    regexp {NAME == (\w+)} [opt $args -filter] -> name
    return [list xilinx.com:ip:$name:10.1 xilinx.com:ip:$name:9.9]
}
proc create_bd_cell {args} { record create_bd_cell {*}$args; return /[lindex $args end] }
proc get_bd_intf_pins {args} { return [pin [lindex $args end]] }
proc apply_bd_automation {args} {
    record apply_bd_automation {*}$args
    set cfg [opt $args -config]
    if {[lsearch -exact $args xilinx.com:bd_rule:axi4] >= 0} {
        set master [pin [dict get $cfg Master]]
        set slave [pin [dict get $cfg Slave]]
        dict set ::connected $master 1
        dict set ::connected $slave 1
        if {[dict get $cfg intc_ip] eq "New AXI Interconnect" && [string match *S_AXI_HP* $slave]} {
            set ::hp_intc /axi_mem_intercon
        }
    }
}
proc get_bd_intf_nets {args} {
    set p [lindex $args end]
    if {[dict exists $::connected $p]} { return [list net:$p] }
    return {}
}
proc get_bd_cells {args} {
    record get_bd_cells {*}$args
    if {$::hp_intc ne "" && [string match *S_AXI_HP* [opt $args -of_objects]]} { return [list $::hp_intc] }
    return {}
}
proc assign_bd_address {args} { record assign_bd_address {*}$args }
proc validate_bd_design {args} { record validate_bd_design {*}$args }
proc save_bd_design {args} { record save_bd_design {*}$args }
proc get_files {args} { return [lindex $args end] }
proc generate_target {args} {
    record generate_target {*}$args
    touch $::proj_dir/hybridcim.gen/sources_1/bd/hybridcim/hw_handoff/hybridcim.hwh "<EDKSYSTEM/>"
}
proc make_wrapper {args} {
    record make_wrapper {*}$args
    touch $::proj_dir/hybridcim.gen/sources_1/bd/hybridcim/hdl/hybridcim_wrapper.v "module hybridcim_wrapper; endmodule"
}
proc launch_runs {args} {
    record launch_runs {*}$args
    touch $::proj_dir/hybridcim.runs/impl_1/hybridcim_wrapper.bit "stub bitstream"
}
proc wait_on_run {args} { record wait_on_run {*}$args }
proc get_runs {args} { return [lindex $args end] }
proc open_run {args} { record open_run {*}$args }
proc report_utilization {args} { record report_utilization {*}$args; touch [opt $args -file] "utilization (stub)" }
proc report_timing_summary {args} { record report_timing_summary {*}$args; touch [opt $args -file] "timing (stub)" }
proc get_timing_paths {args} {
    record get_timing_paths {*}$args
    return [expr {[opt $args -delay_type] eq "min" ? "hold_path" : "setup_path"}]
}
proc get_property {args} {
    record get_property {*}$args
    switch -- [lindex $args 0] {
        PROGRESS { return [stub_env STUB_PROGRESS 100%] }
        STATUS { return "write_bitstream Complete!" }
        SLACK {
            if {[lindex $args 1] eq "hold_path"} { return [stub_env STUB_WHS 0.031] }
            return [stub_env STUB_WNS 0.412]
        }
    }
    error "get_property stub: unknown property [lindex $args 0]"
}

# ---- Vitis HLS (add_files is shared with Vivado) ----
proc open_project {args} { record open_project {*}$args; set ::hls_proj [lindex $args end] }
proc add_files {args} { record add_files {*}$args }
proc set_top {args} { record set_top {*}$args }
proc open_solution {args} { record open_solution {*}$args }
proc set_part {args} { record set_part {*}$args }
proc create_clock {args} { record create_clock {*}$args }
proc config_interface {args} { record config_interface {*}$args }
proc config_export {args} { record config_export {*}$args }
proc csim_design {args} { record csim_design {*}$args }
proc csynth_design {args} { record csynth_design {*}$args }
proc cosim_design {args} { record cosim_design {*}$args }
proc export_design {args} {
    record export_design {*}$args
    set src [stub_env STUB_HW_HEADER ""]
    set dst $::hls_proj/sol1/impl/ip/drivers/hybridcim_accel_v1_0/src/xhybridcim_accel_hw.h
    if {$src ne ""} { file mkdir [file dirname $dst]; file copy -force $src $dst } else { touch $dst "" }
}

if {[catch {uplevel #0 [list source $::env(STUB_SCRIPT)]} msg]} {
    if {[string match "__stub_exit__ *" $msg]} { error $msg }
    record error $msg
    stub_write_log
    puts stderr "ERROR: $msg"
    __real_exit 1
}
stub_write_log
__real_exit 0
