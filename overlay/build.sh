#!/usr/bin/env bash
# Build the hybridcim overlay for a PYNQ board: HLS IP (Vitis HLS) -> block design, implementation,
# bitstream (Vivado) -> bitstreams/<board>/{hybridcim.bit, hybridcim.hwh, manifest.json}.
#
#   make -C overlay BOARD=pynq-z2          (or: BOARD=kv260 overlay/build.sh)
#
# Boards: pynq-z2 (Zynq-7000 xc7z020, 32-bit AXI addresses, the PYNQ v3.0.1 image) and kv260
# (Zynq UltraScale+ K26, 64-bit addresses, the Kria-PYNQ image). Needs Vitis HLS and Vivado
# 2023.x or later on PATH with the board's files installed, and this package installed
# (pip install -e '.[csim]') for the testbench data and the manifest.
# Environment: BOARD, PRESET (sun-mars-256), PART / BOARD_PART (from BOARD), JOBS (4),
# CLOCK_MHZ (100: the PL clock; the HLS clock period follows),
# URAM (from BOARD: 1 on the kv260, the activation buffer in UltraRAM, -DHCIM_URAM; 0 on the pynq-z2,
# which has no UltraRAM: URAM=1 there is refused by hls/run_hls.tcl),
# OUT (bitstreams/<board>), BUILD_DIR (overlay/build/<board>: Vivado project, staging),
# HLS_PROJ (hls/build/hls_<preset>_<board>), TB_DATA (given: used
# as is; else written by `make -C hls tb-data`), COSIM=1 (also run the one-image RTL
# co-simulation; off by default), PYTHON.
# The outputs land in OUT only after implementation, timing (WNS, WHS >= 0) and the manifest
# all succeeded. NOT RUN on the development machines (no Vivado/Vitis there); tests/overlay
# runs this script with stub tools that record their calls.
set -euo pipefail
BOARD=${BOARD:-pynq-z2}
PRESET=${PRESET:-sun-mars-256}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
PYTHON=${PYTHON:-$( [ -x "$repo/.venv/bin/python" ] && echo "$repo/.venv/bin/python" || echo python3 )}
case "$BOARD" in
    pynq-z2) part=xc7z020clg400-1;    board_part=tul.com.tw:pynq-z2:part0:1.0;    addr64=0; uram=0 ;;
    kv260)   part=xck26-sfvc784-2LV-c; board_part=xilinx.com:kv260_som:part0:1.4; addr64=1; uram=1 ;;
    *) echo "build.sh: unknown BOARD=$BOARD (known: pynq-z2, kv260)" >&2; exit 2 ;;
esac
PART=${PART:-$part}
URAM=${URAM:-$uram}   # 1: the activation buffer in UltraRAM (-DHCIM_URAM; the KV260's default)
CLOCK_MHZ=${CLOCK_MHZ:-100}
CLOCK_NS=$(awk -v f="$CLOCK_MHZ" 'BEGIN { if (f <= 0) exit 1; printf "%g", 1000 / f }') \
    || { echo "build.sh: CLOCK_MHZ=$CLOCK_MHZ is not a positive number" >&2; exit 2; }
BOARD_PART=${BOARD_PART:-$board_part}
OUT=${OUT:-$repo/bitstreams/$BOARD}
HLS_PROJ=${HLS_PROJ:-$repo/hls/build/hls_${PRESET}_$BOARD}
BUILD_DIR=${BUILD_DIR:-$here/build/$BOARD}
stage="$BUILD_DIR/out"
for tool in vitis_hls vivado; do
    command -v "$tool" >/dev/null || { echo "build.sh: $tool not on PATH (needs Vitis HLS + Vivado 2023.x or later)" >&2; exit 1; }
done

if [ -z "${TB_DATA:-}" ]; then
    TB_DATA="$repo/hls/tb/data/$PRESET"
    make -C "$repo/hls" tb-data PRESET="$PRESET" PYTHON="$PYTHON"
fi
steps="csim csynth export"
if [ "${COSIM:-0}" = 1 ]; then
    make -C "$repo/hls" cosim-data PRESET="$PRESET" PYTHON="$PYTHON"
    steps="csim csynth cosim export"
fi
make -C "$repo/hls" ip PRESET="$PRESET" PART="$PART" ADDR64="$addr64" URAM="$URAM" PROJ="$HLS_PROJ" TB_DATA="$TB_DATA" \
    IP_STEPS="$steps" PYTHON="$PYTHON" CLOCK_NS="$CLOCK_NS"

rm -rf "$stage"
mkdir -p "$stage"
IP_REPO="$HLS_PROJ/sol1/impl/ip" OUT="$stage" PART="$PART" BOARD_PART="$BOARD_PART" CLOCK_MHZ="$CLOCK_MHZ" \
    PROJ_DIR="$BUILD_DIR/vivado" \
    vivado -mode batch -nojournal -log "$BUILD_DIR/vivado.log" -source "$here/hybridcim_bd.tcl"
headers=("$HLS_PROJ"/sol1/impl/ip/drivers/*/src/xhybridcim_accel_hw.h)
[ -f "${headers[0]}" ] || { echo "build.sh: the HLS export has no xhybridcim_accel_hw.h" >&2; exit 1; }
cp "${headers[0]}" "$stage/"
tools="$(vivado -version | head -1); $(vitis_hls -version | head -1)"
(cd "$repo" && "$PYTHON" -m hybridcim.runtime.bitstream --board "$BOARD" --preset "$PRESET" --part "$PART" \
    --bit hybridcim.bit --hwh hybridcim.hwh --driver-header xhybridcim_accel_hw.h --clock-mhz "$CLOCK_MHZ" --out "$stage" --tools "$tools")
mkdir -p "$OUT"
for f in hybridcim.bit hybridcim.hwh xhybridcim_accel_hw.h utilization.txt timing.txt manifest.json; do
    cp "$stage/$f" "$OUT/$f.tmp" && mv -f "$OUT/$f.tmp" "$OUT/$f"   # manifest.json last
done
echo "build.sh: $OUT ready: copy it to the board's bitstreams/$BOARD, then: hybridcim run --backend pynq --board $BOARD"
