"""Reference emulator: the literal CIM datapath of architecture.md §4–§6. Slow, obviously right.

Reads weight bit planes straight from the program's stored words, feeds input bit planes
row block by row block, takes per-column popcounts, shift-adds them with the two's
complement signs, and counts activity as it goes (tile -> row block -> input bit -> group
-> column, the hardware's loop order). Use it on small layers; the fast emulator must match
it bit for bit.

Memory traffic is counted as the datapath does it (architecture.md §7): per image the
layer's tables, its input (written into the activation buffer as bit planes), residual and
output; per round of n_macros tiles its present units (loaded into the macros) and, between
rounds, the partial sums; per activated (tile, row block, input plane) the row block's
real rows read from the activation buffer and their 1 bits.
"""
from __future__ import annotations

import numpy as np

from ..cim.bitplanes import pack_rows
from ..cim.macro import column_result
from ..cim.popcount import popcount64
from ..cim.requant import requantize
from ..program.format import Op
from ..program.model import Layer, Program
from .counters import LayerCounters, table_bytes, tensor_bytes, tile_of_units
from .ops import avgpool, im2col, maxpool
from .result import ExecutionResult, check_images, final_output


class ReferenceEmulator:
    """Golden executor over a Program; ``run(images)`` -> ExecutionResult."""

    name = "reference"

    def __init__(self, program: Program):
        self.program = program

    def _cim_layer(self, layer: Layer, x: np.ndarray, res: np.ndarray | None) -> tuple[np.ndarray, LayerCounters]:
        pr = self.program.preset
        a, gw = pr.rows_active, pr.group_width
        bits_in = self.program.tensors[layer.in_tensor].bits
        cols = im2col(x, layer.kh, layer.kw, layer.stride, layer.pad)
        n, ho, wo, k = cols.shape
        m = n * ho * wo
        r = layer.n_rowblocks
        xpad = np.zeros((m, r * a), dtype=np.int64)
        xpad[:, :k] = cols.reshape(m, k)
        # input bit planes packed per row block: (bits_in, M, R) uint64
        xw = np.stack([pack_rows(((xpad >> i) & 1).reshape(m, r, a)) for i in range(bits_in)])
        acc = np.zeros((m, layer.n_filters), dtype=np.int64)
        c = LayerCounters(layer.name, images=n, pixels=ho * wo)
        t_in, t_out = self.program.tensors[layer.in_tensor], self.program.tensors[layer.out_tensor]
        c.macs = layer.n_filters * k * m
        # per image: tables in, input in (and into the activation buffer as bit planes), output out
        c.dram_bytes += table_bytes(layer, self.program) * n + tensor_bytes(t_in, n) + tensor_bytes(t_out, n)
        c.act_buffer_bits += int(np.prod(x.shape)) * bits_in
        if layer.res_tensor is not None:
            c.dram_bytes += tensor_bytes(self.program.tensors[layer.res_tensor], n)
        c.units_total, c.units_present = layer.present.size, int(layer.present.sum())
        c.weight_bits = 0
        unit_index = np.full(layer.present.shape, -1, dtype=np.int64)
        unit_index[layer.present] = np.arange(c.units_present)
        tile, macro_of_tile, n_tiles = tile_of_units(layer, self.program)
        c.tiles = n_tiles
        macro_cycles = np.zeros(pr.n_macros, dtype=np.int64)
        prec = layer.precision.astype(np.int64)
        n_rounds = max(1, -(-n_tiles // pr.n_macros))
        # partial sums of every output pixel and filter leave after each round but the last and come back
        c.dram_bytes += 2 * (n_rounds - 1) * m * layer.n_filters * (pr.acc_bits // 8)
        for t in range(n_tiles):
            for b in range(r):
                groups = [g for g in range(layer.n_groups) if tile[g, b] == t and layer.present[g, b]]
                if not groups:
                    c.units_skipped += int(((tile[:, b] == t)).sum()) * bits_in * m
                    continue
                rows_real = min(a, k - b * a)
                c.units_skipped += int(((tile[:, b] == t) & ~layer.present[:, b]).sum()) * bits_in * m
                for g in groups:  # the round loads the unit into its macro once per image: G columns x A rows
                    c.weight_load_bits += gw * a * n
                    c.dram_bytes += gw * a // 8 * n
                for i in range(bits_in):
                    c.rowblock_activations += m
                    macro_cycles[macro_of_tile[t]] += m
                    c.act_buffer_bits += rows_real * m
                    c.input_ones += int(popcount64(xw[i, :, b]).sum())
                    for g in groups:
                        words = layer.words[unit_index[g, b]]
                        c.unit_activations += m
                        for col in range(gw):
                            f = int(layer.col_filter[g, col])
                            if f < 0:
                                continue
                            j = int(layer.col_plane[g, col])
                            count = column_result(popcount64(xw[i, :, b] & words[col]), layer.mode)
                            sign = -1 if j == prec[f] - 1 else 1
                            acc[:, f] += sign * (count << (i + j))
                            c.digital_column_reads += m
                            c.bit_ops += rows_real * m
                            if i == 0:
                                c.weight_bits += rows_real
        c.cells_allocated = c.units_present * gw * a
        c.cycles = int(macro_cycles.max(initial=0))
        acc = acc.reshape(n, ho, wo, layer.n_filters)
        c.requant_ops = acc.size
        y = requantize(acc, layer.bias, layer.shift, layer.clamp_lo, layer.clamp_hi, res,
                       layer.res_shift if res is not None else None)
        return y, c

    def run(self, images: np.ndarray, trace: bool = False) -> ExecutionResult:
        """Run the program on uint8 NCHW images; see ExecutionResult for the layout."""
        p = self.program
        env = {p.input_tensor: check_images(p, images)}
        counters = []
        for layer in p.layers:
            x = env[layer.in_tensor]
            if layer.op.is_cim:
                res = env[layer.res_tensor] if layer.res_tensor is not None else None
                y, c = self._cim_layer(layer, x, res)
            else:
                y = maxpool(x, layer) if layer.op == Op.MAXPOOL else avgpool(x, layer)
                c = LayerCounters(layer.name, images=x.shape[0], pixels=y.shape[1] * y.shape[2])
                c.dram_bytes = tensor_bytes(p.tensors[layer.in_tensor], x.shape[0]) + \
                    tensor_bytes(p.tensors[layer.out_tensor], x.shape[0])
                c.requant_ops = y.size if layer.op == Op.AVGPOOL else 0
            env[layer.out_tensor] = y
            counters.append(c)
        tensors = {p.tensors[t].name: v for t, v in env.items()} if trace else None
        return ExecutionResult(final_output(p, env[p.output_tensor]), counters, tensors)
