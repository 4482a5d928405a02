"""Resource estimate of the HLS kernel (LUT, FF, BRAM36, DSP) per block, for a preset and a board.

An **estimate, not checked by csynth**: no Vitis HLS run exists here. Two parts:

* **On-chip memories** are read from the kernel sources (hls/*.cpp): every array (file-scope,
  static or local, struct members included) with its element width and dimensions evaluated
  from the preset's ``HCIM_*`` constants, split into banks by its ``ARRAY_PARTITION`` pragmas;
  a bank of 1 Kbit or more is block RAM (36 Kb blocks in their 7-series/UltraScale+ aspect
  ratios 512x72 ... 32Kx1, UG473/UG573; half blocks counted as 0.5), a smaller one
  LUTRAM/registers (one LUT per 64 bits, SLICEM RAM64X1S); an array bound to UltraRAM
  (``BIND_STORAGE impl=uram``) takes 288 Kb UltraRAM blocks of one fixed shape, 4096 x 72
  (UG573; ``ceil(width/72) * ceil(depth/4096)`` a bank). The sources are read with the
  ``-D`` flags of the board's build (:data:`BOARD_DEFINES`, as overlay/build.sh sets them:
  ``HCIM_URAM`` on the KV260), and a board without UltraRAM (:data:`BOARD_URAM` 0, the
  Zynq-7000 of the PYNQ-Z2) refuses an estimate with ``HCIM_URAM``.
* **Logic** is counted per block from the datapath's width (:class:`Datapath`): a popcount of
  ``n`` bits as the binary adder tree the C loop describes (``n/2`` two-input LUT6_2 sums that
  also absorb the AND of x and w, then adders of growing width, one LUT per sum bit on the
  carry chain), with the 6:3-compressor tree (three LUT6 per 6:3 counter: J. Gray, "Quick
  FPGA Hacks: Population count", fpga.org 2014; Kumm & Zipf, FPL 2014) as its lower bound;
  adders one LUT per bit; barrel shifters one LUT6 (4:1 mux) per bit per two shift stages;
  pipeline registers about half the LUT outputs; the Vitis HLS AXI adapters by a typical
  figure per interface (an assumption, stated in the block). DSPs: every product reached from
  a pipelined loop (inner loops unrolled, callees inlined: :meth:`SourceModel.pipeline_multipliers`),
  3 DSP48 per 32-bit product and 4 per 64-bit one; products elsewhere share one multiplier per
  function. Products by a power of two or a constant under 1024 are LUT shifts and adds.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import ceil, log2
from pathlib import Path

from ..spec.hardware import HardwarePreset, get_preset
from .kernel_cycles import LABEL, Board, get_board
from .kernel_source import SourceModel

BRAM36_SHAPES = ((512, 72), (1024, 36), (2048, 18), (4096, 9), (8192, 4), (16384, 2), (32768, 1))
BRAM_MIN_BITS = 1024
URAM_SHAPE = (4096, 72)  # an UltraRAM block (288 Kb): one aspect ratio only (UG573)
# UltraRAM blocks of the board's part (the Board table of kernel_cycles predates them): the
# Zynq-7000 has none (DS190); the K26 SOM's XCK26 has 64 (DS987)
BOARD_URAM = {"pynq-z2": 0, "kv260": 64}
# the kernel's -D flags the board's build sets (overlay/build.sh's board table: uram=1 -> URAM=1
# -> hls/run_hls.tcl adds -DHCIM_URAM); tests check the two tables agree
BOARD_DEFINES = {"pynq-z2": frozenset(), "kv260": frozenset({"HCIM_URAM"})}
URAM_DEFINE = "HCIM_URAM"


@dataclass(frozen=True)
class Block:
    """One block of the estimate: resources and the reasoning behind them."""

    name: str
    luts: float
    ffs: float
    bram36: float
    dsps: float
    why: str
    uram: float = 0


@dataclass(frozen=True)
class Datapath:
    """Width of the per-cycle datapath: ``columns`` popcounts of ``rows`` bits for each of ``planes`` input planes."""

    columns: int
    planes: int
    rows: int
    acc_bits: int = 32


# ---- arithmetic building blocks (LUT6 + carry chain) ----

def adder_tree_luts(widths: list[int]) -> int:
    """LUTs of a balanced binary adder tree over operands of the given bit widths (one LUT per sum bit)."""
    ws, luts = sorted(widths), 0
    while len(ws) > 1:
        nxt = []
        for a, b in zip(ws[0::2], ws[1::2]):
            w = max(a, b) + 1
            luts += w
            nxt.append(w)
        if len(ws) % 2:
            nxt.append(ws[-1])
        ws = sorted(nxt)
    return luts


def popcount_luts(n: int) -> int:
    """Binary adder tree of an n-bit popcount (as `for k: s += bit` synthesizes); first level: one LUT6_2 per bit pair.

    >>> popcount_luts(64)   # 32 + 16*3 + 8*4 + 4*5 + 2*6 + 7
    151
    """
    return n // 2 + adder_tree_luts([2] * (n // 2) + [1] * (n % 2)) if n > 1 else n


def compressor_popcount_luts(n: int) -> int:
    """Lower bound: 6:3 counters (3 LUT6 each) column by column until <= 3 bits a column, then a ternary adder.

    >>> compressor_popcount_luts(64), compressor_popcount_luts(6)
    (70, 3)
    """
    cols, luts = [n], 0
    while max(cols) > 3:
        nxt = [0] * (len(cols) + 2)
        for i, h in enumerate(cols):
            k = ceil(h / 6) if h > 3 else 0
            luts += 3 * k
            rest = h - min(h, 6 * k)
            nxt[i] += rest + k
            nxt[i + 1] += k
            nxt[i + 2] += k
        while nxt and nxt[-1] == 0:
            nxt.pop()
        cols = nxt
    return luts + (len(cols) if max(cols) > 1 else 0)  # the last ternary adder, unless one bit a column is left


def uram_blocks(depth: int, width: int) -> int:
    """288 Kb UltraRAM blocks (4096 x 72 each, cascaded in depth, side by side in width) of one memory bank.

    >>> uram_blocks(16384, 64), uram_blocks(4096, 72), uram_blocks(1536, 32), uram_blocks(4097, 73)
    (4, 1, 1, 4)
    """
    return ceil(width / URAM_SHAPE[1]) * ceil(depth / URAM_SHAPE[0])


def bram36(depth: int, width: int) -> float:
    """36 Kb blocks of one memory bank (best aspect ratio; a bank fitting in 18 Kb counts 0.5).

    >>> bram36(512, 64), bram36(16384, 64), bram36(256, 32)
    (1, 32, 0.5)
    """
    best = min(ceil(width / w) * ceil(depth / d) for d, w in BRAM36_SHAPES)
    return 0.5 if best == 1 and depth * width <= 18 * 1024 and (width <= 36 or depth <= 512) else best


# ---- the estimate ----

@dataclass(frozen=True)
class ResourceEstimate:
    """Blocks, the memories behind the BRAM row, totals and the board's capacity."""

    preset: str
    board: Board
    datapath: Datapath
    blocks: list[Block]
    memories: list[dict]
    label: str = LABEL
    defines: frozenset = frozenset()  # the build's -D flags the sources were read with

    def total(self) -> dict[str, float]:
        return {k: sum(getattr(b, k) for b in self.blocks) for k in ("luts", "ffs", "bram36", "dsps", "uram")}

    def capacity(self) -> dict[str, int]:
        b = self.board
        return {"luts": b.luts, "ffs": b.ffs, "bram36": b.bram36, "dsps": b.dsps, "uram": BOARD_URAM.get(b.name, 0)}

    def fits(self) -> bool:
        tot, cap = self.total(), self.capacity()
        return all(tot[k] <= cap[k] for k in tot)

    def table(self) -> str:
        """Markdown: one row per block, the total and the board's capacity with the utilization.

        A URAM column appears when the board has UltraRAM or the kernel uses some.
        """
        tot, cap = self.total(), self.capacity()
        u = bool(cap["uram"] or tot["uram"])
        rows = [f"| block ({self.label}) | LUT | FF | BRAM36 | DSP |{' URAM |' if u else ''} reasoning |",
                "|---|---:|---:|---:|---:|" + ("---:|" if u else "") + "---|"]
        for b in self.blocks:
            rows.append(f"| {b.name} | {b.luts:,.0f} | {b.ffs:,.0f} | {b.bram36:g} | {b.dsps:g} |"
                        + (f" {b.uram:g} |" if u else "") + f" {b.why} |")
        rows.append(f"| **total** | **{tot['luts']:,.0f}** | **{tot['ffs']:,.0f}** | **{tot['bram36']:g}** | "
                    f"**{tot['dsps']:g}** |" + (f" **{tot['uram']:g}** |" if u else "") + " |")
        pct = {k: 100 * tot[k] / cap[k] if cap[k] else (0 if not tot[k] else float("inf")) for k in tot}
        rows.append(f"| {self.board.name} ({self.board.part}) | {cap['luts']:,} ({pct['luts']:.0f} %) | "
                    f"{cap['ffs']:,} ({pct['ffs']:.0f} %) | {cap['bram36']} ({pct['bram36']:.0f} %) | "
                    f"{cap['dsps']:,} ({pct['dsps']:.0f} %) |" + (f" {cap['uram']} ({pct['uram']:.0f} %) |" if u else "")
                    + f" {'fits' if self.fits() else 'DOES NOT FIT'} |")
        return "\n".join(rows)

    def memory_table(self) -> str:
        """Markdown: every array of 1 BRAM36 or more (name, element bits, dims, banks, blocks)."""
        rows = ["| array (file) | bits x dims | banks | BRAM36 |", "|---|---|---:|---:|"]
        for m in sorted(self.memories, key=lambda m: (-m["bram36"], -m.get("uram", 0))):
            if m["bram36"] >= 1 or m.get("uram"):
                blocks = f"{m['bram36']:g}" if not m.get("uram") else f"0 ({m['uram']:g} URAM)"
                rows.append(f"| `{m['name']}` ({m['file']}) | {m['width']} x {m['dims']} | {m['banks']} | {blocks} |")
        return "\n".join(rows)


