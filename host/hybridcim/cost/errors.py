"""The cost model's error type (shared by cost.model and cost.dualpath)."""


class CostError(ValueError):
    """Counters and program that cannot be costed (missing counter, mismatched layers, event without a price)."""
