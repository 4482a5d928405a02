"""FPGA kernel cycle model: the overlay's estimated throughput on a board, from a csim loop profile.

This is the **FPGA overlay's** time (PL clock cycles of the HLS kernel on a Zynq board), not
the emulated CIM chip's latency of :mod:`hybridcim.cost` (``latency_*``: the chip's own
cycles at its own clock). Names here say ``kernel_cycles`` and ``board``; the chip's say
``latency``. Every figure is an **estimate, not checked by csynth** (no Vitis HLS run here).

Input: :meth:`CSimDevice.kernel_profile` (the csim library counts, per program layer and over
one kernel call, how often each loop of ``hls/hcim_loops.h`` starts (``entries``) and iterates
(``iters``), and the AXI bursts and bytes it moves), as a dict::

    {"loops": [{"name", "ii", "depth"}...],
     "layers": [{"entries": [..], "iters": [..], "bursts": [r, w], "bytes": [r, w]}...],
     "images": n}            # optional: "call" (same keys as a layer: work outside the layers)

Per layer, in PL cycles:

* a pipelined loop (``ii > 0``): ``entries * depth + max(iters - entries, 0) * ii`` (each start
  pays the pipeline's fill/drain ``depth``, each further iteration ``ii``; a start that runs no
  iteration is charged ``depth`` too, more than the cycle or two of its exit test);
* a loop that is not pipelined (``ii == 0``): ``iters`` (one control cycle per iteration;
  its body's loops are counted as loops of their own);
* DDR: per burst ``latency_cycles`` plus its beats, ``ceil(bytes / beat_bytes)``, where
  ``beat_bytes = min(HP port width, the kernel's m_axi data width)``. The profile gives
  bursts and bytes as totals, so the beats are bounded from above by
  ``floor((bytes + bursts * (beat_bytes - 1)) / beat_bytes)`` (a sum of ceilings is at most
  the floor of the summed numerators): exact for one burst, less than one beat per burst
  too many in general, i.e. under 1/65 of a burst's charged cycles at latency 64.

``kernel_cycles`` = loops + DDR: **serial**, no overlap of bursts with computation or of one
loop with another (the kernel has no DATAFLOW region; a loop that copies a burst word by word
is counted once as loop iterations and once as beats, so the figure errs high by at most the
beats). The profile does not say which port a burst used: every beat is counted at
``beat_bytes``, although the int32 ports (out, scratch) move 4 bytes a beat.
``est_board_images_per_s = images * pl_mhz * 1e6 / total kernel_cycles`` of the call.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

LABEL = "estimate, not checked by csynth"
DEFAULT_PL_MHZ = 100.0


class KernelProfileError(ValueError):
    """A kernel profile or cycle-model argument is malformed (names the field)."""


@dataclass(frozen=True)
class Board:
    """A board of the cycle model: PL clock, HP port width, DDR burst latency, PL resources.

    hp_port_bytes: data bytes per beat of the PS-PL HP port the overlay uses (at the PL clock).
    axi_bytes: the kernel's m_axi data width in bytes (Vivado-flow HLS does not widen ports:
    UG1399 "Default Settings of Vivado/Vitis Flows", m_axi_max_widen_bitwidth = 0, so the u64
    ports move 8 bytes a beat whatever the HP port width).
    burst_latency_cycles: PL cycles from a burst's request to its first beat (read) or from its
    last beat to the response (write), charged once per burst.
    luts/ffs/bram36/dsps: the part's programmable-logic totals.
    """

    name: str
    part: str
    pl_mhz: float
    hp_port_bytes: int
    axi_bytes: int
    burst_latency_cycles: int
    luts: int
    ffs: int
    bram36: int
    dsps: int
    sources: tuple[str, ...] = ()

    @property
    def beat_bytes(self) -> int:
        return min(self.hp_port_bytes, self.axi_bytes)


_LATENCY_SOURCE = ("burst latency 64 PL cycles: the latency Vitis HLS itself assumes for an m_axi "
                   "port when it schedules bursts (UG1399, 'Options for Controlling AXI4 Burst "
                   "Behavior': default latency 64); not measured on a board here")
BOARDS: dict[str, Board] = {
    "pynq-z2": Board(
        "pynq-z2", "xc7z020clg400-1", DEFAULT_PL_MHZ, hp_port_bytes=8, axi_bytes=8, burst_latency_cycles=64,
        luts=53_200, ffs=106_400, bram36=140, dsps=220,
        sources=("Zynq-7020 resources: DS190 (Zynq-7000 SoC overview), XC7Z020 column",
                 "S_AXI_HP0 64 bits at the PL clock FCLK0 = 100 MHz: UG585 ch. 5 (AXI_HP interfaces) and "
                 "overlay/hybridcim_bd.tcl (PCW_S_AXI_HP0_DATA_WIDTH 64)", _LATENCY_SOURCE)),
    "kv260": Board(
        "kv260", "xck26-sfvc784-2LV-c", DEFAULT_PL_MHZ, hp_port_bytes=16, axi_bytes=8, burst_latency_cycles=64,
        luts=117_120, ffs=234_240, bram36=144, dsps=1_248,
        sources=("K26 SOM (XCK26, ZU5EV-class) resources: DS987 (Kria K26 SOM data sheet); also 64 UltraRAM "
                 "blocks (counted by kernel_resources when the build binds arrays to them)",
                 "S_AXI_HP0_FPD 128 bits at pl_clk0 = 100 MHz: UG1085 (PS-PL AXI interfaces) and "
                 "overlay/hybridcim_bd.tcl (PSU__SAXIGP2__DATA_WIDTH 128)", _LATENCY_SOURCE)),
}


def get_board(board: "str | Board") -> Board:
    """A board of :data:`BOARDS` by name (KernelProfileError naming the known ones otherwise)."""
    if isinstance(board, Board):
        return board
    if board not in BOARDS:
        raise KernelProfileError(f"unknown board {board!r} for the kernel cycle model; known: {', '.join(BOARDS)}")
    return BOARDS[board]


def loop_cycles(ii: int, depth: int, entries: int, iters: int) -> int:
    """PL cycles of one loop over ``entries`` starts and ``iters`` iterations in all.

    >>> loop_cycles(1, 6, entries=2, iters=100)     # 2 fills of 6 + 98 more iterations at II 1
    110
    >>> loop_cycles(0, 0, entries=3, iters=12)      # not pipelined: 1 control cycle per iteration
    12
    >>> loop_cycles(1, 6, entries=3, iters=1)       # two of the three starts ran no iteration
    18
    """
    if ii < 0 or depth < 0 or entries < 0 or iters < 0:
        raise KernelProfileError(f"negative loop figure: ii={ii} depth={depth} entries={entries} iters={iters}")
    if ii == 0:
        return iters
    if entries == 0 and iters:
        raise KernelProfileError(f"a pipelined loop iterated {iters} times but never started")
    return entries * depth + max(iters - entries, 0) * ii


def burst_cycles(bursts: int, nbytes: int, beat_bytes: int, latency_cycles: int) -> int:
    """PL cycles of ``bursts`` AXI bursts moving ``nbytes`` bytes in all (upper bound of the beats).

    >>> burst_cycles(1, 4096, beat_bytes=8, latency_cycles=64)    # one 512-beat burst
    576
    >>> burst_cycles(10, 80, beat_bytes=8, latency_cycles=64)     # ten 8-byte words: 10 beats, bound 18
    658
    """
    if bursts < 0 or nbytes < 0 or beat_bytes <= 0 or latency_cycles < 0:
        raise KernelProfileError(f"bad burst figures: bursts={bursts} bytes={nbytes} beat_bytes={beat_bytes}")
    if bursts == 0:
        if nbytes:
            raise KernelProfileError(f"{nbytes} bytes moved in no burst")
        return 0
    beats = (nbytes + bursts * (beat_bytes - 1)) // beat_bytes
    return bursts * latency_cycles + max(beats, bursts)


@dataclass(frozen=True)
class LayerCycles:
    """Kernel cycles of one program layer (or of the call's work outside layers) over one call."""

    index: int
    name: str
    loop_cycles: dict[str, int]
    ddr_cycles: int
    bytes: tuple[int, int]
    bursts: tuple[int, int]

    @property
    def compute_cycles(self) -> int:
        return sum(self.loop_cycles.values())

    @property
    def kernel_cycles(self) -> int:
        return self.compute_cycles + self.ddr_cycles

    @property
    def bound(self) -> str:
        """What takes most of this layer's cycles: a loop's name, or 'ddr'."""
        best = max(self.loop_cycles.items(), key=lambda kv: kv[1], default=("ddr", 0))
        return "ddr" if self.ddr_cycles >= best[1] else best[0]


@dataclass(frozen=True)
class KernelEstimate:
    """The board estimate of one kernel call: per-layer kernel cycles and images per second."""

    board: Board
    pl_mhz: float
    images: int
    layers: list[LayerCycles]
    call: LayerCycles | None = None
    label: str = LABEL
    notes: list[str] = field(default_factory=list)

    @property
    def kernel_cycles(self) -> int:
        return sum(l.kernel_cycles for l in self.layers) + (self.call.kernel_cycles if self.call else 0)

    @property
    def kernel_cycles_per_image(self) -> float:
        return self.kernel_cycles / self.images if self.images else 0.0

    @property
    def est_board_images_per_s(self) -> float:
        return self.images * self.pl_mhz * 1e6 / self.kernel_cycles if self.kernel_cycles else 0.0

    def loop_totals(self) -> dict[str, int]:
        """Cycles per loop name summed over the layers (and the call), plus 'ddr'."""
        tot: dict[str, int] = {}
        for l in self.layers + ([self.call] if self.call else []):
            for k, v in l.loop_cycles.items():
                tot[k] = tot.get(k, 0) + v
            tot["ddr"] = tot.get("ddr", 0) + l.ddr_cycles
        return tot

    @property
    def bound(self) -> str:
        """The loop (or 'ddr') with the most cycles over the whole call."""
        tot = self.loop_totals()
        return max(tot, key=tot.get) if tot else "ddr"

    def as_dict(self) -> dict:
        b = self.board
        return {"label": self.label, "board": b.name, "part": b.part, "pl_mhz": self.pl_mhz,
                "hp_port_bytes": b.hp_port_bytes, "axi_bytes": b.axi_bytes,
                "burst_latency_cycles": b.burst_latency_cycles, "images": self.images,
                "kernel_cycles": self.kernel_cycles, "kernel_cycles_per_image": self.kernel_cycles_per_image,
                "est_board_images_per_s": self.est_board_images_per_s, "bound": self.bound,
                "layers": [{"index": l.index, "name": l.name, "kernel_cycles": l.kernel_cycles,
                            "compute_cycles": l.compute_cycles, "ddr_cycles": l.ddr_cycles, "bound": l.bound,
                            "loops": dict(l.loop_cycles), "bursts": list(l.bursts), "bytes": list(l.bytes)}
                           for l in self.layers],
                "call_cycles": self.call.kernel_cycles if self.call else 0, "notes": list(self.notes)}

    def summary(self) -> str:
        """One line: the estimate with its board, clock and label."""
        return (f"FPGA kernel ({self.label}): {self.est_board_images_per_s:,.0f} images/s on {self.board.name} at "
                f"{self.pl_mhz:g} MHz, {self.kernel_cycles_per_image:,.0f} kernel cycles/image (bound: {self.bound})")

    def table(self) -> str:
        """Markdown table: kernel cycles per image per layer, its loops/DDR split and bound."""
        n = max(self.images, 1)
        rows = ["| layer | kernel cycles / image | compute | DDR | bound |", "|---|---:|---:|---:|---|"]
        for l in self.layers + ([self.call] if self.call else []):
            rows.append(f"| {l.name} | {l.kernel_cycles / n:,.0f} | {l.compute_cycles / n:,.0f} | "
                        f"{l.ddr_cycles / n:,.0f} | {l.bound} |")
        rows.append(f"| **total** | **{self.kernel_cycles_per_image:,.0f}** | | | {self.bound} |")
        return "\n".join(rows)


def _ints(rec: Mapping, key: str, n: int, where: str) -> list[int]:
    v = rec.get(key)
    if not isinstance(v, (list, tuple)) or len(v) != n or not all(isinstance(x, int) and x >= 0 for x in v):
        raise KernelProfileError(f"{where}: {key!r} must be {n} non-negative integers, got {v!r}")
    return [int(x) for x in v]


def _layer(rec: Mapping, loops: Sequence[Mapping], index: int, name: str, b: Board) -> LayerCycles:
    where = f"kernel profile, {name}"
    ent = _ints(rec, "entries", len(loops), where)
    it = _ints(rec, "iters", len(loops), where)
    bursts, nbytes = _ints(rec, "bursts", 2, where), _ints(rec, "bytes", 2, where)
    lc = {}
    for lp, e, i in zip(loops, ent, it):
        try:
            c = loop_cycles(lp["ii"], lp["depth"], e, i)
        except KernelProfileError as err:
            raise KernelProfileError(f"{where}, loop {lp['name']}: {err}") from None
        lc[lp["name"]] = lc.get(lp["name"], 0) + c
    try:
        ddr = sum(burst_cycles(bursts[d], nbytes[d], b.beat_bytes, b.burst_latency_cycles) for d in (0, 1))
    except KernelProfileError as err:
        raise KernelProfileError(f"{where}: {err}") from None
    return LayerCycles(index, name, lc, ddr, (nbytes[0], nbytes[1]), (bursts[0], bursts[1]))


def estimate(profile: Mapping, board: "str | Board" = "pynq-z2", pl_mhz: float | None = None,
             layer_names: Sequence[str] | None = None) -> KernelEstimate:
    """The board estimate of a kernel profile (see the module docstring); KernelProfileError if malformed."""
    b = get_board(board)
    mhz = float(b.pl_mhz if pl_mhz is None else pl_mhz)
    if not mhz > 0 or mhz != mhz or mhz == float("inf"):
        raise KernelProfileError(f"PL clock must be a positive number of MHz, got {pl_mhz!r}")
    if not isinstance(profile, Mapping):
        raise KernelProfileError(f"kernel profile must be a dict, got {type(profile).__name__}")
    loops = profile.get("loops")
    if not isinstance(loops, list) or not loops:
        raise KernelProfileError("kernel profile: 'loops' must be a non-empty list")
    for lp in loops:
        if not (isinstance(lp, Mapping) and isinstance(lp.get("name"), str) and isinstance(lp.get("ii"), int)
                and isinstance(lp.get("depth"), int) and lp["ii"] >= 0 and lp["depth"] >= 0):
            raise KernelProfileError(f"kernel profile: bad loop record {lp!r} (want name, ii >= 0, depth >= 0)")
        if lp["ii"] > 0 and lp["depth"] < 1:
            raise KernelProfileError(f"kernel profile: pipelined loop {lp['name']} has depth {lp['depth']}")
    layers = profile.get("layers")
    if not isinstance(layers, list):
        raise KernelProfileError("kernel profile: 'layers' must be a list")
    images = profile.get("images")
    if not isinstance(images, int) or images < 0:
        raise KernelProfileError(f"kernel profile: 'images' must be a non-negative integer, got {images!r}")
    if layer_names is not None and len(layer_names) != len(layers):
        raise KernelProfileError(f"kernel profile has {len(layers)} layers, the program {len(layer_names)}")
    names = list(layer_names) if layer_names is not None else [f"layer {i}" for i in range(len(layers))]
    out = [_layer(rec, loops, i, names[i], b) for i, rec in enumerate(layers)]
    call = _layer(profile["call"], loops, -1, "(per call)", b) if profile.get("call") is not None else None
    notes = [] if call else ["work outside the layers (program checks, tables) is not in the profile"]
    return KernelEstimate(b, mhz, images, out, call, notes=notes)


def estimate_device(device, board: "str | Board" = "pynq-z2", pl_mhz: float | None = None) -> KernelEstimate:
    """The board estimate of ``device``'s last kernel call (a device with ``kernel_profile()``: CSimDevice)."""
    return estimate(device.kernel_profile(), board, pl_mhz, [l.name for l in device.program.layers])


def json_fields(est: "KernelEstimate | None") -> dict:
    """The fields ``hybridcim run --json`` adds: est_board_images_per_s and the per-layer kernel cycles."""
    if est is None:
        return {}
    return {"est_board_images_per_s": est.est_board_images_per_s, "kernel_cycles": est.as_dict()}

