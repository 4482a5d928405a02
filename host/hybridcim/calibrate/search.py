"""Choose every CIM layer's hybrid level table to minimise estimated energy under an accuracy budget.

The search (docs/hybrid.md, "Calibration"), on a fixed image set (the calibration split):

1. **Saliency quantiles.** Two runs with every layer at an 8-level table whose levels are all
   digital (the result equals digital mode bit for bit) and whose 7 thresholds are a grid; the
   boundary histogram (``decisions_level0…7``) gives the saliency CDF at the grid. The second
   grid is interpolated from the first at the wanted quantiles, so each layer gets thresholds
   t_q below which a fraction ≈ q of its (pixel, group) decisions fall.
2. **Candidate tables per layer**, as chains from mild to aggressive: a level of family *skip*
   at depth D is (D, D) (top D diagonals digital, the rest skipped), of family *analog* (D, 15)
   (the rest through the ADC). Analog is offered only where the cost preset makes an analog read
   cheaper than a digital one (else it is dominated: less exact *and* dearer); skip unless
   ``skip=False``. Chains: static (one level at D for the whole layer) and, unless ``static``,
   two levels split at t_q: below it the family level at D, above it all digital. D walks from
   all-digital − 1 down to 0 (every other D in the lower range of layers deeper than 8).
3. **Per-layer sensitivity** on a subset (``sens_images``): each chain's tables are run with
   only that layer hybrid; measured: the layer's energy (cost model), the mean KL divergence of
   the network's softmax from the digital one (additive to first order over layers) and the
   accuracy loss; a chain stops once one layer alone loses more than ``1.5·budget + 0.5`` pp or
   moves the softmax by more than KL_STOP.
4. **Lagrangian path.** Per layer the lower convex hull of (KL, energy) from its digital point;
   all hull moves merged by energy saved per KL added, largest first, give a sequence of
   assignments from all-digital to most aggressive. A bisection over that sequence finds the
   last assignment whose **full-network** accuracy loss on all the images is within budget
   (each check a full run).
5. **Greedy pass** over the later moves (``refine`` full-network checks).

With ``bias_correction`` every evaluation of a table that loses work runs with the bias correction
of :mod:`hybridcim.calibrate.bias` (the mean lost accumulator per filter, measured on the
sensitivity images in network order, folded into the requant bias), so the per-layer sensitivities,
the path and the checks all see corrected layers; the chosen program carries the corrected biases.

Every evaluation goes through a :class:`~hybridcim.calibrate.state.State` (resumable).
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

import numpy as np

from ..cim.hybrid import DEPTH_ALL, MAX_LEVELS
from ..program.codec import encode
from ..program.errors import InvalidProgramError
from ..program.model import Program
from .errors import CalibrationError
from .evaluate import Evaluation, Evaluator, assignment_key, hybrid_program
from .state import State

QUANTILES = (0.5, 0.8)
"""Saliency quantiles at which a two-level table splits (fraction of decisions below the threshold)."""
GRID_QUANTILES = (0.1, 0.25, 0.5, 0.6, 0.75, 0.9, 0.97)
"""Quantiles the second saliency grid aims at (interpolated from the first, geometric grid)."""
KL_STOP = 0.25
"""A chain stops after a table whose layer alone moves the softmax by more than this (mean KL, nats)."""
HYBRID_ENERGIES = ("analog_column_read_pj", "adc_conversion_pj", "skipped_bitplane_pj", "saliency_pj_per_row")


@dataclass
class LayerInfo:
    """A CIM layer that can run in hybrid mode: bits_in X, all-digital depth dm = max precision + X − 1
    (D = dm makes every pair digital), max saliency, families offered, saliency CDF points."""

    index: int
    name: str
    bits_in: int
    dm: int
    sal_max: int
    families: tuple
    cdf: dict = field(default_factory=dict)  # threshold -> fraction of decisions with saliency < threshold


@dataclass
class Option:
    """One candidate table of one layer, measured alone: energy of the layer (pJ/image), KL, loss (pp)."""

    table: tuple | None
    energy: float
    kl: float
    loss_pp: float


@dataclass
class Result:
    """The chosen operating point."""

    assignment: dict
    evaluation: Evaluation
    digital: Evaluation
    program: Program
    energy_pj: float            # per image, whole chip (cost model)
    energy_digital_pj: float
    macro_pj: float             # per image, CIM datapath (MACRO_KINDS)
    macro_digital_pj: float
    loss_pp: float
    path_length: int
    checks: list
    bias_correction: bool = False

    @property
    def bias(self) -> dict:
        """Bias correction per hybrid layer (name -> int per filter; empty without correction)."""
        return dict(self.evaluation.bias or {})

    @property
    def gain(self) -> float:
        """Energy efficiency over all-digital, whole chip (energy ratio)."""
        return self.energy_digital_pj / self.energy_pj if self.energy_pj else float("nan")

    @property
    def macro_gain(self) -> float:
        """Energy efficiency over all-digital of the CIM datapath alone."""
        return self.macro_digital_pj / self.macro_pj if self.macro_pj else float("nan")

    def as_dict(self) -> dict:
        return {"images": self.evaluation.images, "accuracy": self.evaluation.accuracy,
                "accuracy_digital": self.digital.accuracy, "loss_pp": self.loss_pp,
                "agree_with_digital": self.evaluation.agree / self.evaluation.images,
                "energy_uj_per_image": self.energy_pj / 1e6, "energy_digital_uj_per_image": self.energy_digital_pj / 1e6,
                "gain": self.gain, "macro_energy_uj_per_image": self.macro_pj / 1e6,
                "macro_energy_digital_uj_per_image": self.macro_digital_pj / 1e6, "macro_gain": self.macro_gain,
                "path_length": self.path_length, "checks": self.checks, "bias_correction": self.bias_correction,
                "bias_delta": {k: [int(v) for v in vals] for k, vals in sorted(self.bias.items())},
                "layers": {name: {"thresholds": list(t[0]), "digital_depth": list(t[1]), "keep_depth": list(t[2])}
                           for name, t in sorted(self.assignment.items(), key=lambda kv: kv[0]) if t is not None}}


def fingerprint(program: Program, images: np.ndarray, labels: np.ndarray, sal_planes: int, sens_images: int) -> dict:
    """What a state file is bound to: program image, images and labels, saliency planes, subset size."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(images).tobytes())
    h.update(np.ascontiguousarray(labels).astype(np.uint8).tobytes())
    return {"program_sha256": hashlib.sha256(encode(program)).hexdigest(), "images": int(len(images)),
            "images_sha256": h.hexdigest(), "sal_planes": int(sal_planes), "sens_images": int(sens_images)}


