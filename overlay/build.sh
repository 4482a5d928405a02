#!/usr/bin/env bash
# Build the hybridcim overlay for a PYNQ board: HLS IP (Vitis HLS) -> block design + bitstream
# (Vivado) -> bitstreams/<board>/{hybridcim.bit, hybridcim.hwh, manifest.json}.
#
#   BOARD=pynq-z2 PRESET=sun-mars-256 PART=xc7z020clg400-1 overlay/build.sh
#
# Needs Vitis HLS and Vivado 2023.x or later on PATH, and the Python package installed
# (pip install -e '.[csim]') for the testbench data and the manifest. NOT RUN on the
# development machines (no Vivado/Vitis there): nothing in bitstreams/ comes from this script
# until someone runs it with the tools.
set -euo pipefail
BOARD=${BOARD:-pynq-z2}
PRESET=${PRESET:-sun-mars-256}
PART=${PART:-xc7z020clg400-1}
PYTHON=${PYTHON:-python3}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
for tool in vitis_hls vivado; do
    command -v "$tool" >/dev/null || { echo "build.sh: $tool not on PATH (needs Vitis HLS + Vivado 2023.x+)" >&2; exit 1; }
done
out="$repo/bitstreams/$BOARD"
make -C "$repo/hls" tb-data PRESET="$PRESET" PYTHON="$PYTHON"
make -C "$repo/hls" ip PRESET="$PRESET" PART="$PART"
mkdir -p "$out" "$here/build"
IP_REPO="$repo/hls/build/hls_$PRESET/sol1/impl/ip" OUT="$out" PART="$PART" \
    vivado -mode batch -nojournal -log "$here/build/vivado_$BOARD.log" -source "$here/hybridcim_bd.tcl"
cp "$repo"/hls/build/hls_"$PRESET"/sol1/impl/ip/drivers/*/src/xhybridcim_accel_hw.h "$out/"
(cd "$repo" && "$PYTHON" -m hybridcim.runtime.bitstream --board "$BOARD" --preset "$PRESET" --part "$PART" \
    --bit hybridcim.bit --hwh hybridcim.hwh --driver-header xhybridcim_accel_hw.h --out "$out" \
    --tools "$(vivado -version | head -1); $(vitis_hls -version 2>/dev/null | head -1)")
echo "build.sh: $out ready (copy it to the board's hybridcim checkout, then: hybridcim run --backend pynq)"
