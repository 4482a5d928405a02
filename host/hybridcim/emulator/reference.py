"""Reference emulator: the literal CIM datapath of architecture.md §4–§6. Slow, obviously right.

Dual-path layers (flags bit 0, architecture.md §10) run their last ⌊F·q/8⌋ filters on the ternary
macros: per tile and row block, the binary input (x ≥ bin_threshold) is ANDed with the positive
and the negative cells, and the difference of the two popcounts enters the accumulator unshifted.

Hybrid layers (mode 1, architecture.md §9) take per output pixel and column group a saliency
and boundary level first, then route every (weight plane, input plane) column read through
the adder tree, the ADC model (with the optional Philox noise) or nowhere (skipped).

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
from ..cim.hybrid import (PATH_ANALOG, PATH_DIGITAL, NOISE_FRAC_BITS, adc_code, adc_count, analog_noise, level_of,
                          noise_counter, noise_key, pair_depth, pair_path, saliency_of_words)
from ..cim.macro import column_result
from ..cim.popcount import popcount64
from ..cim.requant import requantize
from ..program.dualpath import DUAL, tern_tiles
from ..program.format import FLAG_DUAL, MODE_HYBRID, Op
from ..program.model import Layer, Program
from .counters import LayerCounters, table_bytes, tensor_bytes, tile_of_units
from .ops import avgpool, im2col, maxpool
from .result import ExecutionResult, check_images, final_output


class ReferenceEmulator:
    """Golden executor over a Program; ``run(images)`` -> ExecutionResult."""

    name = "reference"

    def __init__(self, program: Program):
        self.program = program

    def _levels(self, layer: Layer, xw: np.ndarray, bits_in: int, c: LayerCounters) -> tuple[np.ndarray, np.ndarray]:
        """Hybrid mode (§9.4): per (pixel, group) the saliency, its level and that level's
        (digital_depth, keep_depth), int64 (M, NG) each; counts saliency_ops and the level histogram."""
        hp = layer.hybrid
        m = xw.shape[1]
        # the saliency unit: per pixel and row block, the popcounts of the top sal_planes input planes
        per_block = saliency_of_words(xw, bits_in, hp.sal_planes)  # (M, R)
        c.saliency_ops += hp.sal_planes * int(layer.present.any(axis=0).sum()) * m
        sal = (per_block[:, None, :] * layer.present[None, :, :]).sum(axis=2)  # (M, NG): present blocks only
        lev = level_of(sal, hp.thresholds)
        has_units = layer.present.any(axis=1)  # a group without present units takes no decision
        for k in range(hp.n_levels):
            setattr(c, f"decisions_level{k}", getattr(c, f"decisions_level{k}") + int((lev[:, has_units] == k).sum()))
        return np.asarray(hp.digital_depth, np.int64)[lev], np.asarray(hp.keep_depth, np.int64)[lev]

    def _cim_layer(self, layer: Layer, x: np.ndarray, res: np.ndarray | None, layer_index: int = 0,
                   image_base: int = 0) -> tuple[np.ndarray, LayerCounters]:
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
        dual = bool(layer.flags & FLAG_DUAL)
        n_sram = layer.dual.first_tern(layer.n_filters) if dual else layer.n_filters  # filters on the SRAM path
        # partial sums of every output pixel and SRAM filter leave after each round but the last and come back
        c.dram_bytes += 2 * (n_rounds - 1) * m * n_sram * (pr.acc_bits // 8)
        hybrid = layer.mode == MODE_HYBRID
        if hybrid:
            hp = layer.hybrid
            dd, kd = self._levels(layer, xw, bits_in, c)
            key = noise_key(hp.noise_seed, layer_index)
            image_of = image_base + np.arange(m) // (ho * wo)  # global image index of every output pixel
            pixel_of = np.arange(m) % (ho * wo)
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
                            sign = -1 if j == prec[f] - 1 else 1
                            n_bl = popcount64(xw[i, :, b] & words[col])
                            if not hybrid:
                                count = column_result(n_bl, layer.mode)
                                c.digital_column_reads += m
                            else:  # §9: this pair's path at each pixel's level
                                path = pair_path(pair_depth(int(prec[f]), j, bits_in, i), dd[:, g], kd[:, g])
                                dig, ana = path == PATH_DIGITAL, path == PATH_ANALOG
                                n16 = n_bl << NOISE_FRAC_BITS
                                if hp.noise_pairs:
                                    n16 = n16 + analog_noise(key, noise_counter(image_of, pixel_of, g * gw + col, b, i, j),
                                                             hp.noise_pairs, hp.noise_shift)
                                analog = adc_count(adc_code(n16, a, pr.adc_bits), a, pr.adc_bits)
                                count = np.where(dig, n_bl, np.where(ana, analog, 0))
                                c.digital_column_reads += int(dig.sum())
                                c.analog_column_reads += int(ana.sum())
                                c.adc_conversions += int(ana.sum())
                                c.skipped_bitplanes += int(m - dig.sum() - ana.sum())
                            acc[:, f] += sign * (count << (i + j))
                            c.bit_ops += rows_real * m
                            if i == 0:
                                c.weight_bits += rows_real
        c.cells_allocated = c.units_present * gw * a
        c.cycles = int(macro_cycles.max(initial=0))
        if dual:  # §10: the ternary path on the second macro type, in parallel: the layer takes the longer path
            self._ternary_path(layer, x, cols.reshape(m, k), acc, c, ho * wo)
            c.cycles = max(c.cycles, c.tern_cycles)
        acc = acc.reshape(n, ho, wo, layer.n_filters)
        c.requant_ops = acc.size
        y = requantize(acc, layer.bias, layer.shift, layer.clamp_lo, layer.clamp_hi, res,
                       layer.res_shift if res is not None else None)
        return y, c

    def _ternary_path(self, layer: Layer, x: np.ndarray, cols: np.ndarray, acc: np.ndarray, c: LayerCounters,
                      pixels: int) -> None:
        """Dual-path layer (§10.3, §10.4): accumulate the ternary filters into ``acc`` (M, F) from the
        im2col windows ``cols`` (M, K), tile by tile and row block by row block, counting as it goes."""
        pr = self.program.preset
        at, period = pr.tern_rows_active, pr.tern_refresh_cycles
        m, k = cols.shape
        n = m // pixels
        f0 = layer.dual.first_tern(layer.n_filters)
        f_t = layer.n_filters - f0
        r_t = -(-k // at)
        bpad = np.zeros((m, r_t * at), dtype=np.int64)
        bpad[:, :k] = cols >= layer.dual.bin_threshold  # binary input: zero padding and rows past K give 0
        bw = pack_rows(bpad.reshape(m, r_t, at))  # (M, R_t): one word per pixel and ternary row block
        c.dram_bytes += DUAL.size * n  # the dual section, per image like the other tables
        if f_t:  # the binary plane is written into the activation buffer once per image
            c.act_buffer_bits += int(np.prod(x.shape))
        tile, macro_of_tile, n_tiles = tern_tiles(f_t, r_t, pr)
        c.tern_tiles = n_tiles
        busy = np.zeros(pr.tern_n_macros, dtype=np.int64)
        n_rounds = max(1, -(-n_tiles // pr.tern_n_macros))
        c.dram_bytes += 2 * (n_rounds - 1) * m * f_t * (pr.acc_bits // 8)
        for t in range(n_tiles):
            us = sorted(set(np.nonzero(tile == t)[0].tolist()))
            bs = sorted(set(np.nonzero(tile == t)[1].tolist()))
            for b in bs:  # the tile is written before its macro runs it: 2 cells x A_t rows per filter and block
                c.tern_weight_load_bits += 2 * len(us) * at * n
                c.dram_bytes += 2 * len(us) * at // 8 * n
            for b in bs:
                rows_real = min(at, k - b * at)
                c.tern_rowblock_activations += m
                busy[macro_of_tile[t]] += m
                c.act_buffer_bits += rows_real * m
                c.tern_input_ones += int(popcount64(bw[:, b]).sum())
                for u in us:
                    pos, neg = layer.tern_words[u, b]
                    column = popcount64(bw[:, b] & pos) - popcount64(bw[:, b] & neg)  # n+ - n-, in -A_t..A_t
                    acc[:, f0 + u] += column  # shift 0: one input plane, one weight level
                    c.tern_column_reads += 2 * m
                    c.tern_bit_ops += 2 * rows_real * m
                    c.tern_weight_bits += 2 * rows_real
            # refresh (a cost only: no decay is modelled): every stored row of the tile at each multiple of
            # the period within the pixels x blocks cycles its macro spends on it, per image
            c.refresh_events += len(bs) * at * len(range(period, pixels * len(bs) + 1, period)) * n
        c.tern_cells_allocated = 2 * f_t * r_t * at
        c.tern_cycles = int(busy.max(initial=0))

    def run(self, images: np.ndarray, trace: bool = False, image_base: int = 0) -> ExecutionResult:
        """Run the program on uint8 NCHW images; see ExecutionResult for the layout.

        ``image_base``: global index of ``images[0]`` (u32; keys the hybrid analog noise, §9.6, so a
        batch split gives the same bits as one call)."""
        p = self.program
        if not (0 <= image_base and image_base + max(len(images), 1) - 1 <= 0xFFFFFFFF):
            raise ValueError(f"image_base {image_base}: global image indices must fit a u32")
        env = {p.input_tensor: check_images(p, images)}
        counters = []
        for li, layer in enumerate(p.layers):
            x = env[layer.in_tensor]
            if layer.op.is_cim:
                res = env[layer.res_tensor] if layer.res_tensor is not None else None
                y, c = self._cim_layer(layer, x, res, li, image_base)
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