def _hls_dir() -> Path:
    from .csim_build import hls_dir
    return hls_dir()


def build_defines(board: "str | Board", uram: "bool | None" = None) -> frozenset:
    """The kernel's -D flags of ``board``'s build; ``uram`` True/False overrides its HCIM_URAM.

    ValueError for HCIM_URAM on a board without UltraRAM (the Zynq-7000 of the PYNQ-Z2).
    """
    b = get_board(board)
    d = set(BOARD_DEFINES.get(b.name, frozenset()))
    if uram is not None:
        (d.add if uram else d.discard)(URAM_DEFINE)
    if URAM_DEFINE in d and not BOARD_URAM.get(b.name, 0):
        raise ValueError(f"board {b.name} ({b.part}) has no UltraRAM: the kernel cannot be built with "
                         f"{URAM_DEFINE} (URAM=1) for it")
    return frozenset(d)


def estimate_resources(preset: "str | HardwarePreset" = "sun-mars-256", board: "str | Board" = "pynq-z2",
                       datapath: Datapath | None = None, hls_dir: Path | None = None,
                       uram: "bool | None" = None) -> ResourceEstimate:
    """The resource estimate of the kernel built for ``preset`` on ``board`` (see the module docstring).

    The sources are read with the board build's -D flags (:func:`build_defines`; ``uram`` overrides
    HCIM_URAM, the UltraRAM binding of the activation buffer, and is refused on a board without UltraRAM).
    """
    p, b = get_preset(preset), get_board(board)
    defines = build_defines(b, uram)
    src = SourceModel(Path(hls_dir) if hls_dir else _hls_dir(), p, defines)
    planes = src.const("HCIM_UNIT_PLANES") or src.const("HCIM_MAX_IN_BITS") or 8
    dp = datapath or Datapath(columns=p.group_width, planes=planes, rows=p.rows_active, acc_bits=p.acc_bits)
    n_pop = dp.columns * dp.planes
    cw = int(log2(dp.rows)) + 1                       # popcount width
    pc, pc_min = popcount_luts(dp.rows), compressor_popcount_luts(dp.rows)
    sa = adder_tree_luts([cw + i for i in range(dp.planes)])  # sum_i n_i << i of one column
    sw = cw + dp.planes                               # shift-add result width
    shw = sw + 8                                      # after << j (weight plane j < 8) and the sign
    shift_luts = shw * 2 + shw                        # 3 shift stages (two LUT levels) + conditional negate
    mems = src.arrays()
    bram = lutram = uram = 0.0
    for m in mems:
        bank_bits = m["depth"] * m["width"]
        m["uram"] = m["banks"] * uram_blocks(m["depth"], m["width"]) if m.get("impl") == "uram" else 0
        in_bram = bank_bits >= BRAM_MIN_BITS and not m.get("lutram") and not m["uram"]  # impl=lutram: LUTRAM
        m["bram36"] = m["banks"] * bram36(m["depth"], m["width"]) if in_bram else 0
        bram += m["bram36"]
        uram += m["uram"]
        lutram += 0 if m["bram36"] or m["uram"] else m["banks"] * ceil(bank_bits / 64)
    n_uram_arrays = sum(1 for m in mems if m["uram"])
    n_mul, n_piped, n_shared = src.multiply_sites()
    per_loop = src.pipeline_multipliers()
    piped_dsp = sum(d for _, _, d in per_loop)
    top = sorted((r for r in per_loop if r[2]), key=lambda r: -r[2])[:4]
    n_cnt = src.const("HCIM_N_COUNTERS") or 16
    rq_lanes = src.const("RQ_LANES") or 1
    n_axi = 5
    blocks = [
        Block("popcount array", n_pop * pc, n_pop * pc / 2, 0, 0,
              f"{dp.columns} columns x {dp.planes} planes = {n_pop} popcounts of {dp.rows} bits a cycle, {pc} LUT "
              f"each as a binary adder tree (6:3-compressor lower bound {pc_min}); FF: a register every other level"),
        Block("plane shift-add", dp.columns * (sa + shift_luts), dp.columns * (sa + shift_luts) / 2, 0, 0,
              f"per column: sum of {dp.planes} counts of {cw} bits shifted by the input plane ({sa} LUT), then "
              f"<< weight plane (3 mux stages) and the MSB sign on {shw} bits ({shift_luts} LUT)"),
        Block("accumulators", dp.columns * dp.acc_bits, dp.columns * dp.acc_bits * 2, 0, 0,
              f"{dp.columns} accumulators of {dp.acc_bits} bits in registers (an adder each; FF: value + input)"),
        Block("window and bit-plane buffer", dp.planes * dp.rows * 3, dp.planes * dp.rows * 2, 0, 0,
              f"per input plane a {dp.rows}-bit funnel shift of the channel words into the row-block word "
              "(6 stages, 3 LUT levels) and its double-buffered register"),
        Block("requant", 480 * rq_lanes, 400 * rq_lanes, 0, 0,
              f"{rq_lanes} filters a cycle, each: 64-bit bias and residual adds (128), shift by <= 31 with round "
              "half to even (5 stages + compare: 256), clamp (96); pipelined over about 6 cycles of 64-bit registers"),
        Block("performance counters", n_cnt * 64, n_cnt * 64, 0, 0, f"{n_cnt} counters of 64 bits, an adder each"),
        Block("on-chip memories", lutram, 0, bram, 0,
              f"{len(mems)} arrays from the sources with their partitioning: BRAM36 per bank by aspect ratio, "
              "banks under 1 Kbit and arrays bound to LUTRAM (BIND_STORAGE impl=lutram) as LUTRAM (64 bits a LUT)"
              + (f", {n_uram_arrays} bound to UltraRAM (impl=uram, {' '.join(sorted(defines))}) in 4096 x 72 blocks"
                 if n_uram_arrays else "") + "; see the memory table", uram=uram),
        Block("AXI interfaces (assumed)", n_axi * 1000 + 300, n_axi * 1500 + 400, n_axi * 0.5, 0,
              f"{n_axi} m_axi adapters (read/write buffers of 16 x 16 beats) + s_axilite: typical Vitis HLS "
              "figures of about 1,000 LUT / 1,500 FF / one 18 Kb buffer each, an assumption, not derived"),
        Block("multipliers in pipelined loops", 0, 0, 0, piped_dsp,
              "every product reached from a pipelined loop, its inner loops unrolled and callees inlined "
              "(largest template instance), 3 DSP48 per 32-bit product, 4 for a 64-bit one; by loop: "
              + (", ".join(f"{lab} {d:,}" for _, lab, d in top) or "none")),
        Block("control and address arithmetic (assumed)", 2000, 3000, 0, 3 * n_shared,
              f"loop FSMs and counters (assumed); the {n_mul - n_piped} variable products outside pipelined loops "
              f"share one 32-bit multiplier (3 DSP48) per function ({n_shared} functions)"),
    ]
    if p.has_tern:  # the second macro type's unit (architecture.md §10): T_TG filters x (n+, n-) a cycle
        tg, ta = src.const("T_TG") or 8, p.tern_rows_active
        tpc, tcw = popcount_luts(ta), int(log2(ta)) + 1
        t_luts = 2 * tg * tpc + tg * (tcw + 1) + tg * dp.acc_bits + ta * 2 * 8
        blocks.insert(4, Block(
            "ternary unit (second macro type)", t_luts, t_luts / 2 + tg * dp.acc_bits, 0, 0,
            f"{tg} filters x 2 cells = {2 * tg} popcounts of {ta} bits a cycle ({tpc} LUT each), n+ - n- "
            f"({tcw + 1} bits) and {tg} accumulators of {dp.acc_bits} bits; the comparator z = [x >= theta] "
            f"on the window stream (64 lanes x 8 planes: about {ta * 2 * 8} LUT)"))
    return ResourceEstimate(p.name, b, dp, blocks, mems, defines=defines)



def main(argv=None) -> int:
    """python -m hybridcim.runtime.kernel_resources [--preset P] [--board B] [--uram|--no-uram]: the tables as Markdown.

    The kernel is read as the board's build compiles it (KV260: the activation buffer in UltraRAM,
    HCIM_URAM); --uram / --no-uram override that (--uram on a board without UltraRAM: exit 2).
    """
    import argparse
    import sys
    ap = argparse.ArgumentParser(prog="python -m hybridcim.runtime.kernel_resources", description=main.__doc__)
    ap.add_argument("--preset", default="sun-mars-256")
    ap.add_argument("--board", default="pynq-z2", choices=("pynq-z2", "kv260"))
    ap.add_argument("--uram", action=argparse.BooleanOptionalAction, default=None,
                    help="build with HCIM_URAM (default: as the board's build does)")
    args = ap.parse_args(argv)
    try:
        e = estimate_resources(args.preset, args.board, uram=args.uram)
    except ValueError as exc:
        print(f"kernel_resources: error: {exc}", file=sys.stderr)
        return 2
    if e.defines:
        print(f"kernel built with {' '.join('-D' + d for d in sorted(e.defines))}\n")
    print(e.table())
    print()
    print(e.memory_table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
