"""The cost model's error type and the priced-event check (shared by cost.model and cost.dualpath)."""


class CostError(ValueError):
    """Counters and program that cannot be costed (missing counter, mismatched layers, event without a price)."""


def priced(preset, param: str, count: float, layer: str, counter: str, hint: str) -> float:
    """``count`` events times the preset's price ``param`` (pJ); 0 for no events; an event without a price
    (the preset's value is None) is a CostError naming the layer, counter and parameter, then ``hint``."""
    p = preset[param]
    if p is None:
        if count:
            raise CostError(f"layer {layer!r} has {counter}={count} but cost preset {preset.name!r} has no price "
                            f"for {param} (not in this preset): {hint}")
        return 0.0
    return float(count) * p
