"""Golden executors of a CIM program: the literal reference and the fast exact emulator."""
from .counters import LayerCounters, static_counters
from .fast import FastEmulator, available_backends
from .reference import ReferenceEmulator
from .result import ExecutionResult, InputShapeError

__all__ = ["LayerCounters", "static_counters", "FastEmulator", "available_backends", "ReferenceEmulator",
           "ExecutionResult", "InputShapeError"]
