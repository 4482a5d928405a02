"""Errors of the calibration (bad input: one line naming the problem)."""


class CalibrationError(ValueError):
    """A calibration that cannot run as asked (bad budget, cost preset without the hybrid energies,
    a program with no layer that can run in hybrid mode, a state file of another calibration)."""