def digital_version(program: Program) -> Program:
    """``program`` with every layer in digital mode (the baseline the budget is measured against)."""
    from ..program.builder import make_hybrid
    if all(l.mode == 0 for l in program.layers):
        return program
    return make_hybrid(program, {l.name: None for l in program.layers if l.op.is_cim})


def check_cost_preset(preset) -> None:
    """Refuse a cost preset that cannot price hybrid mode (a digital chip: no ADC)."""
    missing = [p for p in HYBRID_ENERGIES if preset[p] is None]
    if missing:
        raise CalibrationError(f"cost preset {preset.name!r} has no price for {', '.join(missing)} (a digital chip "
                               "without ADC): calibrate with a preset that has the hybrid energies, e.g. dcim-65nm")


def _rows_eff(layer, program: Program) -> float:
    """Mean real rows of the layer's row blocks (adder-tree inputs per digital column read)."""
    a = program.preset.rows_active
    r = -(-layer.k_rows // a)
    return layer.k_rows / r


class Calibrator:
    """The search of the module doc over one program and one image set.

    ``preset``: a cost preset (name, path or CostPreset) with the hybrid energies; ``max_loss`` is
    given per :meth:`run`. ``keep_digital``: names of layers left in digital mode. ``sens_images``: images of the per-layer sensitivity subset (the first
    ones of ``images``). ``state_path``: the resumable state file (None: in memory). ``bias_correction``:
    evaluate every table with the bias correction of skipped work (module doc), measured on the
    sensitivity images."""

    def __init__(self, program: Program, images: np.ndarray, labels: np.ndarray, preset="dcim-65nm",
                 sal_planes: int = 2, sens_images: int = 500, state_path=None, emulator: str = "auto",
                 batch: int = 500, show_progress: bool = False, log=None, keep_digital=(),
                 bias_correction: bool = False):
        from ..cost import load_cost_preset
        self.preset = load_cost_preset(preset)
        check_cost_preset(self.preset)
        if not 1 <= sal_planes <= 8:
            raise CalibrationError(f"--sal-planes must lie in 1..8, got {sal_planes}")
        if len(images) < 1:
            raise CalibrationError("no calibration images")
        self.program = digital_version(program)
        self.sal_planes = sal_planes
        self.show_progress = show_progress
        self.log = log or (lambda msg: None)
        n_sens = max(1, min(int(sens_images), len(images)))
        self.state = State(state_path, fingerprint(self.program, images, labels, sal_planes, n_sens))
        names = {l.name for l in self.program.layers if l.op.is_cim}
        unknown = sorted(set(keep_digital) - names)
        if unknown:
            raise CalibrationError(f"--keep-digital: program {self.program.name!r} has no conv/fc layer {unknown[0]!r}")
        self.keep_digital = set(keep_digital)
        self.layers = [l for l in self._capable_layers() if l.name not in self.keep_digital]
        if not self.layers:
            raise CalibrationError("every hybrid-capable layer is in --keep-digital: nothing to calibrate")
        self.full = Evaluator(self.program, images, labels, sal_planes, emulator, 0, batch)
        self.sens = self.full if n_sens == len(images) else \
            Evaluator(self.program, images[:n_sens], labels[:n_sens], sal_planes, emulator, 0, batch)
        self.bias_correction = bool(bias_correction)
        self.bias_images = n_sens if self.bias_correction else 0
        self.n_evals = 0
        self.n_cached = 0

    # ------------------------------------------------------------------ bookkeeping
    def _capable_layers(self) -> list[LayerInfo]:
        out = []
        p = self.program
        pr = self.preset
        adc_scale = 2.0 ** (p.preset.adc_bits - 5)
        p_ana = pr["analog_column_read_pj"] + pr["adc_conversion_pj"] * adc_scale + pr["shift_add_pj"]
        for i, layer in enumerate(p.layers):
            if not layer.op.is_cim or not (layer.precision > 0).any():
                continue
            x = p.tensors[layer.in_tensor].bits
            try:  # the hybrid accumulator bound (§9.5) does not depend on the table
                hybrid_program(p, {layer.name: ((), (DEPTH_ALL,), (DEPTH_ALL,))}, self.sal_planes)
            except InvalidProgramError:
                continue
            p_dig = _rows_eff(layer, p) * pr["adder_tree_pj_per_input"] + pr["shift_add_pj"]
            fams = []
            if p_ana < p_dig:
                fams.append("analog")
            fams.append("skip")
            h = min(self.sal_planes, x)
            out.append(LayerInfo(i, layer.name, x, int(layer.precision.max()) + x - 1,
                                 int(layer.k_rows) * ((1 << h) - 1), tuple(fams)))
        if not out:
            raise CalibrationError(f"program {p.name!r} has no conv/fc layer that can run in hybrid mode (none, or "
                                   "every one's hybrid accumulator bound exceeds 2^31 - 1, architecture.md §9.5)")
        return out

    def evaluate(self, which: str, assignment: dict, bar=None, correct: bool = True) -> Evaluation:
        """The cached or newly measured evaluation of ``assignment`` on the 'sens' or 'full' images,
        bias-corrected when the calibrator corrects and ``correct`` (state key 'which:bc:...'; an
        uncorrected evaluation's key has no 'bc:')."""
        ev = self.full if which == "full" else self.sens
        if not any(t is not None for t in assignment.values()):
            return ev.digital
        bc = self.bias_images if correct else 0
        key = f"{which}:{'bc:' if bc else ''}{assignment_key(assignment)}"
        got = self.state.get(key)
        if got is not None:
            self.n_cached += 1
        else:
            got = ev(assignment, bias_images=bc)
            self.state.put(key, got)
            self.n_evals += 1
        if bar is not None:
            bar.update(1)
        return got

    def _layer_energy(self, assignment: dict, ev: Evaluation, index: int) -> float:
        prog = hybrid_program(self.program, assignment, self.sal_planes)
        from ..cost import layer_cost
        lc = layer_cost(prog.layers[index], ev.counters[index], prog, self.preset)
        return lc.energy_total_pj / ev.images

    def energy(self, assignment: dict, ev: Evaluation) -> tuple[float, float]:
        """(whole-chip, CIM-datapath) energy per image, pJ, of ``assignment``'s run ``ev``."""
        c = ev.cost(hybrid_program(self.program, assignment, self.sal_planes), self.preset)
        return c.energy_pj / ev.images, c.energy_macro_pj / ev.images

    # ------------------------------------------------------------------ 1. saliency quantiles
    def saliency_cdf(self) -> None:
        """Fill each layer's ``cdf`` from two grid runs on the sensitivity images."""
        from ..progress import progress
        with progress(2, "saliency quantiles", unit="run", disable=not self.show_progress) as bar:
            grids = {l.name: _geometric_grid(l.sal_max) for l in self.layers}
            self._grid_pass(grids, bar)
            grids = {l.name: _quantile_grid(l.cdf, l.sal_max) for l in self.layers}
            self._grid_pass(grids, bar)

    def _grid_pass(self, grids: dict, bar) -> None:
        assignment = {}
        for l in self.layers:
            t = tuple(grids[l.name])
            if t:
                assignment[l.name] = (t, (DEPTH_ALL,) * (len(t) + 1), (DEPTH_ALL,) * (len(t) + 1))
        ev = self.evaluate("sens", assignment, bar, correct=False)  # all-digital levels: nothing lost to correct
        for l in self.layers:
            if l.name not in assignment:
                continue
            t = assignment[l.name][0]
            hist = np.array(ev.counters[l.index].boundary_histogram[:len(t) + 1], dtype=np.float64)
            total = hist.sum()
            if total <= 0:
                continue
            cum = np.cumsum(hist) / total
            for k, thr in enumerate(t):
                l.cdf[int(thr)] = float(cum[k])

    def threshold(self, layer: LayerInfo, q: float) -> int | None:
        """The known threshold whose fraction of decisions below it is closest to ``q`` (strictly
        between 0 and 1), or None when the layer's saliency does not split there."""
        pts = [(abs(f - q), t) for t, f in layer.cdf.items() if 0.0 < f < 1.0]
        return min(pts)[1] if pts else None

    # ------------------------------------------------------------------ 2.-3. candidates and sensitivity
    def chains(self, layer: LayerInfo, skip: bool, static: bool) -> list[list[tuple]]:
        """Candidate tables of one layer, as chains from mild to aggressive (module doc, step 2)."""
        fams = [f for f in layer.families if f == "analog" or skip]
        splits = [None] + ([] if static else [self.threshold(layer, q) for q in QUANTILES])
        seen, out = set(), []
        for fam in fams:
            for k, t in enumerate(splits):
                if t is None and k > 0:  # the saliency does not split at that quantile
                    continue
                if t is not None and t in seen:
                    continue
                if t is not None:
                    seen.add(t)
                chain = []
                for d in _depths(layer.dm):
                    lo = (d, d) if fam == "skip" else (d, DEPTH_ALL)
                    if t is None:
                        chain.append(((), (lo[0],), (lo[1],)))
                    else:
                        chain.append(((t,), (lo[0], DEPTH_ALL), (lo[1], DEPTH_ALL)))
                out.append(chain)
        return out

    def sensitivity(self, skip: bool, static: bool, max_loss: float) -> dict[str, list[Option]]:
        """Options per layer name: digital first, then every measured candidate (module doc, step 3)."""
        from ..progress import progress
        stop_pp = 1.5 * max_loss + 0.5
        dig = self.sens.digital
        options = {}
        plan = {l.name: self.chains(l, skip, static) for l in self.layers}
        total = sum(len(c) for chains in plan.values() for c in chains)
        with progress(total, "per-layer sensitivity", unit="table", disable=not self.show_progress) as bar:
            for l in self.layers:
                opts = [Option(None, self._layer_energy({}, dig, l.index), 0.0, 0.0)]
                for chain in plan[l.name]:
                    for k, table in enumerate(chain):
                        a = {l.name: table}
                        ev = self.evaluate("sens", a, bar)
                        loss = 100.0 * (dig.correct - ev.correct) / ev.images
                        opts.append(Option(table, self._layer_energy(a, ev, l.index), ev.kl, loss))
                        if loss > stop_pp or ev.kl > KL_STOP:
                            bar.update(len(chain) - k - 1)
                            break
                options[l.name] = opts
        return options

    # ------------------------------------------------------------------ 4. Lagrangian path and checks
    @staticmethod
    def path(options: dict[str, list[Option]]) -> list[dict]:
        """Assignments from all-digital to most aggressive along the merged convex-hull moves."""
        moves = []
        for name, opts in options.items():
            cur = opts[0]
            rest = [o for o in opts[1:]]
            while True:
                best, best_slope = None, -1.0
                for o in rest:
                    if o.energy >= cur.energy - 1e-12:
                        continue
                    dkl = o.kl - cur.kl
                    slope = math.inf if dkl <= 0 else (cur.energy - o.energy) / dkl
                    if best is None or slope > best_slope or (slope == best_slope and o.energy < best.energy):
                        best, best_slope = o, slope
                if best is None:
                    break
                moves.append((best_slope, name, best))
                cur = best
                rest = [o for o in rest if o.kl >= cur.kl and o.energy < cur.energy]
        # stable merge: within a layer slopes decrease along its hull, so a global sort keeps its order
        order = sorted(range(len(moves)), key=lambda i: (-moves[i][0], i))
        seq, a = [{}], {}
        for i in order:
            _, name, o = moves[i]
            a = dict(a)
            a[name] = o.table
            seq.append(a)
        return seq

    def run(self, max_loss: float, skip: bool = True, static: bool = False, refine: int = 8) -> Result:
        """Calibrate for an accuracy loss of at most ``max_loss`` percentage points vs digital mode;
        ``refine``: full-network checks of the greedy pass after the bisection (module doc, step 5)."""
        if not (isinstance(max_loss, (int, float)) and math.isfinite(max_loss) and max_loss >= 0):
            raise CalibrationError(f"--max-loss must be a finite number >= 0 (percentage points), got {max_loss}")
        if not static and not all(l.cdf for l in self.layers):
            self.saliency_cdf()
        options = self.sensitivity(skip, static, max_loss)
        seq = self.path(options)
        dig = self.full.digital
        from ..progress import progress
        checks = []

        def passes(m: int) -> bool:
            ev = self.evaluate("full", seq[m], bar)
            loss = 100.0 * (dig.correct - ev.correct) / ev.images
            checks.append({"step": m, "loss_pp": loss, "accuracy": ev.accuracy})
            self.log(f"  path step {m}/{len(seq) - 1}: accuracy {100 * ev.accuracy:.2f} % (loss {loss:+.2f} pp)")
            return loss <= max_loss + 1e-9

        steps = max(1, math.ceil(math.log2(len(seq) + 1)))
        with progress(steps + 1 + refine, "full-network checks", unit="run", disable=not self.show_progress) as bar:
            if passes(len(seq) - 1):
                best = len(seq) - 1
            else:
                lo, hi = 0, len(seq) - 1  # lo passes (digital), hi fails
                while hi - lo > 1:
                    mid = (lo + hi) // 2
                    if passes(mid):
                        lo = mid
                    else:
                        hi = mid
                best = lo
            a = dict(seq[best])
            tries = 0
            for m in range(best + 1, len(seq)):  # greedy: the later moves one by one, kept when within budget
                if tries >= refine:
                    break
                (name, table), = [(k, v) for k, v in seq[m].items() if seq[m - 1].get(k) != v]
                if a.get(name) == table:
                    continue
                cand = dict(a)
                cand[name] = table
                tries += 1
                ev = self.evaluate("full", cand, bar)
                loss = 100.0 * (dig.correct - ev.correct) / ev.images
                checks.append({"step": f"greedy {m}", "loss_pp": loss, "accuracy": ev.accuracy})
                self.log(f"  greedy move {m} ({name}): accuracy {100 * ev.accuracy:.2f} % (loss {loss:+.2f} pp)"
                         f"{' kept' if loss <= max_loss + 1e-9 else ''}")
                if loss <= max_loss + 1e-9:
                    a = cand
        ev = self.evaluate("full", a)
        e, m = self.energy(a, ev)
        e0, m0 = self.energy({}, dig)
        prog = hybrid_program(self.program, a, self.sal_planes)
        if ev.bias:
            from .bias import apply_bias_correction
            prog, applied = apply_bias_correction(prog, ev.bias)
            assert {k: v.tolist() for k, v in applied.items()} == ev.bias  # stored corrections were valid
        return Result(a, ev, dig, prog, e, e0, m, m0, 100.0 * (dig.correct - ev.correct) / ev.images, len(seq) - 1,
                      checks, self.bias_correction)


def _depths(dm: int) -> list[int]:
    """Digital depths a chain walks, mild to aggressive: dm − 1 … 0, every other one below dm − 4 when
    dm > 8 (8-bit filters or inputs: finer steps there cost runs and matter little)."""
    out = [d for d in range(dm - 1, -1, -1) if dm <= 8 or d >= dm - 4 or (dm - 1 - d) % 2 == 0]
    return out if 0 in out else out + [0]


def _geometric_grid(sal_max: int) -> list[int]:
    """Up to MAX_LEVELS − 1 ascending thresholds from 1 to the layer's maximum saliency, geometric."""
    if sal_max < 1:
        return []
    g = np.unique(np.round(np.geomspace(1, max(sal_max, 1), MAX_LEVELS - 1)).astype(np.int64))
    return [int(v) for v in g if v >= 1]


def _quantile_grid(cdf: dict, sal_max: int) -> list[int]:
    """Thresholds at GRID_QUANTILES, interpolated linearly in the known CDF points."""
    if not cdf:
        return []
    ts = np.array(sorted(cdf), dtype=np.float64)
    fs = np.array([cdf[int(t)] for t in ts])
    ts = np.concatenate([[0.0], ts, [float(sal_max) + 1]])
    fs = np.concatenate([[0.0], fs, [1.0]])
    fs = np.maximum.accumulate(fs)
    out = set()
    for q in GRID_QUANTILES:
        t = float(np.interp(q, fs, ts))
        v = int(round(t))
        if 1 <= v <= sal_max:
            out.add(v)
    return sorted(out - set(int(t) for t in cdf))[:MAX_LEVELS - 1]
