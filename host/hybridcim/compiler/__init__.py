"""Compiler: exported integer model (npz + JSON) -> CIM program image, and its report (numpy only)."""
from .build import compile_model
from .integer_model import IntegerModel, IntegerModelError, load_integer_model
from .report import format_report, layer_report, weight_sparsity

__all__ = ["compile_model", "IntegerModel", "IntegerModelError", "load_integer_model", "layer_report",
           "format_report", "weight_sparsity"]
