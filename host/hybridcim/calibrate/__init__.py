"""Calibration of hybrid mode (architecture.md §9): each CIM layer's saliency level table chosen to
minimise estimated energy (cost model) under an accuracy-loss budget on the calibration split.

    from hybridcim.calibrate import Calibrator
    cal = Calibrator(program, images, labels, preset="dcim-65nm", state_path="state.json")
    result = cal.run(max_loss=1.0)            # percentage points vs the program in digital mode
    result.program, result.gain, result.as_dict()

``hybridcim calibrate PROGRAM --max-loss 1.0 -o OUT.cim`` is the command; docs/hybrid.md the method.
Numpy only.
"""
from .errors import CalibrationError
from .evaluate import Evaluation, Evaluator, assignment_key, hybrid_program, make_emulator, run_logits, table_key
from .search import QUANTILES, Calibrator, LayerInfo, Option, Result, check_cost_preset, digital_version
from .state import State

__all__ = ["QUANTILES", "CalibrationError", "Calibrator", "Evaluation", "Evaluator", "LayerInfo", "Option", "Result",
           "State", "assignment_key", "check_cost_preset", "digital_version", "hybrid_program", "make_emulator",
           "run_logits", "table_key"]
