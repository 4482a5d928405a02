"""The seed papers' headline comparisons, recomputed by hybridcim under each paper's own comparison.

Two programs are derived from a compiled one so the papers' baselines run on *the same network*:

* :func:`repack` — the same weights and precisions packed ``naive`` (one filter per column
  group, architecture.md §5) instead of ``paired``: SUN's unpaired mapping.
* :func:`dense_counterpart` — the same function with every filter stored at 8 bits and every
  (row block × column group) unit stored: SUN's dense 8-bit baseline. A ``p``-bit filter's
  weights, bias and residual shift are scaled by 2^(8−p) and its requant shift raised by
  8 − p, which is exact (rshift_rne of v·2^k by s+k equals rshift_rne of v by s), so the dense
  program computes the *same logits* bit for bit; pruned filters become all-zero 8-bit filters.
  Its activations are therefore identical to the compressed program's, and data-dependent
  counters (the 1 bits of the streamed input planes) are counted on the same images for both.

:func:`seed_rows` builds the table; :func:`format_seeds` prints it as Markdown.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from ..program.model import Layer, Program
from ..program.packing import column_map, pack_filters
from ..program.validate import validate
from ..program.weights import decode_weight_matrix, encode_words


def layer_weights(layer: Layer, program: Program) -> np.ndarray:
    """The integer weight matrix W int64 (F, K) (HWC reduction order) of a conv/fc layer."""
    return decode_weight_matrix(layer.precision, layer.col_filter, layer.col_plane, layer.present,
                                layer.words, layer.k_rows, program.preset.rows_active)


def _with_layers(program: Program, layers: list[Layer], name: str, **meta) -> Program:
    out = Program(program.preset, list(program.tensors), layers, program.input_tensor, program.output_tensor,
                  name, dict(program.metadata, **meta))
    return validate(out)


def repack(program: Program, packing: str = "naive") -> Program:
    """``program`` with every conv/fc layer's filters re-packed by ``packing`` (same weights and
    precisions; all-zero units dropped as the compiler does). Computes the same outputs."""
    pr = program.preset
    layers = []
    for l in program.layers:
        if not l.op.is_cim:
            layers.append(l)
            continue
        w = layer_weights(l, program)
        prec = l.precision.astype(np.int64)
        col_filter, col_plane = column_map(pack_filters(prec, pr.group_width, packing), prec, pr.group_width)
        present, words = encode_words(w, prec, col_filter, col_plane, pr.rows_active)
        layers.append(dataclasses.replace(l, col_filter=col_filter, col_plane=col_plane, present=present, words=words))
    return _with_layers(program, layers, f"{program.name}-{packing}", packing=packing)


def dense_counterpart(program: Program, bits: int = 8) -> Program:
    """The same function as ``program`` with every filter at ``bits`` bits and every unit stored.

    Raises ValueError when ``bits`` is not a preset precision or a rescaled shift, residual
    shift or bias leaves its range (shift ≤ 31, res_shift ≤ 31, bias int32).
    """
    pr = program.preset
    if bits not in pr.precisions:
        raise ValueError(f"{bits}-bit filters are not a precision of preset {pr.name!r} {pr.precisions}")
    layers = []
    for l in program.layers:
        if not l.op.is_cim:
            layers.append(l)
            continue
        w = layer_weights(l, program)
        prec = l.precision.astype(np.int64)
        k = np.where(prec > 0, bits - prec, 0)
        if (k < 0).any():
            raise ValueError(f"layer {l.name!r} has filters wider than {bits} bits")
        w8 = w << k[:, None]
        shift = l.shift.astype(np.int64) + k
        res_shift = l.res_shift.astype(np.int64) + np.where(l.res_tensor is not None, k, 0)
        bias = l.bias.astype(np.int64) << k
        if shift.max(initial=0) > 31 or res_shift.max(initial=0) > 31 or np.abs(bias).max(initial=0) >= 2**31:
            raise ValueError(f"layer {l.name!r}: its shifts or bias leave their range at {bits} bits")
        prec8 = np.full(l.n_filters, bits, dtype=np.int64)
        col_filter, col_plane = column_map(pack_filters(prec8, pr.group_width, "paired"), prec8, pr.group_width)
        present, words = encode_words(w8, prec8, col_filter, col_plane, pr.rows_active)
        full = np.zeros((present.size, pr.group_width), dtype=np.uint64)
        full[present.ravel()] = words  # units are stored in (group, row block) order
        layers.append(dataclasses.replace(
            l, precision=prec8.astype(np.uint8), shift=shift.astype(np.int8), res_shift=res_shift.astype(np.int8),
            bias=bias.astype(np.int32), col_filter=col_filter, col_plane=col_plane,
            present=np.ones_like(present), words=full))
    return _with_layers(program, layers, f"{program.name}-dense{bits}", dense_bits=bits)
